"""A hand-built verdict with every result bucket, for the formatter tests.

Four projects, listed here in an order that is neither alphabetical nor by severity:

- analytics: a blocking missing dependency (high);
- checkout-service: a blocking cycle (critical), a blocking parallel creation (high),
  a blocking version mismatch (medium), an auto-resolved version mismatch, and a
  below-threshold finding of a plugin rule with evidence keys no formatter knows;
- payments: a blocking routing veto whose sensitivity came from an upstream artifact,
  a blocking veto on a task transition (an event, not an artifact), a waived parallel
  creation and a baselined missing dependency;
- docs: clean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from metaqore.gate.verdict import (
    ArtifactRef,
    Finding,
    Location,
    ProjectResult,
    Status,
    Verdict,
    WaiverReport,
)
from metaqore.report.base import ReportContext

ANALYTICS = "manifests/analytics.metaqore.yaml"
CHECKOUT = "manifests/checkout.metaqore.yaml"
PAYMENTS = "manifests/payments.metaqore.yaml"
DOCS = "manifests/docs.metaqore.yaml"
HEAD = "sha256:" + "ab" * 32

# (project, id, type, agent, version, path, line), in replay order
ARTIFACTS = [
    ("analytics", "dash", "dashboard", "coder", 1, ANALYTICS, 3),
    ("analytics", "tests", "test_suite", "tester", 1, ANALYTICS, 8),
    ("checkout-service", "api-plan", "plan", "planner", 1, CHECKOUT, 12),
    ("checkout-service", "api-plan-b", "plan", "coder", 2, CHECKOUT, 20),
    ("checkout-service", "design-a", "design", "architect", 1, CHECKOUT, 28),
    ("checkout-service", "design-b", "design", "architect", 2, CHECKOUT, 34),
    ("checkout-service", "design-c", "design", "architect", 3, CHECKOUT, 40),
    ("checkout-service", "schema-v1", "schema", "coder", 1, CHECKOUT, 55),
    ("checkout-service", "schema", "schema", "coder", 4, CHECKOUT, 60),
    ("checkout-service", "notes", "notes", "planner", 3, CHECKOUT, 70),
    ("payments", "card-data", "dataset", "security", 1, PAYMENTS, 5),
    ("payments", "fraud-model", "model", "coder", 1, PAYMENTS, 12),
    ("payments", "ledger-a", "ledger", "coder", 1, PAYMENTS, 24),
    ("payments", "ledger-b", "ledger", "tester", 2, PAYMENTS, 30),
    ("payments", "report", "report", "planner", 1, PAYMENTS, 40),
    ("docs", "readme", "doc", "planner", 1, DOCS, 2),
]


def _fp(name: str) -> str:
    return (name.encode().hex() + "0" * 32)[:32]


def build_findings() -> list[Finding]:
    return [
        Finding(
            fingerprint=_fp("cycle"),
            kind="conflict",
            rule="circular_dependency",
            severity="critical",
            project_id="checkout-service",
            artifact_id="design-c",
            message="circular dependency: design-a → design-b → design-c → design-a",
            related=["design-a", "design-b"],
            strategy="escalate",
            location=Location(CHECKOUT, 40),
            evidence={
                "cycle": ["design-a", "design-b", "design-c", "design-a"],
                "members": ["design-a", "design-b", "design-c"],
            },
        ),
        Finding(
            fingerprint=_fp("parallel"),
            kind="conflict",
            rule="parallel_creation",
            severity="high",
            project_id="checkout-service",
            artifact_id="api-plan-b",
            message=(
                "plan 'api-plan-b' by coder (v2) competes with 'api-plan' by planner (v1) "
                "in iteration 2 of project 'checkout-service'"
            ),
            related=["api-plan"],
            strategy="merge",
            location=Location(CHECKOUT, 20),
            evidence={
                "iteration": 2,
                "agents": ["coder", "planner"],
                "versions": {"api-plan-b": 2, "api-plan": 1},
                "more_rivals": 0,
            },
        ),
        Finding(
            fingerprint=_fp("version"),
            kind="conflict",
            rule="version_mismatch",
            severity="medium",
            project_id="checkout-service",
            artifact_id="schema",
            message=(
                "schema 'schema' (by coder) declares version 4 but the next schema version "
                "in project 'checkout-service' is 2 (skips ahead)"
            ),
            related=["schema-v1"],
            strategy="retry",
            location=Location(CHECKOUT, 60),
            evidence={"declared_version": 4, "expected_version": 2},
        ),
        Finding(
            fingerprint=_fp("auto"),
            kind="conflict",
            rule="version_mismatch",
            severity="medium",
            project_id="checkout-service",
            artifact_id="notes",
            message="notes 'notes' (by planner) declares version 3 but the next is 1",
            strategy="retry",
            location=Location(CHECKOUT, 70),
            status=Status.AUTO_RESOLVED,
            evidence={
                "declared_version": 3,
                "expected_version": 1,
                "resolved_version": 1,
                "auto_resolution": "retry",
            },
        ),
        Finding(
            fingerprint=_fp("review"),
            kind="conflict",
            rule="stale_review",
            severity="low",
            project_id="checkout-service",
            artifact_id="api-plan",
            message="plan 'api-plan' was reviewed 40 days ago",
            strategy="retry",
            location=Location(CHECKOUT, 12),
            status=Status.WARNING,
            evidence={"reviewer": "bob", "age_days": 40},
        ),
        Finding(
            fingerprint=_fp("missing"),
            kind="conflict",
            rule="missing_dependency",
            severity="high",
            project_id="analytics",
            artifact_id="tests",
            message=(
                "test_suite 'tests' (by tester) depends on 'requirements', which is declared "
                "nowhere in project 'analytics'"
            ),
            related=["requirements"],
            strategy="retry",
            location=Location(ANALYTICS, 8),
            evidence={"missing": "requirements", "needed_by": "tests"},
        ),
        Finding(
            fingerprint=_fp("veto"),
            kind="veto",
            rule="default_local_first",
            severity="critical",
            project_id="payments",
            artifact_id="fraud-model",
            message=(
                "model 'fraud-model' (by coder): Provider 'openrouter' disallowed for "
                "critical tasks"
            ),
            location=Location(PAYMENTS, 12),
            evidence={
                "policy": "default_local_first",
                "provider": "openrouter",
                "sensitivity": "critical",
                "allowed": ["hmcp_gateway", "ollama"],
                "unknown_provider": False,
                "sensitivity_source": "card-data",
            },
        ),
        Finding(
            fingerprint=_fp("transition"),
            kind="veto",
            rule="state_transition",
            severity="critical",
            project_id="payments",
            artifact_id="t-1",
            message="task 't-1' completed -> pending: transition not allowed",
            location=Location(PAYMENTS, 80),
            evidence={"entity": "task", "id": "t-1", "from": "completed", "to": "pending"},
        ),
        Finding(
            fingerprint=_fp("waived"),
            kind="conflict",
            rule="parallel_creation",
            severity="high",
            project_id="payments",
            artifact_id="ledger-b",
            message="ledger 'ledger-b' by tester (v2) competes with 'ledger-a' by coder (v1)",
            related=["ledger-a"],
            strategy="merge",
            location=Location(PAYMENTS, 30),
            status=Status.WAIVED,
            waived_by={
                "approved_by": "alice",
                "reason": "Ledgers merged by hand in review",
                "expires": "2026-12-31",
            },
            evidence={
                "iteration": None,
                "agents": ["tester", "coder"],
                "versions": {"ledger-b": 2, "ledger-a": 1},
                "more_rivals": 0,
            },
        ),
        Finding(
            fingerprint=_fp("baselined"),
            kind="conflict",
            rule="missing_dependency",
            severity="high",
            project_id="payments",
            artifact_id="report",
            message="report 'report' (by planner) depends on 'old-ledger', declared nowhere",
            related=["old-ledger"],
            strategy="retry",
            location=Location(PAYMENTS, 40),
            status=Status.BASELINED,
            evidence={"missing": "old-ledger", "needed_by": "report"},
        ),
    ]


def _waiver(artifact: str, **extra: object) -> dict[str, object]:
    return {
        "rule": "parallel_creation",
        "project": "checkout-service",
        "artifact": artifact,
        "content_hash": None,
        "approved_by": "carol",
        "reason": f"reviewed {artifact}",
        "expires": "2026-06-30",
        **extra,
    }


def build_verdict(findings: list[Finding] | None = None, *, refs: bool = True) -> Verdict:
    artifacts = [ArtifactRef(*row) for row in ARTIFACTS]

    def artifact_refs() -> Iterator[ArtifactRef]:
        yield from artifacts

    def count(project: str) -> int:
        return sum(1 for ref in artifacts if ref.project_id == project)

    findings = build_findings() if findings is None else findings
    blocked: dict[str, list[str]] = {}
    for finding in findings:
        if finding.blocking and finding.artifact_id not in blocked.get(finding.project_id, []):
            blocked.setdefault(finding.project_id, []).append(finding.artifact_id)

    return Verdict(
        mode="strict",
        policy="default_local_first",
        fail_on="medium",
        run_id="run-test-1",
        projects=[
            ProjectResult("analytics", "Analytics", "acme", count("analytics"), [ANALYTICS], 1),
            ProjectResult(
                "checkout-service",
                "Checkout service",
                "acme",
                count("checkout-service"),
                [CHECKOUT],
                1,
            ),
            ProjectResult("docs", "Docs", "acme", count("docs"), [DOCS], 1),
            ProjectResult("payments", "Payments", "acme", count("payments"), [PAYMENTS], 1),
        ],
        findings=findings,
        artifacts=len(artifacts),
        waivers=WaiverReport(
            unused=[_waiver("api-plan")],
            stale=[
                _waiver(
                    "design-a",
                    content_hash="sha256:" + "1" * 64,
                    current_content_hash="sha256:" + "2" * 64,
                )
            ],
            expired=[_waiver("schema", expires="2025-01-31")],
        ),
        audit_path="metaqore-audit.jsonl",
        audit_head_hash=HEAD,
        baseline_path=".metaqore-baseline.json",
        blocked_artifacts=blocked,
        dependencies={
            "analytics": {"tests": ["requirements", "dash"]},
            "checkout-service": {
                "api-plan": [],
                "api-plan-b": [],
                "design-a": ["design-b"],
                "design-b": ["design-c"],
                "design-c": ["design-a"],
                "schema": ["schema-v1"],
                "schema-v1": [],
            },
            "payments": {"fraud-model": ["card-data"], "ledger-a": [], "ledger-b": []},
        },
        tool_version="1.0.0",
        artifact_refs=artifact_refs if refs else None,
    )


@pytest.fixture
def verdict() -> Verdict:
    return build_verdict()


@pytest.fixture
def passing_verdict() -> Verdict:
    """Only non-blocking buckets: waived, below threshold, auto-resolved, baselined."""
    return build_verdict([f for f in build_findings() if f.status is not Status.BLOCKING])


@pytest.fixture
def context(tmp_path: Path) -> ReportContext:
    return ReportContext(root=tmp_path, color=False, quiet=False, tool_version="1.0.0")


@pytest.fixture
def make_verdict() -> Callable[..., Verdict]:
    """``build_verdict``: a verdict from the given findings (default: the full set)."""
    return build_verdict


@pytest.fixture
def make_findings() -> Callable[[], list[Finding]]:
    return build_findings
