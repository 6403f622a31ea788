"""PSMPEngine: declares artifacts one at a time against a state manager's stored ones.

The engine runs the same rule objects as the gate: a declaration is a run of one
artifact judged against the project's stored artifacts. It works with anything
offering ``get_project``, ``list_artifacts``, ``get_artifact``, ``save_artifact`` and
``update_conflict`` (duck-typed), so it can be tested against an in-memory stand-in
as well as the real :class:`~metaqore.core.state_manager.StateManager`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from metaqore.config import GovernanceMode, MetaQoreConfig
from metaqore.core.models import (
    Artifact,
    BlockingReport,
    Conflict,
    ConflictSeverity,
    Project,
    ResolutionStrategy,
)
from metaqore.core.records import ArtifactRecord, RunIndex
from metaqore.core.rules import ConflictRule, RuleHit
from metaqore.exceptions import ConflictDetectedError, NotFoundError

#: Strategies the engine can apply without a human, when a conflict is low/medium.
MECHANICAL_STRATEGIES = frozenset(
    {ResolutionStrategy.RETRY, ResolutionStrategy.OVERRIDE, ResolutionStrategy.MERGE}
)
_AUTO_SEVERITIES = frozenset({ConflictSeverity.LOW, ConflictSeverity.MEDIUM})


class ProjectNotFoundError(NotFoundError):
    """The project an artifact names does not exist in the state manager."""


class StateManagerLike(Protocol):
    def get_project(self, project_id: str) -> Project | None: ...

    def list_artifacts(self, project_id: str) -> list[Artifact]: ...

    def get_artifact(self, artifact_id: str) -> Artifact | None: ...

    def save_artifact(self, artifact: Artifact) -> Artifact: ...

    def update_conflict(self, conflict: Conflict) -> Conflict: ...


class Auditor(Protocol):
    def log_event(self, event_type: str, payload: dict[str, Any]) -> Any: ...


def record_from_artifact(artifact: Artifact, *, prior: bool, position: int = 0) -> ArtifactRecord:
    """The compact record PSMP rules read for a core :class:`Artifact`."""
    return ArtifactRecord(
        project=artifact.project_id,
        id=artifact.id,
        artifact_type=artifact.artifact_type,
        agent=artifact.created_by,
        content_hash=artifact.content_hash,
        declared_version=artifact.version,
        iteration=artifact.iteration,
        depends_on=artifact.depends_on,
        prior=prior,
        position=position,
        data_keys=frozenset(artifact.data),
    )


def configured_rules(
    config: MetaQoreConfig, rules: Sequence[ConflictRule] | None = None
) -> list[ConflictRule]:
    """The registered rules (or ``rules``), minus those the config switches off."""
    if rules is None:
        from metaqore.plugins.manager import conflict_rules

        rules = conflict_rules()
    known = {rule.conflict_type for rule in rules}
    for name in config.rules:
        if name not in known:
            from metaqore.exceptions import ConfigurationError
            from metaqore.validation import suggest

            hint = suggest(name, known)
            raise ConfigurationError(
                f"rules: unknown rule '{name}'"
                + (f" (did you mean '{hint}'?)" if hint else f" (expected one of {sorted(known)})")
            )
    return [
        rule
        for rule in rules
        if config.rules.get(rule.conflict_type) is None or config.rules[rule.conflict_type].enabled
    ]


def rule_severity(rule: ConflictRule, config: MetaQoreConfig) -> ConflictSeverity:
    settings = config.rules.get(rule.conflict_type)
    return settings.severity if settings and settings.severity else rule.severity


def rule_strategy(rule: ConflictRule, config: MetaQoreConfig) -> ResolutionStrategy:
    settings = config.rules.get(rule.conflict_type)
    return settings.strategy if settings and settings.strategy else rule.strategy


def data_keys_collide(keys: Iterable[frozenset[str] | None]) -> set[str]:
    """Top-level ``data`` keys present in more than one of the artifacts to merge."""
    seen: set[str] = set()
    collisions: set[str] = set()
    for group in keys:
        for key in group or ():
            if key in seen:
                collisions.add(key)
            seen.add(key)
    return collisions


class PSMPEngine:
    """Versioning and conflict detection for artifacts declared one at a time."""

    def __init__(
        self,
        state_manager: Any,
        *,
        config: MetaQoreConfig | None = None,
        rules: Sequence[ConflictRule] | None = None,
        auditor: Auditor | None = None,
    ) -> None:
        self.state_manager = state_manager
        self.config = config or MetaQoreConfig()
        self.rules = configured_rules(self.config, rules)
        self.auditor = auditor
        attach = getattr(state_manager, "attach_psmp_engine", None)
        if callable(attach):
            attach(self)

    # -- declaring -------------------------------------------------------------------
    def create_artifact(
        self,
        *,
        project_id: str,
        artifact_type: str,
        data: Mapping[str, Any],
        created_by: str,
        depends_on: Sequence[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
        iteration: int | None = None,
    ) -> Artifact:
        """A new artifact numbered after the highest stored version of its type (not stored)."""
        self._require_project(project_id)
        versions = [
            stored.version
            for stored in self.state_manager.list_artifacts(project_id)
            if stored.artifact_type == artifact_type
        ]
        return Artifact(
            project_id=project_id,
            artifact_type=artifact_type,
            data=dict(data),
            created_by=created_by,
            version=max(versions, default=0) + 1,
            iteration=iteration,
            depends_on=list(depends_on or []),
            metadata=dict(metadata or {}),
        )

    def check_conflicts(self, artifact: Artifact) -> list[Conflict]:
        """Every rule's findings on ``artifact`` against the project's stored artifacts."""
        return [self._conflict(rule, hit) for rule, hit in self._hits(artifact)]

    def declare_artifact(self, artifact: Artifact, *, persist: bool = True) -> Artifact:
        """Judge ``artifact``; raise :class:`ConflictDetectedError` if anything blocks it.

        In adaptive mode, low/medium conflicts whose strategy applies mechanically are
        resolved first (and audited); in playground mode the conflicts are recorded on
        the artifact but nothing blocks.
        """
        conflicts = self.check_conflicts(artifact)
        mode = self.config.governance_mode
        if conflicts and mode is GovernanceMode.ADAPTIVE:
            for conflict in conflicts:
                if self._auto_resolvable(conflict, artifact):
                    self._apply(conflict, conflict.resolution_strategy, artifact)
                    conflict.mark_resolved(conflict.resolution_strategy)
                    self._audit("conflict_resolved", conflict, auto=True)
        artifact.blocked_by = conflicts
        for conflict in conflicts:
            if not conflict.resolved:
                self._audit("conflict_detected", conflict)
        unresolved = [conflict for conflict in conflicts if not conflict.resolved]
        if unresolved and mode is not GovernanceMode.PLAYGROUND:
            raise ConflictDetectedError(
                f"artifact '{artifact.id}' is blocked by {len(unresolved)} conflict(s): "
                + "; ".join(conflict.description for conflict in unresolved),
                conflicts=unresolved,
                metadata={"artifact_id": artifact.id, "project_id": artifact.project_id},
            )
        if persist:
            self.state_manager.save_artifact(artifact)
        return artifact

    def get_blocking_report(self, project_id: str) -> BlockingReport:
        return BlockingReport.from_artifacts(
            project_id, self.state_manager.list_artifacts(project_id)
        )

    # -- resolving -------------------------------------------------------------------
    def resolve_conflict(
        self,
        conflict: Conflict,
        strategy: ResolutionStrategy | str,
        *,
        artifact: Artifact | None = None,
    ) -> Conflict:
        """Apply ``strategy`` to ``conflict`` and persist it through ``update_conflict``.

        * ``retry``: a version mismatch is renumbered to the next version of its type;
          other conflicts are marked for the agent to declare again.
        * ``override``: the conflict's artifact supersedes the related (older) ones.
        * ``merge``: the related artifacts' ``data`` is merged into the artifact's; if a
          key collides, nothing changes and :class:`ConflictDetectedError` is raised.
        * ``escalate``: handed to a human; the conflict stays unresolved (and blocking)
          until a waiver or another strategy resolves it.

        ``artifact`` is the blocked artifact when it was never stored (strict mode);
        otherwise it is looked up by ``conflict.artifact_id``.
        """
        chosen = ResolutionStrategy(strategy)
        target = artifact
        if target is None:
            found = self._related(conflict.project_id, [conflict.artifact_id])
            target = found[0] if found else None
        if chosen is ResolutionStrategy.ESCALATE:
            conflict.resolution_strategy = chosen
            conflict.resolved = False
            conflict.resolved_at = None
            self._audit("conflict_escalated", conflict)
        else:
            if target is not None:
                self._apply(conflict, chosen, target)
            conflict.mark_resolved(chosen)
            self._audit("conflict_resolved", conflict)
        if target is not None:
            target.blocked_by = [
                conflict if existing.id == conflict.id else existing
                for existing in target.blocked_by
            ]
            if artifact is None:
                self.state_manager.save_artifact(target)
        self.state_manager.update_conflict(conflict)
        return conflict

    # -- internals -------------------------------------------------------------------
    def _require_project(self, project_id: str) -> Project:
        project = self.state_manager.get_project(project_id)
        if project is None:
            raise ProjectNotFoundError(f"project '{project_id}' not found")
        return project  # type: ignore[no-any-return]

    def _index(self, artifact: Artifact) -> RunIndex:
        index = RunIndex()
        stored = self.state_manager.list_artifacts(artifact.project_id)
        # Prior artifacts are replayed in the order they were created, which is what
        # "earlier" means for the rules (the store lists them by version).
        for earlier in sorted(stored, key=lambda item: item.created_at):
            index.add_prior(record_from_artifact(earlier, prior=True))
        index.add(record_from_artifact(artifact, prior=False))
        return index.finalize(ordered=True)

    def _hits(self, artifact: Artifact) -> list[tuple[ConflictRule, RuleHit]]:
        self._require_project(artifact.project_id)
        index = self._index(artifact)
        return [(rule, hit) for rule in self.rules for hit in rule.check(index)]

    def _conflict(self, rule: ConflictRule, hit: RuleHit) -> Conflict:
        return Conflict(
            artifact_id=hit.record.id,
            project_id=hit.record.project,
            description=hit.message,
            severity=rule_severity(rule, self.config),
            conflict_type=hit.conflict_type,
            resolution_strategy=rule_strategy(rule, self.config),
            related=list(hit.related),
        )

    def _auto_resolvable(self, conflict: Conflict, artifact: Artifact) -> bool:
        if conflict.severity not in _AUTO_SEVERITIES:
            return False
        strategy = conflict.resolution_strategy
        if strategy not in MECHANICAL_STRATEGIES:
            return False
        if strategy is ResolutionStrategy.RETRY:
            return conflict.conflict_type == "version_mismatch"
        if strategy is ResolutionStrategy.MERGE:
            return not self._merge_collisions(artifact, conflict.related)
        return True

    def _related(self, project_id: str | None, ids: Iterable[str]) -> list[Artifact]:
        """The stored artifacts ``ids`` of the project (the newest version of each).

        Ids are unique per project, not across projects: a lookup by id alone could
        find (and then override or merge) another project's artifact.
        """
        if project_id is None:
            found = (self.state_manager.get_artifact(artifact_id) for artifact_id in ids)
            return [artifact for artifact in found if artifact is not None]
        newest: dict[str, Artifact] = {}
        for stored in self.state_manager.list_artifacts(project_id):  # ordered by version
            newest[stored.id] = stored
        return [newest[artifact_id] for artifact_id in ids if artifact_id in newest]

    def _merge_collisions(self, artifact: Artifact, related: Iterable[str]) -> set[str]:
        others = self._related(artifact.project_id, related)
        return data_keys_collide(
            [frozenset(artifact.data), *(frozenset(other.data) for other in others)]
        )

    def _apply(self, conflict: Conflict, strategy: ResolutionStrategy, artifact: Artifact) -> None:
        if strategy is ResolutionStrategy.RETRY:
            if conflict.conflict_type == "version_mismatch":
                versions = [
                    stored.version
                    for stored in self.state_manager.list_artifacts(artifact.project_id)
                    if stored.artifact_type == artifact.artifact_type
                    and not (stored.id == artifact.id and stored.version == artifact.version)
                ]
                artifact.version = max(versions, default=0) + 1
        elif strategy is ResolutionStrategy.OVERRIDE:
            superseded = []
            for other in self._related(artifact.project_id, conflict.related):
                if other.id == artifact.id:
                    continue
                other.metadata = {**other.metadata, "superseded_by": artifact.id}
                self.state_manager.save_artifact(other)
                superseded.append(other.id)
            artifact.metadata = {**artifact.metadata, "supersedes": superseded}
        elif strategy is ResolutionStrategy.MERGE:
            collisions = self._merge_collisions(artifact, conflict.related)
            if collisions:
                raise ConflictDetectedError(
                    f"cannot merge '{artifact.id}' with {conflict.related}: data keys "
                    f"collide ({', '.join(sorted(collisions))})",
                    conflicts=[conflict],
                )
            merged: dict[str, Any] = {}
            for other in self._related(artifact.project_id, conflict.related):
                merged.update(other.data)
            merged.update(artifact.data)
            artifact.data = merged
            artifact.metadata = {**artifact.metadata, "merged_from": list(conflict.related)}

    def _audit(self, event_type: str, conflict: Conflict, *, auto: bool = False) -> None:
        if self.auditor is None:
            return
        payload: dict[str, Any] = {
            "conflict_id": conflict.id,
            "conflict_type": conflict.conflict_type,
            "project_id": conflict.project_id,
            "artifact_id": conflict.artifact_id,
            "severity": conflict.severity.value,
            "strategy": conflict.resolution_strategy.value,
            "related": list(conflict.related),
        }
        if auto:
            payload["auto"] = True
        self.auditor.log_event(event_type, payload)


__all__ = [
    "MECHANICAL_STRATEGIES",
    "PSMPEngine",
    "ProjectNotFoundError",
    "configured_rules",
    "data_keys_collide",
    "record_from_artifact",
    "rule_severity",
    "rule_strategy",
]
