"""Fixtures of the pytest plugin's tests: the xdist matrix and a clean environment."""

from __future__ import annotations

import os

import pytest
import sqlalchemy.dialects.sqlite
import yaml

import metaqore.core.audit
import metaqore.gate.replay
import metaqore.gate.store
import metaqore.report
import metaqore.storage.backends.sqlite
import pytest_metaqore.session

# pytester's in-process runs drop the modules each run imported when it ends; PyYAML's C
# extension and SQLAlchemy's registries break when imported twice in one process. So the
# engine is imported here, once, before any inner run (which also makes those faster).
_PRELOADED = (
    sqlalchemy.dialects.sqlite,
    yaml,
    metaqore.core.audit,
    metaqore.gate.replay,
    metaqore.gate.store,
    metaqore.report,
    metaqore.storage.backends.sqlite,
    pytest_metaqore.session,
)

# Acceptance tests run three ways (syrupy's tests/conftest.py): without xdist, with
# xdist loaded but not distributing (-n0), and with two workers (-n2).
_NO_XDIST: list[str] = []
_XDIST_ZERO = ["-n", "0"]
_XDIST_TWO = ["-n", "2"]


@pytest.fixture(
    params=[_NO_XDIST, _XDIST_ZERO, _XDIST_TWO],
    ids=["no_xdist", "xdist_zero", "xdist_two"],
)
def xdist_args(request: pytest.FixtureRequest) -> list[str]:
    """Extra arguments of one leg of the xdist matrix."""
    return list(request.param)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No METAQORE_* settings or CI switches of the outer run leak into inner runs."""
    for name in list(os.environ):
        if name.startswith(("METAQORE_", "GITHUB_")):
            monkeypatch.delenv(name)
    for name in ("NO_COLOR", "FORCE_COLOR", "PYTEST_XDIST_AUTO_NUM_WORKERS"):
        monkeypatch.delenv(name, raising=False)
