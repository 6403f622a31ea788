"""``metaqore version``."""

from __future__ import annotations

import argparse
import platform
from typing import Any


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="print the version")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from metaqore import __version__

    print(f"metaqore {__version__} (Python {platform.python_version()})")
    return 0
