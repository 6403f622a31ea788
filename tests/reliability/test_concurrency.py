"""Concurrency: many gate processes on one audit file, on one SQLite store, and a lock held
too long.

Several processes run the real ``metaqore check`` against one audit file at once: the
file must hold one valid chain with every run's records, none lost or interleaved (the
gate holds the file lock for a whole run, so each run's records are contiguous). Several
processes persisting to one SQLite store must leave it uncorrupted with every run's
artifacts and gap-free versions. A store or audit file locked by someone else for longer
than ``store_timeout`` is a clear exit 2, not a hang.

The CI variant runs each process's runs in one interpreter (``metaqore.cli.main`` in a
loop: real processes, real locks, no interpreter start-up per run); the ``slow`` variant
starts one ``metaqore`` process per run.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from reliability_support import clean_env, record_figures, run_subprocess

from metaqore.core.audit import verify_audit_log

MANIFEST = """metaqore: 1
project: {{id: p{worker}}}
artifacts:
  - {{id: plan, type: plan, created_by: planner-{worker}}}
  - {{id: code, type: code, created_by: coder-{worker}, depends_on: [plan],
     task: {{type: coding, provider: ollama}}}}
"""

# One process that runs the gate `runs` times in a loop, starting when `go` appears.
LOOP = textwrap.dedent(
    """
    import contextlib, io, json, os, sys, time
    from metaqore.cli import main
    worker, runs, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    while not os.path.exists("go"):
        time.sleep(0.001)
    codes = []
    for run in range(runs):
        if mode == "audit":
            args = ["check", f"w{worker}.metaqore.yaml", "--audit-log", "shared.jsonl", "-q"]
        else:
            name = f"w{worker}-run.metaqore.yaml"
            previous = f", depends_on: [w{worker}-r{run - 1}-b]" if run else ""
            with open(name, "w") as manifest:
                manifest.write(
                    f"metaqore: 1\\nproject: {{id: shared}}\\nartifacts:\\n"
                    f"  - {{id: w{worker}-r{run}-a, type: t{worker}, created_by: a{worker}"
                    f"{previous}}}\\n"
                    f"  - {{id: w{worker}-r{run}-b, type: t{worker}, created_by: a{worker},"
                    f" depends_on: [w{worker}-r{run}-a]}}\\n"
                )
            args = ["check", name, "--audit-log", f"w{worker}.jsonl", "-q",
                    "--db", "sqlite:///" + os.path.abspath("shared.db")]
        with contextlib.redirect_stdout(io.StringIO()):
            codes.append(main(args))
    print(json.dumps(codes))
    """
)


def _start_loops(
    directory: Path, workers: int, runs: int, mode: str
) -> list[subprocess.Popen[str]]:
    (directory / "loop.py").write_text(LOOP)
    processes = [
        subprocess.Popen(
            [sys.executable, "loop.py", str(worker), str(runs), mode],
            cwd=directory,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(workers)
    ]
    time.sleep(0.5)  # every interpreter up and polling: the runs really overlap
    (directory / "go").touch()
    return processes


def _finish(processes: list[subprocess.Popen[str]], timeout: float) -> list[int]:
    codes: list[int] = []
    for process in processes:
        out, err = process.communicate(timeout=timeout)
        assert process.returncode == 0, err
        codes += json.loads(out.strip().splitlines()[-1])
    return codes


def _start_processes(directory: Path, workers: int, runs: int) -> list[int]:
    """``workers`` threads of real ``metaqore check`` processes, ``runs`` each, overlapping."""
    import concurrent.futures

    def worker_runs(worker: int) -> list[int]:
        results = []
        for _ in range(runs):
            result = run_subprocess(
                ["check", f"w{worker}.metaqore.yaml", "--audit-log", "shared.jsonl", "-q"],
                cwd=directory,
                memory=None,
            )
            results.append(result.code)
        return results

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return [code for codes in pool.map(worker_runs, range(workers)) for code in codes]


def check_one_chain(audit: Path, workers: int, runs: int) -> None:
    """One valid chain holding every run, each run's records contiguous and complete."""
    result = verify_audit_log(audit)
    assert result.ok, result.message
    records = [json.loads(line) for line in audit.read_bytes().splitlines()]
    assert [record["seq"] for record in records] == list(range(1, len(records) + 1))
    started = [r for r in records if r["event_type"] == "run_started"]
    finished = [r for r in records if r["event_type"] == "run_finished"]
    assert len(started) == len(finished) == workers * runs
    # Contiguous: once a run id appears, nothing else comes until its run_finished.
    order: list[str] = []
    for record in records:
        if not order or order[-1] != record["run_id"]:
            order.append(record["run_id"])
    assert len(order) == len(set(order)) == workers * runs, "a run's records were interleaved"
    per_run = Counter(record["run_id"] for record in records)
    per_run_types = {
        run_id: [r["event_type"] for r in records if r["run_id"] == run_id] for run_id in order[:3]
    }
    assert set(per_run.values()) == {len(next(iter(per_run_types.values())))}, per_run_types
    for run_id, types in per_run_types.items():
        assert types[0] == "run_started" and types[-1] == "run_finished", (run_id, types)
    by_manifest = Counter(r["payload"]["manifests"][0]["path"] for r in started)
    assert by_manifest == {f"w{worker}.metaqore.yaml": runs for worker in range(workers)}


def _audit_workspace(directory: Path, workers: int) -> None:
    for worker in range(workers):
        (directory / f"w{worker}.metaqore.yaml").write_text(MANIFEST.format(worker=worker))


def test_parallel_runs_form_one_chain(tmp_path: Path) -> None:
    workers, runs = 4, 200
    _audit_workspace(tmp_path, workers)
    started = time.perf_counter()
    codes = _finish(_start_loops(tmp_path, workers, runs, "audit"), timeout=600)
    assert codes == [0] * workers * runs
    check_one_chain(tmp_path / "shared.jsonl", workers, runs)
    record_figures(
        "concurrency.audit",
        slow=False,
        processes=workers,
        runs=workers * runs,
        seconds=round(time.perf_counter() - started, 1),
        failures=0,
    )


@pytest.mark.slow
def test_parallel_metaqore_processes_form_one_chain(tmp_path: Path) -> None:
    """One ``metaqore check`` process per run: 8 at a time, 800 runs."""
    workers, runs = 8, 100
    _audit_workspace(tmp_path, workers)
    started = time.perf_counter()
    codes = _start_processes(tmp_path, workers, runs)
    assert codes == [0] * workers * runs
    check_one_chain(tmp_path / "shared.jsonl", workers, runs)
    record_figures(
        "concurrency.audit.processes",
        slow=True,
        processes=workers,
        runs=workers * runs,
        seconds=round(time.perf_counter() - started, 1),
        failures=0,
    )


def _store_runs(directory: Path, workers: int, runs: int, *, slow: bool) -> None:
    started = time.perf_counter()
    codes = _finish(_start_loops(directory, workers, runs, "store"), timeout=900)
    assert codes == [0] * workers * runs
    db = directory / "shared.db"
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = connection.execute(
            "SELECT artifact_type, version FROM artifacts WHERE project_id = 'shared'"
        ).fetchall()
    assert len(rows) == workers * runs * 2
    versions: dict[str, list[int]] = {}
    for artifact_type, version in rows:
        versions.setdefault(artifact_type, []).append(version)
    # Each worker's type got versions 1..2*runs, no gap, no duplicate: every run read the
    # store and wrote its artifacts in one transaction.
    assert {t: sorted(v) for t, v in versions.items()} == {
        f"t{worker}": list(range(1, 2 * runs + 1)) for worker in range(workers)
    }
    for worker in range(workers):
        assert verify_audit_log(directory / f"w{worker}.jsonl").ok
    record_figures(
        "concurrency.sqlite",
        slow=slow,
        processes=workers,
        runs=workers * runs,
        seconds=round(time.perf_counter() - started, 1),
        failures=0,
    )


def test_parallel_runs_share_one_sqlite_store(tmp_path: Path) -> None:
    _store_runs(tmp_path, 4, 25, slow=False)


@pytest.mark.slow
def test_parallel_runs_share_one_sqlite_store_long(tmp_path: Path) -> None:
    _store_runs(tmp_path, 6, 100, slow=True)


# -- a lock held too long --------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store with history, its manifest beside it."""
    (tmp_path / "a.metaqore.yaml").write_text(MANIFEST.format(worker=0))
    db = tmp_path / "state.db"
    first = run_subprocess(["check", "a.metaqore.yaml", "--db", f"sqlite:///{db}"], cwd=tmp_path)
    assert first.code == 0, str(first)
    return db


@pytest.mark.parametrize("how", ["environment", "config"])
def test_a_store_locked_too_long_is_a_clear_error_not_a_hang(store: Path, how: str) -> None:
    directory = store.parent
    args = ["check", "a.metaqore.yaml", "--db", f"sqlite:///{store}", "--audit-log", "b.jsonl"]
    env = {}
    if how == "environment":
        env["METAQORE_STORE_TIMEOUT"] = "1"
    else:
        (directory / "metaqore.yaml").write_text("store_timeout: 1\n")
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another run's write transaction, never finishing
    try:
        started = time.perf_counter()
        result = run_subprocess(args, cwd=directory, env=env, timeout=30)
        elapsed = time.perf_counter() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.code == 2, str(result)
    assert "locked" in result.stderr and "1 s" in result.stderr, str(result)
    assert "Traceback" not in result.stderr
    assert elapsed < 10, f"waited {elapsed:.1f} s for a 1 s timeout"
    # The lock released, the same run goes through.
    again = run_subprocess(args, cwd=directory, env=env)
    assert again.code == 0, str(again)
    with sqlite3.connect(store) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_an_audit_file_locked_too_long_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    (tmp_path / "a.metaqore.yaml").write_text(MANIFEST.format(worker=0))
    lock = os.open(tmp_path / "metaqore-audit.jsonl.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        started = time.perf_counter()
        result = run_subprocess(
            ["check", "a.metaqore.yaml"], cwd=tmp_path, env={"METAQORE_STORE_TIMEOUT": "1"}
        )
        elapsed = time.perf_counter() - started
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
    assert result.code == 2, str(result)
    assert "locked by another process" in result.stderr, str(result)
    assert elapsed < 10
    assert run_subprocess(["check", "a.metaqore.yaml"], cwd=tmp_path).code == 0
