"""The API's routes, one module per resource, and what they share: the runtime
dependency, path and paging parameters, and the documented error answers."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError

from metaqore.server.runtime import ServerRuntime
from metaqore.server.schemas import DEFAULT_PAGE, MAX_PAGE, ErrorOut
from metaqore.validation import suggest


def _query_names(dependant: Any) -> set[str]:
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(str(param.alias) for param in getattr(current, "query_params", ()))
        pending.extend(getattr(current, "dependencies", ()))
    return names


def reject_unknown_query(request: Request) -> None:
    """A query parameter the route does not know is an error, not silently ignored: a
    typo in a filter (``?project=`` for ``?project_id=``) must not widen the answer."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _query_names(dependant)
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in known]
    if not unknown:
        return
    errors = []
    for name in unknown:
        hint = suggest(name, known)
        if hint:
            message = f"unknown query parameter (did you mean '{hint}'?)"
        elif known:
            message = "unknown query parameter (expected one of: " + ", ".join(sorted(known)) + ")"
        else:
            message = "unknown query parameter (this endpoint takes none)"
        errors.append({"type": "value_error", "loc": ("query", name), "msg": message})
    raise RequestValidationError(errors)


def get_runtime(request: Request) -> ServerRuntime:
    runtime: ServerRuntime | None = getattr(request.app.state, "runtime", None)
    if runtime is None or runtime.closed:
        raise HTTPException(503, "the server is starting or stopping; retry shortly")
    return runtime


Runtime = Annotated[ServerRuntime, Depends(get_runtime)]

_ID_PATTERN = r"^[^\x00-\x1f\x7f/]+$"


def _path_id(what: str) -> Any:
    return Path(min_length=1, max_length=512, pattern=_ID_PATTERN, description=f"The {what} id.")


ProjectId = Annotated[str, _path_id("project")]
TaskId = Annotated[str, _path_id("task")]
ArtifactId = Annotated[str, _path_id("artifact")]
ConflictId = Annotated[str, _path_id("conflict")]
CheckpointId = Annotated[str, _path_id("checkpoint")]

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Page size (at most {MAX_PAGE}).")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Items to skip.")]
FilterText = Annotated[str | None, Query(min_length=1, max_length=512)]

PAGE_DEFAULT = DEFAULT_PAGE

_DESCRIPTIONS = {
    400: "Malformed request (e.g. a body that is not JSON).",
    401: "Missing or wrong API key.",
    403: "SecureGateway vetoed the artifact.",
    404: "Not found.",
    409: "Conflicts with the current state (PSMP conflicts, a duplicate id, a disallowed "
    "status transition).",
    413: "Request body over the server's limit.",
    415: "The request body is not JSON (Content-Type: application/json).",
    422: "Invalid input: the problems name each field and what was expected.",
    500: "Internal error: the answer carries an opaque error_id, the log has the rest.",
    503: "The store or the audit chain cannot serve the request now.",
}

#: Error answers every authenticated route may give.
COMMON_ERRORS = (400, 401, 413, 415, 422, 500, 503)


def location(*segments: str) -> str:
    """A URL path from segments, each percent-encoded (ids may hold any character)."""
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error status codes (all answered with ErrorOut)."""
    return {code: {"model": ErrorOut, "description": _DESCRIPTIONS[code]} for code in codes}


__all__ = [
    "COMMON_ERRORS",
    "PAGE_DEFAULT",
    "ArtifactId",
    "CheckpointId",
    "ConflictId",
    "FilterText",
    "Limit",
    "Offset",
    "ProjectId",
    "Runtime",
    "TaskId",
    "errors",
    "get_runtime",
    "location",
    "reject_unknown_query",
]
