"""Graph shapes that break naive code: a 100,000-long dependency chain (recursion) and a
cycle through 100,000 artifacts (a finding as large as the cycle). Both judged in full."""

from __future__ import annotations

import json
from pathlib import Path

from metaqore.config import MetaQoreConfig
from metaqore.core.rules import MAX_LISTED_MEMBERS
from metaqore.gate import GateOptions, run_gate

LENGTH = 100_000


def _write(path: Path, artifacts: list[dict[str, object]]) -> None:
    lines = [json.dumps({"metaqore": 1, "project": {"id": "p"}})]
    lines += [json.dumps(artifact) for artifact in artifacts]
    path.write_text("\n".join(lines) + "\n")


def test_a_long_chain_of_forward_references_is_judged_without_recursion(tmp_path: Path) -> None:
    # a0 -> a1 -> ... -> a99999, each declared before what it depends on (forward
    # references: replay order is not a dependency order, so the SCC search runs), and
    # the last one is sensitive: every artifact above it inherits that.
    artifacts: list[dict[str, object]] = [
        {"id": f"a{i}", "type": "step", "created_by": "agent", "depends_on": [f"a{i + 1}"]}
        for i in range(LENGTH - 1)
    ]
    artifacts[0]["task"] = {"provider": "openrouter"}
    artifacts.append(
        {
            "id": f"a{LENGTH - 1}",
            "type": "source",
            "created_by": "agent",
            "task": {"has_sensitive_data": True},
        }
    )
    _write(tmp_path / "chain.metaqore.jsonl", artifacts)
    verdict = run_gate(GateOptions(config=MetaQoreConfig(), root=tmp_path, audit=False))
    assert verdict.artifacts == LENGTH
    [veto] = verdict.blocking
    assert (veto.rule, veto.artifact_id) == ("default_local_first", "a0")
    assert veto.evidence["sensitivity_source"] == f"a{LENGTH - 1}"


def test_a_cycle_through_every_artifact_is_one_finding_of_bounded_size(tmp_path: Path) -> None:
    artifacts = [
        {
            "id": f"a{i}",
            "type": "step",
            "created_by": "agent",
            "depends_on": [f"a{(i + 1) % LENGTH}"],
        }
        for i in range(LENGTH)
    ]
    _write(tmp_path / "ring.metaqore.jsonl", artifacts)
    verdict = run_gate(GateOptions(config=MetaQoreConfig(), root=tmp_path, audit=False))
    [cycle] = verdict.blocking
    assert (cycle.rule, cycle.artifact_id) == ("circular_dependency", f"a{LENGTH - 1}")
    assert cycle.evidence["cycle_length"] == LENGTH
    assert cycle.evidence["member_count"] == LENGTH
    assert len(cycle.related) == MAX_LISTED_MEMBERS
    assert f"… {LENGTH + 1 - MAX_LISTED_MEMBERS} more …" in cycle.message
    assert len(cycle.message) < 2_000
    # The whole JSON report stays small: the cycle is counted, not listed.
    assert len(json.dumps(verdict.to_dict())) < 50_000
