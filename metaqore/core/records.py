"""Compact artifact records and the run index that every PSMP rule reads.

One record per artifact, built once and small (no ``data``: only its hash), so a
run of a million artifacts fits in memory. The index holds the records of the
run being judged and the *prior* records they are judged against (the store's,
or the artifacts already declared through :class:`~metaqore.core.psmp.PSMPEngine`),
in replay order, and resolves what rules need in linear time: each artifact's
expected version, identical re-declarations, dependency edges and the strongly
connected components of the dependency graph (iteratively: a million-long chain
must not overflow any stack).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

_UNSET_ITERATION = -(2**62)


class ArtifactRecord:
    """What PSMP and SecureGateway need to know about one artifact."""

    __slots__ = (
        "agent",
        "artifact_type",
        "content_hash",
        "data_json",
        "data_keys",
        "declared_version",
        "depends_on",
        "expected_version",
        "follows",
        "id",
        "idempotent",
        "iteration",
        "key",
        "line",
        "position",
        "prior",
        "project",
        "provenance",
        "sensitivity",
        "source",
        "task",
        "version",
    )

    def __init__(
        self,
        *,
        project: str,
        id: str,
        artifact_type: str,
        agent: str,
        content_hash: str,
        declared_version: int | None = None,
        iteration: int | None = None,
        depends_on: Sequence[str] = (),
        prior: bool = False,
        source: str = "",
        line: int = 0,
        position: int = 0,
        sensitivity: str | None = None,
        task: Any = None,
        provenance: Sequence[Any] = (),
        data_keys: frozenset[str] | None = None,
        data_json: str | None = None,
    ) -> None:
        self.project = project
        self.id = id
        self.artifact_type = artifact_type
        self.agent = agent
        self.content_hash = content_hash
        self.declared_version = declared_version
        self.iteration = iteration
        self.depends_on = tuple(depends_on)
        self.prior = prior
        self.source = source
        self.line = line
        self.position = position
        self.sensitivity = sensitivity
        self.task = task
        self.provenance = tuple(provenance)
        self.data_keys = data_keys
        self.data_json = data_json
        # Filled by RunIndex.finalize():
        self.key = -1
        self.expected_version = 0
        self.follows: ArtifactRecord | None = None
        self.version = declared_version or 0
        self.idempotent = False

    @property
    def judged(self) -> bool:
        """Whether rules judge this record: every artifact of the run, re-declarations of
        stored ones included (only prior records are history, never judged again)."""
        return not self.prior

    def __repr__(self) -> str:
        state = "prior" if self.prior else ("idempotent" if self.idempotent else "run")
        return (
            f"ArtifactRecord({self.project}/{self.id} {self.artifact_type} v{self.version} "
            f"by {self.agent}, {state})"
        )


class DuplicateArtifactError(ValueError):
    """Two artifacts of the run share a project and an id."""

    def __init__(self, first: ArtifactRecord, second: ArtifactRecord) -> None:
        super().__init__(
            f"duplicate artifact id '{second.id}' in project '{second.project}' "
            f"(first declared at {first.source}:{first.line})"
        )
        self.first = first
        self.second = second


def replay_key(record: ArtifactRecord) -> tuple[int, str, int]:
    """Replay order: iteration (unset first), then manifest path, then position in it."""
    iteration = _UNSET_ITERATION if record.iteration is None else record.iteration
    return (iteration, record.source, record.position)


_ITERATION = operator.attrgetter("iteration")
_REPLAY_FIELDS = operator.attrgetter("iteration", "source", "position")


class RunIndex:
    """The records of one replay, prior ones first, then the run's in replay order."""

    def __init__(self) -> None:
        self._prior: list[ArtifactRecord] = []
        self._run: list[ArtifactRecord] = []
        self.records: list[ArtifactRecord] = []
        # project -> artifact id -> the record a dependency on that id resolves to
        self.ids: dict[str, dict[str, ArtifactRecord]] = {}
        # (project, id, version) -> content hash of prior artifacts
        self._prior_versions: dict[tuple[str, str, int], str] = {}
        self._run_ids: dict[str, dict[str, ArtifactRecord]] = {}
        self._prior_by_version: dict[tuple[str, str, int], ArtifactRecord] | None = None
        self._finalized = False
        self._edges: list[list[int]] | None = None
        # records below this key depend only on earlier records (no forward edge)
        self._ordered_prefix = 0
        self._unresolved: list[tuple[ArtifactRecord, str]] = []
        self._components: list[list[int]] | None = None

    # -- building ---------------------------------------------------------------------
    def add_prior(self, record: ArtifactRecord) -> None:
        """An artifact already accepted (stored); prior records arrive in version order."""
        record.prior = True
        record.version = record.declared_version or 1
        self._prior.append(record)
        self._prior_versions[(record.project, record.id, record.version)] = record.content_hash

    def add(self, record: ArtifactRecord) -> None:
        """An artifact of the run; raises :class:`DuplicateArtifactError` on a repeated id."""
        record.prior = False
        seen = self._run_ids.setdefault(record.project, {})
        first = seen.get(record.id)
        if first is not None:
            raise DuplicateArtifactError(first, record)
        seen[record.id] = record
        self._run.append(record)

    def add_all(self, records: Sequence[ArtifactRecord]) -> bool:
        """:meth:`add` for records of one project, at C speed; False (nothing added) if
        they are of several projects or an id repeats (then :meth:`add` says which)."""
        if not records:
            return True
        project = records[0].project
        if any(record.prior or record.project != project for record in records):
            return False
        new = {record.id: record for record in records}
        seen = self._run_ids.setdefault(project, {})
        if len(new) != len(records) or not seen.keys().isdisjoint(new):
            return False
        seen.update(new)
        self._run.extend(records)
        return True

    def finalize(self, *, ordered: bool = False) -> RunIndex:
        """Order the run, number versions, spot identical re-declarations; call once.

        ``ordered=True`` says the run records were added in replay order already.

        An identical re-declaration of a stored artifact keeps its stored version and is
        not stored again, but it is judged like any artifact of the run, in the place of
        its stored copy: the same manifests get the same verdict whether an earlier run
        (perhaps with a laxer mode or threshold) stored them or not.
        """
        if self._finalized:
            return self
        self._finalized = True
        if not ordered:
            run = self._run
            if None in map(_ITERATION, run):
                run.sort(key=replay_key)
            else:  # the same order, with keys made at C speed
                run.sort(key=_REPLAY_FIELDS)
        prior_ids: dict[str, dict[str, ArtifactRecord]] = {}
        for record in self._prior:
            prior_ids.setdefault(record.project, {})[record.id] = record
        redeclared = self._find_redeclarations(prior_ids)
        if redeclared:
            self._prior = [record for record in self._prior if id(record) not in redeclared]
        self.records = self._prior + self._run
        self._prior = []
        # A dependency resolves to the run's artifact of that id, or to the store's.
        # Projects without history use the run's id table as is (a million inserts saved).
        ids = self.ids
        for project, project_ids in prior_ids.items():
            ids[project] = dict(project_ids)
        for project, run_ids in self._run_ids.items():
            if project not in prior_ids:
                ids[project] = run_ids
        # (project, type) -> the record holding the highest version so far
        highest: dict[tuple[str, str], ArtifactRecord] = {}
        for key, record in enumerate(self.records):
            record.key = key
            group = (record.project, record.artifact_type)
            holder = highest.get(group)
            top = holder.version if holder is not None else 0
            if record.prior:
                if record.version > top:
                    highest[group] = record
                continue
            history = prior_ids.get(record.project)
            if history is not None:
                ids[record.project][record.id] = record
                if record.idempotent:  # keeps its stored version
                    record.version = record.expected_version
                    if record.version > top:
                        highest[group] = record
                    continue
            record.expected_version = top + 1
            record.follows = holder
            record.version = record.declared_version or record.expected_version
            if record.version > top:
                highest[group] = record
        return self

    def _find_redeclarations(self, prior_ids: dict[str, dict[str, ArtifactRecord]]) -> set[int]:
        """Mark the run's identical re-declarations; the ids of the stored records they
        replace. Identical: same id and content as the stored version declared, or, with
        no version declared, as the newest stored version of that id. (A declared version
        never stored is a new version, even with the same content.)"""
        replaced: set[int] = set()
        if not prior_ids:
            return replaced
        versions = self._prior_versions
        for record in self._run:
            history = prior_ids.get(record.project)
            earlier = history.get(record.id) if history is not None else None
            if earlier is None:
                continue
            declared = record.declared_version
            if declared is not None and (record.project, record.id, declared) in versions:
                if versions[(record.project, record.id, declared)] != record.content_hash:
                    continue  # same version, other content: a version_mismatch
                match = declared
            elif declared is None and record.content_hash == earlier.content_hash:
                match = earlier.version
            else:
                continue
            record.idempotent = True
            record.expected_version = match
            replaced.update(
                id(candidate)
                for candidate in self._stored_copies(record.project, record.id, match, earlier)
            )
        return replaced

    def _stored_copies(
        self, project: str, artifact_id: str, version: int, newest: ArtifactRecord
    ) -> Iterator[ArtifactRecord]:
        if newest.version == version:
            yield newest
            return
        # An older version re-declared (rare): index every stored version, once.
        if self._prior_by_version is None:
            self._prior_by_version = {
                (record.project, record.id, record.version): record for record in self._prior
            }
        found = self._prior_by_version.get((project, artifact_id, version))
        if found is not None:
            yield found

    # -- reading ----------------------------------------------------------------------
    @property
    def run_records(self) -> list[ArtifactRecord]:
        return self._run

    def judged(self) -> Iterator[ArtifactRecord]:
        """Records the rules judge (the run's, re-declarations included), in replay order."""
        return iter(self._run)

    def prior_version_hash(self, project: str, artifact_id: str, version: int) -> str | None:
        return self._prior_versions.get((project, artifact_id, version))

    def resolve(self, project: str, artifact_id: str) -> ArtifactRecord | None:
        """The record a dependency on ``artifact_id`` in ``project`` points to."""
        return self.ids.get(project, {}).get(artifact_id)

    def edges(self) -> list[list[int]]:
        """Dependency edges by record key (unresolved dependencies are left out)."""
        if self._edges is None:
            ids = self.ids
            edges: list[list[int]] = []
            append = edges.append
            unresolved = self._unresolved
            prefix = len(self.records)
            empty: dict[str, ArtifactRecord] = {}
            for key, record in enumerate(self.records):
                project_ids = ids.get(record.project, empty)
                targets = []
                for dependency in record.depends_on:
                    target = project_ids.get(dependency)
                    if target is None:
                        if not record.prior:
                            unresolved.append((record, dependency))
                        continue
                    targets.append(target.key)
                    if target.key >= key and key < prefix:
                        prefix = key
                append(targets)
            self._edges = edges
            self._ordered_prefix = prefix
        return self._edges

    def unresolved(self) -> list[tuple[ArtifactRecord, str]]:
        """(record, dependency id) for each dependency of a run record that resolves to
        nothing, in replay order."""
        self.edges()
        return self._unresolved

    @property
    def ordered_prefix(self) -> int:
        """How many records, from the first, depend only on records before them.

        Every cycle has a member with an edge to itself or a later record (its first
        member in replay order does), so no record of this prefix is in a cycle, and
        the prefix in replay order is already an order with dependencies first.
        """
        self.edges()
        return self._ordered_prefix

    @property
    def in_replay_order(self) -> bool:
        """Whether every dependency points at an earlier record (then there is no cycle,
        and replay order is an order with dependencies first)."""
        return self.ordered_prefix == len(self.records)

    def components(self) -> list[list[int]]:
        """Strongly connected components after the :attr:`ordered_prefix`, reachable
        from judged records.

        Tarjan's algorithm, iteratively, over the records after the prefix only (the
        prefix depends on nothing after it). Components come out dependencies first: a
        component is listed after every component it depends on.
        """
        if self._components is None:
            prefix = self.ordered_prefix
            records = self.records
            seeds = (key for key in range(prefix, len(records)) if records[key].judged)
            self._components = _tarjan(self.edges(), seeds, len(records), prefix)
        return self._components

    def cycles(self) -> list[list[int]]:
        """Components that are cycles: several members, or one that depends on itself."""
        edges = self.edges()
        return [
            component
            for component in self.components()
            if len(component) > 1 or component[0] in edges[component[0]]
        ]


def _tarjan(
    edges: list[list[int]], seeds: Iterable[int], size: int, floor: int = 0
) -> list[list[int]]:
    """Components reachable from ``seeds``; records below ``floor`` count as done
    (visited, off the stack), so the search never enters them."""
    index = [0] * floor + [-1] * (size - floor)
    low = [0] * size
    on_stack = [False] * size
    stack: list[int] = []
    components: list[list[int]] = []
    counter = 0
    for seed in seeds:
        if index[seed] != -1:
            continue
        index[seed] = low[seed] = counter
        counter += 1
        stack.append(seed)
        on_stack[seed] = True
        work: list[tuple[int, int]] = [(seed, 0)]
        while work:
            node, position = work[-1]
            targets = edges[node]
            if position < len(targets):
                work[-1] = (node, position + 1)
                target = targets[position]
                if index[target] == -1:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack[target] = True
                    work.append((target, 0))
                elif on_stack[target] and index[target] < low[node]:
                    low[node] = index[target]
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                if low[node] < low[parent]:
                    low[parent] = low[node]
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack[member] = False
                    component.append(member)
                    if member == node:
                        break
                components.append(component)
    return components


__all__ = ["ArtifactRecord", "DuplicateArtifactError", "RunIndex", "replay_key"]
