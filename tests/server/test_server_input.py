"""Bad input against a real ``metaqore serve`` process: every one is a 4xx whose message
names the field and what was expected, and none shows a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

MAX_BODY = 65536  # the shared server's --max-body


def post_raw(api: httpx.Client, path: str, content: bytes | str, **headers: str) -> httpx.Response:
    return api.post(path, content=content, headers={"Content-Type": "application/json", **headers})


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["error"] == code, body
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body


def test_malformed_json_names_line_and_column(api: httpx.Client) -> None:
    body = assert_error(post_raw(api, "/projects", '{\n  "name": "x",\n}'), 400, "malformed_json")
    assert "line 3 column 1" in body["message"]
    assert body["problems"][0]["location"] == "body (line 3, column 1)"


def test_not_json_at_all(api: httpx.Client) -> None:
    assert_error(post_raw(api, "/projects", "name=x"), 400, "malformed_json")
    body = assert_error(
        api.post("/projects", content='{"name": "x"}', headers={"Content-Type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    assert "application/json" in body["message"]
    body = assert_error(post_raw(api, "/projects", "[1, 2]"), 422, "validation_error")
    assert body["problems"] == [
        {"location": "body", "message": "got a list", "expected": "a JSON object"}
    ]
    body = assert_error(api.post("/projects"), 422, "validation_error")
    assert body["problems"][0]["message"] == "a JSON body is required"


def test_wrong_types_name_the_field_and_the_expectation(api: httpx.Client, project: str) -> None:
    body = assert_error(api.post("/projects", json={"name": 5}), 422, "validation_error")
    assert body["problems"] == [
        {"location": "body.name", "message": "got an integer", "expected": "a valid string"}
    ]
    assert body["message"] == "body.name: got an integer (expected a valid string)"

    artifact = {"artifact_type": "plan", "created_by": "p"}
    for field, value, expected in [
        ("version", "2", "a valid integer"),
        ("version", True, "a valid integer"),
        ("version", 2.5, "a valid integer"),
        ("depends_on", "other", "a valid list"),
        ("data", [1], "a JSON object"),
    ]:
        body = assert_error(
            api.post(f"/projects/{project}/artifacts", json={**artifact, field: value}),
            422,
            "validation_error",
        )
        problem = body["problems"][0]
        assert problem["location"] == f"body.{field}", body
        assert problem["expected"] == expected, body

    # 3.0 is the integer 3 in JSON (and in JSON Schema)
    ok = api.post(f"/projects/{project}/artifacts", json={**artifact, "version": 1.0})
    assert ok.status_code == 201, ok.text

    body = assert_error(
        api.patch(f"/projects/{project}", json={"status": "done"}), 422, "validation_error"
    )
    assert body["problems"][0]["location"] == "body.status"
    assert "'planning'" in body["problems"][0]["expected"]
    body = assert_error(
        api.post(f"/projects/{project}/conflicts/conf_x/resolve", json={"strategy": "ignore"}),
        422,
        "validation_error",
    )
    assert body["problems"][0]["expected"] == "'retry', 'override', 'merge' or 'escalate'"


def test_unknown_and_missing_fields(api: httpx.Client) -> None:
    body = assert_error(
        api.post("/projects", json={"name": "x", "descripton": "typo"}), 422, "validation_error"
    )
    assert body["problems"][0]["location"] == "body.descripton"
    assert (
        body["problems"][0]["message"] == "unknown key 'descripton' (did you mean 'description'?)"
    )
    body = assert_error(api.post("/projects", json={}), 422, "validation_error")
    assert body["problems"][0]["message"] == "missing required key 'name'"


def test_unstorable_json(api: httpx.Client, project: str) -> None:
    body = assert_error(
        post_raw(
            api,
            f"/projects/{project}/artifacts",
            '{"artifact_type": "a", "created_by": "b", "data": {"x": [1, NaN]}}',
        ),
        422,
        "validation_error",
    )
    assert "data.x[1]: numbers must be finite" in body["message"]
    nested: dict[str, Any] = {}
    cursor = nested
    for _ in range(80):
        cursor["k"] = {}
        cursor = cursor["k"]
    body = assert_error(
        api.post(
            f"/projects/{project}/artifacts",
            json={"artifact_type": "a", "created_by": "b", "data": nested},
        ),
        422,
        "validation_error",
    )
    assert "nested deeper than" in body["message"]
    # Deeper than the JSON parser itself will go: still a clean 400.
    assert_error(post_raw(api, "/projects", "[" * 50_000), 400, "bad_request")


def test_bad_ids_and_query_values(api: httpx.Client) -> None:
    body = assert_error(
        api.post("/projects", json={"id": "a/b", "name": "x"}), 422, "validation_error"
    )
    assert body["problems"][0]["location"] == "body.id"
    assert "'/'" in body["problems"][0]["message"]
    body = assert_error(api.get("/projects/a%01b"), 422, "validation_error")
    assert body["problems"][0]["location"] == "path.project_id"
    body = assert_error(
        api.get("/projects", params={"limit": 0, "offset": -1}), 422, "validation_error"
    )
    assert [p["location"] for p in body["problems"]] == ["query.limit", "query.offset"]
    body = assert_error(api.get("/projects", params={"limit": "ten"}), 422, "validation_error")
    assert "valid integer" in body["message"]


def test_oversize_body_with_content_length_is_refused_unread(api: httpx.Client) -> None:
    body = assert_error(
        api.post("/projects", json={"name": "x", "metadata": {"blob": "x" * MAX_BODY}}),
        413,
        "payload_too_large",
    )
    assert f"limit of {MAX_BODY} bytes" in body["message"]


def test_oversize_chunked_body_is_refused(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "x", "metadata": {"blob": "'
        for _ in range(40):
            yield b"x" * 4096
        yield b'"}}'

    response = api.post("/projects", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    body = assert_error(response, 413, "payload_too_large")
    assert str(MAX_BODY) in body["message"]


def test_small_chunked_body_is_accepted(api: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": '
        yield b'"chunked"}'

    response = api.post("/projects", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text


def test_unknown_route_and_method(api: httpx.Client) -> None:
    assert_error(api.get("/nowhere"), 404, "not_found")
    response = api.put("/projects")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, POST"


@pytest.mark.parametrize(
    "content_length",
    ["abc", "-5"],
)
def test_invalid_content_length(server: Any, content_length: str) -> None:
    # httpx will not send a bad Content-Length: write the request by hand.
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(server.base_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            (
                "POST /projects HTTP/1.1\r\nHost: x\r\n"
                f"X-API-Key: {server.api_key}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {content_length}\r\nConnection: close\r\n\r\n"
            ).encode()
        )
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400"), reply
    assert b"Traceback" not in reply


def test_an_empty_event_type_filter_is_rejected(api: httpx.Client) -> None:
    for path in ("/compliance/export", "/audit/trail"):
        response = api.get(path, params={"event_type": ""})
        assert response.status_code == 422, (path, response.text)
        assert "event_type" in response.text
    ok = api.get("/compliance/export", params={"event_type": ["veto", "run_started"]})
    assert ok.status_code == 200, ok.text
