"""Authentication and start-up rules of ``metaqore serve``, on real processes: the API
key (from the environment, in a configurable header, never echoed), the refusal to serve
a non-loopback address without one, and the optional ``server`` extra."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx
import pytest

from metaqore.core.audit import verify_audit_log
from metaqore.server.auth import is_loopback


def test_missing_or_wrong_key_is_401_right_key_is_2xx(server: Any) -> None:
    with httpx.Client(base_url=server.base_url) as anonymous:
        missing = anonymous.get("/projects")
        assert missing.status_code == 401
        assert missing.json() == {
            "error": "unauthorized",
            "message": "missing API key: send it in the X-API-Key header",
        }
        assert missing.headers["www-authenticate"] == 'ApiKey header="X-API-Key"'
        wrong = anonymous.get("/projects", headers={"X-API-Key": server.api_key + "x"})
        assert wrong.status_code == 401
        assert wrong.json()["message"] == "invalid API key in the X-API-Key header"
        assert anonymous.get("/projects", headers={"X-API-Key": ""}).status_code == 401
        # Refused before the body is read: no validation detail leaks to a stranger.
        unread = anonymous.post("/projects", content=b"{not json")
        assert unread.status_code == 401
        for path in ("/projects/x/artifacts", "/audit/trail", "/events", "/compliance/export"):
            assert anonymous.get(path).status_code == 401, path

        # Health and the API description are public.
        health = anonymous.get("/health")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert health.json()["store"] == {"status": "ok", "dialect": "sqlite"}
        assert anonymous.get("/openapi.json").status_code == 200
        assert anonymous.get("/docs").status_code == 200

    with server.client() as api:
        assert api.get("/projects").status_code == 200
        assert api.post("/projects", json={"name": "authorised"}).status_code == 201


def test_custom_header_and_environment_variable(start_server: Any) -> None:
    key = "another-key-0123456789abcdef"
    process = start_server(
        "--api-key-header",
        "X-Token",
        "--api-key-env",
        "MY_SERVICE_KEY",
        env={"MY_SERVICE_KEY": key},
        api_key=None,
    )
    with httpx.Client(base_url=process.base_url) as client:
        assert client.get("/projects", headers={"X-Token": key}).status_code == 200
        refused = client.get("/projects", headers={"X-API-Key": key})
        assert refused.status_code == 401
        assert "X-Token" in refused.json()["message"]
        scheme = client.get("/openapi.json").json()["components"]["securitySchemes"]
        assert scheme["ApiKeyAuth"] == {**scheme["ApiKeyAuth"], "in": "header", "name": "X-Token"}


def test_no_key_refuses_a_non_loopback_address(start_server: Any) -> None:
    process = start_server("--host", "0.0.0.0", api_key=None, ready=False)
    assert process.wait_exit() == 2
    message = process.stderr()
    assert "refusing to serve on '0.0.0.0' without an API key" in message
    assert "METAQORE_API_KEY" in message
    assert "listening on" not in message
    assert "Traceback" not in message


def test_no_key_on_loopback_serves_with_a_warning(start_server: Any) -> None:
    process = start_server(api_key=None)
    assert "warning: no API key (METAQORE_API_KEY is not set)" in process.stderr()
    assert "no API key)" in process.stderr()
    with httpx.Client(base_url=process.base_url) as client:
        assert client.get("/projects").status_code == 200


def test_the_key_is_never_written_anywhere(start_server: Any) -> None:
    process = start_server("--log-level", "debug")
    with process.client() as api:
        api.post("/projects", json={"id": "p", "name": "p"})
        api.get("/projects", headers={"X-API-Key": "wrong-" + process.api_key})
    assert process.stop() == 0
    for text in (process.stderr(), process.stdout(), process.audit_log.read_text("utf-8")):
        assert process.api_key not in text
    assert "GET /projects" in process.stdout() + process.stderr()  # the access log ran
    result = verify_audit_log(process.audit_log)
    assert result.ok, result.message
    events = process.audit_log.read_text("utf-8").splitlines()
    assert '"event_type":"server_started"' in events[0]
    assert '"event_type":"server_stopped"' in events[-1]


def test_sigint_stops_gracefully(start_server: Any) -> None:
    import signal

    process = start_server()
    process.process.send_signal(signal.SIGINT)
    assert process.wait_exit() == 0
    assert '"event_type":"server_stopped"' in process.audit_log.read_text("utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "--port must be 0-65535"),
        (["--max-body", "0"], "--max-body must be a positive number"),
        (["--api-key-header", "Bad Header"], "not a header name"),
        (["--db", "mysql://x"], "expected sqlite://"),
        (["--policy", "nope"], "nope"),
    ],
)
def test_bad_arguments_exit_2(start_server: Any, args: list[str], message: str) -> None:
    process = start_server(*args, ready=False)
    assert process.wait_exit() == 2
    assert message in process.stderr()
    assert "Traceback" not in process.stderr()


def test_port_in_use_exits_2(start_server: Any) -> None:
    first = start_server()
    port = first.base_url.rsplit(":", 1)[1]
    second = start_server("--port", port, ready=False)
    assert second.wait_exit() == 2
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr()


def test_missing_extra_names_the_install_command(tmp_path: Any) -> None:
    code = (
        "import sys\n"
        "sys.modules['fastapi'] = None  # as if the server extra were not installed\n"
        "from metaqore.cli import main\n"
        "raise SystemExit(main(['serve', '--db', 'sqlite://']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert "pip install 'metaqore[server]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_core_and_cli_import_no_web_dependency() -> None:
    code = (
        "import sys\n"
        "import metaqore, metaqore.cli, metaqore.gate, metaqore.core.state_manager\n"
        "import metaqore.server.defaults\n"
        "metaqore.cli.build_parser()\n"
        "web = sorted(m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules)\n"
        "print(','.join(web))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "10.1.2.3", "192.168.0.1"])
def test_non_loopback_hosts(host: str) -> None:
    assert not is_loopback(host)


def test_config_file_and_audit_log_options(start_server: Any, tmp_path: Any) -> None:
    config = tmp_path / "service.yaml"
    config.write_text("organization: acme\ngovernance_mode: playground\n", "utf-8")
    process = start_server("--config", str(config))
    with process.client() as api:
        created = api.post("/projects", json={"name": "configured"})
        assert created.json()["organization"] == "acme"
        report = api.get("/compliance/report").json()
        assert report["organization"] == "acme"
        assert report["by_event"]["project_created"] == 1
        started = api.get("/audit/trail", params={"event_type": "server_started"}).json()
        assert started["items"][0]["payload"]["mode"] == "playground"
    assert process.stop() == 0


def test_unwritable_audit_log_exits_2(start_server: Any) -> None:
    process = start_server(
        "--audit-log", "/proc/metaqore-cannot-write-here/audit.jsonl", ready=False
    )
    assert process.wait_exit() == 2
    assert "cannot lock the audit file /proc/metaqore-cannot-write-here/audit.jsonl" in (
        process.stderr()
    )
    assert "Traceback" not in process.stderr()
