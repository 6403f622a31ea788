"""``metaqore audit verify|report``: check the audit chain, summarise it for compliance."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from metaqore.exceptions import EXIT_BLOCKED, EXIT_PASS, ConfigurationError


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="verify or report on an audit file")
    actions = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    verify = actions.add_parser(
        "verify",
        help="check the hash chain (exit 1 naming the first bad line)",
        description="Exit 0 when the chain is intact, 1 naming the first line that was "
        "edited, removed, inserted or reordered, 2 when the file cannot be read.",
    )
    verify.add_argument("file", metavar="FILE")
    verify.add_argument(
        "--expect-head",
        metavar="HASH",
        help="the hash the last line must have (e.g. audit.head_hash of a JSON report)",
    )
    verify.set_defaults(handler=run_verify)

    report = actions.add_parser(
        "report",
        help="print the compliance report",
        description="Events by type, by provider, and policy violations, for one organization.",
    )
    source = report.add_mutually_exclusive_group()
    source.add_argument("file", metavar="FILE", nargs="?", help="audit file")
    source.add_argument(
        "--log-dir",
        metavar="DIR",
        help="read <DIR>/compliance_audit_<organization>.jsonl",
    )
    report.add_argument("--organization", metavar="ORG", help="organization (default: config)")
    report.add_argument("--config", metavar="FILE", help=argparse.SUPPRESS)
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.set_defaults(handler=run_report)


def run_verify(args: argparse.Namespace) -> int:
    from metaqore.core.audit import verify_audit_log

    path = Path(args.file)
    if not path.is_file():
        raise ConfigurationError(f"{path}: no such audit file")
    result = verify_audit_log(path, expect_head=args.expect_head)
    if result.ok:
        print(f"{path}: OK, {result.records} records, head {result.head_hash}")
        return EXIT_PASS
    print(f"{path}:{result.first_bad_line or 1}: {result.message}")
    return EXIT_BLOCKED


def run_report(args: argparse.Namespace) -> int:
    from metaqore.config import load_config
    from metaqore.core.audit import format_compliance_report, generate_compliance_report

    config = load_config(args.config, cwd=Path.cwd())
    organization = args.organization or config.organization
    if args.log_dir:
        target: dict[str, Any] = {"log_dir": args.log_dir}
    else:
        target = {"path": Path(args.file or config.audit_log)}
    try:
        report = generate_compliance_report(organization, **target)
    except FileNotFoundError as exc:
        raise ConfigurationError(f"{exc.filename}: no audit log here") from None
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(format_compliance_report(report))
    return EXIT_PASS
