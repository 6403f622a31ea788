"""The verdict never depends on the order, or the form, in which manifests are named."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from cli_support import EXAMPLES, REPO, check, copy_examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Every example manifest: one passing project, every conflict and veto, the waivers.
FILES = sorted(path.relative_to(REPO).as_posix() for path in EXAMPLES.rglob("*.metaqore.*"))
_runs = itertools.count()


def _judge(workspace: Path, paths: list[str]) -> tuple[int, dict[str, Any], str]:
    """Exit code, the JSON report without what differs per run, and the terminal text."""
    name = f"report-{next(_runs)}.json"
    result = check(*paths, "--json", name, cwd=workspace)
    assert result.returncode in (0, 1), result
    report = result.report(name)
    for varying in ("run_id", "audit", "generated_at"):
        report.pop(varying)
    for blocking in report["blocking_reports"]:  # timestamps of the verdict too
        blocking.pop("generated_at")
        for conflict in blocking["conflicts"]:
            conflict.pop("created_at")
    text = "\n".join(line for line in result.stdout.splitlines() if not line.startswith("audit: "))
    return result.returncode, report, text


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    workspace = copy_examples(tmp_path_factory.mktemp("determinism"))
    return workspace, _judge(workspace, FILES)


def test_the_reference_run_has_something_to_compare(judged: tuple[Path, Any]) -> None:
    _workspace, (code, report, _text) = judged
    assert code == 1
    assert len(FILES) >= 20
    assert len(report["findings"]) == 14  # 13 variants + the waivers example, unwaived here
    assert len({f["fingerprint"] for f in report["findings"]}) == 14


@settings(
    max_examples=6,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(order=st.permutations(FILES))
def test_any_permutation_of_the_paths_gives_the_same_verdict(
    judged: tuple[Path, Any], order: list[str]
) -> None:
    workspace, reference = judged
    assert _judge(workspace, list(order)) == reference


@pytest.mark.parametrize(
    "paths",
    [
        pytest.param(["examples"], id="one directory"),
        pytest.param(
            ["examples/waivers", "examples/vetoes", "examples/passing", "examples/conflicts"],
            id="directories",
        ),
        pytest.param(["examples/**/*.metaqore.*"], id="glob"),
        pytest.param([*reversed(FILES), *FILES[:5], "examples/passing"], id="repeated"),
    ],
)
def test_directories_globs_and_files_name_the_same_run(
    judged: tuple[Path, Any], paths: list[str]
) -> None:
    workspace, reference = judged
    assert _judge(workspace, paths) == reference


@pytest.mark.parametrize("jobs", ["2", "3"])
def test_reading_manifests_in_parts_gives_the_same_verdict(
    judged: tuple[Path, Any], jobs: str
) -> None:
    # --jobs N cuts a JSON Lines manifest into N parts however small it is; this one has
    # findings in its first and last part.
    workspace, _ = judged
    lines = [json.dumps({"metaqore": 1, "project": {"id": "parts"}})]
    for number in range(600):
        artifact = {"id": f"a{number}", "type": "t", "created_by": "planner", "iteration": number}
        artifact["depends_on"] = [f"a{number - 1}"] if number else []
        if number in (5, 590):
            artifact["depends_on"] = [f"ghost-{number}"]
        lines.append(json.dumps(artifact))
    (workspace / "parts.metaqore.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    alone = _judge(workspace, ["parts.metaqore.jsonl", "--jobs", "1"])
    assert alone[0] == 1
    assert [f["artifact_id"] for f in alone[1]["findings"]] == ["a5", "a590"]
    assert _judge(workspace, ["parts.metaqore.jsonl", "--jobs", jobs]) == alone


@pytest.mark.parametrize("jobs", ["two", "-1", "65", ""])
def test_a_bad_number_of_jobs_is_a_usage_error(judged: tuple[Path, Any], jobs: str) -> None:
    workspace, _ = judged
    result = check("--jobs", jobs, cwd=workspace)
    assert result.returncode == 2, result
    assert f"argument -j/--jobs: '{jobs}' is not a number of processes from 0 to 64" in (
        result.stderr
    )
    assert not (workspace / "report.json").exists()
