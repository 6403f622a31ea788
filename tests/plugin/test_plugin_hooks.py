"""Extending the gate from pytest (rules, policies, the verdict), and the metaqore_gate fixture."""

from __future__ import annotations

import pytest
from plugin_support import BLOCKING, CLOUD, CROSS_FILE, PASSING, UNRELATED_PLUGINS, lines, write

from metaqore.plugins import routing_policies
from pytest_metaqore.plugin import OPTION_ENABLE, OPTION_POLICY

DRAFT_RULE = """
from metaqore.core.models import ConflictSeverity, ResolutionStrategy
from metaqore.core.rules import RuleHit


class NoDraftRule:
    conflict_type = "draft_left"
    severity = ConflictSeverity.HIGH
    strategy = ResolutionStrategy.ESCALATE

    def check(self, index):
        for record in index.judged():
            if record.id.startswith("draft-"):
                yield RuleHit(
                    self.conflict_type,
                    record,
                    f"{record.artifact_type} '{record.id}' (by {record.agent}) is still a draft",
                )


def pytest_metaqore_rules(config):
    return [NoDraftRule()]
"""

AIR_GAPPED_POLICY = """
from metaqore.core.security import RoutingPolicy


class AirGapped(RoutingPolicy):
    name = "air_gapped"
    aliases = ("airgap",)

    def get_allowed_providers(self, sensitivity):
        return ["ollama"]


def pytest_metaqore_policies(config):
    return [AirGapped]
"""

RECORD_VERDICT = """
def pytest_metaqore_verdict(config, verdict):
    with open("verdicts.txt", "a") as handle:
        handle.write(f"{verdict.verdict} {len(verdict.projects)} {verdict.run_id}\\n")
"""

DRAFT = """\
metaqore: 1
project: {id: omega}
artifacts:
  - {id: spec, type: design, created_by: architect}
  - {id: draft-notes, type: notes, created_by: writer, depends_on: [spec]}
"""


def test_a_conftest_rule_fails_the_item(pytester: pytest.Pytester, xdist_args: list[str]) -> None:
    pytester.makeconftest(DRAFT_RULE)
    write(pytester, {"omega.metaqore.yaml": DRAFT, "alpha.metaqore.yaml": PASSING})
    result = pytester.runpytest(OPTION_ENABLE, *UNRELATED_PLUGINS, *xdist_args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        lines(
            "project omega BLOCKED by 1 finding(s): draft_left on draft-notes",
            "*",
            "  ✗ HIGH draft_left · draft-notes · omega.metaqore.yaml:5",
            "      notes 'draft-notes' (by writer) is still a draft",
        )
    )
    result.stdout.fnmatch_lines(["  ✗ omega: 1 blocking (draft_left)"])


def test_a_conftest_rule_cannot_shadow_a_builtin(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(DRAFT_RULE.replace('"draft_left"', '"missing_dependency"'))
    write(pytester, {"alpha.metaqore.yaml": PASSING})
    result = pytester.runpytest(OPTION_ENABLE)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*two plugins register the conflict rule 'missing_dependency'*"])


def test_a_conftest_policy_can_be_chosen(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(AIR_GAPPED_POLICY)
    write(pytester, {"epsilon.metaqore.yaml": CLOUD})
    result = pytester.runpytest(OPTION_ENABLE, OPTION_POLICY, "AirGap")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["metaqore * policy air_gapped *", "  ✗ CRITICAL air_gapped · blog-post *"]
    )
    # Registered for the session only.
    assert "air_gapped" not in routing_policies()
    # Without the conftest the name is unknown, and the error lists the known ones.
    (pytester.path / "conftest.py").unlink()
    result = pytester.runpytest(OPTION_ENABLE, OPTION_POLICY, "airgap")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown routing policy 'airgap'*"])


def test_verdict_hook_is_called_once_by_the_process_that_judged(
    pytester: pytest.Pytester, xdist_args: list[str]
) -> None:
    pytester.makeconftest(RECORD_VERDICT)
    write(pytester, {"alpha.metaqore.yaml": PASSING, "beta.metaqore.yaml": BLOCKING})
    pytester.runpytest(OPTION_ENABLE, *UNRELATED_PLUGINS, *xdist_args)
    calls = (pytester.path / "verdicts.txt").read_text().splitlines()
    assert len(calls) == 1
    assert calls[0].startswith("blocked 2 run-")


# -- the metaqore_gate fixture -----------------------------------------------------------------
GOVERNANCE_TESTS = f"""
import json
from pathlib import Path

import pytest

from metaqore.core.models import ConflictSeverity, ResolutionStrategy
from metaqore.core.rules import RuleHit
from metaqore.exceptions import MetaQoreError

PASSING = {PASSING!r}
BLOCKING = {BLOCKING!r}


def manifest(project, *artifacts):
    return {{"metaqore": 1, "project": {{"id": project}}, "artifacts": list(artifacts)}}


def test_dict(metaqore_gate):
    verdict = metaqore_gate(manifest("p", {{"id": "a", "type": "plan", "created_by": "planner"}}))
    assert verdict.passed and verdict.exit_code == 0
    assert [project.project_id for project in verdict.projects] == ["p"]
    assert verdict.audit_path is None  # no audit unless asked for


def test_blocking_dict(metaqore_gate):
    verdict = metaqore_gate(
        manifest("p", {{"id": "a", "type": "code", "created_by": "coder", "depends_on": ["x"]}})
    )
    assert not verdict.passed and verdict.exit_code == 1
    [finding] = verdict.findings_for("p")
    assert (finding.rule, finding.artifact_id) == ("missing_dependency", "a")
    assert finding.blocking


def test_path(metaqore_gate, tmp_path):
    target = tmp_path / "beta.metaqore.yaml"
    target.write_text(BLOCKING)
    assert not metaqore_gate(target).project_passed("beta")
    assert not metaqore_gate(str(tmp_path)).passed  # a directory too


def test_a_project_over_several_manifests(metaqore_gate):
    spec = manifest("d", {{"id": "spec", "type": "design", "created_by": "architect"}})
    code = manifest(
        "d", {{"id": "code", "type": "code", "created_by": "coder", "depends_on": ["spec"]}}
    )
    assert metaqore_gate([spec, code]).passed
    assert not metaqore_gate(code).passed


@pytest.mark.parametrize(
    ("overrides", "passed"),
    [
        ({{}}, False),
        ({{"mode": "playground"}}, True),
        ({{"fail_on": "critical"}}, True),
        ({{"governance_mode": "strict", "fail_on": "high"}}, False),
    ],
)
def test_overrides(metaqore_gate, overrides, passed):
    assert metaqore_gate(BLOCKING_PATH, **overrides).passed is passed


def test_policy_override(metaqore_gate):
    cloud = manifest(
        "e",
        {{"id": "post", "type": "docs", "created_by": "writer",
          "task": {{"type": "writing", "provider": "openrouter"}}}},
    )
    assert metaqore_gate(cloud).passed
    verdict = metaqore_gate(cloud, policy="compliance")
    assert [f.rule for f in verdict.blocking] == ["compliance_local_only"]


DRAFT = manifest("o", {{"id": "draft-x", "type": "notes", "created_by": "writer"}})


def test_hook_rules_apply_to_the_fixture(metaqore_gate):
    assert [f.rule for f in metaqore_gate(DRAFT).blocking] == ["draft_left"]


class NoNotesRule:
    conflict_type = "no_notes"
    severity = ConflictSeverity.LOW
    strategy = ResolutionStrategy.ESCALATE

    def check(self, index):
        for record in index.judged():
            if record.artifact_type == "notes":
                yield RuleHit(self.conflict_type, record, "notes are not artifacts")


def test_rules_argument(metaqore_gate):
    verdict = metaqore_gate(DRAFT, rules=[NoNotesRule()])
    assert sorted(f.rule for f in verdict.blocking) == ["draft_left", "no_notes"]


def test_audit_on_request(metaqore_gate, tmp_path):
    from metaqore.core.audit import verify_audit_log

    log = tmp_path / "audit.jsonl"
    verdict = metaqore_gate(BLOCKING_PATH, audit_log=log)
    assert verify_audit_log(log).ok
    assert verdict.audit_head_hash == verify_audit_log(log).head_hash


def test_config_file(metaqore_gate, tmp_path):
    config = tmp_path / "governance.yaml"
    config.write_text("governance_mode: playground\\n")
    assert metaqore_gate(BLOCKING_PATH, config=config).passed


def test_bad_manifest_raises(metaqore_gate):
    with pytest.raises(MetaQoreError, match="unknown key 'typo'"):
        metaqore_gate(manifest("p", {{"id": "a", "type": "plan", "created_by": "x", "typo": 1}}))


BLOCKING_PATH = str(Path(__file__).parent / "fixtures" / "beta.metaqore.yaml")
"""


def test_metaqore_gate_fixture(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(DRAFT_RULE)
    write(pytester, {"fixtures/beta.metaqore.yaml": BLOCKING, **CROSS_FILE})
    pytester.makepyfile(test_governance=GOVERNANCE_TESTS)
    # Without --metaqore: the fixture needs no session, and no item is collected.
    result = pytester.runpytest("-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=14)
    assert not (pytester.path / "metaqore-audit.jsonl").exists()
