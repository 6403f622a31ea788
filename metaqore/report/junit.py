"""JUnit XML: one testsuite per project, one testcase per artifact, failures for blocking findings.

Built with ``junit_xml`` so every CI test pane (GitLab, Jenkins, Azure, IDEs) shows the
gate like a test run. Linear in the number of artifacts: findings are grouped once and
handed to their artifact's testcase as the artifacts stream past.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

from junit_xml import TestCase, TestSuite, to_xml_report_string

from metaqore.gate.verdict import ArtifactRef, Finding, Verdict
from metaqore.report.base import ReportContext, tool_version
from metaqore.report.evidence import evidence_lines, status_tag

# Above this many testcases, skip junit_xml's minidom pretty-printer (memory-hungry)
# and indent with ElementTree instead; the document is the same.
_MINIDOM_LIMIT = 5_000


def _belongs_to(finding: Finding, ref: ArtifactRef) -> bool:
    """Whether ``finding`` is about the artifact ``ref`` (not an event sharing its id).

    Conflicts always attach to artifacts; a veto attaches to the artifact it judged,
    which is declared exactly where the finding is located.
    """
    location = finding.location
    if location is None or finding.kind == "conflict":
        return True
    return location.path == ref.path and location.line == ref.line


def _details(finding: Finding) -> str:
    lines = [f"{finding.severity.upper()} {finding.rule} ({finding.kind})", finding.message]
    if finding.location is not None:
        lines.append(f"at {finding.location.path}:{finding.location.line}")
    if finding.related:
        lines.append("related: " + ", ".join(finding.related))
    lines.extend(evidence_lines(finding))
    lines.append(f"fingerprint: {finding.fingerprint}")
    return "\n".join(lines)


def _case(
    project_id: str, name: str, path: str | None, line: int | None, findings: Iterable[Finding]
) -> TestCase:
    case = TestCase(
        name=name,
        classname=f"metaqore.{project_id}",
        file=path or None,
        line=str(line) if line else None,
        allow_multiple_subelements=True,
    )
    notes: list[str] = []
    for finding in findings:
        if finding.blocking:
            case.add_failure_info(
                message=f"{finding.rule}: {finding.message}",
                output=_details(finding),
                failure_type=finding.rule,
            )
        else:
            notes.append(f"{status_tag(finding)} {_details(finding)}")
    if notes:
        case.stdout = "\n\n".join(notes)
    return case


class JUnitFormatter:
    """The JUnit XML report (``--junit-xml``)."""

    name = "junit"

    def render(self, verdict: Verdict, context: ReportContext) -> str:
        # (project, attachment id) -> findings not yet given to a testcase
        pending: dict[tuple[str, str], list[Finding]] = {}
        for finding in verdict.reported:
            pending.setdefault((finding.project_id, finding.artifact_id), []).append(finding)
        cases: dict[str, list[Any]] = {project.project_id: [] for project in verdict.projects}
        count = 0
        if verdict.artifact_refs is not None:
            for ref in verdict.artifact_refs():
                key = (ref.project_id, ref.artifact_id)
                attached: list[Finding] = []
                waiting = pending.get(key)
                if waiting:
                    attached = [f for f in waiting if _belongs_to(f, ref)]
                    if len(attached) == len(waiting):
                        del pending[key]
                    elif attached:
                        pending[key] = [f for f in waiting if not _belongs_to(f, ref)]
                cases.setdefault(ref.project_id, []).append(
                    _case(ref.project_id, ref.artifact_id, ref.path, ref.line, attached)
                )
                count += 1
        # Events (tasks, graph nodes, messages) a veto judged, or, when the artifacts
        # are not known (a verdict rebuilt from plain data), every artifact findings name.
        for (project_id, subject), findings in pending.items():
            location = findings[0].location
            cases.setdefault(project_id, []).append(
                _case(
                    project_id,
                    subject,
                    location.path if location else None,
                    location.line if location else None,
                    findings,
                )
            )
            count += 1
        projects = {project.project_id: project for project in verdict.projects}
        blocked = {finding.project_id for finding in verdict.blocking}
        version = tool_version(verdict, context)
        suites = []
        for project_id, project_cases in cases.items():
            project = projects.get(project_id)
            properties = {
                "metaqore.verdict": "blocked" if project_id in blocked else "pass",
                "metaqore.mode": verdict.mode,
                "metaqore.policy": verdict.policy,
                "metaqore.fail_on": verdict.fail_on,
                "metaqore.run_id": verdict.run_id,
            }
            if version:
                properties["metaqore.version"] = version
            if project is not None and project.name:
                properties["project.name"] = project.name
            if project is not None and project.organization:
                properties["project.organization"] = project.organization
            suites.append(
                TestSuite(
                    name=project_id,
                    test_cases=project_cases,
                    file=project.paths[0] if project is not None and project.paths else None,
                    properties=properties,
                )
            )
        if count <= _MINIDOM_LIMIT:
            return str(to_xml_report_string(suites, prettyprint=True))
        flat = str(to_xml_report_string(suites, prettyprint=False))
        tree = ET.fromstring(flat)
        ET.indent(tree, space="\t")
        return '<?xml version="1.0" ?>\n' + ET.tostring(tree, encoding="unicode") + "\n"


__all__ = ["JUnitFormatter"]
