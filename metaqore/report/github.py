"""GitHub Actions: workflow-command annotations, the job summary and the step outputs.

GitHub shows at most 10 annotations of each level per step, so the worst findings come
first and one notice says how many more were not annotated.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path

from metaqore.gate.verdict import Finding, Status, Verdict
from metaqore.report.base import ReportContext
from metaqore.report.evidence import evidence_lines, plural, status_tag
from metaqore.report.markdown import MarkdownFormatter

_COMMAND = {Status.BLOCKING: "error", Status.WARNING: "warning", Status.WAIVED: "notice"}
OUTPUT_NAMES = ("verdict", "blocking", "conflicts", "vetoes", "audit-log", "report")


def escape_data(text: str) -> str:
    """A workflow command's message: ``%``, CR and LF encoded (as @actions/core does)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command property value: the data escapes plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def annotation(level: str, finding: Finding) -> str:
    """``::error file=…,line=…,title=…::message`` for one finding."""
    properties: list[tuple[str, str]] = []
    if finding.location is not None:
        properties.append(("file", finding.location.path))
        properties.append(("line", str(finding.location.line)))
    properties.append(("title", f"{finding.rule} ({finding.project_id})"))
    message = finding.message
    tag = status_tag(finding)
    if tag is not None:
        message += f" {tag}"
    evidence = evidence_lines(finding)
    if evidence:
        message += "\n" + "\n".join(evidence)
    joined = ",".join(f"{key}={escape_property(value)}" for key, value in properties)
    return f"::{level} {joined}::{escape_data(message)}"


class GitHubFormatter:
    """Workflow commands that annotate the manifests in the pull request's diff."""

    name = "github"

    def render(self, verdict: Verdict, context: ReportContext) -> str:
        by_level: dict[str, list[Finding]] = {level: [] for level in _COMMAND.values()}
        for finding in verdict.reported:  # worst first
            level = _COMMAND.get(finding.status)
            if level is not None:
                by_level[level].append(finding)
        limit = max(0, context.max_annotations)
        budget = dict.fromkeys(by_level, limit)
        if any(len(findings) > limit for findings in by_level.values()):
            # The "N more" notice is itself a notice: keep room for it.
            budget["notice"] = max(0, limit - 1)
        lines: list[str] = []
        hidden = 0
        for level, findings in by_level.items():
            shown = findings[: budget[level]]
            hidden += len(findings) - len(shown)
            lines.extend(annotation(level, finding) for finding in shown)
        if hidden:
            lines.append(
                "::notice::"
                + escape_data(
                    f"{plural(hidden, 'more finding')} not annotated (GitHub shows "
                    f"{limit} per level and step); see the job summary or the report"
                )
            )
        return "\n".join(lines) + "\n" if lines else ""


def _output_block(name: str, value: str) -> str:
    """``name<<DELIMITER`` … ``DELIMITER``: safe for any value, multi-line included."""
    delimiter = f"ghadelimiter_{uuid.uuid4()}"
    while delimiter in name or delimiter in value:  # pragma: no cover - astronomically rare
        delimiter = f"ghadelimiter_{uuid.uuid4()}"
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


def step_outputs(
    verdict: Verdict, *, report_path: str | os.PathLike[str] | None = None
) -> dict[str, str]:
    """The action's outputs (SPEC §11): verdict, counts, audit log and report paths."""
    summary = verdict.summary
    return {
        "verdict": verdict.verdict,
        "blocking": str(summary["blocking"]),
        "conflicts": str(summary["conflicts"]),
        "vetoes": str(summary["vetoes"]),
        "audit-log": verdict.audit_path or "",
        "report": os.fspath(report_path) if report_path is not None else "",
    }


def _append(path: str, text: str) -> None:
    with Path(path).open("a", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def publish_github(
    verdict: Verdict,
    *,
    context: ReportContext,
    environ: Mapping[str, str],
    markdown: str | None = None,
    report_path: str | os.PathLike[str] | None = None,
) -> None:
    """Append the job summary to ``$GITHUB_STEP_SUMMARY`` and the outputs to ``$GITHUB_OUTPUT``.

    Either file is skipped when its variable is unset or empty; both are appended to,
    never overwritten (other steps of the job write there too).
    """
    summary_file = environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        if markdown is None:
            markdown = MarkdownFormatter().render(verdict, context)
        _append(summary_file, markdown if markdown.endswith("\n") else markdown + "\n")
    output_file = environ.get("GITHUB_OUTPUT")
    if output_file:
        outputs = step_outputs(verdict, report_path=report_path)
        _append(output_file, "".join(_output_block(k, v) for k, v in outputs.items()))


__all__ = [
    "OUTPUT_NAMES",
    "GitHubFormatter",
    "annotation",
    "escape_data",
    "escape_property",
    "publish_github",
    "step_outputs",
]
