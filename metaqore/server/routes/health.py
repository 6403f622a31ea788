"""``GET /health``: liveness and store status, without authentication."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from metaqore import __version__
from metaqore.logger import get_logger
from metaqore.server.runtime import ServerRuntime
from metaqore.server.schemas import HealthOut, StoreHealth

router = APIRouter(tags=["health"])
log = get_logger("server")


@router.get(
    "/health",
    response_model=HealthOut,
    responses={
        503: {
            "model": HealthOut,
            "description": "Starting, stopping, or the store does not answer.",
        }
    },
    openapi_extra={"security": []},
    summary="Health: version and store status",
)
def health(request: Request) -> JSONResponse:
    runtime: ServerRuntime | None = getattr(request.app.state, "runtime", None)
    if runtime is None or runtime.closed:
        body = HealthOut(
            status="degraded",
            version=__version__,
            store=StoreHealth(status="error", dialect="unknown", message="not open"),
            audit="error",
        )
        return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=503)
    problem = runtime.check_store()
    if problem is not None:
        log.error("health check: store does not answer: %s", problem)
    audit_ok = not runtime.audit.auditor.closed
    body = HealthOut(
        status="ok" if problem is None and audit_ok else "degraded",
        version=__version__,
        store=StoreHealth(
            status="ok" if problem is None else "error",
            dialect=runtime.dialect,
            message=None if problem is None else "the store does not answer",
        ),
        audit="ok" if audit_ok else "error",
    )
    code = 200 if body.status == "ok" else 503
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=code)
