"""A real PostgreSQL server for every test that needs one.

``postgres_dsn`` (session): ``METAQORE_TEST_POSTGRES_DSN`` when set (``.ci/run`` starts one
server for the whole run), else a :class:`~metaqore.testing.postgres.PostgresServer` this
process starts and stops, so a plain ``pytest`` on a machine with PostgreSQL installed runs
the PostgreSQL tests too. If no server can be had, those tests are skipped with the reason,
unless ``METAQORE_REQUIRE_POSTGRES=1`` (``.ci/run``), which makes that a failure.

``postgres_schema`` gives each test private schemas (names carry the xdist worker id), so
tests never see each other's tables or wait for each other's locks.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import pytest

POSTGRES_ENV = "METAQORE_TEST_POSTGRES_DSN"
REQUIRE_ENV = "METAQORE_REQUIRE_POSTGRES"


def worker_tag() -> str:
    """``gw0``, ``gw1`` ... under xdist, ``main`` otherwise."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """The DSN of a database on a running PostgreSQL server."""
    configured = os.environ.get(POSTGRES_ENV)
    if configured:
        yield configured
        return
    try:
        from metaqore.testing.postgres import PostgresServer, PostgresUnavailable
    except ImportError as exc:  # pragma: no cover - the package is installed in tests
        reason = f"metaqore.testing.postgres cannot be imported: {exc}"
        server = None
    else:
        try:
            server = PostgresServer().start()
            reason = ""
        except PostgresUnavailable as exc:
            server = None
            reason = f"no PostgreSQL server: {exc} (or set {POSTGRES_ENV})"
    if server is None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    try:
        yield server.dsn
    finally:
        server.stop()


SchemaFactory = Callable[[], str]


@pytest.fixture
def postgres_schema(postgres_dsn: str) -> Iterator[SchemaFactory]:
    """Call it for the DSN of a fresh, empty schema (its search_path); all are dropped
    at the end of the test."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    base = make_url(postgres_dsn).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(base)
    created: list[str] = []

    def create() -> str:
        name = f"mq_{worker_tag()}_{secrets.token_hex(5)}"
        with admin.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {name}")
        created.append(name)
        url = base.update_query_dict({"options": f"-csearch_path={name}"})
        return url.render_as_string(hide_password=False)

    try:
        yield create
    finally:
        with admin.begin() as connection:
            for name in created:
                connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        admin.dispose()
