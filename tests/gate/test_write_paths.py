"""Paths from config never make the gate write outside the working tree."""

from __future__ import annotations

import pytest

from metaqore.config import MetaQoreConfig
from metaqore.exceptions import ConfigurationError
from metaqore.gate import GateOptions, run_gate

MANIFEST = "metaqore: 1\nproject: {id: p}\nartifacts:\n  - {id: a, type: t, created_by: x}\n"


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "a.metaqore.yaml").write_text(MANIFEST)
    return root


@pytest.mark.parametrize("audit_log", ["../outside.jsonl", "/tmp/metaqore-escape.jsonl"])
def test_config_audit_path_outside_the_tree_is_refused(repo, audit_log):
    config = MetaQoreConfig(audit_log=audit_log)
    with pytest.raises(ConfigurationError, match="outside the working tree"):
        run_gate(GateOptions(config=config, root=repo))
    assert not (repo.parent / "outside.jsonl").exists()


def test_config_audit_path_through_a_symlink_out_of_the_tree_is_refused(repo, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / "logs").symlink_to(elsewhere)
    config = MetaQoreConfig(audit_log="logs/audit.jsonl")
    with pytest.raises(ConfigurationError, match="outside the working tree"):
        run_gate(GateOptions(config=config, root=repo))
    assert list(elsewhere.iterdir()) == []


def test_config_audit_path_inside_the_tree_and_explicit_paths_are_allowed(repo, tmp_path):
    inside = run_gate(GateOptions(config=MetaQoreConfig(audit_log="logs/a.jsonl"), root=repo))
    assert inside.passed and (repo / "logs" / "a.jsonl").is_file()
    explicit = tmp_path / "chosen.jsonl"
    run_gate(GateOptions(config=MetaQoreConfig(), root=repo, audit_log=str(explicit)))
    assert explicit.is_file()
