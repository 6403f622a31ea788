"""Fixtures of the front-door tests: a committed copy of this checkout for pre-commit.

``pre-commit try-repo`` clones a repository at a commit, so uncommitted work in this
checkout would not be seen: the fixture copies the working tree (tracked and new files)
into a fresh repository and commits it there. The copy and pre-commit's cache
(``PRE_COMMIT_HOME``, where the hook's virtualenv is built) are shared by every test of
the run, xdist workers included, so the hook environment is installed once per run.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import pytest
from frontdoor_support import REPO, HookRepo, git, git_env, tracked_and_new_files


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory every xdist worker of this run sees (the base temp's parent under xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def hook_repo(shared_dir: Path) -> HookRepo:
    root = shared_dir / "metaqore-hook-repo"
    git_home = shared_dir / "metaqore-git-home"
    lock_path = shared_dir / "metaqore-hook-repo.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker builds it, the others wait
        try:
            if not (root / ".ready").exists():
                if root.exists():
                    shutil.rmtree(root)
                source = root / "metaqore"
                for name in tracked_and_new_files(REPO):
                    target = source / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(REPO / name, target)
                env = git_env(git_home)
                git("init", "-q", cwd=source, env=env)
                git("add", "-A", cwd=source, env=env)
                git("commit", "-q", "-m", "MetaQore under test", cwd=source, env=env)
                (root / ".ready").write_text("", encoding="utf-8")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return HookRepo(root / "metaqore", shared_dir / "pre-commit-home", git_home)
