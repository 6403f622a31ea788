from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from metaqore.core.models import (
    PROJECT_TRANSITIONS,
    TASK_TRANSITIONS,
    Artifact,
    BlockingReport,
    Checkpoint,
    Conflict,
    ConflictSeverity,
    Project,
    ProjectStatus,
    Provenance,
    ResolutionStrategy,
    Task,
    TaskStatus,
    VetoReason,
)
from metaqore.exceptions import InvalidTransitionError


@pytest.mark.parametrize(
    ("model", "kwargs", "prefix"),
    [
        (Artifact, {"project_id": "p", "artifact_type": "plan", "created_by": "a"}, "art"),
        (Project, {"name": "n"}, "proj"),
        (Task, {"project_id": "p", "title": "t"}, "task"),
        (Conflict, {"artifact_id": "a", "description": "d"}, "conf"),
        (Checkpoint, {"project_id": "p", "label": "l", "snapshot": {}}, "chk"),
        (Provenance, {"artifact_id": "a", "actor": "x", "action": "created"}, "prov"),
    ],
)
def test_generated_ids_have_prefix_and_12_hex(model, kwargs, prefix):
    first, second = model(**kwargs), model(**kwargs)
    assert re.fullmatch(rf"{prefix}_[0-9a-f]{{12}}", first.id)
    assert first.id != second.id


def test_timestamps_are_utc_aware_even_from_naive_or_other_zones():
    naive = datetime(2026, 1, 1, 12, 0, 0)
    plus_two = datetime(2026, 1, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    art = Artifact(project_id="p", artifact_type="t", created_by="a", created_at=naive)
    task = Task(project_id="p", title="t", created_at=plus_two)
    assert art.created_at == datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert task.created_at.utcoffset() == timedelta(0)
    assert task.created_at.hour == 12
    assert Project(name="n").created_at.tzinfo is not None


def test_unknown_fields_are_rejected():
    with pytest.raises(ValidationError, match="extra"):
        Artifact(project_id="p", artifact_type="t", created_by="a", dependson=["x"])


def test_content_hash_is_sha256_of_canonical_json():
    import hashlib

    art = Artifact(project_id="p", artifact_type="t", created_by="a", data={"b": 1, "a": "é"})
    expected = hashlib.sha256('{"a":"é","b":1}'.encode()).hexdigest()
    assert art.content_hash == f"sha256:{expected}"
    reordered = Artifact(project_id="p", artifact_type="t", created_by="a", data={"a": "é", "b": 1})
    assert reordered.content_hash == art.content_hash


def test_artifact_round_trips_through_python_and_json_dumps():
    art = Artifact(project_id="p", artifact_type="t", created_by="a", data={"k": [1, 2]})
    art.add_conflict(Conflict(artifact_id=art.id, description="d"))
    art.add_provenance(Provenance(artifact_id=art.id, actor="a", action="created"))
    dumped = art.model_dump()
    assert dumped["is_blocked"] is True
    assert Artifact.model_validate(dumped) == art
    assert Artifact.model_validate_json(art.model_dump_json()) == art
    assert Artifact.model_validate(json.loads(art.model_dump_json())).is_blocked is True


def test_round_trip_refuses_a_content_hash_that_does_not_match_the_data():
    dumped = Artifact(project_id="p", artifact_type="t", created_by="a", data={"k": 1}).model_dump()
    dumped["data"] = {"k": 2}
    with pytest.raises(ValidationError, match="does not match"):
        Artifact.model_validate(dumped)


def test_is_blocked_tracks_unresolved_conflicts():
    art = Artifact(project_id="p", artifact_type="t", created_by="a")
    assert art.is_blocked is False
    conflict = Conflict(artifact_id=art.id, description="d")
    art.add_conflict(conflict)
    assert art.is_blocked is True
    conflict.mark_resolved(ResolutionStrategy.OVERRIDE)
    assert conflict.resolved and conflict.resolved_at is not None
    assert conflict.resolution_strategy is ResolutionStrategy.OVERRIDE
    assert art.is_blocked is False


def test_conflict_defaults():
    conflict = Conflict(artifact_id="a", description="d")
    assert conflict.severity is ConflictSeverity.MEDIUM
    assert conflict.conflict_type == "generic"
    assert conflict.resolution_strategy is ResolutionStrategy.RETRY
    assert conflict.related == []
    assert VetoReason(reason="r", policy_violated="p").severity is ConflictSeverity.CRITICAL


_TASK_PAIRS = [(a, b) for a in TaskStatus for b in TaskStatus if a is not b]
_PROJECT_PAIRS = [(a, b) for a in ProjectStatus for b in ProjectStatus if a is not b]


@pytest.mark.parametrize(("start", "target"), _TASK_PAIRS)
def test_task_transition_table_is_enforced(start, target):
    task = Task.model_construct(project_id="p", title="t", status=start, id="task_1")
    task = Task.model_validate(task.model_dump())
    if target in TASK_TRANSITIONS[start]:
        task.transition(target)
        assert task.status is target
    else:
        with pytest.raises(InvalidTransitionError, match=f"{start.value} -> {target.value}"):
            task.transition(target)
        with pytest.raises(InvalidTransitionError):
            task.status = target
        assert task.status is start


@pytest.mark.parametrize(("start", "target"), _PROJECT_PAIRS)
def test_project_transition_table_is_enforced(start, target):
    project = Project(name="n", status=start)
    if target in PROJECT_TRANSITIONS[start]:
        project.transition(target)
        assert project.status is target
    else:
        with pytest.raises(InvalidTransitionError):
            project.transition(target)
        assert project.status is start


def test_archived_and_completed_are_terminal():
    assert PROJECT_TRANSITIONS[ProjectStatus.ARCHIVED] == frozenset()
    assert TASK_TRANSITIONS[TaskStatus.COMPLETED] == frozenset()


def test_mark_completed_sets_completed_at_only_from_in_progress():
    task = Task(project_id="p", title="t")
    with pytest.raises(InvalidTransitionError):
        task.mark_completed()
    task.transition("in_progress")
    task.mark_completed()
    assert task.status is TaskStatus.COMPLETED
    assert task.completed_at == task.updated_at


def test_add_artifact_and_task_bump_updated_at():
    project = Project(name="n", updated_at=datetime(2020, 1, 1, tzinfo=UTC))
    project.add_artifact(Artifact(project_id=project.id, artifact_type="t", created_by="a"))
    assert project.updated_at.year > 2020
    before = project.updated_at
    project.add_task(Task(project_id=project.id, title="t"))
    assert project.updated_at >= before
    assert len(project.artifacts) == len(project.tasks) == 1


def test_blocking_report_keeps_blocked_artifacts_in_order_with_unresolved_conflicts():
    def art(name, *conflicts):
        return Artifact(
            id=name, project_id="p", artifact_type="t", created_by="a", blocked_by=list(conflicts)
        )

    resolved = Conflict(artifact_id="b", description="old")
    resolved.mark_resolved("merge")
    c1 = Conflict(artifact_id="c", description="one")
    c2 = Conflict(artifact_id="a", description="two")
    report = BlockingReport.from_artifacts(
        "p", [art("c", c1), art("b", resolved), art("a", c2), art("d")]
    )
    assert report.blocked_artifacts == ["c", "a"]
    assert [c.description for c in report.conflicts] == ["one", "two"]
    assert report.vetoes == []
