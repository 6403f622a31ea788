"""The engine a server runs: one store, StateManager, PSMP, SecureGateway and audit chain.

:class:`ServerRuntime` wires the same engine objects the CLI uses and adds what serving
needs: a lock that serialises governance writes (SecureGateway keeps per-call state, and a
declaration must not interleave with a resolution), the held blocked artifacts
(:mod:`metaqore.server.pending`) and the event hub. Every rule is the engine's; the runtime
only decides what to do with the engine's answers.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Literal

from metaqore import __version__
from metaqore.config import GovernanceMode, MetaQoreConfig
from metaqore.core.audit import ComplianceAuditor
from metaqore.core.models import (
    Artifact,
    BlockingReport,
    Checkpoint,
    Conflict,
    Project,
    Provenance,
    ResolutionStrategy,
)
from metaqore.core.psmp import PSMPEngine
from metaqore.core.security import SecureGateway
from metaqore.core.state_manager import AUTO_BACKUP_PREFIX, StateManager
from metaqore.exceptions import (
    ConfigurationError,
    ConflictDetectedError,
    NotFoundError,
    StorageError,
)
from metaqore.logger import get_logger
from metaqore.server.defaults import DEFAULT_EVENT_BUFFER
from metaqore.server.errors import ApiConflict, ArtifactBlocked
from metaqore.server.events import AuditTap, EventHub
from metaqore.server.pending import DEFAULT_MAX_PENDING, PendingArtifacts
from metaqore.storage.backend import StorageBackend
from metaqore.storage.backends.sqlite import SQLiteBackend

log = get_logger("server")

ArtifactStatus = Literal["stored", "pending", "released", "stored_artifact", "absent"]


@dataclass(frozen=True)
class Resolution:
    conflict: Conflict
    artifact_status: ArtifactStatus
    artifact: Artifact | None
    message: str


def _conflict_payload(conflict: Conflict) -> dict[str, Any]:
    return {
        "conflict_id": conflict.id,
        "conflict_type": conflict.conflict_type,
        "project_id": conflict.project_id,
        "artifact_id": conflict.artifact_id,
        "severity": conflict.severity.value,
        "strategy": conflict.resolution_strategy.value,
        "related": list(conflict.related),
    }


def _declared_payload(artifact: Artifact) -> dict[str, Any]:
    # The same shape the gate audits (never the data: only its hash).
    payload: dict[str, Any] = {
        "project_id": artifact.project_id,
        "artifact_id": artifact.id,
        "artifact_type": artifact.artifact_type,
        "version": artifact.version,
        "agent": artifact.created_by,
        "content_hash": artifact.content_hash,
        "iteration": artifact.iteration,
    }
    sensitivity = artifact.metadata.get("sensitivity")
    if isinstance(sensitivity, str):
        payload["sensitivity"] = sensitivity
    provider = artifact.metadata.get("llm_provider")
    if isinstance(provider, str):
        payload["provider"] = provider
    return payload


def _needs_redeclaration(artifact: Artifact) -> bool:
    """A ``retry`` of anything but a version mismatch means "the agent declares it again":
    the engine changed nothing that would make the artifact pass now."""
    return any(
        conflict.resolved
        and conflict.resolution_strategy is ResolutionStrategy.RETRY
        and conflict.conflict_type != "version_mismatch"
        for conflict in artifact.blocked_by
    )


class ServerRuntime:
    """The engine objects behind one server, and the operations that combine them."""

    def __init__(
        self,
        *,
        config: MetaQoreConfig,
        backend: StorageBackend,
        auditor: ComplianceAuditor,
        hub: EventHub | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
        owns_auditor: bool = True,
        dsn: str = "",
    ) -> None:
        self.config = config
        self.backend = backend
        self.dsn = dsn
        self.hub = hub or EventHub()
        self.audit = AuditTap(auditor, self.hub)
        self._owns_auditor = owns_auditor
        self.state = StateManager(
            backend,
            checkpoint_retention=config.checkpoint_retention,
            compress_checkpoints=config.checkpoint_compression,
        )
        self.gateway = SecureGateway(config=config, auditor=self.audit)
        self.state.attach_secure_gateway(self.gateway)
        self.psmp = PSMPEngine(self.state, config=config, auditor=self.audit)
        self.pending = PendingArtifacts(max_pending)
        self.lock = threading.RLock()
        self.closed = False

    @classmethod
    def open(
        cls,
        config: MetaQoreConfig | None = None,
        *,
        dsn: str | None = None,
        audit_log: str | os.PathLike[str] | None = None,
        auditor: ComplianceAuditor | None = None,
        event_buffer: int = DEFAULT_EVENT_BUFFER,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> ServerRuntime:
        """Open the store (``dsn`` or the config's) and the audit chain (``auditor``, else a
        file auditor on ``audit_log`` or the config's ``audit_log``)."""
        config = config or MetaQoreConfig()
        target = dsn or config.storage_dsn
        backend = SQLiteBackend(
            target,
            timeout=config.store_timeout,
            compress_checkpoints=config.checkpoint_compression,
        )
        owns = auditor is None
        try:
            if auditor is None:
                # flush_interval=1: a server runs for long, and a crash must lose nothing.
                auditor = ComplianceAuditor(
                    organization=config.organization,
                    path=audit_log if audit_log is not None else config.audit_log,
                    flush_interval=1,
                )
            runtime = cls(
                config=config,
                backend=backend,
                auditor=auditor,
                hub=EventHub(event_buffer),
                max_pending=max_pending,
                owns_auditor=owns,
                dsn=backend.safe_dsn,
            )
            runtime.audit.log_event(
                "server_started",
                {
                    "version": __version__,
                    "mode": config.governance_mode.value,
                    "policy": runtime.gateway.policy_name,
                    "store": backend.safe_dsn,
                },
            )
        except BaseException as exc:
            backend.close()
            if owns and auditor is not None:
                with suppress(Exception):
                    auditor.close()
            if isinstance(exc, OSError):
                where = auditor.path if auditor is not None else audit_log
                raise ConfigurationError(
                    f"cannot write the audit log {where}: {exc.strerror or exc}"
                ) from None
            raise
        return runtime

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.audit.log_event("server_stopped", {"version": __version__})
        finally:
            try:
                if self._owns_auditor:
                    self.audit.auditor.close()
                else:
                    self.audit.auditor.flush()
            finally:
                self.backend.close()

    # -- health ----------------------------------------------------------------------

    @property
    def dialect(self) -> str:
        return str(getattr(self.backend, "dialect", "unknown"))

    def check_store(self) -> str | None:
        """``None`` when the store answers a query, else why not (one line)."""
        try:
            self.backend.get_project("__metaqore_health__")
        except StorageError as exc:
            return str(exc)
        return None

    # -- helpers ---------------------------------------------------------------------

    def require_project(self, project_id: str) -> Project:
        project = self.backend.get_project(project_id)
        if project is None:
            raise NotFoundError(f"project '{project_id}' not found")
        return project

    @contextmanager
    def writing(self, **context: Any) -> Iterator[None]:
        """Serialise a write and tag the events it causes with ``context``."""
        with self.lock, self.audit.scope(**context):
            yield

    def record(self, event_type: str, payload: Mapping[str, Any]) -> None:
        self.audit.log_event(event_type, {**payload, "source": "api"})

    # -- artifacts -------------------------------------------------------------------

    def declare(
        self,
        project_id: str,
        *,
        artifact_id: str | None,
        version: int | None,
        fields: Mapping[str, Any],
        provenance: Sequence[Mapping[str, Any]] = (),
    ) -> Artifact:
        """Build an artifact, run it through SecureGateway then PSMP, and store it.

        ``fields`` are :meth:`PSMPEngine.create_artifact`'s keywords; without ``version``
        the engine numbers it (next version of its type). A veto raises
        :class:`~metaqore.exceptions.VetoAppliedError` and nothing is kept. A conflict
        raises :class:`ArtifactBlocked`: the conflicts go to the store and the artifact is
        held until they are resolved. Declaring an id the server holds blocked replaces
        that declaration, whose conflicts are resolved as ``retry`` (the agent declared
        again).
        """
        with self.writing(project_id=project_id):
            self.require_project(project_id)
            if version is None:
                artifact = self.psmp.create_artifact(project_id=project_id, **fields)
            else:
                artifact = Artifact(project_id=project_id, version=version, **fields)
            if artifact_id is not None:
                artifact.id = artifact_id
            artifact.provenance = [
                Provenance(artifact_id=artifact.id, **entry) for entry in provenance
            ]
            with self.audit.scope(project_id=project_id, artifact_id=artifact.id):
                earlier = self.pending.release(project_id, artifact.id)
                if earlier is not None:
                    self._retire(earlier)
                try:
                    stored = self.state.create_artifact(artifact)
                except ConflictDetectedError as exc:
                    self.state.save_conflicts(artifact.blocked_by)
                    for evicted in self.pending.hold(artifact):
                        log.warning(
                            "pending buffer full: let go of blocked artifact %s/%s (its "
                            "conflicts stay in the store)",
                            evicted.project_id,
                            evicted.id,
                        )
                    raise ArtifactBlocked(artifact, exc.conflicts, exc.message) from None
                self.record("artifact_declared", _declared_payload(stored))
                return stored

    def _retire(self, earlier: Artifact) -> None:
        with self.backend.transaction():
            for conflict in earlier.blocked_by:
                if not conflict.resolved:
                    self.psmp.resolve_conflict(conflict, ResolutionStrategy.RETRY, artifact=earlier)

    def delete_artifact(self, project_id: str, artifact_id: str) -> int:
        with self.writing(project_id=project_id, artifact_id=artifact_id):
            self.require_project(project_id)
            deleted = self.state.delete_artifact(artifact_id, project_id=project_id)
            held = self.pending.release(project_id, artifact_id)
            if not deleted and held is None:
                raise NotFoundError(f"artifact '{artifact_id}' not found in project '{project_id}'")
            self.record(
                "artifact_deleted",
                {
                    "project_id": project_id,
                    "artifact_id": artifact_id,
                    "versions": deleted,
                    "pending": held is not None,
                },
            )
            return deleted

    # -- governance ------------------------------------------------------------------

    def blocking_report(self, project_id: str) -> BlockingReport:
        """The engine's report over the stored artifacts, completed with the unresolved
        conflicts of artifacts that are not stored (held blocked, or let go)."""
        self.require_project(project_id)
        base = self.psmp.get_blocking_report(project_id)
        conflicts: list[Conflict] = []
        blocked: list[str] = []
        seen: set[str] = set()

        def add(conflict: Conflict) -> None:
            if conflict.id in seen:
                return
            seen.add(conflict.id)
            conflicts.append(conflict)
            if conflict.artifact_id not in blocked:
                blocked.append(conflict.artifact_id)

        for artifact_id in base.blocked_artifacts:
            if artifact_id not in blocked:
                blocked.append(artifact_id)
        for conflict in base.conflicts:
            add(conflict)
        for conflict in self.state.list_conflicts(project_id):
            if not conflict.resolved:
                add(conflict)
        return BlockingReport(
            project_id=project_id,
            conflicts=conflicts,
            blocked_artifacts=blocked,
            vetoes=list(base.vetoes),
        )

    def resolve(
        self, project_id: str, conflict_id: str, strategy: ResolutionStrategy
    ) -> Resolution:
        """Apply ``strategy`` to a conflict through PSMP (see :class:`ResolutionOut`)."""
        with self.writing(project_id=project_id, conflict_id=conflict_id):
            self.require_project(project_id)
            conflict = self.state.get_conflict(conflict_id)
            if conflict is None or conflict.project_id != project_id:
                raise NotFoundError(f"conflict '{conflict_id}' not found in project '{project_id}'")
            if conflict.resolved:
                raise ApiConflict(
                    "already_resolved",
                    f"conflict '{conflict_id}' was already resolved "
                    f"({conflict.resolution_strategy.value})",
                )
            try:
                held = self.pending.holding(project_id, conflict_id)
                if held is not None:
                    return self._resolve_held(held, conflict_id, strategy)
                stored = self.state.get_artifact(conflict.artifact_id, project_id=project_id)
                if stored is not None and self.config.governance_mode is GovernanceMode.PLAYGROUND:
                    return self._resolve_stored(stored, conflict, strategy)
                return self._resolve_absent(conflict, strategy)
            except ConflictDetectedError as exc:  # a merge whose data keys collide
                raise ApiConflict("merge_collision", exc.message, exc.conflicts) from None

    def _resolve_held(
        self, held: Artifact, conflict_id: str, strategy: ResolutionStrategy
    ) -> Resolution:
        # Work on a copy: if anything fails, the held artifact stays as it was.
        artifact = held.model_copy(deep=True)
        conflict = next(c for c in artifact.blocked_by if c.id == conflict_id)
        status: ArtifactStatus
        with self.backend.transaction():
            self.psmp.resolve_conflict(conflict, strategy, artifact=artifact)
            if artifact.is_blocked:
                status = "pending"
            elif _needs_redeclaration(artifact):
                status = "released"
            else:
                self.state.save_artifact(artifact)
                status = "stored"
        if status == "pending":
            self.pending.hold(artifact)
            remaining = sum(not c.resolved for c in artifact.blocked_by)
            return Resolution(
                conflict,
                status,
                artifact,
                f"artifact '{artifact.id}' is still blocked by {remaining} conflict(s)",
            )
        self.pending.release(artifact.project_id, artifact.id)
        if status == "released":
            return Resolution(
                conflict,
                status,
                None,
                f"artifact '{artifact.id}' was let go: declare it again once the cause is fixed",
            )
        self.record("artifact_declared", {**_declared_payload(artifact), "resolved": True})
        return Resolution(
            conflict,
            status,
            artifact,
            f"artifact '{artifact.id}' v{artifact.version} is stored: no conflict blocks it",
        )

    def _resolve_stored(
        self, stored: Artifact, conflict: Conflict, strategy: ResolutionStrategy
    ) -> Resolution:
        with self.backend.transaction():
            self.psmp.resolve_conflict(conflict, strategy, artifact=stored)
            self.state.save_artifact(stored)
        return Resolution(
            conflict,
            "stored_artifact",
            stored,
            f"conflict on stored artifact '{stored.id}' is {self._state_word(conflict)}",
        )

    def _resolve_absent(self, conflict: Conflict, strategy: ResolutionStrategy) -> Resolution:
        # The blocked artifact was let go (restart, full buffer, restore): only the conflict
        # itself can change. Strategies that rework the artifact have nothing to work on.
        if strategy in (ResolutionStrategy.OVERRIDE, ResolutionStrategy.MERGE):
            raise ApiConflict(
                "artifact_not_held",
                f"artifact '{conflict.artifact_id}' blocked by conflict '{conflict.id}' is no "
                f"longer held by this server, so '{strategy.value}' has nothing to apply to: "
                "declare the artifact again, or resolve with 'retry' or 'escalate'",
            )
        if strategy is ResolutionStrategy.ESCALATE:
            conflict.resolution_strategy = strategy
            event = "conflict_escalated"
        else:
            conflict.mark_resolved(strategy)
            event = "conflict_resolved"
        self.state.update_conflict(conflict)
        self.audit.log_event(event, {**_conflict_payload(conflict), "artifact_held": False})
        return Resolution(
            conflict,
            "absent",
            None,
            f"conflict '{conflict.id}' is {self._state_word(conflict)}; its artifact is not "
            "held here: declare it again",
        )

    @staticmethod
    def _state_word(conflict: Conflict) -> str:
        if conflict.resolved:
            return f"resolved ({conflict.resolution_strategy.value})"
        return f"unresolved ({conflict.resolution_strategy.value})"

    # -- projects and checkpoints --------------------------------------------------------

    def delete_project(self, project_id: str) -> None:
        with self.writing(project_id=project_id):
            if not self.state.delete_project(project_id):
                raise NotFoundError(f"project '{project_id}' not found")
            dropped = self.pending.drop_project(project_id)
            self.record("project_deleted", {"project_id": project_id, "pending_dropped": dropped})

    def create_checkpoint(self, project_id: str, label: str) -> Checkpoint:
        with self.writing(project_id=project_id):
            self.require_project(project_id)
            checkpoint = self.state.create_checkpoint(project_id, label)
            self.record(
                "checkpoint_created",
                {
                    "project_id": project_id,
                    "checkpoint_id": checkpoint.id,
                    "label": label,
                    "artifacts": len(checkpoint.snapshot.get("artifacts", [])),
                },
            )
            return checkpoint

    def get_checkpoint(self, project_id: str, checkpoint_id: str) -> Checkpoint:
        self.require_project(project_id)
        checkpoint = self.state.get_checkpoint(checkpoint_id)
        if checkpoint is None or checkpoint.project_id != project_id:
            raise NotFoundError(f"checkpoint '{checkpoint_id}' not found in project '{project_id}'")
        return checkpoint

    def restore_checkpoint(
        self, project_id: str, checkpoint_id: str
    ) -> tuple[Project, Checkpoint | None]:
        """Restore (after the engine's auto-backup); held blocked artifacts of the project
        are let go, since the state they were declared against is gone."""
        with self.writing(project_id=project_id):
            self.get_checkpoint(project_id, checkpoint_id)
            project = self.state.restore_checkpoint(checkpoint_id)
            dropped = self.pending.drop_project(project_id)
            backups = [
                checkpoint
                for checkpoint in self.state.get_checkpoints(project_id)
                if checkpoint.label.startswith(AUTO_BACKUP_PREFIX)
            ]
            backup = backups[-1] if backups else None
            self.record(
                "checkpoint_restored",
                {
                    "project_id": project_id,
                    "checkpoint_id": checkpoint_id,
                    "backup_checkpoint_id": backup.id if backup else None,
                    "pending_dropped": dropped,
                },
            )
            return project, backup


__all__ = ["Resolution", "ServerRuntime"]
