"""The governance event stream (Server-Sent Events) of a real ``metaqore serve`` process:
follow it live, filter it, resume it with Last-Event-ID, keep it alive with heartbeats."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest


class EventReader:
    """Reads ``GET /events`` on a thread; parsed events and comments land in queues."""

    def __init__(self, server: Any, *, params: Any = None, headers: Any = None) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.comments: queue.Queue[str] = queue.Queue()
        self.headers: httpx.Headers | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(server, params, headers), daemon=True
        )
        self._thread.start()
        assert self._ready.wait(15), f"stream did not open: {self.error!r}"
        assert self.error is None, self.error

    def _run(self, server: Any, params: Any, headers: Any) -> None:
        try:
            with (
                server.client() as client,
                client.stream("GET", "/events", params=params, headers=headers or {}) as response,
            ):
                self.status = response.status_code
                self.headers = response.headers
                self._ready.set()
                event: dict[str, str] = {}
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if not line:
                        if "data" in event:
                            self.events.put({**event, "data": json.loads(event["data"])})
                        event = {}
                    elif line.startswith(":"):
                        self.comments.put(line)
                    else:
                        field, _, value = line.partition(":")
                        event[field] = value.removeprefix(" ")
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc
            self._ready.set()

    def next(self, timeout: float = 10.0) -> dict[str, Any]:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout}s (error: {self.error!r})") from None

    def until(self, event_type: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self.next(deadline - time.monotonic())
            if event["event"] == event_type:
                return event
        raise AssertionError(f"no {event_type} event within {timeout}s")

    def close(self) -> None:
        self._stop.set()  # the next heartbeat line ends the loop
        self._thread.join(10)


@pytest.fixture
def follow(server: Any) -> Iterator[Any]:
    readers: list[EventReader] = []

    def open_stream(**kwargs: Any) -> EventReader:
        reader = EventReader(server, **kwargs)
        readers.append(reader)
        return reader

    yield open_stream
    for reader in readers:
        reader.close()


def test_an_artifact_declared_in_another_request_arrives_live(
    follow: Any, api: httpx.Client, project: str
) -> None:
    stream = follow(params={"project_id": project})
    assert stream.status == 200
    assert stream.headers is not None
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-cache"

    created = api.post(
        f"/projects/{project}/artifacts",
        json={"id": "live", "artifact_type": "plan", "created_by": "planner", "data": {"a": 1}},
    )
    assert created.status_code == 201
    event = stream.next()
    assert event["event"] == "artifact_declared"
    record = event["data"]
    assert int(event["id"]) == record["seq"]
    assert record["event_type"] == "artifact_declared"
    assert record["payload"]["artifact_id"] == "live"
    assert record["payload"]["project_id"] == project
    assert record["payload"]["content_hash"] == created.json()["content_hash"]
    assert record["hash"].startswith("sha256:")


def test_governance_events_in_order(follow: Any, api: httpx.Client, project: str) -> None:
    stream = follow(params={"project_id": project})
    api.post(
        f"/projects/{project}/artifacts",
        json={"id": "a", "artifact_type": "t", "created_by": "x", "data": {"k": 1}},
    )
    blocked = api.post(
        f"/projects/{project}/artifacts", json={"id": "b", "artifact_type": "t", "created_by": "y"}
    )
    conflict_id = blocked.json()["conflicts"][0]["id"]
    api.post(f"/projects/{project}/conflicts/{conflict_id}/resolve", json={"strategy": "override"})
    vetoed = api.post(
        f"/projects/{project}/artifacts",
        json={"artifact_type": "t", "created_by": "x", "metadata": {"llm_provider": "mystery"}},
    )
    assert vetoed.status_code == 403
    checkpoint = api.post(f"/projects/{project}/checkpoints", json={"label": "l"}).json()
    api.post(f"/projects/{project}/checkpoints/{checkpoint['id']}/restore")

    seen = [stream.next()["event"] for _ in range(7)]
    assert seen == [
        "artifact_declared",
        "conflict_detected",
        "conflict_resolved",
        "artifact_declared",  # b, stored once its conflict is resolved
        "veto",
        "checkpoint_created",
        "checkpoint_restored",
    ]


def test_type_filter(follow: Any, api: httpx.Client, project: str) -> None:
    stream = follow(params={"types": "conflict_detected", "project_id": project})
    api.post(f"/projects/{project}/artifacts", json={"artifact_type": "t", "created_by": "x"})
    api.post(f"/projects/{project}/artifacts", json={"artifact_type": "t", "created_by": "y"})
    event = stream.next()
    assert event["event"] == "conflict_detected"
    assert event["data"]["payload"]["conflict_type"] == "parallel_creation"
    assert stream.events.empty()


def test_resume_with_last_event_id(follow: Any, api: httpx.Client, project: str) -> None:
    stream = follow(params={"project_id": project})
    for number in range(3):
        api.post(
            f"/projects/{project}/artifacts",
            json={"id": f"r{number}", "artifact_type": f"t{number}", "created_by": "x"},
        )
    first, second, third = (stream.next() for _ in range(3))
    stream.close()

    resumed = follow(params={"project_id": project}, headers={"Last-Event-ID": first["id"]})
    assert [resumed.next()["id"], resumed.next()["id"]] == [second["id"], third["id"]]
    by_query = follow(params={"project_id": project, "last_event_id": second["id"]})
    assert by_query.next()["id"] == third["id"]

    fresh = follow(params={"project_id": project})  # no id: only what comes next
    api.post(
        f"/projects/{project}/artifacts", json={"id": "r9", "artifact_type": "z", "created_by": "x"}
    )
    assert fresh.next()["data"]["payload"]["artifact_id"] == "r9"


def test_heartbeat_comments_keep_the_stream_open(follow: Any) -> None:
    stream = follow()  # the shared server sends a heartbeat every 0.5 s of quiet
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        comment = stream.comments.get(timeout=10)
        if comment == ": heartbeat":
            return
    raise AssertionError("no heartbeat")


def test_gap_when_the_buffer_no_longer_reaches_back(start_server: Any) -> None:
    process = start_server("--event-buffer", "3", "--heartbeat", "0.5")
    with process.client() as api:
        api.post("/projects", json={"id": "p", "name": "p"})
        for number in range(6):
            api.post(
                "/projects/p/artifacts",
                json={"id": f"g{number}", "artifact_type": f"t{number}", "created_by": "x"},
            )
        reader = EventReader(process, headers={"Last-Event-ID": "1"})
        try:
            gap = reader.next()
            assert gap["event"] == "gap"
            assert gap["data"]["last_event_id"] == 1
            assert "/audit/trail?after_seq=1" in gap["data"]["hint"]
            replayed = [reader.next()["data"]["payload"]["artifact_id"] for _ in range(3)]
            assert replayed == ["g3", "g4", "g5"]
            # What the stream missed is all in the audit trail.
            trail = api.get(
                "/audit/trail", params={"after_seq": 1, "event_type": "artifact_declared"}
            ).json()
            assert [r["payload"]["artifact_id"] for r in trail["items"]] == [
                f"g{n}" for n in range(6)
            ]
        finally:
            reader.close()


def test_shutdown_ends_open_streams(start_server: Any) -> None:
    process = start_server("--heartbeat", "30")
    reader = EventReader(process)
    started = time.monotonic()
    assert process.stop() == 0
    assert time.monotonic() - started < 10
    reader.close()
