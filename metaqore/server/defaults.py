"""Defaults of ``metaqore serve``, importable without the ``server`` extra (the CLI's
argument parser shows them even where FastAPI is not installed)."""

from __future__ import annotations

#: Interface the server listens on unless told otherwise: loopback only.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
#: Environment variable that holds the API key unless the operator names another.
DEFAULT_API_KEY_ENV = "METAQORE_API_KEY"
#: Header that carries the API key unless the operator names another.
DEFAULT_API_KEY_HEADER = "X-API-Key"
#: Largest request body, in bytes (1 MiB).
DEFAULT_MAX_BODY = 1024 * 1024
#: Seconds between keep-alive comments on the event stream.
DEFAULT_HEARTBEAT = 15.0
#: Recent events kept for clients that resume a stream with Last-Event-ID.
DEFAULT_EVENT_BUFFER = 1000
#: Install hint printed when the extra is missing.
INSTALL_HINT = "pip install 'metaqore[server]'"

__all__ = [
    "DEFAULT_API_KEY_ENV",
    "DEFAULT_API_KEY_HEADER",
    "DEFAULT_EVENT_BUFFER",
    "DEFAULT_HEARTBEAT",
    "DEFAULT_HOST",
    "DEFAULT_MAX_BODY",
    "DEFAULT_PORT",
    "INSTALL_HINT",
]
