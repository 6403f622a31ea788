"""The application in-process: the committed OpenAPI document, the opaque 500 and 503
answers (nothing of the failure reaches the client), and the factory's own checks."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from metaqore.config import MetaQoreConfig
from metaqore.core.audit import ComplianceAuditor
from metaqore.server import create_app
from metaqore.server.openapi import render
from metaqore.server.runtime import ServerRuntime

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
REGENERATE = "python -m metaqore.server.openapi > docs/openapi.json"


def drive(
    app: FastAPI,
    steps: Callable[[httpx.AsyncClient], Awaitable[None]],
    *,
    lifespan: bool = False,
) -> None:
    """Run ``steps`` against ``app`` in-process (with its lifespan when asked)."""

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            if lifespan:
                async with app.router.lifespan_context(app):
                    await steps(client)
            else:
                await steps(client)

    asyncio.run(run())


def test_committed_openapi_document_is_current() -> None:
    assert OPENAPI.is_file(), f"docs/openapi.json is missing: run `{REGENERATE}`"
    assert OPENAPI.read_text("utf-8") == render(), (
        f"docs/openapi.json is out of date with the API: run `{REGENERATE}` and commit it"
    )


def test_served_openapi_document_is_the_committed_one(server: Any) -> None:
    import httpx

    served = httpx.get(f"{server.base_url}/openapi.json").json()
    assert served == json.loads(OPENAPI.read_text("utf-8"))


def test_openapi_documents_every_route_and_the_api_key() -> None:
    document = json.loads(render())
    assert document["components"]["securitySchemes"]["ApiKeyAuth"]["name"] == "X-API-Key"
    assert document["security"] == [{"ApiKeyAuth": []}]
    assert document["paths"]["/health"]["get"]["security"] == []
    operations = {
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
    }
    assert {
        "declare_artifact",
        "resolve_conflict",
        "blocking_report",
        "restore_checkpoint",
        "audit_trail",
        "compliance_export",
        "events",
    } <= operations
    declare = document["paths"]["/projects/{project_id}/artifacts"]["post"]["responses"]
    assert {"201", "401", "403", "404", "409", "413", "422"} <= set(declare)


@pytest.fixture
def runtime() -> Iterator[ServerRuntime]:
    opened = ServerRuntime.open(
        MetaQoreConfig(), dsn="sqlite://", auditor=ComplianceAuditor(organization="default")
    )
    yield opened
    opened.close()


def _app_with_failing_route(runtime: ServerRuntime) -> FastAPI:
    app = create_app(runtime=runtime, api_key="in-process-key-0123456789")

    def explode() -> None:
        raise RuntimeError("secret detail: /srv/metaqore/config.yaml")

    app.add_api_route("/explode", explode)
    return app


def test_an_unexpected_error_is_an_opaque_500(
    runtime: ServerRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app_with_failing_route(runtime)
    answers: list[httpx.Response] = []

    async def steps(client: httpx.AsyncClient) -> None:
        headers = {"X-API-Key": "in-process-key-0123456789"}
        answers.append(await client.get("/explode", headers=headers))

    with caplog.at_level(logging.ERROR, logger="metaqore"):
        drive(app, steps)
    response = answers[0]
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "internal_error"
    assert body["error_id"].startswith("err_")
    assert body["error_id"] in body["message"]
    assert "secret detail" not in response.text and "Traceback" not in response.text
    # The server's log has the rest, under the same id.
    logged = [r for r in caplog.records if body["error_id"] in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert "secret detail" in str(logged[0].exc_info[1])


def test_a_store_failure_is_an_opaque_503(runtime: ServerRuntime) -> None:
    app = create_app(runtime=runtime)

    async def steps(client: httpx.AsyncClient) -> None:
        runtime.backend.close()
        response = await client.get("/projects")
        assert response.status_code == 503
        body = response.json()
        assert body["error"] == "store_unavailable"
        assert body["error_id"].startswith("err_")
        assert "sqlite" not in response.text
        health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        assert health.json()["store"]["status"] == "error"

    drive(app, steps)


def test_app_opens_and_closes_its_own_runtime(tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    app = create_app(dsn=f"sqlite:///{tmp_path / 'store.db'}", audit_log=audit)

    async def steps(client: httpx.AsyncClient) -> None:
        created = await client.post("/projects", json={"id": "p", "name": "p"})
        assert created.status_code == 201
        assert (await client.get("/projects/p")).json()["name"] == "p"

    drive(app, steps, lifespan=True)
    assert app.state.runtime is None
    lines = audit.read_text("utf-8").splitlines()
    assert [json.loads(line)["event_type"] for line in lines] == [
        "server_started",
        "project_created",
        "server_stopped",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"api_key": ""}, "api_key must be a non-empty string"),
        ({"api_key_header": "X Key"}, "invalid header name"),
        ({"heartbeat": 0}, "heartbeat must be > 0"),
    ],
)
def test_factory_rejects_bad_settings(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_app(**kwargs)
