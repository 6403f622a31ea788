"""When the store fails, ``metaqore check`` exits 2 with one clear line naming the store
(password masked), quickly, and nothing is written: a held lock beyond ``store_timeout``,
a refused or silent server, a wrong password or database, a connection killed in the middle
of a run, an audit file that cannot be appended. Real ``metaqore`` processes."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from store_support import art, check, clean_env, store_state, write_manifest

from metaqore.core.audit import verify_audit_log
from metaqore.storage.backends.sqlite import SQLiteBackend, mask_dsn


def seeded(work: Path, db: str) -> str:
    """plan v1 stored; returns a manifest adding plan v2 (a run that would write)."""
    first = write_manifest(work, "first", [art("plan-1", "plan", "planner")], iteration=1)
    assert check(first, db=db, cwd=work).returncode == 0
    return write_manifest(work, "second", [art("plan-2", "plan", "planner")], iteration=2)


def assert_one_line_exit_2(result: object, *needles: str) -> None:
    returncode = getattr(result, "returncode", None)
    stderr: str = getattr(result, "stderr", "")
    assert returncode == 2, result
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    for needle in needles:
        assert needle in stderr, stderr


# -- locks ------------------------------------------------------------------------------


def test_a_gate_waiting_longer_than_store_timeout_exits_2(work: Path, db: str) -> None:
    manifest = seeded(work, db)
    before = store_state(db)
    holder = SQLiteBackend(db, timeout=60)
    try:
        with holder.run_transaction(["shop"]):
            started = time.monotonic()
            result = check(manifest, db=db, cwd=work, env=clean_env(METAQORE_STORE_TIMEOUT="1"))
            elapsed = time.monotonic() - started
    finally:
        holder.close()
    assert_one_line_exit_2(result, "is locked by another run for more than 1 s", mask_dsn(db))
    assert elapsed < 20
    assert store_state(db) == before


# -- connections ------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a hung server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for connection in accepted:
            connection.close()
        listener.close()


def test_a_refused_connection_exits_2_at_once(work: Path) -> None:
    manifest = write_manifest(work, "m", [art("plan-1", "plan", "planner")])
    dsn = f"postgresql+psycopg://gate:s3cret-pw@127.0.0.1:{_closed_port()}/metaqore"
    started = time.monotonic()
    result = check(manifest, db=dsn, cwd=work, process=True)
    assert_one_line_exit_2(
        result, "cannot open store postgresql+psycopg://gate:***@127.0.0.1:", "refused"
    )
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert time.monotonic() - started < 15


def test_a_server_that_never_answers_times_out_with_exit_2(work: Path, silent_server: int) -> None:
    manifest = write_manifest(work, "m", [art("plan-1", "plan", "planner")])
    dsn = f"postgresql+psycopg://gate:s3cret-pw@127.0.0.1:{silent_server}/metaqore"
    started = time.monotonic()
    result = check(manifest, db=dsn, cwd=work, env=clean_env(METAQORE_STORE_TIMEOUT="2"))
    elapsed = time.monotonic() - started
    assert_one_line_exit_2(result, "cannot open store postgresql+psycopg://gate:***@", "timeout")
    assert "s3cret-pw" not in result.stderr
    assert 1.5 < elapsed < 20


@pytest.mark.postgres
def test_a_wrong_password_exits_2_without_showing_it(work: Path, postgres_dsn: str) -> None:
    url = make_url(postgres_dsn)
    if not url.password:
        pytest.skip(f"{mask_dsn(postgres_dsn)} takes no password: cannot test a wrong one")
    wrong = url.set(password="not-the-password-42").render_as_string(hide_password=False)
    manifest = write_manifest(work, "m", [art("plan-1", "plan", "planner")])
    result = check(manifest, db=wrong, cwd=work, process=True)
    assert_one_line_exit_2(result, "cannot open store", "password authentication failed")
    assert "not-the-password-42" not in result.stderr + result.stdout
    assert mask_dsn(wrong) in result.stderr


@pytest.mark.postgres
def test_a_missing_database_exits_2(work: Path, postgres_dsn: str) -> None:
    missing = make_url(postgres_dsn).set(database="metaqore_no_such_db")
    manifest = write_manifest(work, "m", [art("plan-1", "plan", "planner")])
    result = check(
        manifest, db=missing.render_as_string(hide_password=False), cwd=work, process=True
    )
    assert_one_line_exit_2(result, 'database "metaqore_no_such_db" does not exist')


# -- a connection lost in the middle of a run ------------------------------------------


@contextmanager
def stalled_checkpoint_inserts(db: str, seconds: int) -> Iterator[sa.Engine]:
    """While open, every checkpoint insert into ``db``'s schema sleeps ``seconds`` first:
    a run stalls inside its transaction, after staging its artifacts. Yields an admin
    engine (outside that schema) to watch or end the stalled connection with; the stalled
    connection's application_name is the schema's name (other tests stall at once)."""
    schema_name = str(make_url(db).query["options"]).split("=", 1)[1]
    admin = sa.create_engine(make_url(db).difference_update_query(["options"]))
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(
                f"CREATE FUNCTION {schema_name}.stall() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN PERFORM set_config('application_name', '{schema_name}', true); "
                f"PERFORM pg_sleep({int(seconds)}); RETURN NEW; END $$"
            )
            connection.exec_driver_sql(
                f"CREATE TRIGGER stall BEFORE INSERT ON {schema_name}.checkpoints "
                f"FOR EACH ROW EXECUTE FUNCTION {schema_name}.stall()"
            )
        yield admin
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP TRIGGER stall ON {schema_name}.checkpoints")
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_a_connection_killed_mid_run_exits_2_and_writes_nothing(
    work: Path, postgres_schema: Callable[[], str]
) -> None:
    db = postgres_schema()
    manifest = seeded(work, db)
    before = store_state(db)
    audit_before = (work / "metaqore-audit.jsonl").read_bytes()
    schema_name = str(make_url(db).query["options"]).split("=", 1)[1]
    with stalled_checkpoint_inserts(db, 60) as admin:
        # There we terminate the run's connection.
        killed: list[int] = []

        def kill_when_stalled() -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                with admin.begin() as connection:
                    pids = (
                        connection.exec_driver_sql(
                            "SELECT pid FROM pg_stat_activity "
                            "WHERE wait_event = 'PgSleep' AND application_name = %(name)s",
                            {"name": schema_name},
                        )
                        .scalars()
                        .all()
                    )
                    for pid in pids:
                        connection.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
                        killed.append(pid)
                time.sleep(0.05)

        killer = threading.Thread(target=kill_when_stalled)
        killer.start()
        result = check(manifest, db=db, cwd=work, process=True)
        killer.join(70)
        assert killed, "the run never reached the stalled insert"
    assert_one_line_exit_2(result, mask_dsn(db))
    assert "connection" in result.stderr or "terminat" in result.stderr, result.stderr
    assert store_state(db) == before
    # The audit got no "pass" for the run the store refused: only the record of a failed
    # run (SPEC §5), appended to an intact chain.
    audit = work / "metaqore-audit.jsonl"
    after = audit.read_bytes()
    assert after.startswith(audit_before)
    added = [json.loads(line) for line in after[len(audit_before) :].splitlines()]
    assert [record["event_type"] for record in added] == ["run_started", "run_finished"]
    assert added[-1]["payload"]["verdict"] == "error"
    assert added[-1]["payload"]["error"] == "StorageError"
    assert verify_audit_log(audit).ok


@pytest.mark.postgres
def test_a_server_that_stalls_a_statement_times_out_with_exit_2(
    work: Path, postgres_schema: Callable[[], str]
) -> None:
    """A server that accepts the connection, then never finishes a statement."""
    db = postgres_schema()
    manifest = seeded(work, db)
    before = store_state(db)
    with stalled_checkpoint_inserts(db, 30):
        started = time.monotonic()
        result = check(manifest, db=db, cwd=work, env=clean_env(METAQORE_STORE_TIMEOUT="2"))
        elapsed = time.monotonic() - started
    assert_one_line_exit_2(result, mask_dsn(db), "did not answer within 2 s")
    assert elapsed < 20, f"took {elapsed:.1f} s with store_timeout 2 s"
    assert store_state(db) == before


# -- the audit file refuses the run: the store rolls back --------------------------------


def test_an_audit_that_cannot_be_appended_leaves_the_store_unchanged(work: Path, db: str) -> None:
    manifest = seeded(work, db)
    before = store_state(db)
    audit = work / "metaqore-audit.jsonl"
    lines = audit.read_text(encoding="utf-8").splitlines(keepends=True)
    audit.write_text("".join(lines[:-1]), encoding="utf-8")  # the head file says otherwise
    result = check(manifest, db=db, cwd=work, process=True)
    assert result.returncode == 2, result
    assert "lines were removed from the end" in result.stderr
    assert store_state(db) == before
