"""Fixtures for the store tests: every test runs on in-memory SQLite, a SQLite file and a
private schema on a real PostgreSQL server (``postgres_dsn`` in ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from metaqore.storage.backends.sqlite import SQLiteBackend

STORE_KINDS = ["memory", "file", pytest.param("postgres", marks=pytest.mark.postgres)]
PERSISTENT_KINDS = ["file", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def postgres_schema_dsn(postgres_schema: Callable[[], str]) -> str:
    """A DSN whose search_path is a fresh schema, dropped afterwards."""
    return postgres_schema()


def _dsn_for(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "memory":
        return "sqlite://"
    if kind == "file":
        return f"sqlite:///{tmp_path / 'store.db'}"
    value: str = request.getfixturevalue("postgres_schema_dsn")
    return value


@pytest.fixture(params=STORE_KINDS)
def dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every kind of store."""
    return _dsn_for(request.param, tmp_path, request)


@pytest.fixture(params=PERSISTENT_KINDS)
def persistent_dsn(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Stores that outlive their backend object (reopening them is meaningful)."""
    return _dsn_for(request.param, tmp_path, request)


@pytest.fixture
def open_backend() -> Iterator[Callable[..., SQLiteBackend]]:
    """Open backends that are all closed at the end of the test."""
    opened: list[SQLiteBackend] = []

    def factory(dsn: str, **kwargs: Any) -> SQLiteBackend:
        backend = SQLiteBackend(dsn, **kwargs)
        opened.append(backend)
        return backend

    yield factory
    for backend in opened:
        backend.close()


@pytest.fixture
def backend(dsn: str, open_backend: Callable[..., SQLiteBackend]) -> SQLiteBackend:
    return open_backend(dsn, timeout=10.0)


class Clock:
    """Strictly increasing, distinct timestamps, so that orderings are well defined."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()
