"""``metaqore schema`` refuses what the gate refuses: here, a manifest with nothing in it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PROJECT = {"metaqore": 1, "project": {"id": "shop"}}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """The schema exactly as ``metaqore schema`` prints it."""
    result = subprocess.run(
        [sys.executable, "-m", "metaqore", "schema"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


def _validator(schema: dict[str, Any], definition: str | None = None) -> Any:
    if definition is None:
        return jsonschema.Draft202012Validator(schema)
    defs = schema["$defs"]
    return jsonschema.Draft202012Validator({**defs[definition], "$defs": defs})


@pytest.mark.parametrize(
    "manifest",
    [
        PROJECT,
        {**PROJECT, "artifacts": []},
        {**PROJECT, "artifacts": [], "tasks": [], "events": []},
        {**PROJECT, "run": {"id": "r1", "iteration": 1}},
    ],
    ids=["no lists", "empty artifacts", "all lists empty", "only a run"],
)
def test_a_manifest_holding_nothing_is_invalid(
    schema: dict[str, Any], manifest: dict[str, Any]
) -> None:
    assert not _validator(schema).is_valid(manifest)


@pytest.mark.parametrize(
    "manifest",
    [
        {**PROJECT, "artifacts": [{"id": "plan", "type": "plan", "created_by": "planner"}]},
        {**PROJECT, "artifacts": [], "tasks": [{"id": "t-1", "title": "Plan"}]},
        {**PROJECT, "events": [{"kind": "graph_node", "id": "n1"}]},
    ],
    ids=["an artifact", "a task", "an event"],
)
def test_a_manifest_holding_one_thing_is_valid(
    schema: dict[str, Any], manifest: dict[str, Any]
) -> None:
    _validator(schema).validate(manifest)


def test_every_bundled_example_is_valid(schema: dict[str, Any]) -> None:
    manifest, header, artifact = (
        _validator(schema),
        _validator(schema, "ManifestHeader"),
        _validator(schema, "ManifestArtifact"),
    )
    paths = sorted(EXAMPLES.rglob("*.metaqore.*"))
    assert paths
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".jsonl":
            first, *rest = text.splitlines()
            header.validate(json.loads(first))
            for line in rest:
                artifact.validate(json.loads(line))
        elif path.suffix == ".json":
            manifest.validate(json.loads(text))
        else:
            manifest.validate(yaml.safe_load(text))


def test_a_json_lines_header_needs_no_lists(schema: dict[str, Any]) -> None:
    # Its artifacts follow on their own lines, so an empty header is a valid first line.
    _validator(schema, "ManifestHeader").validate(PROJECT)
