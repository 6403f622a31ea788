"""The artifact manifest format (SPEC §5) as pydantic models; the JSON Schema comes from here.

Every object refuses unknown keys, so a typo can never switch a check off. Scalars
are strict: ``version: "2"`` is an error, not a silent conversion.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, NamedTuple, NotRequired

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    field_validator,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict

from metaqore.core.models import ProjectStatus, TaskSensitivity, TaskStatus

MANIFEST_VERSION = 1
SCHEMA_ID = "https://metaqore.dev/schemas/manifest-v1.json"

Name = Annotated[StrictStr, Field(min_length=1, max_length=512)]
Iteration = Annotated[StrictInt, Field(ge=0)]
Version = Annotated[StrictInt, Field(ge=1)]
ContentHash = Annotated[StrictStr, Field(pattern=r"^sha256:[0-9a-f]{64}$")]
Signature = Annotated[StrictStr, Field(pattern=r"^ed25519:")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class ManifestProject(_Strict):
    """The project the artifacts belong to; manifests with the same id are one project."""

    id: Name
    name: StrictStr | None = None
    organization: StrictStr | None = None
    description: StrictStr | None = None


class ManifestRun(_Strict):
    """The orchestration run that wrote the manifest."""

    id: StrictStr | None = None
    iteration: Iteration | None = Field(
        default=None, description="Default iteration of the artifacts below."
    )


class ArtifactTask(_Strict):
    """How an artifact was produced: SecureGateway's input."""

    type: StrictStr | None = Field(default=None, description="Task type, e.g. planning.")
    provider: StrictStr | None = Field(default=None, description="LLM provider used.")
    sensitivity: TaskSensitivity | None = Field(
        default=None, description="Declared sensitivity; the effective one may be higher."
    )
    has_sensitive_data: StrictBool = False
    has_private_data: StrictBool = False
    is_security_task: StrictBool = False


class ProvenanceEntry(_Strict):
    """Who did what to the artifact, optionally signed (Ed25519)."""

    actor: Name
    action: Name
    key_id: StrictStr | None = None
    signature: Signature | None = None
    reason: StrictStr | None = None


class ManifestArtifact(_Strict):
    """One artifact an agent produced."""

    id: Name = Field(description="Unique in the project.")
    type: Name = Field(description="The artifact type (plan, code, config, dataset...).")
    created_by: Name = Field(description="The agent that produced it.")
    version: Version | None = Field(
        default=None, description="Default: the next version of the type."
    )
    iteration: Iteration | None = None
    depends_on: list[Name] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict, description="Any JSON object.")
    content_hash: ContentHash | None = Field(
        default=None, description="If given, must equal the hash of data."
    )
    task: ArtifactTask | None = None
    provenance: list[ProvenanceEntry] = Field(default_factory=list)

    @field_validator("depends_on")
    @classmethod
    def _unique_dependencies(cls, value: list[str]) -> list[str]:
        if len(set(value)) == len(value):  # the common case, checked at C speed
            return value
        seen: set[str] = set()
        for item in value:
            if item in seen:
                raise ValueError(f"'{item}' is listed twice (expected each dependency once)")
            seen.add(item)
        return value


# -- the same artifact as plain dicts, for the JSON Lines hot path -------------------------
# Validating into dicts rather than models is about twice as fast, and a million artifact
# lines spend most of their load time there. These mirror ArtifactTask, ProvenanceEntry
# and ManifestArtifact field for field (tests/manifest/test_schema.py holds them to it):
# a line they accept, the models accept with the same values. They fill in no defaults,
# so a dict holds exactly the keys the line set, and they do not check that
# ``depends_on`` lists each id once (the loader does). A line they refuse goes to the
# models, which say what is wrong.
_FORBID = ConfigDict(extra="forbid")


@with_config(_FORBID)
class ArtifactTaskLine(TypedDict):
    type: NotRequired[StrictStr | None]
    provider: NotRequired[StrictStr | None]
    sensitivity: NotRequired[TaskSensitivity | None]
    has_sensitive_data: NotRequired[StrictBool]
    has_private_data: NotRequired[StrictBool]
    is_security_task: NotRequired[StrictBool]


@with_config(_FORBID)
class ProvenanceLine(TypedDict):
    actor: Name
    action: Name
    key_id: NotRequired[StrictStr | None]
    signature: NotRequired[Signature | None]
    reason: NotRequired[StrictStr | None]


@with_config(_FORBID)
class ArtifactLine(TypedDict):
    id: Name
    type: Name
    created_by: Name
    version: NotRequired[Version | None]
    iteration: NotRequired[Iteration | None]
    depends_on: NotRequired[list[Name]]
    data: NotRequired[dict[str, Any]]
    content_hash: NotRequired[ContentHash | None]
    task: NotRequired[ArtifactTaskLine | None]
    provenance: NotRequired[list[ProvenanceLine]]


class ManifestTask(_Strict):
    """A task of the run, with the statuses it went through."""

    id: Name
    title: StrictStr
    status: TaskStatus = TaskStatus.PENDING
    assigned_to: StrictStr | None = None
    depends_on: list[Name] = Field(default_factory=list)
    history: list[TaskStatus] = Field(
        default_factory=list, description="Statuses in order; each step must be allowed."
    )


class EventTask(_Strict):
    """Routing information of a graph node."""

    type: StrictStr | None = None
    provider: StrictStr | None = None
    sensitivity: TaskSensitivity | None = None
    has_sensitive_data: StrictBool = False
    has_private_data: StrictBool = False
    is_security_task: StrictBool = False


class GraphNodeEvent(_Strict):
    """A node of the orchestration graph (depth and branching limits apply)."""

    kind: Literal["graph_node"]
    id: Name
    parent: StrictStr | None = None
    agent: StrictStr | None = None
    depth: Annotated[StrictInt, Field(ge=0)] | None = None
    task: EventTask | None = None


class MessageEvent(_Strict):
    """A message between agents (turn and participant limits apply)."""

    kind: Literal["message"]
    conversation: Name
    turn: Annotated[StrictInt, Field(ge=0)]
    sender: Name
    recipients: list[Name] = Field(default_factory=list)
    provider: StrictStr | None = None
    contains_sensitive_data: StrictBool = False
    task_type: StrictStr | None = None
    id: StrictStr | None = None


class TransitionEvent(_Strict):
    """A status change of a task or project (the transition tables apply)."""

    kind: Literal["transition"]
    entity: Literal["task", "project"]
    id: Name
    from_: StrictStr = Field(alias="from")
    to: StrictStr
    by: StrictStr | None = None

    @model_validator(mode="after")
    def _known_statuses(self) -> TransitionEvent:
        statuses = TaskStatus if self.entity == "task" else ProjectStatus
        known = [status.value for status in statuses]
        for name, value in (("from", self.from_), ("to", self.to)):
            if value not in known:
                raise ValueError(
                    f"'{name}: {value}' is not a {self.entity} status "
                    f"(expected one of {', '.join(known)})"
                )
        return self


Event = Annotated[GraphNodeEvent | MessageEvent | TransitionEvent, Field(discriminator="kind")]


class ManifestHeader(_Strict):
    """Everything but the artifacts (the first line of a JSON Lines manifest)."""

    metaqore: Literal[1] = Field(description="Manifest schema version.")
    project: ManifestProject
    run: ManifestRun | None = None
    tasks: list[ManifestTask] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)


# What ``_holds_something`` checks, said in JSON Schema: one of the lists has an item.
_HOLDS_SOMETHING: list[Any] = [
    {"required": [key], "properties": {key: {"minItems": 1}}}
    for key in ("artifacts", "tasks", "events")
]


class Manifest(ManifestHeader):
    """A YAML or JSON manifest: a project, its run, and what its agents produced."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={"$id": SCHEMA_ID, "anyOf": _HOLDS_SOMETHING},
    )

    artifacts: list[ManifestArtifact] = Field(default_factory=list)

    @model_validator(mode="after")
    def _holds_something(self) -> Manifest:
        if not (self.artifacts or self.tasks or self.events):
            raise ValueError(
                "a manifest must hold at least one artifact, task or event "
                "(expected a non-empty artifacts, tasks or events list)"
            )
        return self


class TaskInfo(NamedTuple):
    """The compact routing input the gate keeps per artifact."""

    type: str | None
    provider: str | None
    has_sensitive_data: bool
    has_private_data: bool
    is_security_task: bool


def task_info(task: ArtifactTask | EventTask | None) -> TaskInfo | None:
    if task is None:
        return None
    return TaskInfo(
        task.type,
        task.provider,
        task.has_sensitive_data,
        task.has_private_data,
        task.is_security_task,
    )


ARTIFACT_ADAPTER: TypeAdapter[ManifestArtifact] = TypeAdapter(ManifestArtifact)
ARTIFACT_LIST_ADAPTER: TypeAdapter[list[ManifestArtifact]] = TypeAdapter(list[ManifestArtifact])


def json_schema() -> dict[str, Any]:
    """The manifest JSON Schema (draft 2020-12), generated from these models.

    It describes YAML/JSON manifests; ``$defs.ManifestHeader`` and
    ``$defs.ManifestArtifact`` describe the header and artifact lines of JSON Lines.
    """
    schema = Manifest.model_json_schema(by_alias=True, mode="validation")
    defs = schema.setdefault("$defs", {})
    header = ManifestHeader.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    defs.update(header.pop("$defs", {}))
    defs["ManifestHeader"] = header
    ordered: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "MetaQore artifact manifest",
    }
    ordered.update({key: value for key, value in schema.items() if key not in ordered})
    return ordered


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"


__all__ = [
    "ARTIFACT_ADAPTER",
    "ARTIFACT_LIST_ADAPTER",
    "MANIFEST_VERSION",
    "ArtifactTask",
    "Event",
    "EventTask",
    "GraphNodeEvent",
    "Manifest",
    "ManifestArtifact",
    "ManifestHeader",
    "ManifestProject",
    "ManifestRun",
    "ManifestTask",
    "MessageEvent",
    "ProvenanceEntry",
    "TaskInfo",
    "TransitionEvent",
    "json_schema",
    "json_schema_text",
    "task_info",
]
