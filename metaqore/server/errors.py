"""Exceptions to JSON error answers, in one place; nothing ever answers with a traceback.

Every error body has a stable ``error`` code and a human ``message`` (plus the evidence:
the conflicts of a 409, the veto of a 403, the problems of a 422). An unexpected exception
answers 500 with an opaque ``error_id`` and the traceback goes to the server's log only.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metaqore.core.models import Artifact, Conflict
from metaqore.exceptions import (
    AuditIntegrityError,
    ConfigurationError,
    ConflictDetectedError,
    InvalidTransitionError,
    MetaQoreError,
    NotFoundError,
    StorageError,
    VetoAppliedError,
)
from metaqore.logger import get_logger
from metaqore.server.schemas import ArtifactOut, ConflictOut, ErrorOut, ProblemOut, VetoOut
from metaqore.validation import Problem, explain, fields_at

log = get_logger("server")


class ApiConflict(MetaQoreError):
    """A request that contradicts the current state (409) with a stable error code."""

    def __init__(
        self, code: str, message: str, conflicts: Sequence[Conflict] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.conflicts = list(conflicts or [])


class ArtifactBlocked(MetaQoreError):
    """PSMP blocked a declared artifact; the server holds it until its conflicts resolve."""

    def __init__(self, artifact: Artifact, conflicts: Sequence[Conflict], message: str) -> None:
        super().__init__(message)
        self.artifact = artifact
        self.conflicts = list(conflicts)


def error_response(
    status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = ErrorOut(error=code, message=message, **extra)
    # Leave out the evidence fields this error has none of (nested nulls stay).
    absent = {name for name in ErrorOut.model_fields if getattr(body, name) is None}
    return JSONResponse(
        body.model_dump(mode="json", exclude=absent), status_code=status, headers=headers
    )


def new_error_id() -> str:
    return f"err_{secrets.token_hex(8)}"


_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal_error",
    503: "service_unavailable",
}


def _code(status: int) -> str:
    if status in _CODES:
        return _CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


# -- validation ------------------------------------------------------------------------------


def _body_model(request: Request) -> type[BaseModel] | None:
    """The pydantic model of the route's JSON body, to suggest field names for typos."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    for param in getattr(dependant, "body_params", None) or ():
        annotation = getattr(getattr(param, "field_info", None), "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
    return None


class _Errors:
    """Quacks like a pydantic ValidationError for :func:`metaqore.validation.explain`."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self._errors = errors

    def errors(self, **_: Any) -> list[dict[str, Any]]:
        return self._errors


def _where(loc: Sequence[Any]) -> str:
    text = ""
    for step in loc:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "body"


_PATTERN_MESSAGE = "holds a character not allowed here (control characters; '/' in an id)"
_OBJECT_TYPES = frozenset({"model_attributes_type", "model_type", "dict_type"})


def _normalised(error: dict[str, Any]) -> dict[str, Any]:
    """Reword pydantic errors that :func:`explain` would only call "got a string"."""
    kind = error.get("type")
    message = str(error.get("msg", ""))
    if kind == "string_pattern_mismatch":
        return {**error, "type": "value_error", "msg": _PATTERN_MESSAGE}
    if kind in _OBJECT_TYPES:
        return {**error, "msg": "Input should be a JSON object"}
    if kind in ("extra_forbidden", "missing", "value_error", "assertion_error"):
        return error
    if message.startswith("Input should be "):
        return error
    return {**error, "type": "value_error", "msg": message}


def _problem_out(prefix: str, problem: Problem) -> ProblemOut:
    location = _where((prefix, *problem.loc))
    message = problem.message
    # explain() words some messages as "a.b: got X": the location is given apart.
    for inner in (_where(problem.loc) + ": ", "document: "):
        if message.startswith(inner):
            message = message[len(inner) :]
    return ProblemOut(location=location, message=message, expected=problem.expected)


def validation_problems(request: Request, errors: Sequence[Any]) -> list[ProblemOut]:
    problems: list[ProblemOut] = []
    body: list[dict[str, Any]] = []
    for raw in errors:
        error = _normalised(dict(raw))
        loc = tuple(error.get("loc") or ())
        if loc and loc[0] == "body":
            body.append({**error, "loc": loc[1:]})
            continue
        if error.get("type") == "missing":
            message = "required"
        elif error.get("type") == "value_error":
            message = str(error.get("msg", "")).removeprefix("Value error, ")
        else:
            message = str(error.get("msg", "invalid value"))
        problems.append(ProblemOut(location=_where(loc), message=message))
    if body:
        model = _body_model(request)
        body = _without_union_tags(body, model)
        if any(not item["loc"] for item in body if item.get("type") == "missing"):
            problems.append(
                ProblemOut(
                    location="body", message="a JSON body is required", expected="a JSON object"
                )
            )
            body = [item for item in body if item["loc"]]
        for problem in explain(_Errors(body), model):  # type: ignore[arg-type]
            problems.append(_problem_out("body", problem))
    return problems


_TAG = re.compile(r"^[a-z]+(?:-[a-z]+)*(?:\[.*\])?$")


def _without_union_tags(
    errors: list[dict[str, Any]], model: type[BaseModel] | None
) -> list[dict[str, Any]]:
    """Drop pydantic's union-member steps from locations (``status.str-enum[...]``) and
    the ``none_required`` twin every ``X | None`` field adds to an error."""
    cleaned: list[dict[str, Any]] = []
    for error in errors:
        kept: list[Any] = []
        for step in error["loc"]:
            tag = isinstance(step, str) and kept and _TAG.match(step)
            if tag and step not in fields_at(model, tuple(kept)):
                continue
            kept.append(step)
        cleaned.append({**error, "loc": tuple(kept)})
    located = {error["loc"] for error in cleaned if error.get("type") != "none_required"}
    return [
        error
        for error in cleaned
        if error.get("type") != "none_required" or error["loc"] not in located
    ]


def _not_json(errors: Sequence[Any]) -> bool:
    """Whether the body arrived as something else than JSON (FastAPI passes raw bytes)."""
    return any(
        tuple(error.get("loc") or ()) == ("body",) and isinstance(error.get("input"), bytes)
        for error in errors
    )


def _json_position(document: Any, position: int) -> tuple[int, int]:
    text = document if isinstance(document, str) else ""
    if isinstance(document, bytes | bytearray):
        text = bytes(document).decode("utf-8", "replace")
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return line, column


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    for error in errors:
        if error.get("type") == "json_invalid":
            loc = tuple(error.get("loc") or ())
            position = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
            line, column = _json_position(exc.body, position)
            detail = (error.get("ctx") or {}).get("error") or "invalid JSON"
            return error_response(
                400,
                "malformed_json",
                f"request body is not valid JSON: {detail} at line {line} column {column}",
                problems=[
                    ProblemOut(
                        location=f"body (line {line}, column {column})",
                        message=str(detail),
                        expected="a JSON document",
                    )
                ],
            )
    if _not_json(errors):
        return error_response(
            415,
            "unsupported_media_type",
            "the request body must be JSON, sent with Content-Type: application/json",
        )
    problems = validation_problems(request, errors)
    summary = "; ".join(
        f"{p.location}: {p.message}" + (f" (expected {p.expected})" if p.expected else "")
        for p in problems[:5]
    )
    if len(problems) > 5:
        summary += f"; and {len(problems) - 5} more"
    return error_response(422, "validation_error", summary or "invalid request", problems=problems)


def _allowed_methods(request: Request) -> str:
    """Every method some route answers on this path (Starlette names only one route's).

    ``app.state.route_methods`` holds (path regex, methods) of every API route.
    """
    methods: set[str] = set()
    for pattern, route_methods in getattr(request.app.state, "route_methods", ()):
        if pattern.match(request.url.path):
            methods |= set(route_methods)
    methods.discard("HEAD")
    return ", ".join(sorted(methods))


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _code(exc.status_code)
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return error_response(exc.status_code, _code(exc.status_code), detail, headers=headers)


def _opaque(status: int, code: str, message: str, exc: BaseException) -> JSONResponse:
    error_id = new_error_id()
    log.error("%s (%s): %s", code, error_id, exc, exc_info=exc)
    return error_response(status, code, f"{message} (error id {error_id})", error_id=error_id)


async def _on_metaqore(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MetaQoreError)
    if isinstance(exc, ArtifactBlocked):
        return error_response(
            409,
            "artifact_blocked",
            exc.message,
            artifact=ArtifactOut.of(exc.artifact),
            conflicts=[ConflictOut.of(conflict) for conflict in exc.conflicts],
        )
    if isinstance(exc, ConflictDetectedError):
        return error_response(
            409,
            "conflict_detected",
            exc.message,
            conflicts=[ConflictOut.of(conflict) for conflict in exc.conflicts],
        )
    if isinstance(exc, VetoAppliedError):
        return error_response(
            403, "veto", exc.message, veto=VetoOut.of(exc.veto), context=exc.context or None
        )
    if isinstance(exc, ApiConflict):
        listed = [ConflictOut.of(conflict) for conflict in exc.conflicts] or None
        return error_response(409, exc.code, exc.message, conflicts=listed)
    if isinstance(exc, NotFoundError):
        return error_response(404, "not_found", exc.message)
    if isinstance(exc, InvalidTransitionError):
        return error_response(409, "invalid_transition", exc.message)
    if isinstance(exc, StorageError):
        return _opaque(503, "store_unavailable", "the store cannot serve this request now", exc)
    if isinstance(exc, AuditIntegrityError):
        return _opaque(503, "audit_unavailable", "the audit chain cannot be appended", exc)
    if isinstance(exc, ConfigurationError):
        return _opaque(500, "internal_error", "internal server error", exc)
    return error_response(400, "bad_request", exc.message)


async def _on_model_error(request: Request, exc: Exception) -> JSONResponse:
    # A value the engine's models refused (validated assignment): the client's input.
    assert isinstance(exc, ValidationError)
    problems = [
        ProblemOut(location=_where(("body", *p.loc)), message=p.message, expected=p.expected)
        for p in explain(exc, None)
    ]
    return error_response(
        422,
        "validation_error",
        "; ".join(f"{p.location}: {p.message}" for p in problems) or "invalid value",
        problems=problems,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(MetaQoreError, _on_metaqore)
    app.add_exception_handler(ValidationError, _on_model_error)


class ErrorShieldMiddleware:
    """Outermost guard: an exception nobody handled becomes an opaque 500, logged here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            error_id = new_error_id()
            log.error(
                "unhandled error %s on %s %s",
                error_id,
                scope.get("method"),
                scope.get("path"),
                exc_info=exc,
            )
            if started:
                return  # the answer is under way (a stream): it just ends here
            response = error_response(
                500,
                "internal_error",
                f"internal server error (error id {error_id})",
                error_id=error_id,
            )
            await response(scope, receive, send)


__all__ = [
    "ApiConflict",
    "ArtifactBlocked",
    "ErrorShieldMiddleware",
    "error_response",
    "install_error_handlers",
    "validation_problems",
]
