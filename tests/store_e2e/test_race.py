"""Two ``metaqore check`` processes racing for the same project version, many times.

Each round: a new store holding ``plan`` version 1; two gate processes, released together
by a FIFO, each declare a different artifact as ``plan`` version 2. Exactly one may pass;
the other must wait for it and then block on ``version_mismatch`` against the stored v2,
and the store must end with exactly one version 2. On PostgreSQL (an advisory lock per
project) and on a SQLite file (``BEGIN IMMEDIATE``).

The two processes live for the whole test and run one ``metaqore check`` per round
(``metaqore.cli.main``, the console script's entry point), so a round costs the gate's
work, not two Python start-ups.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from store_support import RACER, art, clean_env, stored_versions, write_manifest

from metaqore.config import MetaQoreConfig
from metaqore.gate import GateOptions, run_gate

#: Rounds per store kind (``METAQORE_RACE_ROUNDS`` to run more).
ROUNDS = int(os.environ.get("METAQORE_RACE_ROUNDS", "30"))


class Racer:
    def __init__(self, name: str) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-c", RACER],
            env=clean_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send(self, **request: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()

    def expect(self, word: str) -> None:
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line == word, f"racer {self.name}: expected {word!r}, got {line!r}"

    def result(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:  # pragma: no cover - a hung racer
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextmanager
def racers() -> Iterator[list[Racer]]:
    started = [Racer("a"), Racer("b")]
    try:
        yield started
    finally:
        for racer in started:
            racer.close()


def seed(work: Path, db: str) -> None:
    """plan v1 in the store, through the gate itself."""
    manifest = write_manifest(work, "seed", [art("plan-1", "plan", "planner")], iteration=1)
    verdict = run_gate(
        GateOptions(
            config=MetaQoreConfig(),
            paths=[str(work / manifest)],
            root=work,
            db=db,
            audit_log=str(work / "seed-audit.jsonl"),
        )
    )
    assert verdict.passed
    (work / manifest).unlink()


def race_once(pair: list[Racer], work: Path, db: str) -> dict[str, dict[str, Any]]:
    """Release both racers on one round's store; return racer name -> its result."""
    fifo = work / "barrier"
    os.mkfifo(fifo)
    for racer in pair:
        directory = work / racer.name
        directory.mkdir()
        manifest = write_manifest(
            directory,
            "v2",
            [art(f"plan-{racer.name}", "plan", "planner", version=2)],
            iteration=2,
        )
        argv = ["check", manifest, "--db", db, "--json", "report.json", "--no-github", "-q"]
        # Each its own audit file (as on two CI runners): only the store is shared.
        racer.send(fifo=str(fifo), cwd=str(directory), argv=[*argv, "--audit-log", "a.jsonl"])
    for racer in pair:
        racer.expect("ready")
    with open(fifo, "wb"):
        # Both are in open() or past it; closing the FIFO releases them at once.
        for racer in pair:
            racer.expect("go")
    return {racer.name: racer.result() for racer in pair}


@pytest.mark.parametrize(
    "store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_exactly_one_of_two_racing_gates_takes_version_2(
    tmp_path: Path, new_store: Callable[[], str], store_kind: str
) -> None:
    winners: list[str] = []
    with racers() as pair:
        for number in range(ROUNDS):
            work = tmp_path / f"round-{number}"
            work.mkdir()
            db = new_store()
            seed(work, db)
            results = race_once(pair, work, db)
            codes = {name: result["code"] for name, result in results.items()}
            assert sorted(codes.values()) == [0, 1], f"round {number}: {results}"
            [winner] = [name for name, code in codes.items() if code == 0]
            [loser] = [name for name, code in codes.items() if code == 1]
            winners.append(winner)
            report = json.loads((work / loser / "report.json").read_text(encoding="utf-8"))
            findings = {(f["rule"], f["artifact_id"]) for f in report["findings"]}
            assert ("version_mismatch", f"plan-{loser}") in findings, f"round {number}"
            assert stored_versions(db)["plan"] == [("plan-1", 1), (f"plan-{winner}", 2)]
    # Not asserted (scheduling decides), but shown with -rP: both should win sometimes.
    print(f"{store_kind}: winners of {ROUNDS} rounds: {''.join(winners)}")
