"""The reliability suites: helpers on the path, and ``slow`` variants only on request.

``pytest tests/reliability`` runs the CI-sized sample; ``pytest tests/reliability -m slow``
runs the long variants (the full fuzz, crash and concurrency sets, see RELIABILITY.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A marker expression that names `slow` (e.g. -m slow) asks for the long variants.
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="long variant: run with -m slow (see RELIABILITY.md)")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)
