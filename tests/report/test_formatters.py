"""Every report format, checked by a consumer of that format (schema, parser, CI conventions)."""

from __future__ import annotations

import json
import os
import re
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from jsonschema import Draft4Validator  # type: ignore[import-untyped]
from junitparser import Failure, JUnitXml, TestCase

from metaqore.exceptions import ConfigurationError
from metaqore.gate.verdict import ArtifactRef, Finding, Location, ProjectResult, Status, Verdict
from metaqore.report import FORMATTERS, ReportContext, get_formatter, publish_github, write_report
from metaqore.report.github import escape_data, escape_property
from metaqore.report.markdown import MAX_NODES, MAX_ROWS
from metaqore.report.sarif import FINGERPRINT_KEY

SARIF_SCHEMA = Path(__file__).resolve().parents[3] / "shared/schemas/sarif-schema-2.1.0.json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
MakeVerdict = Callable[..., Verdict]


def render(name: str, verdict: Verdict, context: ReportContext) -> str:
    return get_formatter(name).render(verdict, context)


def blocking_finding(number: int, severity: str = "high") -> Finding:
    return Finding(
        fingerprint=f"{number:032x}",
        kind="conflict",
        rule="parallel_creation",
        severity=severity,
        project_id="checkout-service",
        artifact_id=f"art-{number}",
        message=f"finding {number}",
        location=Location("manifests/checkout.metaqore.yaml", number + 1),
    )


# -- registry --------------------------------------------------------------------------


def test_registry_names_every_format() -> None:
    assert set(FORMATTERS) == {"terminal", "json", "junit", "sarif", "markdown", "github"}
    for name, formatter in FORMATTERS.items():
        assert formatter.name == name
        assert get_formatter(name) is formatter


def test_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown report format 'xml'.*sarif"):
        get_formatter("xml")


@pytest.mark.parametrize("name", sorted(FORMATTERS))
def test_every_format_renders_text_for_both_verdicts(
    name: str, verdict: Verdict, passing_verdict: Verdict, context: ReportContext
) -> None:
    for one in (verdict, passing_verdict):
        text = render(name, one, context)
        assert isinstance(text, str)
        assert text == "" or text.endswith("\n")


# -- JSON (SPEC §8) --------------------------------------------------------------------

SPEC_TOP = {
    "metaqore",
    "verdict",
    "mode",
    "policy",
    "summary",
    "findings",
    "blocking_reports",
    "audit",
}
SPEC_SUMMARY = {
    "projects",
    "artifacts",
    "conflicts",
    "vetoes",
    "blocking",
    "waived",
    "auto_resolved",
}
SPEC_FINDING = {
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
SPEC_BLOCKING_REPORT = {"project_id", "conflicts", "blocked_artifacts", "vetoes"}


def test_json_report_has_the_documented_shape(verdict: Verdict, context: ReportContext) -> None:
    data = json.loads(render("json", verdict, context))
    assert set(data) >= SPEC_TOP
    assert data["metaqore"] == 1
    assert data["verdict"] == "blocked"
    assert (data["mode"], data["policy"]) == ("strict", "default_local_first")
    assert set(data["summary"]) == SPEC_SUMMARY
    assert data["summary"] == {
        "projects": 4,
        "artifacts": 16,
        "conflicts": 7,
        "vetoes": 2,
        "blocking": 6,
        "waived": 1,
        "auto_resolved": 1,
    }
    assert set(data["audit"]) == {"path", "head_hash"}
    assert data["audit"]["path"] == "metaqore-audit.jsonl"
    # Baselined findings are only counted; every other bucket is listed.
    assert len(data["findings"]) == 9
    for finding in data["findings"]:
        assert set(finding) >= SPEC_FINDING
        assert finding["kind"] in {"conflict", "veto"}
        assert set(finding["location"]) == {"path", "line"}
        assert isinstance(finding["blocking"], bool)
    waived = [f for f in data["findings"] if f["waived_by"]]
    assert [f["artifact_id"] for f in waived] == ["ledger-b"]
    assert waived[0]["waived_by"]["approved_by"] == "alice"
    assert {r["project_id"] for r in data["blocking_reports"]} == {
        "analytics",
        "checkout-service",
        "docs",
        "payments",
    }
    for report in data["blocking_reports"]:
        assert set(report) >= SPEC_BLOCKING_REPORT
    payments = next(r for r in data["blocking_reports"] if r["project_id"] == "payments")
    assert [v["policy_violated"] for v in payments["vetoes"]] == [
        "default_local_first",
        "state_transition",
    ]


def test_json_report_keeps_non_ascii_text(
    make_verdict: MakeVerdict, context: ReportContext
) -> None:
    finding = blocking_finding(1)
    finding.message = "plan 'ü' → 'ß'"
    text = render("json", make_verdict([finding]), context)
    assert "plan 'ü' → 'ß'" in text
    assert json.loads(text)["findings"][0]["message"] == "plan 'ü' → 'ß'"


# -- SARIF -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sarif_validator() -> Draft4Validator:
    if not SARIF_SCHEMA.is_file():
        pytest.skip(f"SARIF schema not found at {SARIF_SCHEMA}")
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    assert schema["$schema"].startswith("http://json-schema.org/draft-04/")
    return Draft4Validator(schema)


def test_sarif_is_valid_against_the_schema(
    sarif_validator: Draft4Validator,
    verdict: Verdict,
    passing_verdict: Verdict,
    context: ReportContext,
) -> None:
    for one in (verdict, passing_verdict):
        log = json.loads(render("sarif", one, context))
        errors = sorted(sarif_validator.iter_errors(log), key=str)
        assert not errors, "\n".join(str(e.message) for e in errors[:5])
        assert log["version"] == "2.1.0"
        assert log["$schema"].endswith("sarif-schema-2.1.0.json")
        assert log["runs"][0]["invocations"][0]["executionSuccessful"] is True


def test_sarif_results_are_located_at_the_manifest_line(
    verdict: Verdict, context: ReportContext
) -> None:
    text = render("sarif", verdict, context)
    assert "file://" not in text
    run = json.loads(text)["runs"][0]
    results = run["results"]
    expected = {f.fingerprint: f for f in verdict.reported}
    assert len(results) == len(expected) == 9
    for result in results:
        finding = expected[result["partialFingerprints"][FINGERPRINT_KEY]]
        assert finding.location is not None
        physical = result["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"] == {
            "uri": finding.location.path,
            "uriBaseId": "%SRCROOT%",
        }
        assert physical["region"]["startLine"] == finding.location.line
        assert result["ruleId"] == finding.rule
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == finding.rule
        assert result["message"]["text"].startswith(finding.message)


def test_sarif_has_one_rule_per_rule_name_and_levels_by_severity(
    verdict: Verdict, context: ReportContext
) -> None:
    run = json.loads(render("sarif", verdict, context))["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    ids = [rule["id"] for rule in rules]
    assert len(ids) == len(set(ids))
    assert set(ids) == {f.rule for f in verdict.reported}
    by_id = {rule["id"]: rule for rule in rules}
    assert by_id["circular_dependency"]["defaultConfiguration"]["level"] == "error"
    assert by_id["version_mismatch"]["defaultConfiguration"]["level"] == "warning"
    assert by_id["stale_review"]["defaultConfiguration"]["level"] == "note"
    assert "security" in by_id["default_local_first"]["properties"]["tags"]
    assert by_id["default_local_first"]["properties"]["security-severity"] == "9.5"
    for rule in rules:
        assert rule["shortDescription"]["text"]
        assert rule["fullDescription"]["text"]
    levels = {
        result["partialFingerprints"][FINGERPRINT_KEY]: result["level"] for result in run["results"]
    }
    by_artifact = {f.artifact_id: levels[f.fingerprint] for f in verdict.reported}
    assert by_artifact["design-c"] == "error"  # blocking critical
    assert by_artifact["api-plan-b"] == "error"  # blocking high
    assert by_artifact["schema"] == "error"  # blocking medium: it fails the build
    assert by_artifact["api-plan"] == "warning"  # below threshold
    assert by_artifact["ledger-b"] == "note"  # waived
    assert by_artifact["notes"] == "note"  # auto-resolved


def test_sarif_waived_findings_are_accepted_suppressions(
    verdict: Verdict, context: ReportContext
) -> None:
    run = json.loads(render("sarif", verdict, context))["runs"][0]
    suppressed = [r for r in run["results"] if "suppressions" in r]
    assert len(suppressed) == 1
    (suppression,) = suppressed[0]["suppressions"]
    assert suppression["kind"] == "external"
    assert suppression["status"] == "accepted"
    assert suppression["justification"] == "Ledgers merged by hand in review"
    assert suppressed[0]["properties"]["metaqore"]["artifact_id"] == "ledger-b"


def test_sarif_related_locations_point_at_the_evidence(
    verdict: Verdict, context: ReportContext
) -> None:
    run = json.loads(render("sarif", verdict, context))["runs"][0]
    by_artifact = {r["properties"]["metaqore"]["artifact_id"]: r for r in run["results"]}
    (rival,) = by_artifact["api-plan-b"]["relatedLocations"]
    assert rival["physicalLocation"]["region"]["startLine"] == 12  # api-plan
    (upstream,) = by_artifact["fraud-model"]["relatedLocations"]
    assert upstream["physicalLocation"]["region"]["startLine"] == 5  # card-data
    assert "card-data" in upstream["message"]["text"]
    evidence = by_artifact["fraud-model"]["properties"]["metaqore"]["evidence"]
    assert evidence["sensitivity_source"] == "card-data"


def test_sarif_uris_are_percent_encoded_relative_references(
    sarif_validator: Draft4Validator, make_verdict: MakeVerdict, context: ReportContext
) -> None:
    finding = blocking_finding(1)
    finding.location = Location("agents/my run#1/plan 100%.metaqore.yaml", 3)
    log = json.loads(render("sarif", make_verdict([finding]), context))
    assert not list(sarif_validator.iter_errors(log))
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == (
        "agents/my%20run%231/plan%20100%25.metaqore.yaml"
    )


def test_sarif_manifest_outside_the_root_is_an_absolute_file_uri(
    sarif_validator: Draft4Validator, make_verdict: MakeVerdict, context: ReportContext
) -> None:
    finding = blocking_finding(1)
    finding.location = Location("/elsewhere/my run/plan.metaqore.yaml", 3)
    log = json.loads(render("sarif", make_verdict([finding]), context))
    assert not list(sarif_validator.iter_errors(log))
    artifact = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"][
        "artifactLocation"
    ]
    assert artifact == {"uri": "file:///elsewhere/my%20run/plan.metaqore.yaml"}


def test_sarif_finding_without_location_points_at_its_project_manifest(
    sarif_validator: Draft4Validator, make_verdict: MakeVerdict, context: ReportContext
) -> None:
    finding = blocking_finding(1)
    finding.location = None
    log = json.loads(render("sarif", make_verdict([finding]), context))
    assert not list(sarif_validator.iter_errors(log))
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "manifests/checkout.metaqore.yaml"
    assert location["region"]["startLine"] == 1


# -- JUnit XML -------------------------------------------------------------------------


def _cases(xml: str) -> dict[tuple[str, str], TestCase]:
    cases: dict[tuple[str, str], TestCase] = {}
    for suite in JUnitXml.fromstring(xml):
        for case in suite:
            cases[(suite.name, case.name)] = case
    return cases


def test_junit_has_a_suite_per_project_and_a_case_per_artifact(
    verdict: Verdict, context: ReportContext
) -> None:
    xml = JUnitXml.fromstring(render("junit", verdict, context))
    suites = {suite.name: suite for suite in xml}
    assert set(suites) == {"analytics", "checkout-service", "docs", "payments"}
    assert verdict.artifact_refs is not None
    refs = list(verdict.artifact_refs())
    for name, suite in suites.items():
        names = [case.name for case in suite]
        expected = [ref.artifact_id for ref in refs if ref.project_id == name]
        if name == "payments":
            expected.append("t-1")  # the vetoed task transition: an event, not an artifact
        assert names == expected
        for case in suite:
            assert case.classname == f"metaqore.{name}"
    located = {(ref.project_id, ref.artifact_id): (ref.path, str(ref.line)) for ref in refs}
    for (project, artifact), case in _cases(render("junit", verdict, context)).items():
        if (project, artifact) in located:
            assert (case._elem.get("file"), case._elem.get("line")) == located[(project, artifact)]


def test_junit_failures_are_exactly_the_blocking_findings(
    verdict: Verdict, context: ReportContext
) -> None:
    cases = _cases(render("junit", verdict, context))
    failed = {}
    for key, case in cases.items():
        failures = [r for r in case.result if isinstance(r, Failure)]
        if failures:
            failed[key] = sorted(f.type for f in failures)
    expected: dict[tuple[str, str], list[str]] = {}
    for finding in verdict.blocking:
        expected.setdefault((finding.project_id, finding.artifact_id), []).append(finding.rule)
    assert failed == {key: sorted(rules) for key, rules in expected.items()}
    failure = next(r for r in cases[("analytics", "tests")].result if isinstance(r, Failure))
    assert failure.message.startswith("missing_dependency: test_suite 'tests'")
    assert "missing: 'requirements', needed by 'tests'" in failure.text
    # Waived and below-threshold findings pass, with the finding in system-out.
    waived = cases[("payments", "ledger-b")]
    assert waived.is_passed
    assert "waived by alice" in waived.system_out
    below = cases[("checkout-service", "api-plan")]
    assert below.is_passed
    assert "[below threshold]" in below.system_out


def test_junit_several_blocking_findings_on_one_artifact_are_several_failures(
    make_verdict: MakeVerdict, context: ReportContext
) -> None:
    first = blocking_finding(1)
    second = blocking_finding(2)
    second.artifact_id = first.artifact_id = "api-plan"
    second.rule = "version_mismatch"
    first.location = second.location = Location("manifests/checkout.metaqore.yaml", 12)
    cases = _cases(render("junit", make_verdict([first, second]), context))
    types = sorted(r.type for r in cases[("checkout-service", "api-plan")].result)
    assert types == ["parallel_creation", "version_mismatch"]


def test_junit_without_artifact_refs_lists_the_artifacts_findings_name(
    make_verdict: MakeVerdict, context: ReportContext
) -> None:
    verdict = make_verdict(refs=False)
    cases = _cases(render("junit", verdict, context))
    assert set(cases) == {(f.project_id, f.artifact_id) for f in verdict.reported}
    failed = {key for key, case in cases.items() if not case.is_passed}
    assert failed == {(f.project_id, f.artifact_id) for f in verdict.blocking}


def test_junit_scales_linearly_to_many_artifacts(context: ReportContext) -> None:
    count = 30_000
    refs = [
        ArtifactRef("big", f"a{i}", "plan", "agent", 1, "m/big.metaqore.jsonl", i + 2)
        for i in range(count)
    ]
    findings = [blocking_finding(i) for i in range(0, count, 100)]
    for finding in findings:
        finding.project_id = "big"
        finding.artifact_id = f"a{int(finding.fingerprint, 16)}"
        finding.location = Location("m/big.metaqore.jsonl", int(finding.fingerprint, 16) + 2)
    verdict = Verdict(
        mode="strict",
        policy="default_local_first",
        fail_on="low",
        run_id="r",
        projects=[ProjectResult("big", artifacts=count, paths=["m/big.metaqore.jsonl"])],
        findings=findings,
        artifacts=count,
        artifact_refs=lambda: iter(refs),
    )
    started = time.perf_counter()
    xml = render("junit", verdict, context)
    elapsed = time.perf_counter() - started
    (suite,) = JUnitXml.fromstring(xml)
    assert suite.tests == count
    assert suite.failures == len(findings)
    assert elapsed < 20, f"{count} artifacts took {elapsed:.1f}s"


# -- Markdown --------------------------------------------------------------------------


def _mermaid(markdown: str) -> str | None:
    match = re.search(r"```mermaid\n(.*?)\n```", markdown, re.S)
    return match.group(1) if match else None


def _labels(graph: str) -> dict[str, str]:
    return dict(re.findall(r'\b(n\d+)\["([^"]*)"\]', graph))


def test_markdown_summary_has_verdict_counts_and_a_row_per_finding(
    verdict: Verdict, context: ReportContext
) -> None:
    markdown = render("markdown", verdict, context)
    assert markdown.startswith("## ❌ MetaQore: blocked")
    assert "| projects | artifacts | conflicts | vetoes | blocking | waived | auto-resolved" in (
        markdown
    )
    assert "| 4 | 16 | 7 | 2 | 6 | 1 | 1 | 1 | 1 |" in markdown
    header = "| status | severity | rule | project | artifact | location | message |"
    table = markdown.split(header, 1)[1].split("\n\n", 1)[0].strip().splitlines()[1:]
    assert len(table) == len(verdict.reported)
    for row, finding in zip(table, verdict.reported, strict=True):
        cells = re.split(r"(?<!\\)\|", row)[1:-1]
        assert len(cells) == 7
        assert finding.artifact_id in cells[4]
    assert "Unused (matched no finding)" in markdown
    assert "Expired (no longer applied)" in markdown


def test_markdown_mermaid_graph_names_every_blocked_artifact(
    verdict: Verdict, context: ReportContext
) -> None:
    graph = _mermaid(render("markdown", verdict, context))
    assert graph is not None
    assert graph.startswith("graph LR")
    labels = _labels(graph)
    names = {label.split(" · ")[0].removesuffix(" (missing)") for label in labels.values()}
    assert {f.artifact_id for f in verdict.blocking} <= names
    ids = {label.split(" · ")[0]: node for node, label in labels.items()}
    # The cycle as dependency edges, the rival as a labelled conflict edge.
    assert f"{ids['design-c']} --> {ids['design-a']}" in graph
    assert f"{ids['design-a']} --> {ids['design-b']}" in graph
    assert f"{ids['api-plan-b']} -.->|parallel_creation| {ids['api-plan']}" in graph
    # The missing dependency is a dashed node; the veto names its policy.
    dashed = re.search(r"^  class (\S+) missing$", graph, re.M)
    assert dashed is not None
    assert dashed.group(1).split(",") == [ids["requirements (missing)"]]
    assert "fraud-model · veto: default_local_first" in labels.values()
    for line in graph.splitlines()[1:]:
        assert re.fullmatch(
            r' {2,4}(subgraph p\d+\["[^"]*"\]|end|n\d+\["[^"]*"\]'
            r"|n\d+ --> n\d+|n\d+ -\.->\|[A-Za-z0-9_. -]+\| n\d+|classDef .*|class [n\d,]+ \w+)",
            line,
        ), line


def test_markdown_has_no_mermaid_block_when_nothing_blocks(
    passing_verdict: Verdict, context: ReportContext
) -> None:
    markdown = render("markdown", passing_verdict, context)
    assert markdown.startswith("## ✅ MetaQore: pass")
    assert "```mermaid" not in markdown
    assert "Nothing is blocked" in markdown


def test_markdown_escapes_cells_and_sanitises_mermaid_ids(
    make_verdict: MakeVerdict, context: ReportContext
) -> None:
    finding = blocking_finding(1)
    finding.artifact_id = 'plan "a|b" <x>'
    finding.message = "first | second\nthird <script>"
    markdown = render("markdown", make_verdict([finding]), context)
    row = next(line for line in markdown.splitlines() if "first \\|" in line)
    assert "first \\| second<br>third &lt;script&gt;" in row
    assert len(re.split(r"(?<!\\)\|", row)) == 9
    graph = _mermaid(markdown)
    assert graph is not None
    assert re.search(r'n0\["plan #quot;a\|b#quot; #lt;x#gt;"\]', graph)


def test_markdown_caps_the_table_and_the_graph(
    make_verdict: MakeVerdict, context: ReportContext
) -> None:
    findings = [blocking_finding(i) for i in range(MAX_ROWS + 50)]
    markdown = render("markdown", make_verdict(findings), context)
    rows = [line for line in markdown.splitlines() if line.startswith("| ❌ blocking")]
    assert len(rows) == MAX_ROWS
    assert "… and 50 more" in markdown
    graph = _mermaid(markdown)
    assert graph is not None
    assert len(_labels(graph)) == MAX_NODES
    assert f"Graph limited to {MAX_NODES} of {MAX_ROWS + 50} artifacts" in markdown


# -- GitHub ----------------------------------------------------------------------------


def test_github_annotations_worst_first_by_level(verdict: Verdict, context: ReportContext) -> None:
    lines = render("github", verdict, context).splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    assert len(errors) == len(verdict.blocking) == 6
    severities = {f"title={f.rule} ({f.project_id})": f.severity for f in verdict.blocking}
    order = ["critical", "high", "medium", "low"]
    seen = [
        next(severity for title, severity in severities.items() if title in line) for line in errors
    ]
    assert seen == sorted(seen, key=order.index)
    assert errors[0].startswith(
        "::error file=manifests/checkout.metaqore.yaml,line=40,"
        "title=circular_dependency (checkout-service)::circular dependency"
    )
    warnings = [line for line in lines if line.startswith("::warning ")]
    assert len(warnings) == 1 and "stale_review" in warnings[0]
    notices = [line for line in lines if line.startswith("::notice ")]
    assert len(notices) == 1 and "waived by alice" in notices[0]
    assert not any("auto-resolved" in line for line in lines)


def test_github_annotations_are_capped_with_a_notice(
    make_verdict: MakeVerdict, context: ReportContext
) -> None:
    findings = [blocking_finding(i, "medium") for i in range(12)]
    findings += [blocking_finding(100 + i, "critical") for i in range(3)]
    lines = render("github", make_verdict(findings), context).splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    assert len(errors) == 10
    # The three critical ones are among those shown, first.
    assert all("line=10" in line for line in errors[:3])
    assert lines[-1].startswith("::notice::5 more findings not annotated")


def test_github_notices_leave_room_for_the_overflow_notice(
    make_verdict: MakeVerdict, context: ReportContext
) -> None:
    findings = []
    for i in range(12):
        finding = blocking_finding(i)
        finding.status = Status.WAIVED
        finding.waived_by = {"approved_by": "alice", "reason": "ok", "expires": "2030-01-01"}
        findings.append(finding)
    lines = render("github", make_verdict(findings), context).splitlines()
    assert len([line for line in lines if line.startswith("::notice")]) == 10
    assert lines[-1] == "::notice::3 more findings not annotated (GitHub shows 10 per level " + (
        "and step); see the job summary or the report"
    )


def test_github_escapes_properties_and_data(
    make_verdict: MakeVerdict, context: ReportContext
) -> None:
    finding = blocking_finding(1)
    finding.project_id = "team,a:b"
    finding.location = Location("dir,x/a:b 50%.metaqore.yaml", 7)
    finding.message = "100% broken\r\n::set-output name=verdict::pass"
    text = render("github", make_verdict([finding]), context)
    (line,) = text.splitlines()
    assert line == (
        "::error file=dir%2Cx/a%3Ab 50%25.metaqore.yaml,line=7,"
        "title=parallel_creation (team%2Ca%3Ab)::100%25 broken%0D%0A::set-output "
        "name=verdict::pass"
    )
    assert escape_data("a%\r\n:,") == "a%25%0D%0A:,"
    assert escape_property("a%\r\n:,") == "a%25%0D%0A%3A%2C"


def _parse_github_output(text: str) -> dict[str, str]:
    """What the runner does with $GITHUB_OUTPUT: ``name=value`` and ``name<<EOF`` blocks."""
    outputs: dict[str, str] = {}
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        if "<<" in line:
            name, delimiter = line.split("<<", 1)
            value: list[str] = []
            while lines[index] != delimiter:
                value.append(lines[index])
                index += 1
            index += 1
            outputs[name] = "\n".join(value)
        else:
            name, _, single = line.partition("=")
            outputs[name] = single
    return outputs


def test_publish_github_appends_summary_and_outputs(
    tmp_path: Path, verdict: Verdict, context: ReportContext
) -> None:
    summary = tmp_path / "summary.md"
    output = tmp_path / "output.txt"
    summary.write_text("# earlier step\n", encoding="utf-8")
    output.write_text("earlier=1\n", encoding="utf-8")
    environ = {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(output)}
    publish_github(verdict, context=context, environ=environ, report_path="reports/metaqore.json")
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n## ❌ MetaQore: blocked")
    assert "```mermaid" in text
    raw = output.read_text(encoding="utf-8")
    assert re.search(r"^verdict<<(ghadelimiter_[0-9a-f-]{36})\nblocked\n\1$", raw, re.M)
    assert _parse_github_output(raw) == {
        "earlier": "1",
        "verdict": "blocked",
        "blocking": "6",
        "conflicts": "7",
        "vetoes": "2",
        "audit-log": "metaqore-audit.jsonl",
        "report": "reports/metaqore.json",
    }
    delimiters = re.findall(r"<<(\S+)", raw)
    assert len(set(delimiters)) == len(delimiters) == 6
    publish_github(verdict, context=context, environ=environ, markdown="## again")
    assert summary.read_text(encoding="utf-8").endswith("## again\n")
    assert text in summary.read_text(encoding="utf-8")
    again = _parse_github_output(output.read_text(encoding="utf-8"))
    assert again["report"] == ""


def test_publish_github_does_nothing_without_the_variables(
    tmp_path: Path, verdict: Verdict, context: ReportContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    publish_github(verdict, context=context, environ={})
    publish_github(verdict, context=context, environ={"GITHUB_OUTPUT": ""})
    assert list(tmp_path.iterdir()) == []


# -- terminal --------------------------------------------------------------------------


def test_terminal_groups_projects_blocking_first_by_worst_severity(
    verdict: Verdict, context: ReportContext
) -> None:
    text = render("terminal", verdict, context)
    heads = [line for line in text.splitlines() if line.startswith(("✗ ", "✓ "))]
    assert [head.split()[1] for head in heads] == [
        "checkout-service",
        "payments",
        "analytics",
        "docs",
    ]
    checkout = text.split("✗ checkout-service", 1)[1].split("\n\n", 1)[0]
    rules = re.findall(r"^  [✗·] (\w+) (\w+)", checkout, re.M)
    assert rules == [
        ("CRITICAL", "circular_dependency"),
        ("HIGH", "parallel_creation"),
        ("MEDIUM", "version_mismatch"),
        ("MEDIUM", "version_mismatch"),
        ("LOW", "stale_review"),
    ]
    assert "manifests/checkout.metaqore.yaml:40" in checkout


def test_terminal_renders_the_evidence_in_words(verdict: Verdict, context: ReportContext) -> None:
    text = render("terminal", verdict, context)
    assert "cycle: design-a → design-b → design-c → design-a" in text
    assert "missing: 'requirements', needed by 'tests'" in text
    assert "competing agents in iteration 2: coder ('api-plan-b' v2), planner ('api-plan' v1)" in (
        text
    )
    assert "version: declared 4, expected 2" in text
    assert "policy: default_local_first" in text
    assert "provider: openrouter" in text
    assert "sensitivity: critical, inherited from upstream artifact 'card-data'" in text
    assert "allowed providers: hmcp_gateway, ollama" in text
    assert "reviewer: bob" in text  # unknown keys, generically
    assert "[waived by alice until 2026-12-31: Ledgers merged by hand in review]" in text
    assert "[below threshold]" in text
    assert "[auto-resolved: retry]" in text
    assert "report 'report'" not in text  # baselined: counted, not listed


def test_terminal_summary_waivers_and_audit(verdict: Verdict, context: ReportContext) -> None:
    lines = render("terminal", verdict, context).splitlines()
    assert lines[-2] == (
        "metaqore: BLOCKED — 4 projects, 16 artifacts, 6 blocking (4 conflicts, 2 vetoes), "
        "1 waived, 1 auto-resolved, 1 below threshold, 1 baselined"
    )
    assert lines[-1] == f"audit: metaqore-audit.jsonl (head sha256:{'ab' * 32})"
    text = "\n".join(lines)
    waivers = text.split("\nwaivers:\n", 1)[1]
    assert "unused (matched no finding):\n    - parallel_creation on checkout-service/api-plan" in (
        waivers
    )
    assert "stale (the waived content changed):" in waivers
    assert "content is now sha256:" + "2" * 64 in waivers
    assert "expired (no longer applied):" in waivers
    assert "baseline: .metaqore-baseline.json — 1 known finding not shown" in text


def test_terminal_pass_summary(passing_verdict: Verdict, context: ReportContext) -> None:
    text = render("terminal", passing_verdict, context)
    assert "metaqore: PASS — 4 projects, 16 artifacts, 0 blocking, 1 waived" in text
    assert "✗" not in text


def test_terminal_colour_only_when_asked(verdict: Verdict, tmp_path: Path) -> None:
    plain = render("terminal", verdict, ReportContext(root=tmp_path, color=False))
    coloured = render("terminal", verdict, ReportContext(root=tmp_path, color=True))
    assert "\x1b[" not in plain
    assert "\x1b[1;31mCRITICAL\x1b[0m" in coloured
    assert ANSI.sub("", coloured) == plain


def test_terminal_quiet_prints_blocking_findings_and_the_summary(
    verdict: Verdict, tmp_path: Path
) -> None:
    lines = render("terminal", verdict, ReportContext(root=tmp_path, quiet=True)).splitlines()
    assert len(lines) == len(verdict.blocking) + 1
    assert lines[0] == (
        "manifests/checkout.metaqore.yaml:40: CRITICAL circular_dependency "
        "[checkout-service/design-c] circular dependency: design-a → design-b → design-c → design-a"
    )
    assert lines[-1].startswith("metaqore: BLOCKED — ")
    assert not any("waived" in line or "below threshold" in line for line in lines[:-1])


# -- write_report ----------------------------------------------------------------------


def test_write_report_creates_parents_and_replaces_whole(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "deep" / "metaqore.json"
    write_report(target, "x" * 1000)
    write_report(target, "short ✓\n")
    assert target.read_bytes() == "short ✓\n".encode()
    assert sorted(p.name for p in target.parent.iterdir()) == ["metaqore.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_failed_write_leaves_the_old_report_and_no_debris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    target = tmp_path / "report.sarif"
    target.write_text("old report", encoding="utf-8")

    def boom(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(f"metaqore.report.base.os.{failing}", boom)
    with pytest.raises(OSError, match="disk full"):
        write_report(target, "new report")
    assert target.read_text(encoding="utf-8") == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.sarif"]


def test_failed_write_of_a_new_report_leaves_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(OSError):
        write_report(blocker / "report.json", "{}")
    assert [p.name for p in tmp_path.iterdir()] == ["not-a-dir"]


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions"
)
def test_read_only_directory_leaves_no_partial_report(tmp_path: Path) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o555)
    try:
        with pytest.raises(PermissionError):
            write_report(directory / "report.json", "{}")
        assert list(directory.iterdir()) == []
    finally:
        directory.chmod(0o755)


def test_unencodable_text_fails_before_touching_the_report(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        write_report(target, "half \ud800 a surrogate")
    assert target.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_huge_reports_are_compact_json_and_still_valid(
    sarif_validator: Draft4Validator, make_verdict: MakeVerdict, context: ReportContext
) -> None:
    from metaqore.text import INDENT_UP_TO

    small = make_verdict([blocking_finding(i) for i in range(3)])
    huge = make_verdict([blocking_finding(i) for i in range(INDENT_UP_TO + 1)])
    for name in ("json", "sarif"):
        assert "\n  " in render(name, small, context)  # people read small ones
        text = render(name, huge, context)
        assert text.count("\n") == 1 and text.endswith("\n")  # one line: fast to write
        document = json.loads(text)
        if name == "sarif":
            assert not list(sarif_validator.iter_errors(document))
            assert len(document["runs"][0]["results"]) == INDENT_UP_TO + 1
        else:
            assert len(document["findings"]) == INDENT_UP_TO + 1
