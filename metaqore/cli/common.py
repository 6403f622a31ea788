"""Options and helpers shared by several subcommands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from metaqore.config import GovernanceMode, MetaQoreConfig, load_config
from metaqore.core.models import ConflictSeverity


def add_debug(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks of internal errors",
    )


def add_config_options(parser: argparse.ArgumentParser, *, gate: bool = True) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="config file (default: metaqore.yaml, or [tool.metaqore] in pyproject.toml)",
    )
    if not gate:
        return
    parser.add_argument(
        "--mode",
        choices=[mode.value for mode in GovernanceMode],
        help="what blocks: strict (everything), adaptive (all but mechanical fixes), "
        "playground (nothing)",
    )
    parser.add_argument(
        "--policy",
        metavar="POLICY",
        help="routing policy: default_local_first, enterprise_residency, "
        "compliance_local_only (or an alias)",
    )
    parser.add_argument(
        "--fail-on",
        choices=[severity.value for severity in ConflictSeverity],
        help="lowest severity that blocks (default: low)",
    )


def config_from_args(args: argparse.Namespace, **extra: Any) -> MetaQoreConfig:
    overrides: dict[str, Any] = {
        "governance_mode": getattr(args, "mode", None),
        "secure_gateway_policy": getattr(args, "policy", None),
        "fail_on": getattr(args, "fail_on", None),
        **extra,
    }
    return load_config(getattr(args, "config", None), cwd=Path.cwd(), overrides=overrides)


__all__ = ["add_config_options", "add_debug", "config_from_args"]
