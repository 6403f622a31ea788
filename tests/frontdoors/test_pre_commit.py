"""The pre-commit hook (.pre-commit-hooks.yaml), run by the real pre-commit.

pre-commit builds the hook's virtualenv from a commit of this checkout (``hook_repo``,
shared by the run), so these tests need PyPI for MetaQore's dependencies the first time.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from frontdoor_support import (
    BIN,
    BLOCKING,
    CROSS_FILE,
    HOOKS,
    PASSING,
    Completed,
    HookRepo,
    git,
    git_env,
    run,
    write,
)


def _project(
    tmp_path: Path, hook_repo: HookRepo, files: dict[str, str]
) -> tuple[Path, dict[str, str]]:
    """A committed git repository holding ``files``, and the environment to run in it."""
    project = tmp_path / "project"
    project.mkdir()
    env = git_env(hook_repo.git_home)
    env["PRE_COMMIT_HOME"] = str(hook_repo.pre_commit_home)
    env["PRE_COMMIT_COLOR"] = "never"
    git("init", "-q", cwd=project, env=env)
    write(project, {".gitignore": "metaqore-audit.jsonl*\n", **files})
    git("add", "-A", cwd=project, env=env)
    git("commit", "-q", "-m", "manifests", cwd=project, env=env)
    return project, env


def _use_hook(project: Path, env: dict[str, str], hook_repo: HookRepo) -> None:
    """A committed .pre-commit-config.yaml with the hook (installed in the shared cache;
    ``try-repo`` always builds a fresh environment in a temporary store)."""
    (project / ".pre-commit-config.yaml").write_text(
        yaml.safe_dump(
            {
                "repos": [
                    {
                        "repo": str(hook_repo.path),
                        "rev": git("rev-parse", "HEAD", cwd=hook_repo.path, env=env).strip(),
                        "hooks": [{"id": "metaqore"}],
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    git("add", ".pre-commit-config.yaml", cwd=project, env=env)
    git("commit", "-q", "-m", "pre-commit", cwd=project, env=env)


def _try_repo(project: Path, env: dict[str, str], hook_repo: HookRepo, *args: str) -> Completed:
    return run(
        [str(BIN / "pre-commit"), "try-repo", str(hook_repo.path), "metaqore", *args],
        cwd=project,
        env=env,
    )


def test_hook_definition() -> None:
    [hook] = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    assert hook["id"] == "metaqore"
    assert hook["language"] == "python"
    # Local commits leave no audit files in the repository; CI runs keep the chain.
    assert hook["entry"] == "metaqore check --no-audit"
    # Whole projects: the gate finds every manifest itself, never just the changed ones.
    assert hook["pass_filenames"] is False
    assert hook["require_serial"] is True

    pattern = re.compile(hook["files"])
    for name in ("a.metaqore.yaml", "x/b.metaqore.yml", "c.metaqore.json", "d.metaqore.jsonl"):
        assert pattern.search(name), name
    for name in ("metaqore.yaml", "a.yaml", "a.metaqore.yaml.bak", "notes.metaqore.md"):
        assert not pattern.search(name), name


def test_try_repo_passes_on_passing_manifests(tmp_path: Path, hook_repo: HookRepo) -> None:
    project, env = _project(tmp_path, hook_repo, {"agents/alpha.metaqore.yaml": PASSING})
    result = _try_repo(project, env, hook_repo, "--all-files")
    assert result.returncode == 0, result
    assert "MetaQore governance gate" in result.output
    assert "Passed" in result.output


def test_try_repo_blocks_on_blocking_manifests(tmp_path: Path, hook_repo: HookRepo) -> None:
    project, env = _project(
        tmp_path,
        hook_repo,
        {"agents/alpha.metaqore.yaml": PASSING, "agents/beta.metaqore.yaml": BLOCKING},
    )
    result = _try_repo(project, env, hook_repo, "--all-files")
    assert result.returncode == 1, result
    assert "Failed" in result.output and "- exit code: 1" in result.output
    assert "✗ HIGH missing_dependency · beta-code · agents/beta.metaqore.yaml:5" in result.output
    assert "metaqore: BLOCKED" in result.output


def test_a_commit_of_one_file_of_a_project_is_judged_with_the_whole_project(
    tmp_path: Path, hook_repo: HookRepo
) -> None:
    project, env = _project(tmp_path, hook_repo, dict(CROSS_FILE))
    # Judged alone, the changed file would have a false missing dependency...
    alone = run(
        [
            str(BIN / "metaqore"),
            "check",
            "--audit-log",
            str(tmp_path / "a.jsonl"),
            "delta/code.metaqore.yaml",
        ],
        cwd=project,
        env=env,
    )
    assert alone.returncode == 1 and "missing_dependency" in alone.output, alone
    # ...but a commit that touches only that file runs the hook on the whole project.
    _use_hook(project, env, hook_repo)
    installed = run([str(BIN / "pre-commit"), "install"], cwd=project, env=env)
    assert installed.returncode == 0, installed
    code = project / "delta" / "code.metaqore.yaml"
    code.write_text(code.read_text().replace("created_by: coder", "created_by: coder-2"))
    git("add", "delta/code.metaqore.yaml", cwd=project, env=env)
    committed = run(["git", "commit", "-m", "coder-2 takes over"], cwd=project, env=env)
    assert committed.returncode == 0, committed
    assert "MetaQore governance gate" in committed.output and "Passed" in committed.output
    assert git("status", "--porcelain", cwd=project, env=env) == ""
    # And a commit that breaks the project is refused.
    code.write_text(code.read_text().replace("[delta-spec]", "[delta-specification]"))
    git("add", "delta/code.metaqore.yaml", cwd=project, env=env)
    refused = run(["git", "commit", "-m", "typo"], cwd=project, env=env)
    assert refused.returncode != 0, refused
    assert "'delta-specification', which is declared nowhere" in refused.output


@pytest.mark.parametrize("changed", ["README.md", "agents/notes.yaml"])
def test_other_files_do_not_run_the_hook(tmp_path: Path, hook_repo: HookRepo, changed: str) -> None:
    project, env = _project(
        tmp_path, hook_repo, {"agents/beta.metaqore.yaml": BLOCKING, changed: "text\n"}
    )
    _use_hook(project, env, hook_repo)
    result = run(
        [str(BIN / "pre-commit"), "run", "metaqore", "--files", changed], cwd=project, env=env
    )
    assert result.returncode == 0, result
    assert "(no files to check)Skipped" in result.output
