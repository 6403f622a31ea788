"""MetaQore: a governance gate for multi-agent AI work, run in CI.

Public names are imported lazily so ``import metaqore`` stays cheap (and never
imports pytest).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "1.0.0"

_LAZY = {
    "MetaQoreConfig": "metaqore.config",
    "GovernanceMode": "metaqore.config",
    "load_config": "metaqore.config",
    "Artifact": "metaqore.core.models",
    "Project": "metaqore.core.models",
    "Task": "metaqore.core.models",
    "Conflict": "metaqore.core.models",
    "Checkpoint": "metaqore.core.models",
    "Provenance": "metaqore.core.models",
    "VetoReason": "metaqore.core.models",
    "BlockingReport": "metaqore.core.models",
    "PSMPEngine": "metaqore.core.psmp",
    "StateManager": "metaqore.core.state_manager",
    "SecureGateway": "metaqore.core.security",
    "TaskSensitivity": "metaqore.core.security",
    "ComplianceAuditor": "metaqore.core.audit",
    "verify_audit_log": "metaqore.core.audit",
    "SQLiteBackend": "metaqore.storage.backends.sqlite",
    "MockLLMClient": "metaqore.mock_llm",
    "run_gate": "metaqore.gate",
    "Verdict": "metaqore.gate",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'metaqore' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
