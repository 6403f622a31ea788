"""``metaqore serve``: the governance engine over HTTP (needs the ``server`` extra).

FastAPI and uvicorn are imported only when the command runs, so the CLI works (and says
what to install) without them.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any

from metaqore.cli.common import add_config_options, add_debug, config_from_args
from metaqore.config import GovernanceMode
from metaqore.exceptions import ConfigurationError
from metaqore.server.defaults import (
    DEFAULT_API_KEY_ENV,
    DEFAULT_API_KEY_HEADER,
    DEFAULT_EVENT_BUFFER,
    DEFAULT_HEARTBEAT,
    DEFAULT_HOST,
    DEFAULT_MAX_BODY,
    DEFAULT_PORT,
    INSTALL_HINT,
)

if TYPE_CHECKING:
    from metaqore.server.runtime import ServerRuntime

#: Shortest API key that does not draw a warning.
MIN_KEY_LENGTH = 16
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(
        name,
        help="serve the engine over HTTP (needs metaqore[server])",
        description="Serve projects, tasks, artifacts, governance, audit and a live event "
        "stream over HTTP. The API key is read from an environment variable, never from "
        "the command line; without one the server only listens on loopback.",
    )
    parser.add_argument(
        "--db",
        metavar="DSN",
        help="the store: sqlite:///path.db or postgresql+psycopg://... (default: the "
        "config's storage_dsn; an in-memory store loses everything when the server stops)",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"interface (default: {DEFAULT_HOST})")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default: {DEFAULT_PORT}; 0 picks a free one)",
    )
    add_config_options(parser, gate=False)
    parser.add_argument(
        "--mode",
        choices=[mode.value for mode in GovernanceMode],
        help="governance mode (default: the config's)",
    )
    parser.add_argument("--policy", metavar="POLICY", help="routing policy (default: the config's)")
    parser.add_argument(
        "--audit-log",
        metavar="PATH",
        help="the audit chain every governance action is appended to (default: the "
        "config's audit_log, metaqore-audit.jsonl)",
    )
    parser.add_argument(
        "--api-key-env",
        metavar="NAME",
        default=DEFAULT_API_KEY_ENV,
        help=f"environment variable holding the API key (default: {DEFAULT_API_KEY_ENV})",
    )
    parser.add_argument(
        "--api-key-header",
        metavar="HEADER",
        default=DEFAULT_API_KEY_HEADER,
        help=f"request header that carries the API key (default: {DEFAULT_API_KEY_HEADER})",
    )
    parser.add_argument(
        "--max-body",
        metavar="BYTES",
        type=int,
        default=DEFAULT_MAX_BODY,
        help=f"largest request body; larger ones get 413 (default: {DEFAULT_MAX_BODY})",
    )
    parser.add_argument(
        "--heartbeat",
        metavar="SECONDS",
        type=float,
        default=DEFAULT_HEARTBEAT,
        help=f"keep-alive comment interval of the event stream (default: {DEFAULT_HEARTBEAT:g})",
    )
    parser.add_argument(
        "--event-buffer",
        metavar="N",
        type=int,
        default=DEFAULT_EVENT_BUFFER,
        help="recent events kept for clients resuming with Last-Event-ID "
        f"(default: {DEFAULT_EVENT_BUFFER})",
    )
    parser.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        default="info",
        help="server log level (default: info, which logs each request)",
    )
    add_debug(parser)
    parser.set_defaults(handler=run)


def _warn(message: str) -> None:
    print(f"metaqore serve: warning: {message}", file=sys.stderr, flush=True)


class _Stopped(Exception):
    """The server was asked to stop (SIGTERM or SIGINT) and has shut down gracefully."""


def _stopped(signum: int, frame: object) -> None:
    raise _Stopped(signum)


def _listen(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _serve(
    args: argparse.Namespace, runtime: ServerRuntime, sock: socket.socket, api_key: str | None
) -> None:
    import uvicorn

    from metaqore.server.app import create_app

    holder: list[uvicorn.Server] = []
    app = create_app(
        runtime=runtime,
        api_key=api_key,
        api_key_header=args.api_key_header,
        max_body=args.max_body,
        heartbeat=args.heartbeat,
        should_stop=lambda: bool(holder) and holder[0].should_exit,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level=args.log_level,
            timeout_graceful_shutdown=5,
            server_header=False,
            proxy_headers=False,
        )
    )
    holder.append(server)
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if ":" in str(bound[0]) else str(bound[0])
    print(
        f"metaqore serve: listening on http://{shown}:{bound[1]} "
        f"(store {runtime.dsn}, audit log {runtime.audit.auditor.path}, "
        + (f"API key required in {args.api_key_header})" if api_key else "no API key)"),
        file=sys.stderr,
        flush=True,
    )
    server.run(sockets=[sock])


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ConfigurationError(
            f"metaqore serve needs the server extra ({exc.name or 'fastapi'} is not "
            f"installed): {INSTALL_HINT}"
        ) from None
    from metaqore.logger import configure_logging
    from metaqore.server.auth import is_loopback
    from metaqore.server.runtime import ServerRuntime

    if not 0 <= args.port <= 65535:
        raise ConfigurationError(f"--port must be 0-65535, got {args.port}")
    if args.max_body < 1:
        raise ConfigurationError(
            f"--max-body must be a positive number of bytes, got {args.max_body}"
        )
    if args.event_buffer < 1:
        raise ConfigurationError(f"--event-buffer must be >= 1, got {args.event_buffer}")
    if not args.heartbeat > 0:
        raise ConfigurationError(f"--heartbeat must be > 0 seconds, got {args.heartbeat}")
    header = args.api_key_header
    if not header or any(ch.isspace() or ch == ":" for ch in header):
        raise ConfigurationError(f"--api-key-header: not a header name: {header!r}")

    api_key = os.environ.get(args.api_key_env) or None
    if api_key is None:
        if not is_loopback(args.host):
            raise ConfigurationError(
                f"refusing to serve on {args.host!r} without an API key: set the "
                f"{args.api_key_env} environment variable (or name another one with "
                "--api-key-env). Without a key, metaqore serve listens on loopback only "
                "(127.0.0.1, ::1, localhost)."
            )
        _warn(
            f"no API key ({args.api_key_env} is not set): anyone who can reach "
            f"{args.host} may use the API"
        )
    elif len(api_key) < MIN_KEY_LENGTH:
        _warn(f"the API key in {args.api_key_env} is short (under {MIN_KEY_LENGTH} characters)")

    config = config_from_args(args)
    configure_logging(level=config.log_level, fmt=config.log_format)
    if (args.db or config.storage_dsn) in ("sqlite://", "sqlite:///:memory:"):
        _warn("in-memory store: everything is lost when the server stops (use --db)")

    runtime = ServerRuntime.open(
        config, dsn=args.db, audit_log=args.audit_log, event_buffer=args.event_buffer
    )
    # uvicorn stops on SIGTERM/SIGINT, then raises the signal again with the handlers it
    # found installed: these let the runtime close (flush the audit chain, release the
    # store) instead of dying on the spot.
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        sock = _listen(args.host, args.port)
        try:
            _serve(args, runtime, sock, api_key)
        finally:
            sock.close()
    except _Stopped:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        runtime.close()
    return 0
