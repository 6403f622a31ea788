"""Bulk snapshots, checkpoints with retention, the runs table, project locks and isolation,
on in-memory SQLite, a SQLite file and PostgreSQL."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from metaqore.core.canonical import canonical_bytes, canonical_json, content_hash
from metaqore.core.models import Artifact, Conflict, Project, Provenance, Task
from metaqore.core.state_manager import StateManager
from metaqore.exceptions import NotFoundError, StorageError
from metaqore.storage import schema
from metaqore.storage.backend import RunRecord
from metaqore.storage.backends.sqlite import SQLiteBackend

Opener = Callable[..., SQLiteBackend]
Clock = Callable[[], datetime]


def gate_row(index: int, **overrides: Any) -> dict[str, Any]:
    """A bulk row as the gate writes it."""
    data = {"n": index}
    row: dict[str, Any] = {
        "project_id": "proj",
        "id": f"art-{index:05d}",
        "version": 1 + index // 3,
        "artifact_type": ("plan", "code", "config")[index % 3],
        "iteration": index % 4 or None,
        "created_by": f"agent-{index % 5}",
        "created_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=7 * index),
        "content_hash": content_hash(data),
        "depends_on": [f"art-{index - 1:05d}"] if index else [],
        "data_json": canonical_json(data),
        "metadata": {"line": index, "source": "m.metaqore.yaml", "sensitivity": "internal"},
        "provenance": [],
        "sensitivity": "internal",
    }
    row.update(overrides)
    return row


def reference_snapshot(backend: SQLiteBackend, project_id: str) -> dict[str, Any]:
    """The snapshot as the models would dump it, one model per row."""
    project = backend.get_project(project_id)
    assert project is not None
    return {
        "project": project.model_dump(mode="json", exclude={"artifacts", "tasks"}),
        "artifacts": [
            a.model_dump(mode="json", exclude={"is_blocked", "content_hash"})
            for a in backend.list_artifacts(project_id)
        ],
        "tasks": [t.model_dump(mode="json") for t in backend.list_tasks(project_id)],
        "conflicts": [c.model_dump(mode="json") for c in backend.list_conflicts(project_id)],
    }


def populate(backend: SQLiteBackend, clock: Clock) -> None:
    backend.save_project(Project(id="proj", name="Checkout", metadata={"team": "payments"}))
    blocked = Artifact(
        id="api",
        project_id="proj",
        artifact_type="plan",
        created_by="planner",
        created_at=clock(),
        data={"title": 'Ünïcode "quoted" \\ text', "nested": {"b": [1, 2.5, None]}},
        metadata={"sensitivity": "Internal", "z": 1, "a": {"k": "v"}},
        depends_on=["requirements"],
    )
    blocked.add_conflict(Conflict(artifact_id="api", description="cycle", created_at=clock()))
    blocked.add_provenance(
        Provenance(artifact_id="api", actor="planner", action="created", created_at=clock())
    )
    backend.save_artifact(blocked)
    backend.save_artifact(
        Artifact(
            id="api",
            project_id="proj",
            artifact_type="plan",
            version=2,
            iteration=3,
            created_by="planner",
            created_at=clock().replace(microsecond=0),
        )
    )
    backend.bulk_save_artifacts(
        [
            # Only the hash is known; the column's sensitivity is not in the metadata.
            gate_row(1, id="hash-only", data_json=None, metadata={}, sensitivity="critical"),
            gate_row(2, sensitivity=None, metadata={"line": 2}),
            gate_row(
                4,
                provenance=[
                    {
                        "id": "prov_000000000001",
                        "artifact_id": "art-00004",
                        "actor": "scanner",
                        "action": "created",
                        "reason": None,
                        "signature": "ed25519:c2ln",
                        "key_id": "k",
                        "created_at": "2026-01-01T00:00:00Z",
                        "metadata": {},
                    }
                ],
            ),
        ]
    )
    backend.save_task(Task(id="t1", project_id="proj", title="Design", created_at=clock()))
    backend.save_conflicts(
        [Conflict(artifact_id="art-00002", project_id="proj", description="x", created_at=clock())]
    )


# -- snapshots -------------------------------------------------------------------------


def test_bulk_snapshot_is_the_canonical_json_of_the_model_dumps(
    backend: SQLiteBackend, clock: Clock
) -> None:
    populate(backend, clock)
    expected = reference_snapshot(backend, "proj")
    raw = backend.project_snapshot("proj")
    assert raw is not None
    assert json.loads(raw) == expected
    assert raw == canonical_bytes(expected)
    assert backend.project_snapshot("missing") is None
    # And through the StateManager.
    assert StateManager(backend).snapshot("proj") == expected


def test_snapshot_builds_no_model_per_artifact(
    backend: SQLiteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend.ensure_projects([{"id": "proj"}])
    backend.bulk_save_artifacts(gate_row(i) for i in range(3_000))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an Artifact model was built")

    monkeypatch.setattr(Artifact, "model_validate", classmethod(refuse))
    monkeypatch.setattr(Artifact, "__init__", refuse)
    info = backend.checkpoint_project("proj", "big")
    assert info.artifacts == 3_000
    monkeypatch.undo()
    checkpoint = backend.get_checkpoint(info.id)
    assert checkpoint is not None
    assert checkpoint.snapshot == reference_snapshot(backend, "proj")


def test_damaged_artifact_row_fails_the_checkpoint(backend: SQLiteBackend) -> None:
    backend.ensure_projects([{"id": "proj"}])
    backend.bulk_save_artifacts([gate_row(0), gate_row(1)])
    with backend.engine.begin() as connection:
        connection.execute(
            sa.update(schema.artifacts)
            .where(schema.artifacts.c.id == "art-00001")
            .values(data='{"n":99}')
        )
    with pytest.raises(StorageError, match=r"damaged artifact row proj/art-00001 v1"):
        backend.checkpoint_project("proj", "c")
    assert backend.list_checkpoint_info("proj") == []


# -- checkpoints -----------------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
def test_checkpoint_project_and_its_info(
    backend: SQLiteBackend, clock: Clock, compress: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(backend, clock)
    info = backend.checkpoint_project("proj", "release-1", compress=compress)
    assert (info.project_id, info.label, info.artifacts, info.tasks) == ("proj", "release-1", 5, 1)
    assert info.compressed is compress
    with backend.engine.connect() as connection:
        stored = bytes(
            connection.execute(
                sa.select(schema.checkpoints.c.snapshot).where(schema.checkpoints.c.id == info.id)
            ).scalar_one()
        )
    assert info.size == len(stored)
    decoded = gzip.decompress(stored) if compress else stored
    assert json.loads(decoded) == reference_snapshot(backend, "proj")

    # Listing reads no snapshot at all.
    monkeypatch.setattr(gzip, "decompress", None)
    monkeypatch.setattr(json, "loads", None)
    [listed] = backend.list_checkpoint_info("proj")
    monkeypatch.undo()
    assert listed == info

    checkpoint = backend.get_checkpoint(info.id)
    assert checkpoint is not None and checkpoint.label == "release-1"
    assert checkpoint.created_at == info.created_at

    with pytest.raises(NotFoundError, match="project 'missing' not found"):
        backend.checkpoint_project("missing", "x")


def test_checkpoint_retention_keeps_the_newest_and_the_protected(
    backend: SQLiteBackend, clock: Clock
) -> None:
    populate(backend, clock)
    made = []
    for label in ("one", "two", "three", "four"):
        made.append(backend.checkpoint_project("proj", label, keep=2))
        time.sleep(0.002)  # distinct timestamps
    assert [i.label for i in backend.list_checkpoint_info("proj")] == ["three", "four"]
    kept = backend.list_checkpoint_info("proj")[0]
    backend.checkpoint_project("proj", "five", keep=1, protect=[kept.id])
    assert [i.label for i in backend.list_checkpoint_info("proj")] == ["three", "five"]
    backend.checkpoint_project("proj", "six", keep=0)
    assert len(backend.list_checkpoint_info("proj")) == 3


def test_save_checkpoint_records_counts(backend: SQLiteBackend, clock: Clock) -> None:
    populate(backend, clock)
    checkpoint = StateManager(backend).create_checkpoint("proj", "model path")
    [info] = backend.list_checkpoint_info("proj")
    assert (info.id, info.artifacts, info.tasks) == (checkpoint.id, 5, 1)


def test_restore_never_deletes_the_checkpoint_it_restores(
    backend: SQLiteBackend, clock: Clock
) -> None:
    populate(backend, clock)
    manager = StateManager(backend, checkpoint_retention=2)
    first = manager.create_checkpoint_info("proj", "first")
    time.sleep(0.002)
    manager.create_checkpoint_info("proj", "second")
    time.sleep(0.002)
    restored = manager.restore_checkpoint_info(first.id)
    assert restored == first
    labels = [i.label for i in manager.list_checkpoint_info("proj")]
    assert labels[:2] == ["first", "second"] and labels[2].startswith("auto-backup-")
    # The next checkpoint applies retention normally again.
    time.sleep(0.002)
    manager.create_checkpoint_info("proj", "third")
    oldest = manager.list_checkpoint_info("proj")[0]
    assert oldest.label.startswith("auto-backup-")


# -- runs ------------------------------------------------------------------------------


def test_runs_round_trip_and_go_with_their_project(backend: SQLiteBackend, clock: Clock) -> None:
    backend.ensure_projects([{"id": "proj"}, {"id": "other"}])
    first = RunRecord("proj", "run-1", "pass", "strict", "1.0.0", 12, "chk_1", clock())
    second = RunRecord("proj", "run-2", "pass", "adaptive", "1.0.0", 0, None, clock())
    backend.record_run(second)
    backend.record_run(first._replace(artifacts=3))
    backend.record_run(first)  # the same run id again replaces it
    backend.record_run(RunRecord("other", "run-1", "pass", "strict", "1.0.0", 1, None, clock()))
    assert backend.list_runs("proj") == [first, second]
    assert StateManager(backend).list_runs("proj") == [first, second]
    assert backend.delete_project("proj") is True
    assert backend.list_runs("proj") == []
    assert len(backend.list_runs("other")) == 1


def test_upsert_projects_names_what_it_changed(backend: SQLiteBackend) -> None:
    assert backend.upsert_projects([{"id": "a", "name": "A"}, {"id": "b"}]) == {"a", "b"}
    assert backend.upsert_projects([{"id": "a", "name": "A"}, {"id": "b"}]) == set()
    assert backend.upsert_projects(
        [{"id": "a", "name": "A2"}, {"id": "b", "organization": "default"}, {"id": "c"}]
    ) == {"a", "c"}
    # A repeated id counts once, the last row wins.
    assert backend.upsert_projects([{"id": "d", "name": "x"}, {"id": "d", "name": "y"}]) == {"d"}
    stored = backend.get_project("d")
    assert stored is not None and stored.name == "y"


def test_bulk_rows_with_a_repeated_key_keep_the_first(backend: SQLiteBackend) -> None:
    """A stored version is never rewritten, not even by a later row of the same batch."""
    backend.ensure_projects([{"id": "proj"}])
    other = {"n": "other"}
    written = backend.bulk_save_artifacts(
        [
            gate_row(0),
            gate_row(0, data_json=canonical_json(other), content_hash=content_hash(other)),
        ]
    )
    assert written == 1
    [record] = backend.iter_artifact_records(["proj"])
    assert record.content_hash == gate_row(0)["content_hash"]


# -- locks and isolation ---------------------------------------------------------------


def _two(dsn: str, open_backend: Opener, *, waiter_timeout: float) -> tuple[SQLiteBackend, ...]:
    if dsn == "sqlite://":
        shared = open_backend(dsn, timeout=waiter_timeout)
        return shared, shared
    return open_backend(dsn, timeout=20), open_backend(dsn, timeout=waiter_timeout)


def test_lock_projects_needs_a_transaction(backend: SQLiteBackend) -> None:
    with pytest.raises(StorageError, match="needs an open transaction"):
        backend.lock_projects(["proj"])


@pytest.mark.parametrize("operation", ["restore", "checkpoint"])
def test_state_manager_waits_for_a_gate_run_on_the_project(
    dsn: str, open_backend: Opener, clock: Clock, operation: str
) -> None:
    holder, waiter = _two(dsn, open_backend, waiter_timeout=0.3)
    populate(holder, clock)
    manager = StateManager(waiter)
    checkpoint = StateManager(holder).create_checkpoint_info("proj", "c")
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            if operation == "restore":
                manager.restore_checkpoint(checkpoint.id)
            else:
                manager.create_checkpoint_info("proj", "while a gate runs")
        except StorageError as exc:
            outcome.append(exc)

    with holder.run_transaction(["proj"]):
        thread = threading.Thread(target=attempt)
        thread.start()
        thread.join(20)
    assert not thread.is_alive()
    [error] = outcome
    assert "locked by another run for more than 0.3 s" in str(error)
    assert [i.label for i in holder.list_checkpoint_info("proj")] == ["c"]


@pytest.mark.postgres
def test_read_committed_whatever_the_server_default(
    postgres_schema_dsn: str, open_backend: Opener
) -> None:
    # A server (or role) defaulting to SERIALIZABLE would let the waiting run keep the
    # snapshot its lock statement took, and miss what the first run committed.
    url = make_url(postgres_schema_dsn)
    options = url.query["options"]
    assert isinstance(options, str)
    strict = url.update_query_dict(
        {"options": options + " -cdefault_transaction_isolation=serializable"}
    ).render_as_string(hide_password=False)
    first, second = open_backend(strict), open_backend(strict)
    first.ensure_projects([{"id": "proj"}])
    seen: list[list[str]] = []

    def waiting_run() -> None:
        with second.run_transaction(["proj"]) as run:
            seen.append([r.id for r in run.iter_artifact_records(["proj"])])

    with first.run_transaction(["proj"]) as run:
        thread = threading.Thread(target=waiting_run)
        thread.start()
        time.sleep(0.3)
        run.bulk_save_artifacts([gate_row(0)])
        run.commit()
    thread.join(20)
    assert seen == [["art-00000"]]


@pytest.mark.postgres
def test_stores_in_different_schemas_do_not_share_locks(
    postgres_schema: Callable[[], str], open_backend: Opener
) -> None:
    one = open_backend(postgres_schema(), timeout=0.3)
    two = open_backend(postgres_schema(), timeout=0.3)
    with one.run_transaction(["proj"]), two.run_transaction(["proj"]) as run:
        run.ensure_projects([{"id": "proj"}])
        run.commit()
    assert two.get_project("proj") is not None
