"""The stores the end-to-end tests run ``metaqore`` against: a SQLite file and a private
schema on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def new_store(request: pytest.FixtureRequest, tmp_path: Path, store_kind: str) -> Callable[[], str]:
    """Call it for the DSN of a new, empty store of the test's kind (``store_kind``)."""
    kind = store_kind
    counter = iter(range(1_000_000))
    if kind == "sqlite":
        return lambda: f"sqlite:///{tmp_path / f'store-{next(counter)}.db'}"
    factory: Callable[[], str] = request.getfixturevalue("postgres_schema")
    return factory


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def db(new_store: Callable[[], str]) -> str:
    """One new store of each kind."""
    return new_store()


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """The working directory of the ``metaqore`` runs."""
    path = tmp_path / "work"
    path.mkdir()
    return path
