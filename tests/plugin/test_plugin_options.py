"""Every option and ini key, what wins over what, and bad values as usage errors."""

from __future__ import annotations

import pytest
from plugin_support import (
    BLOCKING,
    CLOUD,
    MEDIUM,
    PASSING,
    UNKNOWN_KEY,
    assert_one_valid_run,
    lines,
    write,
)

from pytest_metaqore import plugin


def _ini(pytester: pytest.Pytester, **values: str) -> None:
    pytester.makeini("[pytest]\n" + "".join(f"{key} = {value}\n" for key, value in values.items()))


# -- config ------------------------------------------------------------------------------------
def test_config_file_in_the_rootdir_is_found(pytester: pytest.Pytester) -> None:
    write(pytester, {"beta.metaqore.yaml": BLOCKING, "metaqore.yaml": "fail_on: critical\n"})
    result = pytester.runpytest(plugin.OPTION_ENABLE)
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("via", ["option", "ini"])
def test_config_file(pytester: pytest.Pytester, via: str) -> None:
    write(
        pytester,
        {"beta.metaqore.yaml": BLOCKING, "ci/governance.yaml": "governance_mode: playground\n"},
    )
    if via == "option":
        result = pytester.runpytest(
            plugin.OPTION_ENABLE, plugin.OPTION_CONFIG, "ci/governance.yaml"
        )
    else:
        _ini(pytester, **{plugin.INI_CONFIG: "ci/governance.yaml"})
        result = pytester.runpytest(plugin.OPTION_ENABLE)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(lines("metaqore: PASS * [playground mode]"))


def test_config_from_pyproject(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        "[tool.pytest.ini_options]\n"
        f'{plugin.INI_FAIL_ON} = "high"\n'
        f'{plugin.INI_MANIFESTS} = ["agents"]\n'
        "[tool.metaqore]\n"
        'organization = "acme"\n'
    )
    write(pytester, {"agents/gamma.metaqore.yaml": MEDIUM, "other/beta.metaqore.yaml": BLOCKING})
    result = pytester.runpytest(plugin.OPTION_ENABLE)
    result.assert_outcomes(passed=1)
    records = assert_one_valid_run(pytester.path / "metaqore-audit.jsonl")
    assert {record["organization"] for record in records} == {"acme"}


# -- manifests ---------------------------------------------------------------------------------
@pytest.mark.parametrize("via", ["option", "ini"])
def test_manifests_narrow_what_the_gate_judges(pytester: pytest.Pytester, via: str) -> None:
    write(
        pytester,
        {
            "agents/alpha.metaqore.yaml": PASSING,
            "agents/more/gamma.metaqore.yaml": MEDIUM,
            "legacy/beta.metaqore.yaml": BLOCKING,
        },
    )
    if via == "option":
        result = pytester.runpytest(
            plugin.OPTION_ENABLE,
            plugin.OPTION_MANIFESTS,
            "agents/alpha.metaqore.yaml",
            plugin.OPTION_MANIFESTS,
            "agents/more/*.metaqore.yaml",
            plugin.OPTION_FAIL_ON,
            "high",
            "-v",
        )
    else:
        _ini(
            pytester,
            **{
                plugin.INI_MANIFESTS: "\n    agents/alpha.metaqore.yaml\n    agents/more/*.yaml",
                plugin.INI_FAIL_ON: "high",
            },
        )
        result = pytester.runpytest(plugin.OPTION_ENABLE, "-v")
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*legacy*")
    result.stdout.fnmatch_lines(lines("metaqore: PASS — 2 projects, 3 artifacts*"))


def test_manifests_given_from_a_subdirectory_are_relative_to_it(
    pytester: pytest.Pytester,
) -> None:
    _ini(pytester, addopts="-p no:cacheprovider")
    write(pytester, {"agents/alpha.metaqore.yaml": PASSING, "legacy/beta.metaqore.yaml": BLOCKING})
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(pytester.path / "agents")
        result = pytester.runpytest(
            plugin.OPTION_ENABLE, plugin.OPTION_MANIFESTS, "alpha.metaqore.yaml", "-v"
        )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(lines("alpha.metaqore.yaml::metaqore[alpha] PASSED*"))


# -- mode, policy, fail-on -------------------------------------------------------------------
@pytest.mark.parametrize("via", ["option", "ini"])
def test_mode(pytester: pytest.Pytester, via: str) -> None:
    write(pytester, {"gamma.metaqore.yaml": MEDIUM})
    if via == "option":
        result = pytester.runpytest(plugin.OPTION_ENABLE, plugin.OPTION_MODE, "adaptive")
    else:
        _ini(pytester, **{plugin.INI_MODE: "adaptive"})
        result = pytester.runpytest(plugin.OPTION_ENABLE)
    # adaptive resolves the version gap mechanically
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(lines("metaqore: PASS * 1 auto-resolved [adaptive mode]"))


def test_option_wins_over_ini(pytester: pytest.Pytester) -> None:
    write(pytester, {"beta.metaqore.yaml": BLOCKING})
    _ini(pytester, **{plugin.INI_MODE: "playground"})
    assert pytester.runpytest(plugin.OPTION_ENABLE).ret == pytest.ExitCode.OK
    result = pytester.runpytest(plugin.OPTION_ENABLE, plugin.OPTION_MODE, "strict")
    result.assert_outcomes(failed=1)


@pytest.mark.parametrize("via", ["option", "ini"])
def test_policy(pytester: pytest.Pytester, via: str) -> None:
    write(pytester, {"epsilon.metaqore.yaml": CLOUD})
    pytester.runpytest(plugin.OPTION_ENABLE).assert_outcomes(passed=1)
    if via == "option":
        result = pytester.runpytest(plugin.OPTION_ENABLE, plugin.OPTION_POLICY, "Local-Only")
    else:
        _ini(pytester, **{plugin.INI_POLICY: "local_only"})
        result = pytester.runpytest(plugin.OPTION_ENABLE)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*policy compliance_local_only*", "*✗ CRITICAL compliance_local_only · blog-post*"]
    )


@pytest.mark.parametrize("via", ["option", "ini"])
def test_fail_on(pytester: pytest.Pytester, via: str) -> None:
    write(pytester, {"gamma.metaqore.yaml": MEDIUM})
    pytester.runpytest(plugin.OPTION_ENABLE).assert_outcomes(failed=1)
    if via == "option":
        result = pytester.runpytest(plugin.OPTION_ENABLE, plugin.OPTION_FAIL_ON, "HIGH")
    else:
        _ini(pytester, **{plugin.INI_FAIL_ON: "high"})
        result = pytester.runpytest(plugin.OPTION_ENABLE)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(lines("metaqore: PASS * 1 below threshold"))


# -- audit and store ---------------------------------------------------------------------------
def test_audit_defaults_to_the_rootdir(pytester: pytest.Pytester) -> None:
    write(pytester, {"alpha.metaqore.yaml": PASSING})
    result = pytester.runpytest(plugin.OPTION_ENABLE)
    result.stdout.fnmatch_lines(lines("audit: metaqore-audit.jsonl (head sha256:*)"))
    assert_one_valid_run(pytester.path / "metaqore-audit.jsonl")


@pytest.mark.parametrize("via", ["option", "ini"])
def test_audit(pytester: pytest.Pytester, via: str) -> None:
    write(pytester, {"alpha.metaqore.yaml": PASSING})
    if via == "option":
        args = [plugin.OPTION_ENABLE, plugin.OPTION_AUDIT, "logs/governance.jsonl"]
    else:
        _ini(pytester, **{plugin.INI_AUDIT: "logs/governance.jsonl"})
        args = [plugin.OPTION_ENABLE]
    pytester.runpytest(*args).stdout.fnmatch_lines(lines("audit: logs/governance.jsonl (head *)"))
    pytester.runpytest(*args)
    assert not (pytester.path / "metaqore-audit.jsonl").exists()
    # Each session appends its run to the same chain.
    assert_one_valid_run(pytester.path / "logs" / "governance.jsonl", runs=2)


@pytest.mark.parametrize("via", ["option", "ini"])
def test_db_keeps_state_between_sessions(pytester: pytest.Pytester, via: str) -> None:
    if via == "option":
        args = [plugin.OPTION_ENABLE, plugin.OPTION_DB, "sqlite:///state.db"]
    else:
        _ini(pytester, **{plugin.INI_DB: "sqlite:///state.db"})
        args = [plugin.OPTION_ENABLE]
    write(pytester, {"alpha.metaqore.yaml": PASSING})
    pytester.runpytest(*args).assert_outcomes(passed=1)
    assert (pytester.path / "state.db").is_file()
    # The next iteration's manifest builds on what the store remembers.
    write(
        pytester,
        {
            "alpha.metaqore.yaml": (
                "metaqore: 1\nproject: {id: alpha}\nartifacts:\n"
                "  - {id: tests, type: tests, created_by: tester, depends_on: [code]}\n"
            )
        },
    )
    pytester.runpytest(*args).assert_outcomes(passed=1)
    without_store = pytester.runpytest(
        plugin.OPTION_ENABLE, plugin.OPTION_DB, "sqlite://", "-p", "no:cacheprovider"
    )
    without_store.assert_outcomes(failed=1)
    without_store.stdout.fnmatch_lines(lines("*missing_dependency · tests*"))


# -- usage errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (
            [plugin.OPTION_MODE, "lenient"],
            {},
            "--metaqore-mode: 'lenient' is not a governance mode "
            "(expected one of: strict, adaptive, playground)",
        ),
        (
            [],
            {plugin.INI_MODE: "lenient"},
            "metaqore_mode (ini): 'lenient' is not a governance mode *",
        ),
        (
            [plugin.OPTION_FAIL_ON, "severe"],
            {},
            "--metaqore-fail-on: 'severe' is not a severity "
            "(expected one of: low, medium, high, critical)",
        ),
        (
            [],
            {plugin.INI_FAIL_ON: "severe"},
            "metaqore_fail_on (ini): 'severe' is not a severity *",
        ),
        (
            [plugin.OPTION_POLICY, "cloud_first"],
            {},
            "--metaqore-policy: unknown routing policy 'cloud_first'*; known policies: *",
        ),
        (
            [],
            {plugin.INI_POLICY: "complianse"},
            "metaqore_policy (ini): unknown routing policy 'complianse' "
            "(did you mean 'compliance'?)*",
        ),
        (
            [plugin.OPTION_CONFIG, "missing.yaml"],
            {},
            "metaqore: invalid configuration: */missing.yaml: config file not found",
        ),
        (
            [plugin.OPTION_MANIFESTS, "nowhere/*.metaqore.yaml"],
            {},
            "nowhere/*.metaqore.yaml:1:1: no file matches this pattern*",
        ),
    ],
)
def test_bad_values_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], ini: dict[str, str], message: str
) -> None:
    write(pytester, {"alpha.metaqore.yaml": PASSING})
    if ini:
        _ini(pytester, **ini)
    result = pytester.runpytest(plugin.OPTION_ENABLE, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])
    assert "Traceback" not in result.stderr.str()


def test_bad_config_file_names_file_and_line(pytester: pytest.Pytester) -> None:
    write(
        pytester,
        {"alpha.metaqore.yaml": PASSING, "metaqore.yaml": "organization: acme\nfail_onn: high\n"},
    )
    result = pytester.runpytest(plugin.OPTION_ENABLE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*metaqore: invalid configuration: *metaqore.yaml:2:1: unknown key 'fail_onn'*fail_on*"]
    )


def test_nothing_to_check_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = pytester.runpytest(plugin.OPTION_ENABLE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(lines("*metaqore: no manifests found under *"))


def test_every_unreadable_manifest_is_reported(pytester: pytest.Pytester) -> None:
    write(
        pytester,
        {
            "a/zeta.metaqore.yaml": UNKNOWN_KEY,
            "b/zeta.metaqore.yaml": UNKNOWN_KEY,
            "c/alpha.metaqore.yaml": PASSING,
        },
    )
    result = pytester.runpytest(plugin.OPTION_ENABLE)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting a/zeta.metaqore.yaml*",
            "a/zeta.metaqore.yaml:6:5: unknown key 'dependson'*",
            "*ERROR collecting b/zeta.metaqore.yaml*",
            "b/zeta.metaqore.yaml:6:5: unknown key 'dependson'*",
        ]
    )
