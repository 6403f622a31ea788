"""The MetaQore session of a ``pytest --metaqore`` run: one gate run, one item per project.

Imported only when ``--metaqore`` is given (or the ``metaqore_gate`` fixture is used).
The gate runs once per session, in ``pytest_sessionstart`` of the process that owns the
session: the only process that writes the audit chain and the store. Under pytest-xdist
that is the controller, before its workers start; it ships the verdict to them as plain
data in ``workerinput`` (as pytest-cov ships its settings), so workers never run the gate
and every worker decides its items from the same verdict. Workers send back what their
items decided in ``workeroutput``; the controller checks it against its verdict, prints
the ``metaqore`` summary and sets the exit status.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from metaqore.plugins import hookimpl
from metaqore.text import one_line
from pytest_metaqore.plugin import (
    MARKER,
    MODES,
    OPTION_POLICY,
    SESSION_KEY,
    SETTINGS,
    SEVERITIES,
)

if TYPE_CHECKING:
    from metaqore.config import MetaQoreConfig
    from metaqore.core.rules import ConflictRule
    from metaqore.core.security import RoutingPolicy
    from metaqore.gate.verdict import ProjectResult, Verdict

#: Key of the controller -> worker (workerinput) and worker -> controller (workeroutput) data.
TRANSPORT_KEY = "metaqore"


# -- settings ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """What the options and ini keys ask for; ``source`` names where each value came from."""

    config_file: Path | None = None
    manifests: tuple[str, ...] = ()
    mode: str | None = None
    policy: str | None = None
    fail_on: str | None = None
    audit_log: Path | None = None
    db: str | None = None
    source: Mapping[str, str] = dataclasses.field(default_factory=dict)


def _from(base: Path, value: str, root: Path) -> str:
    """``value`` (a path or glob given relative to ``base``) as the gate reads it (from root)."""
    if os.path.isabs(value) or base == root:
        return value
    joined = os.path.normpath(os.path.join(base, value))
    relative = os.path.relpath(joined, root)
    outside = relative == os.pardir or relative.startswith(os.pardir + os.sep)
    return joined if outside else relative


def _choice(value: str, allowed: Sequence[str], source: str, what: str) -> str:
    normalised = value.strip().lower()
    if normalised not in allowed:
        raise pytest.UsageError(
            f"{source}: '{value}' is not {what} (expected one of: {', '.join(allowed)})"
        )
    return normalised


def read_settings(config: pytest.Config) -> Settings:
    """Options win over ini keys; option paths are relative to the invocation directory,
    ini paths to the rootdir. Bad modes and severities are usage errors here."""
    root = config.rootpath
    invocation = config.invocation_params.dir
    raw: dict[str, tuple[Any, str, Path]] = {}
    for option, ini, dest in SETTINGS:
        given = config.getoption(dest)
        if given:
            raw[dest] = (given, option, invocation)
            continue
        configured = config.getini(ini)
        if configured:
            raw[dest] = (configured, f"{ini} (ini)", root)

    def text(dest: str) -> str | None:
        found = raw.get(dest)
        if found is None:
            return None
        return str(found[0]).strip() or None

    def path(dest: str) -> Path | None:
        found = raw.get(dest)
        if not found or not str(found[0]).strip():
            return None
        value, _source, base = found
        return Path(base, str(value).strip())

    manifests: tuple[str, ...] = ()
    if "metaqore_manifests" in raw:
        values, _source, base = raw["metaqore_manifests"]
        manifests = tuple(_from(base, str(value), root) for value in values if str(value).strip())
    mode = text("metaqore_mode")
    if mode is not None:
        mode = _choice(mode, MODES, raw["metaqore_mode"][1], "a governance mode")
    fail_on = text("metaqore_fail_on")
    if fail_on is not None:
        fail_on = _choice(fail_on, SEVERITIES, raw["metaqore_fail_on"][1], "a severity")
    return Settings(
        config_file=path("metaqore_config"),
        manifests=manifests,
        mode=mode,
        policy=text("metaqore_policy"),
        fail_on=fail_on,
        audit_log=path("metaqore_audit"),
        db=text("metaqore_db"),
        source={dest: found[1] for dest, found in raw.items()},
    )


def load_gate_config(settings: Settings, root: Path) -> MetaQoreConfig:
    """The MetaQore config of the session; every problem is a usage error naming its source."""
    from metaqore.config import load_config
    from metaqore.core.security import canonical_policy_name
    from metaqore.exceptions import ConfigurationError

    if settings.policy is not None:
        try:
            canonical_policy_name(settings.policy)
        except ValueError as error:
            source = settings.source.get("metaqore_policy", OPTION_POLICY)
            raise pytest.UsageError(f"{source}: {error}") from None
    overrides = {
        "governance_mode": settings.mode,
        "secure_gateway_policy": settings.policy,
        "fail_on": settings.fail_on,
    }
    try:
        return load_config(settings.config_file, cwd=root, overrides=overrides)
    except ConfigurationError as error:
        raise pytest.UsageError(f"metaqore: invalid configuration: {error}") from None


# -- hooks of other plugins ------------------------------------------------------------------
def collect_rules(config: pytest.Config) -> list[ConflictRule]:
    """Rules every ``pytest_metaqore_rules`` implementation returns, in call order.

    The gate refuses a ``conflict_type`` that another rule (built-in, engine plugin or
    hook) already has, as between engine plugins.
    """
    batches = config.hook.pytest_metaqore_rules(config=config)
    return [rule for batch in batches for rule in batch or ()]


class _PolicyBridge:
    """Hands the policies of ``pytest_metaqore_policies`` to the engine's plugin host."""

    def __init__(self, policies: Sequence[type[RoutingPolicy]]) -> None:
        self.policies = list(policies)

    @hookimpl
    def metaqore_routing_policies(self) -> list[type[RoutingPolicy]]:
        return list(self.policies)


def register_policies(config: pytest.Config) -> str | None:
    """Register the hooks' policies on the engine's plugin manager; returns the name to
    unregister, or None when no plugin adds one."""
    from metaqore.plugins import get_plugin_manager

    policies = [
        policy
        for batch in config.hook.pytest_metaqore_policies(config=config)
        for policy in batch or ()
    ]
    if not policies:
        return None
    bridge = _PolicyBridge(policies)
    name = f"pytest-metaqore-policies-{id(bridge)}"
    get_plugin_manager().register(bridge, name=name)
    return name


def unregister_policies(name: str | None) -> None:
    if name is None:
        return
    from metaqore.plugins import get_plugin_manager

    manager = get_plugin_manager()
    plugin = manager.get_plugin(name)
    if plugin is not None:
        manager.unregister(plugin, name=name)


# -- per-project reports -----------------------------------------------------------------------
def project_report(verdict: Verdict, project_id: str, root: Path) -> str:
    """The terminal report of one project, without colour (it also goes into JUnit XML)."""
    from metaqore.report import ReportContext, get_formatter

    context = ReportContext(root=root, color=False, tool_version=verdict.tool_version)
    return get_formatter("terminal").render(verdict.for_project(project_id), context)


def headline(verdict: Verdict, project_id: str) -> str:
    """One line for pytest's short summary: what blocks the project, worst first."""
    blocking = [f for f in verdict.findings_for(project_id) if f.blocking]
    shown = "; ".join(f"{f.rule} on {f.artifact_id}" for f in blocking[:3])
    if len(blocking) > 3:
        shown += f"; and {len(blocking) - 3} more"
    return f"project {project_id} BLOCKED by {len(blocking)} finding(s): {shown}"


# -- collection --------------------------------------------------------------------------------
class ProjectBlocked(Exception):
    """Raised by a project's item when the gate blocks it; carries the project's report."""

    def __init__(self, report: str) -> None:
        super().__init__(report)
        self.report = report


class MetaqoreFile(pytest.File):
    """A manifest that first declares a project (one item each), or one the gate could not read."""

    def collect(self) -> Iterator[pytest.Item]:
        session = self.config.stash[SESSION_KEY]
        yield from session.items_for(self)


class MetaqoreItem(pytest.Item):
    """One project of the gate's verdict: fails with the project's blocking report."""

    def __init__(self, *, project: ProjectResult, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.add_marker(MARKER)

    def runtest(self) -> None:
        session = self.config.stash[SESSION_KEY]
        passed, report = session.judge_item(self.project.project_id)
        if not passed:
            raise ProjectBlocked(report)
        if report:
            self.add_report_section("call", "metaqore", report)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ProjectBlocked):
            return excinfo.value.report.rstrip("\n")
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, max(self.project.line - 1, 0), self.name


# -- the session -------------------------------------------------------------------------------
class MetaqoreSession:
    """Registered as ``metaqore-session`` when ``--metaqore`` is given (see plugin.py)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.root = config.rootpath
        self.real_root = config.rootpath.resolve()
        self.is_worker = hasattr(config, "workerinput")
        self.settings = read_settings(config)
        self._policies = register_policies(config)
        try:
            self.gate_config = load_gate_config(self.settings, self.root)
        except BaseException:
            unregister_policies(self._policies)
            raise
        self.verdict: Verdict | None = None
        # display path -> problem texts, when the gate could not read manifests
        self.problems: dict[str, list[str]] = {}
        self._files: dict[Path, str] = {}  # real path -> display path, files with items/errors
        self._projects: dict[Path, list[ProjectResult]] = {}
        self._collected: set[Path] = set()
        self._reports: dict[str, tuple[bool, str]] = {}
        self._outcomes: dict[str, str] = {}  # worker: project -> "passed" | "failed"
        self._disagreements: list[str] = []

    def close(self) -> None:
        unregister_policies(self._policies)
        self._policies = None

    # -- the gate ------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # tryfirst: under xdist the verdict must exist before DSession starts the workers.
        if self.is_worker:
            self._receive(self.config.workerinput.get(TRANSPORT_KEY))  # type: ignore[attr-defined]
        else:
            self._judge()

    def _judge(self) -> None:
        from metaqore.exceptions import ManifestError, ManifestErrors, MetaQoreError
        from metaqore.gate import GateOptions, run_gate

        collect_only = bool(self.config.getoption("collectonly"))
        settings = self.settings
        options = GateOptions(
            config=self.gate_config,
            paths=settings.manifests,
            root=self.root,
            # --collect-only judges for the item list alone: no audit, no store.
            audit=not collect_only,
            audit_log=str(settings.audit_log) if settings.audit_log else None,
            db="sqlite://" if collect_only else settings.db,
            extra_rules=self._rules(),
        )
        try:
            verdict = run_gate(options)
        except (ManifestError, ManifestErrors) as error:
            problems = error.errors if isinstance(error, ManifestErrors) else [error]
            unreadable = [p for p in problems if not (self.real_root / p.path).is_file()]
            if unreadable:
                # Not a manifest pytest could show a collection error for: the settings.
                raise pytest.UsageError(f"metaqore: the gate could not judge:\n{error}") from None
            for problem in problems:
                self.problems.setdefault(problem.path, []).append(str(problem))
            self._index()
            return
        except MetaQoreError as error:
            raise pytest.UsageError(f"metaqore: {error}") from None
        self.verdict = verdict
        self._index()
        self.config.hook.pytest_metaqore_verdict(config=self.config, verdict=verdict)

    def _rules(self) -> list[ConflictRule]:
        from metaqore.exceptions import ConfigurationError

        try:
            return collect_rules(self.config)
        except ConfigurationError as error:
            raise pytest.UsageError(f"metaqore: {error}") from None

    def _index(self) -> None:
        for display in self.problems:
            self._files[(self.real_root / display).resolve()] = display
        if self.verdict is None:
            return
        for project in self.verdict.projects:
            if not project.paths:
                continue
            display = self._item_file(project.paths)
            real = (self.real_root / display).resolve()
            self._files[real] = display
            self._projects.setdefault(real, []).append(project)

    def _item_file(self, paths: Sequence[str]) -> str:
        """The manifest that holds a project's item: its first, unless the command line
        selects only other files of the project (an IDE's "run this file")."""
        if self.config.args_source is pytest.Config.ArgsSource.ARGS:
            selected = [display for display in paths if self._selected(display)]
            if selected and paths[0] not in selected:
                return selected[0]
        return paths[0]

    def _selected(self, display: str) -> bool:
        real = (self.real_root / display).resolve()
        base = self.config.invocation_params.dir
        for argument in self.config.args:
            target = (base / argument.split("::", 1)[0]).resolve()
            if real == target or target in real.parents:
                return True
        return False

    # -- pytest-xdist --------------------------------------------------------------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[TRANSPORT_KEY] = {
            "verdict": self.verdict.to_transport() if self.verdict is not None else None,
            "problems": self.problems,
        }

    def _receive(self, data: Mapping[str, Any] | None) -> None:
        from metaqore.gate.verdict import Verdict

        if data is None:
            raise pytest.UsageError(
                "metaqore: this pytest-xdist worker got no verdict from the controller "
                "(pytest-metaqore must be installed where the controller runs)"
            )
        self.problems = {path: list(texts) for path, texts in data["problems"].items()}
        if data["verdict"] is not None:
            self.verdict = Verdict.from_dict(data["verdict"])
        self._index()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", None) or {}
        data = output.get(TRANSPORT_KEY)
        if data is None or self.verdict is None:
            return
        worker = output.get("workerid") or getattr(getattr(node, "gateway", None), "id", "?")
        if data.get("run_id") != self.verdict.run_id:
            self._disagreements.append(
                f"worker {worker} judged run {data.get('run_id')}, not {self.verdict.run_id}"
            )
        for project_id, outcome in sorted(data.get("outcomes", {}).items()):
            expected = "passed" if self.verdict.project_passed(project_id) else "failed"
            if outcome != expected:
                self._disagreements.append(
                    f"worker {worker} says project {project_id} {outcome}, "
                    f"the controller's verdict says {expected}"
                )

    # -- collection ----------------------------------------------------------------------
    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> MetaqoreFile | None:
        if not self._files:
            return None
        real = file_path.resolve()
        if real not in self._files:
            return None
        return MetaqoreFile.from_parent(parent, path=file_path)

    def items_for(self, node: MetaqoreFile) -> Iterator[MetaqoreItem]:
        real = node.path.resolve()
        self._collected.add(real)
        display = self._files.get(real)
        if display is not None and display in self.problems:
            raise node.CollectError("\n".join(self.problems[display]))
        for project in self._projects.get(real, ()):
            name = f"metaqore[{one_line(project.project_id)}]"
            # An explicit node id, so pytest parses "[...]" as the parameter part as it
            # does for parametrized tests (--lf and --deselect compare parsed ids).
            yield MetaqoreItem.from_parent(
                node, name=name, nodeid=f"{node.nodeid}::{name}", project=project
            )

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Items for manifests pytest did not walk (outside ``testpaths``), unless paths or
        node ids were given on the command line: then only what they select is collected.

        tryfirst: before ``-k``, ``-m`` and ``--deselect`` filter the items."""
        if config.args_source is pytest.Config.ArgsSource.ARGS:
            return
        for real, display in sorted(self._files.items(), key=lambda entry: entry[1]):
            if real in self._collected:
                continue
            node = MetaqoreFile.from_parent(session, path=self.root / display)
            report = node.ihook.pytest_make_collect_report(collector=node)
            node.ihook.pytest_collectreport(report=report)
            if not report.passed:
                continue
            for item in report.result:
                if isinstance(item, pytest.Item):
                    item.ihook.pytest_itemcollected(item=item)
                    items.append(item)

    # -- items ---------------------------------------------------------------------------
    def judge_item(self, project_id: str) -> tuple[bool, str]:
        """(passed, report): the report is the project's blocking report when it fails,
        its non-blocking findings (waived, below threshold…) when it passes, else ''."""
        found = self._reports.get(project_id)
        if found is None:
            verdict = self.verdict
            assert verdict is not None, "items exist only when the gate judged"
            passed = verdict.project_passed(project_id)
            report = ""
            if not passed or verdict.findings_for(project_id):
                report = project_report(verdict, project_id, self.root)
            if not passed:
                report = f"{headline(verdict, project_id)}\n\n{report}"
            found = self._reports[project_id] = (passed, report)
        self._outcomes[project_id] = "passed" if found[0] else "failed"
        return found

    # -- the end -------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.is_worker:
            self.config.workeroutput[TRANSPORT_KEY] = {  # type: ignore[attr-defined]
                "run_id": self.verdict.run_id if self.verdict is not None else None,
                "outcomes": dict(self._outcomes),
            }
            return
        status = session.exitstatus
        if self.problems:
            # The gate could not judge: exit 2 as the CLI, with or without xdist.
            if status in (
                pytest.ExitCode.OK,
                pytest.ExitCode.TESTS_FAILED,
                pytest.ExitCode.NO_TESTS_COLLECTED,
            ):
                session.exitstatus = pytest.ExitCode.INTERRUPTED
        elif self.blocked and status in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @property
    def blocked(self) -> bool:
        """Whether the gate fails the session (a blocked verdict, or workers that disagree)."""
        return bool(self._disagreements) or (self.verdict is not None and not self.verdict.passed)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.is_worker:
            return
        from metaqore.report.terminal import audit_line, summary_line

        write = terminalreporter.write_line
        terminalreporter.write_sep("=", "metaqore")
        if self.problems:
            count = sum(len(texts) for texts in self.problems.values())
            write(
                f"metaqore: could not judge — {count} problem(s) in "
                f"{len(self.problems)} manifest(s)",
                red=True,
                bold=True,
            )
            # Every problem, also those of manifests the command line did not select
            # (which never became collection errors).
            for texts in self.problems.values():
                for text in texts:
                    write(f"  {text}", red=True)
            return
        verdict = self.verdict
        if verdict is None:
            return
        write(summary_line(verdict), red=not verdict.passed, green=verdict.passed, bold=True)
        for project in verdict.projects:
            blocking = [f for f in verdict.findings_for(project.project_id) if f.blocking]
            if blocking:
                rules = ", ".join(sorted({f.rule for f in blocking}))
                write(one_line(f"  ✗ {project.project_id}: {len(blocking)} blocking ({rules})"))
        audit = audit_line(verdict)
        if audit is not None:
            write(audit)
        for disagreement in self._disagreements:
            write(f"metaqore: {disagreement}", red=True)


# -- the metaqore_gate fixture -------------------------------------------------------------------
_ALIASES = {"mode": "governance_mode", "policy": "secure_gateway_policy"}


@contextmanager
def _policies_for(config: pytest.Config) -> Iterator[None]:
    if config.stash.get(SESSION_KEY, None) is not None:
        yield  # the session registered them already
        return
    name = register_policies(config)
    try:
        yield
    finally:
        unregister_policies(name)


class GateFixture:
    """``metaqore_gate(manifests, **overrides) -> Verdict`` (see the fixture's docstring)."""

    def __init__(self, config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._config = config
        self._tmp = tmp_path_factory
        self._directory: Path | None = None
        self._written = 0

    def _write(self, manifest: Mapping[str, Any]) -> str:
        if self._directory is None:
            self._directory = self._tmp.mktemp("metaqore-gate")
        self._written += 1
        target = self._directory / f"manifest-{self._written}.metaqore.json"
        target.write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
        return str(target)

    def __call__(
        self,
        manifests: Any,
        /,
        *,
        config: str | os.PathLike[str] | None = None,
        audit_log: str | os.PathLike[str] | None = None,
        db: str | None = None,
        baseline: str | os.PathLike[str] | None = None,
        rules: Sequence[ConflictRule] = (),
        **overrides: Any,
    ) -> Verdict:
        from metaqore.config import load_config
        from metaqore.gate import GateOptions, run_gate

        root = self._config.rootpath
        if isinstance(manifests, (Mapping, str, os.PathLike)):
            manifests = [manifests]
        paths = [
            self._write(entry) if isinstance(entry, Mapping) else os.fspath(entry)
            for entry in manifests
        ]
        settings = {_ALIASES.get(key, key): value for key, value in overrides.items()}
        config_file = Path(root, config) if config is not None else None
        if config_file is None:
            config_file = read_settings(self._config).config_file
        with _policies_for(self._config):
            gate_config = load_config(config_file, cwd=root, overrides=settings)
            verdict: Verdict = run_gate(
                GateOptions(
                    config=gate_config,
                    paths=paths,
                    root=root,
                    audit=audit_log is not None,
                    audit_log=os.fspath(audit_log) if audit_log is not None else None,
                    db=db,
                    baseline=Path(root, baseline) if baseline is not None else None,
                    extra_rules=[*collect_rules(self._config), *rules],
                )
            )
        return verdict


__all__ = [
    "TRANSPORT_KEY",
    "GateFixture",
    "MetaqoreFile",
    "MetaqoreItem",
    "MetaqoreSession",
    "ProjectBlocked",
    "Settings",
    "project_report",
    "read_settings",
]
