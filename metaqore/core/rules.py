"""The PSMP conflict rules: one protocol, four built-in rules, each linear in the run.

A rule reads a finalized :class:`~metaqore.core.records.RunIndex` and yields a
:class:`RuleHit` for each problem it finds on a *judged* record (a new artifact of
the run). The same rule objects serve the one-at-a-time
:class:`~metaqore.core.psmp.PSMPEngine` (a run of one artifact against the stored
ones) and the gate (a whole run against the store), so both find the same things.
Rules are plugins: this module registers the built-ins through the
``metaqore_conflict_rules`` hook, as any third-party rule would.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol, runtime_checkable

from metaqore.core.models import ConflictSeverity, ResolutionStrategy
from metaqore.core.records import ArtifactRecord, RunIndex
from metaqore.plugins.hookspecs import hookimpl

#: Rivals listed by name in one parallel-creation finding; the rest are counted.
MAX_LISTED_RIVALS = 20
#: Artifacts of a cycle listed by name (its path: half from each end); the rest are
#: counted, so a cycle through a million artifacts is still a finding of a few KB.
MAX_LISTED_MEMBERS = 40


@dataclass(frozen=True)
class RuleHit:
    """One problem a rule found, attached to ``record`` with the evidence behind it."""

    conflict_type: str
    record: ArtifactRecord
    message: str
    related: tuple[str, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class ConflictRule(Protocol):
    """A PSMP rule. ``check`` must only report on ``index.judged()`` records."""

    conflict_type: str
    severity: ConflictSeverity
    strategy: ResolutionStrategy

    def check(self, index: RunIndex) -> Iterator[RuleHit]: ...


def _iteration_text(iteration: int | None) -> str:
    return "no iteration" if iteration is None else f"iteration {iteration}"


class VersionMismatchRule:
    """A version that is not the next of its type, or an id re-declared with new content."""

    conflict_type = "version_mismatch"
    severity = ConflictSeverity.MEDIUM
    strategy = ResolutionStrategy.RETRY

    def check(self, index: RunIndex) -> Iterator[RuleHit]:
        for record in index.judged():
            declared = record.declared_version
            if declared is None or declared == record.expected_version:
                continue
            stored = index.prior_version_hash(record.project, record.id, declared)
            if stored is not None:
                message = (
                    f"{record.artifact_type} '{record.id}' (by {record.agent}) re-declares "
                    f"version {declared} with different content "
                    f"({record.content_hash[:19]}… vs stored {stored[:19]}…)"
                )
                evidence: dict[str, Any] = {
                    "declared_version": declared,
                    "expected_version": record.expected_version,
                    "stored_content_hash": stored,
                    "content_hash": record.content_hash,
                }
                yield RuleHit(self.conflict_type, record, message, (record.id,), evidence)
                continue
            kind = "skips ahead" if declared > record.expected_version else "is stale"
            message = (
                f"{record.artifact_type} '{record.id}' (by {record.agent}) declares version "
                f"{declared} but the next {record.artifact_type} version in project "
                f"'{record.project}' is {record.expected_version} ({kind})"
            )
            related = (record.follows.id,) if record.follows is not None else ()
            yield RuleHit(
                self.conflict_type,
                record,
                message,
                related,
                {"declared_version": declared, "expected_version": record.expected_version},
            )


class ParallelCreationRule:
    """Artifacts of one type, project and iteration created by different agents."""

    conflict_type = "parallel_creation"
    severity = ConflictSeverity.HIGH
    strategy = ResolutionStrategy.MERGE

    def check(self, index: RunIndex) -> Iterator[RuleHit]:
        # (project, type, iteration) -> agent -> first record of that agent, in order
        groups: dict[tuple[str, str, int | None], dict[str, ArtifactRecord]] = {}
        for record in index.records:
            group = groups.setdefault((record.project, record.artifact_type, record.iteration), {})
            if record.prior:
                group.setdefault(record.agent, record)
                continue
            rival_count = len(group) - (record.agent in group)
            if rival_count:
                rivals = (other for agent, other in group.items() if agent != record.agent)
                yield self._hit(record, list(islice(rivals, MAX_LISTED_RIVALS)), rival_count)
            group.setdefault(record.agent, record)

    def _hit(self, record: ArtifactRecord, listed: list[ArtifactRecord], count: int) -> RuleHit:
        names = ", ".join(f"'{other.id}' by {other.agent} (v{other.version})" for other in listed)
        more = count - len(listed)
        if more:
            names += f" and {more} more"
        message = (
            f"{record.artifact_type} '{record.id}' by {record.agent} (v{record.version}) "
            f"competes with {names} in {_iteration_text(record.iteration)} "
            f"of project '{record.project}'"
        )
        evidence = {
            "iteration": record.iteration,
            "agents": [record.agent, *(other.agent for other in listed)],
            "versions": {
                record.id: record.version,
                **{other.id: other.version for other in listed},
            },
            "more_rivals": more,
        }
        return RuleHit(self.conflict_type, record, message, tuple(o.id for o in listed), evidence)


class MissingDependencyRule:
    """A ``depends_on`` id that is declared nowhere: not in the run, not in the store."""

    conflict_type = "missing_dependency"
    severity = ConflictSeverity.HIGH
    strategy = ResolutionStrategy.RETRY

    def check(self, index: RunIndex) -> Iterator[RuleHit]:
        for record, dependency in index.unresolved():
            message = (
                f"{record.artifact_type} '{record.id}' (by {record.agent}) depends on "
                f"'{dependency}', which is declared nowhere in project '{record.project}'"
            )
            yield RuleHit(
                self.conflict_type,
                record,
                message,
                (dependency,),
                {"missing": dependency, "needed_by": record.id},
            )


_MAX_AGENTS_NAMED = 10


class CircularDependencyRule:
    """Dependencies that form a cycle of any length, reported once per cycle."""

    conflict_type = "circular_dependency"
    severity = ConflictSeverity.CRITICAL
    strategy = ResolutionStrategy.ESCALATE

    def check(self, index: RunIndex) -> Iterator[RuleHit]:
        edges = index.edges()
        records = index.records
        for component in index.cycles():
            # Attached to the member declared last in replay order.
            anchor = max(component)
            if not records[anchor].judged:
                continue
            path = _cycle_through(anchor, set(component), edges)
            names = _elided([records[key].id for key in path])
            members = sorted(component)
            agents = list(dict.fromkeys(records[key].agent for key in path))
            by = ", ".join(agents[:_MAX_AGENTS_NAMED])
            if len(agents) > _MAX_AGENTS_NAMED:
                by += f" and {len(agents) - _MAX_AGENTS_NAMED} more"
            message = f"circular dependency: {' → '.join(names)} (by {by})"
            if len(members) > len(path) - 1:
                message += f" ({len(members)} artifacts are mutually dependent)"
            # The members declared first, by name (what waivers and fingerprints use).
            related = tuple(
                records[key].id for key in islice(members, MAX_LISTED_MEMBERS + 1) if key != anchor
            )[:MAX_LISTED_MEMBERS]
            evidence: dict[str, Any] = {
                "cycle": names,
                "members": [records[key].id for key in members[:MAX_LISTED_MEMBERS]],
            }
            if len(members) > MAX_LISTED_MEMBERS:
                evidence["cycle_length"] = len(path) - 1
                evidence["member_count"] = len(members)
            yield RuleHit(self.conflict_type, records[anchor], message, related, evidence)


def _elided(names: list[str]) -> list[str]:
    """A cycle path of at most ``MAX_LISTED_MEMBERS`` names, its middle counted."""
    if len(names) <= MAX_LISTED_MEMBERS:
        return names
    half = MAX_LISTED_MEMBERS // 2
    return [*names[:half], f"… {len(names) - 2 * half} more …", *names[-half:]]


def _cycle_through(start: int, members: set[int], edges: list[list[int]]) -> list[int]:
    """Shortest path ``start → … → start`` inside one component (breadth first)."""
    if start in edges[start]:
        return [start, start]
    parent: dict[int, int] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in edges[node]:
            if target not in members:
                continue
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                path.reverse()
                return [*path, start]
            if target not in parent:
                parent[target] = node
                queue.append(target)
    return [start, start]  # unreachable for a real component


BUILTIN_RULES: tuple[type[ConflictRule], ...] = (
    VersionMismatchRule,
    ParallelCreationRule,
    MissingDependencyRule,
    CircularDependencyRule,
)


@hookimpl
def metaqore_conflict_rules() -> list[ConflictRule]:
    return [rule() for rule in BUILTIN_RULES]


__all__ = [
    "BUILTIN_RULES",
    "MAX_LISTED_MEMBERS",
    "MAX_LISTED_RIVALS",
    "CircularDependencyRule",
    "ConflictRule",
    "MissingDependencyRule",
    "ParallelCreationRule",
    "RuleHit",
    "VersionMismatchRule",
]
