"""SARIF 2.1.0 for code scanning: a rule per conflict type / veto policy, results at their line.

Uploadable to GitHub code scanning: relative URIs under ``%SRCROOT%`` (never absolute
``file://`` paths), a stable ``partialFingerprints`` entry per finding so alerts follow
the finding across runs, and waived findings carried as accepted external suppressions.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from metaqore.gate.verdict import SEVERITY_ORDER, Finding, Status, Verdict
from metaqore.report.base import ReportContext, tool_version
from metaqore.report.evidence import evidence_lines, status_tag
from metaqore.text import json_text

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
FINGERPRINT_KEY = "metaqore/v1"
SRCROOT = "%SRCROOT%"
INFORMATION_URI = "https://github.com/metaqore/metaqore"

_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
# GitHub reads this property to rank security alerts (>= 9 critical, 7-8.9 high, ...).
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}

# rule -> (short description, full description, help)
_CATALOGUE: dict[str, tuple[str, str, str]] = {
    "version_mismatch": (
        "Artifact version is not the next version of its type",
        "An artifact declares a version that is not the highest version of its type in its "
        "project plus one, or re-declares an artifact id and version with different content.",
        "Declare the next version (or omit `version` to get it), or give changed content a "
        "new version.",
    ),
    "parallel_creation": (
        "Artifacts of one type created in parallel by different agents",
        "Two or more agents produced artifacts of the same type in the same project and "
        "iteration, so their work competes instead of building on each other.",
        "Merge the competing artifacts, assign the type to one agent per iteration, or waive "
        "the finding after a human review.",
    ),
    "missing_dependency": (
        "Artifact depends on an artifact declared nowhere",
        "A `depends_on` id is declared in no manifest of the run and not in the store.",
        "Declare the missing artifact, fix the id, or judge the whole project at once.",
    ),
    "circular_dependency": (
        "Artifacts depend on each other in a cycle",
        "The dependencies between artifacts form a cycle, so no artifact of the cycle can "
        "be built first.",
        "Break the cycle by removing one of the dependencies on the reported path.",
    ),
    "default_local_first": (
        "Provider disallowed by the default_local_first routing policy",
        "Sensitive and critical work must run on local providers; public and internal work "
        "may also use cloud providers. Sensitivity includes that of every upstream artifact.",
        "Route the task to an allowed provider, or correct the declared sensitivity.",
    ),
    "enterprise_residency": (
        "Provider disallowed by the enterprise_residency routing policy",
        "Only public work may leave for cloud providers; everything else stays local. "
        "Sensitivity includes that of every upstream artifact.",
        "Route the task to a local provider, or correct the declared sensitivity.",
    ),
    "compliance_local_only": (
        "Provider disallowed by the compliance_local_only routing policy",
        "All work must run on local providers.",
        "Route the task to a local provider.",
    ),
    "provenance": (
        "Missing or invalid provenance signature",
        "A provenance signature does not verify, names an unknown key, or an artifact whose "
        "sensitivity requires a signature by its creator carries none.",
        "Sign the artifact with `metaqore sign` using a key listed in `trusted_keys`.",
    ),
    "max_graph_depth": (
        "Agent graph deeper than max_graph_depth",
        "A graph node of the run's trace is nested deeper than the configured limit.",
        "Flatten the agent graph or raise `max_graph_depth` deliberately.",
    ),
    "max_parallel_branches": (
        "Too many parallel branches from one graph node",
        "A graph node of the run's trace has more children than `max_parallel_branches`.",
        "Reduce the fan-out or raise `max_parallel_branches` deliberately.",
    ),
    "max_conversation_turns": (
        "Conversation longer than max_conversation_turns",
        "A conversation of the run's trace has more turns than the configured limit.",
        "Shorten the conversation or raise `max_conversation_turns` deliberately.",
    ),
    "max_conversation_participants": (
        "Too many participants in one conversation",
        "A conversation of the run's trace has more participants than the configured limit.",
        "Reduce the participants or raise `max_conversation_participants` deliberately.",
    ),
    "state_transition": (
        "Disallowed task or project status transition",
        "A task or project moved between statuses the lifecycle does not allow.",
        "Fix the recorded status history so every step is an allowed transition.",
    ),
}


def level_of(severity: str) -> str:
    return _LEVEL.get(severity, "warning")


def _result_level(finding: Finding) -> str:
    # A finding that fails the build is an error in code scanning, whatever its severity
    # (the rule's default level still follows severity).
    if finding.status is Status.BLOCKING:
        return "error"
    if finding.status is Status.WARNING:
        return "warning"
    return "note"


def _pascal(rule: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in rule.replace("-", "_").split("_"))


@lru_cache(maxsize=4096)  # a run has few manifests and many findings in each
def _uri(path: str, root: Path) -> tuple[str, bool]:
    """The URI of a manifest and whether it is relative to ``%SRCROOT%``."""
    candidate = Path(path)
    if candidate.is_absolute():
        try:
            path = candidate.relative_to(root.resolve()).as_posix()
        except ValueError:
            # Outside the root: an absolute file URI (code scanning maps one under the
            # checkout to the repository; SARIF wants a URI without a base to be absolute).
            return candidate.as_uri(), False
    return quote(path.replace("\\", "/")), True


def _physical(path: str, line: int, root: Path) -> dict[str, Any]:
    uri, relative = _uri(path, root)
    artifact: dict[str, Any] = {"uri": uri}
    if relative:
        artifact["uriBaseId"] = SRCROOT
    return {"artifactLocation": artifact, "region": {"startLine": max(1, line)}}


def _rule(rule: str, findings: list[Finding]) -> dict[str, Any]:
    kind = findings[0].kind
    worst = min((f.severity for f in findings), key=lambda s: SEVERITY_ORDER.get(s, 9))
    short, full, help_text = _CATALOGUE.get(
        rule,
        (
            f"MetaQore {'veto policy' if kind == 'veto' else 'conflict rule'} {rule}",
            f"Findings of the MetaQore {kind} '{rule}' (provided by a plugin).",
            "See the finding's message and evidence.",
        ),
    )
    tags = ["metaqore", kind]
    properties: dict[str, Any] = {"tags": tags}
    if kind == "veto":
        tags.append("security")
        properties["security-severity"] = _SECURITY_SEVERITY.get(worst, "5.5")
    return {
        "id": rule,
        "name": _pascal(rule),
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "help": {"text": help_text},
        "defaultConfiguration": {"level": level_of(worst)},
        "properties": properties,
    }


class SarifFormatter:
    """The SARIF 2.1.0 log (``--sarif``)."""

    name = "sarif"

    def render(self, verdict: Verdict, context: ReportContext) -> str:
        findings = verdict.reported
        by_rule: dict[str, list[Finding]] = {}
        for finding in findings:
            by_rule.setdefault(finding.rule, []).append(finding)
        rule_names = sorted(by_rule)
        rule_index = {rule: index for index, rule in enumerate(rule_names)}
        rules = [_rule(rule, by_rule[rule]) for rule in rule_names]
        declared = self._declarations(verdict, findings)
        projects = {project.project_id: project for project in verdict.projects}
        results = []
        for finding in findings:
            result: dict[str, Any] = {
                "ruleId": finding.rule,
                "ruleIndex": rule_index[finding.rule],
                "level": _result_level(finding),
                "message": {"text": self._message(finding)},
                "partialFingerprints": {FINGERPRINT_KEY: finding.fingerprint},
            }
            location = finding.location
            place: tuple[str, int] | None = (
                (location.path, location.line) if location is not None else None
            )
            project = projects.get(finding.project_id)
            if place is None and project is not None and project.paths:
                place = (project.paths[0], project.line)
            logical = {
                "name": finding.artifact_id,
                "fullyQualifiedName": f"{finding.project_id}/{finding.artifact_id}",
                "kind": "object",
            }
            if place is not None:
                result["locations"] = [
                    {
                        "physicalLocation": _physical(place[0], place[1], context.root),
                        "logicalLocations": [logical],
                    }
                ]
            related = self._related(finding, declared, context.root)
            if related:
                result["relatedLocations"] = related
            if finding.status is Status.WAIVED:
                waiver = finding.waived_by or {}
                result["suppressions"] = [
                    {
                        "kind": "external",
                        "status": "accepted",
                        "justification": str(waiver.get("reason") or "waived"),
                        "properties": {
                            "approvedBy": waiver.get("approved_by"),
                            "expires": waiver.get("expires"),
                        },
                    }
                ]
            result["properties"] = {
                "metaqore": {
                    "kind": finding.kind,
                    "status": finding.status.value,
                    "blocking": finding.blocking,
                    "severity": finding.severity,
                    "project_id": finding.project_id,
                    "artifact_id": finding.artifact_id,
                    "related": list(finding.related),
                    "strategy": finding.strategy,
                    "waived_by": finding.waived_by,
                    "evidence": finding.evidence,
                }
            }
            results.append(result)
        driver: dict[str, Any] = {
            "name": "MetaQore",
            "informationUri": INFORMATION_URI,
            "rules": rules,
        }
        version = tool_version(verdict, context)
        if version:
            driver["version"] = version
            driver["semanticVersion"] = version
        log = {
            "$schema": SARIF_SCHEMA,
            "version": SARIF_VERSION,
            "runs": [
                {
                    "tool": {"driver": driver},
                    "invocations": [{"executionSuccessful": True}],
                    "columnKind": "utf16CodeUnits",
                    "results": results,
                    "properties": {
                        "metaqore": {
                            "verdict": verdict.verdict,
                            "mode": verdict.mode,
                            "policy": verdict.policy,
                            "fail_on": verdict.fail_on,
                            "run_id": verdict.run_id,
                            "summary": verdict.summary,
                            "audit": {
                                "path": verdict.audit_path,
                                "head_hash": verdict.audit_head_hash,
                            },
                        }
                    },
                }
            ],
        }
        return json_text(log, findings=len(verdict.findings))

    @staticmethod
    def _message(finding: Finding) -> str:
        text = finding.message
        tag = status_tag(finding)
        if tag is not None:
            text += f" {tag}"
        evidence = evidence_lines(finding)
        if evidence:
            text += "\n" + "\n".join(evidence)
        return text

    @staticmethod
    def _declarations(
        verdict: Verdict, findings: list[Finding]
    ) -> dict[tuple[str, str], tuple[str, int]]:
        """Where the artifacts that findings relate are declared (one pass, wanted ids only)."""
        wanted: set[tuple[str, str]] = set()
        for finding in findings:
            wanted.update((finding.project_id, other) for other in finding.related)
            source = finding.evidence.get("sensitivity_source")
            if isinstance(source, str):
                wanted.add((finding.project_id, source))
        found: dict[tuple[str, str], tuple[str, int]] = {}
        if not wanted or verdict.artifact_refs is None:
            return found
        for ref in verdict.artifact_refs():
            key = (ref.project_id, ref.artifact_id)
            if key in wanted and key not in found:
                found[key] = (ref.path, ref.line)
        return found

    @staticmethod
    def _related(
        finding: Finding, declared: dict[tuple[str, str], tuple[str, int]], root: Path
    ) -> list[dict[str, Any]]:
        others: list[tuple[str, str]] = [
            (other, f"related artifact '{other}'")
            for other in finding.related
            if other != finding.artifact_id
        ]
        source = finding.evidence.get("sensitivity_source")
        if isinstance(source, str):
            others.append((source, f"upstream artifact '{source}' that made it sensitive"))
        related: list[dict[str, Any]] = []
        for artifact_id, text in others:
            place = declared.get((finding.project_id, artifact_id))
            if place is None:
                continue
            related.append(
                {
                    "id": len(related) + 1,
                    "physicalLocation": _physical(place[0], place[1], root),
                    "message": {"text": text},
                }
            )
        return related


__all__ = ["FINGERPRINT_KEY", "SARIF_SCHEMA", "SARIF_VERSION", "SarifFormatter", "level_of"]
