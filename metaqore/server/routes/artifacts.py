"""``/projects/{id}/artifacts``: declaring artifacts through the gate, and reading them.

An artifact is never edited in place: an update is the next version, declared through
SecureGateway then PSMP like the first. A declaration PSMP blocks answers 409 with the
conflicts and is held (``/pending-artifacts``) until they are resolved.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response, status

from metaqore.core.models import Artifact
from metaqore.exceptions import NotFoundError
from metaqore.server.routes import (
    PAGE_DEFAULT,
    ArtifactId,
    FilterText,
    Limit,
    Offset,
    ProjectId,
    Runtime,
    errors,
    location,
)
from metaqore.server.runtime import ServerRuntime
from metaqore.server.schemas import (
    MAX_INT,
    ArtifactCreate,
    ArtifactOut,
    ArtifactPage,
    ArtifactVersionCreate,
    page_of,
)

router = APIRouter(tags=["artifacts"])

_DECLARE_RESPONSES = {
    **errors(403, 404),
    409: {
        "model": errors(409)[409]["model"],
        "description": "PSMP blocked the artifact: the answer lists its conflicts (each "
        "with id, conflict_type, severity, strategy, related, description) and the held "
        "artifact; resolve them with POST /projects/{project_id}/conflicts/{id}/resolve.",
    },
}


def _not_found(runtime: ServerRuntime, project_id: str, artifact_id: str) -> NotFoundError:
    if runtime.pending.get(project_id, artifact_id) is not None:
        return NotFoundError(
            f"artifact '{artifact_id}' is not stored: it is blocked, held at "
            f"/projects/{project_id}/pending-artifacts/{artifact_id}"
        )
    return NotFoundError(f"artifact '{artifact_id}' not found in project '{project_id}'")


def _declared(
    runtime: ServerRuntime,
    response: Response,
    project_id: str,
    artifact_id: str | None,
    body: ArtifactCreate | ArtifactVersionCreate,
    artifact_type: str,
) -> ArtifactOut:
    fields: dict[str, Any] = {
        "artifact_type": artifact_type,
        "data": body.data,
        "created_by": body.created_by,
        "depends_on": body.depends_on,
        "metadata": body.metadata,
        "iteration": body.iteration,
    }
    artifact = runtime.declare(
        project_id,
        artifact_id=artifact_id,
        version=body.version,
        fields=fields,
        provenance=[entry.model_dump() for entry in body.provenance],
    )
    response.headers["Location"] = location("projects", project_id, "artifacts", artifact.id)
    return ArtifactOut.of(artifact)


@router.get(
    "/projects/{project_id}/artifacts",
    response_model=ArtifactPage,
    responses=errors(404),
    summary="List a project's stored artifacts",
)
def list_artifacts(
    project_id: ProjectId,
    runtime: Runtime,
    artifact_type: FilterText = None,
    created_by: FilterText = None,
    blocked: bool | None = Query(
        default=None, description="Only blocked (true) or only unblocked (false) artifacts."
    ),
    latest: bool = Query(default=False, description="Only the highest version of each id."),
    limit: Limit = PAGE_DEFAULT,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Stored artifact versions, by version then creation time."""
    runtime.require_project(project_id)
    artifacts = runtime.state.list_artifacts(project_id)
    if latest:
        newest: dict[str, Artifact] = {}
        for artifact in artifacts:
            current = newest.get(artifact.id)
            if current is None or artifact.version >= current.version:
                newest[artifact.id] = artifact
        artifacts = [a for a in artifacts if newest[a.id] is a]
    selected = [
        artifact
        for artifact in artifacts
        if (artifact_type is None or artifact.artifact_type == artifact_type)
        and (created_by is None or artifact.created_by == created_by)
        and (blocked is None or artifact.is_blocked is blocked)
    ]
    return page_of(selected, limit=limit, offset=offset, convert=ArtifactOut.of)


@router.post(
    "/projects/{project_id}/artifacts",
    response_model=ArtifactOut,
    status_code=status.HTTP_201_CREATED,
    responses=_DECLARE_RESPONSES,
    summary="Declare an artifact (SecureGateway, then PSMP)",
)
def declare_artifact(
    project_id: ProjectId, body: ArtifactCreate, runtime: Runtime, response: Response
) -> ArtifactOut:
    """201 with the stored artifact; 403 with the veto when SecureGateway refuses its
    routing; 409 with the conflicts when PSMP blocks it (the artifact is then held until
    they are resolved)."""
    return _declared(runtime, response, project_id, body.id, body, body.artifact_type)


@router.get(
    "/projects/{project_id}/artifacts/{artifact_id}",
    response_model=ArtifactOut,
    responses=errors(404),
    summary="Read an artifact",
)
def get_artifact(
    project_id: ProjectId,
    artifact_id: ArtifactId,
    runtime: Runtime,
    version: int | None = Query(default=None, ge=1, le=MAX_INT, description="Default: latest."),
) -> ArtifactOut:
    runtime.require_project(project_id)
    artifact = runtime.state.get_artifact(artifact_id, project_id=project_id, version=version)
    if artifact is None:
        if version is not None and runtime.state.get_artifact(artifact_id, project_id=project_id):
            raise NotFoundError(f"artifact '{artifact_id}' has no version {version}")
        raise _not_found(runtime, project_id, artifact_id)
    return ArtifactOut.of(artifact)


@router.get(
    "/projects/{project_id}/artifacts/{artifact_id}/versions",
    response_model=ArtifactPage,
    responses=errors(404),
    summary="List an artifact's versions",
)
def list_versions(
    project_id: ProjectId,
    artifact_id: ArtifactId,
    runtime: Runtime,
    limit: Limit = PAGE_DEFAULT,
    offset: Offset = 0,
) -> dict[str, Any]:
    runtime.require_project(project_id)
    versions = [a for a in runtime.state.list_artifacts(project_id) if a.id == artifact_id]
    if not versions:
        raise _not_found(runtime, project_id, artifact_id)
    return page_of(versions, limit=limit, offset=offset, convert=ArtifactOut.of)


@router.post(
    "/projects/{project_id}/artifacts/{artifact_id}/versions",
    response_model=ArtifactOut,
    status_code=status.HTTP_201_CREATED,
    responses=_DECLARE_RESPONSES,
    summary="Declare the next version of an artifact (the update)",
)
def declare_version(
    project_id: ProjectId,
    artifact_id: ArtifactId,
    body: ArtifactVersionCreate,
    runtime: Runtime,
    response: Response,
) -> ArtifactOut:
    """Artifacts are versioned, never edited: this declares the next version through the
    same gate as the first (201, 403 or 409)."""
    runtime.require_project(project_id)
    current = runtime.state.get_artifact(artifact_id, project_id=project_id)
    if current is None:
        raise _not_found(runtime, project_id, artifact_id)
    artifact_type = body.artifact_type or current.artifact_type
    return _declared(runtime, response, project_id, artifact_id, body, artifact_type)


@router.delete(
    "/projects/{project_id}/artifacts/{artifact_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(404),
    summary="Delete an artifact",
)
def delete_artifact(project_id: ProjectId, artifact_id: ArtifactId, runtime: Runtime) -> Response:
    """Deletes every stored version, its conflicts, and a held blocked declaration."""
    runtime.delete_artifact(project_id, artifact_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/projects/{project_id}/pending-artifacts",
    response_model=ArtifactPage,
    responses=errors(404),
    summary="List blocked artifacts held until their conflicts are resolved",
    tags=["governance"],
)
def list_pending(
    project_id: ProjectId,
    runtime: Runtime,
    limit: Limit = PAGE_DEFAULT,
    offset: Offset = 0,
) -> dict[str, Any]:
    runtime.require_project(project_id)
    held = runtime.pending.for_project(project_id)
    return page_of(held, limit=limit, offset=offset, convert=ArtifactOut.of)


@router.get(
    "/projects/{project_id}/pending-artifacts/{artifact_id}",
    response_model=ArtifactOut,
    responses=errors(404),
    summary="Read a held blocked artifact",
    tags=["governance"],
)
def get_pending(project_id: ProjectId, artifact_id: ArtifactId, runtime: Runtime) -> ArtifactOut:
    runtime.require_project(project_id)
    artifact = runtime.pending.get(project_id, artifact_id)
    if artifact is None:
        raise NotFoundError(
            f"no blocked artifact '{artifact_id}' is held for project '{project_id}'"
        )
    return ArtifactOut.of(artifact)
