"""The live stream of governance events: every audited action, fanned out to SSE clients.

:class:`AuditTap` is the server's auditor. Everything the engine and the routes audit goes
through it into the tamper-evident chain (:class:`~metaqore.core.audit.ComplianceAuditor`),
and once written, the record is published on the :class:`EventHub`. An event's id is its
audit ``seq``, so a client that saw event 41 can find what followed in the audit trail too.

The hub keeps the newest events in a bounded buffer for ``Last-Event-ID`` resumes and wakes
the waiting streams, which live on the server's event loop while publishers run in worker
threads.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from metaqore.core.audit import ComplianceAuditor
from metaqore.core.models import VetoReason

#: Keys the current request adds to the payloads of the events it causes (when absent).
_SCOPE: ContextVar[Mapping[str, Any] | None] = ContextVar("metaqore_audit_scope", default=None)


@dataclass(frozen=True)
class GovernanceEvent:
    """One audited governance action, as streamed: the audit record and where it belongs."""

    id: int
    event_type: str
    project_id: str | None
    record: Mapping[str, Any]

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> GovernanceEvent:
        payload = record.get("payload")
        project = payload.get("project_id") if isinstance(payload, Mapping) else None
        return cls(
            id=int(record["seq"]),
            event_type=str(record["event_type"]),
            project_id=project if isinstance(project, str) else None,
            record=dict(record),
        )

    def to_sse(self) -> str:
        """The event in ``text/event-stream`` form (JSON never holds a raw newline)."""
        name = self.event_type.replace("\r", " ").replace("\n", " ")
        data = json.dumps(self.record, ensure_ascii=False, separators=(",", ":"), default=str)
        return f"id: {self.id}\nevent: {name}\ndata: {data}\n\n"


class EventHub:
    """A bounded buffer of recent events plus the streams waiting for new ones."""

    def __init__(self, capacity: int = 1000) -> None:
        if capacity < 1:
            raise ValueError(f"event buffer capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._events: deque[GovernanceEvent] = deque()
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        # Every event with an id up to this one is no longer in the buffer (or came before
        # this server started): a client that last saw an older id missed some.
        self._dropped_through: int | None = None

    def publish(self, event: GovernanceEvent) -> None:
        with self._lock:
            if self._dropped_through is None:
                self._dropped_through = event.id - 1
            self._events.append(event)
            while len(self._events) > self.capacity:
                self._dropped_through = self._events.popleft().id
            waiters = list(self._waiters)
        for loop, flag in waiters:
            try:
                loop.call_soon_threadsafe(flag.set)
            except RuntimeError:  # that stream's loop has closed
                continue

    @property
    def last_id(self) -> int:
        """The id of the newest event (0 before the first)."""
        with self._lock:
            if self._events:
                return self._events[-1].id
            return self._dropped_through or 0

    def after(self, last_id: int) -> tuple[list[GovernanceEvent], int | None]:
        """Buffered events newer than ``last_id``, and the newest id missed in between
        (``None`` when nothing was missed)."""
        with self._lock:
            events = [event for event in self._events if event.id > last_id]
            dropped = self._dropped_through
        missed = dropped if dropped is not None and last_id < dropped else None
        return events, missed

    @contextmanager
    def subscription(self) -> Iterator[asyncio.Event]:
        """A flag set whenever an event is published, for a stream on the running loop."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                self._waiters.discard(entry)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._waiters)


class AuditTap:
    """The server's auditor: writes each event to the audit chain, then publishes it.

    It offers the three methods the engine calls (``log_event``, ``log_routing_decision``,
    ``log_veto_event``). Within :meth:`scope`, the events get the request's ``project_id``
    and ``artifact_id`` where their payload lacks them, so that a veto can be found in the
    audit trail by project.
    """

    def __init__(self, auditor: ComplianceAuditor, hub: EventHub) -> None:
        self.auditor = auditor
        self.hub = hub
        self._lock = threading.RLock()

    @contextmanager
    def scope(self, **context: Any) -> Iterator[None]:
        token = _SCOPE.set({key: value for key, value in context.items() if value is not None})
        try:
            yield
        finally:
            _SCOPE.reset(token)

    def _scoped(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return {**(_SCOPE.get() or {}), **payload}

    def _publish(self, record: dict[str, Any]) -> dict[str, Any]:
        if record.get("seq") is None:
            self.auditor.flush()
        self.hub.publish(GovernanceEvent.from_record(record))
        return record

    def log_event(self, event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self._publish(self.auditor.log_event(event_type, self._scoped(payload)))

    def log_routing_decision(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        return self.log_event("routing_decision", payload)

    def log_veto_event(
        self, veto: VetoReason, context: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        with self._lock:
            record = self.auditor.log_veto_event(veto, self._scoped(context or {}))
            return self._publish(record)


__all__ = ["AuditTap", "EventHub", "GovernanceEvent"]
