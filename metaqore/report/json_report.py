"""The ``--json`` report: the verdict's plain data in the shape SPEC §8 documents."""

from __future__ import annotations

from metaqore.gate.verdict import Verdict
from metaqore.report.base import ReportContext
from metaqore.text import json_text


class JsonFormatter:
    """``Verdict.to_dict()`` as UTF-8 JSON (indented unless huge); the shape lives with
    the verdict."""

    name = "json"

    def render(self, verdict: Verdict, context: ReportContext) -> str:
        return json_text(verdict.to_dict(), findings=len(verdict.findings))


__all__ = ["JsonFormatter"]
