"""The copy-paste configuration the README shows for each front door (kept in snippets/).

Each snippet must be valid for the tool that reads it and must use only what the front
door really offers; once the README quotes a snippet, it must quote it exactly.
"""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from frontdoor_support import BIN, HOOKS, REPO, clean_env, expressions, load_action

from pytest_metaqore import plugin

SNIPPETS = Path(__file__).resolve().parent / "snippets"
WORKFLOW = SNIPPETS / "governance-workflow.yml"
PRE_COMMIT_CONFIG = SNIPPETS / "pre-commit-config.yaml"
PYPROJECT = SNIPPETS / "pyproject-pytest.toml"


def _check_jsonschema(schema: str, path: Path) -> None:
    completed = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=clean_env(),
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def _workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return loaded


def test_workflow_is_a_valid_github_workflow() -> None:
    _check_jsonschema("vendor.github-workflows", WORKFLOW)


def test_workflow_uses_the_action_and_uploads_its_sarif() -> None:
    action = load_action()
    workflow = _workflow()
    assert workflow["permissions"]["security-events"] == "write"
    steps = workflow["jobs"]["metaqore"]["steps"]
    [gate] = [step for step in steps if step.get("uses", "").startswith("metaqore/metaqore@")]
    assert set(gate["with"]) <= set(action["inputs"])
    [upload] = [
        s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif@")
    ]
    assert upload["with"]["sarif_file"] == gate["with"]["sarif"]
    assert upload["if"].startswith("always()")  # a blocked gate still uploads its findings
    # Every output the workflow reads is one the action has, read from the gate step.
    referenced = [
        expression
        for step in steps
        for value in step.get("env", {}).values()
        for expression in expressions(str(value))
    ]
    assert referenced
    for expression in referenced:
        match = re.fullmatch(r"steps\.([a-z-]+)\.outputs\.([a-z-]+)", expression)
        assert match, expression
        assert match.group(1) == gate["id"]
        assert match.group(2) in action["outputs"]
    assert {re.sub(r".*\.", "", e) for e in referenced} == set(action["outputs"])
    for step in steps:  # the workflow follows the action's own rule: no ${{ }} in scripts
        assert expressions(step.get("run", "")) == []


def test_pre_commit_config_is_valid_and_names_the_hook(tmp_path: Path) -> None:
    completed = subprocess.run(
        [str(BIN / "pre-commit"), "validate-config", str(PRE_COMMIT_CONFIG)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env=clean_env(PRE_COMMIT_HOME=str(tmp_path / "cache")),
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    config = yaml.safe_load(PRE_COMMIT_CONFIG.read_text(encoding="utf-8"))
    hook_ids = {hook["id"] for hook in yaml.safe_load(HOOKS.read_text(encoding="utf-8"))}
    [repo] = config["repos"]
    assert {hook["id"] for hook in repo["hooks"]} <= hook_ids


def test_pyproject_uses_the_plugin_ini_keys(pytester: pytest.Pytester) -> None:
    text = PYPROJECT.read_text(encoding="utf-8")
    options = tomllib.loads(text)["tool"]["pytest"]["ini_options"]
    keys = {name for name, value in vars(plugin).items() if name.startswith("INI_")}
    known = {getattr(plugin, name) for name in keys}
    assert set(options) - {"addopts"} <= known
    assert re.findall(r"^# (metaqore_\w+) =", text, flags=re.M) == ["metaqore_db"]
    # pytest accepts it as it is (with --strict-config: no unknown key).
    pytester.makepyprojecttoml(text.replace('addopts = ["--metaqore"]', ""))
    result = pytester.runpytest("--strict-config", "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout.str()


@pytest.mark.parametrize(
    ("snippet", "fence"),
    [(WORKFLOW, "yaml"), (PRE_COMMIT_CONFIG, "yaml"), (PYPROJECT, "toml")],
    ids=["workflow", "pre-commit", "pyproject"],
)
def test_readme_quotes_the_snippets_exactly(snippet: Path, fence: str) -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first_line = snippet.read_text(encoding="utf-8").splitlines()[0]
    blocks = re.findall(rf"```{fence}\n(.*?)```", readme, flags=re.S)
    quoting = [block for block in blocks if block.splitlines()[:1] == [first_line]]
    assert quoting, f"the README no longer quotes {snippet.name}"
    assert quoting == [snippet.read_text(encoding="utf-8")]
