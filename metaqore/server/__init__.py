"""``metaqore serve``: the governance engine over HTTP (optional extra ``server``).

The engine, the CLI and the pytest plugin never import this package's web modules, so a
core install carries no web dependency; ``create_app`` is imported on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from metaqore.server.app import create_app

        return create_app
    raise AttributeError(f"module 'metaqore.server' has no attribute {name!r}")
