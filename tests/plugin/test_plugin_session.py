"""The session: one gate run, the ``metaqore`` summary, the exit status, and pytest-xdist.

The acceptance tests run three ways (``xdist_args``): without xdist, ``-n0`` and ``-n2``,
and must give the same outcomes and one valid audit chain with one run section.
"""

from __future__ import annotations

import pytest
from plugin_support import (
    BLOCKING,
    MEDIUM,
    PASSING,
    UNKNOWN_KEY,
    UNRELATED_PLUGINS,
    assert_one_valid_run,
    audit_records,
    lines,
    write,
)

from pytest_metaqore.plugin import OPTION_DB, OPTION_ENABLE, OPTION_FAIL_ON, OPTION_MODE

PLAIN_TESTS = "def test_one():\n    pass\n\ndef test_two():\n    pass\n"


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(OPTION_ENABLE, *UNRELATED_PLUGINS, *args)


# -- the xdist matrix --------------------------------------------------------------------------
def test_blocked_gate_fails_the_session(pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    write(pytester, {"alpha.metaqore.yaml": PASSING, "beta.metaqore.yaml": BLOCKING})
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    result = _run(pytester, *xdist_args, "-rf")
    result.assert_outcomes(passed=3, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        lines(
            "*= metaqore =*",
            "metaqore: BLOCKED — 2 projects, 4 artifacts, 1 blocking (1 conflict, 0 vetoes), "
            "0 waived, 0 auto-resolved",
            "  ✗ beta: 1 blocking (missing_dependency)",
            "audit: metaqore-audit.jsonl (head sha256:*)",
        )
    )
    result.stdout.fnmatch_lines(
        lines("FAILED beta.metaqore.yaml::metaqore[beta] - project beta BLOCKED by 1 finding*")
    )
    records = assert_one_valid_run(pytester.path / "metaqore-audit.jsonl")
    finished = records[-1]["payload"]
    assert finished["verdict"] == "blocked"
    assert finished["summary"]["blocking"] == 1
    # The head the summary prints is the chain's real head.
    assert f"(head {records[-1]['hash']})" in result.stdout.str()


def test_passing_gate(pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    write(pytester, {"alpha.metaqore.yaml": PASSING})
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    result = _run(pytester, *xdist_args)
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(lines("metaqore: PASS — 1 project, 2 artifacts, 0 blocking*"))
    assert_one_valid_run(pytester.path / "metaqore-audit.jsonl")


def test_unreadable_manifest(pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    write(pytester, {"alpha.metaqore.yaml": PASSING, "zeta.metaqore.yaml": UNKNOWN_KEY})
    result = _run(pytester, *xdist_args)
    # The gate could not judge: exit 2, as the CLI, with or without xdist.
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        lines(
            "*ERROR collecting zeta.metaqore.yaml*",
            "zeta.metaqore.yaml:6:5: unknown key 'dependson' (did you mean 'depends_on'?)",
            "metaqore: could not judge — 1 problem(s) in 1 manifest(s)*",
        )
    )
    records = assert_one_valid_run(pytester.path / "metaqore-audit.jsonl")
    assert records[-1]["payload"]["verdict"] == "error"


def test_deselected_blocked_item_still_fails_the_session(
    pytester: pytest.Pytester, xdist_args: list[str]
) -> None:
    write(pytester, {"alpha.metaqore.yaml": PASSING, "beta.metaqore.yaml": BLOCKING})
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    result = _run(pytester, *xdist_args, "-k", "not beta")
    # xdist's controller does not count what its workers deselect.
    result.assert_outcomes(passed=3, deselected=0 if xdist_args == ["-n", "2"] else 1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["metaqore: BLOCKED*", "  ✗ beta: 1 blocking*"])


def test_playground_never_fails_the_session(
    pytester: pytest.Pytester, xdist_args: list[str]
) -> None:
    write(pytester, {"beta.metaqore.yaml": BLOCKING, "gamma.metaqore.yaml": MEDIUM})
    result = _run(pytester, *xdist_args, OPTION_MODE, "playground")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(lines("metaqore: PASS * 2 below threshold [playground mode]"))
    records = assert_one_valid_run(pytester.path / "metaqore-audit.jsonl")
    kinds = [record["event_type"] for record in records]
    assert kinds.count("conflict_detected") == 2  # reported and audited all the same


def test_store_is_written_by_the_gate_run(pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    from metaqore.storage.backends.sqlite import SQLiteBackend

    write(pytester, {"alpha.metaqore.yaml": PASSING})
    _run(pytester, *xdist_args, OPTION_DB, "sqlite:///state.db").assert_outcomes(passed=1)

    backend = SQLiteBackend(dsn=f"sqlite:///{pytester.path / 'state.db'}")
    try:
        artifacts = backend.list_artifacts("alpha")
    finally:
        backend.close()
    assert sorted(artifact.id for artifact in artifacts) == ["code", "spec"]
    # One gate run in all (workers never run the gate, so never open the store).
    records = assert_one_valid_run(pytester.path / "metaqore-audit.jsonl")
    assert records[0]["payload"]["store"] == "sqlite:///state.db"


# -- exit status and summary without xdist -----------------------------------------------------
def test_blocked_gate_fails_a_session_whose_tests_all_pass(pytester: pytest.Pytester) -> None:
    write(pytester, {"beta.metaqore.yaml": BLOCKING})
    pytester.makepyfile(test_plain=PLAIN_TESTS)
    result = _run(pytester, "-m", "not metaqore")
    result.assert_outcomes(passed=2, deselected=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_nothing_selected_but_gate_blocks(pytester: pytest.Pytester) -> None:
    write(pytester, {"beta.metaqore.yaml": BLOCKING})
    result = _run(pytester, "-k", "nothing_matches_this")
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # not NO_TESTS_COLLECTED


def test_other_failures_keep_their_exit_status(pytester: pytest.Pytester) -> None:
    write(pytester, {"alpha.metaqore.yaml": PASSING})
    pytester.makepyfile(test_plain="def test_broken():\n    assert False\n")
    result = _run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["metaqore: PASS*"])


def test_summary_counts_every_bucket(pytester: pytest.Pytester) -> None:
    write(
        pytester,
        {
            "alpha.metaqore.yaml": PASSING,
            "beta.metaqore.yaml": BLOCKING,
            "gamma.metaqore.yaml": MEDIUM,
        },
    )
    result = _run(pytester, OPTION_FAIL_ON, "high")
    result.stdout.fnmatch_lines(
        [
            "*= metaqore =*",
            "metaqore: BLOCKED — 3 projects, 5 artifacts, 1 blocking (1 conflict, 0 vetoes), "
            "0 waived, 0 auto-resolved, 1 below threshold",
            "  ✗ beta: 1 blocking (missing_dependency)",
            "audit: metaqore-audit.jsonl (head sha256:*)",
        ]
    )
    result.stdout.no_fnmatch_line("  ✗ gamma*")


def test_collect_only_writes_no_audit(pytester: pytest.Pytester) -> None:
    write(pytester, {"beta.metaqore.yaml": BLOCKING})
    result = _run(pytester, "--collect-only", OPTION_DB, "sqlite:///state.db")
    result.stdout.fnmatch_lines(lines("*<MetaqoreItem metaqore[beta]>*"))
    assert not (pytester.path / "metaqore-audit.jsonl").exists()
    assert not (pytester.path / "state.db").exists()


def test_gate_runs_once_per_session(pytester: pytest.Pytester) -> None:
    write(
        pytester,
        {f"p{n}.metaqore.yaml": PASSING.replace("alpha", f"project-{n}") for n in range(5)},
    )
    _run(pytester).assert_outcomes(passed=5)
    kinds = [r["event_type"] for r in audit_records(pytester.path / "metaqore-audit.jsonl")]
    assert kinds.count("run_started") == 1


def test_controller_checks_what_workers_decided(pytester: pytest.Pytester) -> None:
    # A worker whose copy of the verdict was tampered with (here by a conftest) lets a
    # blocked project pass; the controller notices and fails the session.
    pytester.makeconftest(
        """
def pytest_configure(config):
    if hasattr(config, "workerinput"):
        config.workerinput["metaqore"]["verdict"]["findings"] = []
"""
    )
    write(pytester, {"beta.metaqore.yaml": BLOCKING})
    result = _run(pytester, "-n", "2", OPTION_MODE, "strict")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "metaqore: BLOCKED*",
            "metaqore: worker gw* says project beta passed, the controller's verdict says failed",
        ]
    )
