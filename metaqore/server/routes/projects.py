"""``/projects``: create, list (filtered, paged), read, update and delete projects."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from metaqore.core.models import Project, ProjectStatus
from metaqore.server.errors import ApiConflict
from metaqore.server.routes import (
    PAGE_DEFAULT,
    FilterText,
    Limit,
    Offset,
    ProjectId,
    Runtime,
    errors,
    location,
)
from metaqore.server.schemas import (
    ProjectCreate,
    ProjectOut,
    ProjectPage,
    ProjectUpdate,
    page_of,
)

router = APIRouter(tags=["projects"])


@router.get("/projects", response_model=ProjectPage, summary="List projects")
def list_projects(
    runtime: Runtime,
    status: ProjectStatus | None = None,
    organization: FilterText = None,
    limit: Limit = PAGE_DEFAULT,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Projects oldest first, optionally only those with a status or organization."""
    projects = [
        project
        for project in runtime.state.list_projects()
        if (status is None or project.status is status)
        and (organization is None or project.organization == organization)
    ]
    return page_of(projects, limit=limit, offset=offset, convert=ProjectOut.of)


@router.post(
    "/projects",
    response_model=ProjectOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(409),
    summary="Create a project",
)
def create_project(body: ProjectCreate, runtime: Runtime, response: Response) -> ProjectOut:
    """A new project, ``initialized``; its organization defaults to the server's."""
    fields: dict[str, Any] = {
        "name": body.name,
        "description": body.description,
        "organization": body.organization or runtime.config.organization,
        "metadata": body.metadata,
    }
    if body.id is not None:
        fields["id"] = body.id
    project = Project(**fields)
    with runtime.writing(project_id=project.id):
        if runtime.backend.get_project(project.id) is not None:
            raise ApiConflict("already_exists", f"project '{project.id}' already exists")
        runtime.state.create_project(project)
        runtime.record(
            "project_created",
            {"project_id": project.id, "organization": project.organization},
        )
    response.headers["Location"] = location("projects", project.id)
    return ProjectOut.of(project)


@router.get(
    "/projects/{project_id}",
    response_model=ProjectOut,
    responses=errors(404),
    summary="Read a project",
)
def get_project(project_id: ProjectId, runtime: Runtime) -> ProjectOut:
    return ProjectOut.of(runtime.require_project(project_id))


@router.patch(
    "/projects/{project_id}",
    response_model=ProjectOut,
    responses=errors(404, 409),
    summary="Update a project",
)
def update_project(project_id: ProjectId, body: ProjectUpdate, runtime: Runtime) -> ProjectOut:
    """Change name, description, organization, metadata or status; a status change must
    follow the transition table (else 409)."""
    updates = body.model_dump(exclude_unset=True)
    with runtime.writing(project_id=project_id):
        project = runtime.state.update_project(project_id, updates)
        runtime.record(
            "project_updated",
            {"project_id": project_id, "fields": sorted(updates), "status": project.status.value},
        )
    return ProjectOut.of(project)


@router.delete(
    "/projects/{project_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(404),
    summary="Delete a project",
)
def delete_project(project_id: ProjectId, runtime: Runtime) -> Response:
    """Deletes the project with its artifacts, tasks, conflicts and checkpoints."""
    runtime.delete_project(project_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
