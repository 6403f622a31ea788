"""The benchmark runner: every workload of issues 5 and 7 as whole processes, one command.

Each measured run is a fresh process started with :func:`subprocess.Popen` and reaped
with :func:`os.wait4`, so its wall time runs from process start to exit, its CPU time
includes the worker it may fork to read a large manifest, and its peak RSS is the highest
``ru_maxrss`` of the process and that worker (not the figure of all this runner's
children). Every gate
run's JSON report is checked against the generator's ``expected.json``: the findings must
be exactly the expected ones, and a clean run must pass with none. Results go to
``benchmarks/results/latest.md`` (a table) and ``benchmarks/results/latest.json``.

    python -m benchmarks                # everything (1,000,000-artifact runs included)
    python -m benchmarks --quick        # 100,000-artifact workloads and start-up only
    python -m benchmarks --only check-100k --runs 5
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import generate as generator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "data"
RESULTS = HERE / "results"
SEED = 20261124
FAULTS = 5
POSTGRES_ENV = "METAQORE_BENCH_POSTGRES_DSN"
MB = 1_000_000
_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@/\s]+@")

FindingKey = tuple[str, str, str, str]


# -- measuring -------------------------------------------------------------------------------
@dataclass
class Measurement:
    """One process run: how long, how much memory, how it ended, and whether it was right."""

    wall_s: float
    max_rss_mb: float
    user_s: float
    sys_s: float
    exit_code: int
    problems: list[str] = field(default_factory=list)
    label: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "wall_s": round(self.wall_s, 4),
            "max_rss_mb": round(self.max_rss_mb, 1),
            "user_s": round(self.user_s, 3),
            "sys_s": round(self.sys_s, 3),
            "exit_code": self.exit_code,
            "ok": self.ok,
            "problems": self.problems,
        }


def measure(command: Sequence[str], *, cwd: Path, log: Path | None = None) -> Measurement:
    """Run ``command`` as a child process; its own wall time, peak RSS and CPU time."""
    env = {key: value for key, value in os.environ.items() if key != "GITHUB_ACTIONS"}
    env["NO_COLOR"] = "1"
    sink = log.open("wb") if log is not None else open(os.devnull, "wb")  # noqa: SIM115
    with sink:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(command), cwd=cwd, stdout=sink, stderr=subprocess.STDOUT, env=env
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux.
    return Measurement(
        wall_s=wall,
        max_rss_mb=usage.ru_maxrss * 1024 / MB,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        exit_code=process.returncode,
    )


def _log_tail(log: Path, lines: int = 3) -> str:
    try:
        text = log.read_text("utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


# -- data ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dataset:
    """A generated run on disk and the findings it must produce."""

    directory: Path
    manifests: list[Path]
    expected: dict[str, Any]

    @property
    def expected_findings(self) -> Counter[FindingKey]:
        return Counter(
            (f["rule"], f["kind"], f["project_id"], f["artifact_id"])
            for f in self.expected["findings"]
        )


def dataset(artifacts: int, *, faults: int = 0, seed: int = SEED, projects: int = 1) -> Dataset:
    """The generated run for these parameters, reused when generated before.

    ``stamp.json`` holds a hash of the parameters and of the generator's source, written
    last: a half-written or outdated directory is generated again.
    """
    parameters = {
        "artifacts": artifacts,
        "faults": faults,
        "seed": seed,
        "projects": projects,
        "generator": generator.GENERATOR_VERSION,
        "source": hashlib.sha256(Path(generator.__file__).read_bytes()).hexdigest(),
    }
    digest = hashlib.sha256(json.dumps(parameters, sort_keys=True).encode()).hexdigest()
    directory = DATA / f"run-{artifacts}-f{faults}-p{projects}-s{seed}"
    stamp = directory / "stamp.json"
    expected_path = directory / "expected.json"
    if stamp.is_file() and expected_path.is_file():
        with contextlib.suppress(ValueError, OSError):
            if json.loads(stamp.read_text("utf-8")).get("hash") == digest:
                expected = json.loads(expected_path.read_text("utf-8"))
                manifests = [directory / name for name in expected["manifests"]]
                if all(path.is_file() for path in manifests):
                    return Dataset(directory, manifests, expected)
    if directory.exists():
        shutil.rmtree(directory)
    _say(f"generating {artifacts:,} artifacts (faults {faults}, seed {seed}) in {directory}")
    started = time.perf_counter()
    run = generator.generate(
        directory, artifacts=artifacts, seed=seed, faults=faults, projects=projects
    )
    stamp.write_text(json.dumps({"hash": digest, **parameters}, indent=2) + "\n", "utf-8")
    _say(f"  generated in {time.perf_counter() - started:.1f} s")
    expected = json.loads(run.expected_path.read_text("utf-8"))
    return Dataset(directory, run.manifests, expected)


# -- checking verdicts -----------------------------------------------------------------------
def check_report(report_path: Path, data: Dataset, exit_code: int) -> list[str]:
    """What is wrong with a gate run's JSON report, measured against ``expected.json``."""
    try:
        report = json.loads(report_path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        return [f"no readable JSON report ({error})"]
    problems = []
    expected = data.expected
    want_exit = 0 if expected["verdict"] == "pass" else 1
    if exit_code != want_exit:
        problems.append(f"exit code {exit_code}, expected {want_exit}")
    if report.get("verdict") != expected["verdict"]:
        problems.append(f"verdict {report.get('verdict')!r}, expected {expected['verdict']!r}")
    artifacts = report.get("summary", {}).get("artifacts")
    if artifacts != expected["artifacts"]:
        problems.append(f"{artifacts} artifacts judged, expected {expected['artifacts']}")
    found = Counter(
        (f["rule"], f["kind"], f["project_id"], f["artifact_id"]) for f in report["findings"]
    )
    wanted = data.expected_findings
    missed = wanted - found
    extra = found - wanted
    if missed:
        problems.append(f"{sum(missed.values())} expected finding(s) missing: {_few(missed)}")
    if extra:
        problems.append(f"{sum(extra.values())} unexpected finding(s): {_few(extra)}")
    return problems


def _few(keys: Counter[FindingKey], limit: int = 3) -> str:
    shown = [f"{rule} on {project}/{artifact}" for rule, _, project, artifact in keys]
    return ", ".join(shown[:limit]) + (" …" if len(shown) > limit else "")


# -- results ---------------------------------------------------------------------------------
@dataclass
class Result:
    """One row of the table."""

    name: str
    title: str
    target: str = "—"
    runs: list[Measurement] = field(default_factory=list)
    value: str | None = None  # shown instead of the median wall time (ratios)
    ok: bool | None = None  # None: skipped
    note: str = ""
    command: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median_wall(self) -> float | None:
        return statistics.median(run.wall_s for run in self.runs) if self.runs else None

    @property
    def median_cpu(self) -> float | None:
        """Median user + system CPU time: less sensitive than wall time to other load."""
        if not self.runs:
            return None
        return statistics.median(run.user_s + run.sys_s for run in self.runs)

    @property
    def peak_rss(self) -> float | None:
        return max(run.max_rss_mb for run in self.runs) if self.runs else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "target": self.target,
            "median_wall_s": _round(self.median_wall, 4),
            "median_cpu_s": _round(self.median_cpu, 4),
            "peak_rss_mb": _round(self.peak_rss, 1),
            "value": self.value,
            "ok": self.ok,
            "note": self.note,
            "command": self.command,
            **self.extra,
            "runs": [run.as_dict() for run in self.runs],
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def judge(
    result: Result,
    *,
    wall: float | None = None,
    rss_mb: float | None = None,
    machine_factor: float | None = None,
) -> Result:
    """Set ``ok`` from the runs' correctness and the targets; explain any miss in ``note``.

    A missed wall-time target also says what it is on this machine, when the machine was
    measured against issue 5's reference (``machine_factor``, see ``workload_machine``).
    """
    notes = [result.note] if result.note else []
    machine_factor = result.extra.get("machine_factor", machine_factor)
    failed = [run for run in result.runs if not run.ok]
    if failed:
        notes.append(f"{len(failed)}/{len(result.runs)} run(s) wrong: {failed[0].problems[0]}")
    median = result.median_wall
    peak = result.peak_rss
    misses = []
    if wall is not None and median is not None and median > wall:
        miss = f"wall {median:.2f} s > {wall:g} s (x{median / wall:.2f})"
        if machine_factor is not None:
            scaled = wall * machine_factor
            mark = "✓" if median <= scaled else "✗"
            miss += (
                f"; this machine is x{machine_factor:.2f} the reference's time, so "
                f"≤ {scaled:.1f} s here: {mark}"
            )
            result.extra["scaled_target_s"] = round(scaled, 2)
        misses.append(miss)
    if rss_mb is not None and peak is not None and peak > rss_mb:
        misses.append(f"RSS {peak:.0f} MB > {rss_mb:g} MB")
    notes.extend(misses)
    result.ok = not failed and not misses and bool(result.runs)
    result.note = "; ".join(notes)
    return result


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- workloads -------------------------------------------------------------------------------
@dataclass
class Context:
    """What every workload needs: options, where to work, the tools to run."""

    runs: int
    startup_runs: int
    keep_data: bool
    results: dict[str, Result] = field(default_factory=dict)
    # This machine's time for issue 5's reference task / the reference machine's time.
    machine_factor: float | None = None
    # The 100,000-line manifest the machine row parses, once it has run.
    calibration_file: Path | None = None

    def factor_now(self, samples: int = 3) -> float | None:
        """The machine factor measured again now (None if the machine row did not run).

        A shared machine's speed drifts by x1.5 or more within minutes here, so a timed
        workload is scaled by the factor measured around it, not the one at the start.
        """
        if self.calibration_file is None:
            return None
        parse = statistics.median(_parse_1m(self.calibration_file) for _ in range(samples))
        return parse / REFERENCE_PARSE_S

    @contextlib.contextmanager
    def calibrated(self, result: Result) -> Iterator[None]:
        """Measure the machine factor before and after the block; keep their mean."""
        before = self.factor_now()
        yield
        after = self.factor_now()
        if before is not None and after is not None:
            result.extra["machine_factor_around"] = [round(before, 3), round(after, 3)]
            result.extra["machine_factor"] = round((before + after) / 2, 3)

    @property
    def metaqore(self) -> list[str]:
        script = Path(sys.executable).with_name("metaqore")
        if script.is_file():
            return [str(script)]
        return [sys.executable, "-m", "metaqore"]

    @contextlib.contextmanager
    def workdir(self, name: str) -> Iterator[Path]:
        """A fresh, empty directory for one run's outputs (no config file in it)."""
        path = DATA / "work" / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        try:
            yield path
        finally:
            if not self.keep_data:
                shutil.rmtree(path, ignore_errors=True)


def gate_command(
    context: Context, data: Dataset, work: Path, *, db: str | None = None
) -> list[str]:
    command = [
        *context.metaqore,
        "check",
        *(str(path) for path in data.manifests),
        "--json",
        str(work / "report.json"),
        "--sarif",
        str(work / "report.sarif"),
        "--audit-log",
        str(work / "audit.jsonl"),
        "--no-github",
        "--no-color",
    ]
    if db is not None:
        command += ["--db", db]
    return command


def _clear(work: Path) -> None:
    """Remove the previous run's reports and audit file (each run starts a fresh chain)."""
    for name in ("report.json", "report.sarif", "audit.jsonl", "audit.jsonl.head"):
        (work / name).unlink(missing_ok=True)


def gate_run(
    context: Context, data: Dataset, work: Path, label: str, *, db: str | None = None
) -> Measurement:
    """One measured ``metaqore check`` with every report, its verdict checked."""
    _clear(work)
    log = work / f"{label}.log"
    run = measure(gate_command(context, data, work, db=db), cwd=work, log=log)
    run.label = label
    run.problems = check_report(work / "report.json", data, run.exit_code)
    if run.exit_code not in (0, 1):
        run.problems.insert(0, f"exit {run.exit_code}: {_log_tail(log)}")
    elif not (work / "audit.jsonl").is_file() or not (work / "report.sarif").is_file():
        run.problems.append("audit file or SARIF report not written")
    status = "ok" if run.ok else "WRONG: " + "; ".join(run.problems)
    _say(f"  {label}: {run.wall_s:.2f} s, {run.max_rss_mb:.0f} MB, exit {run.exit_code}, {status}")
    return run


def check_workload(
    context: Context,
    name: str,
    title: str,
    artifacts: int,
    *,
    faults: int = 0,
    wall: float | None = None,
    rss_mb: float | None = None,
) -> Result:
    data = dataset(artifacts, faults=faults)
    target = _target(wall, rss_mb)
    if faults:
        target = "every injected fault, nothing else"
    result = Result(name, title, target=target)
    _say(f"{name}: {title}")
    with context.workdir(name) as work:
        result.command = _shown_command(gate_command(context, data, work))
        with context.calibrated(result):
            for number in range(context.runs):
                result.runs.append(gate_run(context, data, work, f"run-{number + 1}"))
    result.extra["expected_findings"] = len(data.expected["findings"])
    result.extra["artifacts"] = data.expected["artifacts"]
    return judge(result, wall=wall, rss_mb=rss_mb, machine_factor=context.machine_factor)


def _target(wall: float | None, rss_mb: float | None) -> str:
    parts = []
    if wall is not None:
        parts.append(f"≤ {wall:g} s")
    if rss_mb is not None:
        parts.append(f"≤ {rss_mb / 1000:g} GB" if rss_mb >= 1000 else f"≤ {rss_mb:g} MB")
    return ", ".join(parts) if parts else "—"


def _shown_command(command: list[str]) -> list[str]:
    """The command for the report: repository paths relative, DSN passwords masked."""
    shown = []
    for part in command:
        with contextlib.suppress(ValueError):
            part = str(Path(part).relative_to(ROOT)) if part.startswith("/") else part
        shown.append(_PASSWORD.sub(r"\1***@", part))
    return shown


#: Issue 5's orientation figure: parsing 1,000,000 such JSON Lines with the garbage
#: collector paused "takes about 2.5-3 s" on the machine its targets were set on.
REFERENCE_PARSE_S = 2.75

_PARSE_SCRIPT = """
import gc, json, sys, time
gc.disable()
started = time.perf_counter()
with open(sys.argv[1], "rb") as stream:
    for line in stream:
        json.loads(line)
print(time.perf_counter() - started)
"""


def _parse_1m(manifest: Path) -> float:
    """Seconds to parse ``manifest`` (100,000 artifact lines) scaled to 1,000,000 lines."""
    completed = subprocess.run(
        [sys.executable, "-c", _PARSE_SCRIPT, str(manifest)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(completed.stdout.strip()) * 10


def workload_machine(context: Context) -> list[Result]:
    """How fast this machine is against issue 5's reference: the same parse, timed.

    The targets are wall times on the machine the issue was written on; a slower
    machine stretches every workload alike (pytest start-up, which runs no MetaQore
    code, included). Measured on the 100,000-artifact run, scaled to 1,000,000.
    """
    data = dataset(100_000)
    manifest = data.manifests[0]
    result = Result(
        "machine",
        "machine speed: `json.loads` of 1,000,000 JSON Lines, GC paused (issue 5: 2.5-3 s)",
        target="informative",
    )
    _say(f"machine: {result.title}")
    assert data.expected["artifacts"] == 100_000
    samples = [_parse_1m(manifest) for _ in range(max(9, context.runs))]
    per_million = statistics.median(samples)
    context.calibration_file = manifest
    context.machine_factor = per_million / REFERENCE_PARSE_S
    result.value = f"{per_million:.2f} s (x{context.machine_factor:.2f})"
    result.extra["parse_1m_s"] = round(per_million, 3)
    result.extra["machine_factor"] = round(context.machine_factor, 3)
    result.ok = True
    return [result]


def workload_check_100k(context: Context) -> list[Result]:
    return [
        check_workload(
            context,
            "check-100k",
            "100,000 artifacts, `metaqore check` + JSON, SARIF, audit",
            100_000,
            wall=3,
            rss_mb=400,
        )
    ]


def workload_check_1m(context: Context) -> list[Result]:
    return [
        check_workload(
            context,
            "check-1m",
            "1,000,000 artifacts, `metaqore check` + JSON, SARIF, audit",
            1_000_000,
            wall=25,
            rss_mb=1500,
        )
    ]


def workload_growth(context: Context) -> list[Result]:
    small = context.results.get("check-100k")
    large = context.results.get("check-1m")
    result = Result("growth", "growth: median(1M) / median(100k)", target="≤ 11")
    if small is None or large is None or not small.runs or not large.runs:
        result.note = "needs check-100k and check-1m"
        return [result]
    assert small.median_wall is not None and large.median_wall is not None
    ratio = large.median_wall / small.median_wall
    result.value = f"x{ratio:.2f}"
    result.extra["ratio"] = round(ratio, 3)
    correct = all(run.ok for run in (*small.runs, *large.runs))
    result.ok = ratio <= 11 and correct
    if ratio > 11:
        result.note = f"x{ratio:.2f} > 11"
    elif not correct:
        result.note = "a run it is based on gave a wrong verdict"
    return [result]


def workload_faults_100k(context: Context) -> list[Result]:
    return [
        check_workload(
            context,
            "faults-100k",
            f"100,000 artifacts, {FAULTS} faults of each kind injected",
            100_000,
            faults=FAULTS,
        )
    ]


def workload_faults_1m(context: Context) -> list[Result]:
    return [
        check_workload(
            context,
            "faults-1m",
            f"1,000,000 artifacts, {FAULTS} faults of each kind injected",
            1_000_000,
            faults=FAULTS,
        )
    ]


def workload_example(context: Context) -> list[Result]:
    """The bundled passing example, process start to exit."""
    example = ROOT / "examples" / "passing"
    config = ROOT / "examples" / "metaqore.yaml"
    result = Result("example", "`metaqore check` on the bundled example", target="≤ 0.5 s")
    runs = max(context.runs, 10)
    _say(f"example: {runs} runs")
    with context.workdir("example") as work:
        if example.is_dir():
            paths = [str(example)]
            options = ["--config", str(config)] if config.is_file() else []
            data = None
        else:
            data = dataset(15, seed=SEED)
            paths = [str(path) for path in data.manifests]
            options = []
            result.note = "examples/passing not found: a generated 15-artifact run instead"
        command = [
            *context.metaqore,
            "check",
            *options,
            *paths,
            "--json",
            str(work / "report.json"),
            "--audit-log",
            str(work / "audit.jsonl"),
            "--no-github",
            "--no-color",
        ]
        result.command = _shown_command(command)
        measure(command, cwd=ROOT)  # warm-up: bytecode and page cache
        with context.calibrated(result):
            for number in range(runs):
                _clear(work)
                run = measure(command, cwd=ROOT, log=work / "run.log")
                run.label = f"run-{number + 1}"
                if data is not None:
                    run.problems = check_report(work / "report.json", data, run.exit_code)
                else:
                    run.problems = _passes(work / "report.json", run.exit_code)
                result.runs.append(run)
    _say(f"  median {result.median_wall:.3f} s")
    return [judge(result, wall=0.5, machine_factor=context.machine_factor)]


def _passes(report_path: Path, exit_code: int) -> list[str]:
    try:
        report = json.loads(report_path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        return [f"no readable JSON report ({error})"]
    problems = []
    if exit_code != 0 or report.get("verdict") != "pass":
        problems.append(f"exit {exit_code}, verdict {report.get('verdict')!r}: expected a pass")
    if report.get("findings"):
        problems.append(f"{len(report['findings'])} finding(s), expected none")
    return problems


_TRIVIAL_TEST = '''"""One trivial test: the session's own cost is what is measured."""


def test_nothing() -> None:
    assert True
'''


def workload_pytest_startup(context: Context) -> list[Result]:
    """pytest with the plugin installed (entry point loaded, not enabled) vs ``-p no:metaqore``.

    Each sample is a whole one-test session (``pytest -q test_trivial.py``): start-up,
    collection, the run and the terminal summary, so every hook the plugin implements is
    called. The two variants alternate (ABBA) so that drift in machine load hits both.
    """
    from importlib.metadata import entry_points

    project = DATA / "pytest-startup"
    project.mkdir(parents=True, exist_ok=True)
    (project / "pytest.ini").write_text("[pytest]\n", "utf-8")
    (project / "test_trivial.py").write_text(_TRIVIAL_TEST, "utf-8")
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_trivial.py"]
    variants = {"installed": base, "disabled": [*base, "-p", "no:metaqore"]}
    rows = {
        "installed": Result(
            "pytest-startup-installed",
            "pytest one-test session, plugin installed, not enabled",
            command=_shown_command(variants["installed"]),
        ),
        "disabled": Result(
            "pytest-startup-disabled",
            "pytest one-test session, `-p no:metaqore`",
            command=_shown_command(variants["disabled"]),
        ),
    }
    ratio_row = Result("pytest-startup", "pytest start-up ratio (installed / disabled)")
    ratio_row.target = "≤ 1.02"
    if not any(point.name == "metaqore" for point in entry_points(group="pytest11")):
        ratio_row.note = "the pytest11 entry point 'metaqore' is not installed"
        return [ratio_row]
    runs = context.startup_runs
    _say(f"pytest-startup: {runs} runs of each variant, interleaved")
    for command in variants.values():  # warm-up
        measure(command, cwd=project)
    for number in range(runs):
        order = ("installed", "disabled") if number % 2 == 0 else ("disabled", "installed")
        for name in order:
            run = measure(variants[name], cwd=project)
            run.label = f"run-{number + 1}"
            if run.exit_code != 0:
                run.problems.append(f"pytest exited {run.exit_code}")
            rows[name].runs.append(run)
    installed, disabled = rows["installed"], rows["disabled"]
    for row in (installed, disabled):
        judge(row)
    assert installed.median_wall is not None and disabled.median_wall is not None
    ratio = installed.median_wall / disabled.median_wall
    cpu = statistics.median(r.user_s + r.sys_s for r in installed.runs) / statistics.median(
        r.user_s + r.sys_s for r in disabled.runs
    )
    # Each round's two runs are neighbours in time: their ratio shrugs off slow drift.
    paired = statistics.median(
        a.wall_s / b.wall_s for a, b in zip(installed.runs, disabled.runs, strict=True)
    )
    ratio_row.value = f"x{ratio:.3f}"
    ratio_row.extra = {
        "ratio": round(ratio, 4),
        "paired_ratio": round(paired, 4),
        "cpu_ratio": round(cpu, 4),
        "runs_each": runs,
    }
    ratio_row.ok = ratio <= 1.02 and bool(installed.ok) and bool(disabled.ok)
    ratio_row.note = f"median of paired ratios x{paired:.3f}, CPU-time ratio x{cpu:.3f}"
    if ratio > 1.02:
        ratio_row.note = f"x{ratio:.3f} > 1.02; " + ratio_row.note
    _say(f"  installed {installed.median_wall:.3f} s, disabled {disabled.median_wall:.3f} s")
    return [installed, disabled, ratio_row]


def store_workload(
    context: Context, name: str, title: str, fresh_store: Callable[[Path], Any]
) -> list[Result]:
    """100,000 artifacts into an empty store, then the same manifests again (idempotent).

    ``fresh_store(work)`` is a context manager yielding the DSN of an empty store; every
    measured pair of runs gets a new one.
    """
    data = dataset(100_000)
    first = Result(f"{name}-first", f"{title}: 100,000 artifacts into an empty store")
    second = Result(f"{name}-second", f"{title}: the same manifests again (filled store)")
    _say(f"{name}: {title}")
    with context.workdir(name) as work:
        for number in range(context.runs):
            with fresh_store(work) as dsn:
                first.command = _shown_command(gate_command(context, data, work, db=dsn))
                second.command = first.command
                first.runs.append(gate_run(context, data, work, f"first-{number + 1}", db=dsn))
                again = gate_run(context, data, work, f"second-{number + 1}", db=dsn)
                second.runs.append(again)
                # Proof the first run filled the store: each artifact is now a re-declaration.
                audit = work / "audit.jsonl"
                same = audit.read_bytes().count(b'"idempotent":true') if audit.is_file() else 0
                if same != data.expected["artifacts"]:
                    again.problems.append(
                        f"{same} idempotent re-declarations audited, "
                        f"expected {data.expected['artifacts']}"
                    )
    return [judge(first), judge(second)]


def workload_store_sqlite(context: Context) -> list[Result]:
    @contextlib.contextmanager
    def fresh(work: Path) -> Iterator[str]:
        path = work / "store.db"
        for leftover in work.glob("store.db*"):
            leftover.unlink()
        yield f"sqlite:///{path}"

    return store_workload(context, "store-sqlite", "SQLite store (`--db sqlite:///…`)", fresh)


def workload_store_postgres(context: Context) -> list[Result]:
    """The store workload on PostgreSQL: ``$METAQORE_BENCH_POSTGRES_DSN`` (a new schema per
    measured pair), else a throw-away server of ``metaqore.testing.postgres`` (a new
    database per pair), else skipped with the reason."""
    title = "PostgreSQL store (`--db postgresql+psycopg://…`)"
    dsn = os.environ.get(POSTGRES_ENV)
    if dsn:
        results = store_workload(context, "store-postgres", title, lambda work: _fresh_schema(dsn))
        return _noted(results, f"server of ${POSTGRES_ENV}, a new schema per pair")
    try:
        from metaqore.testing.postgres import PostgresServer, PostgresUnavailable
    except ImportError as error:
        return _skipped(title, f"no ${POSTGRES_ENV}, and no metaqore.testing.postgres ({error})")
    _say("store-postgres: starting a throw-away PostgreSQL server")
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as error:
        return _skipped(title, f"no ${POSTGRES_ENV}, and no server could start: {error}")
    try:
        counter = iter(range(1, 1_000_000))

        @contextlib.contextmanager
        def fresh_database(work: Path) -> Iterator[str]:
            name = f"bench_{next(counter)}"
            server.drop_database(name)
            try:
                yield server.create_database(name)
            finally:
                server.drop_database(name)

        results = store_workload(context, "store-postgres", title, fresh_database)
    finally:
        server.stop()
    return _noted(results, "throw-away server (metaqore.testing.postgres), a new database per pair")


def _skipped(title: str, reason: str) -> list[Result]:
    _say(f"store-postgres: skipped ({reason})")
    rows = [
        Result("store-postgres-first", f"{title}: 100,000 artifacts into an empty store"),
        Result("store-postgres-second", f"{title}: the same manifests again (filled store)"),
    ]
    for row in rows:
        row.note = reason
    return rows


def _noted(results: list[Result], origin: str) -> list[Result]:
    for row in results:
        row.note = "; ".join(part for part in (origin, row.note) if part)
    return results


@contextlib.contextmanager
def _fresh_schema(base_dsn: str) -> Iterator[str]:
    """A DSN whose search_path is a new, empty schema, dropped afterwards."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    schema = f"mq_bench_{secrets.token_hex(6)}"
    url = make_url(base_dsn).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(url)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
        scoped = url.update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


Workload = Callable[[Context], list[Result]]

#: name -> (runs in --quick?, workloads it needs first, the workload), in running order.
WORKLOADS: dict[str, tuple[bool, tuple[str, ...], Workload]] = {
    "machine": (True, (), workload_machine),
    "example": (True, ("machine",), workload_example),
    "pytest-startup": (True, (), workload_pytest_startup),
    "check-100k": (True, ("machine",), workload_check_100k),
    "faults-100k": (True, (), workload_faults_100k),
    "store-sqlite": (True, (), workload_store_sqlite),
    "store-postgres": (True, (), workload_store_postgres),
    "check-1m": (False, ("machine",), workload_check_1m),
    "faults-1m": (False, (), workload_faults_1m),
    "growth": (False, ("check-100k", "check-1m"), workload_growth),
}


def selected(only: Sequence[str], quick: bool) -> list[str]:
    if only:
        wanted: set[str] = set()
        for name in only:
            if name not in WORKLOADS:
                raise SystemExit(f"unknown workload {name!r} (known: {', '.join(WORKLOADS)})")
            wanted.add(name)
            wanted.update(WORKLOADS[name][1])
        return [name for name in WORKLOADS if name in wanted]
    return [name for name, (in_quick, _, _) in WORKLOADS.items() if in_quick or not quick]


# -- the report ------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    ram = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = round(int(line.split()[1]) * 1024 / 2**30, 1)
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model,
        "ram_gib": ram,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _git_revision() -> str | None:
    """HEAD's short hash, marked when the measured code differs from it.

    Changes under ``benchmarks/results/`` (this harness's own output) do not count.
    """
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":(exclude)benchmarks/results",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return None
    return f"{head}{' (with uncommitted changes)' if dirty else ''}" if head else None


def _cell_wall(result: Result) -> str:
    if result.value is not None:
        return result.value
    return _seconds(result.median_wall)


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f} s" if value < 1 else f"{value:.2f} s"


def _cell_rss(result: Result) -> str:
    peak = result.peak_rss
    return "—" if peak is None else f"{peak:.0f} MB"


def _cell_ok(result: Result) -> str:
    if result.ok is None:
        return f"skipped ({result.note})" if result.note else "skipped"
    mark = "✓" if result.ok else "✗"
    return f"{mark} ({result.note})" if result.note else mark


def markdown(results: list[Result], info: dict[str, Any]) -> str:
    host = info["machine"]
    lines = [
        "# MetaQore benchmarks: latest results",
        "",
        f"{info['date']} · metaqore {info['metaqore']} · commit {info['revision']} · "
        f"{host['cpu_count']} x {host['cpu_model']}, {host['ram_gib']} GiB RAM · "
        f"Python {host['python']}",
        "",
        f"Command: `{info['command']}` — wall time is the median of the runs, CPU time the "
        "median user + system time of the measured process and the worker it forks for a "
        "large manifest (other load on the machine stretches wall time, much less CPU "
        "time), peak RSS the highest `ru_maxrss` of the measured process or its worker over "
        "the runs. Targets apply to wall time.",
        "",
        "| workload | runs | median wall | median CPU | peak RSS | target | ok? |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        runs = str(len(result.runs)) if result.runs else "—"
        lines.append(
            f"| `{result.name}` {result.title} | {runs} | {_cell_wall(result)} "
            f"| {_seconds(result.median_cpu)} | {_cell_rss(result)} | {result.target} "
            f"| {_cell_ok(result)} |"
        )
    load = info.get("loadavg")
    if load:
        lines += ["", f"Load average before / after: {load['before']} / {load['after']}."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run MetaQore's benchmark workloads and write benchmarks/results/latest.*",
    )
    parser.add_argument(
        "--quick", action="store_true", help="only 100,000-artifact workloads and start-up"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only this workload (repeatable; comma-separated too): {', '.join(WORKLOADS)}",
    )
    parser.add_argument("--runs", type=int, default=3, help="measured runs per workload")
    parser.add_argument(
        "--startup-runs", type=int, default=40, help="runs of each pytest start-up variant"
    )
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="keep each run's outputs (reports, audit files, stores) under benchmarks/data/work",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="where latest.* go")
    parser.add_argument(
        "--allow-skips",
        action="store_true",
        help="exit 0 even if a workload was skipped (e.g. no PostgreSQL server could start)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.startup_runs < 1:
        parser.error("--runs and --startup-runs must be at least 1")
    only = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
    names = selected(only, args.quick)
    context = Context(runs=args.runs, startup_runs=args.startup_runs, keep_data=args.keep_data)
    before = os.getloadavg()
    started = datetime.now(UTC)
    results: list[Result] = []
    for name in names:
        load = round(os.getloadavg()[0], 2)
        for result in WORKLOADS[name][2](context):
            result.extra["load_1min_at_start"] = load
            context.results[result.name] = result
            results.append(result)
    from metaqore import __version__

    info: dict[str, Any] = {
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": round((datetime.now(UTC) - started).total_seconds(), 1),
        "metaqore": __version__,
        "revision": _git_revision(),
        "command": " ".join(
            ["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])]
        ),
        "machine": machine(),
        "loadavg": {
            "before": [round(x, 2) for x in before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "options": {
            "runs": args.runs,
            "startup_runs": args.startup_runs,
            "quick": args.quick,
            "only": only,
            "seed": SEED,
            "faults_per_kind": FAULTS,
        },
    }
    args.results.mkdir(parents=True, exist_ok=True)
    table = markdown(results, info)
    (args.results / "latest.md").write_text(table, "utf-8")
    document = {**info, "workloads": [result.as_dict() for result in results]}
    (args.results / "latest.json").write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    print(table)
    if any(result.ok is False for result in results):
        return 1
    skipped = [result.name for result in results if result.ok is None]
    if skipped and not args.allow_skips:
        print(f"benchmarks: skipped {', '.join(skipped)} (see the table); --allow-skips to accept")
        return 1
    return 0


__all__ = ["WORKLOADS", "Dataset", "Measurement", "dataset", "main", "measure"]
