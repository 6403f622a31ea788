"""``metaqore check``: run the gate on manifests and write every report asked for."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from metaqore.cli.common import add_config_options, add_debug, config_from_args
from metaqore.exceptions import ConfigurationError, MetaQoreError


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(
        name,
        help="judge artifact manifests (the gate)",
        description="Replay artifact manifests through PSMP and SecureGateway, write the "
        "reports, append the run to the audit chain, and exit 1 when anything blocks.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="manifest files, directories or globs (default: the config's manifest globs, "
        "**/*.metaqore.{yaml,yml,json,jsonl})",
    )
    add_config_options(parser)
    parser.add_argument("--db", metavar="DSN", help="persistent store, e.g. sqlite:///state.db")
    parser.add_argument(
        "--audit-log",
        metavar="PATH",
        help="audit file to append to (default: metaqore-audit.jsonl)",
    )
    parser.add_argument(
        "--no-audit",
        dest="audit",
        action="store_false",
        help="write no audit record (local runs, e.g. the pre-commit hook; CI should audit)",
    )
    parser.add_argument("--json", metavar="PATH", help="write the JSON report here")
    parser.add_argument("--junit-xml", metavar="PATH", help="write a JUnit XML report here")
    parser.add_argument("--sarif", metavar="PATH", help="write a SARIF 2.1.0 report here")
    parser.add_argument("--markdown", metavar="PATH", help="write a Markdown summary here")
    github = parser.add_mutually_exclusive_group()
    github.add_argument(
        "--github",
        dest="github",
        action="store_true",
        default=None,
        help="GitHub annotations, step summary and outputs (default: on when GITHUB_ACTIONS=true)",
    )
    github.add_argument("--no-github", dest="github", action="store_false")
    parser.add_argument(
        "--baseline", metavar="FILE", help="report only findings not recorded in FILE"
    )
    parser.add_argument(
        "--write-baseline", metavar="FILE", help="record the current findings in FILE"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print only blocking findings and the summary"
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=_jobs,
        default=None,
        metavar="N",
        help="processes reading each JSON Lines manifest, a part each (default, or 0: two "
        "for files of 16 MB or more when there are two CPUs; 1: this process only)",
    )
    color = parser.add_mutually_exclusive_group()
    color.add_argument("--no-color", dest="color", action="store_false", default=None)
    color.add_argument("--color", dest="color", action="store_true", help="force colour")
    add_debug(parser)
    parser.set_defaults(handler=run)


def _jobs(text: str) -> int | None:
    try:
        jobs = int(text)
    except ValueError:
        jobs = -1
    if not 0 <= jobs <= 64:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of processes from 0 to 64")
    return jobs or None


#: (argument, formatter, what the report is called in messages)
_REPORTS = (
    ("json", "json", "JSON report"),
    ("junit_xml", "junit", "JUnit XML report"),
    ("sarif", "sarif", "SARIF report"),
    ("markdown", "markdown", "Markdown summary"),
    ("write_baseline", "baseline", "baseline"),
)


def run(args: argparse.Namespace) -> int:
    from metaqore.cli.progress import TerminalProgress
    from metaqore.gate import GateOptions, run_gate
    from metaqore.gate.baseline import baseline_text
    from metaqore.report import ReportContext, get_formatter

    root = Path.cwd()
    config = config_from_args(args)
    github = args.github if args.github is not None else os.environ.get("GITHUB_ACTIONS") == "true"
    reports = [
        (Path(target), formatter, label)
        for option, formatter, label in _REPORTS
        if (target := getattr(args, option))
    ]
    progress = TerminalProgress()
    options = GateOptions(
        config=config,
        paths=args.paths,
        root=root,
        audit=args.audit,
        audit_log=args.audit_log,
        db=args.db,
        baseline=Path(args.baseline) if args.baseline else None,
        progress=None if args.quiet else progress,
        jobs=args.jobs,
    )
    try:
        verdict = run_gate(options)
    except BaseException as error:
        progress.clear()
        # A run that could not judge leaves no report behind: an earlier run's
        # "pass" under the same name must not be read as this run's verdict.
        _withdraw(path for path, formatter, _ in reports if formatter != "baseline")
        if github and isinstance(error, MetaQoreError):
            _publish_failure(error)
        raise
    progress.clear()
    args.made = verdict  # freed by the process exit, not one object at a time (cli.entry)

    color = args.color if args.color is not None else _wants_color()
    context = ReportContext(
        root=root, color=color, quiet=args.quiet, tool_version=verdict.tool_version
    )
    if github:
        from metaqore.report.github import publish_github

        sys.stdout.write(get_formatter("github").render(verdict, context))
        publish_github(
            verdict,
            context=context,
            environ=os.environ,
            markdown=get_formatter("markdown").render(verdict, context),
            report_path=args.json,
        )
    sys.stdout.write(get_formatter("terminal").render(verdict, context))
    sys.stdout.flush()
    for path, formatter, label in reports:
        text = (
            baseline_text(verdict)
            if formatter == "baseline"
            else get_formatter(formatter).render(verdict, context)
        )
        _write(path, text, label)
    return int(verdict.exit_code)


def _write(path: Path, text: str, label: str) -> None:
    from metaqore.report import write_report

    try:
        write_report(path, text)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot write the {label} to {path}: {exc.strerror or type(exc).__name__}"
        ) from None


def _withdraw(paths: Iterable[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def _publish_failure(error: MetaQoreError) -> None:
    from metaqore.report.github import failure_annotations, publish_github_failure

    sys.stdout.write(failure_annotations(error))
    sys.stdout.flush()
    with contextlib.suppress(OSError):
        publish_github_failure(error, environ=os.environ)


def _wants_color() -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return sys.stdout.isatty() and os.environ.get("TERM") != "dumb"
