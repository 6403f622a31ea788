"""``metaqore schema``: the manifest JSON Schema (draft 2020-12) for editors and CI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(
        name,
        help="print the manifest JSON Schema",
        description="Print the JSON Schema (draft 2020-12) of artifact manifests, generated "
        "from the models the gate validates with.",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from metaqore.manifest.schema import json_schema_text

    text = json_schema_text()
    if args.output:
        from metaqore.report import write_report

        write_report(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return 0
