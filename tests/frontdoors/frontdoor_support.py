"""Running the front doors as GitHub and pre-commit would: action steps, hook repos, git."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
ACTION = REPO / "action.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent  # the virtualenv's scripts: metaqore, pre-commit, ...
TIMEOUT = 600

#: Inputs and outputs SPEC §11 names.
SPEC_INPUTS = (
    "manifests",
    "config",
    "mode",
    "policy",
    "fail-on",
    "audit-log",
    "sarif",
    "junit",
    "json",
    "baseline",
    "db",
    "python-version",
    "summary",
    "annotations",
    "upload-audit",
)
SPEC_OUTPUTS = ("verdict", "blocking", "conflicts", "vetoes", "audit-log", "report")

PASSING = """\
metaqore: 1
project: {id: alpha}
artifacts:
  - {id: spec, type: design, created_by: architect}
  - {id: code, type: code, created_by: coder, depends_on: [spec]}
"""
BLOCKING = """\
metaqore: 1
project: {id: beta}
artifacts:
  - {id: beta-spec, type: design, created_by: architect}
  - {id: beta-code, type: code, created_by: coder, depends_on: [nowhere]}
"""
#: One project over two files: the code needs the spec declared in the other file.
CROSS_FILE = {
    "delta/spec.metaqore.yaml": """\
metaqore: 1
project: {id: delta}
run: {iteration: 1}
artifacts:
  - {id: delta-spec, type: design, created_by: architect}
""",
    "delta/code.metaqore.yaml": """\
metaqore: 1
project: {id: delta}
run: {iteration: 2}
artifacts:
  - {id: delta-code, type: code, created_by: coder, depends_on: [delta-spec]}
""",
}


def write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without METAQORE_/GITHUB_/pre-commit settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("METAQORE_", "GITHUB_", "PRE_COMMIT", "INPUT_", "GIT_"))
        and key not in {"NO_COLOR", "FORCE_COLOR", "VIRTUAL_ENV", "PYTHONPATH"}
    }
    env["PATH"] = os.pathsep.join([str(BIN), env.get("PATH", "")])
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra)
    return env


# -- action.yml ---------------------------------------------------------------------------------
def load_action() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(ACTION.read_text(encoding="utf-8"))
    return loaded


_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def expressions(text: str) -> list[str]:
    return _EXPRESSION.findall(text)


@dataclass
class Context:
    """What the ``${{ }}`` expressions of the action's env/with mappings can read."""

    inputs: dict[str, str]
    action_path: str
    steps: dict[str, dict[str, str]] = field(default_factory=dict)

    def value(self, expression: str) -> str:
        if expression == "github.action_path":
            return self.action_path
        match = re.fullmatch(r"inputs\.([A-Za-z0-9_-]+)", expression)
        if match:
            return self.inputs[match.group(1)]
        match = re.fullmatch(r"steps\.([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)", expression)
        if match:
            return self.steps.get(match.group(1), {}).get(match.group(2), "")
        raise AssertionError(f"the test cannot evaluate the expression {expression!r}")

    def evaluate(self, text: str) -> str:
        return _EXPRESSION.sub(lambda match: self.value(match.group(1)), text)


def action_inputs(action: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    """Every input's value as GitHub passes it: the given one, else the default, else ''."""
    unknown = set(given) - set(action["inputs"])
    assert not unknown, f"not inputs of the action: {unknown}"
    return {
        name: str(given.get(name, spec.get("default", "")))
        for name, spec in action["inputs"].items()
    }


def parse_github_output(text: str) -> dict[str, str]:
    """``name=value`` and ``name<<DELIMITER`` … ``DELIMITER`` entries of $GITHUB_OUTPUT."""
    values: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body: list[str] = []
            while lines[index] != delimiter:
                body.append(lines[index])
                index += 1
            index += 1
            values[name] = "\n".join(body)
        else:
            name, value = line.split("=", 1)
            values[name] = value
    return values


@dataclass
class StepResult:
    name: str
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]

    def __str__(self) -> str:
        return (
            f"step {self.name!r} -> exit {self.returncode}\n--- stdout ---\n{self.stdout}\n"
            f"--- stderr ---\n{self.stderr}"
        )


def run_script(
    step: Mapping[str, Any],
    context: Context,
    *,
    workdir: Path,
    summary_file: Path,
    extra_env: Mapping[str, str] | None = None,
) -> StepResult:
    """One ``run:`` step as a GitHub runner runs ``shell: bash``: the script in a file,
    ``bash --noprofile --norc -eo pipefail FILE``, the step's ``env:`` evaluated, a fresh
    ``$GITHUB_OUTPUT`` file and the job's ``$GITHUB_STEP_SUMMARY``."""
    assert step["shell"] == "bash"
    index = len(list(workdir.parent.glob("step-*.sh")))
    script = workdir.parent / f"step-{index}.sh"
    script.write_text(step["run"], encoding="utf-8")
    output_file = workdir.parent / f"step-{index}.output"
    output_file.write_text("", encoding="utf-8")
    env = clean_env(
        GITHUB_ACTIONS="true",
        CI="true",
        GITHUB_WORKSPACE=str(workdir),
        GITHUB_OUTPUT=str(output_file),
        GITHUB_STEP_SUMMARY=str(summary_file),
        RUNNER_TEMP=str(workdir.parent),
    )
    env.update({name: context.evaluate(str(value)) for name, value in step.get("env", {}).items()})
    env.update(extra_env or {})
    completed = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )
    outputs = parse_github_output(output_file.read_text(encoding="utf-8"))
    if "id" in step:
        context.steps[step["id"]] = outputs
    return StepResult(
        step.get("name", "?"), completed.returncode, completed.stdout, completed.stderr, outputs
    )


# -- git and pre-commit -------------------------------------------------------------------------
@dataclass(frozen=True)
class HookRepo:
    """A committed copy of this checkout for pre-commit (see conftest.py)."""

    path: Path  # a git repository holding this checkout at one commit
    pre_commit_home: Path  # pre-commit's cache, shared by the run
    git_home: Path  # where git_env() keeps the isolated git config


def git_env(home: Path) -> dict[str, str]:
    """A git that ignores the user's and the system's configuration."""
    config = home / "gitconfig"
    if not config.exists():
        home.mkdir(parents=True, exist_ok=True)
        config.write_text(
            "[user]\n\tname = MetaQore Tests\n\temail = tests@metaqore.invalid\n"
            "[commit]\n\tgpgsign = false\n[init]\n\tdefaultBranch = main\n",
            encoding="utf-8",
        )
    return clean_env(GIT_CONFIG_GLOBAL=str(config), GIT_CONFIG_NOSYSTEM="1")


def git(*args: str, cwd: Path, env: Mapping[str, str]) -> str:
    completed = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return completed.stdout


def tracked_and_new_files(repo: Path) -> list[str]:
    """The working tree as a commit of it would hold it: tracked files that still exist
    and untracked ones that are not ignored (uncommitted work included)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode("utf-8")
    return sorted({name for name in listed.split("\0") if name and (repo / name).is_file()})


@dataclass
class Completed:
    args: list[str]
    returncode: int
    output: str

    def __str__(self) -> str:
        return f"{' '.join(self.args)} -> exit {self.returncode}\n{self.output}"


def run(args: list[str], *, cwd: Path, env: Mapping[str, str]) -> Completed:
    completed = subprocess.run(
        args,
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        check=False,
    )
    return Completed(args, completed.returncode, completed.stdout)
