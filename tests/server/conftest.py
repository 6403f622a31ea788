"""Fixtures for the server tests: a real ``python -m metaqore serve`` process on a free
loopback port with a SQLite file store, driven over HTTP with httpx."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from server_support import API_KEY, ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server shared by one test module (tests use their own project ids)."""
    process = ServerProcess(
        tmp_path_factory.mktemp("server"),
        ["--max-body", "65536", "--heartbeat", "0.5", "--log-level", "warning"],
    ).wait_ready()
    yield process
    code = process.stop()
    assert code == 0, process.logs()
    assert "Traceback" not in process.stderr(), process.logs()


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Any]:
    """Start extra servers with their own arguments; each is stopped after the test."""
    started: list[ServerProcess] = []

    def start(
        *args: str,
        env: Mapping[str, str] | None = None,
        api_key: str | None = API_KEY,
        ready: bool = True,
        store: bool = True,
    ) -> ServerProcess:
        process = ServerProcess(
            tmp_path / f"server{len(started)}", args, env=env, api_key=api_key, store=store
        )
        started.append(process)
        return process.wait_ready() if ready else process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def project(api: httpx.Client) -> str:
    """A fresh project id in the shared server."""
    project_id = f"proj-{secrets.token_hex(4)}"
    response = api.post("/projects", json={"id": project_id, "name": "Test project"})
    assert response.status_code == 201, response.text
    return project_id
