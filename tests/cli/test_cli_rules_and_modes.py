"""PSMP rules and their negative neighbours, governance modes, thresholds and policies."""

from __future__ import annotations

from pathlib import Path

import yaml
from cli_support import (
    audit_records,
    check,
    copy_fixture,
    findings_by,
    last_run,
    metaqore,
)


def test_negative_neighbours_of_every_rule_and_veto_pass(workspace: Path) -> None:
    """Versions that continue, one agent per type and iteration, forward references,
    a diamond, and every event limit reached exactly: nothing to report."""
    copy_fixture("neighbours", workspace)
    result = check("neighbours", cwd=workspace)
    assert result.returncode == 0, result
    report = result.report()
    assert report["findings"] == []
    assert report["summary"]["projects"] == 5
    assert report["summary"]["artifacts"] == 12
    for project in ("nb-versions", "nb-parallel", "nb-forward", "nb-diamond", "nb-limits"):
        assert f"✓ {project} — pass" in result.stdout
    records = last_run(workspace / "metaqore-audit.jsonl")
    versions = {
        r["payload"]["artifact_id"]: r["payload"]["version"]
        for r in records
        if r["event_type"] == "artifact_declared"
    }
    assert (versions["plan-1"], versions["plan-2"], versions["plan-3"]) == (1, 2, 3)


def test_rule_variants(workspace: Path) -> None:
    """A self-loop, a stale version, three rivals and a bad task history."""
    copy_fixture("variants", workspace)
    result = check("variants", cwd=workspace)
    assert result.returncode == 1, result
    found = findings_by(result.report())
    assert set(found) == {
        ("var-self-loop", "circular_dependency", "config"),
        ("var-stale-version", "version_mismatch", "plan-b"),
        ("var-three-rivals", "parallel_creation", "design-b"),
        ("var-three-rivals", "parallel_creation", "design-c"),
        ("var-history", "state_transition", "t-skip"),
    }
    loop = found[("var-self-loop", "circular_dependency", "config")]
    assert loop["severity"] == "critical" and loop["strategy"] == "escalate"
    assert loop["evidence"]["cycle"] == ["config", "config"]
    assert "cycle: config → config" in result.stdout

    stale = found[("var-stale-version", "version_mismatch", "plan-b")]
    assert (stale["severity"], stale["strategy"]) == ("medium", "retry")
    assert stale["related"] == ["plan-a"]
    assert "(is stale)" in stale["message"]

    third = found[("var-three-rivals", "parallel_creation", "design-c")]
    assert (third["severity"], third["strategy"]) == ("high", "merge")
    assert third["related"] == ["design-a", "design-b"]
    assert third["evidence"]["agents"] == ["coder", "architect", "planner"]
    assert (
        "competing agents in iteration 4: coder ('design-c' v3), architect ('design-a' v1), "
        "planner ('design-b' v2)" in result.stdout
    )
    history = found[("var-history", "state_transition", "t-skip")]
    assert history["kind"] == "veto"
    assert (
        "pending -> completed is not allowed (allowed from pending: blocked, in_progress)"
        in (history["message"])
    )


def test_rule_evidence_in_the_json_report(workspace: Path) -> None:
    result = check("examples/conflicts", cwd=workspace)
    assert result.returncode == 1, result
    found = findings_by(result.report())
    cycle = found[("example-circular-dependency", "circular_dependency", "test-plan")]
    assert cycle["evidence"]["cycle"] == ["test-plan", "api-code", "api-design", "test-plan"]
    assert sorted(cycle["related"]) == ["api-code", "api-design"]
    assert cycle["message"] == (
        "circular dependency: test-plan → api-code → api-design → test-plan "
        "(by tester, coder, architect)"
    )
    missing = found[("example-missing-dependency", "missing_dependency", "order-service")]
    assert missing["evidence"] == {"missing": "api-spec", "needed_by": "order-service"}
    assert missing["related"] == ["api-spec"]
    parallel = found[("example-parallel-creation", "parallel_creation", "plan-by-planner")]
    assert parallel["related"] == ["plan-by-architect"]
    assert parallel["evidence"]["agents"] == ["planner", "architect"]
    assert parallel["location"] == {
        "path": "examples/conflicts/parallel_creation/planner.metaqore.yaml",
        "line": 10,
    }
    version = found[("example-version-mismatch", "version_mismatch", "cart-api-fix")]
    assert version["evidence"] == {"declared_version": 3, "expected_version": 2}
    assert {f["severity"] for f in found.values()} == {"critical", "high", "medium"}
    # Worst first in the report and on the terminal.
    order = [f["severity"] for f in result.report()["findings"]]
    assert order == ["critical", "high", "high", "medium"]
    text = result.stdout
    assert text.index("circular_dependency") < text.index("missing_dependency")
    assert text.index("parallel_creation") < text.index("version_mismatch")


# -- modes -----------------------------------------------------------------------------


def test_strict_blocks_a_version_gap(workspace: Path) -> None:
    result = check("examples/conflicts/version_mismatch", "--mode", "strict", cwd=workspace)
    assert result.returncode == 1, result
    (finding,) = result.report()["findings"]
    assert finding["status"] == "blocking" and finding["blocking"] is True


def test_adaptive_auto_resolves_a_version_gap(workspace: Path) -> None:
    result = check("examples/conflicts/version_mismatch", "--mode", "adaptive", cwd=workspace)
    assert result.returncode == 0, result
    report = result.report()
    assert report["verdict"] == "pass" and report["mode"] == "adaptive"
    (finding,) = report["findings"]
    assert finding["status"] == "auto_resolved" and finding["blocking"] is False
    assert finding["evidence"]["resolved_version"] == 2
    assert report["summary"]["auto_resolved"] == 1 and report["summary"]["blocking"] == 0
    assert "[auto-resolved: retry]" in result.stdout
    assert "resolved: version set to 2" in result.stdout
    assert "1 auto-resolved [adaptive mode]" in result.stdout
    events = [r["event_type"] for r in last_run(workspace / "metaqore-audit.jsonl")]
    assert "conflict_detected" in events and "conflict_resolved" in events
    resolved = [
        r
        for r in audit_records(workspace / "metaqore-audit.jsonl")
        if r["event_type"] == "conflict_resolved"
    ]
    assert resolved[-1]["payload"]["auto"] is True
    assert resolved[-1]["payload"]["conflict_type"] == "version_mismatch"


def test_adaptive_still_blocks_high_and_critical(workspace: Path) -> None:
    result = check("examples/conflicts", "--mode", "adaptive", cwd=workspace)
    assert result.returncode == 1, result
    statuses = {f["rule"]: f["status"] for f in result.report()["findings"]}
    assert statuses == {
        "version_mismatch": "auto_resolved",
        "parallel_creation": "blocking",
        "missing_dependency": "blocking",
        "circular_dependency": "blocking",
    }
    vetoes = check("examples/vetoes/routing", "--mode", "adaptive", cwd=workspace)
    assert vetoes.returncode == 1, vetoes


def test_adaptive_merges_a_medium_parallel_creation_only_without_key_collisions(
    workspace: Path,
) -> None:
    copy_fixture("variants", workspace)
    config = yaml.safe_load((workspace / "examples/metaqore.yaml").read_text(encoding="utf-8"))
    config["rules"] = {"parallel_creation": {"severity": "medium"}}
    (workspace / "adaptive.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = check(
        "variants/three-rivals.metaqore.yaml",
        "examples/conflicts/parallel_creation",
        "--mode",
        "adaptive",
        cwd=workspace,
        config="adaptive.yaml",
    )
    assert result.returncode == 1, result
    found = findings_by(result.report())
    merged = found[("var-three-rivals", "parallel_creation", "design-c")]
    assert merged["status"] == "auto_resolved"
    assert merged["evidence"]["merged_with"] == ["design-a", "design-b"]
    # Both plans have 'title' and 'scope': no mechanical merge, a human decides.
    colliding = found[("example-parallel-creation", "parallel_creation", "plan-by-planner")]
    assert colliding["severity"] == "medium" and colliding["status"] == "blocking"


def test_playground_reports_everything_and_blocks_nothing(workspace: Path) -> None:
    result = check("examples/conflicts", "examples/vetoes", "--mode", "playground", cwd=workspace)
    assert result.returncode == 0, result
    report = result.report()
    assert report["verdict"] == "pass"
    assert len(report["findings"]) == 13
    assert {f["status"] for f in report["findings"]} == {"warning"}
    assert report["summary"]["conflicts"] == 4 and report["summary"]["vetoes"] == 9
    assert report["summary"]["blocking"] == 0
    assert report["blocking_reports"] and all(
        not r["conflicts"] and not r["vetoes"] for r in report["blocking_reports"]
    )
    assert result.stdout.count("[below threshold]") == 13
    assert "13 below threshold [playground mode]" in result.stdout
    events = [r["event_type"] for r in last_run(workspace / "metaqore-audit.jsonl")]
    assert events.count("conflict_detected") == 4 and events.count("veto") == 9


def test_governance_mode_from_the_environment(workspace: Path) -> None:
    from cli_support import clean_env

    result = check(
        "examples/conflicts/version_mismatch",
        cwd=workspace,
        config=None,
        env=clean_env(METAQORE_GOVERNANCE_MODE="adaptive"),
    )
    assert result.returncode == 0, result
    assert result.report()["mode"] == "adaptive"


# -- thresholds ------------------------------------------------------------------------


def test_fail_on_high_turns_medium_into_warnings(workspace: Path) -> None:
    result = check("examples/conflicts", "--fail-on", "high", cwd=workspace)
    assert result.returncode == 1, result
    report = result.report()
    assert report["fail_on"] == "high"
    statuses = {f["rule"]: f["status"] for f in report["findings"]}
    assert statuses["version_mismatch"] == "warning"
    assert statuses["missing_dependency"] == "blocking"
    assert report["counts"]["warning"] == 1 and report["summary"]["blocking"] == 3
    assert "✓ example-version-mismatch (Example: version mismatch) — pass" in result.stdout
    assert "[below threshold]" in result.stdout
    assert "1 below threshold" in result.stdout

    alone = check("examples/conflicts/version_mismatch", "--fail-on", "high", cwd=workspace)
    assert alone.returncode == 0, alone
    assert alone.report()["findings"][0]["status"] == "warning"


def test_fail_on_critical(workspace: Path) -> None:
    high_only = check(
        "examples/conflicts/missing_dependency",
        "examples/conflicts/parallel_creation",
        "--fail-on",
        "critical",
        cwd=workspace,
    )
    assert high_only.returncode == 0, high_only
    assert {f["status"] for f in high_only.report()["findings"]} == {"warning"}
    with_cycle = check("examples/conflicts", "--fail-on", "critical", cwd=workspace)
    assert with_cycle.returncode == 1, with_cycle
    assert [f["rule"] for f in with_cycle.report()["findings"] if f["blocking"]] == [
        "circular_dependency"
    ]


def test_fail_on_from_the_config_file(workspace: Path) -> None:
    config = yaml.safe_load((workspace / "examples/metaqore.yaml").read_text(encoding="utf-8"))
    config["fail_on"] = "high"
    (workspace / "high.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = check("examples/conflicts/version_mismatch", cwd=workspace, config="high.yaml")
    assert result.returncode == 0, result
    # ... and the command line wins over the file.
    strict = check(
        "examples/conflicts/version_mismatch", "--fail-on", "low", cwd=workspace, config="high.yaml"
    )
    assert strict.returncode == 1, strict


# -- policies ---------------------------------------------------------------------------


def test_policy_option_changes_the_routing_verdict(workspace: Path) -> None:
    result = check("examples/passing", "--policy", "compliance", cwd=workspace)
    assert result.returncode == 1, result
    report = result.report()
    assert report["policy"] == "compliance_local_only"
    vetoed = {f["artifact_id"] for f in report["findings"]}
    # Everything that went to the cloud; nothing that stayed local.
    assert "checkout-plan" in vetoed and "cart-api" in vetoed
    assert "threat-model" not in vetoed and "pci-scope-review" not in vetoed
    assert {f["rule"] for f in report["findings"]} == {"compliance_local_only"}
    assert "policy compliance_local_only" in result.stdout

    unknown = metaqore("check", "--policy", "lenient-cloud", "examples/passing", cwd=workspace)
    assert unknown.returncode == 2, unknown
    assert "lenient-cloud" in unknown.stderr and "Traceback" not in unknown.stderr
