"""The audit chain over HTTP: the trail (filtered, paged), the compliance report, and the
compliance export as JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import StringConstraints, TypeAdapter, ValidationError

from metaqore.core.audit import format_compliance_report
from metaqore.server.routes import PAGE_DEFAULT, FilterText, Limit, Offset, Runtime
from metaqore.server.runtime import ServerRuntime
from metaqore.server.schemas import (
    AuditPage,
    AuditRecordOut,
    ComplianceExportOut,
    ComplianceReportOut,
    page_of,
)

router = APIRouter(tags=["audit"])

#: Columns of the CSV export, in order; ``payload`` is the record's payload as JSON.
CSV_COLUMNS = (
    "seq",
    "timestamp",
    "event_type",
    "organization",
    "run_id",
    "project_id",
    "artifact_id",
    "payload",
    "prev_hash",
    "hash",
)

EventTypes = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=512)]] | None,
    Query(
        description="Only these event types (repeat the parameter for several, or separate "
        "them with commas).",
        max_length=100,
    ),
]
Moment = Annotated[
    str | None,
    Query(
        max_length=64,
        description="ISO 8601 / RFC 3339 timestamp (UTC when it has no offset); inclusive.",
        json_schema_extra={"format": "date-time"},
    ),
]
_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(datetime)
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
AfterSeq = Annotated[
    int | None,
    Query(ge=0, description="Only records after this seq (an event stream id)."),
]


def _utc(value: str | None, name: str) -> datetime | None:
    """The timestamp in UTC; a bare number (which pydantic would read as Unix time) or
    anything else that is not ISO 8601 answers 422."""
    if value is None:
        return None
    problem = RequestValidationError(
        [
            {
                "type": "value_error",
                "loc": ("query", name),
                "msg": "not an ISO 8601 timestamp (expected e.g. 2026-11-24T17:00:00Z)",
                "input": value,
            }
        ]
    )
    if _NUMBER.fullmatch(value.strip()):
        raise problem
    try:
        moment = _TIMESTAMP.validate_python(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValidationError, OverflowError, ValueError):
        raise problem from None


def _records(
    runtime: ServerRuntime,
    *,
    event_type: list[str] | None,
    project_id: str | None,
    artifact_id: str | None,
    run_id: str | None,
    organization: str | None,
    since: str | None,
    until: str | None,
    after_seq: int | None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    filters: dict[str, Any] = {}
    if event_type:
        filters["event_type"] = tuple(
            name.strip() for value in event_type for name in value.split(",") if name.strip()
        )
    for key, value in (
        ("project_id", project_id),
        ("artifact_id", artifact_id),
        ("run_id", run_id),
        ("organization", organization),
    ):
        if value is not None:
            filters[key] = value
    lower, upper = _utc(since, "since"), _utc(until, "until")
    if lower is not None:
        filters["since"] = lower
    if upper is not None:
        filters["until"] = upper
    records = runtime.audit.auditor.get_audit_trail(filters)
    if after_seq is not None:
        records = [record for record in records if int(record["seq"]) > after_seq]
    echo: dict[str, Any] = {}
    for key, value in filters.items():
        if isinstance(value, tuple):
            echo[key] = list(value)
        elif isinstance(value, datetime):
            echo[key] = value.isoformat()
        else:
            echo[key] = value
    if after_seq is not None:
        echo["after_seq"] = after_seq
    return records, echo


@router.get("/audit/trail", response_model=AuditPage, summary="The audit trail")
def audit_trail(
    runtime: Runtime,
    event_type: EventTypes = None,
    project_id: FilterText = None,
    artifact_id: FilterText = None,
    run_id: FilterText = None,
    organization: FilterText = None,
    since: Moment = None,
    until: Moment = None,
    after_seq: AfterSeq = None,
    limit: Limit = PAGE_DEFAULT,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Records of the hash-chained audit file in chain order, filtered and paged."""
    records, _ = _records(
        runtime,
        event_type=event_type,
        project_id=project_id,
        artifact_id=artifact_id,
        run_id=run_id,
        organization=organization,
        since=since,
        until=until,
        after_seq=after_seq,
    )
    return page_of(records, limit=limit, offset=offset, convert=AuditRecordOut.model_validate)


@router.get(
    "/compliance/report",
    response_model=ComplianceReportOut,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    summary="The compliance report",
)
def compliance_report(
    runtime: Runtime,
    organization: FilterText = None,
    format: Literal["json", "text"] = Query(
        default="json", description="json, or text (the `metaqore audit report` layout)."
    ),
) -> Response:
    """Events by type, by provider, and policy violations, for one organization
    (default: the server's)."""
    report = runtime.audit.auditor.get_compliance_report(organization)
    if format == "text":
        return PlainTextResponse(format_compliance_report(report) + "\n")
    return JSONResponse(ComplianceReportOut.model_validate(report).model_dump(mode="json"))


_FORMULA_STARTS = frozenset("=+-@\t\r")


def _csv(records: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for record in records:
        raw = record.get("payload")
        payload: dict[str, Any] = raw if isinstance(raw, dict) else {}
        row = {
            **record,
            "project_id": payload.get("project_id", ""),
            "artifact_id": payload.get("artifact_id", ""),
            "payload": json.dumps(
                payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")
            ),
        }
        writer.writerow([_cell(row.get(name)) for name in CSV_COLUMNS])
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    """A CSV value a spreadsheet shows as text: one starting with ``= + - @`` (or a tab or
    CR) would be run as a formula, so it is prefixed with ``'`` (OWASP's advice)."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS:
        return "'" + value
    return value


@router.get(
    "/compliance/export",
    response_model=ComplianceExportOut,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    summary="Export audit records with the compliance report (JSON or CSV)",
)
def compliance_export(
    runtime: Runtime,
    format: Literal["json", "csv"] = Query(default="json"),
    event_type: EventTypes = None,
    project_id: FilterText = None,
    artifact_id: FilterText = None,
    run_id: FilterText = None,
    organization: FilterText = None,
    since: Moment = None,
    until: Moment = None,
    after_seq: AfterSeq = None,
) -> Response:
    """Every matching record (no paging). CSV: one row per record, columns
    seq, timestamp, event_type, organization, run_id, project_id, artifact_id, payload
    (JSON), prev_hash, hash; values are exact, quoted as RFC 4180 asks."""
    records, echo = _records(
        runtime,
        event_type=event_type,
        project_id=project_id,
        artifact_id=artifact_id,
        run_id=run_id,
        organization=organization,
        since=since,
        until=until,
        after_seq=after_seq,
    )
    org = organization or runtime.config.organization
    if format == "csv":
        return Response(
            _csv(records),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="metaqore-audit-export.csv"'},
        )
    export = ComplianceExportOut(
        organization=org,
        generated_at=datetime.now(UTC),
        report=ComplianceReportOut.model_validate(runtime.audit.auditor.get_compliance_report(org)),
        filters=echo,
        total=len(records),
        head_hash=records[-1]["hash"] if records else None,
        records=[AuditRecordOut.model_validate(record) for record in records],
    )
    return JSONResponse(export.model_dump(mode="json"))
