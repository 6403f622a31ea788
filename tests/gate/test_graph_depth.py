"""Graph depth is what the parent links say: a declared depth cannot hide a deep chain."""

from __future__ import annotations

import pytest

from metaqore.config import MetaQoreConfig
from metaqore.core.security import SecureGateway, graph_depths
from metaqore.gate import GateOptions, run_gate


def test_depths_follow_parents_in_any_order():
    nodes = [("n4", "n3", 1), ("n1", None, None), ("n3", "n2", None), ("n2", "n1", 1)]
    assert graph_depths(nodes) == {"n1": 1, "n2": 2, "n3": 3, "n4": 4}
    # A declared depth may only add; an unknown parent counts as depth 1.
    assert graph_depths([("a", None, 5), ("b", "a", None), ("c", "ghost", None)]) == {
        "a": 5,
        "b": 6,
        "c": 2,
    }
    # A parent cycle ends (cut where it closes), and a long chain needs no recursion.
    assert set(graph_depths([("x", "y", None), ("y", "x", None)])) == {"x", "y"}
    chain = [(f"n{i}", f"n{i - 1}" if i else None, None) for i in range(200_000)]
    assert graph_depths(reversed(chain))["n199999"] == 200_000


def test_the_gateway_does_not_believe_a_shallower_declared_depth():
    gateway = SecureGateway(config=MetaQoreConfig(max_graph_depth=3))
    verdicts = [
        gateway.veto_graph_node(
            {"id": f"n{i}", "parent": f"n{i - 1}" if i > 1 else None, "depth": 1}
        )
        for i in range(1, 5)
    ]
    assert verdicts[:3] == [None, None, None]
    assert verdicts[3] is not None and verdicts[3].policy_violated == "max_graph_depth"
    assert "depth 4" in verdicts[3].reason


@pytest.mark.parametrize("declared", ["", ", depth: 1"])
def test_a_chain_split_over_files_out_of_order_is_vetoed(tmp_path, declared):
    (tmp_path / "a.metaqore.yaml").write_text(
        "metaqore: 1\nproject: {id: p}\nevents:\n"
        f"  - {{kind: graph_node, id: n4, parent: n3{declared}}}\n"
        f"  - {{kind: graph_node, id: n1, parent: null{declared}}}\n"
    )
    (tmp_path / "b.metaqore.yaml").write_text(
        "metaqore: 1\nproject: {id: p}\nevents:\n"
        f"  - {{kind: graph_node, id: n2, parent: n1{declared}}}\n"
        f"  - {{kind: graph_node, id: n3, parent: n2{declared}}}\n"
    )
    verdict = run_gate(GateOptions(config=MetaQoreConfig(), root=tmp_path, audit=False))
    assert not verdict.passed
    assert [(f.rule, f.artifact_id) for f in verdict.blocking] == [("max_graph_depth", "n4")]
