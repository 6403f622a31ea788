"""Fixtures of the end-to-end CLI tests: a scratch working directory per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import copy_examples


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A working directory holding a copy of ``examples/`` (the CLI's cwd)."""
    return copy_examples(tmp_path)
