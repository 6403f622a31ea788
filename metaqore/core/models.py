"""Pydantic models of the governance domain: artifacts, projects, tasks, conflicts, vetoes."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    computed_field,
    field_validator,
    model_validator,
)

from metaqore.core.canonical import content_hash as _content_hash
from metaqore.exceptions import InvalidTransitionError


def current_utc() -> datetime:
    """A timezone-aware UTC timestamp."""
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """``<prefix>_`` followed by 12 random hex characters."""
    return f"{prefix}_{secrets.token_hex(6)}"


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class MetaQoreModel(BaseModel):
    """Base model: unknown fields are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)

    @field_validator("*", mode="after")
    @classmethod
    def _timestamps_in_utc(cls, value: Any) -> Any:
        # Naive datetimes are read as UTC; aware ones are converted to UTC.
        if isinstance(value, datetime):
            return _as_utc(value)
        return value

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class ProjectStatus(str, Enum):
    INITIALIZED = "initialized"
    PLANNING = "planning"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    BLOCKED = "blocked"
    ARCHIVED = "archived"


class TaskStatus(str, Enum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    BLOCKED = "blocked"


PROJECT_TRANSITIONS: dict[ProjectStatus, frozenset[ProjectStatus]] = {
    ProjectStatus.INITIALIZED: frozenset({ProjectStatus.PLANNING, ProjectStatus.ARCHIVED}),
    ProjectStatus.PLANNING: frozenset(
        {ProjectStatus.IN_PROGRESS, ProjectStatus.BLOCKED, ProjectStatus.ARCHIVED}
    ),
    ProjectStatus.IN_PROGRESS: frozenset(
        {
            ProjectStatus.COMPLETED,
            ProjectStatus.FAILED,
            ProjectStatus.BLOCKED,
            ProjectStatus.ARCHIVED,
        }
    ),
    ProjectStatus.BLOCKED: frozenset({ProjectStatus.IN_PROGRESS, ProjectStatus.ARCHIVED}),
    ProjectStatus.COMPLETED: frozenset({ProjectStatus.ARCHIVED}),
    ProjectStatus.FAILED: frozenset({ProjectStatus.ARCHIVED}),
    ProjectStatus.ARCHIVED: frozenset(),
}

TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset({TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED}),
    TaskStatus.IN_PROGRESS: frozenset(
        {TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.BLOCKED}
    ),
    TaskStatus.BLOCKED: frozenset({TaskStatus.PENDING, TaskStatus.IN_PROGRESS}),
    TaskStatus.FAILED: frozenset({TaskStatus.PENDING}),
    TaskStatus.COMPLETED: frozenset(),
}


def transition_allowed(entity: str, from_status: str, to_status: str) -> bool:
    """Whether ``entity`` (``task`` or ``project``) may go from one status to another.

    Unknown statuses are never allowed. Staying in the same status is not a transition.
    """
    try:
        if entity == "task":
            return TaskStatus(to_status) in TASK_TRANSITIONS[TaskStatus(from_status)]
        if entity == "project":
            return ProjectStatus(to_status) in PROJECT_TRANSITIONS[ProjectStatus(from_status)]
    except ValueError:
        return False
    return False


class ConflictSeverity(str, Enum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    ConflictSeverity.LOW: 0,
    ConflictSeverity.MEDIUM: 1,
    ConflictSeverity.HIGH: 2,
    ConflictSeverity.CRITICAL: 3,
}


class TaskSensitivity(str, Enum):
    """How sensitive a task's data is: public < internal < sensitive < critical."""

    PUBLIC = "public"
    INTERNAL = "internal"
    SENSITIVE = "sensitive"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SENSITIVITY_ORDER.index(self)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, TaskSensitivity):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, TaskSensitivity):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, TaskSensitivity):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, TaskSensitivity):
            return NotImplemented
        return self.rank >= other.rank


_SENSITIVITY_ORDER = (
    TaskSensitivity.PUBLIC,
    TaskSensitivity.INTERNAL,
    TaskSensitivity.SENSITIVE,
    TaskSensitivity.CRITICAL,
)


class ResolutionStrategy(str, Enum):
    RETRY = "retry"
    OVERRIDE = "override"
    MERGE = "merge"
    ESCALATE = "escalate"


class Conflict(MetaQoreModel):
    """A blocking issue PSMP found on an artifact."""

    id: str = Field(default_factory=lambda: new_id("conf"))
    artifact_id: str
    project_id: str | None = None
    description: str
    severity: ConflictSeverity = ConflictSeverity.MEDIUM
    conflict_type: str = "generic"
    resolution_strategy: ResolutionStrategy = ResolutionStrategy.RETRY
    related: list[str] = Field(default_factory=list)
    resolved: bool = False
    created_at: datetime = Field(default_factory=current_utc)
    resolved_at: datetime | None = None

    def mark_resolved(self, strategy: ResolutionStrategy | str) -> None:
        self.resolution_strategy = ResolutionStrategy(strategy)
        self.resolved = True
        self.resolved_at = current_utc()


class VetoReason(MetaQoreModel):
    """Why SecureGateway refused something, and which policy it enforced."""

    reason: str
    policy_violated: str
    severity: ConflictSeverity = ConflictSeverity.CRITICAL
    details: dict[str, Any] = Field(default_factory=dict)


class Provenance(MetaQoreModel):
    """Who did what to an artifact; optionally Ed25519-signed by the actor."""

    id: str = Field(default_factory=lambda: new_id("prov"))
    artifact_id: str
    actor: str
    action: str
    reason: str | None = None
    signature: str | None = None
    key_id: str | None = None
    created_at: datetime = Field(default_factory=current_utc)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Artifact(MetaQoreModel):
    """Something an agent produced: a plan, code, a config, a dataset."""

    id: str = Field(default_factory=lambda: new_id("art"))
    project_id: str
    artifact_type: str
    version: int = Field(default=1, ge=1)
    iteration: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    created_by: str
    created_at: datetime = Field(default_factory=current_utc)
    depends_on: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    blocked_by: list[Conflict] = Field(default_factory=list)
    provenance: list[Provenance] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _drop_computed_fields(cls, values: Any) -> Any:
        # A dump carries the computed fields; they are derived, so a round trip
        # drops them -- but a stated content hash must still match the data.
        if isinstance(values, dict) and ("is_blocked" in values or "content_hash" in values):
            values = dict(values)
            values.pop("is_blocked", None)
            stated = values.pop("content_hash", None)
            if stated is not None and "data" in values and isinstance(values["data"], dict):
                actual = _content_hash(values["data"])
                if stated != actual:
                    raise ValueError(
                        f"content_hash {stated} does not match the hash of data ({actual})"
                    )
        return values

    @computed_field  # type: ignore[prop-decorator]
    @property
    def is_blocked(self) -> bool:
        """Whether any conflict in ``blocked_by`` is still unresolved."""
        return any(not conflict.resolved for conflict in self.blocked_by)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def content_hash(self) -> str:
        """``sha256:<hex>`` of the canonical JSON of ``data``."""
        return _content_hash(self.data)

    def add_conflict(self, conflict: Conflict) -> None:
        self.blocked_by = [*self.blocked_by, conflict]

    def add_provenance(self, entry: Provenance) -> None:
        self.provenance = [*self.provenance, entry]


class _StatusMachine(MetaQoreModel):
    """Enforces a transition table on every change of ``status`` after construction."""

    _entity: ClassVar[str]

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "status" and "status" in self.__dict__:
            current = self.__dict__["status"]
            target = value.value if isinstance(value, Enum) else str(value)
            if target != current.value and not transition_allowed(
                self._entity, current.value, target
            ):
                raise InvalidTransitionError(
                    f"{self._entity} {self.__dict__.get('id')!s}: transition "
                    f"{current.value} -> {target} is not allowed"
                )
        super().__setattr__(name, value)


class Task(_StatusMachine):
    """A unit of work assigned to an agent."""

    _entity: ClassVar[str] = "task"

    id: str = Field(default_factory=lambda: new_id("task"))
    project_id: str
    title: str
    status: TaskStatus = TaskStatus.PENDING
    assigned_to: str | None = None
    depends_on: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=current_utc)
    updated_at: datetime = Field(default_factory=current_utc)
    completed_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    def transition(self, to: TaskStatus | str) -> None:
        """Move to ``to``; raises :class:`InvalidTransitionError` if the table forbids it."""
        target = TaskStatus(to)
        if not transition_allowed("task", self.status.value, target.value):
            raise InvalidTransitionError(
                f"task {self.id}: transition {self.status.value} -> {target.value} is not allowed"
            )
        self.status = target
        self.updated_at = current_utc()
        if target is TaskStatus.COMPLETED:
            self.completed_at = self.updated_at

    def mark_completed(self) -> None:
        """Complete an in-progress task (the table allows no other way in)."""
        self.transition(TaskStatus.COMPLETED)


class Project(_StatusMachine):
    """A body of multi-agent work whose artifacts are judged together."""

    _entity: ClassVar[str] = "project"

    id: str = Field(default_factory=lambda: new_id("proj"))
    name: str
    description: str | None = None
    organization: str = "default"
    status: ProjectStatus = ProjectStatus.INITIALIZED
    created_at: datetime = Field(default_factory=current_utc)
    updated_at: datetime = Field(default_factory=current_utc)
    artifacts: list[Artifact] = Field(default_factory=list)
    tasks: list[Task] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    def transition(self, to: ProjectStatus | str) -> None:
        target = ProjectStatus(to)
        if not transition_allowed("project", self.status.value, target.value):
            raise InvalidTransitionError(
                f"project {self.id}: transition {self.status.value} -> {target.value} "
                "is not allowed"
            )
        self.status = target
        self.updated_at = current_utc()

    def add_artifact(self, artifact: Artifact) -> None:
        self.artifacts = [*self.artifacts, artifact]
        self.updated_at = current_utc()

    def add_task(self, task: Task) -> None:
        self.tasks = [*self.tasks, task]
        self.updated_at = current_utc()


class Checkpoint(MetaQoreModel):
    """A snapshot of one project (keys ``project``, ``artifacts``, ``tasks``, ``conflicts``)."""

    id: str = Field(default_factory=lambda: new_id("chk"))
    project_id: str
    label: str
    snapshot: dict[str, Any]
    created_at: datetime = Field(default_factory=current_utc)


class BlockingReport(MetaQoreModel):
    """What blocks one project: its blocked artifacts and their unresolved conflicts."""

    project_id: str
    conflicts: list[Conflict]
    blocked_artifacts: list[str] = Field(default_factory=list)
    vetoes: list[VetoReason] = Field(default_factory=list)
    generated_at: datetime = Field(default_factory=current_utc)

    @classmethod
    def from_artifacts(
        cls,
        project_id: str,
        artifacts: Sequence[Artifact],
        *,
        vetoes: Sequence[VetoReason] = (),
    ) -> BlockingReport:
        """Blocked artifacts in the given order, with their unresolved conflicts."""
        conflicts: list[Conflict] = []
        blocked: list[str] = []
        for artifact in artifacts:
            if not artifact.is_blocked:
                continue
            blocked.append(artifact.id)
            conflicts.extend(c for c in artifact.blocked_by if not c.resolved)
        return cls(
            project_id=project_id,
            conflicts=conflicts,
            blocked_artifacts=blocked,
            vetoes=list(vetoes),
        )


__all__ = [
    "PROJECT_TRANSITIONS",
    "TASK_TRANSITIONS",
    "Artifact",
    "BlockingReport",
    "Checkpoint",
    "Conflict",
    "ConflictSeverity",
    "MetaQoreModel",
    "Project",
    "ProjectStatus",
    "Provenance",
    "ResolutionStrategy",
    "Task",
    "TaskSensitivity",
    "TaskStatus",
    "VetoReason",
    "current_utc",
    "new_id",
    "transition_allowed",
]
