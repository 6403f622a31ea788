"""Running the real gate for the reliability suites: in-process, in a subprocess, measured.

In-process runs (``metaqore.cli.main``) are fast enough for thousands of hypothesis
examples; subprocess runs are what CI really executes, with a wall-clock timeout and an
address-space limit so that a hang or a memory blow-up fails the test instead of the job.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"

#: Seconds any one in-process gate run may take before it counts as a hang.
IN_PROCESS_LIMIT = 20.0
#: Seconds (wall clock) and bytes of address space for one subprocess gate run.
SUBPROCESS_LIMIT = 60.0
MEMORY_LIMIT = 2 * 1024**3

TRACEBACK = "Traceback (most recent call last)"
#: A problem line of an exit-2 run: ``path:line:column: what is wrong``.
LOCATED = re.compile(r"^(?P<path>[^\n:]+):(?P<line>\d+):(?P<column>\d+): \S")

_SCRUBBED_PREFIXES = ("METAQORE_", "GITHUB_")
_SCRUBBED = {"NO_COLOR", "FORCE_COLOR", "PYTHONSTARTUP", "PYTHONBREAKPOINT"}
# In-process runs change the working directory and the environment of the worker.
_PROCESS_STATE = threading.Lock()


class TookTooLong(Exception):
    """An in-process gate run overran :data:`IN_PROCESS_LIMIT` (a hang)."""


@dataclass
class Run:
    """One finished ``metaqore`` command."""

    args: list[str]
    code: int
    stdout: str
    stderr: str
    seconds: float

    def __str__(self) -> str:
        return (
            f"metaqore {' '.join(self.args)} -> exit {self.code} in {self.seconds:.2f} s\n"
            f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}"
        )


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without CI, colour and METAQORE_ settings, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(_SCRUBBED_PREFIXES) and key not in _SCRUBBED
    }
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra)
    return env


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise TookTooLong(f"gave up after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _process_state(cwd: Path, env: dict[str, str]) -> Iterator[None]:
    """Run in ``cwd`` with ``env`` replacing every METAQORE_/GITHUB_ variable."""
    with _PROCESS_STATE:
        saved_env = dict(os.environ)
        saved_cwd = os.getcwd()
        for key in list(os.environ):
            if key.startswith(_SCRUBBED_PREFIXES) or key in _SCRUBBED:
                del os.environ[key]
        os.environ.update(env)
        os.chdir(cwd)
        try:
            yield
        finally:
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_env)


def run_in_process(
    args: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    limit: float = IN_PROCESS_LIMIT,
) -> Run:
    """``metaqore.cli.main(args)`` in ``cwd``, output captured, bounded in time.

    An exception escaping ``main`` is reported as exit 99 with its traceback on stderr
    (the CLI must never let one out).
    """
    from metaqore.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    started = time.perf_counter()
    with (
        _process_state(cwd, env or {}),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        try:
            with _alarm(limit):
                code = main(list(args))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        except TookTooLong:
            raise
        except BaseException:  # a traceback a user would have seen
            import traceback

            stderr.write(traceback.format_exc())
            code = 99
    return Run(
        list(args), code, stdout.getvalue(), stderr.getvalue(), time.perf_counter() - started
    )


def _limit_memory(limit: int) -> Any:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def run_subprocess(
    args: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = SUBPROCESS_LIMIT,
    memory: int | None = MEMORY_LIMIT,
) -> Run:
    """``python -m metaqore args`` in ``cwd``; a timeout fails the calling test."""
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "metaqore", *args],
        cwd=cwd,
        env=clean_env(**(env or {})),
        capture_output=True,
        timeout=timeout,
        check=False,
        preexec_fn=_limit_memory(memory) if memory else None,
    )
    return Run(
        list(args),
        completed.returncode,
        completed.stdout.decode("utf-8", "replace"),
        completed.stderr.decode("utf-8", "replace"),
        time.perf_counter() - started,
    )


def assert_gate_contract(run: Run, *, paths: Sequence[str] = ()) -> None:
    """What every gate run must hold whatever its input (SPEC §5, §8).

    Exit 0, 1 or 2 only; never a traceback; exit 2 always explained by ``path:line:column``
    lines naming one of ``paths`` (when given).
    """
    assert run.code in (0, 1, 2), str(run)
    assert TRACEBACK not in run.stderr and TRACEBACK not in run.stdout, str(run)
    if run.code != 2:
        return
    problems = [line for line in run.stderr.splitlines() if line.strip()]
    assert problems, f"exit 2 without a message\n{run}"
    located = [line for line in problems if LOCATED.match(line)]
    assert located, f"exit 2 without a path:line:column message\n{run}"
    if paths:
        named = {LOCATED.match(line)["path"] for line in located}  # type: ignore[index]
        assert named <= set(paths), f"problems name {named}, not the manifests {paths}\n{run}"
    for line in problems:
        assert LOCATED.match(line) or line.startswith("... and "), f"unlocated: {line!r}\n{run}"


def record_figures(suite: str, **figures: Any) -> None:
    """Append this run's figures to ``$METAQORE_RELIABILITY_STATS`` (for RELIABILITY.md)."""
    target = os.environ.get("METAQORE_RELIABILITY_STATS")
    if not target:
        return
    line = json.dumps({"suite": suite, **figures}, sort_keys=True) + "\n"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def audit_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
