"""RunIndex.add_all: the loader's bulk add, which must refuse exactly what add refuses."""

from __future__ import annotations

import pytest

from metaqore.core.records import ArtifactRecord, DuplicateArtifactError, RunIndex


def _record(artifact_id: str, project: str = "p", position: int = 0) -> ArtifactRecord:
    return ArtifactRecord(
        project=project,
        id=artifact_id,
        artifact_type="t",
        agent="a",
        content_hash="sha256:" + "0" * 64,
        source="m.metaqore.jsonl",
        line=position + 2,
        position=position,
    )


def test_records_of_one_project_are_added_at_once() -> None:
    index = RunIndex()
    records = [_record(f"a{n}", position=n) for n in range(5)]
    assert index.add_all(records) is True
    assert index.add_all([]) is True
    index.finalize()
    assert [record.id for record in index.run_records] == ["a0", "a1", "a2", "a3", "a4"]
    assert index.resolve("p", "a3") is records[3]


@pytest.mark.parametrize(
    "second",
    [
        [_record("b0"), _record("b0", position=1)],  # an id twice in the batch
        [_record("b0"), _record("a0", position=1)],  # an id added before
        [_record("b0"), _record("b1", project="q", position=1)],  # two projects
    ],
    ids=["repeated", "added-before", "two-projects"],
)
def test_anything_add_would_question_is_left_to_add(second: list[ArtifactRecord]) -> None:
    index = RunIndex()
    first = _record("a0")
    assert index.add_all([first]) is True
    assert index.add_all(second) is False  # and nothing of it was added:
    added, seen = [], {("p", "a0")}
    for record in second:
        if (record.project, record.id) in seen:
            with pytest.raises(DuplicateArtifactError):
                index.add(record)
        else:
            index.add(record)
            added.append(record.id)
            seen.add((record.project, record.id))
    index.finalize()
    assert [record.id for record in index.run_records] == ["a0", *added]


def test_a_prior_record_is_never_added_as_the_run_s() -> None:
    index = RunIndex()
    stored = _record("a0")
    index.add_prior(stored)
    assert index.add_all([stored]) is False
