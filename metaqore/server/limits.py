"""Request size limit: a body over the limit is refused with 413 before it is read."""

from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metaqore.server.errors import error_response


class BodyLimitMiddleware:
    """Refuses bodies larger than ``max_body`` bytes.

    A declared ``Content-Length`` over the limit is refused at once, without reading a byte;
    a chunked body is counted as it arrives and refused as soon as it crosses the limit.
    """

    def __init__(self, app: ASGIApp, *, max_body: int) -> None:
        if max_body < 0:
            raise ValueError(f"max_body must be >= 0, got {max_body}")
        self.app = app
        self.max_body = max_body

    def _too_large(self, size: int | None = None) -> str:
        declared = f"request body is {size} bytes" if size is not None else "request body"
        return f"{declared} over the limit of {self.max_body} bytes (the server's --max-body)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None:
            try:
                size = int(declared)
                if size < 0:
                    raise ValueError
            except ValueError:
                response = error_response(
                    400, "bad_request", "Content-Length is not a non-negative integer"
                )
                await response(scope, receive, send)
                return
            if size > self.max_body:
                response = error_response(413, "payload_too_large", self._too_large(size))
                await response(scope, receive, send)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    # FastAPI lets an HTTPException raised while reading the body through.
                    raise HTTPException(413, self._too_large())
            return message

        await self.app(scope, counting_receive, send)


__all__ = ["BodyLimitMiddleware"]
