"""Every report format from one run, each read back by a consumer; GitHub mode; terminal."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cli_support import REPO, TIMEOUT, check, clean_env, metaqore
from junitparser import Failure, JUnitXml

from metaqore.core.models import BlockingReport

# The official SARIF 2.1.0 schema (draft-04), kept next to the checkout in ../shared.
SARIF_SCHEMA = REPO.parent / "shared/schemas/sarif-schema-2.1.0.json"

BLOCKED_RUN = ("examples/conflicts", "examples/vetoes")
REPORT_KEYS = {
    "metaqore",
    "verdict",
    "mode",
    "policy",
    "summary",
    "findings",
    "blocking_reports",
    "audit",
}
SUMMARY_KEYS = {
    "projects",
    "artifacts",
    "conflicts",
    "vetoes",
    "blocking",
    "waived",
    "auto_resolved",
}
FINDING_KEYS = {
    "fingerprint",
    "kind",
    "rule",
    "severity",
    "blocking",
    "project_id",
    "artifact_id",
    "related",
    "message",
    "strategy",
    "location",
    "waived_by",
}
ANSI = "\x1b["


@pytest.fixture
def all_reports(workspace: Path) -> tuple[Path, Any]:
    """One blocked run over every variant, writing all four report files at once."""
    result = check(
        *BLOCKED_RUN,
        "--junit-xml",
        "out/report.xml",
        "--sarif",
        "out/report.sarif",
        "--markdown",
        "out/summary.md",
        cwd=workspace,
    )
    assert result.returncode == 1, result
    return workspace, result


def test_json_report_has_the_documented_shape(all_reports: tuple[Path, Any]) -> None:
    workspace, result = all_reports
    report = result.report()
    assert set(report) >= REPORT_KEYS
    assert report["metaqore"] == 1 and report["verdict"] == "blocked"
    assert (report["mode"], report["policy"]) == ("strict", "default_local_first")
    assert set(report["summary"]) == SUMMARY_KEYS
    assert report["summary"] == {
        "projects": 12,
        "artifacts": 14,
        "conflicts": 4,
        "vetoes": 9,
        "blocking": 13,
        "waived": 0,
        "auto_resolved": 0,
    }
    for finding in report["findings"]:
        assert set(finding) >= FINDING_KEYS
        assert finding["kind"] in ("conflict", "veto")
        assert set(finding["location"]) == {"path", "line"}
        assert (finding["strategy"] is None) == (finding["kind"] == "veto")
        assert re.fullmatch(r"[0-9a-f]{32}", finding["fingerprint"])
    assert len({f["fingerprint"] for f in report["findings"]}) == 13
    # One BlockingReport per project, holding exactly the blocking findings.
    reports = {r["project_id"]: r for r in report["blocking_reports"]}
    assert len(reports) == 12
    for each in reports.values():  # exactly the SPEC §2 model, field for field
        assert BlockingReport.model_validate(each).model_dump(mode="json") == each
    routing = reports["example-veto-routing"]
    assert routing["blocked_artifacts"] == ["marketing-summary"]
    (veto,) = routing["vetoes"]
    assert veto["policy_violated"] == "default_local_first"
    assert veto["details"]["sensitivity_source"] == "fraud-export"
    cycle = reports["example-circular-dependency"]["conflicts"][0]
    assert cycle["conflict_type"] == "circular_dependency"
    assert cycle["resolution_strategy"] == "escalate" and cycle["resolved"] is False
    # The audit block names the chain's head, which `audit verify --expect-head` checks.
    assert report["audit"]["path"] == "metaqore-audit.jsonl"
    verify = metaqore(
        "audit",
        "verify",
        "metaqore-audit.jsonl",
        "--expect-head",
        report["audit"]["head_hash"],
        cwd=workspace,
    )
    assert verify.returncode == 0, verify


def test_sarif_is_valid_and_located(all_reports: tuple[Path, Any]) -> None:
    workspace, result = all_reports
    sarif = json.loads((workspace / "out/report.sarif").read_text(encoding="utf-8"))
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema).validate(sarif)
    assert sarif["version"] == "2.1.0"
    (run,) = sarif["runs"]
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    report = result.report()
    # One rule per conflict type / veto policy, no more.
    assert sorted(rule_ids) == sorted({f["rule"] for f in report["findings"]})
    assert len(rule_ids) == len(set(rule_ids)) == 11
    located = {
        (
            r["ruleId"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
        )
        for r in run["results"]
    }
    expected = {
        (f["rule"], f["location"]["path"], f["location"]["line"]) for f in report["findings"]
    }
    assert located == expected
    blocking = {f["fingerprint"]: f["blocking"] for f in report["findings"]}
    for r in run["results"]:
        assert rule_ids[r["ruleIndex"]] == r["ruleId"]
        # Whatever its severity, a finding that fails the build is an error.
        if blocking[r["partialFingerprints"]["metaqore/v1"]]:
            assert r["level"] == "error"


def test_junit_xml_parses_back(all_reports: tuple[Path, Any]) -> None:
    workspace, result = all_reports
    xml = JUnitXml.fromfile(str(workspace / "out/report.xml"))
    suites = {suite.name: suite for suite in xml}
    report = result.report()
    assert set(suites) == {p["project_id"] for p in report["projects"]}
    failures = set()
    cases = 0
    for name, suite in suites.items():
        for case in suite:
            cases += 1
            for outcome in case.result:
                assert isinstance(outcome, Failure)
                failures.add((name, case.name, outcome.type))
    expected = {(f["project_id"], f["artifact_id"], f["rule"]) for f in report["findings"]}
    assert failures == expected
    assert xml.failures == 13
    # Every declared artifact is a test case; the passing ones have no result.
    assert cases >= report["summary"]["artifacts"]
    design = next(c for c in suites["example-circular-dependency"] if c.name == "api-design")
    assert design.is_passed


def test_markdown_summary_names_the_blocked_artifacts(all_reports: tuple[Path, Any]) -> None:
    workspace, result = all_reports
    markdown = (workspace / "out/summary.md").read_text(encoding="utf-8")
    assert markdown.startswith("## ❌ MetaQore: blocked")
    assert "| 12 | 14 | 4 | 9 | 13 | 0 | 0 | 0 |" in markdown
    blocks = re.findall(r"```mermaid\n(.*?)```", markdown, flags=re.DOTALL)
    assert len(blocks) == 1
    graph = blocks[0]
    labels = {
        node: text.replace("#35;", "#").split(" · ")[0]
        for node, text in re.findall(r'^\s*(n\d+)\["([^"]*)"\]', graph, flags=re.MULTILINE)
    }
    blocked_nodes = set()
    for line in graph.splitlines():
        match = re.match(r"\s*class (\S+) blocked$", line)
        if match:
            blocked_nodes.update(match.group(1).split(","))
    blocked = {
        artifact
        for project in result.report()["blocking_reports"]
        for artifact in project["blocked_artifacts"]
    }
    assert {labels[node] for node in blocked_nodes} == blocked
    assert "flaky-test#11" in blocked
    # The dependency edge of the cycle and the missing artifact appear too.
    assert "api-spec (missing)" in labels.values()
    for artifact in ("order-service", "marketing-summary", "plan-by-planner", "test-plan"):
        assert f"| {artifact} |" in markdown


def test_markdown_for_a_passing_run(workspace: Path) -> None:
    result = check("examples/passing", "--markdown", "summary.md", cwd=workspace)
    assert result.returncode == 0, result
    markdown = (workspace / "summary.md").read_text(encoding="utf-8")
    assert "MetaQore: pass" in markdown
    assert "```mermaid" not in markdown


# -- GitHub ------------------------------------------------------------------------------


def _outputs(text: str) -> dict[str, str]:
    """``name<<DELIM`` … ``DELIM`` blocks of a $GITHUB_OUTPUT file, as the runner reads them."""
    outputs: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        name, _, delimiter = line.partition("<<")
        value = []
        for inner in lines:
            if inner == delimiter:
                break
            value.append(inner)
        outputs[name] = "\n".join(value)
    return outputs


def test_github_annotations_summary_and_outputs(workspace: Path) -> None:
    (workspace / "gh").mkdir()
    env = clean_env(
        GITHUB_OUTPUT=str(workspace / "gh/output"),
        GITHUB_STEP_SUMMARY=str(workspace / "gh/summary.md"),
    )
    (workspace / "gh/output").write_text("earlier<<X\nkept\nX\n", encoding="utf-8")
    result = check(*BLOCKED_RUN, "--github", cwd=workspace, env=env)
    assert result.returncode == 1, result
    outputs = _outputs((workspace / "gh/output").read_text(encoding="utf-8"))
    assert outputs == {
        "earlier": "kept",  # appended to, never overwritten
        "verdict": "blocked",
        "blocking": "13",
        "conflicts": "4",
        "vetoes": "9",
        "audit-log": "metaqore-audit.jsonl",
        "report": "report.json",
    }
    summary = (workspace / "gh/summary.md").read_text(encoding="utf-8")
    assert "## ❌ MetaQore: blocked" in summary and "```mermaid" in summary
    assert summary.rstrip().endswith(
        "_3 more findings not annotated (GitHub shows 10 per level and step); see the job "
        "summary or the report._"
    )

    lines = result.stdout.splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    # GitHub shows 10 per step: the worst (the ten critical findings) come first.
    assert len(errors) == 10
    critical = sorted(
        f"{f['rule']} ({f['project_id']})"
        for f in result.report()["findings"]
        if f["severity"] == "critical"
    )
    titles = sorted(re.search(r",title=(.*?)::", e).group(1) for e in errors)  # type: ignore[union-attr]
    assert titles == critical
    assert errors[0].startswith(
        "::error file=examples/conflicts/circular_dependency/tests.metaqore.yaml,line=12,"
        "title=circular_dependency (example-circular-dependency)::circular dependency: "
    )
    assert "::notice::3 more findings not annotated" in result.stdout
    # The human report still follows.
    assert "metaqore: BLOCKED" in result.stdout


def test_github_is_on_by_default_under_github_actions(workspace: Path) -> None:
    env = clean_env(GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(workspace / "summary.md"))
    result = check("examples/vetoes/routing", cwd=workspace, env=env)
    assert result.returncode == 1, result
    assert result.stdout.startswith(
        "::error file=examples/vetoes/routing/export.metaqore.yaml,line=32,"
        "title=default_local_first (example-veto-routing)::"
    )
    assert "inherited from upstream artifact 'fraud-export'" in result.stdout.splitlines()[0]
    assert (workspace / "summary.md").is_file()

    off = check("examples/vetoes/routing", "--no-github", cwd=workspace, env=env)
    assert off.returncode == 1
    assert "::error" not in off.stdout

    plain = check("examples/vetoes/routing", cwd=workspace)
    assert "::error" not in plain.stdout


# -- terminal ----------------------------------------------------------------------------


def test_quiet_prints_blocking_findings_and_the_summary_only(workspace: Path) -> None:
    result = check("examples/conflicts", "--quiet", "--fail-on", "high", cwd=workspace)
    assert result.returncode == 1, result
    lines = result.stdout.splitlines()
    assert lines == [
        "examples/conflicts/circular_dependency/tests.metaqore.yaml:12: CRITICAL "
        "circular_dependency [example-circular-dependency/test-plan] circular dependency: "
        "test-plan → api-code → api-design → test-plan (by tester, coder, architect)",
        "examples/conflicts/missing_dependency/code.metaqore.yaml:16: HIGH missing_dependency "
        "[example-missing-dependency/order-service] code 'order-service' (by coder) depends on "
        "'api-spec', which is declared nowhere in project 'example-missing-dependency'",
        "examples/conflicts/parallel_creation/planner.metaqore.yaml:10: HIGH parallel_creation "
        "[example-parallel-creation/plan-by-planner] plan 'plan-by-planner' by planner (v2) "
        "competes with 'plan-by-architect' by architect (v1) in iteration 1 of project "
        "'example-parallel-creation'",
        "metaqore: BLOCKED — 4 projects, 9 artifacts, 3 blocking (3 conflicts, 0 vetoes), "
        "0 waived, 0 auto-resolved, 1 below threshold",
    ]
    assert result.stderr == ""
    passing = check("examples/passing", "-q", cwd=workspace)
    assert passing.stdout == (
        "metaqore: PASS — 1 project, 15 artifacts, 0 blocking, 0 waived, 0 auto-resolved\n"
    )


def test_terminal_groups_by_project_worst_first(workspace: Path) -> None:
    result = check("examples/passing", "examples/conflicts", cwd=workspace)
    assert result.returncode == 1
    heads = [line for line in result.stdout.splitlines() if line[:2] in ("✗ ", "✓ ")]
    assert [h.split(" ")[1] for h in heads] == [
        "example-circular-dependency",  # critical
        "example-missing-dependency",  # high
        "example-parallel-creation",  # high
        "example-version-mismatch",  # medium
        "checkout-service",  # passes
    ]
    assert result.stdout.startswith(
        "metaqore 1.0.0 · mode strict · policy default_local_first · fail-on low\n"
    )
    assert re.search(
        r"^audit: metaqore-audit.jsonl \(head sha256:[0-9a-f]{64}\)$",
        result.stdout,
        flags=re.MULTILINE,
    )


def test_no_colour_unless_a_terminal_or_asked(workspace: Path) -> None:
    piped = check("examples/conflicts/circular_dependency", cwd=workspace)
    assert ANSI not in piped.stdout and ANSI not in piped.stderr
    forced = check("examples/conflicts/circular_dependency", "--color", cwd=workspace)
    assert "\x1b[1;31mCRITICAL\x1b[0m" in forced.stdout
    off = check("examples/conflicts/circular_dependency", "--color", "--no-color", cwd=workspace)
    assert off.returncode == 2  # mutually exclusive options are a usage error

    tty = _run_on_a_terminal(workspace, "examples/conflicts/circular_dependency")
    assert "\x1b[1;31mCRITICAL\x1b[0m" in tty
    no_color = _run_on_a_terminal(workspace, "examples/conflicts/circular_dependency", NO_COLOR="1")
    assert ANSI not in no_color and "CRITICAL" in no_color
    flag = _run_on_a_terminal(workspace, "examples/conflicts/circular_dependency", "--no-color")
    assert ANSI not in flag and "CRITICAL" in flag


def _run_on_a_terminal(cwd: Path, *args: str, **env: str) -> str:
    """stdout of ``metaqore check`` when it is a pseudo-terminal."""
    pty = pytest.importorskip("pty")  # POSIX only
    primary, secondary = pty.openpty()
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "metaqore",
                "check",
                "--config",
                "examples/metaqore.yaml",
                *args,
            ],
            cwd=cwd,
            env=clean_env(**env),
            stdin=subprocess.DEVNULL,
            stdout=secondary,
            stderr=subprocess.PIPE,
        )
        os.close(secondary)
        chunks = []
        while True:
            ready, _, _ = select.select([primary], [], [], TIMEOUT)
            if not ready:
                break
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        process.wait(timeout=TIMEOUT)
        assert process.stderr is not None
        process.stderr.close()
    finally:
        os.close(primary)
    return b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
