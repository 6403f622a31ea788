"""One test item per project: node ids, marker, failure report, collection errors, selection."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from plugin_support import (
    BLOCKING,
    CROSS_FILE,
    MEDIUM,
    PASSING,
    UNKNOWN_KEY,
    audit_records,
    lines,
    write,
)

from pytest_metaqore.plugin import OPTION_ENABLE, OPTION_FAIL_ON, OPTION_MODE


def test_one_item_per_project_named_after_its_first_manifest(pytester: pytest.Pytester) -> None:
    write(
        pytester,
        {"alpha.metaqore.yaml": PASSING, "beta.metaqore.json.txt": "", **CROSS_FILE},
    )
    write(pytester, {"runs/beta.metaqore.yaml": BLOCKING})
    result = pytester.runpytest(OPTION_ENABLE, "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        lines(
            "alpha.metaqore.yaml::metaqore[alpha]",
            # delta is declared first (in sorted path order) in delta/code.metaqore.yaml
            "delta/code.metaqore.yaml::metaqore[delta]",
            "runs/beta.metaqore.yaml::metaqore[beta]",
            "3 tests collected*",
        )
    )
    result.stdout.no_fnmatch_line("delta/spec.metaqore.yaml::*")
    # --collect-only judges for the item list only: nothing is audited.
    assert not (pytester.path / "metaqore-audit.jsonl").exists()


def _deselected(xdist_args: list[str], count: int) -> int:
    """pytest-xdist's controller does not count what its workers deselected."""
    return 0 if xdist_args[-1:] == ["2"] else count


def _reported(result: pytest.RunResult, node_id: str, outcome: str) -> None:
    """``-v`` printed ``node_id`` with ``outcome`` (either layout: plain or xdist's)."""
    assert any(node_id in line and outcome in line for line in result.stdout.lines), (
        f"no line with {node_id} and {outcome}:\n{result.stdout.str()}"
    )


def test_blocked_project_fails_with_its_blocking_report(
    pytester: pytest.Pytester, xdist_args: list[str]
) -> None:
    write(pytester, {"alpha.metaqore.yaml": PASSING, "beta.metaqore.yaml": BLOCKING})
    result = pytester.runpytest(OPTION_ENABLE, "-v", *xdist_args)
    result.assert_outcomes(passed=1, failed=1)
    _reported(result, "alpha.metaqore.yaml::metaqore[alpha]", "PASSED")
    _reported(result, "beta.metaqore.yaml::metaqore[beta]", "FAILED")
    result.stdout.fnmatch_lines(
        lines(
            "*_ metaqore[beta] _*",
            "project beta BLOCKED by 1 finding(s): missing_dependency on beta-code",
            "",
            "metaqore * mode strict * policy default_local_first * fail-on low",
            "",
            "✗ beta — BLOCKED (1 blocking, 2 artifacts)",
            "  ✗ HIGH missing_dependency · beta-code · beta.metaqore.yaml:5",
            "      code 'beta-code' (by coder) depends on 'nowhere', *",
            "      missing: 'nowhere', needed by 'beta-code'",
            "",
            "metaqore: BLOCKED — 1 project, 2 artifacts, 1 blocking *",
        )
    )
    # Only that project's report: nothing about alpha, and no Python traceback.
    failure = result.stdout.str().split("_ metaqore[beta] _")[1].split("= metaqore =")[0]
    assert "alpha" not in failure
    assert "Traceback" not in failure and "session.py" not in failure


def test_items_carry_the_metaqore_marker(pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    write(pytester, {"alpha.metaqore.yaml": PASSING, "beta.metaqore.yaml": BLOCKING})
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest(OPTION_ENABLE, "-m", "metaqore", "-v", *xdist_args)
    result.assert_outcomes(passed=1, failed=1, deselected=_deselected(xdist_args, 1))
    result = pytester.runpytest(
        OPTION_ENABLE, "-m", "not metaqore", "--strict-markers", *xdist_args
    )
    result.assert_outcomes(passed=1, deselected=_deselected(xdist_args, 2))


def test_non_blocking_findings_are_shown_in_the_report_sections(
    pytester: pytest.Pytester,
) -> None:
    write(pytester, {"gamma.metaqore.yaml": MEDIUM})
    result = pytester.runpytest(OPTION_ENABLE, OPTION_FAIL_ON, "high", "-rP")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        lines(
            "*= PASSES =*",
            "*_ metaqore[gamma] _*",
            "*- Captured metaqore call -*",
            "✓ gamma — pass (1 artifact, 1 not blocking)",
            "  · MEDIUM version_mismatch · gamma-plan · gamma.metaqore.yaml:4 *",
        )
    )


def test_unreadable_manifest_is_a_collection_error_naming_file_and_line(
    pytester: pytest.Pytester, xdist_args: list[str]
) -> None:
    write(pytester, {"alpha.metaqore.yaml": PASSING, "zeta.metaqore.yaml": UNKNOWN_KEY})
    result = pytester.runpytest(OPTION_ENABLE, *xdist_args)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        lines(
            "*_ ERROR collecting zeta.metaqore.yaml _*",
            "zeta.metaqore.yaml:6:5: unknown key 'dependson' (did you mean 'depends_on'?)",
        )
    )
    assert "Traceback" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    # The failed run is still recorded in the audit chain, once.
    records = audit_records(pytester.path / "metaqore-audit.jsonl")
    assert [r["event_type"] for r in records] == ["run_started", "run_finished"]
    assert records[-1]["payload"]["verdict"] == "error"


def test_keyword_selection(pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    write(pytester, {"alpha.metaqore.yaml": PASSING, "beta.metaqore.yaml": BLOCKING})
    result = pytester.runpytest(OPTION_ENABLE, "-k", "alpha", "-v", *xdist_args)
    result.assert_outcomes(passed=1, deselected=_deselected(xdist_args, 1))
    _reported(result, "alpha.metaqore.yaml::metaqore[alpha]", "PASSED")


def test_deselect_by_node_id(pytester: pytest.Pytester) -> None:
    write(pytester, {"alpha.metaqore.yaml": PASSING, "beta.metaqore.yaml": BLOCKING})
    result = pytester.runpytest(
        OPTION_ENABLE, "--deselect", "beta.metaqore.yaml::metaqore[beta]", "-m", "metaqore"
    )
    result.assert_outcomes(passed=1, deselected=1)


def test_exitfirst_stops_at_the_first_blocked_project(pytester: pytest.Pytester) -> None:
    write(pytester, {"beta.metaqore.yaml": BLOCKING, "gamma.metaqore.yaml": MEDIUM})
    result = pytester.runpytest(OPTION_ENABLE, "-x")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(lines("*stopping after 1 failures*"))
    result = pytester.runpytest(OPTION_ENABLE)
    result.assert_outcomes(failed=2)


def test_last_failed_reruns_only_blocked_projects(
    pytester: pytest.Pytester, xdist_args: list[str]
) -> None:
    write(pytester, {"alpha.metaqore.yaml": PASSING, "beta.metaqore.yaml": BLOCKING})
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest(OPTION_ENABLE, *xdist_args)
    result.assert_outcomes(passed=2, failed=1)
    result = pytester.runpytest(OPTION_ENABLE, "--lf", "-v", *xdist_args)
    result.assert_outcomes(failed=1, deselected=0)
    _reported(result, "beta.metaqore.yaml::metaqore[beta]", "FAILED")
    result.stdout.no_fnmatch_line("*metaqore[[]alpha]*")
    result.stdout.no_fnmatch_line("*test_plain*")
    # Fix the manifest: --lf runs beta again, and it passes.
    write(pytester, {"beta.metaqore.yaml": BLOCKING.replace("[nowhere]", "[beta-spec]")})
    result = pytester.runpytest(OPTION_ENABLE, "--lf", *xdist_args)
    result.assert_outcomes(passed=1)


def test_junitxml_records_projects_as_testcases(
    pytester: pytest.Pytester, xdist_args: list[str]
) -> None:
    write(pytester, {"alpha.metaqore.yaml": PASSING, "beta.metaqore.yaml": BLOCKING})
    pytester.runpytest(OPTION_ENABLE, "--junitxml=junit.xml", *xdist_args)
    root = ET.parse(pytester.path / "junit.xml").getroot()
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert set(cases) == {"metaqore[alpha]", "metaqore[beta]"}
    assert cases["metaqore[alpha]"].find("failure") is None
    assert cases["metaqore[beta]"].get("classname") == "beta.metaqore.yaml"
    failure = cases["metaqore[beta]"].find("failure")
    assert failure is not None
    assert failure.get("message", "").startswith("project beta BLOCKED by 1 finding(s)")
    assert "missing_dependency · beta-code · beta.metaqore.yaml:5" in (failure.text or "")
    assert "\x1b[" not in (failure.text or "")  # no colour codes in the XML


def test_manifests_outside_the_collected_paths_still_get_items(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\ntestpaths = tests\n")
    pytester.mkdir("tests")
    (pytester.path / "tests" / "test_plain.py").write_text("def test_plain():\n    pass\n")
    write(pytester, {"agents/beta.metaqore.yaml": BLOCKING})
    result = pytester.runpytest(OPTION_ENABLE, "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(lines("agents/beta.metaqore.yaml::metaqore[beta] FAILED*"))


def test_paths_on_the_command_line_select_items_but_the_gate_judges_all(
    pytester: pytest.Pytester,
) -> None:
    write(pytester, {"alpha.metaqore.yaml": PASSING, "beta.metaqore.yaml": BLOCKING})
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest(OPTION_ENABLE, "test_plain.py")
    result.assert_outcomes(passed=1)
    # No item ran for beta, but the gate blocked: the session fails and says why.
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        lines("*= metaqore =*", "metaqore: BLOCKED*", "  ✗ beta: 1 blocking*")
    )
    # A node id runs exactly that project's item.
    result = pytester.runpytest(OPTION_ENABLE, "alpha.metaqore.yaml::metaqore[alpha]", "-v")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_playground_items_pass_and_show_the_findings(pytester: pytest.Pytester) -> None:
    write(pytester, {"beta.metaqore.yaml": BLOCKING})
    result = pytester.runpytest(OPTION_ENABLE, OPTION_MODE, "playground", "-rP")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(lines("*Captured metaqore call*", "*· HIGH missing_dependency*"))


def test_selecting_any_manifest_of_a_project_runs_its_item(pytester: pytest.Pytester) -> None:
    """An IDE's "run this file" on a project's second manifest runs the project."""
    write(pytester, {"alpha.metaqore.yaml": PASSING, **CROSS_FILE})
    result = pytester.runpytest(OPTION_ENABLE, "-v", "delta/spec.metaqore.yaml")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(lines("delta/spec.metaqore.yaml::metaqore[delta] PASSED*"))
    by_id = pytester.runpytest(OPTION_ENABLE, "delta/spec.metaqore.yaml::metaqore[delta]")
    by_id.assert_outcomes(passed=1)
    # Selecting the first manifest (or both) still names the item after the first.
    both = pytester.runpytest(OPTION_ENABLE, "-v", "delta")
    both.assert_outcomes(passed=1)
    both.stdout.fnmatch_lines(lines("delta/code.metaqore.yaml::metaqore[delta] PASSED*"))


def test_an_unreadable_manifest_outside_the_selection_is_explained(
    pytester: pytest.Pytester,
) -> None:
    write(pytester, {"broken/zeta.metaqore.yaml": UNKNOWN_KEY})
    pytester.makepyfile(test_plain="def test_ok():\n    pass\n")
    result = pytester.runpytest(OPTION_ENABLE, "test_plain.py")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*metaqore: could not judge — 1 problem(s) in 1 manifest(s)",
            "  broken/zeta.metaqore.yaml:6:5: unknown key 'dependson' (did you mean*",
        ]
    )
