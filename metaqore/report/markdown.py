"""Markdown for the GitHub job summary: verdict, counts, findings, a Mermaid graph of blockers."""

from __future__ import annotations

import re

from metaqore.gate.verdict import Finding, Status, Verdict
from metaqore.report.base import ReportContext, tool_version
from metaqore.report.evidence import WAIVER_SECTIONS, status_tag, waiver_text
from metaqore.report.terminal import location_text
from metaqore.text import one_line

MAX_ROWS = 200
MAX_NODES = 100
MAX_CELL = 500

_SEVERITY_ICON = {"critical": "🔴", "high": "🟠", "medium": "🟡", "low": "🔵"}
_CELL_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",
        "`": "\\`",
        "*": "\\*",
        "_": "\\_",
        "[": "\\[",
        "]": "\\]",
        "|": "\\|",
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
    }
)
# Mermaid entity codes: a label in quotes may hold anything once these are encoded.
_LABEL_ESCAPES = str.maketrans(
    {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "`": "#96;", "\n": " ", "\r": " "}
)
_EDGE_LABEL = re.compile(r"[^A-Za-z0-9_. -]+")

Node = tuple[str, str]  # (project id, artifact id)


def cell(text: object, limit: int = MAX_CELL) -> str:
    """``text`` safe inside a table cell: no pipes, no raw HTML, no line breaks."""
    value = str(text)
    if len(value) > limit:
        value = value[: limit - 1] + "…"
    value = value.translate(_CELL_ESCAPES)
    return one_line("<br>".join(value.splitlines())) if value else value


def label(text: str) -> str:
    return '"' + one_line(text.translate(_LABEL_ESCAPES)) + '"'


def _status_text(finding: Finding) -> str:
    if finding.blocking:
        return "❌ blocking"
    return (status_tag(finding) or finding.status.value).strip("[]")


class MarkdownFormatter:
    """The job summary (``--markdown``, and ``$GITHUB_STEP_SUMMARY`` under ``--github``)."""

    name = "markdown"

    def render(self, verdict: Verdict, context: ReportContext) -> str:
        icon, word = ("✅", "pass") if verdict.passed else ("❌", "blocked")
        lines = [f"## {icon} MetaQore: {word}", ""]
        version = tool_version(verdict, context)
        lines.append(
            f"Mode **{cell(verdict.mode)}** · policy **{cell(verdict.policy)}** · "
            f"fail-on **{cell(verdict.fail_on)}**"
            + (f" · metaqore {cell(version)}" if version else "")
        )
        lines.append("")
        lines.extend(self._counts(verdict))
        lines.extend(self._findings(verdict))
        lines.extend(self._waivers(verdict))
        lines.extend(self._graph(verdict))
        if verdict.audit_path:
            head = f" (head {cell(verdict.audit_head_hash)})" if verdict.audit_head_hash else ""
            lines.extend(["", f"**Audit log:** {cell(verdict.audit_path)}{head}"])
        return "\n".join(lines) + "\n"

    @staticmethod
    def _counts(verdict: Verdict) -> list[str]:
        summary = verdict.summary
        counts = verdict.counts
        columns = [
            ("projects", summary["projects"]),
            ("artifacts", summary["artifacts"]),
            ("conflicts", summary["conflicts"]),
            ("vetoes", summary["vetoes"]),
            ("blocking", summary["blocking"]),
            ("waived", summary["waived"]),
            ("auto-resolved", summary["auto_resolved"]),
            ("below threshold", counts[Status.WARNING.value]),
        ]
        if counts[Status.BASELINED.value]:
            columns.append(("baselined", counts[Status.BASELINED.value]))
        return [
            "| " + " | ".join(name for name, _ in columns) + " |",
            "|" + "---:|" * len(columns),
            "| " + " | ".join(str(value) for _, value in columns) + " |",
        ]

    @staticmethod
    def _findings(verdict: Verdict) -> list[str]:
        findings = verdict.reported
        lines = ["", "### Findings", ""]
        if not findings:
            lines.append("No findings.")
            return lines
        lines.append("| status | severity | rule | project | artifact | location | message |")
        lines.append("|---|---|---|---|---|---|---|")
        for finding in findings[:MAX_ROWS]:
            severity = f"{_SEVERITY_ICON.get(finding.severity, '')} {finding.severity}".strip()
            row = [
                _status_text(finding),
                severity,
                finding.rule,
                finding.project_id,
                finding.artifact_id,
                location_text(finding),
                finding.message,
            ]
            lines.append("| " + " | ".join(cell(value) for value in row) + " |")
        if len(findings) > MAX_ROWS:
            lines.extend(["", f"… and {len(findings) - MAX_ROWS} more (see the JSON report)."])
        return lines

    @staticmethod
    def _waivers(verdict: Verdict) -> list[str]:
        lines: list[str] = []
        for key, title in WAIVER_SECTIONS:
            waivers = getattr(verdict.waivers, key)
            if not waivers:
                continue
            if not lines:
                lines.extend(["", "### Waivers"])
            lines.extend(["", f"**{title[:1].upper() + title[1:]}**", ""])
            lines.extend(f"- {cell(waiver_text(waiver))}" for waiver in waivers)
        return lines

    def _graph(self, verdict: Verdict) -> list[str]:
        lines = ["", "### Blocked artifacts", ""]
        blocking = sorted(verdict.blocking, key=lambda f: f.sort_key)
        if not blocking:
            lines.append("Nothing is blocked, so there is no graph.")
            return lines
        graph = _Graph(verdict, blocking)
        lines.append("```mermaid")
        lines.extend(graph.lines())
        lines.append("```")
        if graph.total > len(graph.nodes):
            lines.extend(["", f"_Graph limited to {len(graph.nodes)} of {graph.total} artifacts._"])
        return lines


class _Graph:
    """The Mermaid graph of blocked artifacts, what their findings relate, and the edges."""

    def __init__(self, verdict: Verdict, blocking: list[Finding]) -> None:
        self.verdict = verdict
        self.nodes: dict[Node, str] = {}
        self.blocked: set[Node] = set()
        self.missing: set[Node] = set()
        self.vetoes: dict[Node, list[str]] = {}
        candidates: dict[Node, None] = {}
        # Blocked artifacts first (worst first), then what their findings point at.
        for finding in blocking:
            node = (finding.project_id, finding.artifact_id)
            candidates.setdefault(node)
            self.blocked.add(node)
            if finding.kind == "veto":
                rules = self.vetoes.setdefault(node, [])
                if finding.rule not in rules:
                    rules.append(finding.rule)
        for finding in blocking:
            for other in self._pointed_at(finding):
                candidates.setdefault((finding.project_id, other))
            missing = finding.evidence.get("missing")
            if isinstance(missing, str):
                self.missing.add((finding.project_id, missing))
        self.total = len(candidates)
        for index, node in enumerate(list(candidates)[:MAX_NODES]):
            self.nodes[node] = f"n{index}"
        self.blocking = blocking

    @staticmethod
    def _pointed_at(finding: Finding) -> list[str]:
        others = [other for other in finding.related if other != finding.artifact_id]
        source = finding.evidence.get("sensitivity_source")
        if isinstance(source, str) and source != finding.artifact_id:
            others.append(source)
        return others

    def _label(self, node: Node) -> str:
        text = node[1]
        if node in self.missing and node not in self.blocked:
            text += " (missing)"
        if node in self.vetoes:
            text += " · veto: " + ", ".join(self.vetoes[node])
        return label(text)

    def lines(self) -> list[str]:
        out = ["graph LR"]
        projects: dict[str, list[Node]] = {}
        for node in self.nodes:
            projects.setdefault(node[0], []).append(node)
        if len(projects) == 1:
            for node in self.nodes:
                out.append(f"  {self.nodes[node]}[{self._label(node)}]")
        else:
            for number, (project, members) in enumerate(projects.items()):
                out.append(f"  subgraph p{number}[{label(project)}]")
                out.extend(f"    {self.nodes[node]}[{self._label(node)}]" for node in members)
                out.append("  end")
        out.extend(self._edges())
        blocked = [self.nodes[node] for node in self.nodes if node in self.blocked]
        missing = [
            self.nodes[node]
            for node in self.nodes
            if node in self.missing and node not in self.blocked
        ]
        out.append("  classDef blocked fill:#ffe5e5,stroke:#cc0000,stroke-width:2px")
        out.append("  classDef missing stroke-dasharray:5 5,fill:#ffffff,stroke:#888888")
        if blocked:
            out.append(f"  class {','.join(blocked)} blocked")
        if missing:
            out.append(f"  class {','.join(missing)} missing")
        return out

    def _edges(self) -> list[str]:
        out: list[str] = []
        dependency_edges: set[tuple[str, str]] = set()
        dependencies = self.verdict.dependencies
        for node, name in self.nodes.items():
            project, artifact = node
            for target in dependencies.get(project, {}).get(artifact, []):
                upstream = self.nodes.get((project, target))
                if upstream is not None and (name, upstream) not in dependency_edges:
                    dependency_edges.add((name, upstream))
                    out.append(f"  {name} --> {upstream}")
        drawn: set[tuple[str, str, str]] = set()
        for finding in self.blocking:
            anchor = self.nodes.get((finding.project_id, finding.artifact_id))
            if anchor is None:
                continue
            source = finding.evidence.get("sensitivity_source")
            for other_id in self._pointed_at(finding):
                other = self.nodes.get((finding.project_id, other_id))
                if other is None:
                    continue
                # The dependency edge already tells the story (cycles, missing inputs).
                if (anchor, other) in dependency_edges or (other, anchor) in dependency_edges:
                    continue
                text = "sensitive input" if other_id == source else finding.rule
                if (anchor, other, text) in drawn:
                    continue
                drawn.add((anchor, other, text))
                edge_label = _EDGE_LABEL.sub(" ", text).strip() or "related"
                out.append(f"  {anchor} -.->|{edge_label}| {other}")
        return out


__all__ = ["MAX_NODES", "MAX_ROWS", "MarkdownFormatter", "cell", "label"]
