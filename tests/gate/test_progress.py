"""Progress on stderr: stages reported by the gate, drawn only on a terminal."""

from __future__ import annotations

import io
import json

from metaqore.cli.progress import TerminalProgress
from metaqore.config import MetaQoreConfig
from metaqore.gate import GateOptions, run_gate


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_in_place_on_a_terminal_and_cleared():
    stream = FakeTerminal()
    progress = TerminalProgress(stream, delay=0)
    progress("loading", 350_000)
    progress.last = 0  # let the next update through the 5-per-second throttle
    progress("judging", 1_000_000)
    progress.clear()
    text = stream.getvalue()
    assert "metaqore: reading manifests — 350,000 artifacts" in text
    assert "metaqore: judging — 1,000,000 artifacts" in text
    assert text.endswith("\r\x1b[K")


def test_nothing_is_drawn_when_stderr_is_not_a_terminal_or_the_run_is_short():
    log = io.StringIO()
    TerminalProgress(log, delay=0)("loading", 10)
    assert log.getvalue() == ""
    terminal = FakeTerminal()
    TerminalProgress(terminal, delay=60)("loading", 10)
    assert terminal.getvalue() == ""


def test_the_gate_reports_each_stage_with_artifact_counts(tmp_path):
    lines = [json.dumps({"metaqore": 1, "project": {"id": "p"}})]
    lines += [
        json.dumps({"id": f"a{n}", "type": "t", "created_by": "x", "iteration": n})
        for n in range(5000)
    ]
    (tmp_path / "run.metaqore.jsonl").write_text("\n".join(lines) + "\n")
    seen: list[tuple[str, int]] = []
    verdict = run_gate(
        GateOptions(
            config=MetaQoreConfig(),
            root=tmp_path,
            audit=False,
            progress=lambda stage, done, total=None: seen.append((stage, done)),
        )
    )
    assert verdict.passed
    stages = [stage for stage, _ in seen]
    assert stages[0] == "loading" and stages[-1] == "auditing"
    assert ("judging", 5000) in seen
    assert max(done for stage, done in seen if stage == "loading") == 5000
