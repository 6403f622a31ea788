"""Generated runs of manifests, their files, and an independent oracle of their verdict.

A :class:`RunModel` is what a team's agents might write: files (YAML, JSON or JSON Lines)
of one or two projects, with artifacts, tasks and trace events. :func:`oracle` computes
what the gate must find in it from SPEC §3-§4 alone -- the four PSMP rules, sensitivity
classification and propagation, the routing table, the transition tables and the event
limits -- without calling any MetaQore code, so a bug in the gate's rules cannot hide
behind the same bug in the test.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import yaml
from hypothesis import strategies as st

FORMATS = ("yaml", "json", "jsonl")
TYPES = ("plan", "code", "config")
AGENTS = ("planner", "coder", "data-Validator", "reviewer")
ARTIFACT_IDS = tuple(f"a{number}" for number in range(10))
PROVIDERS = ("ollama", "hmcp_gateway", "openrouter", "mystery-llm")
TASK_TYPES = (None, "planning", "coding", "state_sync", "Governance-review", "review")
SENSITIVITIES = ("public", "internal", "sensitive", "critical")
POLICIES = ("default_local_first", "enterprise_residency", "compliance_local_only")
MODES = ("strict", "adaptive", "playground")
SEVERITIES = ("low", "medium", "high", "critical")
TASK_STATUSES = ("pending", "in_progress", "completed", "failed", "blocked")
PROJECT_STATUSES = (
    "initialized",
    "planning",
    "in_progress",
    "completed",
    "failed",
    "blocked",
    "archived",
)

# SPEC §2, written out again here (not imported) so the oracle stays independent.
TASK_MOVES = {
    "pending": {"in_progress", "blocked"},
    "in_progress": {"completed", "failed", "blocked"},
    "blocked": {"pending", "in_progress"},
    "failed": {"pending"},
    "completed": set(),
}
PROJECT_MOVES = {
    "initialized": {"planning", "archived"},
    "planning": {"in_progress", "blocked", "archived"},
    "in_progress": {"completed", "failed", "blocked", "archived"},
    "blocked": {"in_progress", "archived"},
    "completed": {"archived"},
    "failed": {"archived"},
    "archived": set(),
}
INTERNAL_TASK_WORDS = ("plan", "state", "governance")
LOCAL = {"hmcp_gateway", "ollama"}
CLOUD = {"openrouter"}
RULE_SEVERITY = {
    "version_mismatch": "medium",
    "parallel_creation": "high",
    "missing_dependency": "high",
    "circular_dependency": "critical",
}


def content_hash(data: Any) -> str:
    """SPEC §2: sha256 of the canonical JSON of ``data`` (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- the model ------------------------------------------------------------------------------


@dataclass
class ManifestModel:
    """One manifest file: a project, an optional run, what it holds."""

    name: str
    format: str
    project: str
    run_iteration: int | None
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    with_run: bool = True

    def header(self) -> dict[str, Any]:
        document: dict[str, Any] = {"metaqore": 1, "project": {"id": self.project}}
        if self.with_run:
            run: dict[str, Any] = {"id": f"run-{self.name}"}
            if self.run_iteration is not None:
                run["iteration"] = self.run_iteration
            document["run"] = run
        if self.tasks:
            document["tasks"] = self.tasks
        if self.events:
            document["events"] = self.events
        return document

    def document(self) -> dict[str, Any]:
        document = self.header()
        if self.artifacts:
            document["artifacts"] = self.artifacts
        return document


@dataclass
class RunModel:
    """Manifest files judged together, and the options they are judged with."""

    manifests: list[ManifestModel]
    policy: str = "default_local_first"
    mode: str = "strict"
    fail_on: str = "low"

    def options(self) -> list[str]:
        return ["--policy", self.policy, "--mode", self.mode, "--fail-on", self.fail_on]


# -- writing files ------------------------------------------------------------------------


class NotRoundTrippable(ValueError):
    """PyYAML's dumper wrote something its loader reads back differently (not our bug)."""


def render(manifest: ManifestModel, document: Any = None) -> bytes:
    """The file's bytes; ``document`` replaces the model's (for mutated documents)."""
    if manifest.format == "jsonl":
        lines = [manifest.header(), *manifest.artifacts] if document is None else document
        return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()
    value = manifest.document() if document is None else document
    if manifest.format == "json":
        return (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode()
    text = yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=80)
    if yaml.safe_load(text) != value:
        raise NotRoundTrippable(text)
    return text.encode()


def jsonl_lines(manifest: ManifestModel) -> list[Any]:
    """A JSON Lines manifest as its list of line values (header first)."""
    return [manifest.header(), *manifest.artifacts]


# -- strategies -----------------------------------------------------------------------------

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
json_values = st.recursive(
    _json_scalar,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_text, children, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(_text, json_values, max_size=4)


@st.composite
def artifact_tasks(draw: st.DrawFn) -> dict[str, Any] | None:
    if draw(st.booleans()):
        return None
    task: dict[str, Any] = {}
    task_type = draw(st.sampled_from(TASK_TYPES))
    if task_type is not None:
        task["type"] = task_type
    if draw(st.integers(0, 4)):
        task["provider"] = draw(st.sampled_from(PROVIDERS))
    if draw(st.integers(0, 3)) == 0:
        task["sensitivity"] = draw(st.sampled_from(SENSITIVITIES))
    for flag in ("has_sensitive_data", "has_private_data", "is_security_task"):
        if draw(st.integers(0, 4)) == 0:
            task[flag] = draw(st.booleans())
    return task


@st.composite
def artifacts(draw: st.DrawFn, artifact_id: str) -> dict[str, Any]:
    artifact: dict[str, Any] = {
        "id": artifact_id,
        "type": draw(st.sampled_from(TYPES)),
        "created_by": draw(st.sampled_from(AGENTS)),
    }
    if draw(st.integers(0, 3)) == 0:
        artifact["version"] = draw(st.integers(1, 4))
    if draw(st.integers(0, 2)) == 0:
        artifact["iteration"] = draw(st.integers(0, 2))
    depends_on = draw(st.lists(st.sampled_from((*ARTIFACT_IDS, "ghost")), max_size=3, unique=True))
    if depends_on:
        artifact["depends_on"] = depends_on
    if draw(st.booleans()):
        data = draw(json_objects)
        artifact["data"] = data
        if draw(st.integers(0, 3)) == 0:
            artifact["content_hash"] = content_hash(data)
    task = draw(artifact_tasks())
    if task is not None:
        artifact["task"] = task
    if draw(st.integers(0, 5)) == 0:
        artifact["provenance"] = [{"actor": artifact["created_by"], "action": "created"}]
    return artifact


@st.composite
def tasks(draw: st.DrawFn, task_id: str) -> dict[str, Any]:
    history = draw(st.lists(st.sampled_from(TASK_STATUSES), max_size=4))
    if history and draw(st.integers(0, 3)):
        status = history[-1]
    else:
        status = draw(st.sampled_from(TASK_STATUSES))
    task: dict[str, Any] = {"id": task_id, "title": f"Task {task_id}", "status": status}
    if history:
        task["history"] = history
    if draw(st.booleans()):
        task["assigned_to"] = draw(st.sampled_from(AGENTS))
    return task


@st.composite
def events(draw: st.DrawFn, number: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(("transition", "graph_node", "message")))
    if kind == "transition":
        entity = draw(st.sampled_from(("task", "project")))
        statuses = TASK_STATUSES if entity == "task" else PROJECT_STATUSES
        return {
            "kind": "transition",
            "entity": entity,
            "id": f"x{number}",
            "from": draw(st.sampled_from(statuses)),
            "to": draw(st.sampled_from(statuses)),
            "by": draw(st.sampled_from(AGENTS)),
        }
    if kind == "graph_node":
        return {
            "kind": "graph_node",
            "id": f"n{number}",
            "parent": None,
            "agent": draw(st.sampled_from(AGENTS)),
            "depth": draw(st.integers(0, 5)),
        }
    recipients = draw(st.lists(st.sampled_from(AGENTS), max_size=2, unique=True))
    return {
        "kind": "message",
        "conversation": f"c{number}",
        "turn": draw(st.integers(0, 13)),
        "sender": draw(st.sampled_from(AGENTS)),
        "recipients": recipients,
    }


@st.composite
def run_models(draw: st.DrawFn, *, max_files: int = 3) -> RunModel:
    """A valid run: ids unique per project, every file holding something."""
    count = draw(st.integers(1, max_files))
    used_ids: dict[str, set[str]] = {}
    used_tasks: dict[str, set[str]] = {}
    manifests: list[ManifestModel] = []
    event_numbers = iter(range(1000))
    for index in range(count):
        project = draw(st.sampled_from(("shop", "billing")))
        fmt = draw(st.sampled_from(FORMATS))
        taken = used_ids.setdefault(project, set())
        free = [name for name in ARTIFACT_IDS if name not in taken]
        ids = draw(st.lists(st.sampled_from(free), max_size=5, unique=True)) if free else []
        taken.update(ids)
        manifest = ManifestModel(
            name=f"m{index}.metaqore.{'yml' if fmt == 'yaml' and index % 2 else fmt}",
            format=fmt,
            project=project,
            run_iteration=draw(st.none() | st.integers(0, 2)),
            with_run=draw(st.integers(0, 3)) > 0,
        )
        manifest.artifacts = [draw(artifacts(artifact_id)) for artifact_id in ids]
        task_pool = [f"t{n}" for n in range(4) if f"t{n}" not in used_tasks.get(project, set())]
        task_ids = (
            draw(st.lists(st.sampled_from(task_pool), max_size=2, unique=True)) if task_pool else []
        )
        used_tasks.setdefault(project, set()).update(task_ids)
        manifest.tasks = [draw(tasks(task_id)) for task_id in task_ids]
        manifest.events = [
            draw(events(next(event_numbers))) for _ in range(draw(st.integers(0, 3)))
        ]
        if not (manifest.artifacts or manifest.tasks or manifest.events):
            manifest.artifacts = [draw(artifacts(f"only{index}"))]
        manifests.append(manifest)
    return RunModel(
        manifests=manifests,
        policy=draw(st.sampled_from(POLICIES)),
        mode=draw(st.sampled_from(MODES)),
        fail_on=draw(st.sampled_from(SEVERITIES)),
    )


# -- the oracle -----------------------------------------------------------------------------

Finding = tuple[str, str, str, str]  # (kind, rule, project, subject)


@dataclass
class Expected:
    """What the gate must report: every finding, the blocking ones, the exit code."""

    findings: Counter[Finding]
    blocking: Counter[Finding]
    exit_code: int


@dataclass
class _Art:
    project: str
    id: str
    type: str
    agent: str
    declared: int | None
    iteration: int | None
    depends_on: list[str]
    task: dict[str, Any] | None
    order: tuple[int, str, int]
    version: int = 0


def _classify(art: _Art) -> int:
    task = art.task or {}
    task_type = (task.get("type") or f"{art.type}_creation").lower()
    agent = art.agent.lower()
    if task.get("is_security_task"):
        level = "critical" if task.get("has_sensitive_data") else "sensitive"
    elif task.get("has_sensitive_data") or task.get("has_private_data"):
        level = "sensitive"
    elif any(word in task_type for word in INTERNAL_TASK_WORDS) or "validator" in agent:
        level = "internal"
    else:
        level = "public"
    rank = SENSITIVITIES.index(level)
    declared = task.get("sensitivity")
    if declared is not None:
        rank = max(rank, SENSITIVITIES.index(declared))
    return rank


def _allowed(policy: str, rank: int) -> set[str]:
    level = SENSITIVITIES[rank]
    if policy == "default_local_first":
        return LOCAL if level in ("sensitive", "critical") else LOCAL | CLOUD
    if policy == "enterprise_residency":
        return LOCAL | CLOUD if level == "public" else LOCAL
    return set(LOCAL)


def _sccs(nodes: list[int], edges: dict[int, list[int]]) -> list[set[int]]:
    """Strongly connected components by plain reachability (small graphs only)."""
    reach: dict[int, set[int]] = {}
    for start in nodes:
        seen: set[int] = set()
        stack = list(edges[start])
        while stack:
            node = stack.pop()
            if node not in seen:
                seen.add(node)
                stack.extend(edges[node])
        reach[start] = seen
    components: list[set[int]] = []
    assigned: set[int] = set()
    for node in nodes:
        if node in assigned:
            continue
        component = {node} | {other for other in reach[node] if node in reach[other]}
        assigned |= component
        components.append(component)
    return components


def oracle(model: RunModel) -> Expected:
    findings: list[tuple[Finding, str]] = []  # (finding, severity)
    arts: list[_Art] = []
    for manifest in model.manifests:
        for position, artifact in enumerate(manifest.artifacts):
            iteration = artifact.get("iteration", manifest.run_iteration)
            if not manifest.with_run and "iteration" not in artifact:
                iteration = None
            arts.append(
                _Art(
                    project=manifest.project,
                    id=artifact["id"],
                    type=artifact["type"],
                    agent=artifact["created_by"],
                    declared=artifact.get("version"),
                    iteration=iteration,
                    depends_on=list(artifact.get("depends_on", [])),
                    task=artifact.get("task"),
                    order=(-1 if iteration is None else iteration, manifest.name, position),
                )
            )
    arts.sort(key=lambda art: art.order)

    # version_mismatch
    top: dict[tuple[str, str], int] = {}
    for art in arts:
        highest = top.get((art.project, art.type), 0)
        expected = highest + 1
        art.version = art.declared if art.declared is not None else expected
        if art.declared is not None and art.declared != expected:
            findings.append((("conflict", "version_mismatch", art.project, art.id), "medium"))
        top[(art.project, art.type)] = max(highest, art.version)

    # parallel_creation
    agents: dict[tuple[str, str, int | None], set[str]] = {}
    for art in arts:
        group = agents.setdefault((art.project, art.type, art.iteration), set())
        if group - {art.agent}:
            findings.append((("conflict", "parallel_creation", art.project, art.id), "high"))
        group.add(art.agent)

    # missing_dependency and the dependency graph
    by_id = {(art.project, art.id): key for key, art in enumerate(arts)}
    edges: dict[int, list[int]] = {}
    for key, art in enumerate(arts):
        edges[key] = []
        for dependency in art.depends_on:
            target = by_id.get((art.project, dependency))
            if target is None:
                findings.append((("conflict", "missing_dependency", art.project, art.id), "high"))
            else:
                edges[key].append(target)

    # circular_dependency: once per cycle, on the member replayed last
    for component in _sccs(list(edges), edges):
        if len(component) > 1 or next(iter(component)) in edges[next(iter(component))]:
            anchor = arts[max(component)]
            findings.append(
                (("conflict", "circular_dependency", anchor.project, anchor.id), "critical")
            )

    # routing: the effective sensitivity is the highest over everything depended on
    own = [_classify(art) for art in arts]
    for key, art in enumerate(arts):
        provider = (art.task or {}).get("provider")
        if not provider:
            continue
        seen = {key}
        stack = [key]
        while stack:
            for target in edges[stack.pop()]:
                if target not in seen:
                    seen.add(target)
                    stack.append(target)
        rank = max(own[member] for member in seen)
        if provider not in _allowed(model.policy, rank):
            findings.append((("veto", model.policy, art.project, art.id), "critical"))

    # tasks' histories, transitions, graph depth, conversation turns
    for manifest in model.manifests:
        for task in manifest.tasks:
            history = task.get("history", [])
            for before, after in pairwise(history):
                if after not in TASK_MOVES[before]:
                    findings.append(
                        (("veto", "state_transition", manifest.project, task["id"]), "critical")
                    )
            if history and history[-1] != task["status"]:
                findings.append(
                    (("veto", "state_transition", manifest.project, task["id"]), "critical")
                )
        for event in manifest.events:
            if event["kind"] == "transition":
                moves = TASK_MOVES if event["entity"] == "task" else PROJECT_MOVES
                if event["to"] not in moves[event["from"]]:
                    findings.append(
                        (("veto", "state_transition", manifest.project, event["id"]), "critical")
                    )
            elif event["kind"] == "graph_node":
                if event["depth"] > 3:
                    findings.append(
                        (("veto", "max_graph_depth", manifest.project, event["id"]), "critical")
                    )
            elif event["turn"] > 10:
                subject = f"{event['conversation']}#{event['turn']}"
                findings.append(
                    (("veto", "max_conversation_turns", manifest.project, subject), "critical")
                )

    threshold = SEVERITIES.index(model.fail_on)
    blocking: Counter[Finding] = Counter()
    for finding, severity in findings:
        if model.mode == "playground":
            continue
        if model.mode == "adaptive" and finding[1] == "version_mismatch":
            continue  # medium, retry: auto-resolved to the expected version
        if SEVERITIES.index(severity) >= threshold:
            blocking[finding] += 1
    return Expected(
        findings=Counter(finding for finding, _ in findings),
        blocking=blocking,
        exit_code=1 if blocking else 0,
    )


def reported(report: dict[str, Any]) -> tuple[Counter[Finding], Counter[Finding]]:
    """(every finding, the blocking ones) of a ``--json`` report, in the oracle's terms."""
    every: Counter[Finding] = Counter()
    blocking: Counter[Finding] = Counter()
    for finding in report["findings"]:
        key = (finding["kind"], finding["rule"], finding["project_id"], finding["artifact_id"])
        every[key] += 1
        if finding["blocking"]:
            blocking[key] += 1
    return every, blocking
