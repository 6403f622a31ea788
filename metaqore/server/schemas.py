"""The HTTP API's request and response bodies: strict inputs, explicit outputs.

Inputs reject unknown fields and never coerce types (``"name": 5`` is an error, not
``"5"``); free-form JSON (``data``, ``metadata``) is bounded in depth and may hold neither
lone surrogates nor NaN/Infinity, which no store or hash could take. Outputs are the
engine's models as JSON, with conflicts always shown the same way (``strategy`` is the
conflict's resolution strategy).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, Generic, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from metaqore.core.models import (
    Artifact,
    BlockingReport,
    Checkpoint,
    Conflict,
    ConflictSeverity,
    Project,
    ProjectStatus,
    ResolutionStrategy,
    Task,
    TaskStatus,
    VetoReason,
)

#: Deepest nesting accepted in ``data`` and ``metadata`` (same default as manifests).
MAX_JSON_DEPTH = 64
#: Largest page a list endpoint returns.
MAX_PAGE = 500
#: Page size when the client names none.
DEFAULT_PAGE = 50
#: Largest version or iteration number (the stores' integer columns).
MAX_INT = 2_147_483_647

#: An id in a path or a body: one line, no slash (it must fit in a URL path segment).
Identifier = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f\x7f/]+$")
]
#: A name, title, label or agent: one line of text.
Line = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f\x7f]+$")
]
#: Free text (a description): anything but NUL.
Text = Annotated[StrictStr, StringConstraints(max_length=65_536, pattern=r"^[^\x00]*$")]


def _json_integer(value: Any) -> Any:
    # JSON has one number type: 3.0 is the integer 3 (JSON Schema agrees), "3" is not.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Count = Annotated[StrictInt, Field(ge=1, le=MAX_INT), BeforeValidator(_json_integer)]
Iteration = Annotated[StrictInt, Field(ge=0, le=MAX_INT), BeforeValidator(_json_integer)]

#: Ids an artifact or task depends on.
Dependencies = Annotated[list[Identifier], Field(max_length=1_000)]

T = TypeVar("T")
S = TypeVar("S")


def json_problem(value: Any, *, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why ``value`` (parsed JSON) cannot be stored and hashed, naming where, or ``None``."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, where = stack.pop()
        at = f"{where}: " if where else ""
        if depth > max_depth:
            return f"{at}nested deeper than {max_depth} levels"
        if isinstance(item, str):
            if _has_surrogate(item):
                return f"{at}text holds a lone surrogate (not valid Unicode)"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return f"{at}numbers must be finite (NaN and Infinity are not JSON)"
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and _has_surrogate(key):
                    return f"{at}a key holds a lone surrogate (not valid Unicode)"
                stack.append((child, depth + 1, f"{where}.{key}" if where else str(key)))
        elif isinstance(item, list):
            stack.extend(
                (child, depth + 1, f"{where}[{index}]") for index, child in enumerate(item)
            )
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class ApiInput(BaseModel):
    """A request body: unknown fields are errors, no type coercion, storable JSON only."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, values: Any) -> Any:
        problem = json_problem(values, max_depth=MAX_JSON_DEPTH + 2)
        if problem is not None:
            raise ValueError(problem)
        return values


class ApiOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- pages ---------------------------------------------------------------------------------


class Page(ApiOutput, Generic[T]):
    """One page of a list: ``items`` from ``offset``, at most ``limit``, of ``total``."""

    items: list[T]
    total: int = Field(description="How many items match the filters, over all pages.")
    limit: int
    offset: int


def page_of(
    items: Sequence[S], *, limit: int, offset: int, convert: Callable[[S], T]
) -> dict[str, Any]:
    """The page of ``items`` (already filtered) from ``offset``, converted for output."""
    return {
        "items": [convert(item) for item in items[offset : offset + limit]],
        "total": len(items),
        "limit": limit,
        "offset": offset,
    }


# -- projects ------------------------------------------------------------------------------


class ProjectCreate(ApiInput):
    """A new project; it starts ``initialized`` (status changes go through PATCH)."""

    id: Identifier | None = Field(default=None, description="Default: proj_ + 12 hex chars.")
    name: Line
    description: Text | None = None
    organization: Line | None = Field(
        default=None, description="Default: the server's configured organization."
    )
    metadata: dict[str, Any] = Field(default_factory=dict)


class _Update(ApiInput):
    """A partial update: absent fields stay as they are; only nullable ones may be null."""

    _nullable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        for name in sorted(self.model_fields_set - self._nullable):
            if getattr(self, name) is None:
                raise ValueError(f"'{name}' cannot be null (leave it out to keep it)")
        return self


class ProjectUpdate(_Update):
    """Fields to change; a status change must be allowed by the transition table."""

    _nullable: ClassVar[frozenset[str]] = frozenset({"description"})

    name: Line | SkipJsonSchema[None] = None
    description: Text | None = None
    organization: Line | SkipJsonSchema[None] = None
    status: ProjectStatus | SkipJsonSchema[None] = None
    metadata: dict[str, Any] | SkipJsonSchema[None] = None


class ProjectOut(ApiOutput):
    id: str
    name: str
    description: str | None
    organization: str
    status: ProjectStatus
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any]

    @classmethod
    def of(cls, project: Project) -> ProjectOut:
        return cls.model_validate(project.model_dump(exclude={"artifacts", "tasks"}))


class ProjectPage(Page[ProjectOut]):
    pass


# -- tasks ---------------------------------------------------------------------------------


class TaskCreate(ApiInput):
    """A new task; it starts ``pending`` (status changes go through PATCH)."""

    id: Identifier | None = Field(default=None, description="Default: task_ + 12 hex chars.")
    title: Line
    assigned_to: Line | None = None
    depends_on: Dependencies = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class TaskUpdate(_Update):
    """Fields to change; a status change must be allowed by the transition table."""

    _nullable: ClassVar[frozenset[str]] = frozenset({"assigned_to"})

    title: Line | SkipJsonSchema[None] = None
    status: TaskStatus | SkipJsonSchema[None] = None
    assigned_to: Line | None = None
    depends_on: Dependencies | SkipJsonSchema[None] = None
    metadata: dict[str, Any] | SkipJsonSchema[None] = None


class TaskOut(ApiOutput):
    id: str
    project_id: str
    title: str
    status: TaskStatus
    assigned_to: str | None
    depends_on: list[str]
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    metadata: dict[str, Any]

    @classmethod
    def of(cls, task: Task) -> TaskOut:
        return cls.model_validate(task.model_dump())


class TaskPage(Page[TaskOut]):
    pass


# -- conflicts, vetoes, artifacts ----------------------------------------------------------


class ConflictOut(ApiOutput):
    """A PSMP finding on an artifact; ``strategy`` is how it is (or will be) resolved."""

    id: str
    artifact_id: str
    project_id: str | None
    conflict_type: str
    severity: ConflictSeverity
    strategy: ResolutionStrategy
    related: list[str]
    description: str
    resolved: bool
    created_at: datetime
    resolved_at: datetime | None

    @classmethod
    def of(cls, conflict: Conflict) -> ConflictOut:
        values = conflict.model_dump(exclude={"resolution_strategy"})
        values["strategy"] = conflict.resolution_strategy
        return cls.model_validate(values)


class ConflictPage(Page[ConflictOut]):
    pass


class VetoOut(ApiOutput):
    """Why SecureGateway refused: the reason, the policy enforced, and its evidence."""

    reason: str
    policy_violated: str
    severity: ConflictSeverity
    details: dict[str, Any]

    @classmethod
    def of(cls, veto: VetoReason) -> VetoOut:
        return cls.model_validate(veto.model_dump())


class ProvenanceOut(ApiOutput):
    id: str
    artifact_id: str
    actor: str
    action: str
    reason: str | None
    signature: str | None
    key_id: str | None
    created_at: datetime
    metadata: dict[str, Any]


class ProvenanceIn(ApiInput):
    """A provenance entry; signed entries are checked as in a manifest (SPEC §4)."""

    actor: Line
    action: Line
    reason: str | None = None
    key_id: Line | None = None
    signature: str | None = Field(
        default=None,
        description="ed25519:<base64> over the canonical JSON of {artifact_id, "
        "artifact_type, version, content_hash, actor, action} (see `metaqore sign`); "
        "declare the id and version you signed.",
    )


class ArtifactCreate(ApiInput):
    """An artifact to declare: SecureGateway judges its routing, then PSMP its conflicts."""

    id: Identifier | None = Field(
        default=None,
        description="Default: art_ + 12 hex chars. Declaring an existing id declares a new "
        "version of it.",
    )
    artifact_type: Line
    created_by: Line = Field(description="The agent that produced it.")
    version: Count | None = Field(
        default=None, description="Default: the next version of its type in the project."
    )
    iteration: Iteration | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    depends_on: Dependencies = Field(default_factory=list)
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description="Routing information for SecureGateway lives here: llm_provider, "
        "agent_name (default created_by), task_type (default <artifact_type>_creation), "
        "has_private_data, has_sensitive_data, is_security_task, sensitivity.",
    )
    provenance: list[ProvenanceIn] = Field(default_factory=list, max_length=100)


class ArtifactVersionCreate(ApiInput):
    """The next version of an existing artifact, declared through the same gate."""

    created_by: Line
    artifact_type: Line | None = Field(default=None, description="Default: the current type.")
    version: Count | None = None
    iteration: Iteration | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    depends_on: Dependencies = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    provenance: list[ProvenanceIn] = Field(default_factory=list, max_length=100)


class ArtifactOut(ApiOutput):
    id: str
    project_id: str
    artifact_type: str
    version: int
    iteration: int | None
    data: dict[str, Any]
    created_by: str
    created_at: datetime
    depends_on: list[str]
    metadata: dict[str, Any]
    blocked_by: list[ConflictOut]
    provenance: list[ProvenanceOut]
    is_blocked: bool
    content_hash: str

    @classmethod
    def of(cls, artifact: Artifact) -> ArtifactOut:
        values = artifact.model_dump(exclude={"blocked_by"})
        values["blocked_by"] = [ConflictOut.of(conflict) for conflict in artifact.blocked_by]
        return cls.model_validate(values)


class ArtifactPage(Page[ArtifactOut]):
    pass


class ResolveRequest(ApiInput):
    strategy: ResolutionStrategy


class ResolutionOut(ApiOutput):
    """What resolving a conflict did to the conflict and to the artifact it blocked.

    ``artifact_status``: ``stored`` (its last conflict is resolved: it is now in the
    store), ``pending`` (other conflicts still block it, or the conflict was escalated),
    ``released`` (a ``retry`` of a non-mechanical conflict: the agent must declare it again),
    ``stored_artifact`` (the conflict was on an artifact already in the store, which was
    updated), ``absent`` (the blocked artifact is no longer held by this server: only the
    conflict changed).
    """

    conflict: ConflictOut
    artifact_status: Literal["stored", "pending", "released", "stored_artifact", "absent"]
    artifact: ArtifactOut | None
    message: str


class BlockingReportOut(ApiOutput):
    """What blocks a project: its blocked artifacts (stored or pending) and their
    unresolved conflicts."""

    project_id: str
    blocking: bool
    conflicts: list[ConflictOut]
    blocked_artifacts: list[str]
    vetoes: list[VetoOut]
    generated_at: datetime

    @classmethod
    def of(cls, report: BlockingReport) -> BlockingReportOut:
        return cls(
            project_id=report.project_id,
            blocking=bool(report.conflicts or report.vetoes),
            conflicts=[ConflictOut.of(conflict) for conflict in report.conflicts],
            blocked_artifacts=list(report.blocked_artifacts),
            vetoes=[VetoOut.of(veto) for veto in report.vetoes],
            generated_at=report.generated_at,
        )


# -- checkpoints ---------------------------------------------------------------------------


class CheckpointCreate(ApiInput):
    label: Line = "manual"


class CheckpointOut(ApiOutput):
    id: str
    project_id: str
    label: str
    created_at: datetime
    artifacts: int = Field(description="How many artifact versions the snapshot holds.")
    tasks: int
    conflicts: int

    @classmethod
    def of(cls, checkpoint: Checkpoint) -> CheckpointOut:
        snapshot = checkpoint.snapshot
        return cls(
            id=checkpoint.id,
            project_id=checkpoint.project_id,
            label=checkpoint.label,
            created_at=checkpoint.created_at,
            artifacts=len(snapshot.get("artifacts", [])),
            tasks=len(snapshot.get("tasks", [])),
            conflicts=len(snapshot.get("conflicts", [])),
        )


class CheckpointDetail(CheckpointOut):
    snapshot: dict[str, Any] = Field(
        description="Keys project, artifacts, tasks, conflicts (as the store held them)."
    )

    @classmethod
    def of(cls, checkpoint: Checkpoint) -> CheckpointDetail:
        summary = CheckpointOut.of(checkpoint).model_dump()
        return cls(**summary, snapshot=checkpoint.snapshot)


class CheckpointPage(Page[CheckpointOut]):
    pass


class RestoreOut(ApiOutput):
    project: ProjectOut
    restored_from: str
    backup: CheckpointOut | None = Field(
        description="The auto-backup checkpoint of the state before the restore."
    )


# -- audit and compliance ------------------------------------------------------------------


class AuditRecordOut(ApiOutput):
    """One line of the hash-chained audit file."""

    seq: int
    timestamp: str
    event_type: str
    organization: str
    run_id: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(Page[AuditRecordOut]):
    pass


class ComplianceReportOut(ApiOutput):
    organization: str
    total_events: int
    by_event: dict[str, int]
    by_provider: dict[str, int]
    policy_violations: dict[str, int]


class ComplianceExportOut(ApiOutput):
    """The compliance report of an organization and the audit records that match."""

    organization: str
    generated_at: datetime
    report: ComplianceReportOut
    filters: dict[str, Any]
    total: int
    head_hash: str | None = Field(description="Hash of the last exported record.")
    records: list[AuditRecordOut]


# -- health and errors ---------------------------------------------------------------------


class StoreHealth(ApiOutput):
    status: Literal["ok", "error"]
    dialect: str
    message: str | None = None


class HealthOut(ApiOutput):
    status: Literal["ok", "degraded"]
    version: str
    store: StoreHealth
    audit: Literal["ok", "error"]


class ProblemOut(ApiOutput):
    location: str = Field(description="Where: body.field, query.name, path.name.")
    message: str
    expected: str | None = None


class ErrorOut(ApiOutput):
    """Every error answer: a stable ``error`` code and a human ``message``, plus evidence."""

    error: str
    message: str
    problems: list[ProblemOut] | None = None
    conflicts: list[ConflictOut] | None = None
    veto: VetoOut | None = None
    artifact: ArtifactOut | None = None
    context: dict[str, Any] | None = None
    error_id: str | None = Field(
        default=None, description="For a 500: quote it to find the server's log entry."
    )


__all__ = [
    "DEFAULT_PAGE",
    "MAX_JSON_DEPTH",
    "MAX_PAGE",
    "ApiInput",
    "ArtifactCreate",
    "ArtifactOut",
    "ArtifactPage",
    "ArtifactVersionCreate",
    "AuditPage",
    "AuditRecordOut",
    "BlockingReportOut",
    "CheckpointCreate",
    "CheckpointDetail",
    "CheckpointOut",
    "CheckpointPage",
    "ComplianceExportOut",
    "ComplianceReportOut",
    "ConflictOut",
    "ConflictPage",
    "ErrorOut",
    "HealthOut",
    "ProblemOut",
    "ProjectCreate",
    "ProjectOut",
    "ProjectPage",
    "ProjectUpdate",
    "ResolutionOut",
    "ResolveRequest",
    "RestoreOut",
    "TaskCreate",
    "TaskOut",
    "TaskPage",
    "TaskUpdate",
    "VetoOut",
    "json_problem",
    "page_of",
]
