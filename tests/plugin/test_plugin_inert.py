"""Installed means registered but inert: a plain pytest run pays nothing for MetaQore."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import pytest
from plugin_support import BLOCKING, write

from metaqore.config import GovernanceMode
from metaqore.core.models import ConflictSeverity
from pytest_metaqore import plugin

HEAVY = ("pydantic", "pydantic_settings", "sqlalchemy", "yaml", "metaqore", "cryptography")
#: The ``server`` extra: never imported by the plugin, not even with --metaqore.
WEB = ("fastapi", "starlette", "uvicorn")

RECORD_MODULES = """
import json, sys

def pytest_sessionfinish(session):
    with open("modules.json", "w") as handle:
        json.dump(sorted(sys.modules), handle)
"""


def _other_pytest_plugins() -> list[str]:
    """``-p no:NAME`` for every installed pytest11 plugin but ours, so nothing else can
    import the modules the test looks for."""
    names = {ep.name for ep in entry_points(group="pytest11")} - {"metaqore"}
    return [arg for name in sorted(names) for arg in ("-p", f"no:{name}")]


def test_plain_run_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    # Hypothesis' tests/pytest/test_pytest_detection.py, for MetaQore: a real
    # subprocess with the plugin loaded from its entry point, manifests lying around.
    pytester.makeconftest(RECORD_MODULES)
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    write(pytester, {"beta.metaqore.yaml": BLOCKING})
    result = pytester.runpytest_subprocess(*_other_pytest_plugins())
    result.assert_outcomes(passed=1)
    assert result.ret == 0  # blocking manifests do not matter without --metaqore
    modules = set(json.loads((pytester.path / "modules.json").read_text()))
    assert "pytest_metaqore.plugin" in modules  # the plugin was loaded...
    loaded = sorted(m for m in modules if m.split(".")[0] in (*HEAVY, *WEB))
    assert loaded == []  # ...and imported nothing heavy
    assert "pytest_metaqore.session" not in modules
    assert not (pytester.path / "metaqore-audit.jsonl").exists()


def test_an_enabled_run_imports_no_web_framework(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(RECORD_MODULES)
    write(pytester, {"beta.metaqore.yaml": BLOCKING})
    result = pytester.runpytest_subprocess(*_other_pytest_plugins(), plugin.OPTION_ENABLE)
    result.assert_outcomes(failed=1)
    modules = set(json.loads((pytester.path / "modules.json").read_text()))
    assert "metaqore.gate.replay" in modules  # the gate ran...
    assert sorted(m for m in modules if m.split(".")[0] in WEB) == []  # ...without the extra


def test_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest("-p", "no:metaqore")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["plugins: *"])
    result.stdout.no_fnmatch_line("plugins: *metaqore*")
    # Blocked: its options are unknown.
    result = pytester.runpytest("-p", "no:metaqore", plugin.OPTION_ENABLE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --metaqore*"])


def test_registered_under_its_entry_point_name(pytester: pytest.Pytester) -> None:
    config = pytester.parseconfig()
    assert config.pluginmanager.get_plugin("metaqore") is plugin
    # Without --metaqore there is no session object.
    assert config.pluginmanager.get_plugin(plugin.SESSION_PLUGIN_NAME) is None


def test_marker_is_registered_without_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_marked="import pytest\n\n@pytest.mark.metaqore\ndef test_marked():\n    pass\n"
    )
    result = pytester.runpytest("--strict-markers", "--markers")
    result.stdout.fnmatch_lines(["@pytest.mark.metaqore: *"])
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=1)


def test_help_lists_every_option_and_ini_key(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    options = [value for name, value in vars(plugin).items() if name.startswith("OPTION_")]
    inis = [value for name, value in vars(plugin).items() if name.startswith("INI_")]
    assert len(options) == 8 and len(inis) == 7
    for option in options:
        result.stdout.fnmatch_lines([f"*{option}*"])
    for ini in inis:
        result.stdout.fnmatch_lines([f"*{ini} *"])


def test_choices_match_the_engine() -> None:
    # plugin.py spells them out because it must not import the engine.
    assert tuple(mode.value for mode in GovernanceMode) == plugin.MODES
    assert tuple(severity.value for severity in ConflictSeverity) == plugin.SEVERITIES
