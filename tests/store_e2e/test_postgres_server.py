"""metaqore.testing.postgres.PostgresServer (what the suite and the benchmarks start), and
the ``postgres_dsn`` fixture's skip-or-fail rule."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from metaqore.testing import postgres
from metaqore.testing.postgres import PostgresServer, PostgresUnavailable

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


@pytest.fixture
def require_postgres_installed() -> None:
    try:
        postgres.find_bindir()
    except PostgresUnavailable as exc:
        if os.environ.get("METAQORE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"METAQORE_REQUIRE_POSTGRES=1 but {exc}")
        pytest.skip(str(exc))


def _select_one(dsn: str) -> int:
    engine = sa.create_engine(dsn)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text("SELECT 1")).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.usefixtures("require_postgres_installed")
def test_a_server_of_its_own_with_databases_and_a_password() -> None:
    with PostgresServer() as server:
        base = server.base_dir
        assert base is not None and (base / "data" / "postmaster.pid").exists()
        assert _select_one(server.dsn) == 1
        bench = server.create_database("bench_one")
        assert make_url(bench).database == "bench_one"
        assert _select_one(bench) == 1
        server.drop_database("bench_one")
        server.drop_database("bench_one")  # a missing one is fine
        with pytest.raises(sa.exc.OperationalError, match="does not exist"):
            _select_one(bench)
        wrong = make_url(server.dsn).set(password="wrong").render_as_string(hide_password=False)
        with pytest.raises(sa.exc.OperationalError, match="password authentication failed"):
            _select_one(wrong)
        with pytest.raises(ValueError, match="plain database name"):
            server.create_database("x; DROP")
        dsn = server.dsn
    assert not base.exists()
    with pytest.raises(sa.exc.OperationalError):
        _select_one(dsn)


def test_without_postgresql_the_fixture_skips_or_fails_as_asked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_installed() -> Path:
        raise PostgresUnavailable("PostgreSQL is not installed (for this test)")

    monkeypatch.setattr(postgres, "find_bindir", not_installed)
    monkeypatch.delenv("METAQORE_TEST_POSTGRES_DSN", raising=False)
    monkeypatch.delenv("METAQORE_REQUIRE_POSTGRES", raising=False)
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makepyfile(test_needs_postgres="def test_it(postgres_dsn):\n    assert postgres_dsn\n")
    skipped = pytester.runpytest("-rs", "-p", "no:metaqore")
    skipped.assert_outcomes(skipped=1)
    skipped.stdout.fnmatch_lines(["*no PostgreSQL server: PostgreSQL is not installed*"])

    monkeypatch.setenv("METAQORE_REQUIRE_POSTGRES", "1")
    failed = pytester.runpytest("-p", "no:metaqore")
    failed.assert_outcomes(errors=1)
    failed.stdout.fnmatch_lines(["*METAQORE_REQUIRE_POSTGRES=1 but no PostgreSQL server*"])

    monkeypatch.setenv("METAQORE_TEST_POSTGRES_DSN", "postgresql+psycopg://u@h/d")
    given = pytester.runpytest("-p", "no:metaqore")
    given.assert_outcomes(passed=1)
