"""Projects, tasks and artifacts over HTTP against a real ``metaqore serve`` process:
create / read / update / delete, pagination and filters."""

from __future__ import annotations

import secrets

import httpx
import pytest


def _ids(page: dict[str, object]) -> list[str]:
    items = page["items"]
    assert isinstance(items, list)
    return [item["id"] for item in items]


# -- projects ------------------------------------------------------------------------------


def test_project_lifecycle(api: httpx.Client) -> None:
    project_id = f"shop-{secrets.token_hex(3)}"
    created = api.post(
        "/projects",
        json={"id": project_id, "name": "Shop", "description": "checkout", "metadata": {"a": 1}},
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/projects/{project_id}"
    body = created.json()
    assert body["status"] == "initialized"
    assert body["organization"] == "default"  # the server's configured organization

    again = api.post("/projects", json={"id": project_id, "name": "Shop"})
    assert again.status_code == 409
    assert again.json()["error"] == "already_exists"

    assert api.get(f"/projects/{project_id}").json()["name"] == "Shop"

    updated = api.patch(f"/projects/{project_id}", json={"name": "Shop 2", "status": "planning"})
    assert updated.status_code == 200, updated.text
    assert updated.json()["name"] == "Shop 2"
    assert updated.json()["status"] == "planning"

    # planning -> completed is not in the transition table
    refused = api.patch(f"/projects/{project_id}", json={"status": "completed"})
    assert refused.status_code == 409
    assert refused.json()["error"] == "invalid_transition"
    assert "planning -> completed" in refused.json()["message"]
    assert api.get(f"/projects/{project_id}").json()["status"] == "planning"

    nulled = api.patch(f"/projects/{project_id}", json={"name": None})
    assert nulled.status_code == 422
    assert "'name' cannot be null" in nulled.json()["message"]
    cleared = api.patch(f"/projects/{project_id}", json={"description": None})
    assert cleared.status_code == 200
    assert cleared.json()["description"] is None

    assert api.delete(f"/projects/{project_id}").status_code == 204
    missing = api.get(f"/projects/{project_id}")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "not_found",
        "message": f"project '{project_id}' not found",
    }
    assert api.delete(f"/projects/{project_id}").status_code == 404


def test_project_generated_id(api: httpx.Client) -> None:
    response = api.post("/projects", json={"name": "No id given"})
    assert response.status_code == 201
    project_id = response.json()["id"]
    assert project_id.startswith("proj_") and len(project_id) == len("proj_") + 12


def test_projects_pagination_and_filters(api: httpx.Client) -> None:
    organization = f"org-{secrets.token_hex(3)}"
    made = []
    for number in range(5):
        response = api.post("/projects", json={"name": f"p{number}", "organization": organization})
        made.append(response.json()["id"])
    api.patch(f"/projects/{made[0]}", json={"status": "planning"})

    first = api.get("/projects", params={"organization": organization, "limit": 2}).json()
    assert first["total"] == 5 and first["limit"] == 2 and first["offset"] == 0
    assert _ids(first) == made[:2]
    rest = api.get(
        "/projects", params={"organization": organization, "limit": 2, "offset": 4}
    ).json()
    assert _ids(rest) == made[4:]
    planning = api.get(
        "/projects", params={"organization": organization, "status": "planning"}
    ).json()
    assert _ids(planning) == [made[0]]

    too_big = api.get("/projects", params={"limit": 501})
    assert too_big.status_code == 422
    assert too_big.json()["problems"][0]["location"] == "query.limit"
    bad_status = api.get("/projects", params={"status": "done"})
    assert bad_status.status_code == 422
    assert "query.status" in bad_status.json()["message"]


# -- tasks ---------------------------------------------------------------------------------


def test_task_lifecycle(api: httpx.Client, project: str) -> None:
    created = api.post(
        f"/projects/{project}/tasks",
        json={"id": "t-1", "title": "Design API", "assigned_to": "planner"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "pending"
    assert (
        api.post(f"/projects/{project}/tasks", json={"id": "t-1", "title": "x"}).status_code == 409
    )

    moved = api.patch(f"/projects/{project}/tasks/t-1", json={"status": "in_progress"})
    assert moved.json()["status"] == "in_progress"
    done = api.patch(f"/projects/{project}/tasks/t-1", json={"status": "completed"})
    assert done.json()["status"] == "completed"
    assert done.json()["completed_at"] is not None

    # completed is terminal
    reopened = api.patch(f"/projects/{project}/tasks/t-1", json={"status": "pending"})
    assert reopened.status_code == 409
    assert reopened.json()["error"] == "invalid_transition"
    renamed = api.patch(f"/projects/{project}/tasks/t-1", json={"title": "Design the API"})
    assert renamed.json()["title"] == "Design the API"
    assert renamed.json()["status"] == "completed"

    assert api.get(f"/projects/{project}/tasks/t-1").json()["title"] == "Design the API"
    assert api.delete(f"/projects/{project}/tasks/t-1").status_code == 204
    assert api.get(f"/projects/{project}/tasks/t-1").status_code == 404
    assert api.post("/projects/no-such-project/tasks", json={"title": "x"}).status_code == 404


def test_tasks_pagination_and_filters(api: httpx.Client, project: str) -> None:
    for number in range(4):
        api.post(
            f"/projects/{project}/tasks",
            json={"id": f"t{number}", "title": f"task {number}", "assigned_to": f"a{number % 2}"},
        )
    api.patch(f"/projects/{project}/tasks/t2", json={"status": "blocked"})

    page = api.get(f"/projects/{project}/tasks", params={"limit": 3}).json()
    assert page["total"] == 4 and _ids(page) == ["t0", "t1", "t2"]
    assert _ids(api.get(f"/projects/{project}/tasks", params={"offset": 3}).json()) == ["t3"]
    assert _ids(api.get(f"/projects/{project}/tasks", params={"status": "blocked"}).json()) == [
        "t2"
    ]
    assert _ids(api.get(f"/projects/{project}/tasks", params={"assigned_to": "a1"}).json()) == [
        "t1",
        "t3",
    ]


# -- artifacts -----------------------------------------------------------------------------


def test_artifact_declare_read_version_delete(api: httpx.Client, project: str) -> None:
    created = api.post(
        f"/projects/{project}/artifacts",
        json={
            "id": "api-plan",
            "artifact_type": "plan",
            "created_by": "planner",
            "data": {"title": "Checkout API"},
        },
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/projects/{project}/artifacts/api-plan"
    artifact = created.json()
    assert artifact["version"] == 1
    assert artifact["is_blocked"] is False
    assert artifact["content_hash"].startswith("sha256:")
    assert artifact["metadata"]["sensitivity"] == "internal"  # a plan is internal work

    # The update is the next version, through the same gate.
    second = api.post(
        f"/projects/{project}/artifacts/api-plan/versions",
        json={"created_by": "planner", "data": {"title": "Checkout API v2"}},
    )
    assert second.status_code == 201, second.text
    assert second.json()["version"] == 2
    assert second.json()["artifact_type"] == "plan"

    assert api.get(f"/projects/{project}/artifacts/api-plan").json()["version"] == 2
    first = api.get(f"/projects/{project}/artifacts/api-plan", params={"version": 1}).json()
    assert first["data"] == {"title": "Checkout API"}
    absent = api.get(f"/projects/{project}/artifacts/api-plan", params={"version": 9})
    assert absent.status_code == 404
    assert "no version 9" in absent.json()["message"]
    versions = api.get(f"/projects/{project}/artifacts/api-plan/versions").json()
    assert [item["version"] for item in versions["items"]] == [1, 2]

    assert api.delete(f"/projects/{project}/artifacts/api-plan").status_code == 204
    assert api.get(f"/projects/{project}/artifacts/api-plan").status_code == 404
    assert api.delete(f"/projects/{project}/artifacts/api-plan").status_code == 404
    assert (
        api.post(
            f"/projects/{project}/artifacts/api-plan/versions", json={"created_by": "planner"}
        ).status_code
        == 404
    )


def test_artifact_in_unknown_project(api: httpx.Client) -> None:
    response = api.post(
        "/projects/nowhere/artifacts", json={"artifact_type": "plan", "created_by": "a"}
    )
    assert response.status_code == 404
    assert response.json()["message"] == "project 'nowhere' not found"


def test_artifacts_pagination_and_filters(api: httpx.Client, project: str) -> None:
    def declare(artifact_id: str, artifact_type: str, agent: str, iteration: int) -> None:
        response = api.post(
            f"/projects/{project}/artifacts",
            json={
                "id": artifact_id,
                "artifact_type": artifact_type,
                "created_by": agent,
                "iteration": iteration,
            },
        )
        assert response.status_code in (201, 409), response.text

    declare("plan-a", "plan", "planner", 1)
    declare("code-a", "code", "coder", 1)
    declare("code-b", "code", "coder", 2)
    declare("code-c", "code", "reviewer", 2)  # competes with code-b: blocked, not stored

    listing = api.get(f"/projects/{project}/artifacts").json()
    assert listing["total"] == 3
    assert sorted(_ids(listing)) == ["code-a", "code-b", "plan-a"]
    code = api.get(f"/projects/{project}/artifacts", params={"artifact_type": "code"}).json()
    assert sorted(_ids(code)) == ["code-a", "code-b"]
    by_planner = api.get(f"/projects/{project}/artifacts", params={"created_by": "planner"})
    assert _ids(by_planner.json()) == ["plan-a"]
    page = api.get(f"/projects/{project}/artifacts", params={"limit": 1, "offset": 1}).json()
    assert page["total"] == 3 and len(page["items"]) == 1
    assert (
        api.get(f"/projects/{project}/artifacts", params={"blocked": "true"}).json()["total"] == 0
    )
    assert (
        api.get(f"/projects/{project}/artifacts", params={"blocked": "false"}).json()["total"] == 3
    )

    pending = api.get(f"/projects/{project}/pending-artifacts").json()
    assert _ids(pending) == ["code-c"]
    assert pending["items"][0]["is_blocked"] is True
    not_stored = api.get(f"/projects/{project}/artifacts/code-c")
    assert not_stored.status_code == 404
    assert "pending-artifacts/code-c" in not_stored.json()["message"]

    api.post(
        f"/projects/{project}/artifacts/plan-a/versions",
        json={"created_by": "planner", "iteration": 1},
    )
    latest = api.get(f"/projects/{project}/artifacts", params={"latest": "true"}).json()
    assert sorted((item["id"], item["version"]) for item in latest["items"]) == [
        ("code-a", 1),
        ("code-b", 2),
        ("plan-a", 2),
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/projects/none/tasks/none",
        "/projects/none/artifacts/none",
        "/projects/none/artifacts/none/versions",
        "/projects/none/pending-artifacts/none",
        "/projects/none/conflicts/none",
        "/projects/none/checkpoints/none",
        "/projects/none/blocking-report",
    ],
)
def test_unknown_resources_are_404_json(api: httpx.Client, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "not_found"
