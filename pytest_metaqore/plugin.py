"""The ``pytest11`` entry point of MetaQore (inert until ``--metaqore`` is given).

Installed means registered, so ``-p no:metaqore`` works, but a plain ``pytest`` run pays
for nothing: this module imports only the standard library and pytest. The gate, its
config and reports live in :mod:`pytest_metaqore.session`, which ``pytest_configure``
imports and registers (as pytest-xdist registers ``"dsession"``) only with ``--metaqore``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_metaqore.session import MetaqoreSession

#: Command-line options (tests and other plugins import these, never the literals).
OPTION_ENABLE = "--metaqore"
OPTION_CONFIG = "--metaqore-config"
OPTION_MANIFESTS = "--metaqore-manifests"
OPTION_MODE = "--metaqore-mode"
OPTION_POLICY = "--metaqore-policy"
OPTION_FAIL_ON = "--metaqore-fail-on"
OPTION_AUDIT = "--metaqore-audit"
OPTION_DB = "--metaqore-db"

#: ini keys (``pytest.ini``, ``[tool.pytest.ini_options]``, ``tox.ini``, ``setup.cfg``).
INI_MANIFESTS = "metaqore_manifests"
INI_CONFIG = "metaqore_config"
INI_MODE = "metaqore_mode"
INI_POLICY = "metaqore_policy"
INI_FAIL_ON = "metaqore_fail_on"
INI_AUDIT = "metaqore_audit"
INI_DB = "metaqore_db"

#: Values accepted for the mode and severity options. Spelled out here because this
#: module must not import the engine; tests check they equal the engine's enums.
MODES = ("strict", "adaptive", "playground")
SEVERITIES = ("low", "medium", "high", "critical")

MARKER = "metaqore"
#: Name the session object is registered under (``config.pluginmanager.getplugin``).
SESSION_PLUGIN_NAME = "metaqore-session"
#: Where the session object lives: ``config.stash[SESSION_KEY]`` (absent without --metaqore).
SESSION_KEY: pytest.StashKey[MetaqoreSession] = pytest.StashKey()

#: (option, ini key, option destination) of every setting that has both.
SETTINGS = (
    (OPTION_CONFIG, INI_CONFIG, "metaqore_config"),
    (OPTION_MANIFESTS, INI_MANIFESTS, "metaqore_manifests"),
    (OPTION_MODE, INI_MODE, "metaqore_mode"),
    (OPTION_POLICY, INI_POLICY, "metaqore_policy"),
    (OPTION_FAIL_ON, INI_FAIL_ON, "metaqore_fail_on"),
    (OPTION_AUDIT, INI_AUDIT, "metaqore_audit"),
    (OPTION_DB, INI_DB, "metaqore_db"),
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("metaqore", "MetaQore governance gate")
    group.addoption(
        OPTION_ENABLE,
        action="store_true",
        default=False,
        dest="metaqore",
        help="judge the artifact manifests: one test item per project, and the session "
        "fails when the gate blocks",
    )
    group.addoption(
        OPTION_CONFIG,
        metavar="FILE",
        dest="metaqore_config",
        help=f"MetaQore config file (default: metaqore.yaml or [tool.metaqore] in the "
        f"rootdir). ini: {INI_CONFIG}",
    )
    group.addoption(
        OPTION_MANIFESTS,
        metavar="PATH",
        action="append",
        dest="metaqore_manifests",
        help=f"manifest file, directory or glob to judge (repeatable; default: the "
        f"config's manifests globs under the rootdir). ini: {INI_MANIFESTS}",
    )
    group.addoption(
        OPTION_MODE,
        metavar="MODE",
        dest="metaqore_mode",
        help=f"governance mode: {', '.join(MODES)}. ini: {INI_MODE}",
    )
    group.addoption(
        OPTION_POLICY,
        metavar="POLICY",
        dest="metaqore_policy",
        help=f"routing policy (canonical name or alias). ini: {INI_POLICY}",
    )
    group.addoption(
        OPTION_FAIL_ON,
        metavar="SEVERITY",
        dest="metaqore_fail_on",
        help=f"lowest severity that blocks: {', '.join(SEVERITIES)}. ini: {INI_FAIL_ON}",
    )
    group.addoption(
        OPTION_AUDIT,
        metavar="PATH",
        dest="metaqore_audit",
        help=f"audit file to append the run to (default: metaqore-audit.jsonl). ini: {INI_AUDIT}",
    )
    group.addoption(
        OPTION_DB,
        metavar="DSN",
        dest="metaqore_db",
        help=f"persistent store, e.g. sqlite:///state.db (default: in-memory). ini: {INI_DB}",
    )
    parser.addini(
        INI_MANIFESTS,
        "manifest files, directories or globs to judge, relative to the rootdir",
        type="linelist",
        default=[],
    )
    parser.addini(INI_CONFIG, "MetaQore config file, relative to the rootdir", default="")
    parser.addini(INI_MODE, f"governance mode: {', '.join(MODES)}", default="")
    parser.addini(INI_POLICY, "routing policy (canonical name or alias)", default="")
    parser.addini(INI_FAIL_ON, f"lowest severity that blocks: {', '.join(SEVERITIES)}", default="")
    parser.addini(INI_AUDIT, "audit file, relative to the rootdir", default="")
    parser.addini(INI_DB, "persistent store DSN", default="")


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_metaqore import hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: a MetaQore governance item (one per project judged by the gate)"
    )
    if not config.getoption("metaqore"):
        return
    from pytest_metaqore.session import MetaqoreSession

    session = MetaqoreSession(config)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, SESSION_PLUGIN_NAME)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()
        del config.stash[SESSION_KEY]


@pytest.fixture
def metaqore_gate(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Any]:
    """Judge manifests in your own tests: ``metaqore_gate(manifest, **overrides) -> Verdict``.

    ``manifest`` is a manifest as a dict, a path (file, directory or glob), or a list of
    them (several manifests of one run). Keyword arguments override config settings
    (``mode``, ``policy``, ``fail_on`` or any ``metaqore.yaml`` key); ``config=``,
    ``audit_log=``, ``db=``, ``baseline=`` and ``rules=`` are as for the gate. No audit
    record is written unless ``audit_log`` is given.
    """
    from pytest_metaqore.session import GateFixture

    return GateFixture(request.config, tmp_path_factory)
