"""The human report on stdout: findings grouped by project, worst first, with their evidence."""

from __future__ import annotations

from metaqore.gate.verdict import SEVERITY_ORDER, Finding, Status, Verdict
from metaqore.report.base import ReportContext, tool_version
from metaqore.report.evidence import (
    WAIVER_SECTIONS,
    evidence_lines,
    plural,
    status_tag,
    waiver_text,
)
from metaqore.text import one_line

_RESET = "\x1b[0m"
_SEVERITY_STYLE = {"critical": "1;31", "high": "31", "medium": "33", "low": "36"}
_BOLD = "1"
_DIM = "2"
_RED = "1;31"
_GREEN = "1;32"


class _Paint:
    """ANSI styling that is a no-op unless colour was asked for."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, style: str) -> str:
        if not self.enabled or not style:
            return text
        return f"\x1b[{style}m{text}{_RESET}"


def summary_line(verdict: Verdict) -> str:
    """``metaqore: BLOCKED — 2 projects, 14 artifacts, 3 blocking (2 conflicts, 1 veto), …``."""
    summary = verdict.summary
    counts = verdict.counts
    blocking = verdict.blocking
    text = (
        f"metaqore: {'PASS' if verdict.passed else 'BLOCKED'} — "
        f"{plural(summary['projects'], 'project')}, "
        f"{plural(summary['artifacts'], 'artifact')}, "
        f"{summary['blocking']} blocking"
    )
    if blocking:
        conflicts = sum(1 for f in blocking if f.kind == "conflict")
        vetoes = len(blocking) - conflicts
        text += f" ({plural(conflicts, 'conflict')}, {plural(vetoes, 'veto', 'vetoes')})"
    text += f", {summary['waived']} waived, {summary['auto_resolved']} auto-resolved"
    if counts[Status.WARNING.value]:
        text += f", {counts[Status.WARNING.value]} below threshold"
    if counts[Status.BASELINED.value]:
        text += f", {counts[Status.BASELINED.value]} baselined"
    if verdict.mode != "strict":
        text += f" [{verdict.mode} mode]"
    return text


def audit_line(verdict: Verdict) -> str | None:
    if not verdict.audit_path:
        return None
    head = f" (head {verdict.audit_head_hash})" if verdict.audit_head_hash else ""
    return one_line(f"audit: {verdict.audit_path}{head}")


def location_text(finding: Finding) -> str:
    location = finding.location
    return f"{location.path}:{location.line}" if location is not None else "-"


def group_by_project(verdict: Verdict) -> list[tuple[str, list[Finding]]]:
    """Projects with blocking findings first (by their worst one), then the others, by id."""
    grouped: dict[str, list[Finding]] = {project.project_id: [] for project in verdict.projects}
    for finding in verdict.reported:
        grouped.setdefault(finding.project_id, []).append(finding)

    def order(item: tuple[str, list[Finding]]) -> tuple[int, int, int, str]:
        project_id, findings = item
        worst_blocking = min(
            (SEVERITY_ORDER.get(f.severity, 9) for f in findings if f.blocking), default=None
        )
        if worst_blocking is not None:
            return (0, worst_blocking, 0, project_id)
        return (1, 0, 0 if findings else 1, project_id)

    return sorted(grouped.items(), key=order)


class TerminalFormatter:
    """The report a person reads in the CI log or their terminal."""

    name = "terminal"

    def render(self, verdict: Verdict, context: ReportContext) -> str:
        paint = _Paint(context.color)
        if context.quiet:
            return self._quiet(verdict, paint)
        names = {project.project_id: project for project in verdict.projects}
        lines: list[str] = []
        version = tool_version(verdict, context)
        lines.append(
            f"metaqore{(' ' + version) if version else ''} · mode {verdict.mode} · "
            f"policy {verdict.policy} · fail-on {verdict.fail_on}"
        )
        for project_id, findings in group_by_project(verdict):
            lines.append("")
            project = names.get(project_id)
            title = project_id
            if project is not None and project.name and project.name != project_id:
                title += f" ({project.name})"
            title = one_line(title)
            blocking = sum(1 for f in findings if f.blocking)
            if blocking:
                head = paint(f"✗ {title}", _BOLD) + " — " + paint("BLOCKED", _RED)
                detail = [f"{blocking} blocking"]
            else:
                head = paint(f"✓ {title}", _BOLD) + " — " + paint("pass", _GREEN)
                detail = []
            if project is not None:
                detail.append(plural(project.artifacts, "artifact"))
            others = len(findings) - blocking
            if others:
                detail.append(f"{others} not blocking")
            lines.append(f"{head} ({', '.join(detail)})" if detail else head)
            for finding in findings:
                lines.extend(self._finding(finding, paint))
        lines.extend(self._waivers(verdict))
        if verdict.baseline_path or verdict.counts[Status.BASELINED.value]:
            known = verdict.counts[Status.BASELINED.value]
            where = verdict.baseline_path or "baseline"
            lines.append("")
            lines.append(
                one_line(f"baseline: {where} — {plural(known, 'known finding')} not shown")
            )
        lines.append("")
        lines.append(paint(summary_line(verdict), _GREEN if verdict.passed else _RED))
        audit = audit_line(verdict)
        if audit is not None:
            lines.append(audit)
        return "\n".join(lines) + "\n"

    @staticmethod
    def _finding(finding: Finding, paint: _Paint) -> list[str]:
        severity = paint(finding.severity.upper(), _SEVERITY_STYLE.get(finding.severity, ""))
        marker = "✗" if finding.blocking else "·"
        head = (
            f"  {marker} {severity} {paint(one_line(finding.rule), _BOLD)} · "
            f"{one_line(finding.artifact_id)} · {one_line(location_text(finding))}"
        )
        tag = status_tag(finding)
        if tag is not None:
            head += " " + paint(one_line(tag), _DIM)
        lines = [head, f"      {one_line(finding.message)}"]
        lines.extend(paint(f"      {one_line(line)}", _DIM) for line in evidence_lines(finding))
        return lines

    @staticmethod
    def _waivers(verdict: Verdict) -> list[str]:
        lines: list[str] = []
        for key, title in WAIVER_SECTIONS:
            waivers = getattr(verdict.waivers, key)
            if not waivers:
                continue
            if not lines:
                lines.extend(["", "waivers:"])
            lines.append(f"  {title}:")
            lines.extend(f"    - {one_line(waiver_text(waiver))}" for waiver in waivers)
        return lines

    @staticmethod
    def _quiet(verdict: Verdict, paint: _Paint) -> str:
        lines = []
        for _project, findings in group_by_project(verdict):
            for finding in findings:
                if not finding.blocking:
                    continue
                severity = paint(
                    finding.severity.upper(), _SEVERITY_STYLE.get(finding.severity, "")
                )
                lines.append(
                    one_line(f"{location_text(finding)}: ")
                    + severity
                    + one_line(
                        f" {finding.rule} [{finding.project_id}/{finding.artifact_id}] "
                        + finding.message
                    )
                )
        lines.append(paint(summary_line(verdict), _GREEN if verdict.passed else _RED))
        return "\n".join(lines) + "\n"


__all__ = ["TerminalFormatter", "audit_line", "group_by_project", "location_text", "summary_line"]
