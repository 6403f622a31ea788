"""Exit codes exactly as SPEC §8 says, and what bad input leaves behind (nothing but a record)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from cli_support import (
    audit_records,
    check,
    clean_env,
    copy_fixture,
    last_run,
    metaqore,
)

# Each bad file of fixtures/bad (plus two made at test time) and the words a user sees.
BAD_INPUT = {
    "bad/duplicate-key.metaqore.json": "4:73: duplicate key 'type' (expected unique keys)",
    "bad/invalid-utf8.metaqore.yaml": "2:18: invalid UTF-8 (expected UTF-8 text)",
    "bad/invalid-yaml.metaqore.yaml": "3:10: invalid YAML: did not find expected ',' or '}'",
    "bad/python-tag.metaqore.yaml": (
        "7:11: unsafe or unknown YAML tag '!!python/object/apply:os.system' "
        "(expected plain YAML data)"
    ),
    "bad/second-header.metaqore.jsonl": "3:1: a second header line",
    "bad/unknown-key.metaqore.yaml": "7:5: unknown key 'dependson' (did you mean 'depends_on'?)",
    "bad/wrong-type.metaqore.yaml": (
        "4:49: artifacts[0].version: got a string (expected a valid integer)"
    ),
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_bad_manifests_exit_2_with_one_located_line_each(workspace: Path) -> None:
    passed = check("examples/passing", "--db", "sqlite:///state.db", cwd=workspace)
    assert passed.returncode == 0, passed
    before = audit_records(workspace / "metaqore-audit.jsonl")
    store = _sha256(workspace / "state.db")

    copy_fixture("bad", workspace)
    (workspace / "bad/invalid-utf8.metaqore.yaml").write_bytes(
        b"metaqore: 1\nproject: {id: caf\xe9}\nartifacts: []\n"
    )
    result = metaqore(
        "check",
        "--config",
        "examples/metaqore.yaml",
        "--db",
        "sqlite:///state.db",
        "--json",
        "bad.json",
        "bad",
        cwd=workspace,
    )
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == len(BAD_INPUT)
    for line, (path, problem) in zip(lines, sorted(BAD_INPUT.items()), strict=True):
        assert line.startswith(f"{path}:{problem}"), line
    assert not (workspace / "pwned").exists()  # the python tag was never executed
    assert not (workspace / "bad.json").exists()

    # The audit chain keeps what it had, plus a record of the failed run only.
    after = audit_records(workspace / "metaqore-audit.jsonl")
    assert after[: len(before)] == before
    added = after[len(before) :]
    assert [r["event_type"] for r in added] == ["run_started", "run_finished"]
    assert added[1]["payload"]["verdict"] == "error"
    assert added[1]["payload"]["exit_code"] == 2
    assert added[1]["payload"]["problems"] == len(BAD_INPUT)
    assert added[0]["prev_hash"] == before[-1]["hash"]
    verify = metaqore("audit", "verify", "metaqore-audit.jsonl", cwd=workspace)
    assert verify.returncode == 0, verify
    # ... and the store is untouched.
    assert _sha256(workspace / "state.db") == store


def test_a_symlink_out_of_the_repository_is_refused(
    workspace: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside") / "secret.metaqore.yaml"
    outside.write_text(
        "metaqore: 1\nproject: {id: outside}\ntasks: [{id: t, title: t}]\n", encoding="utf-8"
    )
    (workspace / "link").mkdir()
    os.symlink(outside, workspace / "link/escape.metaqore.yaml")
    result = check("link", cwd=workspace)
    assert result.returncode == 2, result
    assert result.stderr.startswith(
        "link/escape.metaqore.yaml:1:1: escapes the repository through a symlink"
    )
    assert "Traceback" not in result.stderr
    assert [r["event_type"] for r in last_run(workspace / "metaqore-audit.jsonl")] == [
        "run_started",
        "run_finished",
    ]


def test_a_symlink_to_another_file_of_the_repository_is_fine_from_a_subdirectory(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)  # what makes a directory a repository's top
    (repo / "shared").mkdir()
    (repo / "shared/plan.metaqore.yaml").write_text(
        "metaqore: 1\nproject: {id: p}\nartifacts: [{id: a, type: t, created_by: x}]\n"
    )
    (repo / "service").mkdir()
    os.symlink("../shared/plan.metaqore.yaml", repo / "service/plan.metaqore.yaml")
    result = metaqore("check", "plan.metaqore.yaml", "--no-audit", cwd=repo / "service")
    assert result.returncode == 0, result
    # Outside the repository it is still refused.
    (repo / ".git").rmdir()
    refused = metaqore("check", "plan.metaqore.yaml", "--no-audit", cwd=repo / "service")
    assert refused.returncode == 2, refused
    assert "escapes the repository through a symlink" in refused.stderr


def test_nothing_to_check_exits_2_and_says_where_it_looked(workspace: Path) -> None:
    (workspace / "empty").mkdir()
    result = metaqore("check", cwd=workspace / "empty")
    assert result.returncode == 2, result
    assert result.stderr == (
        f"no manifests found under {workspace / 'empty'} (looked for **/*.metaqore.yaml, "
        "**/*.metaqore.yml, **/*.metaqore.json, **/*.metaqore.jsonl)\n"
    )
    directory = check("examples/keys", cwd=workspace)
    assert directory.returncode == 2
    assert f"no manifests found under {workspace / 'examples/keys'}" in directory.stderr
    glob = check("examples/nowhere/*.metaqore.yaml", cwd=workspace)
    assert glob.returncode == 2
    assert glob.stderr.startswith("examples/nowhere/*.metaqore.yaml:")
    assert "no file matches this pattern" in glob.stderr
    missing = check("examples/passing/iteration-9.metaqore.yaml", cwd=workspace)
    assert missing.returncode == 2
    assert "iteration-9.metaqore.yaml" in missing.stderr
    assert "no such file or directory" in missing.stderr
    for failed in (directory, glob, missing):
        assert "Traceback" not in failed.stderr
        assert failed.stdout == ""


def test_bad_config_exits_2(workspace: Path) -> None:
    (workspace / "typo.yaml").write_text(
        "organization: acme\ngovernance_mod: strict\n", encoding="utf-8"
    )
    typo = check("examples/passing", cwd=workspace, config="typo.yaml")
    assert typo.returncode == 2, typo
    assert typo.stderr == (
        "typo.yaml:2:1: unknown key 'governance_mod' (did you mean 'governance_mode'?)\n"
    )
    (workspace / "range.yaml").write_text("max_graph_depth: 99\n", encoding="utf-8")
    out_of_range = check("examples/passing", cwd=workspace, config="range.yaml")
    assert out_of_range.returncode == 2
    assert out_of_range.stderr.startswith("range.yaml:1:")
    assert "max_graph_depth" in out_of_range.stderr
    # The config found in the working directory is checked the same way.
    (workspace / "metaqore.yaml").write_text("fail_on: severe\n", encoding="utf-8")
    found = check("examples/passing", cwd=workspace, config=None)
    assert found.returncode == 2
    assert "metaqore.yaml:1:1: fail_on" in found.stderr
    env = metaqore(
        "check",
        "examples/passing",
        cwd=workspace,
        env=clean_env(METAQORE_GOVERNANCE_MODE="lenient"),
    )
    assert env.returncode == 2
    assert "METAQORE_GOVERNANCE_MODE" in env.stderr
    missing = check("examples/passing", cwd=workspace, config="nope.yaml")
    assert missing.returncode == 2
    assert missing.stderr == "nope.yaml: config file not found\n"
    for failed in (typo, out_of_range, found, env, missing):
        assert "Traceback" not in failed.stderr


def test_bad_arguments_exit_2(workspace: Path) -> None:
    lenient = check("examples/passing", "--mode", "lenient", cwd=workspace)
    assert lenient.returncode == 2
    assert "argument --mode: invalid choice: 'lenient'" in lenient.stderr
    assert "usage: metaqore check" in lenient.stderr
    unknown = metaqore("check", "--strictest", cwd=workspace)
    assert unknown.returncode == 2
    assert "unrecognized arguments: --strictest" in unknown.stderr
    nothing = metaqore(cwd=workspace)
    assert nothing.returncode == 2
    assert "usage: metaqore" in nothing.stderr
    command = metaqore("judge", cwd=workspace)
    assert command.returncode == 2
    for failed in (lenient, unknown, nothing, command):
        assert "Traceback" not in failed.stderr
    assert not (workspace / "metaqore-audit.jsonl").exists()


def test_pass_and_blocked_are_0_and_1(workspace: Path) -> None:
    assert check("examples/passing", cwd=workspace).returncode == 0
    assert check("examples/conflicts/missing_dependency", cwd=workspace).returncode == 1
    both = check("examples/passing", "examples/conflicts/missing_dependency", cwd=workspace)
    assert both.returncode == 1  # any blocking project blocks the build


# -- internal errors ---------------------------------------------------------------------

_BROKEN_RULE = """\
from metaqore.core.models import ConflictSeverity, ResolutionStrategy
from metaqore.plugins import hookimpl


class BrokenRule:
    conflict_type = "broken_rule"
    severity = ConflictSeverity.LOW
    strategy = ResolutionStrategy.RETRY

    def check(self, index):
        raise RuntimeError("the broken rule broke")


@hookimpl
def metaqore_conflict_rules():
    return [BrokenRule()]
"""


@pytest.fixture
def broken_plugin(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A third-party rule, installed through the ``metaqore`` entry point, that raises."""
    site = tmp_path_factory.mktemp("site")
    (site / "broken_rule.py").write_text(_BROKEN_RULE, encoding="utf-8")
    info = site / "broken_rule-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken-rule\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text("[metaqore]\nbroken = broken_rule\n", encoding="utf-8")
    return clean_env(PYTHONPATH=str(site))


def test_internal_error_exits_3_and_asks_for_a_report(
    workspace: Path, broken_plugin: dict[str, str]
) -> None:
    result = check("examples/passing", cwd=workspace, env=broken_plugin)
    assert result.returncode == 3, result
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(
        "metaqore: internal error: RuntimeError: the broken rule broke\n"
        "This is a bug in MetaQore; please report it at "
    )
    assert "--debug" in result.stderr
    assert not (workspace / "report.json").exists()

    debug = check("examples/passing", "--debug", cwd=workspace, env=broken_plugin)
    assert debug.returncode == 3
    assert debug.stderr.startswith("Traceback (most recent call last):")
    assert 'broken_rule.py", line 11, in check' in debug.stderr
    top = metaqore("check", "examples/passing", cwd=workspace, env=broken_plugin, top=("--debug",))
    assert top.returncode == 3 and "Traceback" in top.stderr

    # A bug never corrupts the audit chain.
    if (workspace / "metaqore-audit.jsonl").exists():
        verify = metaqore("audit", "verify", "metaqore-audit.jsonl", cwd=workspace)
        assert verify.returncode == 0, verify


# -- where the outputs go ------------------------------------------------------------------


def test_an_unwritable_output_is_exit_2_after_the_verdict_is_shown(workspace: Path) -> None:
    (workspace / "taken").mkdir()
    for option in ("--sarif", "--junit-xml", "--markdown", "--write-baseline"):
        result = check("examples/conflicts/missing_dependency", option, "taken", cwd=workspace)
        assert result.returncode == 2, result
        assert result.stderr.startswith("cannot write the ") and "to taken: Is a directory" in (
            result.stderr
        )
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        assert "metaqore: BLOCKED" in result.stdout  # the verdict was still shown

    audit = check("examples/passing", "--audit-log", "taken", cwd=workspace)
    assert audit.returncode == 2, audit
    assert audit.stderr == f"cannot open the audit file {workspace / 'taken'}: Is a directory\n"


def test_a_run_that_cannot_judge_leaves_no_report_behind(workspace: Path) -> None:
    reports = ["--sarif", "r.sarif", "--junit-xml", "r.xml", "--markdown", "r.md"]
    passed = check("examples/passing", *reports, "--write-baseline", "b.json", cwd=workspace)
    assert passed.returncode == 0, passed
    assert passed.report()["verdict"] == "pass"
    (workspace / "bad.metaqore.yaml").write_text("metaqore: 1\nproject: {id: [\n")
    failed = check("examples/passing", "bad.metaqore.yaml", *reports, cwd=workspace)
    assert failed.returncode == 2, failed
    # An earlier "pass" under the same names must not be read as this run's verdict.
    for name in ("report.json", "r.sarif", "r.xml", "r.md"):
        assert not (workspace / name).exists(), name
    assert (workspace / "b.json").is_file()  # a baseline is an input, not a verdict


def test_github_actions_sees_a_run_that_cannot_judge(workspace: Path) -> None:
    (workspace / "bad.metaqore.yaml").write_text(
        "metaqore: 1\nproject: {id: p}\nartifacts:\n  - {id: a, type: t, created_by: x, "
        "dependson: []}\n"
    )
    output, summary = workspace / "out.txt", workspace / "summary.md"
    env = clean_env(
        GITHUB_ACTIONS="true", GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary)
    )
    result = check("bad.metaqore.yaml", cwd=workspace, env=env)
    assert result.returncode == 2, result
    assert result.stdout.splitlines() == [
        "::error file=bad.metaqore.yaml,line=4,col=37,title=metaqore%3A could not judge::"
        "unknown key 'dependson' (did you mean 'depends_on'?)"
    ]
    outputs = output.read_text()
    assert "verdict<<" in outputs and "\nerror\n" in outputs
    text = summary.read_text()
    assert text.startswith("## ⚠️ MetaQore: could not judge")
    assert "bad.metaqore.yaml:4:37: unknown key 'dependson'" in text
