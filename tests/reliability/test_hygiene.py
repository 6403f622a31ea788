"""Security hygiene: one safe YAML loader, no code from input, no writes out of the tree.

* The package (``metaqore/``, ``pytest_metaqore/``) is scanned -- its syntax tree and its
  text -- for any YAML loading but the chokepoint (:mod:`metaqore.yamlio`, C safe loader,
  event stream only), for ``eval``/``exec``/``compile``, pickle-like deserialisers, shell
  commands and unreviewed dynamic imports. The scanner is tested on planted snippets, so
  it can fail.
* Nothing the gate writes is named after manifest content: a run whose project,
  artifact, type and agent names are path traversals creates no file outside the
  working tree, and only the files it was asked for inside it.
* Files the repository under test could plant as symlinks in place of a report or of the
  audit file's sidecars are replaced or refused, never written through.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from reliability_support import REPO, run_in_process

PACKAGES = ("metaqore", "pytest_metaqore")
CHOKEPOINT = "metaqore/yamlio.py"

#: yaml attributes that load or construct arbitrary objects: forbidden everywhere.
UNSAFE_YAML = frozenset(
    {
        "load",
        "load_all",
        "unsafe_load",
        "unsafe_load_all",
        "full_load",
        "full_load_all",
        "add_constructor",
        "add_multi_constructor",
        "add_implicit_resolver",
        "Loader",
        "FullLoader",
        "UnsafeLoader",
        "CLoader",
        "CFullLoader",
        "CUnsafeLoader",
        "Constructor",
        "FullConstructor",
        "UnsafeConstructor",
        "CDumper",
        "Dumper",
    }
)
#: yaml attributes that parse: allowed only in the chokepoint.
PARSING_YAML = frozenset(
    {
        "safe_load",
        "safe_load_all",
        "parse",
        "compose",
        "compose_all",
        "scan",
        "BaseLoader",
        "SafeLoader",
        "CSafeLoader",
        "CBaseLoader",
        "SafeConstructor",
        "BaseConstructor",
    }
)
#: Modules that turn bytes into objects (or code), never used on input.
DESERIALISERS = frozenset(
    {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "jsonpickle", "cloudpickle"}
)
CODE_BUILTINS = frozenset({"eval", "exec", "compile", "__import__", "breakpoint"})
#: Reviewed deserialisers: a large manifest's reading workers send their results back to
#: the gate with marshal through a pipe of its own (forked children of the same process:
#: plain values it wrote itself, never input).
REVIEWED_DESERIALISERS = {"metaqore/manifest/parts.py": {"marshal"}}
#: Reviewed dynamic imports: each takes its module name from a constant table in the file.
DYNAMIC_IMPORTS = {
    "metaqore/__init__.py": 1,
    "metaqore/gate/__init__.py": 1,
    "metaqore/cli/__init__.py": 1,
    "metaqore/plugins/manager.py": 1,
}
#: Text patterns, a second net for what the syntax tree could miss (getattr, strings).
TEXT_PATTERNS = [
    re.compile(r"\byaml\s*\.\s*(?:unsafe_|full_)?load(?:_all)?\s*\("),
    re.compile(r"\b(?:Unsafe|Full)(?:Loader|Constructor)\b"),
    re.compile(r"Loader\s*=\s*(?:yaml\.)?C?(?:Loader|FullLoader|UnsafeLoader)\b"),
    re.compile(r"\bpython/(?:object|name|module)"),
    re.compile(r"getattr\(\s*yaml\b"),
]


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def scan_source(source: str, path: str) -> list[Violation]:
    """Every forbidden construct in one module's source."""
    found: list[Violation] = []
    tree = ast.parse(source, filename=path)
    in_chokepoint = path == CHOKEPOINT
    yaml_names = {"yaml"}
    dynamic_imports = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                root = alias.name.split(".")[0]
                if root in DESERIALISERS and root not in REVIEWED_DESERIALISERS.get(path, ()):
                    found.append(Violation(path, node.lineno, f"imports {alias.name}"))
                if root == "yaml" and alias.asname:
                    yaml_names.add(alias.asname)
        elif isinstance(node, ast.ImportFrom) and node.module:
            root = node.module.split(".")[0]
            if root in DESERIALISERS and root not in REVIEWED_DESERIALISERS.get(path, ()):
                found.append(Violation(path, node.lineno, f"imports from {node.module}"))
            if root == "yaml":
                for alias in node.names:
                    if alias.name in UNSAFE_YAML or (
                        alias.name in PARSING_YAML and not in_chokepoint
                    ):
                        found.append(Violation(path, node.lineno, f"imports yaml's {alias.name}"))
        elif isinstance(node, ast.Attribute):
            owner = _dotted(node.value)
            if owner.split(".")[0] in yaml_names:
                if node.attr in UNSAFE_YAML:
                    found.append(Violation(path, node.lineno, f"uses {owner}.{node.attr}"))
                elif node.attr in PARSING_YAML and not in_chokepoint:
                    found.append(Violation(path, node.lineno, f"parses YAML outside {CHOKEPOINT}"))
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in CODE_BUILTINS or name in {f"builtins.{b}" for b in CODE_BUILTINS}:
                found.append(Violation(path, node.lineno, f"calls {name}()"))
            if name in {"os.system", "os.popen", "os.execv", "os.execl", "pty.spawn"}:
                found.append(Violation(path, node.lineno, f"calls {name}()"))
            if any(
                keyword.arg == "shell"
                and not (isinstance(keyword.value, ast.Constant) and keyword.value.value is False)
                for keyword in node.keywords
            ):
                found.append(Violation(path, node.lineno, "runs a command through a shell"))
            if name.endswith("import_module"):
                dynamic_imports += 1
    if dynamic_imports > DYNAMIC_IMPORTS.get(path, 0):
        found.append(Violation(path, 1, f"{dynamic_imports} unreviewed dynamic import(s)"))
    for number, line in enumerate(source.splitlines(), start=1):
        for pattern in TEXT_PATTERNS:
            if pattern.search(line) and not (
                in_chokepoint and line.lstrip().startswith(("#", "*", '"'))
            ):
                found.append(Violation(path, number, f"matches {pattern.pattern!r}"))
    return found


def package_files() -> list[Path]:
    return sorted(path for name in PACKAGES for path in (REPO / name).rglob("*.py"))


def test_the_package_loads_yaml_only_through_the_chokepoint_and_runs_no_input() -> None:
    files = package_files()
    assert len(files) > 50 and any(path.name == "yamlio.py" for path in files)
    violations = [
        violation
        for path in files
        for violation in scan_source(path.read_text("utf-8"), path.relative_to(REPO).as_posix())
    ]
    assert not violations, "\n".join(map(str, violations))


@pytest.mark.parametrize(
    "snippet",
    [
        "import yaml\nyaml.load(text)",
        "import yaml\nyaml.load(text, Loader=yaml.SafeLoader)",
        "import yaml\nyaml.unsafe_load(text)",
        "import yaml\nyaml.full_load(text)",
        "import yaml\nlist(yaml.load_all(text))",
        "import yaml\nyaml.safe_load(text)",
        "import yaml as y\ny.safe_load(text)",
        "from yaml import load",
        "from yaml import safe_load",
        "from yaml import CLoader as Loader",
        "import yaml\nyaml.parse(text, Loader=yaml.CLoader)",
        "import yaml\nyaml.add_constructor('!x', f)",
        "import yaml\nfn = getattr(yaml, 'lo' + 'ad')",
        "eval(text)",
        "exec(code)",
        "compile(text, 'x', 'exec')",
        "__import__(name)",
        "import pickle\npickle.loads(data)",
        "from marshal import loads",
        "import os\nos.system(command)",
        "import subprocess\nsubprocess.run(command, shell=True)",
        "import importlib\nimportlib.import_module(name)",
        "text = '!!python/object/apply:os.system'",
    ],
)
def test_the_scanner_catches_what_it_looks_for(snippet: str) -> None:
    assert scan_source(snippet, "metaqore/example.py"), snippet


def test_the_scanner_lets_the_chokepoint_parse() -> None:
    allowed = "import yaml\nfrom yaml import CSafeLoader\nyaml.parse(data, Loader=CSafeLoader)"
    assert scan_source(allowed, CHOKEPOINT) == []
    assert scan_source(allowed, "metaqore/config.py")
    assert (
        scan_source("import re\nre.compile('x')\nsubprocess.run(['ls'], shell=False)", "m.py") == []
    )


# -- writes stay in the working tree -------------------------------------------------------

TRAVERSAL = """metaqore: 1
project: {id: "../../../escaped-project", name: "../../n", organization: "../../org"}
run: {id: "../../run"}
artifacts:
  - {id: "../../../escaped-artifact", type: "../../type", created_by: "../../agent",
     data: {path: "/etc/passwd"}}
  - {id: "/tmp/absolute-artifact", type: "../../type", created_by: "../../agent",
     depends_on: ["../../../escaped-artifact"]}
  - {id: "..", type: "/", created_by: "."}
tasks:
  - {id: "../../task", title: "../../t", status: pending}
"""


def _snapshot(top: Path) -> set[str]:
    return {
        os.path.relpath(os.path.join(directory, name), top)
        for directory, dirs, files in os.walk(top)
        for name in [*dirs, *files]
    }


def test_names_from_manifests_never_become_paths(tmp_path: Path) -> None:
    repo = tmp_path / "work" / "repo"
    (repo / "deep").mkdir(parents=True)
    (repo / "deep" / "a.metaqore.yaml").write_text(TRAVERSAL)
    (repo / "metaqore.yaml").write_text('organization: "../../../escaped-org"\n')
    before_outside = _snapshot(tmp_path) - {p for p in _snapshot(tmp_path) if p.startswith("work")}
    before_inside = _snapshot(repo)
    reports = ["--json", "r.json", "--sarif", "r.sarif", "--junit-xml", "r.xml"]
    reports += ["--markdown", "r.md", "--write-baseline", "b.json"]
    for args in (
        ["check", "deep", "--db", "sqlite:///state.db", *reports],
        ["check", "deep", "--db", "sqlite:///state.db", "--mode", "playground", *reports],
    ):
        result = run_in_process(args, cwd=repo)
        assert result.code in (0, 1), str(result)
    after_outside = {p for p in _snapshot(tmp_path) if not p.startswith("work")}
    assert after_outside == before_outside
    assert sorted(_snapshot(tmp_path / "work")) == sorted(
        ["repo", *(f"repo/{path}" for path in _snapshot(repo))]
    )
    created = _snapshot(repo) - before_inside
    expected = {"r.json", "r.sarif", "r.xml", "r.md", "b.json", "state.db"}
    expected |= {"metaqore-audit.jsonl", "metaqore-audit.jsonl.head", "metaqore-audit.jsonl.lock"}
    assert created - {"state.db-wal", "state.db-shm", "state.db-journal"} == expected
    assert not any("escaped" in path for path in _snapshot(tmp_path))


@pytest.mark.parametrize(
    ("option", "name"),
    [
        ("--json", "r.json"),
        ("--sarif", "r.sarif"),
        ("--junit-xml", "r.xml"),
        ("--markdown", "r.md"),
        ("--write-baseline", "b.json"),
    ],
)
def test_a_report_planted_as_a_symlink_is_replaced_not_written_through(
    tmp_path: Path, option: str, name: str
) -> None:
    """The repository under test may ship ``r.json -> ~/.bashrc``: the report replaces
    the link (like ``mv``), and the file it pointed to is untouched."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.metaqore.yaml").write_text(
        "metaqore: 1\nproject: {id: p}\nartifacts:\n  - {id: a, type: t, created_by: x}\n"
    )
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (repo / name).symlink_to(victim)
    missing = tmp_path / "not-there"
    (repo / f"other-{name}").symlink_to(missing)
    for target in (name, f"other-{name}"):
        result = run_in_process(["check", "a.metaqore.yaml", option, target], cwd=repo)
        assert result.code == 0, str(result)
        assert not (repo / target).is_symlink() and (repo / target).stat().st_size > 0
    assert victim.read_text() == "precious"
    assert not missing.exists()


@pytest.mark.parametrize("sidecar", [".head.tmp", ".lock", ".head"])
def test_audit_sidecars_planted_as_symlinks_are_never_written_through(
    tmp_path: Path, sidecar: str
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.metaqore.yaml").write_text(
        "metaqore: 1\nproject: {id: p}\nartifacts:\n  - {id: a, type: t, created_by: x}\n"
    )
    victim = tmp_path / "victim"
    victim.write_text("precious")
    missing = tmp_path / "created-by-the-gate"
    (repo / f"metaqore-audit.jsonl{sidecar}").symlink_to(victim)
    (repo / f"other.jsonl{sidecar}").symlink_to(missing)
    first = run_in_process(["check", "a.metaqore.yaml"], cwd=repo)
    second = run_in_process(["check", "a.metaqore.yaml", "--audit-log", "other.jsonl"], cwd=repo)
    assert victim.read_text() == "precious"
    assert not missing.exists()
    for result in (first, second):
        # A planted lock or head is refused with a clear error; a planted temporary
        # file is simply not used.
        assert result.code in (0, 2), str(result)
        if result.code == 2:
            assert "symbolic link" in result.stderr or "not a valid audit head" in result.stderr
    if sidecar == ".head.tmp":
        assert first.code == second.code == 0


def test_a_config_audit_log_symlinked_out_of_the_tree_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.metaqore.yaml").write_text(
        "metaqore: 1\nproject: {id: p}\nartifacts:\n  - {id: a, type: t, created_by: x}\n"
    )
    (repo / "metaqore-audit.jsonl").symlink_to(tmp_path / "outside.jsonl")
    result = run_in_process(["check", "a.metaqore.yaml"], cwd=repo)
    assert result.code == 2 and "outside the working tree" in result.stderr, str(result)
    assert not (tmp_path / "outside.jsonl").exists()


@pytest.mark.parametrize("where", ["relative", "absolute", "symlink"])
def test_a_config_store_path_outside_the_tree_is_refused(tmp_path: Path, where: str) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.metaqore.yaml").write_text(
        "metaqore: 1\nproject: {id: p}\nartifacts:\n  - {id: a, type: t, created_by: x}\n"
    )
    outside = tmp_path / "outside.db"
    dsn = {
        "relative": "sqlite:///../outside.db",
        "absolute": f"sqlite:///{outside}",
        "symlink": "sqlite:///state/outside.db",
    }[where]
    if where == "symlink":
        (repo / "state").symlink_to(tmp_path)
    (repo / "metaqore.yaml").write_text(f'storage_dsn: "{dsn}"\n')
    result = run_in_process(["check", "a.metaqore.yaml"], cwd=repo)
    assert not outside.exists()
    assert result.code == 2 and "outside the working tree" in result.stderr, str(result)


@pytest.mark.parametrize("how", ["environment", "arguments"])
def test_paths_outside_the_tree_chosen_explicitly_are_used(tmp_path: Path, how: str) -> None:
    """Only a config *file* is distrusted: METAQORE_* and options are the user's choice."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.metaqore.yaml").write_text(
        "metaqore: 1\nproject: {id: p}\nartifacts:\n  - {id: a, type: t, created_by: x}\n"
    )
    (repo / "metaqore.yaml").write_text(
        'storage_dsn: "sqlite:///../from-file.db"\naudit_log: ../from-file.jsonl\n'
    )
    store, audit = tmp_path / "chosen.db", tmp_path / "chosen.jsonl"
    if how == "environment":
        env = {"METAQORE_STORAGE_DSN": f"sqlite:///{store}", "METAQORE_AUDIT_LOG": str(audit)}
        result = run_in_process(["check", "a.metaqore.yaml"], cwd=repo, env=env)
    else:
        result = run_in_process(
            ["check", "a.metaqore.yaml", "--db", f"sqlite:///{store}", "--audit-log", str(audit)],
            cwd=repo,
        )
    assert result.code == 0, str(result)
    assert store.is_file() and audit.is_file()
    assert not (tmp_path / "from-file.db").exists() and not (tmp_path / "from-file.jsonl").exists()


def test_names_cannot_inject_lines_or_escapes_into_the_output(tmp_path: Path) -> None:
    (tmp_path / "a.metaqore.json").write_text(
        '{"metaqore": 1, "project": {"id": "p"}, "artifacts": [{"id": '
        '"a\\n::error file=x.py,line=1::INJECTED", "type": "t", "created_by": "x\\u001b[2J", '
        '"task": {"provider": "evil\\n::add-mask::INJECTED"}}]}'
    )
    result = run_in_process(
        ["check", "a.metaqore.json", "--no-github", "--markdown", "r.md"], cwd=tmp_path
    )
    assert result.code == 1, str(result)
    quiet = run_in_process(["check", "a.metaqore.json", "--no-github", "--quiet"], cwd=tmp_path)
    assert quiet.code == 1, str(quiet)
    report = run_in_process(["audit", "report", "metaqore-audit.jsonl"], cwd=tmp_path)
    assert report.code == 0, str(report)
    lines = [
        *result.stdout.splitlines(),
        *(tmp_path / "r.md").read_text().splitlines(),
        *quiet.stdout.splitlines(),
        *report.stdout.splitlines(),
    ]
    injected = [line for line in lines if line.lstrip().startswith("::") or "\x1b" in line]
    assert not injected, injected
    # The names are still there to read, escaped.
    assert "a\\x0a::error file=x.py" in result.stdout
    assert "evil\\x0a::add-mask::INJECTED" in report.stdout


# -- the dependency audit ---------------------------------------------------------------------

AUDIT_SCRIPT = REPO / ".ci" / "audit-deps.sh"
LOCK = REPO / "requirements" / "lock.txt"


def test_the_lock_pins_every_dependency_with_a_hash() -> None:
    entries = LOCK.read_text().replace("\\\n", " ").splitlines()
    pinned = [line.split() for line in entries if line and not line.startswith("#")]
    assert len(pinned) > 30
    for requirement, *options in pinned:
        assert re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!_-]+", requirement), requirement
        assert any(option.startswith("--hash=sha256:") for option in options), requirement
    names = {requirement.split("==")[0].lower().replace("_", "-") for requirement, *_ in pinned}
    runtime = {
        "pytest",
        "pluggy",
        "pydantic",
        "pydantic-settings",
        "sqlalchemy",
        "pyyaml",
        "junit-xml",
        "cryptography",
    }
    assert runtime <= names
    assert "metaqore" not in names


def _evaluate(tmp_path: Path, report: object) -> tuple[int, str]:
    path = tmp_path / "report.json"
    path.write_text(report if isinstance(report, str) else json.dumps(report))
    completed = subprocess.run(
        ["bash", str(AUDIT_SCRIPT), "--evaluate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return completed.returncode, completed.stdout + completed.stderr


def test_the_audit_script_fails_on_a_known_vulnerability(tmp_path: Path) -> None:
    code, output = _evaluate(
        tmp_path,
        {
            "dependencies": [
                {
                    "name": "pyyaml",
                    "version": "5.3",
                    "vulns": [
                        {
                            "id": "PYSEC-2020-176",
                            "fix_versions": ["5.4"],
                            "aliases": ["CVE-2020-14343"],
                        }
                    ],
                },
                {"name": "pydantic", "version": "2.14.4", "vulns": []},
            ],
            "fixes": [],
        },
    )
    assert code == 1, output
    assert "VULNERABLE pyyaml==5.3: PYSEC-2020-176 (CVE-2020-14343) -- fixed in: 5.4" in output


@pytest.mark.parametrize(
    "report",
    [
        {"dependencies": [{"name": "pyyaml", "skip_reason": "Dependency not found on PyPI"}]},
        {"dependencies": []},
        "not json",
        {"unexpected": True},
    ],
    ids=["skipped", "empty", "garbage", "no dependencies key"],
)
def test_the_audit_script_fails_when_nothing_could_be_audited(
    tmp_path: Path, report: object
) -> None:
    code, output = _evaluate(tmp_path, report)
    assert code == 2, output
    assert "audit-deps:" in output


def test_the_audit_script_passes_a_clean_report(tmp_path: Path) -> None:
    code, output = _evaluate(
        tmp_path, {"dependencies": [{"name": "pyyaml", "version": "6.0.4", "vulns": []}]}
    )
    assert code == 0 and "no known vulnerabilities in 1 locked dependencies" in output
