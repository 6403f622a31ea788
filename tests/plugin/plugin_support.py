"""Manifests and helpers shared by the pytest plugin's tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from metaqore.core.audit import verify_audit_log

# Unrelated third-party plugins that only slow down each inner run (and each xdist
# worker's start-up); blocking a plugin that is not installed is harmless.
UNRELATED_PLUGINS = ("-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:anyio")

#: Project ``alpha``: passes.
PASSING = """\
metaqore: 1
project: {id: alpha, name: Alpha service}
artifacts:
  - {id: spec, type: design, created_by: architect}
  - {id: code, type: code, created_by: coder, depends_on: [spec]}
"""

#: Project ``beta``: a missing dependency (high) on ``beta-code``, line 5.
BLOCKING = """\
metaqore: 1
project: {id: beta}
artifacts:
  - {id: beta-spec, type: design, created_by: architect}
  - {id: beta-code, type: code, created_by: coder, depends_on: [nowhere]}
"""

#: Project ``gamma``: a version mismatch (medium) on ``gamma-plan``.
MEDIUM = """\
metaqore: 1
project: {id: gamma}
artifacts:
  - {id: gamma-plan, type: plan, created_by: planner, version: 3}
"""

#: Project ``delta`` over two files: the code in the second needs the spec in the first.
CROSS_FILE = {
    "delta/spec.metaqore.yaml": """\
metaqore: 1
project: {id: delta}
run: {iteration: 1}
artifacts:
  - {id: delta-spec, type: design, created_by: architect}
""",
    "delta/code.metaqore.yaml": """\
metaqore: 1
project: {id: delta}
run: {iteration: 2}
artifacts:
  - {id: delta-code, type: code, created_by: coder, depends_on: [delta-spec]}
""",
}

#: Project ``epsilon``: public work routed to a cloud provider (allowed by the default
#: policy, vetoed by compliance_local_only).
CLOUD = """\
metaqore: 1
project: {id: epsilon}
artifacts:
  - id: blog-post
    type: docs
    created_by: writer
    task: {type: writing, provider: openrouter}
"""

#: Unreadable: an unknown key on line 6, column 5.
UNKNOWN_KEY = """\
metaqore: 1
project: {id: zeta}
artifacts:
  - id: zeta-code
    type: code
    dependson: [x]
    created_by: coder
"""


def lines(*patterns: str) -> list[str]:
    """fnmatch patterns where ``[`` is literal (node ids like ``metaqore[beta]``)."""
    return [pattern.replace("[", "[[]") for pattern in patterns]


def write(pytester: pytest.Pytester, files: dict[str, str]) -> None:
    """Write ``files`` (relative path -> text) under the pytester directory."""
    for name, text in files.items():
        target = pytester.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def audit_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def assert_one_valid_run(path: Path, *, runs: int = 1) -> list[dict[str, Any]]:
    """The audit chain is intact and holds exactly ``runs`` run_started…run_finished sections."""
    result = verify_audit_log(path)
    assert result.ok, result.message
    records = audit_records(path)
    kinds = [record["event_type"] for record in records]
    assert kinds.count("run_started") == runs, kinds
    assert kinds.count("run_finished") == runs, kinds
    # Sections are contiguous: each run_started is followed by its own records only.
    current = None
    for record in records:
        if record["event_type"] == "run_started":
            assert current is None, "a run started inside another run's section"
            current = record["run_id"]
        else:
            assert record["run_id"] == current
        if record["event_type"] == "run_finished":
            current = None
    return records
