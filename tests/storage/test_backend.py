"""SQLiteBackend: every public method, on in-memory SQLite, a SQLite file and PostgreSQL."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from metaqore.core.canonical import canonical_json, content_hash
from metaqore.core.models import (
    Artifact,
    Checkpoint,
    Conflict,
    ConflictSeverity,
    Project,
    ProjectStatus,
    Provenance,
    ResolutionStrategy,
    Task,
    TaskStatus,
)
from metaqore.exceptions import StorageError
from metaqore.storage import schema
from metaqore.storage.backend import STORED_CONTENT_HASH_KEY, StorageBackend, StoredRecord
from metaqore.storage.backends.sqlite import SQLiteBackend, mask_dsn

Opener = Callable[..., SQLiteBackend]
Clock = Callable[[], datetime]


def project(project_id: str = "proj-a", **fields: Any) -> Project:
    return Project(id=project_id, name=fields.pop("name", project_id.title()), **fields)


def artifact(
    artifact_id: str,
    project_id: str = "proj-a",
    *,
    version: int = 1,
    created_at: datetime | None = None,
    **fields: Any,
) -> Artifact:
    values: dict[str, Any] = {
        "id": artifact_id,
        "project_id": project_id,
        "artifact_type": fields.pop("artifact_type", "plan"),
        "version": version,
        "created_by": fields.pop("created_by", "planner"),
        "data": fields.pop("data", {"id": artifact_id, "version": version}),
        **fields,
    }
    if created_at is not None:
        values["created_at"] = created_at
    return Artifact(**values)


def bulk_row(project_id: str, index: int, *, base: datetime, **overrides: Any) -> dict[str, Any]:
    data_json = canonical_json({"n": index})
    row: dict[str, Any] = {
        "project_id": project_id,
        "id": f"art-{index:06d}",
        "version": index % 5 + 1,
        "artifact_type": ("plan", "code", "config")[index % 3],
        "iteration": index % 4 or None,
        "created_by": f"agent-{index % 7}",
        "created_at": base + timedelta(microseconds=index),
        "content_hash": content_hash({"n": index}),
        "depends_on": [f"art-{index - 1:06d}"] if index else [],
        "data_json": data_json,
        "metadata": {"line": index},
        "provenance": [],
        "sensitivity": ("public", "internal", None)[index % 3],
    }
    row.update(overrides)
    return row


def raw_rows(backend: SQLiteBackend, query: sa.Select[Any]) -> list[sa.Row[Any]]:
    with backend.engine.connect() as connection:
        return list(connection.execute(query))


# -- opening, DSNs and errors ----------------------------------------------------------


def test_backend_is_a_storage_backend(backend: SQLiteBackend) -> None:
    assert isinstance(backend, StorageBackend)
    assert backend.list_projects() == []


def test_in_memory_stores_are_private_to_their_backend(open_backend: Opener) -> None:
    first, second = open_backend("sqlite://"), open_backend("sqlite://")
    first.save_project(project())
    assert second.get_project("proj-a") is None


def test_file_store_persists_across_backends(tmp_path: Path, open_backend: Opener) -> None:
    dsn = f"sqlite:///{tmp_path / 'kept.db'}"
    saved = project()
    open_backend(dsn).save_project(saved)
    assert open_backend(dsn).get_project("proj-a") == saved


def test_file_store_uses_wal_journal(tmp_path: Path, open_backend: Opener) -> None:
    backend = open_backend(f"sqlite:///{tmp_path / 'wal.db'}")
    with backend.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


@pytest.mark.parametrize(
    ("dsn", "secret"),
    [
        ("mysql://admin:s3cr3t-pw@db.example/metaqore", "s3cr3t-pw"),
        ("postgresql+psycopg2://admin:s3cr3t-pw@db.example/metaqore", "s3cr3t-pw"),
        ("sqlite+aiosqlite:///store.db", None),
        ("not a dsn at all", None),
        ("http://admin:s3cr3t-pw@example.com", "s3cr3t-pw"),
    ],
)
def test_unsupported_dsn_is_a_storage_error_with_masked_password(
    dsn: str, secret: str | None
) -> None:
    with pytest.raises(StorageError) as caught:
        SQLiteBackend(dsn)
    message = str(caught.value)
    assert "\n" not in message
    if secret:
        assert secret not in message
        assert "***" in message


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "postgresql", "postgres"])
def test_unreachable_postgres_is_a_storage_error_with_masked_password(scheme: str) -> None:
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        SQLiteBackend(f"{scheme}://gate:hunter2-pw@127.0.0.1:1/metaqore", timeout=2)
    message = str(caught.value)
    assert "hunter2-pw" not in message
    assert f"cannot open store {scheme}://gate:***@127.0.0.1:1/metaqore" in message
    assert "\n" not in message
    assert time.monotonic() - started < 15


def test_missing_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # ``None`` in sys.modules is how Python spells "this module cannot be imported".
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(StorageError, match=r"pip install 'metaqore\[postgres\]'"):
        SQLiteBackend("postgresql+psycopg://gate:pw@localhost/metaqore")


def test_missing_directory_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        SQLiteBackend(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(StorageError, match="timeout"):
        SQLiteBackend("sqlite://", timeout=timeout)


def test_mask_dsn_hides_passwords() -> None:
    assert mask_dsn("postgresql+psycopg://u:pw@h:5432/d") == "postgresql+psycopg://u:***@h:5432/d"
    assert "pw" not in mask_dsn("postgresql+psycopg://u@h/d?password=pw")
    assert mask_dsn("sqlite:///x.db") == "sqlite:///x.db"
    assert "pw" not in mask_dsn("::garbage://u:pw@host")


def test_database_errors_become_storage_errors(backend: SQLiteBackend) -> None:
    # The artifact's project does not exist: a foreign key violation, not a raw
    # SQLAlchemy IntegrityError.
    with pytest.raises(StorageError) as caught:
        backend.save_artifact(artifact("orphan", "no-such-project"))
    assert not isinstance(caught.value, sa.exc.SQLAlchemyError)
    assert caught.value.__cause__ is None
    assert "\n" not in str(caught.value)


def test_closed_backend_refuses_work(dsn: str) -> None:
    backend = SQLiteBackend(dsn)
    backend.close()
    backend.close()
    with pytest.raises(StorageError, match="closed"):
        backend.list_projects()


def test_backend_is_a_context_manager(dsn: str) -> None:
    with SQLiteBackend(dsn) as backend:
        backend.save_project(project())
    with pytest.raises(StorageError, match="closed"):
        backend.get_project("proj-a")


# -- projects ------------------------------------------------------------------------


def test_project_round_trip_and_upsert(backend: SQLiteBackend) -> None:
    stored = project(description="checkout", organization="acme", metadata={"team": ["a", "b"]})
    stored.add_artifact(artifact("ignored"))
    assert backend.save_project(stored) is stored
    loaded = backend.get_project("proj-a")
    assert loaded is not None
    # The backend stores the project row only; StateManager fills artifacts and tasks.
    assert loaded.artifacts == [] and loaded.tasks == []
    assert loaded == stored.model_copy(update={"artifacts": []})
    assert loaded.created_at.tzinfo is UTC

    stored.transition(ProjectStatus.PLANNING)
    stored.name = "Renamed"
    backend.save_project(stored)
    reloaded = backend.get_project("proj-a")
    assert reloaded is not None
    assert (reloaded.name, reloaded.status) == ("Renamed", ProjectStatus.PLANNING)
    assert backend.get_project("missing") is None


def test_list_projects_oldest_first(backend: SQLiteBackend, clock: Clock) -> None:
    for project_id in ("p-2", "p-1", "p-3"):
        backend.save_project(project(project_id, created_at=clock()))
    assert [p.id for p in backend.list_projects()] == ["p-2", "p-1", "p-3"]


def test_delete_project_cascades(backend: SQLiteBackend) -> None:
    for project_id in ("doomed", "kept"):
        backend.save_project(project(project_id))
        stored = artifact(f"{project_id}-art", project_id)
        stored.add_conflict(Conflict(artifact_id=stored.id, description="x"))
        backend.save_artifact(stored)
        backend.save_task(Task(id=f"{project_id}-task", project_id=project_id, title="t"))
        backend.save_conflicts(
            [Conflict(artifact_id="elsewhere", project_id=project_id, description="y")]
        )
        backend.save_checkpoint(Checkpoint(project_id=project_id, label="c", snapshot={}))

    assert backend.delete_project("doomed") is True
    assert backend.delete_project("doomed") is False
    assert backend.get_project("doomed") is None
    assert backend.list_artifacts("doomed") == []
    assert backend.list_tasks("doomed") == []
    assert backend.list_conflicts("doomed") == []
    assert backend.list_checkpoints("doomed") == []
    for table in (schema.artifacts, schema.tasks, schema.conflicts, schema.checkpoints):
        rows = raw_rows(backend, sa.select(table.c.project_id).distinct())
        assert {row.project_id for row in rows} == {"kept"}
    assert len(backend.list_artifacts("kept")) == 1
    assert len(backend.list_conflicts("kept")) == 2


# -- artifacts -----------------------------------------------------------------------


def test_artifact_round_trip(backend: SQLiteBackend) -> None:
    backend.save_project(project())
    stored = artifact(
        "api-plan",
        iteration=3,
        depends_on=["requirements"],
        metadata={"llm_provider": "ollama", "sensitivity": "internal"},
        data={"title": "Checkout API", "nested": {"ü": [1, 2.5, None, True]}},
        created_at=datetime(2026, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
    )
    stored.add_provenance(Provenance(artifact_id="api-plan", actor="planner", action="created"))
    backend.save_artifact(stored)
    loaded = backend.get_artifact("api-plan", project_id="proj-a")
    assert loaded == stored
    assert loaded is not None
    assert loaded.created_at == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert loaded.created_at.tzinfo is UTC
    assert loaded.content_hash == stored.content_hash
    assert backend.get_sensitivities(["api-plan", "unknown"], project_id="proj-a") == {
        "api-plan": "internal"
    }


def test_artifact_versions_under_one_id(backend: SQLiteBackend, clock: Clock) -> None:
    backend.save_project(project())
    v1 = artifact("plan", version=1, created_at=clock())
    v3 = artifact("plan", version=3, created_at=clock())
    v2 = artifact("plan", version=2, created_at=clock())
    other = artifact("code", version=1, artifact_type="code", created_at=clock())
    for item in (v1, v3, v2, other):
        backend.save_artifact(item)

    assert backend.get_artifact("plan") == v3
    assert backend.get_artifact("plan", project_id="proj-a", version=2) == v2
    assert backend.get_artifact("plan", version=9) is None
    # Ordered by version, then creation time.
    assert backend.list_artifacts("proj-a") == [v1, other, v2, v3]

    # Saving the same (project, id, version) again replaces that version only.
    changed = artifact("plan", version=2, data={"changed": True}, created_at=v2.created_at)
    backend.save_artifact(changed)
    assert backend.get_artifact("plan", version=2) == changed
    assert len(backend.list_artifacts("proj-a")) == 4

    assert backend.delete_artifact("plan") == 3
    assert backend.get_artifact("plan") is None
    assert backend.list_artifacts("proj-a") == [other]
    assert backend.delete_artifact("plan") == 0


def test_same_artifact_id_in_two_projects(backend: SQLiteBackend, clock: Clock) -> None:
    backend.save_project(project("old"))
    backend.save_project(project("new"))
    older = artifact("shared", "old", version=5, created_at=clock())
    newer = artifact("shared", "new", version=1, created_at=clock())
    backend.save_artifact(older)
    backend.save_artifact(newer)

    assert backend.get_artifact("shared") == newer  # the most recently created
    assert backend.get_artifact("shared", project_id="old") == older
    with pytest.raises(StorageError, match="several projects"):
        backend.delete_artifact("shared")
    assert backend.delete_artifact("shared", project_id="new") == 1
    assert backend.get_artifact("shared") == older


def test_blocked_by_round_trips_through_conflicts(backend: SQLiteBackend, clock: Clock) -> None:
    backend.save_project(project())
    blocked = artifact("blocked", created_at=clock())
    first = Conflict(
        artifact_id="blocked",
        description="version 1 of plan exists",
        conflict_type="version_mismatch",
        severity=ConflictSeverity.HIGH,
        related=["plan-1"],
        created_at=clock(),
    )
    second = Conflict(artifact_id="blocked", description="cycle", created_at=clock())
    blocked.add_conflict(first)
    blocked.add_conflict(second)
    free = artifact("free", version=2, created_at=clock())
    backend.save_artifact(blocked)
    backend.save_artifact(free)

    [loaded_blocked, loaded_free] = backend.list_artifacts("proj-a")
    assert loaded_blocked.blocked_by == [first, second]
    assert loaded_blocked.is_blocked
    assert loaded_free.blocked_by == [] and not loaded_free.is_blocked
    assert backend.get_artifact("blocked") == blocked
    # A conflict saved without a project is filed under its artifact's project.
    assert backend.list_conflicts("proj-a") == [first, second]

    first.mark_resolved(ResolutionStrategy.RETRY)
    second.mark_resolved(ResolutionStrategy.OVERRIDE)
    backend.update_conflict(first)
    backend.update_conflict(second)
    reloaded = backend.get_artifact("blocked")
    assert reloaded is not None
    assert reloaded.blocked_by == [first, second]
    assert not reloaded.is_blocked

    # Deleting the artifact deletes the conflicts attached to it.
    backend.delete_artifact("blocked")
    assert backend.list_conflicts("proj-a") == []


def test_list_artifacts_queries_do_not_grow_with_artifacts(backend: SQLiteBackend) -> None:
    backend.save_project(project())
    for index in range(30):
        item = artifact(f"a{index}", version=index + 1)
        item.add_conflict(Conflict(artifact_id=item.id, description=f"c{index}"))
        backend.save_artifact(item)
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    sa.event.listen(backend.engine, "before_cursor_execute", record)
    try:
        loaded = backend.list_artifacts("proj-a")
    finally:
        sa.event.remove(backend.engine, "before_cursor_execute", record)
    assert len(loaded) == 30 and all(len(a.blocked_by) == 1 for a in loaded)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2


def test_content_less_artifact_keeps_its_hash(backend: SQLiteBackend) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    backend.ensure_projects([{"id": "proj-a"}])
    stated = "sha256:" + "ab" * 32
    backend.bulk_save_artifacts(
        [bulk_row("proj-a", 1, base=base, data_json=None, content_hash=stated)]
    )
    loaded = backend.get_artifact("art-000001")
    assert loaded is not None
    assert loaded.data == {}
    assert loaded.metadata[STORED_CONTENT_HASH_KEY] == stated

    # Saving it back (e.g. a checkpoint restore) keeps the row content-less, hash intact.
    backend.save_artifact(loaded)
    [record] = backend.iter_artifact_records(["proj-a"])
    assert record.content_hash == stated
    [row] = raw_rows(backend, sa.select(schema.artifacts.c.data, schema.artifacts.c.metadata))
    assert row.data is None
    assert STORED_CONTENT_HASH_KEY not in json.loads(row.metadata)


def test_damaged_artifact_row_is_a_storage_error(backend: SQLiteBackend) -> None:
    backend.save_project(project())
    backend.save_artifact(artifact("plan"))
    with backend.engine.begin() as connection:
        connection.execute(sa.update(schema.artifacts).values(data='{"tampered":true}'))
    with pytest.raises(StorageError, match="damaged artifact row proj-a/plan v1"):
        backend.get_artifact("plan")


# -- tasks ---------------------------------------------------------------------------


def test_task_round_trip_order_and_delete(backend: SQLiteBackend, clock: Clock) -> None:
    backend.save_project(project())
    backend.save_project(project("proj-b"))
    later = Task(id="t-2", project_id="proj-a", title="Build", created_at=clock())
    earlier = Task(
        id="t-1",
        project_id="proj-a",
        title="Design",
        assigned_to="planner",
        depends_on=["t-0"],
        metadata={"k": 1},
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
    )
    earlier.transition(TaskStatus.IN_PROGRESS)
    earlier.mark_completed()
    elsewhere = Task(id="t-1", project_id="proj-b", title="Other", created_at=clock())
    for task in (later, earlier, elsewhere):
        assert backend.save_task(task) is task

    assert backend.list_tasks("proj-a") == [earlier, later]
    assert backend.get_task("t-1", project_id="proj-a") == earlier
    assert backend.get_task("t-1") == elsewhere  # the most recently created
    loaded = backend.get_task("t-1", project_id="proj-a")
    assert loaded is not None and loaded.completed_at is not None
    assert loaded.completed_at.tzinfo is UTC

    with pytest.raises(StorageError, match="several projects"):
        backend.delete_task("t-1")
    assert backend.delete_task("t-1", project_id="proj-b") is True
    assert backend.delete_task("t-2") is True
    assert backend.delete_task("t-2") is False
    assert backend.list_tasks("proj-a") == [earlier]


# -- conflicts -----------------------------------------------------------------------


def test_conflicts_save_get_update_list(backend: SQLiteBackend, clock: Clock) -> None:
    backend.save_project(project())
    one = Conflict(artifact_id="a", project_id="proj-a", description="one", created_at=clock())
    two = Conflict(artifact_id="b", project_id="proj-a", description="two", created_at=clock())
    assert backend.save_conflicts([two, one]) == [two, one]
    assert backend.save_conflicts([]) == []
    assert backend.list_conflicts("proj-a") == [one, two]
    assert backend.get_conflict(one.id) == one
    assert backend.get_conflict("conf_missing") is None

    one.mark_resolved("merge")
    assert backend.update_conflict(one) is one
    reloaded = backend.get_conflict(one.id)
    assert reloaded is not None and reloaded.resolved
    assert reloaded.resolution_strategy is ResolutionStrategy.MERGE
    [row] = raw_rows(
        backend, sa.select(schema.conflicts.c.resolved).where(schema.conflicts.c.id == one.id)
    )
    assert row.resolved is True

    # update_conflict of a conflict never stored inserts it.
    fresh = Conflict(artifact_id="c", project_id="proj-a", description="new", created_at=clock())
    backend.update_conflict(fresh)
    assert backend.list_conflicts("proj-a") == [one, two, fresh]


# -- checkpoints ---------------------------------------------------------------------


SNAPSHOT = {"project": {"id": "proj-a", "name": "Ü"}, "artifacts": [], "tasks": [], "conflicts": []}


def stored_snapshot(backend: SQLiteBackend, checkpoint_id: str) -> tuple[bool, bytes]:
    [row] = raw_rows(
        backend,
        sa.select(schema.checkpoints.c.compressed, schema.checkpoints.c.snapshot).where(
            schema.checkpoints.c.id == checkpoint_id
        ),
    )
    return row.compressed, bytes(row.snapshot)


@pytest.mark.parametrize("compress", [True, False])
def test_checkpoint_round_trip(dsn: str, open_backend: Opener, compress: bool) -> None:
    backend = open_backend(dsn, compress_checkpoints=compress)
    backend.save_project(project())
    checkpoint = Checkpoint(project_id="proj-a", label="before", snapshot=SNAPSHOT)
    assert backend.save_checkpoint(checkpoint) is checkpoint
    loaded = backend.get_checkpoint(checkpoint.id)
    assert loaded == checkpoint
    assert loaded is not None and isinstance(loaded.snapshot, dict)

    compressed, raw = stored_snapshot(backend, checkpoint.id)
    assert compressed is compress
    if compress:
        assert raw[:2] == b"\x1f\x8b"  # gzip magic
        assert json.loads(gzip.decompress(raw)) == SNAPSHOT
    else:
        assert raw == canonical_json(SNAPSHOT).encode("utf-8")


def test_toggling_compression_keeps_old_checkpoints_readable(
    backend: SQLiteBackend, clock: Clock
) -> None:
    backend.save_project(project())
    backend.compress_checkpoints = True
    packed = Checkpoint(project_id="proj-a", label="gz", snapshot=SNAPSHOT, created_at=clock())
    backend.save_checkpoint(packed)
    backend.compress_checkpoints = False
    plain = Checkpoint(project_id="proj-a", label="plain", snapshot=SNAPSHOT, created_at=clock())
    backend.save_checkpoint(plain)
    forced = Checkpoint(project_id="proj-a", label="forced", snapshot=SNAPSHOT, created_at=clock())
    backend.save_checkpoint(forced, compress=True)

    assert stored_snapshot(backend, packed.id)[0] is True
    assert stored_snapshot(backend, plain.id)[0] is False
    assert stored_snapshot(backend, forced.id)[0] is True
    assert backend.list_checkpoints("proj-a") == [packed, plain, forced]

    assert backend.delete_checkpoint(plain.id) is True
    assert backend.delete_checkpoint(plain.id) is False
    assert backend.get_checkpoint(plain.id) is None
    assert [c.label for c in backend.list_checkpoints("proj-a")] == ["gz", "forced"]


def test_unreadable_checkpoint_is_a_storage_error(backend: SQLiteBackend) -> None:
    backend.save_project(project())
    checkpoint = Checkpoint(project_id="proj-a", label="x", snapshot=SNAPSHOT)
    backend.save_checkpoint(checkpoint, compress=True)
    with backend.engine.begin() as connection:
        connection.execute(sa.update(schema.checkpoints).values(snapshot=b"\x1f\x8bnot gzip"))
    with pytest.raises(StorageError, match="unreadable snapshot"):
        backend.get_checkpoint(checkpoint.id)


# -- replace_project_state and transaction() ------------------------------------------


def test_replace_project_state(backend: SQLiteBackend) -> None:
    backend.save_project(project())
    backend.save_artifact(artifact("gone"))
    backend.save_task(Task(id="gone", project_id="proj-a", title="x"))
    backend.save_conflicts([Conflict(artifact_id="gone", project_id="proj-a", description="x")])
    checkpoint = Checkpoint(project_id="proj-a", label="kept", snapshot={})
    backend.save_checkpoint(checkpoint)

    renamed = project(name="Renamed")
    kept = artifact("kept")
    task = Task(id="t", project_id="proj-a", title="t")
    conflict = Conflict(artifact_id="kept", description="no project on it")
    backend.replace_project_state(renamed, [kept], [task], [conflict])

    assert backend.get_project("proj-a") == renamed
    loaded = backend.list_artifacts("proj-a")
    assert [a.id for a in loaded] == ["kept"]
    assert loaded[0].blocked_by == [conflict]
    assert backend.list_tasks("proj-a") == [task]
    assert backend.list_conflicts("proj-a") == [conflict]
    assert backend.list_checkpoints("proj-a") == [checkpoint]


def test_transaction_is_all_or_nothing(backend: SQLiteBackend) -> None:
    def write_then_fail() -> None:
        with backend.transaction():
            backend.save_project(project())
            backend.save_artifact(artifact("plan"))
            assert backend.get_artifact("plan") is not None  # visible inside
            raise RuntimeError("abort")

    with pytest.raises(RuntimeError, match="abort"):
        write_then_fail()
    assert backend.get_project("proj-a") is None

    with backend.transaction():
        backend.save_project(project())
        with backend.transaction():  # nested blocks join the outer one
            backend.save_artifact(artifact("plan"))
    assert backend.get_artifact("plan") is not None


# -- schema version and migrations -----------------------------------------------------


def meta_version(backend: SQLiteBackend) -> str:
    [row] = raw_rows(backend, sa.select(schema.meta.c.value))
    return str(row.value)


def set_meta_version(backend: SQLiteBackend, version: int) -> None:
    with backend.engine.begin() as connection:
        schema.write_schema_version(connection, version)


def test_new_store_is_at_the_current_schema_version(backend: SQLiteBackend) -> None:
    assert meta_version(backend) == str(schema.SCHEMA_VERSION)
    assert backend.opened_at_version == 0  # created by this open


def test_newer_store_is_refused(persistent_dsn: str, open_backend: Opener) -> None:
    backend = open_backend(persistent_dsn)
    backend.save_project(project())
    set_meta_version(backend, schema.SCHEMA_VERSION + 1)
    backend.close()
    with pytest.raises(StorageError) as caught:
        SQLiteBackend(persistent_dsn)
    newer, current = schema.SCHEMA_VERSION + 1, schema.SCHEMA_VERSION
    assert (
        f"store schema version {newer} is newer than this MetaQore supports ({current}); "
        "upgrade metaqore"
    ) in str(caught.value)


def test_store_without_an_upgrade_path_is_refused(
    persistent_dsn: str, open_backend: Opener
) -> None:
    backend = open_backend(persistent_dsn)
    set_meta_version(backend, 0)
    backend.close()
    with pytest.raises(StorageError, match="no migration from store schema version 0 to 1"):
        SQLiteBackend(persistent_dsn)


def test_store_with_tables_but_no_version_is_refused(
    persistent_dsn: str, open_backend: Opener
) -> None:
    backend = open_backend(persistent_dsn)
    with backend.engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE metaqore_meta"))
    backend.close()
    with pytest.raises(StorageError, match="no schema version"):
        SQLiteBackend(persistent_dsn)


def _add_sensitivity(connection: sa.Connection) -> None:
    connection.execute(sa.text("ALTER TABLE artifacts ADD COLUMN sensitivity VARCHAR"))
    connection.execute(sa.text("UPDATE artifacts SET sensitivity = 'internal'"))


def _make_version_0_store(dsn: str, open_backend: Opener) -> SQLiteBackend:
    """A store as an imaginary MetaQore 0 left it: no ``sensitivity`` column, version 0."""
    backend = open_backend(dsn)
    backend.save_project(project())
    backend.save_artifact(artifact("plan", metadata={"note": "old"}))
    with backend.engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE artifacts DROP COLUMN sensitivity"))
        schema.write_schema_version(connection, 0)
    return backend


def test_migration_runner_upgrades_an_old_store(persistent_dsn: str, open_backend: Opener) -> None:
    old = _make_version_0_store(persistent_dsn, open_backend)
    step = schema.Migration(0, "add artifacts.sensitivity", _add_sensitivity)
    with old.engine.begin() as connection:
        # Only to version 1: the store then still has version 1's tables.
        connection.execute(sa.text("DROP TABLE runs"))
        connection.execute(sa.text("ALTER TABLE checkpoints DROP COLUMN artifact_count"))
        connection.execute(sa.text("ALTER TABLE checkpoints DROP COLUMN task_count"))
        assert schema.ensure_schema(connection, target=1, migrations=[step]) == 0
    old.close()

    # Opening runs the real step from version 1 to the current version.
    upgraded = open_backend(persistent_dsn)
    assert upgraded.opened_at_version == 1
    assert meta_version(upgraded) == str(schema.SCHEMA_VERSION)
    loaded = upgraded.get_artifact("plan")
    assert loaded is not None
    assert loaded.metadata == {"note": "old", "sensitivity": "internal"}
    assert upgraded.get_sensitivities(["plan"], project_id="proj-a") == {"plan": "internal"}


def test_failed_migration_leaves_the_store_untouched(
    persistent_dsn: str, open_backend: Opener
) -> None:
    old = _make_version_0_store(persistent_dsn, open_backend)

    def half_done(connection: sa.Connection) -> None:
        _add_sensitivity(connection)
        raise RuntimeError("disk full")

    step = schema.Migration(0, "add artifacts.sensitivity", half_done)
    with (
        pytest.raises(StorageError, match=r"migration 0 -> 1 .* failed: disk full"),
        old.engine.begin() as connection,
    ):
        schema.ensure_schema(connection, migrations=[step])
    assert meta_version(old) == "0"
    with old.engine.connect() as connection:
        columns = {c["name"] for c in sa.inspect(connection).get_columns("artifacts")}
    assert "sensitivity" not in columns


def test_migrations_run_in_order_and_gaps_are_errors(backend: SQLiteBackend) -> None:
    applied: list[str] = []
    steps = [
        schema.Migration(1, "second", lambda connection: applied.append("1->2")),
        schema.Migration(0, "first", lambda connection: applied.append("0->1")),
    ]
    with backend.engine.begin() as connection:
        done = schema.migrate(connection, 0, target=2, migrations=steps)
    assert applied == ["0->1", "1->2"]
    assert [step.to_version for step in done] == [1, 2]
    assert meta_version(backend) == "2"

    with (
        pytest.raises(StorageError, match="no migration from store schema version 2 to 3"),
        backend.engine.begin() as connection,
    ):
        schema.migrate(connection, 2, target=4, migrations=steps)
    assert meta_version(backend) == "2"


# -- the gate's hot path ---------------------------------------------------------------


def test_bulk_save_100k_rows_then_stream_them_back(backend: SQLiteBackend) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    backend.ensure_projects([{"id": "proj-b"}, {"id": "proj-a"}])
    count = 100_000
    written = backend.bulk_save_artifacts(
        bulk_row("proj-a" if i % 2 else "proj-b", i, base=base) for i in range(count)
    )
    assert written == count
    records = list(backend.iter_artifact_records(["proj-b", "proj-a", "proj-b"]))
    assert len(records) == count
    assert records == sorted(records, key=lambda r: (r.project_id, r.version, r.created_at, r.id))
    assert {r.project_id for r in records[: count // 2]} == {"proj-a"}

    by_id = {(r.project_id, r.id): r for r in records}
    sample = bulk_row("proj-a", 4_321, base=base)
    assert by_id[("proj-a", "art-004321")] == StoredRecord(
        project_id="proj-a",
        id="art-004321",
        artifact_type=sample["artifact_type"],
        version=sample["version"],
        iteration=sample["iteration"],
        created_by=sample["created_by"],
        content_hash=sample["content_hash"],
        depends_on=("art-004320",),
        sensitivity=sample["sensitivity"],
        created_at=sample["created_at"],
    )
    assert by_id[("proj-b", "art-000000")].depends_on == ()
    assert all(r.created_at.tzinfo is UTC for r in records[:10])


def test_bulk_save_is_idempotent(backend: SQLiteBackend) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    backend.ensure_projects([{"id": "proj-a"}])
    rows = [bulk_row("proj-a", i, base=base) for i in range(50)]
    assert backend.bulk_save_artifacts(rows) == 50
    before = list(backend.iter_artifact_records(["proj-a"]))
    # Same key and content hash: skipped, even with a later timestamp.
    later = [{**row, "created_at": base + timedelta(days=1)} for row in rows]
    assert backend.bulk_save_artifacts(later) == 0
    assert list(backend.iter_artifact_records(["proj-a"])) == before

    # Same key, other content: a stored version is history, never rewritten.
    changed = {
        **rows[7],
        "data_json": '{"n":"changed"}',
        "content_hash": content_hash({"n": "changed"}),
    }
    assert backend.bulk_save_artifacts([changed, rows[8]]) == 0
    loaded = backend.get_artifact("art-000007")
    assert loaded is not None and loaded.content_hash == rows[7]["content_hash"]
    assert list(backend.iter_artifact_records(["proj-a"])) == before


def test_bulk_rows_are_full_artifacts(backend: SQLiteBackend) -> None:
    base = datetime(2026, 1, 1, 10, tzinfo=timezone(timedelta(hours=-5)))
    backend.ensure_projects([{"id": "proj-a"}])
    row = bulk_row(
        "proj-a",
        3,
        base=base,
        provenance=[Provenance(artifact_id="art-000003", actor="a", action="created").to_dict()],
        sensitivity="CRITICAL",
    )
    backend.bulk_save_artifacts([row])
    loaded = backend.get_artifact("art-000003", project_id="proj-a")
    assert loaded is not None
    assert loaded.data == {"n": 3}
    assert loaded.content_hash == row["content_hash"]
    assert loaded.provenance[0].actor == "a"
    assert loaded.created_at == row["created_at"] and loaded.created_at.tzinfo is UTC
    [record] = backend.iter_artifact_records(["proj-a"])
    assert record.sensitivity == "critical"


def test_bulk_row_missing_a_key_is_reported() -> None:
    backend = SQLiteBackend()
    try:
        with pytest.raises(ValueError, match="'created_by'"):
            backend.bulk_save_artifacts(
                [{"project_id": "p", "id": "a", "version": 1, "artifact_type": "plan"}]
            )
    finally:
        backend.close()


def test_iter_artifact_records_orders_many_projects(backend: SQLiteBackend) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    project_ids = [f"p{n:04d}" for n in range(1_200)]  # more than one IN (...) batch
    backend.ensure_projects({"id": pid} for pid in project_ids)
    backend.bulk_save_artifacts(
        bulk_row(pid, i, base=base) for i, pid in enumerate(reversed(project_ids))
    )
    records = list(backend.iter_artifact_records(project_ids[::-1]))
    assert [r.project_id for r in records] == project_ids
    assert list(backend.iter_artifact_records([])) == []
    assert list(backend.iter_artifact_records(["unknown"])) == []


def test_ensure_projects(backend: SQLiteBackend) -> None:
    backend.save_project(
        project("existing", name="Old name", status=ProjectStatus.PLANNING, description="d")
    )
    assert (
        backend.ensure_projects(
            [{"id": "existing", "name": "Existing"}, {"id": "new", "organization": "acme"}]
        )
        == 2
    )
    rows = [{"id": "existing", "name": "Existing"}, {"id": "new", "organization": "acme"}]
    assert backend.ensure_projects(rows) == 0
    assert backend.ensure_projects(iter(rows)) == 0
    existing = backend.get_project("existing")
    assert existing is not None
    assert (existing.name, existing.status, existing.description) == (
        "Existing",
        ProjectStatus.PLANNING,
        "d",
    )
    new = backend.get_project("new")
    assert new is not None
    assert (new.name, new.organization, new.status) == ("new", "acme", ProjectStatus.INITIALIZED)


# -- run_transaction ---------------------------------------------------------------------


def test_run_transaction_commit_persists(backend: SQLiteBackend) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    with backend.run_transaction(["proj-a"]) as run:
        assert run.ensure_projects([{"id": "proj-a"}]) == 1
        assert run.bulk_save_artifacts(bulk_row("proj-a", i, base=base) for i in range(10)) == 10
        assert len(list(run.iter_artifact_records(["proj-a"]))) == 10
        checkpoint = Checkpoint(project_id="proj-a", label="run", snapshot={"a": 1})
        run.save_checkpoint(checkpoint, compress=False)
        assert run.list_checkpoints("proj-a") == [checkpoint]
        run.commit()
        with pytest.raises(StorageError, match="already committed"):
            run.bulk_save_artifacts([])
        run.rollback()  # a no-op once finished
    assert len(list(backend.iter_artifact_records(["proj-a"]))) == 10
    assert backend.list_checkpoints("proj-a") == [checkpoint]

    with backend.run_transaction(["proj-a"]) as run:
        assert run.delete_checkpoint(checkpoint.id) is True
        run.commit()
    assert backend.list_checkpoints("proj-a") == []


def test_run_transaction_without_commit_leaves_nothing(backend: SQLiteBackend) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    with backend.run_transaction(["proj-a"]) as run:
        run.ensure_projects([{"id": "proj-a"}])
        run.bulk_save_artifacts(bulk_row("proj-a", i, base=base) for i in range(10))
        # Backend calls from the same thread join the run's transaction.
        backend.save_task(Task(project_id="proj-a", title="inside the run"))
        assert len(backend.list_tasks("proj-a")) == 1
    assert backend.get_project("proj-a") is None
    assert list(backend.iter_artifact_records(["proj-a"])) == []
    assert backend.list_tasks("proj-a") == []

    with backend.run_transaction(["proj-a"]) as run:
        run.ensure_projects([{"id": "proj-a"}])
        run.rollback()
    assert backend.get_project("proj-a") is None

    def crash_mid_run() -> None:
        with backend.run_transaction(["proj-a"]) as run:
            run.ensure_projects([{"id": "proj-a"}])
            raise RuntimeError("gate crashed")

    with pytest.raises(RuntimeError, match="gate crashed"):
        crash_mid_run()
    assert backend.get_project("proj-a") is None
    # The store is usable afterwards: every lock was released.
    backend.save_project(project())


def test_run_transactions_do_not_nest(backend: SQLiteBackend) -> None:
    with backend.run_transaction(["a"]):
        inner = backend.run_transaction(["b"])
        with pytest.raises(StorageError, match="nested"):
            inner.__enter__()


def _two_stores(
    dsn: str, open_backend: Opener, *, holder_timeout: float, waiter_timeout: float
) -> tuple[SQLiteBackend, SQLiteBackend]:
    """A backend holding a run and one waiting for it. An in-memory store exists in one
    backend only: there the waiter is the same backend, used from another thread."""
    if dsn == "sqlite://":
        shared = open_backend(dsn, timeout=waiter_timeout)
        return shared, shared
    return open_backend(dsn, timeout=holder_timeout), open_backend(dsn, timeout=waiter_timeout)


def test_second_run_waits_for_the_first(dsn: str, open_backend: Opener) -> None:
    first, second = _two_stores(dsn, open_backend, holder_timeout=20, waiter_timeout=20)
    events: list[str] = []
    errors: list[BaseException] = []

    def other_run() -> None:
        try:
            with second.run_transaction(["proj-a"]) as run:
                events.append("second entered")
                run.ensure_projects([{"id": "proj-a", "name": "second"}])
                run.commit()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with first.run_transaction(["proj-a"]) as run:
        run.ensure_projects([{"id": "proj-a", "name": "first"}])
        thread = threading.Thread(target=other_run)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive(), "the second run did not wait for the first"
        events.append("first committed")
        run.commit()
    thread.join(20)
    assert not thread.is_alive() and errors == []
    assert events == ["first committed", "second entered"]
    stored = first.get_project("proj-a")
    assert stored is not None and stored.name == "second"


def test_waiting_run_gives_up_after_the_timeout(dsn: str, open_backend: Opener) -> None:
    holder, waiter = _two_stores(dsn, open_backend, holder_timeout=20, waiter_timeout=0.2)
    outcome: list[BaseException | float] = []

    def blocked_run() -> None:
        started = time.monotonic()
        try:
            with waiter.run_transaction(["proj-a"]):
                pass
        except StorageError as exc:
            outcome.extend([exc, time.monotonic() - started])

    with holder.run_transaction(["proj-a"]) as run:
        run.ensure_projects([{"id": "proj-a"}])
        thread = threading.Thread(target=blocked_run)
        thread.start()
        thread.join(15)
        run.commit()
    assert not thread.is_alive()
    error, elapsed = outcome
    assert "is locked by another run for more than 0.2 s" in str(error)
    assert isinstance(elapsed, float) and elapsed < 5


@pytest.mark.postgres
def test_runs_on_other_projects_do_not_wait(postgres_schema_dsn: str, open_backend: Opener) -> None:
    # PostgreSQL locks projects; SQLite can only lock the whole file.
    holder = open_backend(postgres_schema_dsn)
    other = open_backend(postgres_schema_dsn, timeout=0.5)
    with holder.run_transaction(["proj-a"]), other.run_transaction(["proj-b"]) as run:
        run.ensure_projects([{"id": "proj-b"}])
        run.commit()
    assert other.get_project("proj-b") is not None


HOLDER = textwrap.dedent(
    """
    import sys
    from metaqore.storage.backends.sqlite import SQLiteBackend

    backend = SQLiteBackend(sys.argv[1])
    with backend.run_transaction(["proj-a"]) as run:
        run.ensure_projects([{"id": "proj-a", "name": "from the other process"}])
        print("locked", flush=True)
        sys.stdin.read()
        run.commit()
    backend.close()
    """
)


def test_run_in_another_process_blocks_this_one(tmp_path: Path, open_backend: Opener) -> None:
    dsn = f"sqlite:///{tmp_path / 'shared.db'}"
    open_backend(dsn).close()
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER, dsn],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    ) as child:
        try:
            assert child.stdout is not None and child.stdin is not None
            assert child.stdout.readline().strip() == "locked"
            waiter = open_backend(dsn, timeout=0.2)
            attempt = waiter.run_transaction(["proj-a"])
            with pytest.raises(StorageError, match="locked by another run"):
                attempt.__enter__()
            child.stdin.close()
            assert child.wait(timeout=30) == 0
        finally:
            if child.poll() is None:
                child.kill()
    with open_backend(dsn, timeout=5).run_transaction(["proj-a"]) as run:
        run.commit()
    stored = open_backend(dsn).get_project("proj-a")
    assert stored is not None and stored.name == "from the other process"


def test_iterating_records_while_writing_from_the_same_thread(backend: SQLiteBackend) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    backend.ensure_projects([{"id": "proj-a"}])
    backend.bulk_save_artifacts(bulk_row("proj-a", i, base=base) for i in range(20))
    seen = 0
    iterator: Iterator[StoredRecord] = backend.iter_artifact_records(["proj-a"])
    for _record in iterator:
        seen += 1
        if seen == 1:
            backend.save_task(Task(project_id="proj-a", title="written mid-stream"))
    assert seen == 20
    assert len(backend.list_tasks("proj-a")) == 1
