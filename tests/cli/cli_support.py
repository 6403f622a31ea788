"""Running the real ``metaqore`` command in a subprocess, the way a CI job does."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLES_CONFIG = "examples/metaqore.yaml"
TIMEOUT = 60

# Variables that would change what the CLI does if the suite itself runs in CI.
_SCRUBBED_PREFIXES = ("METAQORE_", "GITHUB_")
_SCRUBBED = {"NO_COLOR", "FORCE_COLOR", "PYTHONSTARTUP", "PYTHONBREAKPOINT"}


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without CI, colour and METAQORE_ settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_SCRUBBED_PREFIXES) and key not in _SCRUBBED
    }
    env["PYTHONIOENCODING"] = "utf-8"
    env["TERM"] = "xterm-256color"
    env.update(extra)
    return env


@dataclass
class Result:
    """One finished ``metaqore`` run."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    cwd: Path

    def report(self, name: str = "report.json") -> dict[str, Any]:
        """The ``--json`` report the run wrote."""
        loaded: dict[str, Any] = json.loads((self.cwd / name).read_text(encoding="utf-8"))
        return loaded

    def __str__(self) -> str:  # shown by pytest when an assertion on a Result fails
        return (
            f"metaqore {' '.join(self.args)} -> exit {self.returncode}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def metaqore(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    top: tuple[str, ...] = (),
) -> Result:
    """``python -m metaqore [top...] args...`` in ``cwd``; never raises on a non-zero exit."""
    command = [sys.executable, "-m", "metaqore", *top, *args]
    completed = subprocess.run(
        command,
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        check=False,
    )
    return Result([*top, *args], completed.returncode, completed.stdout, completed.stderr, cwd)


def check(*args: str, cwd: Path, config: str | None = EXAMPLES_CONFIG, **kwargs: Any) -> Result:
    """``metaqore check`` with the examples' config and a JSON report in report.json."""
    options = ["--json", "report.json"]
    if config is not None:
        options += ["--config", config]
    return metaqore("check", *options, *args, cwd=cwd, **kwargs)


def copy_examples(target: Path) -> Path:
    """A copy of ``examples/`` under ``target`` (the tests' working directory)."""
    shutil.copytree(EXAMPLES, target / "examples")
    return target


def copy_fixture(name: str, target: Path) -> Path:
    shutil.copytree(FIXTURES / name, target / name)
    return target / name


def audit_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def last_run(path: Path) -> list[dict[str, Any]]:
    """The records of the last run in an audit file (from its run_started on)."""
    records = audit_records(path)
    starts = [i for i, record in enumerate(records) if record["event_type"] == "run_started"]
    return records[starts[-1] :] if starts else []


def findings_by(report: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """``(project, rule, artifact) -> finding`` of a JSON report."""
    return {(f["project_id"], f["rule"], f["artifact_id"]): f for f in report["findings"]}
