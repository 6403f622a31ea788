"""The revision a results file names: HEAD, marked only when the measured code differs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from benchmarks import run

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "latest.md").write_text("old table\n")
    (tmp_path / "gate.py").write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "first")
    monkeypatch.setattr(run, "ROOT", tmp_path)
    return tmp_path


def test_clean_tree_names_head(repo: Path) -> None:
    assert run._git_revision() == _git(repo, "rev-parse", "--short", "HEAD")


def test_the_harness_own_results_do_not_mark_the_revision(repo: Path) -> None:
    (repo / "benchmarks" / "results" / "latest.md").write_text("new table\n")
    assert run._git_revision() == _git(repo, "rev-parse", "--short", "HEAD")


def test_changed_code_marks_the_revision(repo: Path) -> None:
    (repo / "benchmarks" / "results" / "latest.md").write_text("new table\n")
    (repo / "gate.py").write_text("x = 2\n")
    head = _git(repo, "rev-parse", "--short", "HEAD")
    assert run._git_revision() == f"{head} (with uncommitted changes)"
