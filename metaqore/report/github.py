"""GitHub Actions: workflow-command annotations, the job summary and the step outputs.

GitHub shows at most 10 annotations of each level per step, so the worst findings come
first and one notice says how many more were not annotated.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path

from metaqore.exceptions import ManifestError, MetaQoreError
from metaqore.gate.verdict import Finding, Status, Verdict
from metaqore.report.base import ReportContext
from metaqore.report.evidence import evidence_lines, plural, status_tag
from metaqore.report.markdown import MarkdownFormatter, cell

_COMMAND = {Status.BLOCKING: "error", Status.WARNING: "warning", Status.WAIVED: "notice"}
_MAX_SUMMARY_PROBLEMS = 50
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
        limit = max(0, context.max_annotations)
        shown, hidden = annotated(verdict, limit)
        lines = [annotation(level, finding) for level, finding in shown]
        if hidden:
            lines.append("::notice::" + escape_data(not_annotated_text(hidden, limit)))
        return "\n".join(lines) + "\n" if lines else ""


def annotated(verdict: Verdict, limit: int) -> tuple[list[tuple[str, Finding]], int]:
    """The (level, finding) pairs to annotate, worst first, and how many are left out."""
    by_level: dict[str, list[Finding]] = {level: [] for level in _COMMAND.values()}
    for finding in verdict.reported:  # worst first
        level = _COMMAND.get(finding.status)
        if level is not None:
            by_level[level].append(finding)
    budget = dict.fromkeys(by_level, limit)
    if any(len(findings) > limit for findings in by_level.values()):
        # The "N more" notice is itself a notice: keep room for it.
        budget["notice"] = max(0, limit - 1)
    shown: list[tuple[str, Finding]] = []
    hidden = 0
    for level, findings in by_level.items():
        kept = findings[: budget[level]]
        hidden += len(findings) - len(kept)
        shown.extend((level, finding) for finding in kept)
    return shown, hidden


def not_annotated_text(hidden: int, limit: int) -> str:
    return (
        f"{plural(hidden, 'more finding')} not annotated (GitHub shows {limit} per level "
        "and step); see the job summary or the report"
    )


def failure_annotations(error: MetaQoreError, limit: int = 10) -> str:
    """``::error`` lines for a run that could not judge (each manifest problem located)."""
    problems = list(getattr(error, "errors", None) or [error])
    lines = []
    for problem in problems[:limit]:
        if isinstance(problem, ManifestError) and problem.path:
            properties = (
                f"file={escape_property(problem.path)},line={problem.line},"
                f"col={problem.column},title=metaqore%3A could not judge"
            )
            text = problem.problem + (f" (expected {problem.expected})" if problem.expected else "")
        else:
            properties, text = "title=metaqore%3A could not judge", str(problem)
        lines.append(f"::error {properties}::{escape_data(text)}")
    if len(problems) > limit:
        more = plural(len(problems) - limit, "more problem")
        lines.append(
            "::notice::" + escape_data(f"{more} not annotated; see the job summary or the log")
        )
    return "\n".join(lines) + "\n"


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
    if markdown is None:
        markdown = MarkdownFormatter().render(verdict, context)
    limit = max(0, context.max_annotations)
    _, hidden = annotated(verdict, limit)
    if hidden:
        markdown = markdown.rstrip("\n") + f"\n\n_{not_annotated_text(hidden, limit)}._\n"
    outputs = step_outputs(verdict, report_path=report_path)
    _publish(environ, markdown, outputs)


def publish_github_failure(error: MetaQoreError, *, environ: Mapping[str, str]) -> None:
    """The job summary and outputs of a run that could not judge (``verdict=error``)."""
    problems = [str(problem) for problem in (getattr(error, "errors", None) or [error])]
    lines = ["## ⚠️ MetaQore: could not judge", ""]
    lines += [f"- {cell(problem)}" for problem in problems[:_MAX_SUMMARY_PROBLEMS]]
    if len(problems) > _MAX_SUMMARY_PROBLEMS:
        lines.append(f"- … and {len(problems) - _MAX_SUMMARY_PROBLEMS} more (see the log)")
    lines += ["", f"Nothing was judged (exit code {error.exit_code}); fix the problems above."]
    outputs = dict.fromkeys(OUTPUT_NAMES, "")
    outputs["verdict"] = "error"
    _publish(environ, "\n".join(lines) + "\n", outputs)


def _publish(environ: Mapping[str, str], markdown: str, outputs: Mapping[str, str]) -> None:
    summary_file = environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        _append(summary_file, markdown if markdown.endswith("\n") else markdown + "\n")
    output_file = environ.get("GITHUB_OUTPUT")
    if output_file:
        _append(output_file, "".join(_output_block(k, v) for k, v in outputs.items()))


__all__ = [
    "OUTPUT_NAMES",
    "GitHubFormatter",
    "annotation",
    "escape_data",
    "escape_property",
    "failure_annotations",
    "publish_github",
    "publish_github_failure",
    "step_outputs",
]
