"""The gate: one function every front door calls, and the verdict it returns.

Names are imported lazily: formatters and pytest-xdist workers need the verdict
types without loading the replay machinery.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "GateOptions": "metaqore.gate.replay",
    "new_run_id": "metaqore.gate.replay",
    "run_gate": "metaqore.gate.replay",
    "Finding": "metaqore.gate.verdict",
    "Location": "metaqore.gate.verdict",
    "ProjectResult": "metaqore.gate.verdict",
    "Status": "metaqore.gate.verdict",
    "Verdict": "metaqore.gate.verdict",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'metaqore.gate' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
