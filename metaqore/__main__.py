"""``python -m metaqore``."""

from __future__ import annotations

from metaqore.cli import entry

entry()
