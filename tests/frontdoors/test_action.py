"""The composite GitHub Action (action.yml): its metadata, and its shell steps run locally.

The steps' scripts run as a GitHub runner runs them (``bash --noprofile --norc -eo
pipefail``, the step's ``env:`` evaluated from the inputs, fresh ``$GITHUB_OUTPUT`` files
and one ``$GITHUB_STEP_SUMMARY``); the ``uses:`` steps (setup-python, upload-artifact) are
GitHub's and are checked for how they are wired, not run.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from frontdoor_support import (
    ACTION,
    BIN,
    BLOCKING,
    PASSING,
    REPO,
    SPEC_INPUTS,
    SPEC_OUTPUTS,
    Context,
    StepResult,
    action_inputs,
    clean_env,
    expressions,
    load_action,
    run_script,
    write,
)

from metaqore.core.audit import verify_audit_log


def _steps(action: dict[str, Any]) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = action["runs"]["steps"]
    return steps


def _step(action: dict[str, Any], name_part: str) -> dict[str, Any]:
    [step] = [s for s in _steps(action) if name_part in s.get("name", "")]
    return step


# -- metadata -----------------------------------------------------------------------------------
def test_action_validates_against_the_github_action_schema() -> None:
    completed = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(ACTION)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=clean_env(),
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "ok -- validation done" in completed.stdout


def test_inputs_and_outputs_are_the_specs() -> None:
    action = load_action()
    assert action["runs"]["using"] == "composite"
    assert set(SPEC_INPUTS) <= set(action["inputs"])
    for toggle in ("summary", "annotations", "upload-audit"):
        assert action["inputs"][toggle]["default"] == "true"
    assert set(action["outputs"]) == set(SPEC_OUTPUTS)
    for name, output in action["outputs"].items():
        assert output["value"] == f"${{{{ steps.gate.outputs.{name} }}}}"
        assert output["description"]


def test_no_input_is_pasted_into_a_script() -> None:
    action = load_action()
    scripts = [step["run"] for step in _steps(action) if "run" in step]
    assert len(scripts) == 3
    for script in scripts:
        assert expressions(script) == []  # no ${{ ... }} at all: inputs come through env
    # The same check on the raw text, so YAML tricks (anchors, folded scalars) can't hide
    # an expression: every line of every run: block, found by indentation.
    lines = ACTION.read_text(encoding="utf-8").splitlines()
    in_run, indent, checked = False, 0, 0
    for line in lines:
        stripped = line.lstrip()
        if in_run:
            if stripped and len(line) - len(stripped) <= indent:
                in_run = False
            else:
                checked += 1
                assert "${{" not in line, line
        match = re.match(r"^(\s*)(- )?run:", line)
        if match:
            in_run, indent = True, len(match.group(1))
    assert checked > 40


def test_every_input_is_used_and_every_expression_is_known() -> None:
    action = load_action()
    text = ACTION.read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{\{[^}]*\binputs\.([A-Za-z0-9_-]+)", text))
    used |= set(re.findall(r"\binputs\.([A-Za-z0-9_-]+) ==", text))
    assert used == set(action["inputs"])
    gate = _step(action, "Run the MetaQore gate")
    assert gate["id"] == "gate"
    for name, value in gate["env"].items():
        assert name.startswith("INPUT_")
        assert re.fullmatch(r"\$\{\{ inputs\.[a-z-]+ \}\}", value), value


def test_github_actions_are_wired_as_expected() -> None:
    action = load_action()
    setup = _step(action, "Set up Python")
    assert setup["uses"] == "actions/setup-python@v5"
    assert setup["with"]["python-version"] == "${{ inputs.python-version }}"
    upload = _step(action, "Upload the audit log")
    assert upload["uses"] == "actions/upload-artifact@v4"
    assert upload["if"] == "always() && inputs.upload-audit == 'true' && inputs.audit-log != ''"
    install = _step(action, "Install MetaQore")
    assert install["env"] == {"METAQORE_ACTION_PATH": "${{ github.action_path }}"}
    last = _steps(action)[-1]
    assert last["if"] == "always()"
    assert last["env"] == {"METAQORE_EXIT_CODE": "${{ steps.gate.outputs.exit-code }}"}


# -- the steps, run locally ---------------------------------------------------------------------
class ActionRun:
    """The action's steps, in order, against a workspace (like one job)."""

    def __init__(self, tmp_path: Path, **given: str) -> None:
        self.action = load_action()
        self.workspace = tmp_path / "workspace"
        self.workspace.mkdir()
        self.summary = tmp_path / "step-summary.md"
        self.summary.write_text("", encoding="utf-8")
        self.context = Context(
            inputs=action_inputs(self.action, given), action_path=str(REPO.resolve())
        )

    def step(self, name_part: str, **extra_env: str) -> StepResult:
        return run_script(
            _step(self.action, name_part),
            self.context,
            workdir=self.workspace,
            summary_file=self.summary,
            extra_env=extra_env,
        )

    def gate(self) -> tuple[StepResult, StepResult]:
        """The gate step, then the final exit step (what decides the job's outcome)."""
        gate = self.step("Run the MetaQore gate")
        assert gate.returncode == 0, gate  # the gate step itself always succeeds
        return gate, self.step("Exit with the gate's code")

    def uploaded(self) -> list[Path]:
        upload = _step(self.action, "Upload the audit log")
        paths = self.context.evaluate(upload["with"]["path"]).split()
        return [self.workspace / path for path in paths]


def test_install_step_installs_the_action_checkout(tmp_path: Path) -> None:
    # A stand-in `python` records what the step runs (the real one would reinstall
    # MetaQore into the test environment).
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    record = tmp_path / "python-args"
    python = fake_bin / "python"
    python.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{record}"\n', encoding="utf-8")
    python.chmod(0o755)
    run = ActionRun(tmp_path)
    result = run.step("Install MetaQore", PATH=f"{fake_bin}:/usr/bin:/bin")
    assert result.returncode == 0, result
    args = record.read_text(encoding="utf-8").splitlines()
    assert args[:3] == ["-m", "pip", "install"]
    # The action's own checkout, with the PostgreSQL driver for the `db` input.
    assert args[-1] == f"{REPO.resolve()}[postgres]"


def test_passing_run(tmp_path: Path) -> None:
    run = ActionRun(tmp_path, json="reports/metaqore.json")
    write(run.workspace, {"agents/alpha.metaqore.yaml": PASSING})
    gate, final = run.gate()
    assert final.returncode == 0, final
    assert gate.outputs == {
        "verdict": "pass",
        "blocking": "0",
        "conflicts": "0",
        "vetoes": "0",
        "audit-log": "metaqore-audit.jsonl",
        "report": "reports/metaqore.json",
        "exit-code": "0",
    }
    assert json.loads((run.workspace / "reports/metaqore.json").read_text())["verdict"] == "pass"
    summary = run.summary.read_text(encoding="utf-8")
    assert summary.startswith("## ✅ MetaQore: pass")
    assert "::error" not in gate.stdout
    assert "metaqore: PASS" in gate.stdout
    audit, head = run.uploaded()
    assert verify_audit_log(audit).ok and head.name == "metaqore-audit.jsonl.head"
    assert head.is_file()


def test_blocking_run(tmp_path: Path) -> None:
    run = ActionRun(
        tmp_path,
        manifests="agents/alpha.metaqore.yaml\n  agents/beta.metaqore.yaml  ",
        sarif="metaqore.sarif",
        junit="metaqore.xml",
        **{"audit-log": "logs/audit.jsonl"},
    )
    write(
        run.workspace,
        {
            "agents/alpha.metaqore.yaml": PASSING,
            "agents/beta.metaqore.yaml": BLOCKING,
            "agents/ignored.metaqore.yaml": BLOCKING.replace("beta", "ignored"),
        },
    )
    gate, final = run.gate()
    assert final.returncode == 1, final
    outputs = gate.outputs
    assert (outputs["verdict"], outputs["blocking"], outputs["conflicts"]) == ("blocked", "1", "1")
    assert (outputs["vetoes"], outputs["report"], outputs["exit-code"]) == ("0", "", "1")
    assert outputs["audit-log"] == "logs/audit.jsonl"
    # Annotations on stdout, as workflow commands at the manifest line.
    annotations = [line for line in gate.stdout.splitlines() if line.startswith("::error ")]
    assert annotations == [
        line
        for line in annotations
        if line.startswith("::error file=agents/beta.metaqore.yaml,line=5,")
    ]
    assert len(annotations) == 1 and "missing_dependency (beta)" in annotations[0]
    # The job summary: the Markdown report with the verdict and the finding.
    summary = run.summary.read_text(encoding="utf-8")
    assert summary.startswith("## ❌ MetaQore: blocked")
    assert "| ❌ blocking | 🟠 high | missing\\_dependency | beta | beta-code |" in summary
    assert "ignored" not in summary  # only the manifests given were judged
    sarif = json.loads((run.workspace / "metaqore.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    assert (run.workspace / "metaqore.xml").read_text().startswith("<?xml")
    audit, _head = run.uploaded()
    assert audit == run.workspace / "logs/audit.jsonl" and verify_audit_log(audit).ok


def test_summary_and_annotations_can_be_switched_off(tmp_path: Path) -> None:
    run = ActionRun(tmp_path, summary="false", annotations="false")
    write(run.workspace, {"beta.metaqore.yaml": BLOCKING})
    gate, final = run.gate()
    assert final.returncode == 1
    assert gate.outputs["verdict"] == "blocked"  # the outputs are always written
    assert run.summary.read_text(encoding="utf-8") == ""
    lines = gate.stdout.splitlines()
    [stop] = [line for line in lines if line.startswith("::stop-commands::")]
    token = stop.removeprefix("::stop-commands::")
    assert len(token) > 12
    start, end = lines.index(stop), lines.index(f"::{token}::")
    errors = [n for n, line in enumerate(lines) if line.startswith("::error ")]
    # GitHub processes no workflow command between the markers: the annotation is inert.
    assert errors and all(start < n < end for n in errors)


def test_unreadable_manifest_exits_2_and_keeps_the_audit(tmp_path: Path) -> None:
    run = ActionRun(tmp_path)
    write(run.workspace, {"beta.metaqore.yaml": BLOCKING.replace("created_by", "createdby", 1)})
    gate, final = run.gate()
    assert final.returncode == 2, final
    assert gate.outputs == {
        "verdict": "error",
        "blocking": "",
        "conflicts": "",
        "vetoes": "",
        "audit-log": "",
        "report": "",
        "exit-code": "2",
    }
    assert "beta.metaqore.yaml:4:" in gate.stderr and "unknown key 'createdby'" in gate.stderr
    # The problem is annotated on the manifest line, not only printed.
    assert "::error file=beta.metaqore.yaml,line=4," in gate.stdout
    audit, _head = run.uploaded()
    assert verify_audit_log(audit).ok  # the failed run is in the chain that is uploaded
    last = json.loads(audit.read_text(encoding="utf-8").splitlines()[-1])
    assert last["payload"]["verdict"] == "error"


@pytest.mark.parametrize("bad", ["yes", "True", ""])
def test_toggles_must_be_true_or_false(tmp_path: Path, bad: str) -> None:
    run = ActionRun(tmp_path, annotations=bad)
    write(run.workspace, {"alpha.metaqore.yaml": PASSING})
    gate, final = run.gate()
    assert "::error title=metaqore::input annotations must be true or false" in gate.stdout
    assert gate.outputs == {"exit-code": "2"}
    assert final.returncode == 2


def test_inputs_are_data_never_code(tmp_path: Path) -> None:
    run = ActionRun(
        tmp_path,
        manifests='$(touch pwned-1) `touch pwned-2` ; touch pwned-3 "*.metaqore.yaml',
        policy="default; touch pwned-4",
    )
    write(run.workspace, {"alpha.metaqore.yaml": PASSING})
    gate, final = run.gate()
    assert final.returncode == 2, gate  # bad arguments: the gate could not judge
    assert not list(run.workspace.glob("pwned-*"))
    assert not list(Path.cwd().glob("pwned-*"))


def test_bad_mode_is_reported_with_exit_2(tmp_path: Path) -> None:
    run = ActionRun(tmp_path, mode="lenient")
    write(run.workspace, {"alpha.metaqore.yaml": PASSING})
    gate, final = run.gate()
    assert final.returncode == 2
    assert "invalid choice: 'lenient'" in gate.stderr
