"""StateManager over a real store: projects, artifacts, tasks, conflicts, checkpoints, and
create_artifact through the real SecureGateway and PSMPEngine."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from metaqore.config import MetaQoreConfig
from metaqore.core.audit import ComplianceAuditor
from metaqore.core.models import (
    Artifact,
    Checkpoint,
    Conflict,
    Project,
    ProjectStatus,
    ResolutionStrategy,
    Task,
    TaskStatus,
)
from metaqore.core.psmp import PSMPEngine
from metaqore.core.security import SecureGateway
from metaqore.core.state_manager import StateManager
from metaqore.exceptions import (
    ConfigurationError,
    ConflictDetectedError,
    InvalidTransitionError,
    MetaQoreError,
    NotFoundError,
    StorageError,
    VetoAppliedError,
)
from metaqore.storage import schema
from metaqore.storage.backends.sqlite import SQLiteBackend

Clock = Callable[[], datetime]


@pytest.fixture
def manager(backend: SQLiteBackend) -> StateManager:
    return StateManager(backend)


def plan(artifact_id: str, *, version: int = 1, **fields: Any) -> Artifact:
    return Artifact(
        id=artifact_id,
        project_id=fields.pop("project_id", "proj"),
        artifact_type=fields.pop("artifact_type", "plan"),
        created_by=fields.pop("created_by", "planner"),
        version=version,
        data=fields.pop("data", {"id": artifact_id}),
        **fields,
    )


def stored_checkpoint_bytes(backend: SQLiteBackend, checkpoint_id: str) -> bytes:
    with backend.engine.connect() as connection:
        raw = connection.execute(
            sa.select(schema.checkpoints.c.snapshot).where(schema.checkpoints.c.id == checkpoint_id)
        ).scalar_one()
    return bytes(raw)


# -- projects ------------------------------------------------------------------------


def test_create_and_get_project_with_artifacts_and_tasks(
    manager: StateManager, clock: Clock
) -> None:
    project = Project(id="proj", name="Checkout", organization="acme")
    project.add_artifact(plan("b", version=2, created_at=clock()))
    project.add_artifact(plan("a", version=1, created_at=clock()))
    project.add_task(Task(id="t2", project_id="proj", title="second", created_at=clock()))
    assert manager.create_project(project) is project

    loaded = manager.get_project("proj")
    assert loaded is not None
    assert [a.id for a in loaded.artifacts] == ["a", "b"]  # by version
    assert [t.id for t in loaded.tasks] == ["t2"]
    assert loaded.model_dump(exclude={"artifacts"}) == project.model_dump(exclude={"artifacts"})
    assert manager.get_project("missing") is None

    with pytest.raises(StorageError, match="already exists"):
        manager.create_project(Project(id="proj", name="again"))


def test_create_project_from_fields_and_list(manager: StateManager) -> None:
    first = manager.create_project(name="First")
    second = manager.create_project(Project(name="Second"))
    assert first.id.startswith("proj_")
    assert [p.id for p in manager.list_projects()] == [first.id, second.id]
    with pytest.raises(TypeError):
        manager.create_project(Project(name="x"), name="y")


def test_create_project_refuses_foreign_artifacts(manager: StateManager) -> None:
    project = Project(id="proj", name="p")
    project.add_artifact(plan("a", project_id="other"))
    with pytest.raises(MetaQoreError, match="belongs to project 'other'"):
        manager.create_project(project)
    assert manager.get_project("proj") is None


def test_update_project(manager: StateManager) -> None:
    created = manager.create_project(Project(id="proj", name="Old"))
    updated = manager.update_project(
        "proj", {"name": "New", "status": "planning", "metadata": {"k": 1}}
    )
    assert (updated.name, updated.status, updated.metadata) == (
        "New",
        ProjectStatus.PLANNING,
        {"k": 1},
    )
    assert updated.updated_at > created.updated_at
    assert manager.get_project("proj") == updated

    # Staying in the same status is no transition, and allowed.
    assert manager.update_project("proj", {"status": ProjectStatus.PLANNING}).name == "New"


@pytest.mark.parametrize(
    ("updates", "error", "message"),
    [
        ({"status": "completed"}, InvalidTransitionError, "planning -> completed"),
        ({"name": "x", "staus": "blocked"}, MetaQoreError, "did you mean 'status'"),
        ({"id": "other"}, MetaQoreError, "cannot be updated"),
        ({"artifacts": []}, MetaQoreError, "cannot be updated"),
        ({"name": None}, ValueError, "name"),
    ],
)
def test_update_project_refuses(
    manager: StateManager, updates: dict[str, Any], error: type[Exception], message: str
) -> None:
    manager.create_project(Project(id="proj", name="Kept"))
    manager.update_project("proj", {"status": "planning"})
    before = manager.get_project("proj")
    with pytest.raises(error, match=message):
        manager.update_project("proj", updates)
    assert manager.get_project("proj") == before


def test_update_missing_project(manager: StateManager) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        manager.update_project("missing", {"name": "x"})


def test_delete_project_cascades(manager: StateManager) -> None:
    manager.create_project(Project(id="proj", name="p"))
    manager.save_artifact(plan("a"))
    manager.save_task(Task(project_id="proj", title="t"))
    manager.save_conflicts([Conflict(artifact_id="a", project_id="proj", description="c")])
    manager.create_checkpoint("proj", "c")
    assert manager.delete_project("proj") is True
    assert manager.get_project("proj") is None
    assert manager.list_artifacts("proj") == []
    assert manager.get_tasks("proj") == []
    assert manager.list_conflicts("proj") == []
    assert manager.get_checkpoints("proj") == []


# -- artifacts, tasks, conflicts -------------------------------------------------------


def test_artifacts_tasks_and_conflicts(manager: StateManager, clock: Clock) -> None:
    manager.create_project(Project(id="proj", name="p"))
    v2 = plan("a", version=2, created_at=clock())
    v1 = plan("a", version=1, created_at=clock())
    code = plan("c", version=1, artifact_type="code", created_at=clock())
    for item in (v2, v1, code):
        assert manager.save_artifact(item) is item
    assert manager.list_artifacts("proj") == [v1, code, v2]
    assert manager.get_artifacts("proj") == manager.list_artifacts("proj")
    assert manager.get_artifact("a") == v2
    assert manager.get_artifact("a", version=1) == v1
    assert manager.delete_artifact("c") == 1

    later = Task(id="t2", project_id="proj", title="later", created_at=clock())
    first = Task(id="t1", project_id="proj", title="first", created_at=datetime(2020, 1, 1))
    manager.save_task(later)
    manager.save_task(first)
    assert manager.get_tasks("proj") == manager.list_tasks("proj") == [first, later]
    first.transition(TaskStatus.IN_PROGRESS)
    manager.save_task(first)
    reloaded = manager.get_task("t1")
    assert reloaded is not None and reloaded.status is TaskStatus.IN_PROGRESS
    assert manager.delete_task("t1") is True

    conflict = Conflict(artifact_id="a", project_id="proj", description="c", created_at=clock())
    manager.save_conflicts([conflict])
    conflict.mark_resolved(ResolutionStrategy.ESCALATE)
    manager.update_conflict(conflict)
    assert manager.list_conflicts("proj") == [conflict]
    assert manager.get_conflict(conflict.id) == conflict
    blocked = manager.get_artifact("a")
    assert blocked is not None and blocked.blocked_by == [conflict]


# -- checkpoints -----------------------------------------------------------------------


def populated(manager: StateManager, clock: Clock) -> None:
    project = Project(id="proj", name="Checkout", metadata={"team": "payments"})
    manager.create_project(project)
    blocked = plan("api", version=1, created_at=clock(), metadata={"sensitivity": "internal"})
    blocked.add_conflict(Conflict(artifact_id="api", description="cycle", created_at=clock()))
    manager.save_artifact(blocked)
    manager.save_artifact(plan("api", version=2, created_at=clock()))
    manager.save_task(Task(id="t1", project_id="proj", title="Design", created_at=clock()))


def test_checkpoint_snapshot_validates_back(manager: StateManager, clock: Clock) -> None:
    populated(manager, clock)
    checkpoint = manager.create_checkpoint("proj", "before release")
    assert checkpoint.label == "before release"
    assert set(checkpoint.snapshot) == {"project", "artifacts", "tasks", "conflicts"}
    for entry in checkpoint.snapshot["artifacts"]:
        assert "is_blocked" not in entry and "content_hash" not in entry
        Artifact.model_validate(entry)
    assert Project.model_validate(checkpoint.snapshot["project"]).name == "Checkout"
    assert [Task.model_validate(t).id for t in checkpoint.snapshot["tasks"]] == ["t1"]
    assert len(checkpoint.snapshot["conflicts"]) == 1
    # What is stored reads back identical, as plain JSON data.
    [loaded] = manager.get_checkpoints("proj")
    assert loaded == checkpoint
    assert json.loads(json.dumps(loaded.snapshot)) == loaded.snapshot
    assert manager.get_checkpoint(checkpoint.id) == checkpoint

    with pytest.raises(NotFoundError, match="not found"):
        manager.create_checkpoint("missing", "x")


@pytest.mark.parametrize("compress", [True, False])
def test_checkpoint_compression(backend: SQLiteBackend, clock: Clock, compress: bool) -> None:
    manager = StateManager(backend, compress_checkpoints=compress)
    populated(manager, clock)
    checkpoint = manager.create_checkpoint("proj", "c")
    raw = stored_checkpoint_bytes(backend, checkpoint.id)
    if compress:
        assert raw[:2] == b"\x1f\x8b"
        assert json.loads(gzip.decompress(raw)) == checkpoint.snapshot
    else:
        assert json.loads(raw) == checkpoint.snapshot
    assert manager.get_checkpoints("proj") == [checkpoint]


def test_toggling_compression_between_checkpoints(backend: SQLiteBackend, clock: Clock) -> None:
    populated(StateManager(backend), clock)
    packed = StateManager(backend, compress_checkpoints=True).create_checkpoint("proj", "gz")
    plain = StateManager(backend, compress_checkpoints=False).create_checkpoint("proj", "json")
    assert stored_checkpoint_bytes(backend, packed.id)[:2] == b"\x1f\x8b"
    assert stored_checkpoint_bytes(backend, plain.id)[:1] == b"{"
    for reader in (StateManager(backend), StateManager(backend, compress_checkpoints=False)):
        assert reader.get_checkpoints("proj") == [packed, plain]


def test_retention_keeps_the_newest(backend: SQLiteBackend, clock: Clock) -> None:
    manager = StateManager(backend, checkpoint_retention=2)
    populated(manager, clock)
    for label in ("one", "two", "three", "four"):
        manager.create_checkpoint("proj", label)
    assert [c.label for c in manager.get_checkpoints("proj")] == ["three", "four"]

    keep_all = StateManager(backend, checkpoint_retention=0)
    for label in ("five", "six", "seven"):
        keep_all.create_checkpoint("proj", label)
    assert [c.label for c in keep_all.get_checkpoints("proj")] == [
        "three",
        "four",
        "five",
        "six",
        "seven",
    ]


@pytest.mark.parametrize("retention", [-1, 1.5, "3"])
def test_retention_must_be_a_count(backend: SQLiteBackend, retention: Any) -> None:
    with pytest.raises(ConfigurationError, match="checkpoint_retention"):
        StateManager(backend, checkpoint_retention=retention)


def test_restore_checkpoint(manager: StateManager, clock: Clock) -> None:
    populated(manager, clock)
    checkpoint = manager.create_checkpoint("proj", "good")
    before = manager.get_project("proj")

    # Change everything the snapshot covers.
    manager.update_project("proj", {"name": "Renamed", "status": "planning"})
    manager.save_artifact(plan("api", version=3, created_at=clock()))
    manager.save_artifact(plan("new", version=1, artifact_type="code", created_at=clock()))
    manager.delete_artifact("api", project_id="proj")
    manager.save_conflicts(
        [Conflict(artifact_id="new", project_id="proj", description="x", created_at=clock())]
    )
    task = manager.get_task("t1")
    assert task is not None
    task.transition(TaskStatus.IN_PROGRESS)
    manager.save_task(task)
    manager.save_task(Task(id="t2", project_id="proj", title="extra", created_at=clock()))
    changed = manager.get_project("proj")
    changed_conflicts = manager.list_conflicts("proj")

    restored = manager.restore_checkpoint(checkpoint.id)

    # The restored project equals the snapshot, and equals the project as it was.
    assert restored == before
    assert (
        restored.model_dump(mode="json", exclude={"artifacts", "tasks"})
        == (checkpoint.snapshot["project"])
    )
    assert [
        a.model_dump(mode="json", exclude={"is_blocked", "content_hash"})
        for a in restored.artifacts
    ] == checkpoint.snapshot["artifacts"]
    assert [t.model_dump(mode="json") for t in restored.tasks] == checkpoint.snapshot["tasks"]
    assert [c.model_dump(mode="json") for c in manager.list_conflicts("proj")] == (
        checkpoint.snapshot["conflicts"]
    )
    assert manager.get_project("proj") == restored

    # An auto-backup of the state before the restore was written first; the checkpoint
    # list is kept.
    checkpoints = manager.get_checkpoints("proj")
    assert checkpoints[0].id == checkpoint.id
    backup = checkpoints[1]
    assert re.fullmatch(r"auto-backup-\d{8}T\d{12}Z", backup.label)
    assert Project.model_validate(backup.snapshot["project"]).name == "Renamed"
    assert changed is not None
    assert [a["id"] for a in backup.snapshot["artifacts"]] == [a.id for a in changed.artifacts]
    assert [Conflict.model_validate(c) for c in backup.snapshot["conflicts"]] == (changed_conflicts)

    # Restoring the backup undoes the restore.
    undone = manager.restore_checkpoint(backup.id)
    assert undone == changed


def test_restore_of_an_unreadable_snapshot_changes_nothing(
    manager: StateManager, backend: SQLiteBackend, clock: Clock
) -> None:
    populated(manager, clock)
    before = manager.get_project("proj")
    broken = Checkpoint(project_id="proj", label="broken", snapshot={"artifacts": []})
    backend.save_checkpoint(broken)
    with pytest.raises(StorageError, match="unreadable snapshot"):
        manager.restore_checkpoint(broken.id)
    assert manager.get_project("proj") == before
    assert [c.label for c in manager.get_checkpoints("proj")] == ["broken"]  # no backup
    with pytest.raises(NotFoundError, match="not found"):
        manager.restore_checkpoint("chk_missing")


def test_restore_keeps_content_less_artifacts(
    manager: StateManager, backend: SQLiteBackend
) -> None:
    backend.ensure_projects([{"id": "proj"}])
    stated = "sha256:" + "cd" * 32
    backend.bulk_save_artifacts(
        [
            {
                "project_id": "proj",
                "id": "hash-only",
                "version": 1,
                "artifact_type": "plan",
                "iteration": None,
                "created_by": "gate",
                "created_at": datetime(2026, 1, 1, tzinfo=UTC),
                "content_hash": stated,
                "depends_on": [],
                "data_json": None,
                "metadata": {},
                "provenance": [],
                "sensitivity": "sensitive",
            }
        ]
    )
    checkpoint = manager.create_checkpoint("proj", "c")
    manager.restore_checkpoint(checkpoint.id)
    [record] = backend.iter_artifact_records(["proj"])
    assert (record.content_hash, record.sensitivity) == (stated, "sensitive")


# -- create_artifact through SecureGateway and PSMP ----------------------------------------


@pytest.fixture
def auditor(tmp_path: Path) -> Iterator[ComplianceAuditor]:
    with ComplianceAuditor(organization="acme", log_dir=tmp_path / "audit") as auditor:
        yield auditor


@pytest.fixture
def governed(backend: SQLiteBackend, auditor: ComplianceAuditor) -> StateManager:
    config = MetaQoreConfig()
    manager = StateManager(
        backend, secure_gateway=SecureGateway(auditor=auditor, organization="acme", config=config)
    )
    PSMPEngine(manager, config=config)  # attaches itself
    manager.create_project(Project(id="proj", name="Checkout"))
    return manager


def test_attach_engine_and_gateway(backend: SQLiteBackend, auditor: ComplianceAuditor) -> None:
    manager = StateManager(backend)
    manager.create_project(Project(id="proj", name="p"))
    engine = PSMPEngine(manager)
    gateway = SecureGateway(auditor=auditor, policy="compliance_local_only")
    manager.attach_psmp_engine(engine)
    manager.attach_secure_gateway(gateway)
    assert (manager.psmp_engine, manager.secure_gateway) == (engine, gateway)
    with pytest.raises(VetoAppliedError, match="openrouter"):
        manager.create_artifact(plan("a", metadata={"llm_provider": "openrouter"}))
    assert manager.create_artifact(plan("a", metadata={"llm_provider": "ollama"})).id == "a"
    assert [a.id for a in manager.list_artifacts("proj")] == ["a"]


def test_create_artifact_needs_a_psmp_engine(manager: StateManager) -> None:
    manager.create_project(Project(id="proj", name="p"))
    with pytest.raises(ConfigurationError, match="attach_psmp_engine"):
        manager.create_artifact(plan("a"))
    assert manager.list_artifacts("proj") == []


def test_create_artifact_stores_a_clean_artifact(governed: StateManager) -> None:
    created = governed.create_artifact(
        plan(
            "api",
            artifact_type="code",
            created_by="coder",
            metadata={"llm_provider": "openrouter"},
        )
    )
    stored = governed.get_artifact("api")
    assert stored == created
    assert stored is not None and stored.metadata["sensitivity"] == "public"
    assert governed.backend.get_sensitivities(["api"], project_id="proj") == {"api": "public"}

    # A planning task is internal (SPEC 4): the task type defaults to <type>_creation.
    planned = governed.create_artifact(plan("roadmap", metadata={"llm_provider": "openrouter"}))
    assert planned.metadata["sensitivity"] == "internal"


def test_vetoed_artifact_is_not_stored(governed: StateManager, auditor: ComplianceAuditor) -> None:
    secret = plan(
        "keys",
        metadata={"llm_provider": "openrouter", "has_sensitive_data": True},
    )
    with pytest.raises(VetoAppliedError) as caught:
        governed.create_artifact(secret)
    assert caught.value.veto.reason == "Provider 'openrouter' disallowed for sensitive tasks"
    assert caught.value.context["artifact_id"] == "keys"
    assert governed.list_artifacts("proj") == []
    assert governed.list_conflicts("proj") == []
    assert "sensitivity" not in secret.metadata


def test_upstream_sensitivity_reaches_the_gateway(governed: StateManager) -> None:
    governed.create_artifact(
        plan("secrets", metadata={"llm_provider": "ollama", "is_security_task": True})
    )
    assert governed.backend.get_sensitivities(["secrets"], project_id="proj") == {
        "secrets": "sensitive"
    }
    # A public task built from a sensitive input is sensitive: the cloud is vetoed...
    summary = plan(
        "summary",
        artifact_type="doc",
        depends_on=["secrets"],
        metadata={"llm_provider": "openrouter"},
    )
    with pytest.raises(VetoAppliedError, match="disallowed for sensitive tasks"):
        governed.create_artifact(summary)
    assert governed.get_artifact("summary") is None
    # ...a local provider is fine, and the taint is recorded for the next artifacts.
    summary.metadata = {"llm_provider": "ollama"}
    governed.create_artifact(summary)
    assert governed.backend.get_sensitivities(["summary"], project_id="proj") == {
        "summary": "sensitive"
    }


def test_without_an_attached_gateway_the_upstream_sensitivity_is_still_recorded(
    backend: SQLiteBackend,
) -> None:
    manager = StateManager(backend)
    PSMPEngine(manager)
    manager.create_project(Project(id="proj", name="p"))
    manager.create_artifact(plan("root", metadata={"sensitivity": "critical"}))
    child = manager.create_artifact(
        plan(
            "child", artifact_type="code", depends_on=["root"], metadata={"llm_provider": "ollama"}
        )
    )
    assert child.metadata["sensitivity"] == "critical"


def test_conflicting_artifact_is_not_stored(governed: StateManager) -> None:
    governed.create_artifact(plan("v1", version=1, metadata={"llm_provider": "ollama"}))
    skipped = plan("v3", version=3, metadata={"llm_provider": "ollama"})
    with pytest.raises(ConflictDetectedError) as caught:
        governed.create_artifact(skipped)
    assert [c.conflict_type for c in caught.value.conflicts] == ["version_mismatch"]
    assert [a.id for a in governed.list_artifacts("proj")] == ["v1"]
    assert governed.list_conflicts("proj") == []
    assert skipped.is_blocked


def test_missing_dependency_is_a_conflict(governed: StateManager) -> None:
    orphan = plan("orphan", depends_on=["nowhere"], metadata={"llm_provider": "ollama"})
    with pytest.raises(ConflictDetectedError, match="nowhere"):
        governed.create_artifact(orphan)
    assert governed.list_artifacts("proj") == []
