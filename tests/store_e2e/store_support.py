"""Running the real ``metaqore`` command against a persistent store, and reading the store."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from metaqore.storage import schema
from metaqore.storage.backends.sqlite import SQLiteBackend

TIMEOUT = 120

# Variables that would change what the CLI does if the suite itself runs in CI.
_SCRUBBED_PREFIXES = ("METAQORE_", "GITHUB_")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env.update({"PYTHONIOENCODING": "utf-8", "NO_COLOR": "1"})
    env.update(extra)
    return env


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    cwd: Path

    def report(self, name: str = "report.json") -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.cwd / name).read_text(encoding="utf-8"))
        return loaded

    @property
    def rules(self) -> set[str]:
        return {finding["rule"] for finding in self.report()["findings"]}

    def __str__(self) -> str:
        return (
            f"metaqore {' '.join(self.args)} -> exit {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def metaqore(
    *args: str, cwd: Path, env: dict[str, str] | None = None, process: bool = False
) -> Result:
    """Run ``metaqore ARGS`` in ``cwd``: by default in this process (``metaqore.cli.main``,
    the console script's own entry point, with ``METAQORE_*`` variables hidden); with
    ``process=True`` (or an ``env``) as ``python -m metaqore`` in a subprocess."""
    if not process and env is None:
        return _in_process(list(args), cwd)
    completed = subprocess.run(
        [sys.executable, "-m", "metaqore", *args],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        check=False,
    )
    return Result(list(args), completed.returncode, completed.stdout, completed.stderr, cwd)


def _in_process(args: list[str], cwd: Path) -> Result:
    from metaqore.cli import main

    hidden = {k: v for k, v in os.environ.items() if k.startswith(_SCRUBBED_PREFIXES)}
    out, err = io.StringIO(), io.StringIO()
    previous = Path.cwd()
    for key in hidden:
        del os.environ[key]
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(args)
    finally:
        os.chdir(previous)
        os.environ.update(hidden)
    return Result(args, code, out.getvalue(), err.getvalue(), cwd)


def check(
    *paths: str, db: str, cwd: Path, env: dict[str, str] | None = None, process: bool = False
) -> Result:
    """``metaqore check PATHS --db DB --json report.json``."""
    return metaqore(
        "check",
        *paths,
        "--db",
        db,
        "--json",
        "report.json",
        "--no-github",
        cwd=cwd,
        env=env,
        process=process,
    )


def write_manifest(
    directory: Path,
    name: str,
    artifacts: list[dict[str, Any]],
    *,
    project: str = "shop",
    iteration: int | None = None,
) -> str:
    """A manifest file; returns its path relative to ``directory``."""
    document: dict[str, Any] = {"metaqore": 1, "project": {"id": project, "name": project.title()}}
    if iteration is not None:
        document["run"] = {"iteration": iteration}
    document["artifacts"] = artifacts
    path = directory / f"{name}.metaqore.json"
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return path.name


def art(artifact_id: str, artifact_type: str, by: str, **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"id": artifact_id, "type": artifact_type, "created_by": by}
    item.setdefault("data", {"id": artifact_id})
    item.update(fields)
    return item


def store_state(dsn: str) -> dict[str, Any]:
    """Everything a run could have written, for before/after comparisons."""
    backend = SQLiteBackend(dsn)
    try:
        with backend.engine.connect() as connection:
            return {
                table.name: sorted(
                    tuple(str(value) for value in row)
                    for row in connection.execute(sa.select(table))
                )
                for table in schema.metadata.sorted_tables
            }
    finally:
        backend.close()


def stored_versions(dsn: str, project: str = "shop") -> dict[str, list[tuple[str, int]]]:
    """artifact type -> [(id, version)] in version order."""
    backend = SQLiteBackend(dsn)
    try:
        found: dict[str, list[tuple[str, int]]] = {}
        for record in backend.iter_artifact_records([project]):
            found.setdefault(record.artifact_type, []).append((record.id, record.version))
        return found
    finally:
        backend.close()


#: A process that runs ``metaqore`` commands on request, each released by a FIFO: two of
#: them race for the store from the same instant, round after round, without paying
#: Python's start-up for every round. One request per line on stdin (JSON: ``fifo``,
#: ``cwd``, ``argv``); it answers ``ready`` (about to wait on the FIFO), ``go`` (released
#: soon: the FIFO is open) and then the result as one JSON line.
RACER = textwrap.dedent(
    """
    import contextlib, io, json, os, sys
    import metaqore.cli
    channel = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        print("ready", file=channel, flush=True)
        with open(request["fifo"], "rb") as barrier:
            print("go", file=channel, flush=True)
            barrier.read()
        os.chdir(request["cwd"])
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = metaqore.cli.main(request["argv"])
        print(json.dumps({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}),
              file=channel, flush=True)
    """
)
