"""A run that cannot finish still leaves a closed, valid section in the audit chain."""

from __future__ import annotations

import json

import pytest

from metaqore.config import MetaQoreConfig
from metaqore.core.audit import verify_audit_log
from metaqore.exceptions import StorageError
from metaqore.gate import GateOptions, run_gate

MANIFEST = "metaqore: 1\nproject: {id: p}\nartifacts:\n  - {id: a, type: t, created_by: x}\n"


def _events(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_store_that_cannot_be_opened_leaves_a_failed_run_record(tmp_path):
    (tmp_path / "a.metaqore.yaml").write_text(MANIFEST)
    (tmp_path / "not-a-dir").write_text("a file where the store's directory should be")
    options = GateOptions(
        config=MetaQoreConfig(), root=tmp_path, db="sqlite:///not-a-dir/state.db"
    )
    with pytest.raises(StorageError):
        run_gate(options)
    audit = tmp_path / "metaqore-audit.jsonl"
    events = _events(audit)
    assert [e["event_type"] for e in events] == ["run_started", "run_finished"]
    finished = events[-1]["payload"]
    assert finished["verdict"] == "error"
    assert finished["error"] == "StorageError"
    assert finished["exit_code"] == 2
    assert verify_audit_log(audit).ok


def test_an_internal_error_after_the_section_opened_closes_it(tmp_path, monkeypatch):
    (tmp_path / "a.metaqore.yaml").write_text(MANIFEST)
    import metaqore.gate.replay as replay

    real = replay._write_audit

    def breaks_halfway(auditor, judge, verdict, started):
        real(auditor, judge, verdict, started)
        raise RuntimeError("simulated bug while writing the run")

    monkeypatch.setattr(replay, "_write_audit", breaks_halfway)
    with pytest.raises(RuntimeError):
        run_gate(GateOptions(config=MetaQoreConfig(), root=tmp_path))
    audit = tmp_path / "metaqore-audit.jsonl"
    kinds = [e["event_type"] for e in _events(audit)]
    assert kinds[0] == "run_started"
    assert kinds.count("run_started") == 1
    last = _events(audit)[-1]
    assert last["event_type"] == "run_finished"
    assert last["payload"]["verdict"] == "error"
    assert last["payload"]["exit_code"] == 3
    assert last["payload"]["messages"] == []  # an internal error's text is not recorded
    assert verify_audit_log(audit).ok
