"""Waivers: a human's dated acceptance of one finding (SPEC §7), and their hygiene report."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from metaqore.config import Waiver
from metaqore.gate.verdict import Finding, WaiverReport


def _describe(waiver: Waiver, **extra: Any) -> dict[str, Any]:
    return {
        "rule": waiver.rule,
        "project": waiver.project,
        "artifact": waiver.artifact,
        "content_hash": waiver.content_hash,
        "approved_by": waiver.approved_by,
        "reason": waiver.reason,
        "expires": waiver.expires.isoformat(),
        **extra,
    }


class WaiverBook:
    """Matches findings to waivers and remembers which waivers were used, stale or expired.

    ``content_of(project, artifact)`` gives the current content hash of the waived
    artifact (None when it is not an artifact): a waiver bound to an older hash is stale.
    """

    def __init__(
        self,
        waivers: Sequence[Waiver],
        *,
        today: date,
        content_of: Callable[[str, str], str | None],
    ) -> None:
        self._today = today
        self._content_of = content_of
        self._by_key: dict[tuple[str, str, str], list[int]] = {}
        self._waivers = list(waivers)
        self._used: set[int] = set()
        self._stale: dict[int, str | None] = {}
        self._expired: set[int] = set()
        for number, waiver in enumerate(self._waivers):
            self._by_key.setdefault((waiver.rule, waiver.project, waiver.artifact), []).append(
                number
            )

    def match(self, finding: Finding) -> Waiver | None:
        """The waiver that applies to ``finding``, if one is valid today."""
        for number in self._by_key.get((finding.rule, finding.project_id, finding.artifact_id), []):
            waiver = self._waivers[number]
            if waiver.expires < self._today:
                self._expired.add(number)
                continue
            if waiver.content_hash is not None:
                current = self._content_of(finding.project_id, finding.artifact_id)
                if current != waiver.content_hash:
                    self._stale[number] = current
                    continue
            self._used.add(number)
            return waiver
        return None

    def report(self) -> WaiverReport:
        """Unused (matched nothing), stale (content changed) and expired waivers."""
        report = WaiverReport()
        for number, waiver in enumerate(self._waivers):
            if number in self._used:
                continue
            if waiver.expires < self._today:
                report.expired.append(_describe(waiver))
            elif number in self._stale:
                report.stale.append(_describe(waiver, current_content_hash=self._stale[number]))
            else:
                report.unused.append(_describe(waiver))
        return report


def waived_by(waiver: Waiver) -> dict[str, Any]:
    return {
        "approved_by": waiver.approved_by,
        "reason": waiver.reason,
        "expires": waiver.expires.isoformat(),
    }


__all__ = ["WaiverBook", "waived_by"]
