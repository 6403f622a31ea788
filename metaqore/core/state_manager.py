"""StateManager: projects, artifacts, tasks, conflicts and checkpoints over a storage backend.

It is the engine's model-level front to the store: it fills projects with their artifacts and
tasks, enforces the project status transitions, runs new artifacts through SecureGateway and
PSMP before they are stored (:meth:`StateManager.create_artifact`), and keeps checkpoints
(snapshots of one project) with retention. Operations that touch several rows run in one
backend transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from metaqore.core.models import (
    Artifact,
    Checkpoint,
    Conflict,
    Project,
    ProjectStatus,
    Task,
    TaskSensitivity,
    VetoReason,
    current_utc,
)
from metaqore.exceptions import (
    ConfigurationError,
    MetaQoreError,
    NotFoundError,
    StorageError,
    VetoAppliedError,
)
from metaqore.storage.backend import CheckpointInfo, RunRecord, StorageBackend
from metaqore.validation import suggest

if TYPE_CHECKING:
    from metaqore.config import MetaQoreConfig
    from metaqore.core.psmp import PSMPEngine
    from metaqore.core.security import SecureGateway

#: Fields :meth:`StateManager.update_project` may change; the others are identity,
#: bookkeeping or owned by other methods.
UPDATABLE_PROJECT_FIELDS = frozenset({"name", "description", "organization", "status", "metadata"})

#: Prefix of the checkpoint :meth:`StateManager.restore_checkpoint` writes first.
AUTO_BACKUP_PREFIX = "auto-backup-"

_ROUTING_FLAGS = ("has_private_data", "has_sensitive_data", "is_security_task")
#: Metadata keys that make an artifact carry routing information (SPEC §2).
ROUTING_KEYS = ("llm_provider", "agent_name", "task_type", *_ROUTING_FLAGS)


def _sensitivity_or_none(value: Any) -> TaskSensitivity | None:
    if value is None:
        return None
    try:
        return TaskSensitivity(str(getattr(value, "value", value)).strip().lower())
    except ValueError:
        return None


class StateManager:
    """Model-level access to a :class:`~metaqore.storage.backend.StorageBackend`.

    ``checkpoint_retention`` keeps the newest N checkpoints of a project (0 keeps all);
    ``compress_checkpoints`` chooses how new checkpoints are stored (a storage concern: a
    returned :class:`Checkpoint` always holds a plain dict). ``config`` builds the
    SecureGateway :meth:`create_artifact` uses for an artifact that carries routing
    information when no gateway is attached (default ``MetaQoreConfig()``).
    """

    def __init__(
        self,
        backend: StorageBackend,
        *,
        psmp_engine: PSMPEngine | None = None,
        checkpoint_retention: int = 5,
        compress_checkpoints: bool = True,
        secure_gateway: SecureGateway | None = None,
        config: MetaQoreConfig | None = None,
    ) -> None:
        if type(checkpoint_retention) is not int or checkpoint_retention < 0:
            raise ConfigurationError(
                f"checkpoint_retention must be an integer >= 0 (0 keeps all), "
                f"got {checkpoint_retention!r}"
            )
        self.backend = backend
        self.psmp_engine: PSMPEngine | None = psmp_engine
        self.secure_gateway: SecureGateway | None = secure_gateway
        self.config: MetaQoreConfig | None = config
        # Built on the first artifact with routing information and no attached gateway;
        # kept apart from ``secure_gateway`` so artifacts without routing information
        # stay ungoverned whatever came before them.
        self._default_gateway: SecureGateway | None = None
        self.checkpoint_retention = checkpoint_retention
        self.compress_checkpoints = compress_checkpoints

    def attach_psmp_engine(self, engine: PSMPEngine) -> None:
        """Use ``engine`` to judge artifacts in :meth:`create_artifact`."""
        self.psmp_engine = engine

    def attach_secure_gateway(self, gateway: SecureGateway) -> None:
        """Route and classify artifacts through ``gateway`` in :meth:`create_artifact`."""
        self.secure_gateway = gateway

    # -- projects --------------------------------------------------------------------

    def create_project(self, project: Project | None = None, /, **fields: Any) -> Project:
        """Store a new project (given, or built from ``fields``) with the artifacts and
        tasks it already holds. An existing id is an error."""
        if project is None:
            project = Project(**fields)
        elif fields:
            raise TypeError("create_project takes a Project or its fields, not both")
        owners = [("artifact", a.id, a.project_id) for a in project.artifacts]
        owners += [("task", t.id, t.project_id) for t in project.tasks]
        for kind, item_id, owner in owners:
            if owner != project.id:
                raise MetaQoreError(
                    f"{kind} '{item_id}' belongs to project '{owner}', not '{project.id}'"
                )
        with self.backend.transaction():
            if self.backend.get_project(project.id) is not None:
                raise StorageError(f"project '{project.id}' already exists")
            self.backend.save_project(project)
            for artifact in project.artifacts:
                self.backend.save_artifact(artifact)
            for task in project.tasks:
                self.backend.save_task(task)
        return project

    def get_project(self, project_id: str) -> Project | None:
        """The project with its artifacts (by version) and tasks (by creation time)."""
        with self.backend.transaction(write=False):
            project = self.backend.get_project(project_id)
            if project is None:
                return None
            project.artifacts = self.backend.list_artifacts(project_id)
            project.tasks = self.backend.list_tasks(project_id)
        return project

    def list_projects(self) -> list[Project]:
        """Every project, oldest first, without its artifacts and tasks (use
        :meth:`get_project` for one project in full)."""
        return self.backend.list_projects()

    def update_project(self, project_id: str, updates: Mapping[str, Any]) -> Project:
        """Change ``name``, ``description``, ``organization``, ``status`` or ``metadata``.

        A status change must be allowed by the transition table
        (:class:`~metaqore.exceptions.InvalidTransitionError` otherwise); an unknown or
        read-only field is an error and nothing is changed.
        """
        known = set(Project.model_fields)
        for key in updates:
            if key not in known:
                hint = suggest(str(key), UPDATABLE_PROJECT_FIELDS)
                raise MetaQoreError(
                    f"unknown project field '{key}'"
                    + (f" (did you mean '{hint}'?)" if hint else "")
                )
            if key not in UPDATABLE_PROJECT_FIELDS:
                raise MetaQoreError(
                    f"project field '{key}' cannot be updated (updatable: "
                    + ", ".join(sorted(UPDATABLE_PROJECT_FIELDS))
                    + ")"
                )
        with self.backend.transaction():
            project = self.backend.get_project(project_id)
            if project is None:
                raise NotFoundError(f"project '{project_id}' not found")
            for key, value in updates.items():
                if key == "status":
                    target = ProjectStatus(getattr(value, "value", value))
                    if target is not project.status:
                        project.transition(target)
                else:
                    setattr(project, key, value)
            project.updated_at = current_utc()
            self.backend.save_project(project)
        updated = self.get_project(project_id)
        assert updated is not None  # written just above, in the same transaction
        return updated

    def delete_project(self, project_id: str) -> bool:
        """Delete the project with its artifacts, tasks, conflicts and checkpoints."""
        return self.backend.delete_project(project_id)

    # -- artifacts -------------------------------------------------------------------

    def save_artifact(self, artifact: Artifact) -> Artifact:
        """Store the artifact as is (no governance: see :meth:`create_artifact`)."""
        return self.backend.save_artifact(artifact)

    def get_artifact(
        self, artifact_id: str, *, project_id: str | None = None, version: int | None = None
    ) -> Artifact | None:
        """The highest (or the given) version of an artifact id."""
        return self.backend.get_artifact(artifact_id, project_id=project_id, version=version)

    def list_artifacts(self, project_id: str) -> list[Artifact]:
        """The project's artifacts ordered by version (then creation time)."""
        return self.backend.list_artifacts(project_id)

    def get_artifacts(self, project_id: str) -> list[Artifact]:
        """Alias of :meth:`list_artifacts`."""
        return self.list_artifacts(project_id)

    def delete_artifact(self, artifact_id: str, *, project_id: str | None = None) -> int:
        """Delete every version of an artifact id (and its conflicts)."""
        return self.backend.delete_artifact(artifact_id, project_id=project_id)

    def create_artifact(self, artifact: Artifact) -> Artifact:
        """Govern, judge and store a new artifact.

        When a SecureGateway is attached, or the artifact carries routing information
        (any of :data:`ROUTING_KEYS` in ``metadata``; a gateway built from ``config`` is
        then used when none is attached), the gateway rules first: a provider the policy
        forbids for the effective sensitivity, or a provenance signature that does not
        verify, names an untrusted key or is missing where ``require_signatures`` asks for
        one, raises :class:`~metaqore.exceptions.VetoAppliedError` and nothing is stored.
        The effective sensitivity (declared, classified and the highest of its
        dependencies') is recorded in ``metadata["sensitivity"]``. Then PSMP's
        ``declare_artifact(artifact, persist=True)`` stores it, or raises
        :class:`~metaqore.exceptions.ConflictDetectedError` and nothing is stored.
        """
        engine = self.psmp_engine
        if engine is None:
            raise ConfigurationError(
                "StateManager.create_artifact needs a PSMP engine: attach one with "
                "attach_psmp_engine(PSMPEngine(state_manager)) or pass psmp_engine="
            )
        with self.backend.transaction():
            self._govern(artifact)
            return engine.declare_artifact(artifact, persist=True)

    def upstream_sensitivity(self, artifact: Artifact) -> TaskSensitivity | None:
        """The highest stored sensitivity among the artifacts ``artifact`` depends on.

        Stored sensitivities are already effective (they include their own inputs'), so the
        direct dependencies are enough for the transitive answer.
        """
        if not artifact.depends_on:
            return None
        stored = self.backend.get_sensitivities(artifact.depends_on, project_id=artifact.project_id)
        levels = [level for level in map(_sensitivity_or_none, stored.values()) if level]
        return max(levels) if levels else None

    def _gateway_for(self, artifact: Artifact) -> SecureGateway | None:
        """The attached gateway; else, for an artifact with routing information, the
        default one (built once, from ``config``); else none."""
        if self.secure_gateway is not None:
            return self.secure_gateway
        if not any(artifact.metadata.get(key) is not None for key in ROUTING_KEYS):
            return None
        if self._default_gateway is None:
            # Imported here: a StateManager that never sees routing information never
            # needs the gateway (nor its policy plugins and auditor).
            from metaqore.core.security import SecureGateway

            self._default_gateway = SecureGateway(config=self.config)
        return self._default_gateway

    def _govern(self, artifact: Artifact) -> None:
        metadata = artifact.metadata
        declared = _sensitivity_or_none(metadata.get("sensitivity"))
        upstream = self.upstream_sensitivity(artifact)
        floor = max((level for level in (declared, upstream) if level), default=None)
        gateway = self._gateway_for(artifact)
        if gateway is None:
            if floor is not None:
                artifact.metadata = {**metadata, "sensitivity": floor.value}
            return
        from metaqore.core.security import effective_sensitivity

        agent_name = str(metadata.get("agent_name") or artifact.created_by)
        task_type = str(metadata.get("task_type") or f"{artifact.artifact_type}_creation")
        flags = {flag: bool(metadata.get(flag, False)) for flag in _ROUTING_FLAGS}
        context: dict[str, Any] = {
            "artifact_id": artifact.id,
            "project_id": artifact.project_id,
            "agent_name": agent_name,
            "task_type": task_type,
            "upstream_sensitivity": upstream.value if upstream else None,
        }
        provider = metadata.get("llm_provider")
        if provider:
            allowed = gateway.enforce_policy(
                agent_name=agent_name,
                task_type=task_type,
                provider=str(provider),
                sensitivity=floor,
                **flags,
            )
            if not allowed:
                veto = gateway.last_veto or VetoReason(
                    reason=f"Provider '{provider}' disallowed",
                    policy_violated="routing",
                )
                raise VetoAppliedError(veto, context={**context, "provider": str(provider)})
        classified = gateway.classify_task(agent_name=agent_name, task_type=task_type, **flags)
        effective = effective_sensitivity(classified, floor)
        # The same check, against the same gateway config (trusted_keys,
        # require_signatures), as the gate's replay; the gateway audits the veto.
        provenance_veto = gateway.verify_provenance(
            artifact_id=artifact.id,
            artifact_type=artifact.artifact_type,
            version=artifact.version,
            content_hash=artifact.content_hash,
            sensitivity=effective,
            created_by=artifact.created_by,
            provenance=artifact.provenance,
        )
        if provenance_veto is not None:
            raise VetoAppliedError(
                provenance_veto,
                context={
                    **context,
                    "created_by": artifact.created_by,
                    "sensitivity": effective.value,
                },
            )
        artifact.metadata = {**metadata, "sensitivity": effective.value}

    # -- tasks -----------------------------------------------------------------------

    def save_task(self, task: Task) -> Task:
        return self.backend.save_task(task)

    def get_task(self, task_id: str, *, project_id: str | None = None) -> Task | None:
        return self.backend.get_task(task_id, project_id=project_id)

    def get_tasks(self, project_id: str) -> list[Task]:
        """The project's tasks ordered by creation time."""
        return self.backend.list_tasks(project_id)

    def list_tasks(self, project_id: str) -> list[Task]:
        """Alias of :meth:`get_tasks`."""
        return self.get_tasks(project_id)

    def delete_task(self, task_id: str, *, project_id: str | None = None) -> bool:
        return self.backend.delete_task(task_id, project_id=project_id)

    # -- conflicts -------------------------------------------------------------------

    def save_conflicts(self, conflicts: Iterable[Conflict]) -> list[Conflict]:
        return self.backend.save_conflicts(conflicts)

    def update_conflict(self, conflict: Conflict) -> Conflict:
        return self.backend.update_conflict(conflict)

    def get_conflict(self, conflict_id: str) -> Conflict | None:
        return self.backend.get_conflict(conflict_id)

    def list_conflicts(self, project_id: str) -> list[Conflict]:
        return self.backend.list_conflicts(project_id)

    # -- checkpoints -----------------------------------------------------------------

    def create_checkpoint(self, project_id: str, label: str) -> Checkpoint:
        """Snapshot the project (keys ``project``, ``artifacts``, ``tasks``, ``conflicts``)
        and apply retention, in one transaction that holds the project's gate lock."""
        with self.backend.transaction():
            info = self.create_checkpoint_info(project_id, label)
            checkpoint = self.backend.get_checkpoint(info.id)
        assert checkpoint is not None  # written just above, in the same transaction
        return checkpoint

    def create_checkpoint_info(self, project_id: str, label: str) -> CheckpointInfo:
        """Same as :meth:`create_checkpoint`, returning the new checkpoint's summary
        instead of reading its snapshot back (for large projects)."""
        with self.backend.transaction():
            self.backend.lock_projects([project_id])
            return self.backend.checkpoint_project(
                project_id,
                label,
                compress=self.compress_checkpoints,
                keep=self.checkpoint_retention,
            )

    def get_checkpoints(self, project_id: str) -> list[Checkpoint]:
        """The project's checkpoints, oldest first."""
        return self.backend.list_checkpoints(project_id)

    def list_checkpoint_info(self, project_id: str) -> list[CheckpointInfo]:
        """The project's checkpoints without their snapshots (cheap), oldest first."""
        return self.backend.list_checkpoint_info(project_id)

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        return self.backend.get_checkpoint(checkpoint_id)

    def list_runs(self, project_id: str) -> list[RunRecord]:
        """The passing gate runs that changed the project, oldest first."""
        return self.backend.list_runs(project_id)

    def restore_checkpoint(self, checkpoint_id: str) -> Project:
        """Put the project back as the checkpoint saw it and return it.

        First writes an ``auto-backup-<UTC timestamp>`` checkpoint of the current state,
        then replaces the project's row, artifacts, tasks and conflicts by the snapshot's,
        all in one transaction that holds the project's gate lock (a gate run on the
        project waits, then judges against the restored history). The project's
        checkpoints are kept: retention applies to the new backup but never deletes the
        checkpoint being restored.
        """
        with self.backend.transaction():
            info = self.restore_checkpoint_info(checkpoint_id)
            restored = self.get_project(info.project_id)
        assert restored is not None  # written just above, in the same transaction
        return restored

    def restore_checkpoint_info(self, checkpoint_id: str) -> CheckpointInfo:
        """Same as :meth:`restore_checkpoint`, returning the restored checkpoint's summary
        instead of reading the whole project back (for large projects)."""
        with self.backend.transaction():
            checkpoint = self.backend.get_checkpoint(checkpoint_id)
            if checkpoint is None:
                raise NotFoundError(f"checkpoint '{checkpoint_id}' not found")
            self.backend.lock_projects([checkpoint.project_id])
            project, artifacts, tasks, conflicts = self._parse_snapshot(checkpoint)
            stamp = current_utc().strftime("%Y%m%dT%H%M%S%fZ")
            self.backend.checkpoint_project(
                checkpoint.project_id,
                f"{AUTO_BACKUP_PREFIX}{stamp}",
                compress=self.compress_checkpoints,
                keep=self.checkpoint_retention,
                protect=[checkpoint.id],
            )
            self.backend.replace_project_state(project, artifacts, tasks, conflicts)
            [info] = [
                item
                for item in self.backend.list_checkpoint_info(checkpoint.project_id)
                if item.id == checkpoint.id
            ]
        return info

    def snapshot(self, project_id: str) -> dict[str, Any]:
        """The project's current state as a checkpoint snapshot (JSON-ready dict)."""
        raw = self.backend.project_snapshot(project_id)
        if raw is None:
            raise NotFoundError(f"project '{project_id}' not found")
        snapshot: dict[str, Any] = json.loads(raw)
        return snapshot

    @staticmethod
    def _parse_snapshot(
        checkpoint: Checkpoint,
    ) -> tuple[Project, list[Artifact], list[Task], list[Conflict]]:
        snapshot = checkpoint.snapshot
        try:
            project = Project.model_validate(snapshot["project"])
            artifacts = [Artifact.model_validate(item) for item in snapshot.get("artifacts", [])]
            tasks = [Task.model_validate(item) for item in snapshot.get("tasks", [])]
            conflicts = [Conflict.model_validate(item) for item in snapshot.get("conflicts", [])]
        except (KeyError, TypeError, ValidationError) as exc:
            raise StorageError(
                f"checkpoint '{checkpoint.id}' holds an unreadable snapshot: {exc}"
            ) from None
        if project.id != checkpoint.project_id:
            raise StorageError(
                f"checkpoint '{checkpoint.id}' of project '{checkpoint.project_id}' holds a "
                f"snapshot of project '{project.id}'"
            )
        return project, artifacts, tasks, conflicts


__all__ = ["AUTO_BACKUP_PREFIX", "UPDATABLE_PROJECT_FIELDS", "StateManager"]
