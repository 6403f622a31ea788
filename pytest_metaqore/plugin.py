"""The ``pytest11`` entry point of MetaQore (inert until ``--metaqore`` is given)."""

from __future__ import annotations
