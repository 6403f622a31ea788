"""``/projects/{id}/tasks``: the project's tasks, with their status transitions enforced."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from metaqore.core.models import Task, TaskStatus, current_utc
from metaqore.exceptions import NotFoundError
from metaqore.server.errors import ApiConflict
from metaqore.server.routes import (
    PAGE_DEFAULT,
    FilterText,
    Limit,
    Offset,
    ProjectId,
    Runtime,
    TaskId,
    errors,
    location,
)
from metaqore.server.runtime import ServerRuntime
from metaqore.server.schemas import TaskCreate, TaskOut, TaskPage, TaskUpdate, page_of

router = APIRouter(tags=["tasks"])


def _task(runtime: ServerRuntime, project_id: str, task_id: str) -> Task:
    runtime.require_project(project_id)
    task = runtime.state.get_task(task_id, project_id=project_id)
    if task is None:
        raise NotFoundError(f"task '{task_id}' not found in project '{project_id}'")
    return task


@router.get(
    "/projects/{project_id}/tasks",
    response_model=TaskPage,
    responses=errors(404),
    summary="List a project's tasks",
)
def list_tasks(
    project_id: ProjectId,
    runtime: Runtime,
    status: TaskStatus | None = None,
    assigned_to: FilterText = None,
    limit: Limit = PAGE_DEFAULT,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Tasks by creation time, optionally only those with a status or assignee."""
    runtime.require_project(project_id)
    tasks = [
        task
        for task in runtime.state.get_tasks(project_id)
        if (status is None or task.status is status)
        and (assigned_to is None or task.assigned_to == assigned_to)
    ]
    return page_of(tasks, limit=limit, offset=offset, convert=TaskOut.of)


@router.post(
    "/projects/{project_id}/tasks",
    response_model=TaskOut,
    status_code=status.HTTP_201_CREATED,
    responses=errors(404, 409),
    summary="Create a task",
)
def create_task(
    project_id: ProjectId, body: TaskCreate, runtime: Runtime, response: Response
) -> TaskOut:
    """A new task, ``pending``."""
    fields: dict[str, Any] = body.model_dump(exclude={"id"})
    if body.id is not None:
        fields["id"] = body.id
    task = Task(project_id=project_id, **fields)
    with runtime.writing(project_id=project_id):
        runtime.require_project(project_id)
        if runtime.state.get_task(task.id, project_id=project_id) is not None:
            raise ApiConflict(
                "already_exists", f"task '{task.id}' already exists in project '{project_id}'"
            )
        runtime.state.save_task(task)
        runtime.record("task_created", {"project_id": project_id, "task_id": task.id})
    response.headers["Location"] = location("projects", project_id, "tasks", task.id)
    return TaskOut.of(task)


@router.get(
    "/projects/{project_id}/tasks/{task_id}",
    response_model=TaskOut,
    responses=errors(404),
    summary="Read a task",
)
def get_task(project_id: ProjectId, task_id: TaskId, runtime: Runtime) -> TaskOut:
    return TaskOut.of(_task(runtime, project_id, task_id))


@router.patch(
    "/projects/{project_id}/tasks/{task_id}",
    response_model=TaskOut,
    responses=errors(404, 409),
    summary="Update a task",
)
def update_task(
    project_id: ProjectId, task_id: TaskId, body: TaskUpdate, runtime: Runtime
) -> TaskOut:
    """Change title, assignee, dependencies, metadata or status; a status change must
    follow the transition table (else 409)."""
    updates = body.model_dump(exclude_unset=True)
    with runtime.writing(project_id=project_id):
        task = _task(runtime, project_id, task_id)
        target = updates.pop("status", None)
        for key, value in updates.items():
            setattr(task, key, value)
        if target is not None and TaskStatus(target) is not task.status:
            task.transition(target)
        task.updated_at = current_utc()
        runtime.state.save_task(task)
        runtime.record(
            "task_updated",
            {
                "project_id": project_id,
                "task_id": task_id,
                "fields": sorted(body.model_fields_set),
                "status": task.status.value,
            },
        )
    return TaskOut.of(task)


@router.delete(
    "/projects/{project_id}/tasks/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(404),
    summary="Delete a task",
)
def delete_task(project_id: ProjectId, task_id: TaskId, runtime: Runtime) -> Response:
    with runtime.writing(project_id=project_id):
        _task(runtime, project_id, task_id)
        runtime.state.delete_task(task_id, project_id=project_id)
        runtime.record("task_deleted", {"project_id": project_id, "task_id": task_id})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
