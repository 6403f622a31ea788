"""Governance: the blocking report, conflicts and their resolution, checkpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from metaqore.core.models import ConflictSeverity
from metaqore.exceptions import NotFoundError
from metaqore.server.routes import (
    PAGE_DEFAULT,
    CheckpointId,
    ConflictId,
    FilterText,
    Limit,
    Offset,
    ProjectId,
    Runtime,
    errors,
    location,
)
from metaqore.server.schemas import (
    ArtifactOut,
    BlockingReportOut,
    CheckpointCreate,
    CheckpointDetail,
    CheckpointOut,
    CheckpointPage,
    ConflictOut,
    ConflictPage,
    ProjectOut,
    ResolutionOut,
    ResolveRequest,
    RestoreOut,
    page_of,
)

router = APIRouter(tags=["governance"])


@router.get(
    "/projects/{project_id}/blocking-report",
    response_model=BlockingReportOut,
    responses=errors(404),
    summary="What blocks a project",
)
def blocking_report(project_id: ProjectId, runtime: Runtime) -> BlockingReportOut:
    """The blocked artifacts (stored, or held pending) and their unresolved conflicts."""
    return BlockingReportOut.of(runtime.blocking_report(project_id))


@router.get(
    "/projects/{project_id}/conflicts",
    response_model=ConflictPage,
    responses=errors(404),
    summary="List a project's conflicts",
)
def list_conflicts(
    project_id: ProjectId,
    runtime: Runtime,
    resolved: bool | None = None,
    artifact_id: FilterText = None,
    conflict_type: FilterText = None,
    severity: ConflictSeverity | None = None,
    limit: Limit = PAGE_DEFAULT,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Every conflict PSMP found in the project, oldest first."""
    runtime.require_project(project_id)
    conflicts = [
        conflict
        for conflict in runtime.state.list_conflicts(project_id)
        if (resolved is None or conflict.resolved is resolved)
        and (artifact_id is None or conflict.artifact_id == artifact_id)
        and (conflict_type is None or conflict.conflict_type == conflict_type)
        and (severity is None or conflict.severity is severity)
    ]
    return page_of(conflicts, limit=limit, offset=offset, convert=ConflictOut.of)


@router.get(
    "/projects/{project_id}/conflicts/{conflict_id}",
    response_model=ConflictOut,
    responses=errors(404),
    summary="Read a conflict",
)
def get_conflict(project_id: ProjectId, conflict_id: ConflictId, runtime: Runtime) -> ConflictOut:
    runtime.require_project(project_id)
    conflict = runtime.state.get_conflict(conflict_id)
    if conflict is None or conflict.project_id != project_id:
        raise NotFoundError(f"conflict '{conflict_id}' not found in project '{project_id}'")
    return ConflictOut.of(conflict)


@router.post(
    "/projects/{project_id}/conflicts/{conflict_id}/resolve",
    response_model=ResolutionOut,
    responses=errors(404, 409),
    summary="Resolve a conflict with a strategy",
)
def resolve_conflict(
    project_id: ProjectId, conflict_id: ConflictId, body: ResolveRequest, runtime: Runtime
) -> ResolutionOut:
    """Applies ``retry`` (a version mismatch is renumbered; otherwise the agent declares
    again), ``override`` (the artifact supersedes the related ones), ``merge`` (the related
    artifacts' data merged in; colliding keys answer 409 merge_collision) or ``escalate``
    (handed to a human: it stays blocking). When the last conflict of a held artifact is
    resolved, the artifact is stored."""
    result = runtime.resolve(project_id, conflict_id, body.strategy)
    return ResolutionOut(
        conflict=ConflictOut.of(result.conflict),
        artifact_status=result.artifact_status,
        artifact=ArtifactOut.of(result.artifact) if result.artifact is not None else None,
        message=result.message,
    )


@router.get(
    "/projects/{project_id}/checkpoints",
    response_model=CheckpointPage,
    responses=errors(404),
    summary="List a project's checkpoints",
)
def list_checkpoints(
    project_id: ProjectId,
    runtime: Runtime,
    limit: Limit = PAGE_DEFAULT,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Checkpoints oldest first (without their snapshots)."""
    runtime.require_project(project_id)
    checkpoints = runtime.state.get_checkpoints(project_id)
    return page_of(checkpoints, limit=limit, offset=offset, convert=CheckpointOut.of)


@router.post(
    "/projects/{project_id}/checkpoints",
    response_model=CheckpointOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(404),
    summary="Snapshot a project now",
)
def create_checkpoint(
    project_id: ProjectId, body: CheckpointCreate, runtime: Runtime, response: Response
) -> CheckpointOut:
    checkpoint = runtime.create_checkpoint(project_id, body.label)
    response.headers["Location"] = location("projects", project_id, "checkpoints", checkpoint.id)
    return CheckpointOut.of(checkpoint)


@router.get(
    "/projects/{project_id}/checkpoints/{checkpoint_id}",
    response_model=CheckpointDetail,
    responses=errors(404),
    summary="Read a checkpoint with its snapshot",
)
def get_checkpoint(
    project_id: ProjectId, checkpoint_id: CheckpointId, runtime: Runtime
) -> CheckpointDetail:
    return CheckpointDetail.of(runtime.get_checkpoint(project_id, checkpoint_id))


@router.post(
    "/projects/{project_id}/checkpoints/{checkpoint_id}/restore",
    response_model=RestoreOut,
    responses=errors(404),
    summary="Restore a project from a checkpoint",
)
def restore_checkpoint(
    project_id: ProjectId, checkpoint_id: CheckpointId, runtime: Runtime
) -> RestoreOut:
    """Saves the current state as an auto-backup checkpoint first, then puts the project
    back as the checkpoint saw it. Blocked artifacts held for the project are let go."""
    project, backup = runtime.restore_checkpoint(project_id, checkpoint_id)
    return RestoreOut(
        project=ProjectOut.of(project),
        restored_from=checkpoint_id,
        backup=CheckpointOut.of(backup) if backup is not None else None,
    )
