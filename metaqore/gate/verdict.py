"""The verdict of one gate run: findings in result buckets, and the exit code they mean.

Formatters only read this; nothing here computes a finding. Every object converts to
plain data (``to_dict``) and back (``Verdict.from_dict``), so pytest-xdist workers can
ship it to the controller and the JSON report is just ``to_dict``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from metaqore.core.models import ConflictSeverity
from metaqore.exceptions import EXIT_BLOCKED, EXIT_PASS

REPORT_VERSION = 1


class Status(str, Enum):
    """The result bucket a finding lands in (conftest's failures/warnings/exceptions)."""

    BLOCKING = "blocking"
    WARNING = "warning"  # below the --fail-on threshold, or playground mode
    WAIVED = "waived"
    AUTO_RESOLVED = "auto_resolved"
    BASELINED = "baselined"


SEVERITY_ORDER = {
    ConflictSeverity.CRITICAL.value: 0,
    ConflictSeverity.HIGH.value: 1,
    ConflictSeverity.MEDIUM.value: 2,
    ConflictSeverity.LOW.value: 3,
}


@dataclass
class Location:
    path: str
    line: int

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "line": self.line}


@dataclass
class Finding:
    """One conflict or veto, where it was declared and the evidence behind it."""

    fingerprint: str
    kind: str  # "conflict" | "veto"
    rule: str  # conflict_type, or the veto's policy_violated
    severity: str
    project_id: str
    artifact_id: str
    message: str
    related: list[str] = field(default_factory=list)
    strategy: str | None = None
    location: Location | None = None
    status: Status = Status.BLOCKING
    waived_by: dict[str, Any] | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def blocking(self) -> bool:
        return self.status is Status.BLOCKING

    @property
    def sort_key(self) -> tuple[int, str, str, int, str, str]:
        """Worst first, then by place: what every report lists findings by."""
        location = self.location or Location("", 0)
        return (
            SEVERITY_ORDER.get(self.severity, 9),
            self.project_id,
            location.path,
            location.line,
            self.rule,
            self.artifact_id,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "kind": self.kind,
            "rule": self.rule,
            "severity": self.severity,
            "blocking": self.blocking,
            "status": self.status.value,
            "project_id": self.project_id,
            "artifact_id": self.artifact_id,
            "related": list(self.related),
            "message": self.message,
            "strategy": self.strategy,
            "location": self.location.to_dict() if self.location else None,
            "waived_by": self.waived_by,
            "evidence": self.evidence,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        location = data.get("location")
        return cls(
            fingerprint=data["fingerprint"],
            kind=data["kind"],
            rule=data["rule"],
            severity=data["severity"],
            project_id=data["project_id"],
            artifact_id=data["artifact_id"],
            message=data["message"],
            related=list(data.get("related", [])),
            strategy=data.get("strategy"),
            location=Location(location["path"], location["line"]) if location else None,
            status=Status(data.get("status", "blocking" if data.get("blocking") else "warning")),
            waived_by=data.get("waived_by"),
            evidence=dict(data.get("evidence", {})),
        )


@dataclass
class ProjectResult:
    """One project of the run: what it declared and where (for per-project items)."""

    project_id: str
    name: str | None = None
    organization: str | None = None
    artifacts: int = 0
    paths: list[str] = field(default_factory=list)
    line: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "name": self.name,
            "organization": self.organization,
            "artifacts": self.artifacts,
            "paths": list(self.paths),
            "line": self.line,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProjectResult:
        return cls(
            project_id=data["project_id"],
            name=data.get("name"),
            organization=data.get("organization"),
            artifacts=data.get("artifacts", 0),
            paths=list(data.get("paths", [])),
            line=data.get("line", 1),
        )


@dataclass(frozen=True)
class ArtifactRef:
    """One declared artifact, for reports that list every artifact (JUnit)."""

    project_id: str
    artifact_id: str
    artifact_type: str
    agent: str
    version: int
    path: str
    line: int


@dataclass
class WaiverReport:
    """Waivers that did not apply, so stale decisions don't linger unseen."""

    unused: list[dict[str, Any]] = field(default_factory=list)
    stale: list[dict[str, Any]] = field(default_factory=list)
    expired: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"unused": self.unused, "stale": self.stale, "expired": self.expired}


@dataclass
class Verdict:
    """Everything one gate run decided; ``exit_code`` is computed here and only here."""

    mode: str
    policy: str
    fail_on: str
    run_id: str
    projects: list[ProjectResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    artifacts: int = 0
    waivers: WaiverReport = field(default_factory=WaiverReport)
    audit_path: str | None = None
    audit_head_hash: str | None = None
    baseline_path: str | None = None
    # project -> blocked artifact ids in replay order
    blocked_artifacts: dict[str, list[str]] = field(default_factory=dict)
    # project -> artifact -> depends_on, for the artifacts findings name (Mermaid graph)
    dependencies: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    tool_version: str = ""
    # When the verdict was reached (ISO 8601 UTC): the blocking reports' generated_at.
    generated_at: str = field(
        default_factory=lambda: datetime.now(UTC).isoformat().replace("+00:00", "Z")
    )
    # Every artifact of the run, produced on demand (not shipped between processes).
    artifact_refs: Callable[[], Iterable[ArtifactRef]] | None = field(
        default=None, repr=False, compare=False
    )
    _by_project: dict[str, list[Finding]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    # -- buckets --------------------------------------------------------------------
    def bucket(self, status: Status) -> list[Finding]:
        return [finding for finding in self.findings if finding.status is status]

    @property
    def blocking(self) -> list[Finding]:
        return self.bucket(Status.BLOCKING)

    @property
    def reported(self) -> list[Finding]:
        """Findings the reports list (baselined ones are only counted), worst first."""
        return sorted(
            (f for f in self.findings if f.status is not Status.BASELINED),
            key=lambda f: f.sort_key,
        )

    @property
    def passed(self) -> bool:
        return not self.blocking

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "blocked"

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.passed else EXIT_BLOCKED

    def _of_project(self, project_id: str) -> list[Finding]:
        """The project's findings, from an index built once (per-project reports and
        test items stay linear however many projects a monorepo gates)."""
        if self._by_project is None:
            index: dict[str, list[Finding]] = {}
            for finding in self.findings:
                index.setdefault(finding.project_id, []).append(finding)
            self._by_project = index
        return self._by_project.get(project_id, [])

    def findings_for(self, project_id: str) -> list[Finding]:
        return sorted(
            (f for f in self._of_project(project_id) if f.status is not Status.BASELINED),
            key=lambda f: f.sort_key,
        )

    def project_passed(self, project_id: str) -> bool:
        return not any(f.blocking for f in self._of_project(project_id))

    def for_project(self, project_id: str) -> Verdict:
        """The part of this verdict about one project (a per-project report or test item)."""

        def mine(waivers: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [waiver for waiver in waivers if waiver.get("project") == project_id]

        projects = [p for p in self.projects if p.project_id == project_id]
        return replace(
            self,
            projects=projects,
            findings=list(self._of_project(project_id)),
            artifacts=sum(p.artifacts for p in projects),
            waivers=WaiverReport(
                mine(self.waivers.unused), mine(self.waivers.stale), mine(self.waivers.expired)
            ),
            blocked_artifacts={k: v for k, v in self.blocked_artifacts.items() if k == project_id},
            dependencies={k: v for k, v in self.dependencies.items() if k == project_id},
            artifact_refs=None,
        )

    @property
    def summary(self) -> dict[str, int]:
        counts = Counter(f.status for f in self.findings if f.status is not Status.BASELINED)
        kinds = Counter(f.kind for f in self.findings if f.status is not Status.BASELINED)
        return {
            "projects": len(self.projects),
            "artifacts": self.artifacts,
            "conflicts": kinds["conflict"],
            "vetoes": kinds["veto"],
            "blocking": counts[Status.BLOCKING],
            "waived": counts[Status.WAIVED],
            "auto_resolved": counts[Status.AUTO_RESOLVED],
        }

    @property
    def counts(self) -> dict[str, int]:
        """Every bucket's size, baselined and warnings included."""
        counts = Counter(f.status for f in self.findings)
        return {status.value: counts[status] for status in Status}

    # -- plain data -----------------------------------------------------------------
    def blocking_reports(self) -> list[dict[str, Any]]:
        """One ``BlockingReport`` (SPEC §2 shape) per project, blocking findings only."""
        reports = []
        for project in self.projects:
            blocking = [f for f in self._of_project(project.project_id) if f.blocking]
            conflicts = [
                {
                    "id": f"conf_{f.fingerprint[:12]}",
                    "artifact_id": f.artifact_id,
                    "project_id": f.project_id,
                    "description": f.message,
                    "severity": f.severity,
                    "conflict_type": f.rule,
                    "resolution_strategy": f.strategy,
                    "related": list(f.related),
                    "resolved": False,
                    "created_at": self.generated_at,
                    "resolved_at": None,
                }
                for f in blocking
                if f.kind == "conflict"
            ]
            vetoes = [
                {
                    "reason": f.message,
                    "policy_violated": f.rule,
                    "severity": f.severity,
                    "details": {"artifact_id": f.artifact_id, **f.evidence},
                }
                for f in blocking
                if f.kind == "veto"
            ]
            reports.append(
                {
                    "project_id": project.project_id,
                    "conflicts": conflicts,
                    "blocked_artifacts": self.blocked_artifacts.get(project.project_id, []),
                    "vetoes": vetoes,
                    "generated_at": self.generated_at,
                }
            )
        return reports

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` report (SPEC §8)."""
        return {
            "metaqore": REPORT_VERSION,
            "verdict": self.verdict,
            "mode": self.mode,
            "policy": self.policy,
            "fail_on": self.fail_on,
            "run_id": self.run_id,
            "generated_at": self.generated_at,
            "summary": self.summary,
            "counts": self.counts,
            "projects": [project.to_dict() for project in self.projects],
            "findings": [finding.to_dict() for finding in self.reported],
            "blocking_reports": self.blocking_reports(),
            "waivers": self.waivers.to_dict(),
            "baseline": {
                "path": self.baseline_path,
                "suppressed": self.counts[Status.BASELINED.value],
            },
            "audit": {"path": self.audit_path, "head_hash": self.audit_head_hash},
        }

    def to_transport(self) -> dict[str, Any]:
        """Everything, baselined findings included (for xdist workers and caches)."""
        data = self.to_dict()
        data["findings"] = [finding.to_dict() for finding in self.findings]
        data["artifacts_total"] = self.artifacts
        data["blocked_artifacts"] = self.blocked_artifacts
        data["dependencies"] = self.dependencies
        data["tool_version"] = self.tool_version
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        waivers = data.get("waivers") or {}
        audit = data.get("audit") or {}
        return cls(
            mode=data["mode"],
            policy=data["policy"],
            fail_on=data.get("fail_on", "low"),
            run_id=data.get("run_id", ""),
            projects=[ProjectResult.from_dict(p) for p in data.get("projects", [])],
            findings=[Finding.from_dict(f) for f in data.get("findings", [])],
            artifacts=data.get("artifacts_total", data.get("summary", {}).get("artifacts", 0)),
            waivers=WaiverReport(
                unused=list(waivers.get("unused", [])),
                stale=list(waivers.get("stale", [])),
                expired=list(waivers.get("expired", [])),
            ),
            audit_path=audit.get("path"),
            audit_head_hash=audit.get("head_hash"),
            baseline_path=(data.get("baseline") or {}).get("path"),
            blocked_artifacts=dict(data.get("blocked_artifacts", {})),
            dependencies=dict(data.get("dependencies", {})),
            tool_version=data.get("tool_version", ""),
            **({"generated_at": data["generated_at"]} if "generated_at" in data else {}),
        )


__all__ = [
    "REPORT_VERSION",
    "SEVERITY_ORDER",
    "ArtifactRef",
    "Finding",
    "Location",
    "ProjectResult",
    "Status",
    "Verdict",
    "WaiverReport",
]
