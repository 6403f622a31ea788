"""Schema version 2: a real version-1 store (built by the version-1 DDL) is migrated in place
on SQLite and PostgreSQL; concurrent openers migrate it once."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from store_v1 import (
    GATE_PROVENANCE,
    HASH_ONLY,
    PLAN_DATA,
    SIGNED_DATA,
    WHEN,
    create_v1_store,
    table_names,
)

from metaqore.core.models import Artifact
from metaqore.core.state_manager import StateManager
from metaqore.exceptions import StorageError
from metaqore.storage import schema
from metaqore.storage.backend import STORED_CONTENT_HASH_KEY
from metaqore.storage.backends.sqlite import SQLiteBackend

Opener = Callable[..., SQLiteBackend]


def test_the_current_schema_is_version_2_with_a_step_from_1() -> None:
    assert schema.SCHEMA_VERSION == 2
    assert [(step.from_version, step.to_version) for step in schema.MIGRATIONS] == [(1, 2)]


def test_version_1_store_is_migrated_to_version_2(
    persistent_dsn: str, open_backend: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    old_snapshot = create_v1_store(persistent_dsn)
    assert "runs" not in table_names(persistent_dsn)

    backend = open_backend(persistent_dsn)
    assert backend.opened_at_version == 1
    [warning] = [r.getMessage() for r in caplog.records if r.name == "metaqore.storage"]
    assert warning == (
        f"upgraded store {backend.safe_dsn} from schema version 1 to 2; older MetaQore "
        "versions can no longer open it"
    )
    assert "runs" in table_names(persistent_dsn)
    with backend.engine.connect() as connection:
        assert schema.read_schema_version(connection) == 2
        columns = {c["name"] for c in sa.inspect(connection).get_columns("checkpoints")}
    assert {"artifact_count", "task_count"} <= columns

    # Every version-1 row reads back as it was written.
    project = StateManager(backend).get_project("shop")
    assert project is not None and (project.name, project.organization) == ("Shop", "acme")
    by_id = {artifact.id: artifact for artifact in project.artifacts}
    assert by_id["plan"].data == PLAN_DATA
    assert by_id["plan"].metadata == {
        "line": 3,
        "source": "plan.metaqore.yaml",
        "sensitivity": "internal",
    }
    assert by_id["digest"].data == {}
    assert by_id["digest"].metadata[STORED_CONTENT_HASH_KEY] == HASH_ONLY
    assert [t.id for t in project.tasks] == ["t-1"]

    # The version-1 gate's provenance entries were completed: the artifact loads.
    scan = by_id["scan"]
    assert scan.data == SIGNED_DATA
    [entry] = scan.provenance
    assert (entry.actor, entry.action, entry.key_id, entry.signature) == (
        GATE_PROVENANCE["actor"],
        GATE_PROVENANCE["action"],
        GATE_PROVENANCE["key_id"],
        GATE_PROVENANCE["signature"],
    )
    assert entry.artifact_id == "scan" and entry.created_at == WHEN
    assert entry.id == schema.provenance_id("shop", "scan", 1, 0)

    # The old checkpoints got their counts (an unreadable one keeps them unknown).
    infos = {info.label: info for info in backend.list_checkpoint_info("shop")}
    assert (infos["v1 release"].artifacts, infos["v1 release"].tasks) == (1, 1)
    assert (infos["damaged"].artifacts, infos["damaged"].tasks) == (None, None)
    old = backend.get_checkpoint(infos["v1 release"].id)
    assert old is not None and old.snapshot == old_snapshot

    # The migrated store works as a version-2 store: checkpoints and runs.
    info = backend.checkpoint_project("shop", "after migration")
    assert (info.artifacts, info.tasks) == (3, 1)
    checkpoint = backend.get_checkpoint(info.id)
    assert checkpoint is not None
    assert [Artifact.model_validate(a).id for a in checkpoint.snapshot["artifacts"]] == [
        "digest",
        "plan",
        "scan",
    ]
    assert backend.list_runs("shop") == []

    # Opening it again finds it current, and says nothing.
    caplog.clear()
    again = open_backend(persistent_dsn)
    assert again.opened_at_version == 2
    assert not [r for r in caplog.records if r.name == "metaqore.storage"]


def test_concurrent_openers_migrate_once(persistent_dsn: str, open_backend: Opener) -> None:
    create_v1_store(persistent_dsn)
    found: list[int | None] = []
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def opener() -> None:
        try:
            start.wait()
            found.append(open_backend(persistent_dsn, timeout=20).opened_at_version)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    # Exactly one of them found version 1 and migrated; the others found version 2.
    assert sorted(found, key=lambda v: v or 0) == [1, 2, 2]
    infos = open_backend(persistent_dsn).list_checkpoint_info("shop")
    assert [i.artifacts for i in infos] == [1, None]


def test_newer_store_is_refused_by_name(persistent_dsn: str, open_backend: Opener) -> None:
    open_backend(persistent_dsn).close()
    engine = sa.create_engine(persistent_dsn)
    with engine.begin() as connection:
        schema.write_schema_version(connection, schema.SCHEMA_VERSION + 1)
    engine.dispose()
    with pytest.raises(StorageError) as caught:
        SQLiteBackend(persistent_dsn)
    message = str(caught.value)
    assert message.startswith("cannot open store ")
    assert (
        f"store schema version {schema.SCHEMA_VERSION + 1} is newer than this MetaQore "
        f"supports ({schema.SCHEMA_VERSION}); upgrade metaqore"
    ) in message


def test_the_gate_migrates_a_version_1_store_and_judges_against_its_history(
    persistent_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from metaqore.cli import main

    create_v1_store(persistent_dsn)
    manifest = {
        "metaqore": 1,
        "project": {"id": "shop", "name": "Shop", "organization": "acme"},
        "run": {"id": "run-2", "iteration": 2},
        "artifacts": [
            # Version 2 of the stored plan, built on the stored scan.
            {"id": "plan-2", "type": "plan", "created_by": "planner", "depends_on": ["scan"]}
        ],
    }
    (tmp_path / "m.metaqore.json").write_text(json.dumps(manifest), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("METAQORE_")]:
        monkeypatch.delenv(key)
    code = main(["check", "m.metaqore.json", "--db", persistent_dsn, "--no-github", "-q"])
    assert code == 0, capsys.readouterr()
    backend = SQLiteBackend(persistent_dsn)
    try:
        versions = {(r.id, r.version) for r in backend.iter_artifact_records(["shop"])}
        assert ("plan", 1) in versions and ("plan-2", 2) in versions
        [run] = backend.list_runs("shop")
        assert run.artifacts == 1
    finally:
        backend.close()
