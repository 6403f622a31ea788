"""Governance over HTTP against a real ``metaqore serve`` process: 409 conflicts and 403
vetoes as structured JSON, held blocked artifacts, conflict resolution, the blocking
report, checkpoints, the audit trail, the compliance report and export."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from server_support import ServerProcess

from metaqore.core.audit import verify_audit_log

CONFLICT_KEYS = {
    "id",
    "artifact_id",
    "project_id",
    "conflict_type",
    "severity",
    "strategy",
    "related",
    "description",
    "resolved",
    "created_at",
    "resolved_at",
}


def declare(api: httpx.Client, project: str, **fields: Any) -> httpx.Response:
    return api.post(f"/projects/{project}/artifacts", json=fields)


def resolve(api: httpx.Client, project: str, conflict_id: str, strategy: str) -> httpx.Response:
    return api.post(
        f"/projects/{project}/conflicts/{conflict_id}/resolve", json={"strategy": strategy}
    )


def blocked_by(response: httpx.Response) -> dict[str, Any]:
    """The single conflict of a 409 answer, checked for shape."""
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["error"] == "artifact_blocked"
    assert len(body["conflicts"]) == 1, body
    conflict: dict[str, Any] = body["conflicts"][0]
    assert set(conflict) == CONFLICT_KEYS
    return conflict


def test_conflict_answers_409_with_the_conflicts(api: httpx.Client, project: str) -> None:
    assert (
        declare(
            api,
            project,
            id="plan-a",
            artifact_type="plan",
            created_by="planner",
            data={"title": "A"},
        ).status_code
        == 201
    )
    response = declare(
        api, project, id="plan-b", artifact_type="plan", created_by="coder", data={"scope": "B"}
    )
    conflict = blocked_by(response)
    assert conflict["conflict_type"] == "parallel_creation"
    assert conflict["severity"] == "high"
    assert conflict["strategy"] == "merge"
    assert conflict["related"] == ["plan-a"]
    assert conflict["artifact_id"] == "plan-b"
    assert conflict["resolved"] is False
    assert "coder" in conflict["description"] and "planner" in conflict["description"]
    body = response.json()
    assert "plan-b" in body["message"]
    held = body["artifact"]
    assert held["id"] == "plan-b" and held["is_blocked"] is True
    assert held["blocked_by"][0]["id"] == conflict["id"]

    # The blocked artifact is not stored but held, and its conflict is listed.
    assert api.get(f"/projects/{project}/artifacts/plan-b").status_code == 404
    assert api.get(f"/projects/{project}/pending-artifacts/plan-b").json()["id"] == "plan-b"
    listed = api.get(f"/projects/{project}/conflicts", params={"resolved": "false"}).json()
    assert [item["id"] for item in listed["items"]] == [conflict["id"]]
    one = api.get(f"/projects/{project}/conflicts/{conflict['id']}").json()
    assert one["conflict_type"] == "parallel_creation"

    report = api.get(f"/projects/{project}/blocking-report").json()
    assert report["blocking"] is True
    assert report["blocked_artifacts"] == ["plan-b"]
    assert [item["id"] for item in report["conflicts"]] == [conflict["id"]]

    # merge: the related artifact's data merges in, and the artifact is stored.
    merged = resolve(api, project, conflict["id"], "merge")
    assert merged.status_code == 200, merged.text
    result = merged.json()
    assert result["artifact_status"] == "stored"
    assert result["conflict"]["resolved"] is True
    assert result["conflict"]["strategy"] == "merge"
    assert result["artifact"]["data"] == {"title": "A", "scope": "B"}
    stored = api.get(f"/projects/{project}/artifacts/plan-b").json()
    assert stored["data"] == {"title": "A", "scope": "B"}
    assert stored["metadata"]["merged_from"] == ["plan-a"]
    assert stored["is_blocked"] is False
    assert api.get(f"/projects/{project}/pending-artifacts").json()["total"] == 0
    assert api.get(f"/projects/{project}/blocking-report").json()["blocking"] is False

    again = resolve(api, project, conflict["id"], "merge")
    assert again.status_code == 409
    assert again.json()["error"] == "already_resolved"


def test_merge_collision_answers_409(api: httpx.Client, project: str) -> None:
    declare(api, project, id="a", artifact_type="doc", created_by="one", data={"title": "1"})
    conflict = blocked_by(
        declare(api, project, id="b", artifact_type="doc", created_by="two", data={"title": "2"})
    )
    collision = resolve(api, project, conflict["id"], "merge")
    assert collision.status_code == 409
    body = collision.json()
    assert body["error"] == "merge_collision"
    assert "title" in body["message"]
    assert body["conflicts"][0]["id"] == conflict["id"]
    # Nothing changed: still held, still blocking; override resolves it instead.
    assert api.get(f"/projects/{project}/pending-artifacts/b").json()["is_blocked"] is True
    overridden = resolve(api, project, conflict["id"], "override")
    assert overridden.json()["artifact_status"] == "stored"
    assert api.get(f"/projects/{project}/artifacts/b").json()["metadata"]["supersedes"] == ["a"]
    assert api.get(f"/projects/{project}/artifacts/a").json()["metadata"]["superseded_by"] == "b"


def test_retry_renumbers_a_version_mismatch(api: httpx.Client, project: str) -> None:
    declare(api, project, id="cfg", artifact_type="config", created_by="ops", version=1)
    conflict = blocked_by(
        declare(api, project, id="cfg2", artifact_type="config", created_by="ops", version=7)
    )
    assert conflict["conflict_type"] == "version_mismatch"
    assert conflict["strategy"] == "retry"
    result = resolve(api, project, conflict["id"], "retry").json()
    assert result["artifact_status"] == "stored"
    assert api.get(f"/projects/{project}/artifacts/cfg2").json()["version"] == 2


def test_escalate_keeps_blocking_then_retry_releases(api: httpx.Client, project: str) -> None:
    response = declare(
        api, project, id="svc", artifact_type="code", created_by="coder", depends_on=["ghost"]
    )
    conflict = blocked_by(response)
    assert conflict["conflict_type"] == "missing_dependency"

    escalated = resolve(api, project, conflict["id"], "escalate").json()
    assert escalated["artifact_status"] == "pending"
    assert escalated["conflict"]["resolved"] is False
    assert escalated["conflict"]["strategy"] == "escalate"
    assert api.get(f"/projects/{project}/blocking-report").json()["blocked_artifacts"] == ["svc"]

    # retry of a missing dependency means "declare it again": the server lets it go.
    released = resolve(api, project, conflict["id"], "retry").json()
    assert released["artifact_status"] == "released"
    assert released["artifact"] is None
    assert api.get(f"/projects/{project}/pending-artifacts/svc").status_code == 404
    assert api.get(f"/projects/{project}/artifacts/svc").status_code == 404
    assert api.get(f"/projects/{project}/blocking-report").json()["blocking"] is False


def test_artifact_with_two_conflicts_stays_pending_until_both_resolve(
    api: httpx.Client, project: str
) -> None:
    declare(api, project, id="base", artifact_type="plan", created_by="planner", data={"a": 1})
    response = declare(
        api,
        project,
        id="other",
        artifact_type="plan",
        created_by="coder",
        version=9,
        data={"c": 3},
    )
    kinds = {c["conflict_type"]: c["id"] for c in response.json()["conflicts"]}
    assert set(kinds) == {"version_mismatch", "parallel_creation"}
    first = resolve(api, project, kinds["version_mismatch"], "retry").json()
    assert first["artifact_status"] == "pending"
    assert "still blocked by 1 conflict" in first["message"]
    second = resolve(api, project, kinds["parallel_creation"], "merge").json()
    assert second["artifact_status"] == "stored"
    stored = api.get(f"/projects/{project}/artifacts/other").json()
    assert stored["version"] == 2
    assert stored["data"] == {"a": 1, "c": 3}


def test_declaring_again_replaces_the_held_declaration(api: httpx.Client, project: str) -> None:
    conflict = blocked_by(
        declare(api, project, id="job", artifact_type="code", created_by="c", depends_on=["x"])
    )
    declare(api, project, id="x", artifact_type="lib", created_by="c")
    fixed = declare(api, project, id="job", artifact_type="code", created_by="c", depends_on=["x"])
    assert fixed.status_code == 201, fixed.text
    old = api.get(f"/projects/{project}/conflicts/{conflict['id']}").json()
    assert old["resolved"] is True and old["strategy"] == "retry"
    assert api.get(f"/projects/{project}/blocking-report").json()["blocking"] is False


def test_veto_answers_403_with_the_veto(api: httpx.Client, project: str) -> None:
    response = declare(
        api,
        project,
        id="pii-report",
        artifact_type="report",
        created_by="analyst",
        data={"rows": 10},
        metadata={"llm_provider": "openrouter", "has_sensitive_data": True},
    )
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error"] == "veto"
    veto = body["veto"]
    assert set(veto) == {"reason", "policy_violated", "severity", "details"}
    assert veto["reason"] == "Provider 'openrouter' disallowed for sensitive tasks"
    assert veto["policy_violated"] == "default_local_first"
    assert veto["severity"] == "critical"
    assert veto["details"]["allowed"] == ["hmcp_gateway", "ollama"]
    assert body["context"]["artifact_id"] == "pii-report"
    # A vetoed artifact is neither stored nor held.
    assert api.get(f"/projects/{project}/artifacts/pii-report").status_code == 404
    assert api.get(f"/projects/{project}/pending-artifacts/pii-report").status_code == 404

    local = declare(
        api,
        project,
        id="pii-report",
        artifact_type="report",
        created_by="analyst",
        metadata={"llm_provider": "ollama", "has_sensitive_data": True},
    )
    assert local.status_code == 201
    assert local.json()["metadata"]["sensitivity"] == "sensitive"

    # The veto is in the audit chain, findable by project.
    vetoes = api.get("/audit/trail", params={"event_type": "veto", "project_id": project}).json()
    assert vetoes["total"] == 1
    assert vetoes["items"][0]["payload"]["veto"]["policy_violated"] == "default_local_first"


def test_checkpoints_list_create_restore(api: httpx.Client, project: str) -> None:
    declare(api, project, id="one", artifact_type="plan", created_by="p")
    created = api.post(f"/projects/{project}/checkpoints", json={"label": "before-two"})
    assert created.status_code == 201, created.text
    checkpoint = created.json()
    assert checkpoint["label"] == "before-two" and checkpoint["artifacts"] == 1
    declare(api, project, id="two", artifact_type="code", created_by="c")
    api.post(f"/projects/{project}/tasks", json={"id": "t", "title": "later"})

    detail = api.get(f"/projects/{project}/checkpoints/{checkpoint['id']}").json()
    assert set(detail["snapshot"]) == {"project", "artifacts", "tasks", "conflicts"}
    assert [a["id"] for a in detail["snapshot"]["artifacts"]] == ["one"]

    restored = api.post(f"/projects/{project}/checkpoints/{checkpoint['id']}/restore")
    assert restored.status_code == 200, restored.text
    body = restored.json()
    assert body["restored_from"] == checkpoint["id"]
    assert body["backup"]["label"].startswith("auto-backup-")
    assert body["backup"]["artifacts"] == 2
    listing = api.get(f"/projects/{project}/artifacts").json()
    assert [item["id"] for item in listing["items"]] == ["one"]
    assert api.get(f"/projects/{project}/tasks").json()["total"] == 0

    checkpoints = api.get(f"/projects/{project}/checkpoints").json()
    assert [c["label"] for c in checkpoints["items"]][:1] == ["before-two"]
    assert checkpoints["total"] == 2
    assert api.post(f"/projects/{project}/checkpoints/chk_nope/restore").status_code == 404
    default_label = api.post(f"/projects/{project}/checkpoints", json={})
    assert default_label.json()["label"] == "manual"


def test_audit_trail_filters_and_paging(api: httpx.Client, project: str) -> None:
    for number in range(3):
        declare(api, project, id=f"a{number}", artifact_type=f"t{number}", created_by="p")
    trail = api.get(
        "/audit/trail", params={"event_type": "artifact_declared", "project_id": project}
    ).json()
    assert trail["total"] == 3
    assert [r["payload"]["artifact_id"] for r in trail["items"]] == ["a0", "a1", "a2"]
    record = trail["items"][0]
    assert set(record) == {
        "seq",
        "timestamp",
        "event_type",
        "organization",
        "run_id",
        "payload",
        "prev_hash",
        "hash",
    }
    assert "data" not in record["payload"]  # content never reaches the audit file

    page = api.get(
        "/audit/trail",
        params={"project_id": project, "event_type": "artifact_declared", "limit": 1, "offset": 1},
    ).json()
    assert page["total"] == 3 and [r["payload"]["artifact_id"] for r in page["items"]] == ["a1"]
    several = api.get(
        "/audit/trail",
        params=[
            ("project_id", project),
            ("event_type", "artifact_declared"),
            ("event_type", "project_created"),
        ],
    ).json()
    assert several["total"] == 4
    after = api.get(
        "/audit/trail", params={"project_id": project, "after_seq": record["seq"]}
    ).json()
    assert all(r["seq"] > record["seq"] for r in after["items"]) and after["total"] == 2

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert api.get("/audit/trail", params={"since": future}).json()["total"] == 0
    assert (
        api.get("/audit/trail", params={"until": future, "project_id": project}).json()["total"]
        == 4
    )
    bad = api.get("/audit/trail", params={"since": "yesterday"})
    assert bad.status_code == 422
    assert bad.json()["problems"][0]["location"] == "query.since"


def test_compliance_report_json_and_text(api: httpx.Client, project: str) -> None:
    declare(
        api,
        project,
        artifact_type="report",
        created_by="a",
        metadata={"llm_provider": "openrouter", "is_security_task": True},
    )
    report = api.get("/compliance/report").json()
    assert report["organization"] == "default"
    assert report["total_events"] > 0
    assert report["by_event"]["veto"] >= 1
    assert report["policy_violations"]["default_local_first"] >= 1

    text = api.get("/compliance/report", params={"format": "text"})
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain")
    lines = text.text.splitlines()
    assert lines[0] == "Compliance Report :: default"
    assert lines[1] == "=" * len(lines[0])
    assert lines[2] == f"Total Events: {report['total_events']}"
    assert "Policy Violations" in lines


def test_compliance_export_json_and_csv(api: httpx.Client) -> None:
    awkward = 'exp,"q"-' + datetime.now(UTC).strftime("%H%M%S%f")
    assert api.post("/projects", json={"id": awkward, "name": "Export"}).status_code == 201
    path = f"/projects/{quote(awkward, safe='')}/artifacts"
    assert api.post(path, json={"artifact_type": "plan", "created_by": "p"}).status_code == 201

    exported = api.get("/compliance/export", params={"project_id": awkward}).json()
    assert exported["total"] == 2
    assert exported["filters"] == {"project_id": awkward}
    assert exported["head_hash"] == exported["records"][-1]["hash"]
    assert exported["report"]["organization"] == "default"
    assert [r["event_type"] for r in exported["records"]] == [
        "project_created",
        "artifact_declared",
    ]

    response = api.get("/compliance/export", params={"project_id": awkward, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert '"exp,""q""-' in response.text  # RFC 4180 quoting of the awkward id
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["project_id"] for row in rows] == [awkward, awkward]
    for row, record in zip(rows, exported["records"], strict=True):
        assert json.loads(row["payload"]) == record["payload"]
        assert int(row["seq"]) == record["seq"]
        assert row["hash"] == record["hash"]
    assert response.text.endswith("\r\n")


def test_the_audit_chain_stays_intact(server: Any, api: httpx.Client, project: str) -> None:
    declare(api, project, artifact_type="plan", created_by="p")
    result = verify_audit_log(server.audit_log)
    assert result.ok, result.message
    assert result.records > 1


def test_playground_mode_stores_blocked_artifacts(start_server: Any) -> None:
    process = start_server("--mode", "playground")
    with process.client() as api:
        api.post("/projects", json={"id": "p", "name": "p"})
        declare(api, "p", id="a", artifact_type="plan", created_by="one", data={"x": 1})
        stored = declare(api, "p", id="b", artifact_type="plan", created_by="two", data={"y": 2})
        assert stored.status_code == 201  # playground: reported, never blocking
        assert stored.json()["is_blocked"] is True
        conflict = stored.json()["blocked_by"][0]
        report = api.get("/projects/p/blocking-report").json()
        assert report["blocked_artifacts"] == ["b"]
        blocked = api.get("/projects/p/artifacts", params={"blocked": "true"}).json()
        assert [item["id"] for item in blocked["items"]] == ["b"]

        result = resolve(api, "p", conflict["id"], "merge").json()
        assert result["artifact_status"] == "stored_artifact"
        assert api.get("/projects/p/artifacts/b").json()["data"] == {"x": 1, "y": 2}
        assert api.get("/projects/p/blocking-report").json()["blocking"] is False


def test_conflicts_outlive_a_restart(tmp_path: Any) -> None:
    workdir = tmp_path / "restart"
    first = ServerProcess(workdir).wait_ready()
    try:
        with first.client() as api:
            api.post("/projects", json={"id": "p", "name": "p"})
            declare(api, "p", id="a", artifact_type="plan", created_by="one")
            one = blocked_by(declare(api, "p", id="b", artifact_type="plan", created_by="two"))
            two = blocked_by(declare(api, "p", id="c", artifact_type="plan", created_by="three"))
    finally:
        assert first.stop() == 0

    second = ServerProcess(workdir).wait_ready()
    try:
        with second.client() as api:
            # The held artifacts are gone with the process; their conflicts are not.
            assert api.get("/projects/p/pending-artifacts").json()["total"] == 0
            report = api.get("/projects/p/blocking-report").json()
            assert report["blocked_artifacts"] == ["b", "c"]
            refused = resolve(api, "p", one["id"], "merge")
            assert refused.status_code == 409
            assert refused.json()["error"] == "artifact_not_held"
            retried = resolve(api, "p", one["id"], "retry").json()
            assert retried["artifact_status"] == "absent"
            assert retried["conflict"]["resolved"] is True
            escalated = resolve(api, "p", two["id"], "escalate").json()
            assert escalated["conflict"]["strategy"] == "escalate"
            assert api.get("/projects/p/blocking-report").json()["blocked_artifacts"] == ["c"]
    finally:
        assert second.stop() == 0
    assert verify_audit_log(second.audit_log).ok


def test_csv_export_cannot_run_formulas_in_a_spreadsheet(api: httpx.Client) -> None:
    evil = "=HYPERLINK(1)-" + datetime.now(UTC).strftime("%H%M%S%f")
    assert api.post("/projects", json={"id": evil, "name": "Formula"}).status_code == 201
    response = api.get("/compliance/export", params={"project_id": evil, "format": "csv"})
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["project_id"] for row in rows] == ["'" + evil]  # shown as text
    for row in rows:
        assert not any(value[:1] in "=+-@" for value in row.values() if value), row


def test_signed_artifacts_are_verified_when_signatures_are_required(start_server: Any) -> None:
    from metaqore.core.canonical import content_hash
    from metaqore.core.signing import generate_keypair, sign_provenance

    pem, public = generate_keypair()
    env = {
        "METAQORE_TRUSTED_KEYS": json.dumps({"planner-key": public}),
        "METAQORE_REQUIRE_SIGNATURES": json.dumps(["public", "internal", "sensitive", "critical"]),
    }
    process = start_server(env=env)
    data = {"title": "Checkout API"}

    def signed(artifact_id: str, signature_data: dict[str, Any]) -> dict[str, Any]:
        signature = sign_provenance(
            pem,
            artifact_id=artifact_id,
            artifact_type="plan",
            version=1,
            content_hash=content_hash(signature_data),
            actor="planner",
            action="created",
        )
        return {
            "actor": "planner",
            "action": "created",
            "key_id": "planner-key",
            "signature": signature,
        }

    with process.client() as api:
        assert api.post("/projects", json={"id": "sig", "name": "Signed"}).status_code == 201
        good = declare(
            api,
            "sig",
            id="plan-a",
            artifact_type="plan",
            created_by="planner",
            version=1,
            data=data,
            provenance=[signed("plan-a", data)],
        )
        assert good.status_code == 201, good.text
        assert good.json()["provenance"][0]["key_id"] == "planner-key"
        forged = declare(
            api,
            "sig",
            id="plan-b",
            artifact_type="plan",
            created_by="planner",
            version=1,
            data={"title": "changed"},
            provenance=[signed("plan-b", data)],
        )
        assert forged.status_code == 403, forged.text
        assert forged.json()["veto"]["policy_violated"] == "provenance"
        unsigned = declare(
            api,
            "sig",
            id="plan-c",
            artifact_type="plan",
            created_by="planner",
            version=1,
            data=data,
        )
        assert unsigned.status_code == 403, unsigned.text
        stored = api.get("/projects/sig/artifacts").json()
        assert [item["id"] for item in stored["items"]] == ["plan-a"]
