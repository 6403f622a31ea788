"""The ordered prefix: records that depend only on earlier ones are never searched for
cycles, and the search over the rest finds what a search over everything finds."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from metaqore.config import MetaQoreConfig
from metaqore.core.records import ArtifactRecord, RunIndex, _tarjan
from metaqore.gate import GateOptions, run_gate


def _index(dependencies: list[list[int]]) -> RunIndex:
    """Records n0, n1, … in replay order; record n depends on the listed numbers."""
    index = RunIndex()
    for position, targets in enumerate(dependencies):
        index.add(
            ArtifactRecord(
                project="p",
                id=f"n{position}",
                artifact_type="t",
                agent="a",
                content_hash="sha256:" + "0" * 64,
                iteration=1,
                depends_on=[f"n{target}" for target in targets],
                source="m.metaqore.jsonl",
                line=position + 2,
                position=position,
            )
        )
    return index.finalize()


def test_the_prefix_ends_at_the_first_record_with_a_forward_dependency() -> None:
    chain: list[list[int]] = [[]] + [[n - 1] for n in range(1, 10)]
    chain[5].append(7)  # n5 -> n7 -> n6 -> n5
    index = _index(chain)
    assert index.ordered_prefix == 5
    assert not index.in_replay_order
    assert [sorted(component) for component in index.cycles()] == [[5, 6, 7]]
    # Nothing of the prefix was searched: every component lies after it.
    assert min(min(component) for component in index.components()) == 5


def test_an_index_in_replay_order_has_no_components_to_search() -> None:
    index = _index([[]] + [[n - 1] for n in range(1, 6)])
    assert index.ordered_prefix == 6
    assert index.in_replay_order
    assert index.components() == []
    assert index.cycles() == []


def test_a_self_loop_is_a_forward_dependency() -> None:
    index = _index([[], [0], [2, 1], [2]])
    assert index.ordered_prefix == 2
    assert index.cycles() == [[2]]


def _random_dependencies(rng: random.Random) -> list[list[int]]:
    size = rng.randint(1, 40)
    forward_from = rng.randint(0, size)  # records from here on may point forward
    dependencies: list[list[int]] = []
    for node in range(size):
        targets: set[int] = set()
        for _ in range(rng.randint(0, 3)):
            if node >= forward_from and rng.random() < 0.3:
                targets.add(rng.randrange(node, size))
            elif node:
                targets.add(rng.randrange(node))
        dependencies.append(sorted(targets))
    return dependencies


@pytest.mark.parametrize("seed", range(400))
def test_the_search_after_the_prefix_finds_every_cycle_in_dependency_order(seed: int) -> None:
    index = _index(_random_dependencies(random.Random(seed)))
    edges = index.edges()
    size = len(edges)
    prefix = index.ordered_prefix
    assert all(target < node for node in range(prefix) for target in edges[node])

    # The same cycles as Tarjan's search over every record.
    everything = _tarjan(edges, range(size), size)
    expected = {
        frozenset(component)
        for component in everything
        if len(component) > 1 or component[0] in edges[component[0]]
    }
    assert {frozenset(component) for component in index.cycles()} == expected

    # The prefix in replay order, then the components, is an order with every record
    # after everything it depends on, and it holds every record once.
    order = [[node] for node in range(prefix)] + index.components()
    placed: dict[int, int] = {}
    for position, component in enumerate(order):
        for node in component:
            placed[node] = position
    assert sorted(placed) == list(range(size))
    for node, position in placed.items():
        for target in edges[node]:
            assert placed[target] <= position


def test_sensitivity_reaches_a_cycle_from_the_prefix_and_leaves_it(tmp_path: Path) -> None:
    # secret and its readers come first, in replay order; then a cycle that reads one of
    # them; then an artifact routed to openrouter that reads the cycle.
    artifacts: list[dict[str, object]] = [
        {"id": "secret", "type": "data", "created_by": "a", "task": {"has_sensitive_data": True}},
        {"id": "reader", "type": "code", "created_by": "a", "depends_on": ["secret"]},
        {"id": "loop-a", "type": "plan", "created_by": "a", "depends_on": ["loop-b", "reader"]},
        {"id": "loop-b", "type": "plan2", "created_by": "a", "depends_on": ["loop-a"]},
        {
            "id": "export",
            "type": "report",
            "created_by": "a",
            "depends_on": ["loop-b"],
            "task": {"provider": "openrouter"},
        },
    ]
    lines = [json.dumps({"metaqore": 1, "project": {"id": "p"}})]
    lines += [json.dumps(artifact) for artifact in artifacts]
    (tmp_path / "run.metaqore.jsonl").write_text("\n".join(lines) + "\n")
    verdict = run_gate(GateOptions(config=MetaQoreConfig(), root=tmp_path, audit=False))
    found = sorted((finding.rule, finding.artifact_id) for finding in verdict.blocking)
    assert found == [("circular_dependency", "loop-b"), ("default_local_first", "export")]
    [veto] = [finding for finding in verdict.blocking if finding.artifact_id == "export"]
    assert veto.evidence["sensitivity_source"] == "secret"
