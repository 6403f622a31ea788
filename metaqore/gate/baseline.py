"""Baselines: accept today's findings by fingerprint so only new ones are reported."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from metaqore.exceptions import ConfigurationError
from metaqore.gate.verdict import Status, Verdict
from metaqore.text import json_text

BASELINE_VERSION = 1


def load_baseline(path: Path) -> set[str]:
    """Fingerprints recorded in a baseline file; any problem is a located error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read baseline ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{path}:1:1: baseline is not UTF-8 text") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{path}:{exc.lineno}:{exc.colno}: invalid JSON in baseline ({exc.msg})"
        ) from None
    if not isinstance(document, dict) or document.get("metaqore_baseline") != BASELINE_VERSION:
        raise ConfigurationError(
            f"{path}:1:1: not a MetaQore baseline (expected metaqore_baseline: 1; "
            "write one with --write-baseline)"
        )
    findings = document.get("findings")
    if not isinstance(findings, list) or not all(
        isinstance(item, dict) and isinstance(item.get("fingerprint"), str) for item in findings
    ):
        raise ConfigurationError(
            f"{path}:1:1: baseline 'findings' must be a list of objects with a fingerprint"
        )
    return {item["fingerprint"] for item in findings}


def baseline_document(verdict: Verdict) -> dict[str, Any]:
    """The current findings (blocking, below threshold or already baselined) by fingerprint."""
    keep = {Status.BLOCKING, Status.WARNING, Status.BASELINED}
    findings = sorted(
        (f for f in verdict.findings if f.status in keep), key=lambda f: f.fingerprint
    )
    unique: dict[str, dict[str, Any]] = {}
    for finding in findings:
        unique.setdefault(
            finding.fingerprint,
            {
                "fingerprint": finding.fingerprint,
                "rule": finding.rule,
                "project_id": finding.project_id,
                "artifact_id": finding.artifact_id,
                "message": finding.message,
            },
        )
    return {
        "metaqore_baseline": BASELINE_VERSION,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "findings": list(unique.values()),
    }


def baseline_text(verdict: Verdict) -> str:
    document = baseline_document(verdict)
    return json_text(document, findings=len(document["findings"]))


__all__ = ["BASELINE_VERSION", "baseline_document", "baseline_text", "load_baseline"]
