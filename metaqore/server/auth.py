"""API-key authentication: one shared key, sent in a configurable header, compared in
constant time; and the loopback test that decides whether a server may run without one."""

from __future__ import annotations

import hmac
import ipaddress
import socket
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

from metaqore.server.errors import error_response


class APIKeyMiddleware:
    """Answers 401 to any request outside ``public_paths`` without the right key.

    It runs before the body is read, so an unauthenticated client never gets as far as
    body parsing or validation.
    """

    def __init__(
        self, app: ASGIApp, *, api_key: str, header: str, public_paths: Iterable[str]
    ) -> None:
        self.app = app
        self._key = api_key.encode("utf-8")
        self._header = header
        self._raw_header = header.lower().encode("latin-1")
        self._public = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._public:
            await self.app(scope, receive, send)
            return
        provided = next(
            (value for name, value in scope["headers"] if name == self._raw_header), None
        )
        if provided is None:
            message = f"missing API key: send it in the {self._header} header"
        elif hmac.compare_digest(provided, self._key):
            await self.app(scope, receive, send)
            return
        else:
            message = f"invalid API key in the {self._header} header"
        response = error_response(
            401,
            "unauthorized",
            message,
            headers={"WWW-Authenticate": f'ApiKey header="{self._header}"'},
        )
        await response(scope, receive, send)


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address (127.0.0.0/8, ::1)."""
    candidate = host.strip().strip("[]")
    if not candidate:
        return False  # an empty host listens on every interface
    try:
        return ipaddress.ip_address(candidate).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(candidate, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {str(info[4][0]) for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(address.split("%", 1)[0]).is_loopback for address in addresses
    )


__all__ = ["APIKeyMiddleware", "is_loopback"]
