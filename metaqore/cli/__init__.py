"""The ``metaqore`` command: one module per subcommand, exit codes mapped in one place."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence
from importlib import import_module

from metaqore.exceptions import EXIT_INTERNAL, EXIT_USAGE, MetaQoreError

#: Subcommand name -> module under metaqore.cli (each has add_parser() and run()).
COMMANDS = {
    "check": "check",
    "audit": "audit",
    "schema": "schema",
    "init": "init",
    "keygen": "keygen",
    "sign": "sign",
    "checkpoint": "checkpoint",
    "serve": "serve",
    "version": "version",
}

ISSUES_URL = "https://github.com/metaqore/metaqore/issues"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="metaqore",
        description="Governance gate for multi-agent AI work: replays artifact manifests "
        "through PSMP and SecureGateway and fails the build on blocking findings.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in COMMANDS.items():
        import_module(f"metaqore.cli.{module}").add_parser(commands, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``metaqore`` with ``argv``; returns the exit code (SPEC §8 table)."""
    return _run(build_parser().parse_args(argv))


def entry() -> None:
    """The ``metaqore`` console script: :func:`main`, then exit without a heap teardown.

    A run over a million artifacts leaves millions of objects behind, and freeing them
    one by one takes seconds (about 3 s per million here) while changing nothing anyone
    sees: reports, the audit file and the store are written and closed before the command
    returns. So the command's result stays referenced (``args.made``), the output streams
    are flushed, and the process ends with ``os._exit``.
    """
    args = build_parser().parse_args()
    code = _run(args)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said
        code = code or EXIT_INTERNAL
    os._exit(code)


def _run(args: argparse.Namespace) -> int:
    if args.command is None:
        build_parser().print_help(sys.stderr)
        return EXIT_USAGE
    debug = bool(getattr(args, "debug", False))
    try:
        return int(args.handler(args))
    except MetaQoreError as error:
        if debug:
            traceback.print_exc()
        print(str(error), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("metaqore: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_INTERNAL
    except Exception as error:  # a bug: say so, and how to report it
        if debug:
            traceback.print_exc()
        hint = "with the traceback above" if debug else "(run again with --debug for the traceback)"
        print(
            f"metaqore: internal error: {type(error).__name__}: {error}\n"
            f"This is a bug in MetaQore; please report it at {ISSUES_URL} {hint}.",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


__all__ = ["build_parser", "entry", "main"]
