"""The JSON Lines hot path validates into dicts (``ArtifactLine``); the models decide.

A line the dict mirror accepts and the models refuse would pass the gate unchecked, so
the two are held to the same fields and, over many generated lines, the same answers.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Json, TypeAdapter, ValidationError

from metaqore.manifest.schema import (
    ARTIFACT_ADAPTER,
    ArtifactLine,
    ArtifactTask,
    ArtifactTaskLine,
    ManifestArtifact,
    ProvenanceEntry,
    ProvenanceLine,
)

LINE = TypeAdapter(Json[ArtifactLine])
GOOD_HASH = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("model", "mirror"),
    [
        (ManifestArtifact, ArtifactLine),
        (ArtifactTask, ArtifactTaskLine),
        (ProvenanceEntry, ProvenanceLine),
    ],
)
def test_the_mirror_has_the_models_fields_and_required_keys(
    model: type[BaseModel], mirror: Any
) -> None:
    schema = TypeAdapter(mirror).core_schema
    mirrored = schema["fields"]
    assert list(mirrored) == list(model.model_fields)
    required = {name for name, info in model.model_fields.items() if info.is_required()}
    assert {name for name, field in mirrored.items() if field.get("required")} == required


# Values each field might be given: valid ones and the near misses a model refuses.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=3),
    st.sampled_from([0.0, 1.0, 2.5, -1.0]),
    st.sampled_from(["", "a", "2", "public", "sensitive", "ed25519:s"]),
    st.sampled_from([511, 512, 513]).map(lambda length: "x" * length),
    st.sampled_from([GOOD_HASH, GOOD_HASH.upper(), GOOD_HASH[:-1], "ed25519:", "sha256:"]),
)
# deferred: a failure then prints a short name, not the whole strategy many times over
VALUES = st.deferred(
    lambda: st.one_of(
        SCALARS,
        st.lists(SCALARS, max_size=3),
        st.dictionaries(st.sampled_from(["k", "type", "actor"]), SCALARS, max_size=2),
    )
)
# A valid artifact with every field set; each example changes or removes a few of them.
BASE: dict[str, Any] = {
    "id": "a-1",
    "type": "plan",
    "created_by": "planner",
    "version": 2,
    "iteration": 0,
    "depends_on": ["b", "c"],
    "data": {"k": [1, {"x": None}]},
    "content_hash": GOOD_HASH,
    "task": {
        "type": "planning",
        "provider": "ollama",
        "sensitivity": "internal",
        "has_sensitive_data": False,
        "has_private_data": True,
        "is_security_task": False,
    },
    "provenance": [
        {"actor": "a", "action": "made", "key_id": "k", "signature": "ed25519:s", "reason": "r"}
    ],
}
PLACES = (
    [(key,) for key in [*BASE, "typo"]]
    + [("task", key) for key in [*BASE["task"], "typo"]]
    + [("provenance", 0, key) for key in [*BASE["provenance"][0], "typo"]]
)
DELETE = object()
CHANGES = st.lists(
    st.tuples(st.sampled_from(PLACES), st.one_of(st.just(DELETE), VALUES)), max_size=3
)


def _changed(changes: list[tuple[tuple[Any, ...], Any]]) -> dict[str, Any]:
    artifact = json.loads(json.dumps(BASE))
    for place, value in changes:
        parent: Any = artifact
        for step in place[:-1]:
            if not isinstance(parent, (dict, list)) or step not in (
                parent if isinstance(parent, dict) else range(len(parent))
            ):
                break
            parent = parent[step]
        else:
            if isinstance(parent, dict):
                if value is DELETE:
                    parent.pop(place[-1], None)
                else:
                    parent[place[-1]] = value
    return artifact


def _plain(value: Any) -> Any:
    """Enum members as their values, so a model dump and a mirror dict compare."""
    return json.loads(json.dumps(value, default=lambda member: member.value))


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=CHANGES)
def test_the_mirror_accepts_exactly_what_the_model_accepts(
    changes: list[tuple[tuple[Any, ...], Any]],
) -> None:
    line = json.dumps(_changed(changes))
    try:
        model = ARTIFACT_ADAPTER.validate_json(line)
    except ValidationError:
        model = None
    try:
        mirrored = LINE.validate_python(line)
    except ValidationError:
        mirrored = None
    if model is None:
        # The mirror may leave one thing to the loader: an id listed twice in depends_on.
        if mirrored is not None:
            depends_on = mirrored.get("depends_on", [])
            assert len(set(depends_on)) != len(depends_on), line
        return
    assert mirrored is not None, line
    assert _plain(mirrored) == _plain(model.model_dump(exclude_unset=True)), line
