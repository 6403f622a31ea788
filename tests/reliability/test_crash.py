"""Crash safety: SIGKILL ``metaqore check`` at random moments of a large run, then look.

Each trial starts a real ``metaqore check`` on a generated JSON Lines run (a passing run,
so a persistent store commits all of it), kills it with SIGKILL after a random fraction of
an uninterrupted run's duration, and then checks what a crash may leave behind:

* the audit file's chain is intact up to its last complete line;
* the next run cuts off a torn tail (recording ``audit_recovered``), appends, and
  ``metaqore audit verify`` says OK;
* a persistent SQLite store passes ``PRAGMA integrity_check`` and holds either all of the
  killed run's artifacts or none of them, and what it held before is still there;
* no report is half-written under its final name: each either does not exist, is the
  previous run's report, or parses completely.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from reliability_support import clean_env, record_figures, run_in_process

from metaqore.core.audit import verify_audit_log

CI_TRIALS, CI_ARTIFACTS = 30, 60_000
SLOW_TRIALS, SLOW_ARTIFACTS = 60, 200_000
PROJECT = "crash"
MANIFEST = "crash.metaqore.jsonl"
REPORTS = {"report.json": "json", "report.sarif": "sarif", "report.xml": "junit"}

SMALL = """metaqore: 1
project: {{id: {project}}}
artifacts:
  - {{id: s1, type: plan, created_by: planner}}
  - {{id: s2, type: code, created_by: coder, depends_on: [s1]}}
  - {{id: s3, type: config, created_by: coder, depends_on: [s2]}}
"""


def write_large_run(path: Path, count: int, *, seed: int = 11) -> None:
    """A passing run: one agent per type, dependencies on earlier artifacts only."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as stream:
        header = {"metaqore": 1, "project": {"id": PROJECT}, "run": {"id": "big", "iteration": 1}}
        stream.write(json.dumps(header) + "\n")
        for number in range(count):
            artifact: dict[str, Any] = {
                "id": f"c{number:07d}",
                "type": f"type-{number % 20}",
                "created_by": f"agent-{number % 20}",
                "data": {"n": number, "note": "payload " * 3},
            }
            if number:
                artifact["depends_on"] = [f"c{rng.randrange(number):07d}"]
            stream.write(json.dumps(artifact, separators=(",", ":")) + "\n")


@dataclass
class Trial:
    number: int
    directory: Path
    with_db: bool
    with_junit: bool
    previous_reports: bool
    previous_runs: bool

    @property
    def db(self) -> Path:
        return self.directory / "state.db"

    @property
    def audit(self) -> Path:
        return self.directory / "audit.jsonl"

    def args(self) -> list[str]:
        args = ["check", MANIFEST, "--audit-log", "audit.jsonl", "-q", "--no-color"]
        args += ["--json", "report.json", "--sarif", "report.sarif"]
        if self.with_junit:
            args += ["--junit-xml", "report.xml"]
        if self.with_db:
            args += ["--db", f"sqlite:///{self.db}"]
        return args


def _start(trial: Trial) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "metaqore", *trial.args()],
        cwd=trial.directory,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _count(db: Path, project: str) -> int:
    with sqlite3.connect(db) as connection:
        (count,) = connection.execute(
            "SELECT count(*) FROM artifacts WHERE project_id = ?", (project,)
        ).fetchone()
    return int(count)


def _integrity(db: Path) -> str:
    with sqlite3.connect(db) as connection:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


def _parse_report(path: Path, kind: str) -> Any:
    data = path.read_bytes()
    if kind == "junit":
        return ET.fromstring(data)
    report = json.loads(data)
    if kind == "json":
        assert report["metaqore"] == 1 and report["verdict"] in ("pass", "blocked")
    else:
        assert report["version"] == "2.1.0" and report["runs"]
    return report


def _prepare(trial: Trial, manifest: Path) -> dict[str, bytes]:
    """Hard-link the large run in; seed earlier runs and reports as asked."""
    trial.directory.mkdir()
    os.link(manifest, trial.directory / MANIFEST)
    (trial.directory / "small.metaqore.yaml").write_text(SMALL.format(project="small"))
    (trial.directory / "next.metaqore.yaml").write_text(SMALL.format(project="next"))
    old: dict[str, bytes] = {}
    if trial.previous_runs:
        args = ["check", "small.metaqore.yaml", "--audit-log", "audit.jsonl", "-q"]
        if trial.with_db:
            args += ["--db", f"sqlite:///{trial.db}"]
        if trial.previous_reports:
            for name, kind in REPORTS.items():
                args += [{"json": "--json", "sarif": "--sarif", "junit": "--junit-xml"}[kind], name]
        seeded = run_in_process(args, cwd=trial.directory)
        assert seeded.code == 0, str(seeded)
        old = {
            name: (trial.directory / name).read_bytes()
            for name in REPORTS
            if (trial.directory / name).exists()
        }
    return old


def check_after_crash(trial: Trial, old_reports: dict[str, bytes], artifacts: int) -> str:
    """Everything a crash may leave, checked; returns the state the kill left behind."""
    directory = trial.directory
    # Reports: absent, the previous run's, or complete.
    for name, kind in REPORTS.items():
        path = directory / name
        if path.exists():
            _parse_report(path, kind)
    state = "killed before any audit record"
    torn = False
    if trial.audit.exists() and trial.audit.stat().st_size:
        data = trial.audit.read_bytes()
        torn = not data.endswith(b"\n")
        result = verify_audit_log(trial.audit, allow_torn_tail=True)
        assert result.ok, f"trial {trial.number}: {result.message}"
        finished = data.count(b'"event_type":"run_finished"')
        state = "torn audit tail" if torn else "audit written, run unfinished"
        if finished > int(trial.previous_runs):
            state = "run finished in the audit"
    # The store: all of the killed run or none of it, and the earlier run intact.
    stored = None
    if trial.with_db and trial.db.exists():
        assert _integrity(trial.db) == "ok"
        tables = (
            sqlite3.connect(trial.db)
            .execute("SELECT count(*) FROM sqlite_master WHERE name = 'artifacts'")
            .fetchone()[0]
        )
        if tables:
            stored = _count(trial.db, PROJECT)
            assert stored in (0, artifacts), f"trial {trial.number}: {stored} of {artifacts} stored"
            assert _count(trial.db, "small") == (3 if trial.previous_runs else 0)
            if stored:
                state = "store committed"
    # The next run recovers, appends and leaves a valid chain.
    args = ["check", "next.metaqore.yaml", "--audit-log", "audit.jsonl", "-q"]
    args += ["--json", "next.json"]
    if trial.with_db:
        args += ["--db", f"sqlite:///{trial.db}"]
    after = run_in_process(args, cwd=directory)
    assert after.code == 0, str(after)
    verified = run_in_process(["audit", "verify", "audit.jsonl"], cwd=directory)
    assert verified.code == 0 and ": OK, " in verified.stdout, str(verified)
    records = [json.loads(line) for line in trial.audit.read_bytes().splitlines()]
    assert records[-1]["event_type"] == "run_finished"
    recovered = [record for record in records if record["event_type"] == "audit_recovered"]
    assert len(recovered) == int(torn), "a torn tail must be cut off and recorded, once"
    if trial.with_db:
        assert _integrity(trial.db) == "ok"
        assert _count(trial.db, "next") == 3
        assert _count(trial.db, PROJECT) == (stored or 0)
    return state


def calibrate(directory: Path, manifest: Path, *, with_db: bool) -> float:
    """Seconds one uninterrupted run takes (and proof that it passes)."""
    trial = Trial(-1, directory, with_db, True, False, False)
    _prepare(trial, manifest)
    started = time.perf_counter()
    process = _start(trial)
    assert process.wait(timeout=300) == 0
    elapsed = time.perf_counter() - started
    if with_db:
        assert _count(trial.db, PROJECT) > 0
    assert verify_audit_log(trial.audit).ok
    return elapsed


def kill_trials(root: Path, trials: int, artifacts: int, *, slow: bool) -> None:
    manifest = root / "large.metaqore.jsonl"
    write_large_run(manifest, artifacts)
    durations = {
        False: calibrate(root / "calibrate-nodb", manifest, with_db=False),
        True: calibrate(root / "calibrate-db", manifest, with_db=True),
    }
    rng = random.Random(20261125 + artifacts)
    states: Counter[str] = Counter()
    killed = 0
    for number in range(trials):
        trial = Trial(
            number,
            root / f"trial-{number:03d}",
            with_db=number % 3 == 0,
            with_junit=rng.random() < 0.5,
            previous_reports=rng.random() < 0.5,
            previous_runs=rng.random() < 0.7,
        )
        old_reports = _prepare(trial, manifest)
        delay = rng.uniform(0.03, 0.95) * durations[trial.with_db]
        started = time.perf_counter()
        process = _start(trial)
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=60)
            killed += 1
            state = check_after_crash(trial, old_reports, artifacts)
        else:
            assert process.returncode == 0
            state = "completed before the kill"
            # Runs got faster than the calibration (it ran on a busier machine): adapt.
            durations[trial.with_db] = min(durations[trial.with_db], time.perf_counter() - started)
            check_after_crash(trial, old_reports, artifacts)
        states[state] += 1
        # Keep the disk small: a large run's audit file is tens of MB.
        for path in trial.directory.iterdir():
            path.unlink()
        trial.directory.rmdir()
    print(f"{trials} trials, {killed} killed: {dict(states)}")
    assert killed >= trials * 0.7, "most trials must really be killed"
    assert len(states) >= 3, f"the kills must land in different phases: {dict(states)}"
    record_figures(
        "crash",
        slow=slow,
        trials=trials,
        killed=killed,
        artifacts_per_run=artifacts,
        seconds_per_run={"no_db": round(durations[False], 2), "sqlite": round(durations[True], 2)},
        states=dict(states),
        failures=0,
    )


def test_sigkill_at_random_moments_loses_and_forges_nothing(tmp_path: Path) -> None:
    kill_trials(tmp_path, CI_TRIALS, CI_ARTIFACTS, slow=False)


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_and_forges_nothing_long(tmp_path: Path) -> None:
    kill_trials(tmp_path, SLOW_TRIALS, SLOW_ARTIFACTS, slow=True)


def test_a_torn_tail_alone_is_reported_by_verify_and_repaired_by_the_next_run(
    tmp_path: Path,
) -> None:
    """The deterministic core of the random trials: a line cut in half by a crash."""
    (tmp_path / "a.metaqore.yaml").write_text(SMALL.format(project="a"))
    (tmp_path / "b.metaqore.yaml").write_text(SMALL.format(project="b"))
    assert run_in_process(["check", "a.metaqore.yaml", "-q"], cwd=tmp_path).code == 0
    audit = tmp_path / "metaqore-audit.jsonl"
    lines = audit.read_bytes().splitlines(keepends=True)
    audit.write_bytes(b"".join(lines) + lines[-1][: len(lines[-1]) // 2])
    torn = run_in_process(["audit", "verify", str(audit)], cwd=tmp_path)
    assert torn.code == 1 and f":{len(lines) + 1}: " in torn.stdout, str(torn)
    assert verify_audit_log(audit, allow_torn_tail=True).ok
    assert run_in_process(["check", "b.metaqore.yaml", "-q"], cwd=tmp_path).code == 0
    assert run_in_process(["audit", "verify", str(audit)], cwd=tmp_path).code == 0
    records = [json.loads(line) for line in audit.read_bytes().splitlines()]
    (recovered,) = [record for record in records if record["event_type"] == "audit_recovered"]
    assert recovered["seq"] == len(lines) + 1
    assert recovered["payload"]["truncated_bytes"] == len(lines[-1]) // 2
