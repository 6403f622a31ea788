"""``metaqore checkpoint list|create|restore``: project snapshots in a persistent store."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from metaqore.cli.common import add_debug
from metaqore.exceptions import ConfigurationError
from metaqore.text import one_line


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(name, help="list, create or restore project checkpoints")
    actions = parser.add_subparsers(dest="checkpoint_command", metavar="ACTION", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--db", metavar="DSN", help="the store (default: the config's storage_dsn)"
        )
        sub.add_argument("--config", metavar="FILE", help="config file")
        add_debug(sub)

    listing = actions.add_parser("list", help="checkpoints, oldest first")
    common(listing)
    listing.add_argument("--project", metavar="ID", help="only this project")
    listing.set_defaults(handler=run_list)

    create = actions.add_parser("create", help="snapshot a project now")
    common(create)
    create.add_argument("--project", metavar="ID", required=True)
    create.add_argument("--label", metavar="LABEL", default="manual")
    create.set_defaults(handler=run_create)

    restore = actions.add_parser(
        "restore", help="restore a project (after an automatic backup checkpoint)"
    )
    common(restore)
    restore.add_argument("checkpoint_id", metavar="CHECKPOINT_ID")
    restore.set_defaults(handler=run_restore)


@contextmanager
def _state(args: argparse.Namespace) -> Iterator[Any]:
    from pathlib import Path

    from metaqore.config import load_config
    from metaqore.core.state_manager import StateManager
    from metaqore.storage.backends.sqlite import SQLiteBackend

    config = load_config(args.config, cwd=Path.cwd())
    dsn = args.db or config.storage_dsn
    if dsn in ("sqlite://", "sqlite:///:memory:"):
        raise ConfigurationError(
            "checkpoints need a persistent store: pass --db sqlite:///path.db "
            "(or postgresql+psycopg://...) or set storage_dsn"
        )
    backend = SQLiteBackend(
        dsn, timeout=config.store_timeout, compress_checkpoints=config.checkpoint_compression
    )
    try:
        yield StateManager(
            backend,
            checkpoint_retention=config.checkpoint_retention,
            compress_checkpoints=config.checkpoint_compression,
        )
    finally:
        backend.close()


def _count(value: int | None) -> str:
    return "?" if value is None else str(value)


def _describe(info: Any) -> str:
    return one_line(
        f"{info.id}  {info.created_at.isoformat(timespec='seconds')}  "
        f"{info.project_id}  {info.label}  "
        f"({_count(info.artifacts)} artifacts, {_count(info.tasks)} tasks)"
    )


def run_list(args: argparse.Namespace) -> int:
    with _state(args) as state:
        projects = [args.project] if args.project else [p.id for p in state.list_projects()]
        found = 0
        for project_id in projects:
            # Summaries only: listing never decompresses a snapshot.
            for info in state.list_checkpoint_info(project_id):
                print(_describe(info))
                found += 1
        if not found:
            print("no checkpoints")
    return 0


def run_create(args: argparse.Namespace) -> int:
    from metaqore.exceptions import NotFoundError

    with _state(args) as state:
        try:
            info = state.create_checkpoint_info(args.project, args.label)
        except NotFoundError:
            raise ConfigurationError(f"project '{args.project}' is not in the store") from None
        print("created " + _describe(info))
    return 0


def run_restore(args: argparse.Namespace) -> int:
    with _state(args) as state:
        info = state.restore_checkpoint_info(args.checkpoint_id)
        print(
            f"restored project {one_line(info.project_id)} from {one_line(args.checkpoint_id)} "
            f"({_count(info.artifacts)} artifacts); the previous state was saved first as an "
            "auto-backup checkpoint"
        )
    return 0
