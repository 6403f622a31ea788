"""Order and determinism: the same manifests give the same verdict, findings and audit.

Whatever order the files are named in, and however often the gate runs, the exit code,
the JSON report (fingerprints, statuses, messages, order), the terminal report and the
run's section of the audit file are identical -- apart from what must differ per run:
timestamps, run ids, ``started_at`` and the chain fields (``seq``, ``prev_hash``, ``hash``).
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from manifest_model import NotRoundTrippable, RunModel, render, run_models
from reliability_support import record_figures, run_in_process

CHAIN_FIELDS = ("timestamp", "run_id", "seq", "prev_hash", "hash")
PER_RUN_PAYLOAD = ("run_id", "started_at")
_names = itertools.count()


def normalised_section(audit: Path, run_id: str) -> list[dict[str, Any]]:
    """The run's records without what differs per run."""
    section = []
    for line in audit.read_bytes().splitlines():
        record = json.loads(line)
        if record["run_id"] != run_id:
            continue
        for name in CHAIN_FIELDS:
            del record[name]
        for name in PER_RUN_PAYLOAD:
            record["payload"].pop(name, None)
        section.append(record)
    assert section and section[0]["event_type"] == "run_started"
    return section


def drop_timestamps(report: dict[str, Any]) -> None:
    """Remove when the verdict was reached (the report's only timestamps)."""
    report.pop("generated_at")
    for blocking in report["blocking_reports"]:
        blocking.pop("generated_at")
        for conflict in blocking["conflicts"]:
            conflict.pop("created_at")


def judge(directory: Path, paths: list[str], options: list[str]) -> tuple[Any, ...]:
    """(exit code, JSON report, terminal text, audit section), per-run values removed."""
    name = f"report-{next(_names)}.json"
    result = run_in_process(
        ["check", *paths, *options, "--json", name, "--no-color", "--no-github"], cwd=directory
    )
    assert result.code in (0, 1), str(result)
    report = json.loads((directory / name).read_text())
    run_id = report.pop("run_id")
    audit = report.pop("audit")
    drop_timestamps(report)
    assert audit["path"] == "metaqore-audit.jsonl"
    text = [line for line in result.stdout.splitlines() if not line.startswith("audit: ")]
    section = normalised_section(directory / "metaqore-audit.jsonl", run_id)
    return result.code, report, text, section


def write(model: RunModel, directory: Path) -> list[str]:
    for manifest in model.manifests:
        (directory / manifest.name).write_bytes(render(manifest))
    return [manifest.name for manifest in model.manifests]


def _permutation_test(examples: int, *, slow: bool) -> Any:
    counter = {"inputs": 0}

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=not slow,
        suppress_health_check=list(HealthCheck),
    )
    @given(model=run_models(max_files=4), data=st.data())
    def check(model: RunModel, data: st.DataObject) -> None:
        directory = Path(tempfile.mkdtemp(prefix="metaqore-order-"))
        try:
            try:
                names = write(model, directory)
            except NotRoundTrippable:
                return
            order = data.draw(st.permutations(names), label="order")
            counter["inputs"] += 1
            reference = judge(directory, names, model.options())
            assert judge(directory, list(order), model.options()) == reference
            assert judge(directory, [*order, *names[:1]], model.options()) == reference
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def test() -> None:
        check()
        record_figures("determinism.permutations", slow=slow, inputs=counter["inputs"], failures=0)

    return test


test_any_order_of_the_files_gives_the_same_verdict = _permutation_test(150, slow=False)
test_any_order_of_the_files_gives_the_same_verdict_long = pytest.mark.slow(
    _permutation_test(1000, slow=True)
)

RICH = {
    "a.metaqore.yaml": """metaqore: 1
project: {id: shop}
run: {id: r1, iteration: 1}
artifacts:
  - {id: plan, type: plan, created_by: planner, data: {b: 2, a: 1}}
  - {id: plan-b, type: plan, created_by: architect}
  - {id: code, type: code, created_by: coder, version: 3, depends_on: [plan, ghost]}
  - {id: loop-a, type: loop, created_by: coder, depends_on: [loop-b]}
  - {id: loop-b, type: loop, created_by: coder, depends_on: [loop-a]}
  - {id: leak, type: code, created_by: coder, depends_on: [secret], iteration: 2,
     task: {provider: openrouter}}
tasks:
  - {id: t1, title: T, status: completed, history: [pending, completed]}
events:
  - {kind: graph_node, id: n1, parent: null, agent: planner, depth: 5}
  - {kind: message, conversation: c1, turn: 12, sender: planner, recipients: [coder]}
""",
    "b.metaqore.json": json.dumps(
        {
            "metaqore": 1,
            "project": {"id": "shop"},
            "artifacts": [
                {
                    "id": "secret",
                    "type": "data",
                    "created_by": "ingest",
                    "task": {"has_private_data": True, "provider": "ollama"},
                },
                {"id": "plan-c", "type": "plan", "created_by": "reviewer", "iteration": 1},
            ],
        }
    ),
    "c.metaqore.jsonl": "\n".join(
        [
            json.dumps({"metaqore": 1, "project": {"id": "billing"}}),
            json.dumps(
                {
                    "id": "inv",
                    "type": "invoice",
                    "created_by": "biller",
                    "task": {"provider": "mystery-llm"},
                }
            ),
            json.dumps({"id": "inv2", "type": "invoice", "created_by": "auditor", "version": 5}),
        ]
    )
    + "\n",
}


@pytest.mark.parametrize("mode", ["strict", "adaptive"])
def test_twenty_runs_are_identical(tmp_path: Path, mode: str) -> None:
    for name, text in RICH.items():
        (tmp_path / name).write_text(text)
    names = sorted(RICH)
    options = ["--mode", mode]
    reference = judge(tmp_path, names, options)
    code, report, _text, section = reference
    assert code == 1 and len(report["findings"]) >= 10
    assert {f["rule"] for f in report["findings"]} >= {
        "version_mismatch",
        "parallel_creation",
        "missing_dependency",
        "circular_dependency",
        "default_local_first",
        "state_transition",
        "max_graph_depth",
        "max_conversation_turns",
    }
    for run in range(20):
        order = names[run % 3 :] + names[: run % 3]
        assert judge(tmp_path, order, options) == reference, f"run {run + 2} differs"
    records = (tmp_path / "metaqore-audit.jsonl").read_bytes().count(b"\n")
    assert records == 21 * len(section)
    record_figures("determinism.repeated", slow=False, mode=mode, runs=21, failures=0)
