"""The FastAPI application factory: routes, error answers, auth, size limit, OpenAPI."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from metaqore import __version__
from metaqore.config import MetaQoreConfig
from metaqore.core.audit import ComplianceAuditor
from metaqore.server.auth import APIKeyMiddleware
from metaqore.server.defaults import (
    DEFAULT_API_KEY_HEADER,
    DEFAULT_EVENT_BUFFER,
    DEFAULT_HEARTBEAT,
    DEFAULT_MAX_BODY,
)
from metaqore.server.errors import ErrorShieldMiddleware, install_error_handlers
from metaqore.server.limits import BodyLimitMiddleware
from metaqore.server.pending import DEFAULT_MAX_PENDING
from metaqore.server.routes import COMMON_ERRORS, errors, reject_unknown_query
from metaqore.server.runtime import ServerRuntime

#: Paths answered without an API key.
PUBLIC_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect"})
#: Name of the API-key security scheme in the OpenAPI document.
SECURITY_SCHEME = "ApiKeyAuth"

DESCRIPTION = """\
MetaQore's governance engine over HTTP: projects, tasks and artifacts, declared through
SecureGateway then PSMP; the blocking report, conflict resolution, checkpoints; the
tamper-evident audit trail, compliance report and export; a live stream of governance
events (Server-Sent Events).

Every endpoint but `/health` needs the API key in the configured header when the server
has one. Errors answer `{"error": <code>, "message": <text>, ...}`.
"""


@dataclass(frozen=True)
class ServerSettings:
    api_key_header: str
    max_body: int
    heartbeat: float
    auth: bool


def create_app(
    *,
    config: MetaQoreConfig | None = None,
    dsn: str | None = None,
    api_key: str | None = None,
    api_key_header: str = DEFAULT_API_KEY_HEADER,
    auditor: ComplianceAuditor | None = None,
    audit_log: str | os.PathLike[str] | None = None,
    runtime: ServerRuntime | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    heartbeat: float = DEFAULT_HEARTBEAT,
    event_buffer: int = DEFAULT_EVENT_BUFFER,
    max_pending: int = DEFAULT_MAX_PENDING,
    should_stop: Callable[[], bool] | None = None,
) -> FastAPI:
    """The MetaQore API.

    The engine is ``runtime`` when given (the caller opens and closes it); otherwise it is
    opened when the application starts, from ``config`` (default: built-in defaults),
    ``dsn`` (default: the config's ``storage_dsn``) and ``auditor`` (default: a file
    auditor on ``audit_log`` or the config's ``audit_log``), and closed when it stops.

    ``api_key``: requests must carry it in ``api_key_header`` (``None``: no
    authentication; ``metaqore serve`` allows that on loopback only). ``max_body``: the
    largest request body in bytes. ``heartbeat``: seconds between keep-alive comments on
    the event stream. ``should_stop``: tells open event streams to end (the server is
    shutting down).
    """
    if api_key is not None and not api_key:
        raise ValueError("api_key must be a non-empty string, or None for no authentication")
    if not api_key_header or any(ch.isspace() or ch == ":" for ch in api_key_header):
        raise ValueError(f"invalid header name for the API key: {api_key_header!r}")
    if heartbeat <= 0:
        raise ValueError(f"heartbeat must be > 0 seconds, got {heartbeat}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened: ServerRuntime | None = None
        if app.state.runtime is None:
            opened = ServerRuntime.open(
                config,
                dsn=dsn,
                audit_log=audit_log,
                auditor=auditor,
                event_buffer=event_buffer,
                max_pending=max_pending,
            )
            app.state.runtime = opened
        try:
            yield
        finally:
            if opened is not None:
                app.state.runtime = None
                opened.close()

    app = FastAPI(
        title="MetaQore",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        # Operation ids are the route functions' names: list_projects, declare_artifact...
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.runtime = runtime
    app.state.settings = ServerSettings(
        api_key_header=api_key_header,
        max_body=max_body,
        heartbeat=heartbeat,
        auth=api_key is not None,
    )
    app.state.should_stop = should_stop or (lambda: False)

    from metaqore.server.routes import artifacts, audit, events, governance, health, projects
    from metaqore.server.routes import tasks as task_routes

    install_error_handlers(app)
    strict_query = [Depends(reject_unknown_query)]
    app.include_router(health.router, dependencies=strict_query)
    secured = errors(*COMMON_ERRORS)
    modules = (projects, task_routes, artifacts, governance, audit, events)
    for module in modules:
        app.include_router(module.router, responses=secured, dependencies=strict_query)
    # For the Allow header of a 405 (see metaqore.server.errors).
    app.state.route_methods = [
        (route.path_regex, frozenset(route.methods or ()))
        for module in (health, *modules)
        for route in module.router.routes
        if isinstance(route, APIRoute)
    ]

    # Added innermost first: the error shield wraps everything, auth runs before the
    # body is read, and the size limit guards the reading.
    app.add_middleware(BodyLimitMiddleware, max_body=max_body)
    if api_key is not None:
        app.add_middleware(
            APIKeyMiddleware, api_key=api_key, header=api_key_header, public_paths=PUBLIC_PATHS
        )
    app.add_middleware(ErrorShieldMiddleware)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, api_key_header)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def build_openapi(app: FastAPI, api_key_header: str) -> dict[str, Any]:
    """The OpenAPI document of ``app``, with the API-key security scheme."""
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "apiKey",
        "in": "header",
        "name": api_key_header,
        "description": "The server's API key (from the environment variable named by "
        "`metaqore serve --api-key-env`, default METAQORE_API_KEY).",
    }
    schema["security"] = [{SECURITY_SCHEME: []}]
    return schema


__all__ = ["PUBLIC_PATHS", "ServerSettings", "build_openapi", "create_app"]
