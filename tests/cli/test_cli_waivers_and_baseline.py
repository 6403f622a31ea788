"""Waivers (valid, expired, stale, unused) and baselines, end to end."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from cli_support import EXAMPLES, check, last_run

PROJECT = "example-waivers"
WAIVED = "api-plan-architect"
# The content hash of api-plan-architect's data in examples/waivers/plans.metaqore.yaml.
CURRENT_HASH = "sha256:ef272ca44ee02b08ede372eab50ddcecac6bc9699ddba219a5d3227e39f2ed1c"


def _today() -> date:
    return datetime.now(UTC).date()


def _waiver(**overrides: Any) -> dict[str, Any]:
    waiver: dict[str, Any] = {
        "rule": "parallel_creation",
        "project": PROJECT,
        "artifact": WAIVED,
        "reason": "merged by hand",
        "approved_by": "alice",
        "expires": (_today() + timedelta(days=30)).isoformat(),
    }
    waiver.update(overrides)
    return waiver


def _config(workspace: Path, waivers: list[dict[str, Any]]) -> str:
    (workspace / "waivers.yaml").write_text(
        yaml.safe_dump({"organization": "acme", "waivers": waivers}), encoding="utf-8"
    )
    return "waivers.yaml"


def test_committed_waivers_example(workspace: Path) -> None:
    result = check("examples/waivers", cwd=workspace, config="examples/waivers/metaqore.yaml")
    assert result.returncode == 0, result
    report = result.report()
    (finding,) = report["findings"]
    assert finding["status"] == "waived" and finding["blocking"] is False
    assert finding["waived_by"] == {
        "approved_by": "alice",
        "reason": "Both plans merged by hand in review #412",
        "expires": "2099-12-31",
    }
    assert report["summary"]["waived"] == 1 and report["summary"]["blocking"] == 0
    assert [w["approved_by"] for w in report["waivers"]["stale"]] == ["bob"]
    assert report["waivers"]["stale"][0]["current_content_hash"] == CURRENT_HASH
    assert [w["rule"] for w in report["waivers"]["expired"]] == ["max_conversation_turns"]
    assert [w["rule"] for w in report["waivers"]["unused"]] == ["missing_dependency"]
    text = result.stdout
    assert "[waived by alice until 2099-12-31: Both plans merged by hand in review #412]" in text
    for heading in (
        "unused (matched no finding):",
        "stale (the waived content changed):",
        "expired (no longer applied):",
    ):
        assert heading in text
    assert f"content is now {CURRENT_HASH}" in text
    assert "metaqore: PASS — 1 project, 2 artifacts, 0 blocking, 1 waived" in text

    records = last_run(workspace / "metaqore-audit.jsonl")
    (applied,) = [r for r in records if r["event_type"] == "waiver_applied"]
    assert applied["payload"]["fingerprint"] == finding["fingerprint"]
    assert applied["payload"]["approved_by"] == "alice"
    assert applied["payload"]["artifact_id"] == WAIVED


def test_valid_waiver_bound_to_the_current_content(workspace: Path) -> None:
    config = _config(workspace, [_waiver(content_hash=CURRENT_HASH)])
    result = check("examples/waivers", cwd=workspace, config=config)
    assert result.returncode == 0, result
    report = result.report()
    assert report["findings"][0]["status"] == "waived"
    assert report["waivers"] == {"unused": [], "stale": [], "expired": []}
    assert "waivers:" not in result.stdout


def test_expired_waiver_no_longer_applies(workspace: Path) -> None:
    yesterday = (_today() - timedelta(days=1)).isoformat()
    config = _config(workspace, [_waiver(expires=yesterday)])
    result = check("examples/waivers", cwd=workspace, config=config)
    assert result.returncode == 1, result
    report = result.report()
    (finding,) = report["findings"]
    assert finding["status"] == "blocking" and finding["waived_by"] is None
    (expired,) = report["waivers"]["expired"]
    assert expired["expires"] == yesterday and expired["artifact"] == WAIVED
    assert "expired (no longer applied):" in result.stdout
    assert f"parallel_creation on {PROJECT}/{WAIVED} (approved by alice, expires {yesterday})" in (
        result.stdout
    )
    events = [r["event_type"] for r in last_run(workspace / "metaqore-audit.jsonl")]
    assert "waiver_applied" not in events


def test_waiver_expiring_today_still_applies(workspace: Path) -> None:
    config = _config(workspace, [_waiver(expires=_today().isoformat())])
    result = check("examples/waivers", cwd=workspace, config=config)
    assert result.returncode == 0, result


def test_stale_waiver_blocks(workspace: Path) -> None:
    old = "sha256:" + "0" * 64
    config = _config(workspace, [_waiver(content_hash=old)])
    result = check("examples/waivers", cwd=workspace, config=config)
    assert result.returncode == 1, result
    report = result.report()
    assert report["findings"][0]["status"] == "blocking"
    (stale,) = report["waivers"]["stale"]
    assert stale["content_hash"] == old and stale["current_content_hash"] == CURRENT_HASH
    assert "stale (the waived content changed):" in result.stdout
    assert f"bound to {old}, content is now {CURRENT_HASH}" in result.stdout


def test_editing_the_waived_artifact_makes_its_waiver_stale(workspace: Path) -> None:
    config = _config(workspace, [_waiver(content_hash=CURRENT_HASH)])
    manifest = workspace / "examples/waivers/plans.metaqore.yaml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace("payments, refunds", "payments, returns"),
        encoding="utf-8",
    )
    result = check("examples/waivers", cwd=workspace, config=config)
    assert result.returncode == 1, result
    assert len(result.report()["waivers"]["stale"]) == 1


def test_unused_waiver_is_listed_and_does_not_block(workspace: Path) -> None:
    config = _config(
        workspace,
        [_waiver(), _waiver(rule="missing_dependency", artifact="api-plan", approved_by="dan")],
    )
    result = check("examples/waivers", cwd=workspace, config=config)
    assert result.returncode == 0, result
    (unused,) = result.report()["waivers"]["unused"]
    assert (unused["rule"], unused["artifact"], unused["approved_by"]) == (
        "missing_dependency",
        "api-plan",
        "dan",
    )
    assert "unused (matched no finding):" in result.stdout


def test_waiver_for_a_veto(workspace: Path) -> None:
    shutil.copy(EXAMPLES / "metaqore.yaml", workspace / "veto-waiver.yaml")
    config = yaml.safe_load((workspace / "veto-waiver.yaml").read_text(encoding="utf-8"))
    config["waivers"] = [
        _waiver(
            rule="default_local_first",
            project="example-veto-routing",
            artifact="marketing-summary",
            reason="aggregate numbers only",
        )
    ]
    (workspace / "veto-waiver.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    result = check("examples/vetoes/routing", cwd=workspace, config="veto-waiver.yaml")
    assert result.returncode == 0, result
    assert result.report()["findings"][0]["status"] == "waived"


def test_waiver_without_expiry_is_a_config_error(workspace: Path) -> None:
    waiver = _waiver()
    del waiver["expires"]
    config = _config(workspace, [waiver])
    result = check("examples/waivers", cwd=workspace, config=config)
    assert result.returncode == 2, result
    assert "waivers.yaml:" in result.stderr and "expires" in result.stderr
    assert "Traceback" not in result.stderr


# -- baseline ----------------------------------------------------------------------------


def test_baseline_suppresses_known_findings_and_a_new_one_still_blocks(workspace: Path) -> None:
    known = ("examples/conflicts/version_mismatch", "examples/conflicts/parallel_creation")
    first = check(*known, "--write-baseline", "b.json", cwd=workspace)
    assert first.returncode == 1, first  # writing a baseline accepts nothing by itself
    baseline = json.loads((workspace / "b.json").read_text(encoding="utf-8"))
    assert baseline["metaqore_baseline"] == 1
    fingerprints = {f["fingerprint"] for f in first.report()["findings"]}
    assert {f["fingerprint"] for f in baseline["findings"]} == fingerprints
    assert len(fingerprints) == 2

    again = check(*known, "--baseline", "b.json", cwd=workspace)
    assert again.returncode == 0, again
    report = again.report()
    assert report["baseline"] == {"path": "b.json", "suppressed": 2}
    assert report["findings"] == []
    assert report["counts"]["baselined"] == 2
    assert "baseline: b.json — 2 known findings not shown" in again.stdout
    assert "2 baselined" in again.stdout

    new = check(
        *known, "examples/conflicts/missing_dependency", "--baseline", "b.json", cwd=workspace
    )
    assert new.returncode == 1, new
    report = new.report()
    assert [(f["rule"], f["status"]) for f in report["findings"]] == [
        ("missing_dependency", "blocking")
    ]
    assert report["baseline"]["suppressed"] == 2


def test_baseline_fingerprints_ignore_file_and_line_but_not_content(workspace: Path) -> None:
    target = "examples/conflicts/missing_dependency"
    first = check(target, "--write-baseline", "b.json", cwd=workspace)
    assert first.returncode == 1
    manifest = workspace / target / "code.metaqore.yaml"
    moved = workspace / target / "moved.metaqore.yaml"
    moved.write_text(
        "# moved down two lines\n\n" + manifest.read_text(encoding="utf-8"), encoding="utf-8"
    )
    manifest.unlink()
    same = check(target, "--baseline", "b.json", cwd=workspace)
    assert same.returncode == 0, same

    moved.write_text(
        moved.read_text(encoding="utf-8").replace("orders/service.py", "o.py"), encoding="utf-8"
    )
    changed = check(target, "--baseline", "b.json", cwd=workspace)
    assert changed.returncode == 1, changed


def test_bad_baseline_file(workspace: Path) -> None:
    (workspace / "b.json").write_text('{"metaqore_baseline": 1, "findings": [\n', encoding="utf-8")
    result = check("examples/passing", "--baseline", "b.json", cwd=workspace)
    assert result.returncode == 2, result
    assert result.stderr.startswith("b.json:2:1: invalid JSON in baseline")
    assert "Traceback" not in result.stderr
