"""One at a time equals the whole set, at a few thousand artifacts (issue 5).

The gate judges a run in one batch over a :class:`RunIndex`; ``PSMPEngine`` judges one
artifact at a time against those declared before it. On a generated run with injected
faults (dependencies only to earlier artifacts, cycles only as self-loops, so the
one-at-a-time order sees the same graph) both must find the same conflicts.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.generate import generate
from metaqore.core.models import Artifact, Project
from metaqore.core.psmp import PSMPEngine, record_from_artifact
from metaqore.core.records import RunIndex

Signature = tuple[str, str, tuple[str, ...]]


@dataclass(frozen=True)
class _Stored:
    """A saved artifact as the engine reads it back (content hash computed once)."""

    id: str
    project_id: str
    artifact_type: str
    created_by: str
    version: int
    iteration: int | None
    depends_on: list[str]
    data: dict[str, Any]
    content_hash: str
    created_at: datetime


class _ProjectState:
    """The state-manager surface ``PSMPEngine`` uses, indexed by project.

    tests/core/memory_state.py scans every artifact on each call, which is quadratic
    in the run *and* rehashes every ``data``; a few thousand declarations need this.
    """

    def __init__(self, project_ids: list[str]) -> None:
        self.projects = {pid: Project(id=pid, name=pid) for pid in project_ids}
        self.by_project: dict[str, list[_Stored]] = {pid: [] for pid in project_ids}
        self.by_id: dict[str, _Stored] = {}

    def get_project(self, project_id: str) -> Project | None:
        return self.projects.get(project_id)

    def list_artifacts(self, project_id: str) -> list[_Stored]:
        # Saved in creation order; the engine replays them by created_at.
        return self.by_project.get(project_id, [])

    def get_artifact(self, artifact_id: str) -> _Stored | None:
        return self.by_id.get(artifact_id)

    def save_artifact(self, artifact: Artifact) -> Artifact:
        stored = _Stored(
            id=artifact.id,
            project_id=artifact.project_id,
            artifact_type=artifact.artifact_type,
            created_by=artifact.created_by,
            version=artifact.version,
            iteration=artifact.iteration,
            depends_on=list(artifact.depends_on),
            data=artifact.data,
            content_hash=artifact.content_hash,
            created_at=artifact.created_at,
        )
        self.by_project[artifact.project_id].append(stored)
        self.by_id[artifact.id] = stored
        return artifact


def _declarations(manifests: list[Path]) -> list[Artifact]:
    """The run's artifacts as core artifacts, versions filled in as the gate numbers them
    (the next of the type when none is declared). Each project's file is in replay order;
    projects are independent, so they are simply declared one after another."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    highest: dict[tuple[str, str], int] = {}
    found: list[Artifact] = []
    for path in manifests:
        lines = path.read_text("utf-8").splitlines()
        project = json.loads(lines[0])["project"]["id"]
        for line in lines[1:]:
            item = json.loads(line)
            group = (project, item["type"])
            version = item.get("version") or highest.get(group, 0) + 1
            highest[group] = max(highest.get(group, 0), version)
            artifact = Artifact(
                id=item["id"],
                project_id=project,
                artifact_type=item["type"],
                created_by=item["created_by"],
                version=version,
                iteration=item.get("iteration"),
                depends_on=item.get("depends_on", []),
                data=item.get("data", {}),
                created_at=start + timedelta(microseconds=len(found)),
            )
            found.append(artifact)
    return found


def test_declaring_one_at_a_time_finds_what_the_batch_finds(tmp_path: Path) -> None:
    run = generate(tmp_path, artifacts=3_000, seed=17, faults=6, projects=3, cycle_lengths=(1,))
    artifacts = _declarations(run.manifests)
    state = _ProjectState(sorted({artifact.project_id for artifact in artifacts}))
    engine = PSMPEngine(state)

    one_at_a_time: Counter[Signature] = Counter()
    for artifact in artifacts:
        for conflict in engine.check_conflicts(artifact):
            key = (conflict.conflict_type, conflict.artifact_id, tuple(sorted(conflict.related)))
            one_at_a_time[key] += 1
        # The gate's replay protocol: a blocked artifact still counts afterwards.
        state.save_artifact(artifact)

    index = RunIndex()
    for position, artifact in enumerate(artifacts):
        index.add(record_from_artifact(artifact, prior=False, position=position))
    index.finalize()
    whole_set: Counter[Signature] = Counter(
        (hit.conflict_type, hit.record.id, tuple(sorted(hit.related)))
        for rule in engine.rules
        for hit in rule.check(index)
    )

    psmp_faults = {"version", "parallel", "missing", "cycle"}
    assert sum(whole_set.values()) == sum(1 for f in run.findings if f.fault in psmp_faults)
    assert one_at_a_time == whole_set
