"""Seeded synthetic runs for the benchmarks: JSON Lines manifests and their expected findings.

A run is one JSON Lines manifest per project (header line, then one artifact per line) with
about two dependencies per artifact (always to earlier artifacts, so the clean graph is
acyclic), 20 artifact types, 50 agents, a few short ``data`` fields and a task whose
provider the default routing policy allows. Each (type, iteration) is produced by one
agent, and explicit versions are exactly the next version of their type, so a clean run
passes with no finding.

``--faults K`` injects K faults of each kind, each isolated so that it produces exactly one
finding, and writes ``expected.json`` beside the manifests:

* ``version``: the last artifact of a type declares a version that skips ahead or is stale
  (being the last, it shifts no later version);
* ``parallel``: the last artifact of a (type, iteration) is made by a second agent;
* ``missing``: an artifact gains a dependency on an id declared nowhere;
* ``cycle``: fresh artifacts of a fresh type appended at the end depend on each other in a
  ring of length 1 (a self-loop) to 5 (found once, on the member declared last);
* ``routing``: an ``openrouter`` artifact made sensitive directly or by a sensitive input
  upstream (fresh artifacts appended at the end, so nothing else inherits the sensitivity);
* ``provider``: an artifact routed to a provider the policy does not know.

The base artifacts depend only on the seed and the counts, not on the faults, and the same
arguments always give byte-identical files.

    python -m benchmarks.generate --artifacts 100000 --seed 1 --faults 5 --out DIR
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Bump when the output for given arguments changes (the runner's data cache keys on it).
GENERATOR_VERSION = 1

TYPES: tuple[str, ...] = tuple(f"type-{number:02d}" for number in range(20))
AGENTS: tuple[str, ...] = tuple(f"agent-{number:02d}" for number in range(50))
TASK_TYPES: tuple[str, ...] = ("generation", "review", "planning", "testing", "analysis")
#: Providers the default policy allows for public and internal work.
PROVIDERS: tuple[str, ...] = ("ollama", "hmcp_gateway", "openrouter")
UNKNOWN_PROVIDER = "acme-llm"
#: Artifacts per iteration (a multiple of the number of types).
ITERATION_SIZE = 200
#: The rule a routing veto carries under the default policy.
ROUTING_RULE = "default_local_first"
FAULT_KINDS: tuple[str, ...] = ("version", "parallel", "missing", "cycle", "routing", "provider")
DEFAULT_CYCLE_LENGTHS: tuple[int, ...] = (1, 2, 3, 4, 5)
MANIFEST_SUFFIX = ".metaqore.jsonl"

Artifact = dict[str, Any]
Change = Callable[[Artifact], None]


@dataclass(frozen=True)
class ExpectedFinding:
    """One finding a fault must produce: the rule, where it is attached, which fault."""

    rule: str
    kind: str  # conflict | veto
    project_id: str
    artifact_id: str
    fault: str

    def as_dict(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "project_id": self.project_id,
            "artifact_id": self.artifact_id,
            "fault": self.fault,
        }


@dataclass
class GeneratedRun:
    """What :func:`generate` wrote."""

    directory: Path
    manifests: list[Path]
    expected_path: Path
    artifacts: int
    findings: list[ExpectedFinding]


@dataclass
class _Plan:
    """One project's faults: changes to base artifacts, and fresh artifacts appended."""

    changes: dict[int, list[Change]] = field(default_factory=dict)
    taken: set[int] = field(default_factory=set)
    appended: list[Artifact] = field(default_factory=list)
    findings: list[ExpectedFinding] = field(default_factory=list)

    def change(self, position: int, change: Change) -> None:
        self.taken.add(position)
        self.changes.setdefault(position, []).append(change)


def artifact_id(position: int) -> str:
    return f"a{position:07d}"


def project_id(number: int) -> str:
    return f"bench-{number:03d}"


def iteration_of(position: int) -> int:
    return 1 + position // ITERATION_SIZE


def _agent_table(seed: int, project: int, base: int) -> list[list[int]]:
    """Agent index per (iteration - 1, type index): one agent per (type, iteration)."""
    rng = random.Random(seed * 1_000_003 + project * 7 + 1)
    iterations = max(1, -(-base // ITERATION_SIZE))
    return [[rng.randrange(len(AGENTS)) for _ in TYPES] for _ in range(iterations)]


def base_artifacts(
    seed: int, project: int, base: int, agents: list[list[int]]
) -> Iterator[Artifact]:
    """The clean artifacts of one project, in replay order."""
    rng = random.Random(seed * 1_000_003 + project * 7)
    versions = [0] * len(TYPES)
    for position in range(base):
        type_index = position % len(TYPES)
        versions[type_index] += 1
        iteration = iteration_of(position)
        agent = AGENTS[agents[iteration - 1][type_index]]
        artifact: Artifact = {
            "id": artifact_id(position),
            "type": TYPES[type_index],
            "created_by": agent,
        }
        if rng.random() < 0.5:
            artifact["version"] = versions[type_index]
        artifact["iteration"] = iteration
        if position >= 2:
            anywhere = rng.randrange(position)
            recent = position - 1 - rng.randrange(min(position, 50))
            if recent == anywhere:
                recent = position - 1 if anywhere != position - 1 else position - 2
            artifact["depends_on"] = [artifact_id(anywhere), artifact_id(recent)]
        elif position == 1:
            artifact["depends_on"] = [artifact_id(0)]
        artifact["data"] = {
            "summary": f"{TYPES[type_index]} #{versions[type_index]} by {agent}",
            "tokens": rng.randrange(100, 5000),
            "ok": rng.random() < 0.9,
        }
        if rng.random() < 0.9:
            artifact["task"] = {
                "type": TASK_TYPES[rng.randrange(len(TASK_TYPES))],
                "provider": PROVIDERS[rng.randrange(len(PROVIDERS))],
            }
        yield artifact


def _fresh(
    artifact_id: str,
    artifact_type: str,
    agent: str,
    iteration: int,
    *,
    depends_on: Sequence[str] = (),
    version: int | None = None,
    task: dict[str, Any] | None = None,
) -> Artifact:
    artifact: Artifact = {"id": artifact_id, "type": artifact_type, "created_by": agent}
    if version is not None:
        artifact["version"] = version
    artifact["iteration"] = iteration
    if depends_on:
        artifact["depends_on"] = list(depends_on)
    artifact["data"] = {"summary": f"{artifact_type} {artifact_id}", "fault": True}
    artifact["task"] = task if task is not None else {"type": "generation", "provider": "ollama"}
    return artifact


class _Planner:
    """Places one project's faults, each where it yields exactly one finding."""

    def __init__(
        self,
        seed: int,
        project: int,
        base: int,
        agents: list[list[int]],
        cycle_lengths: Sequence[int],
    ) -> None:
        self.project = project_id(project)
        self.base = base
        self.agents = agents
        self.cycle_lengths = tuple(cycle_lengths)
        self.rng = random.Random(seed * 1_000_003 + project * 7 + 2)
        self.plan = _Plan()
        self.last_iteration = iteration_of(base - 1) if base else 1
        self.version_types = list(range(len(TYPES)))
        self.rng.shuffle(self.version_types)
        self.versions_used = 0

    def expect(self, rule: str, kind: str, artifact: str, fault: str) -> None:
        self.plan.findings.append(ExpectedFinding(rule, kind, self.project, artifact, fault))

    def anchor(self) -> list[str]:
        """A dependency on a random base artifact, so fresh artifacts join the graph."""
        return [artifact_id(self.rng.randrange(self.base))] if self.base else []

    def free_position(self, low: int = 0) -> int | None:
        if self.base - low <= len(self.plan.taken) + 1:
            return None
        while True:
            position = self.rng.randrange(low, self.base)
            if position not in self.plan.taken:
                return position

    # -- fault kinds -------------------------------------------------------------------
    def version(self, number: int) -> None:
        ahead = number % 2 == 0
        type_index = None
        while self.versions_used < len(self.version_types):
            candidate = self.version_types[self.versions_used]
            self.versions_used += 1
            count = len(range(candidate, self.base, len(TYPES)))
            last = candidate + (count - 1) * len(TYPES)
            if count >= 3 and last not in self.plan.taken:
                type_index = candidate
                break
        if type_index is not None:
            count = len(range(type_index, self.base, len(TYPES)))
            position = type_index + (count - 1) * len(TYPES)
            # ``count`` is the version this last artifact of its type must declare.
            wrong = count + 1 + number % 3 if ahead else count - 1 - number % 2

            def set_version(artifact: Artifact, wrong: int = wrong) -> None:
                artifact["version"] = wrong

            self.plan.change(position, set_version)
            self.expect("version_mismatch", "conflict", artifact_id(position), "version")
            return
        # Fresh type: v1 (and v2), then a version that skips ahead or is stale.
        kind = f"versioned-{number}"
        agent = AGENTS[self.rng.randrange(len(AGENTS))]
        ids = [f"{kind}-{step}" for step in range(2 if ahead else 3)]
        for step, fresh_id in enumerate(ids[:-1]):
            self.plan.appended.append(
                _fresh(fresh_id, kind, agent, self.last_iteration, version=step + 1)
            )
        wrong = len(ids) + 1 if ahead else 1
        self.plan.appended.append(_fresh(ids[-1], kind, agent, self.last_iteration, version=wrong))
        self.expect("version_mismatch", "conflict", ids[-1], "version")

    def parallel(self, number: int) -> None:
        # A full iteration before the last: its groups have ITERATION_SIZE / 20 members.
        full = min(self.base // ITERATION_SIZE, self.last_iteration - 1)
        for _attempt in range(20):
            if full < 1:
                break
            block = self.rng.randrange(full)
            type_index = self.rng.randrange(len(TYPES))
            position = block * ITERATION_SIZE + ITERATION_SIZE - len(TYPES) + type_index
            if position in self.plan.taken:
                continue
            owner = self.agents[block][type_index]
            rival = AGENTS[(owner + 1 + self.rng.randrange(len(AGENTS) - 1)) % len(AGENTS)]

            def set_agent(artifact: Artifact, rival: str = rival) -> None:
                artifact["created_by"] = rival

            self.plan.change(position, set_agent)
            self.expect("parallel_creation", "conflict", artifact_id(position), "parallel")
            return
        kind = f"rival-{number}"
        first, second = self.rng.sample(AGENTS, 2)
        self.plan.appended.append(
            _fresh(f"{kind}-a", kind, first, self.last_iteration, depends_on=self.anchor())
        )
        self.plan.appended.append(_fresh(f"{kind}-b", kind, second, self.last_iteration))
        self.expect("parallel_creation", "conflict", f"{kind}-b", "parallel")

    def missing(self, number: int) -> None:
        ghost = f"ghost-{self.project}-{number}"
        position = self.free_position(low=2)
        if position is None:
            kind = f"orphan-{number}"
            agent = AGENTS[self.rng.randrange(len(AGENTS))]
            self.plan.appended.append(
                _fresh(kind, kind, agent, self.last_iteration, depends_on=[ghost])
            )
            self.expect("missing_dependency", "conflict", kind, "missing")
            return

        def add_ghost(artifact: Artifact, ghost: str = ghost) -> None:
            artifact["depends_on"] = [*artifact.get("depends_on", []), ghost]

        self.plan.change(position, add_ghost)
        self.expect("missing_dependency", "conflict", artifact_id(position), "missing")

    def cycle(self, number: int) -> None:
        length = self.cycle_lengths[number % len(self.cycle_lengths)]
        kind = f"cycle-{number}"
        agent = AGENTS[self.rng.randrange(len(AGENTS))]
        ids = [f"{kind}-{step}" for step in range(length)]
        for step, member in enumerate(ids):
            target = ids[(step + 1) % length]
            self.plan.appended.append(
                _fresh(
                    member, kind, agent, self.last_iteration, depends_on=[target, *self.anchor()]
                )
            )
        self.expect("circular_dependency", "conflict", ids[-1], "cycle")

    def routing(self, number: int) -> None:
        variant = number % 4
        kind = f"secret-{number}"
        agent = AGENTS[self.rng.randrange(len(AGENTS))]
        cloud = {"type": "generation", "provider": "openrouter"}
        it = self.last_iteration
        appended = self.plan.appended
        target = f"{kind}-out"
        if variant == 0:  # a sensitive input, one step upstream
            upstream = {"type": "analysis", "provider": "ollama", "has_sensitive_data": True}
            source = _fresh(f"{kind}-in", f"{kind}-in", agent, it, task=upstream)
            source["depends_on"] = self.anchor()
            appended.append(source)
            appended.append(_fresh(target, kind, agent, it, depends_on=[f"{kind}-in"], task=cloud))
        elif variant == 1:  # directly sensitive: private data
            private = {**cloud, "has_private_data": True}
            appended.append(_fresh(target, kind, agent, it, depends_on=self.anchor(), task=private))
        elif variant == 2:  # a security task two steps upstream
            security = {"type": "audit", "provider": "hmcp_gateway", "is_security_task": True}
            appended.append(_fresh(f"{kind}-in", f"{kind}-in", agent, it, task=security))
            appended.append(
                _fresh(f"{kind}-mid", f"{kind}-mid", agent, it, depends_on=[f"{kind}-in"])
            )
            appended.append(_fresh(target, kind, agent, it, depends_on=[f"{kind}-mid"], task=cloud))
        else:  # declared sensitive
            declared = {**cloud, "sensitivity": "sensitive"}
            appended.append(_fresh(target, kind, agent, it, task=declared))
        self.expect(ROUTING_RULE, "veto", target, "routing")

    def provider(self, number: int) -> None:
        position = self.free_position()
        if position is None:
            kind = f"offsite-{number}"
            agent = AGENTS[self.rng.randrange(len(AGENTS))]
            task = {"type": "generation", "provider": UNKNOWN_PROVIDER}
            self.plan.appended.append(_fresh(kind, kind, agent, self.last_iteration, task=task))
            self.expect(ROUTING_RULE, "veto", kind, "provider")
            return

        def set_provider(artifact: Artifact) -> None:
            task = artifact.get("task") or {"type": "generation"}
            artifact["task"] = {**task, "provider": UNKNOWN_PROVIDER}

        self.plan.change(position, set_provider)
        self.expect(ROUTING_RULE, "veto", artifact_id(position), "provider")


def _split(total: int, parts: int) -> list[int]:
    share, rest = divmod(total, parts)
    return [share + (1 if number < rest else 0) for number in range(parts)]


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def generate(
    out: Path,
    *,
    artifacts: int,
    seed: int = 1,
    faults: int = 0,
    projects: int = 1,
    cycle_lengths: Sequence[int] = DEFAULT_CYCLE_LENGTHS,
) -> GeneratedRun:
    """Write ``projects`` JSON Lines manifests of ``artifacts`` base artifacts in all (plus
    the few that faults append) and ``expected.json`` into ``out``."""
    if artifacts < 0 or faults < 0 or projects < 1:
        raise ValueError("artifacts and faults must be >= 0, projects >= 1")
    if not cycle_lengths or min(cycle_lengths) < 1:
        raise ValueError("cycle lengths must be >= 1")
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(f"bench-*{MANIFEST_SUFFIX}"):
        stale.unlink()
    bases = _split(artifacts, projects)
    planners = []
    for number, base in enumerate(bases):
        agents = _agent_table(seed, number, base)
        planners.append(_Planner(seed, number, base, agents, cycle_lengths))
    for kind in FAULT_KINDS:
        for number in range(faults):
            getattr(planners[number % projects], kind)(number)

    manifests: list[Path] = []
    findings: list[ExpectedFinding] = []
    total = 0
    for number, (base, planner) in enumerate(zip(bases, planners, strict=True)):
        path = out / f"{project_id(number)}{MANIFEST_SUFFIX}"
        header = {
            "metaqore": 1,
            "project": {"id": project_id(number), "name": f"Benchmark project {number}"},
            "run": {"id": f"bench-seed-{seed}"},
        }
        plan = planner.plan
        with path.open("w", encoding="utf-8", newline="\n") as stream:
            write = stream.write
            write(_dumps(header) + "\n")
            changes = plan.changes
            for position, artifact in enumerate(base_artifacts(seed, number, base, planner.agents)):
                for change in changes.get(position, ()):
                    change(artifact)
                write(_dumps(artifact) + "\n")
            for artifact in plan.appended:
                write(_dumps(artifact) + "\n")
        total += base + len(plan.appended)
        manifests.append(path)
        findings.extend(plan.findings)

    findings.sort(key=lambda f: (f.project_id, f.artifact_id, f.rule))
    expected = {
        "generator": GENERATOR_VERSION,
        "seed": seed,
        "artifacts": total,
        "base_artifacts": artifacts,
        "projects": projects,
        "faults_per_kind": faults,
        "cycle_lengths": list(cycle_lengths),
        "manifests": [path.name for path in manifests],
        "verdict": "blocked" if findings else "pass",
        "findings": [finding.as_dict() for finding in findings],
    }
    expected_path = out / "expected.json"
    expected_path.write_text(json.dumps(expected, indent=2, sort_keys=True) + "\n", "utf-8")
    return GeneratedRun(out, manifests, expected_path, total, findings)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generate",
        description="Write a seeded synthetic MetaQore run (JSON Lines) and expected.json.",
    )
    parser.add_argument("--artifacts", type=int, required=True, help="base artifacts in all")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", type=int, default=0, help="faults of EACH kind to inject")
    parser.add_argument("--projects", type=int, default=1, help="projects (one file each)")
    parser.add_argument(
        "--cycle-lengths",
        default=",".join(map(str, DEFAULT_CYCLE_LENGTHS)),
        help="lengths of the injected cycles, used in turn (1 = a self-loop)",
    )
    parser.add_argument("--out", type=Path, required=True, help="directory to write into")
    args = parser.parse_args(argv)
    lengths = [int(item) for item in args.cycle_lengths.split(",") if item.strip()]
    run = generate(
        args.out,
        artifacts=args.artifacts,
        seed=args.seed,
        faults=args.faults,
        projects=args.projects,
        cycle_lengths=lengths,
    )
    print(
        f"{run.artifacts} artifacts in {len(run.manifests)} manifest(s), "
        f"{len(run.findings)} expected finding(s): {run.directory}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
