"""``GET /events``: governance events as Server-Sent Events, followed live.

Each event's ``id`` is its audit ``seq``, ``event`` its type (``artifact_declared``,
``conflict_detected``, ``conflict_resolved``, ``veto``, ``checkpoint_created``, ...) and
``data`` the audit record as JSON. A client that reconnects with ``Last-Event-ID`` gets what
it missed from the server's buffer; if the buffer no longer reaches back that far, a ``gap``
event says so (the audit trail, ``/audit/trail?after_seq=``, still has everything). A
comment line goes out every heartbeat interval so that proxies keep the stream open.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from metaqore.server.events import EventHub, GovernanceEvent
from metaqore.server.routes import FilterText, Runtime

router = APIRouter(tags=["events"])

#: How often a stream checks whether the server is shutting down, in seconds.
_POLL = 0.25


def _last_id(header: str | None, query: int | None, hub: EventHub) -> int:
    if query is not None:
        return query
    if header is not None:
        try:
            return max(0, int(header.strip()))
        except ValueError:
            pass  # not an id this server sent: follow from now on
    return hub.last_id


async def _stream(
    hub: EventHub,
    *,
    last_id: int,
    types: frozenset[str],
    project_id: str | None,
    heartbeat: float,
    should_stop: Callable[[], bool],
    retry_ms: int,
) -> AsyncIterator[str]:
    def wanted(event: GovernanceEvent) -> bool:
        return (not types or event.event_type in types) and (
            project_id is None or event.project_id == project_id
        )

    yield f"retry: {retry_ms}\n: metaqore governance events\n\n"
    loop = asyncio.get_running_loop()
    quiet_since = loop.time()
    with hub.subscription() as wake:
        while not should_stop():
            wake.clear()
            events, missed = hub.after(last_id)
            if missed is not None:
                gap = {
                    "last_event_id": last_id,
                    "missed_through": missed,
                    "hint": f"/audit/trail?after_seq={last_id} has every record",
                }
                yield f"id: {missed}\nevent: gap\ndata: {json.dumps(gap)}\n\n"
                last_id = missed
                quiet_since = loop.time()
            for event in events:
                last_id = event.id
                if wanted(event):
                    yield event.to_sse()
                    quiet_since = loop.time()
            try:
                await asyncio.wait_for(wake.wait(), timeout=_POLL)
            except TimeoutError:
                if loop.time() - quiet_since >= heartbeat:
                    yield ": heartbeat\n\n"
                    quiet_since = loop.time()


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "A text/event-stream of governance events.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
    summary="Follow governance events (Server-Sent Events)",
)
async def events(
    request: Request,
    runtime: Runtime,
    types: Annotated[
        list[str] | None,
        Query(description="Only these event types (repeat, or separate with commas)."),
    ] = None,
    project_id: FilterText = None,
    last_event_id: Annotated[
        int | None,
        Query(ge=0, description="Resume after this event id (like the Last-Event-ID header)."),
    ] = None,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Without an id, the stream starts with the next event; ``Last-Event-ID: 0`` replays
    everything still buffered."""
    settings = request.app.state.settings
    wanted = frozenset(
        name.strip() for value in types or () for name in value.split(",") if name.strip()
    )
    hub = runtime.hub
    stream = _stream(
        hub,
        last_id=_last_id(last_event_id_header, last_event_id, hub),
        types=wanted,
        project_id=project_id,
        heartbeat=settings.heartbeat,
        should_stop=request.app.state.should_stop,
        retry_ms=3000,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
