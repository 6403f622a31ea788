"""Findings from rule hits and vetoes: semantic fingerprints, locations and evidence."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from metaqore.core.canonical import canonical_bytes
from metaqore.core.models import VetoReason
from metaqore.core.records import ArtifactRecord, RunIndex
from metaqore.core.rules import RuleHit
from metaqore.gate.verdict import Finding, Location


def fingerprint(rule: str, project: str, artifact_ids: Iterable[str], hashes: Iterable[str]) -> str:
    """A stable id for a finding: what it is about, never where the manifest put it.

    Rule, project, the artifact ids involved and their content hashes: moving an
    artifact to another file or line keeps the fingerprint; changing its content or
    the set of artifacts involved gives a new one.
    """
    subject = {
        "rule": rule,
        "project": project,
        "artifacts": sorted(set(artifact_ids)),
        "hashes": sorted(set(hashes)),
    }
    return hashlib.sha256(canonical_bytes(subject)).hexdigest()[:32]


def _hashes(index: RunIndex, project: str, ids: Iterable[str]) -> list[str]:
    found = []
    for artifact_id in ids:
        record = index.resolve(project, artifact_id)
        if record is not None:
            found.append(record.content_hash)
    return found


def conflict_finding(hit: RuleHit, index: RunIndex, *, severity: str, strategy: str) -> Finding:
    record = hit.record
    ids = [record.id, *hit.related]
    return Finding(
        fingerprint=fingerprint(
            hit.conflict_type,
            record.project,
            ids,
            [record.content_hash, *_hashes(index, record.project, hit.related)],
        ),
        kind="conflict",
        rule=hit.conflict_type,
        severity=severity,
        project_id=record.project,
        artifact_id=record.id,
        message=hit.message,
        related=list(hit.related),
        strategy=strategy,
        location=Location(record.source, record.line),
        evidence=_plain(hit.evidence),
    )


def artifact_veto_finding(
    veto: VetoReason, record: ArtifactRecord, *, evidence: dict[str, Any]
) -> Finding:
    details = {**veto.details, **evidence}
    return Finding(
        fingerprint=fingerprint(
            veto.policy_violated, record.project, [record.id], [record.content_hash]
        ),
        kind="veto",
        rule=veto.policy_violated,
        severity=veto.severity.value,
        project_id=record.project,
        artifact_id=record.id,
        message=f"{record.artifact_type} '{record.id}' (by {record.agent}): {veto.reason}",
        strategy=None,
        location=Location(record.source, record.line),
        evidence=_plain(details),
    )


def event_veto_finding(
    veto: VetoReason,
    *,
    project: str,
    subject: str,
    event_hash: str,
    path: str,
    line: int,
) -> Finding:
    return Finding(
        fingerprint=fingerprint(veto.policy_violated, project, [subject], [event_hash]),
        kind="veto",
        rule=veto.policy_violated,
        severity=veto.severity.value,
        project_id=project,
        artifact_id=subject,
        message=veto.reason,
        strategy=None,
        location=Location(path, line),
        evidence=_plain(veto.details),
    )


def _plain(value: Any) -> Any:
    """Evidence as JSON-ready data (enums by value, tuples as lists)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(item) for item in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if hasattr(value, "value") and not isinstance(value, (int, float, str, bool)):
        return value.value
    return value


__all__ = ["artifact_veto_finding", "conflict_finding", "event_veto_finding", "fingerprint"]
