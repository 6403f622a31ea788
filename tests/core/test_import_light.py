"""The engine never imports pytest (SPEC §1): ``import metaqore`` and every engine module,
each in a fresh interpreter, leave ``pytest`` and ``_pytest`` out of ``sys.modules``.

The web server (optional extra ``server``) and ``__main__`` (which runs the CLI) are not
engine modules and are left out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]

# Lists the modules in its own interpreter: walk_packages imports every package it
# recurses into (the server's too), which must touch neither the checker nor this process.
_LIST_MODULES = textwrap.dedent(
    """
    import json, pkgutil, sys

    import metaqore

    def failed(name):
        raise SystemExit(f"cannot import {name} while listing modules")

    names = [info.name for info in pkgutil.walk_packages(metaqore.__path__, "metaqore.", failed)]
    json.dump(names, sys.stdout)
    """
)

# Imports the modules named in argv one at a time and names the first that pulls pytest in.
_CHECK_IMPORTS = textwrap.dedent(
    """
    import importlib, json, sys

    def test_runner_modules():
        return sorted(
            name for name in sys.modules
            if name in ("pytest", "_pytest") or name.startswith("_pytest.")
        )

    before = test_runner_modules()
    if before:
        raise SystemExit(f"pytest was imported before metaqore: {before}")
    import metaqore
    for name in metaqore.__all__:  # the lazy public names import their modules
        getattr(metaqore, name)
    culprit = None if not test_runner_modules() else "metaqore (public names)"
    for name in json.loads(sys.argv[1]):
        if culprit is not None:
            break
        importlib.import_module(name)
        if test_runner_modules():
            culprit = name
    json.dump({"culprit": culprit, "pytest_modules": test_runner_modules()}, sys.stdout)
    """
)


def _python(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # A clean environment: no PYTHON* settings, and nothing that makes a .pth start
    # coverage or tells a child it runs under pytest or xdist.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "PYTEST", "COV_CORE", "COVERAGE", "METAQORE_"))
    }
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _engine_modules(cwd: Path) -> list[str]:
    listed = _python(_LIST_MODULES, cwd=cwd)
    assert listed.returncode == 0, listed.stderr
    names: list[str] = json.loads(listed.stdout)
    return [
        name
        for name in names
        if name != "metaqore.__main__"
        and name != "metaqore.server"
        and not name.startswith("metaqore.server.")
    ]


def _check(modules: list[str], cwd: Path) -> dict[str, Any]:
    run = _python(_CHECK_IMPORTS, json.dumps(modules), cwd=cwd)
    assert run.returncode == 0, run.stderr
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def test_importing_the_engine_never_imports_pytest(tmp_path: Path) -> None:
    modules = _engine_modules(tmp_path)
    # The walk found the whole engine, not just the top-level package.
    for expected in (
        "metaqore.cli.check",
        "metaqore.core.state_manager",
        "metaqore.gate.replay",
        "metaqore.mock_llm.client",
        "metaqore.report.junit",
        "metaqore.storage.backends.sqlite",
        "metaqore.testing.postgres",
    ):
        assert expected in modules
    assert not any(name.startswith("metaqore.server") for name in modules)
    assert _check(modules, tmp_path) == {"culprit": None, "pytest_modules": []}


def test_the_check_names_a_module_that_imports_pytest(tmp_path: Path) -> None:
    """Not vacuous: a module that pulls pytest in is caught and named."""
    result = _check(["metaqore.config", "_pytest.outcomes", "metaqore.core.models"], tmp_path)
    assert result["culprit"] == "_pytest.outcomes"
    assert "_pytest" in result["pytest_modules"]
