"""The ``--json`` report: the verdict's plain data in the shape SPEC §8 documents."""

from __future__ import annotations

import json

from metaqore.gate.verdict import Verdict
from metaqore.report.base import ReportContext


class JsonFormatter:
    """``Verdict.to_dict()`` as indented UTF-8 JSON; the shape lives with the verdict."""

    name = "json"

    def render(self, verdict: Verdict, context: ReportContext) -> str:
        return json.dumps(verdict.to_dict(), indent=2, ensure_ascii=False) + "\n"


__all__ = ["JsonFormatter"]
