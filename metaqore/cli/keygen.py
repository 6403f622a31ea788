"""``metaqore keygen``: an Ed25519 key pair for signing artifact provenance."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(
        name,
        help="generate an Ed25519 signing key pair",
        description="Write <KEY_ID>.key (private, mode 0600) and <KEY_ID>.pub into DIR and "
        "print the trusted_keys entry for metaqore.yaml. The private key is never printed.",
    )
    parser.add_argument("key_id", metavar="KEY_ID", help="key id, e.g. planner-2026")
    parser.add_argument(
        "--out", metavar="DIR", default=".metaqore/keys", help="directory (default: .metaqore/keys)"
    )
    parser.add_argument(
        "--actor",
        action="append",
        default=[],
        metavar="AGENT",
        help="the agent this key signs for (repeatable): the printed entry binds the key to "
        "it, so the key cannot sign in another agent's name",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from metaqore.core.signing import write_keypair

    private_path, public_path = write_keypair(Path(args.out), args.key_id)
    public = public_path.read_text(encoding="utf-8").strip()
    print(f"private key: {private_path} (keep it secret; never commit it)")
    print(f"public key:  {public_path}")
    print("add to metaqore.yaml:")
    print("trusted_keys:")
    if args.actor:
        actors = ", ".join(json.dumps(actor) for actor in args.actor)
        print(f'  {args.key_id}: {{key: "{public}", actors: [{actors}]}}')
    else:
        print(f'  {args.key_id}: "{public}"')
        print("(any actor may sign with it; --actor AGENT binds it to one)")
    return 0
