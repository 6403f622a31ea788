"""The other subcommands: audit, schema, init, keygen + sign, checkpoint (with --db), version."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from cli_support import (
    EXAMPLES,
    audit_records,
    check,
    copy_fixture,
    findings_by,
    metaqore,
)

import metaqore as metaqore_package

# -- audit -------------------------------------------------------------------------------


def test_audit_verify_names_the_edited_line(workspace: Path) -> None:
    assert check("examples/passing", cwd=workspace).returncode == 0
    assert check("examples/vetoes/routing", cwd=workspace).returncode == 1
    log = workspace / "metaqore-audit.jsonl"
    records = audit_records(log)
    ok = metaqore("audit", "verify", "metaqore-audit.jsonl", cwd=workspace)
    assert ok.returncode == 0, ok
    assert ok.stdout == (
        f"metaqore-audit.jsonl: OK, {len(records)} records, head {records[-1]['hash']}\n"
    )

    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    veto_line = next(i for i, r in enumerate(records) if r["event_type"] == "veto")
    # Someone "softens" the veto: one edited line breaks the chain right there.
    lines[veto_line] = lines[veto_line].replace('"severity":"critical"', '"severity":"low"')
    log.write_text("".join(lines), encoding="utf-8")
    bad = metaqore("audit", "verify", "metaqore-audit.jsonl", cwd=workspace)
    assert bad.returncode == 1, bad
    assert bad.stdout.startswith(f"metaqore-audit.jsonl:{veto_line + 1}: ")

    # Removing a line is caught as well, at the line after the gap.
    del lines[veto_line]
    log.write_text("".join(lines), encoding="utf-8")
    removed = metaqore("audit", "verify", "metaqore-audit.jsonl", cwd=workspace)
    assert removed.returncode == 1
    assert removed.stdout.startswith(f"metaqore-audit.jsonl:{veto_line + 1}: ")

    missing = metaqore("audit", "verify", "nope.jsonl", cwd=workspace)
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr


def test_audit_report(workspace: Path) -> None:
    assert check("examples/passing", cwd=workspace).returncode == 0
    assert check("examples/vetoes", cwd=workspace).returncode == 1
    result = metaqore(
        "audit", "report", "metaqore-audit.jsonl", "--organization", "acme", cwd=workspace
    )
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    records = audit_records(workspace / "metaqore-audit.jsonl")
    assert lines[:3] == [
        "Compliance Report :: acme",
        "=========================",
        f"Total Events: {len(records)}",
    ]
    sections = _sections(lines[3:])
    assert list(sections) == ["Events by Type", "Events by Provider", "Policy Violations"]
    for entries in sections.values():
        counts = [(-int(n), key) for key, n in entries]
        assert counts == sorted(counts)  # by count, then key
    by_type = dict(sections["Events by Type"])
    assert by_type["run_started"] == "2" and by_type["veto"] == "9"
    assert dict(sections["Policy Violations"]) == {
        "default_local_first": "2",
        "provenance": "2",
        "max_conversation_participants": "1",
        "max_conversation_turns": "1",
        "max_graph_depth": "1",
        "max_parallel_branches": "1",
        "state_transition": "1",
    }
    as_json = metaqore(
        "audit", "report", "metaqore-audit.jsonl", "--organization", "acme", "--json", cwd=workspace
    )
    report = json.loads(as_json.stdout)
    assert report["organization"] == "acme" and report["total_events"] == len(records)
    assert report["policy_violations"]["provenance"] == 2

    # The organization defaults to the config's; an organization without events is empty.
    shutil.copy(EXAMPLES / "metaqore.yaml", workspace / "metaqore.yaml")
    default = metaqore("audit", "report", cwd=workspace)
    assert default.stdout.splitlines()[0] == "Compliance Report :: acme"
    other = metaqore(
        "audit", "report", "metaqore-audit.jsonl", "--organization", "globex", cwd=workspace
    )
    assert other.stdout.splitlines()[2:] == [
        "Total Events: 0",
        "",
        "Events by Type",
        "  (none)",
        "",
        "Events by Provider",
        "  (none)",
        "",
        "Policy Violations",
        "  (none)",
    ]


def _sections(lines: list[str]) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in lines:
        if not line:
            continue
        if not line.startswith("  "):
            current = sections.setdefault(line, [])
            continue
        assert current is not None
        match = re.fullmatch(r"  - (.+): (\d+)", line)
        assert match or line == "  (none)", line
        if match:
            current.append((match.group(1), match.group(2)))
    return sections


# -- schema ------------------------------------------------------------------------------


def test_schema_is_valid_and_every_example_manifest_validates(workspace: Path) -> None:
    result = metaqore("schema", cwd=workspace)
    assert result.returncode == 0, result
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    defs = schema["$defs"]
    header = jsonschema.Draft202012Validator({**defs["ManifestHeader"], "$defs": defs})
    artifact = jsonschema.Draft202012Validator({**defs["ManifestArtifact"], "$defs": defs})

    manifests = sorted(EXAMPLES.rglob("*.metaqore.*"))
    assert len(manifests) >= 20
    for manifest in manifests:
        text = manifest.read_text(encoding="utf-8")
        if manifest.suffix == ".jsonl":
            first, *rest = text.splitlines()
            header.validate(json.loads(first))
            for line in rest:
                artifact.validate(json.loads(line))
        else:
            loaded: Any = json.loads(text) if manifest.suffix == ".json" else yaml.safe_load(text)
            validator.validate(loaded)

    # The schema refuses what the gate refuses: a typo, a wrong type, no version.
    good = yaml.safe_load(
        (EXAMPLES / "conflicts/missing_dependency/code.metaqore.yaml").read_text(encoding="utf-8")
    )
    typo = json.loads(json.dumps(good))
    typo["artifacts"][0]["dependson"] = typo["artifacts"][0].pop("depends_on", [])
    wrong = json.loads(json.dumps(good))
    wrong["artifacts"][0]["version"] = "2"
    unversioned = {k: v for k, v in good.items() if k != "metaqore"}
    for bad in (typo, wrong, unversioned):
        assert not validator.is_valid(bad)

    written = metaqore("schema", "-o", "schema/manifest.json", cwd=workspace)
    assert written.returncode == 0
    assert json.loads((workspace / "schema/manifest.json").read_text(encoding="utf-8")) == schema


# -- init --------------------------------------------------------------------------------


def test_init_writes_a_starting_point_that_passes(tmp_path: Path) -> None:
    result = metaqore("init", "--organization", "acme", cwd=tmp_path)
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == [
        "wrote metaqore.yaml",
        "wrote example.metaqore.yaml",
        "next: metaqore check",
    ]
    config = (tmp_path / "metaqore.yaml").read_text(encoding="utf-8")
    assert config.startswith("# MetaQore configuration.")
    assert yaml.safe_load(config)["organization"] == "acme"

    again = metaqore("init", cwd=tmp_path)
    assert again.returncode == 2
    assert "already exist" in again.stderr and "--force" in again.stderr
    assert "Traceback" not in again.stderr

    (tmp_path / "metaqore.yaml").write_text("organization: edited\n", encoding="utf-8")
    forced = metaqore("init", "--force", cwd=tmp_path)
    assert forced.returncode == 0
    assert "governance_mode: strict" in (tmp_path / "metaqore.yaml").read_text(encoding="utf-8")

    gate = metaqore("check", "--json", "report.json", cwd=tmp_path)
    assert gate.returncode == 0, gate
    assert gate.report()["summary"]["artifacts"] == 3
    assert "✓ example (Example project) — pass (3 artifacts)" in gate.stdout

    elsewhere = metaqore("init", "starter", cwd=tmp_path)
    assert elsewhere.returncode == 0
    assert (tmp_path / "starter/metaqore.yaml").is_file()
    assert (tmp_path / "starter/example.metaqore.yaml").is_file()


# -- keygen + sign -----------------------------------------------------------------------

_CRITICAL_MANIFEST = """\
metaqore: 1
project: {id: signed-release}
artifacts:
  - id: release-approval
    type: security_review
    created_by: security-reviewer
    version: 1
    data: {release: "1.0", approved: false}
    task: {type: review, provider: ollama, is_security_task: true, has_sensitive_data: true}
"""


def test_keygen_sign_and_check_with_required_signatures(tmp_path: Path) -> None:
    keys = metaqore("keygen", "reviewer-2026", "--out", "keys", cwd=tmp_path)
    assert keys.returncode == 0, keys
    private = tmp_path / "keys/reviewer-2026.key"
    public = (tmp_path / "keys/reviewer-2026.pub").read_text(encoding="utf-8").strip()
    assert private.stat().st_mode & 0o777 == 0o600
    assert f'reviewer-2026: "{public}"' in keys.stdout
    assert "PRIVATE KEY" not in keys.stdout
    (tmp_path / "metaqore.yaml").write_text(
        f'require_signatures: [critical]\ntrusted_keys:\n  reviewer-2026: "{public}"\n',
        encoding="utf-8",
    )
    manifest = tmp_path / "release.metaqore.yaml"
    manifest.write_text(_CRITICAL_MANIFEST, encoding="utf-8")

    unsigned = metaqore("check", "--json", "report.json", cwd=tmp_path)
    assert unsigned.returncode == 1, unsigned
    (finding,) = unsigned.report()["findings"]
    assert finding["rule"] == "provenance" and finding["evidence"]["required"] is True

    signed = metaqore(
        "sign",
        "release.metaqore.yaml",
        "--key",
        "keys/reviewer-2026.key",
        "--in-place",
        cwd=tmp_path,
    )
    assert signed.returncode == 0, signed
    assert signed.stdout == (
        "signed 1 artifact(s) in release.metaqore.yaml with key reviewer-2026\n"
    )
    entry = yaml.safe_load(manifest.read_text(encoding="utf-8"))["artifacts"][0]["provenance"][0]
    assert entry["key_id"] == "reviewer-2026" and entry["actor"] == "security-reviewer"
    assert entry["signature"].startswith("ed25519:")
    passed = metaqore("check", "--json", "report.json", cwd=tmp_path)
    assert passed.returncode == 0, passed
    assert passed.report()["findings"] == []

    # Approving after the signature was made: the signature no longer covers the content.
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace("approved: false", "approved: true"),
        encoding="utf-8",
    )
    tampered = metaqore("check", "--json", "report.json", cwd=tmp_path)
    assert tampered.returncode == 1, tampered
    (veto,) = tampered.report()["findings"]
    assert (veto["kind"], veto["rule"], veto["artifact_id"]) == (
        "veto",
        "provenance",
        "release-approval",
    )
    assert "signature does not verify with key id 'reviewer-2026'" in veto["message"]
    line = manifest.read_text(encoding="utf-8").splitlines().index("- id: release-approval") + 1
    assert veto["location"] == {"path": "release.metaqore.yaml", "line": line}
    assert f"CRITICAL provenance · release-approval · release.metaqore.yaml:{line}" in (
        tampered.stdout
    )

    # An untrusted key is refused as well, even next to a good signature.
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace("approved: true", "approved: false"),
        encoding="utf-8",
    )
    other = metaqore("keygen", "stranger", "--out", "keys", cwd=tmp_path)
    assert other.returncode == 0
    metaqore(
        "sign",
        "release.metaqore.yaml",
        "--key",
        "keys/stranger.key",
        "--actor",
        "mallory",
        "--in-place",
        cwd=tmp_path,
    )
    stranger = metaqore("check", "--json", "report.json", cwd=tmp_path)
    assert stranger.returncode == 1, stranger
    (untrusted,) = stranger.report()["findings"]
    assert "(actor 'mallory') is signed with unknown key id 'stranger'" in untrusted["message"]

    refused = metaqore("keygen", "reviewer-2026", "--out", "keys", cwd=tmp_path)
    assert refused.returncode == 2 and "refusing to overwrite" in refused.stderr


def test_sign_refuses_a_key_others_can_read(workspace: Path) -> None:
    key = workspace / "demo.key"
    shutil.copy(EXAMPLES / "keys/demo-2026.key", key)
    key.chmod(0o644)
    result = metaqore(
        "sign", "examples/passing/iteration-2.metaqore.yaml", "--key", str(key), cwd=workspace
    )
    assert result.returncode == 2, result
    assert "chmod 600" in result.stderr and "Traceback" not in result.stderr
    assert "PRIVATE" not in result.stderr


# -- persistent store and checkpoints ------------------------------------------------------


def test_store_history_counts_for_versions_and_dependencies(workspace: Path) -> None:
    db = ["--db", "sqlite:///state.db"]
    later = (
        "examples/passing/iteration-3.metaqore.yaml",
        "examples/passing/iteration-3-dependency-scan.metaqore.jsonl",
    )
    # Iteration 3 alone, with no history, refers to artifacts nobody declared.
    alone = check(*later, cwd=workspace)
    assert alone.returncode == 1
    assert "missing_dependency" in {f["rule"] for f in alone.report()["findings"]}

    first = check(
        "examples/passing/iteration-1.metaqore.yaml",
        "examples/passing/iteration-2.metaqore.yaml",
        "examples/passing/iteration-2-tests.metaqore.json",
        *db,
        cwd=workspace,
    )
    assert first.returncode == 0, first
    second = check(*later, *db, cwd=workspace)
    assert second.returncode == 0, second
    assert second.report()["summary"]["artifacts"] == 6

    # Judging the same manifests again against the same store: the same verdict.
    again = check("examples/passing", *db, cwd=workspace)
    assert again.returncode == 0, again
    declared = [
        r["payload"]
        for r in audit_records(workspace / "metaqore-audit.jsonl")[-40:]
        if r["event_type"] == "artifact_declared"
    ]
    assert declared and all(p.get("idempotent") for p in declared[-15:])

    # Re-declaring a stored version with other content is a version mismatch.
    changed = workspace / "examples/passing/iteration-1.metaqore.yaml"
    changed.write_text(
        changed.read_text(encoding="utf-8").replace(
            "title: Checkout API, first cut", "title: Checkout API, rewritten"
        ),
        encoding="utf-8",
    )
    redeclared = check("examples/passing/iteration-1.metaqore.yaml", *db, cwd=workspace)
    assert redeclared.returncode == 1, redeclared
    finding = findings_by(redeclared.report())[
        ("checkout-service", "version_mismatch", "checkout-plan")
    ]
    assert "re-declares version 1 with different content" in finding["message"]


def test_checkpoints_after_a_passing_check(workspace: Path) -> None:
    dsn = "sqlite:///state.db"
    copy_fixture("neighbours", workspace)
    assert check("neighbours", "--db", dsn, cwd=workspace).returncode == 0
    # The passing run checkpointed each project it stored (label = its run id).
    run_id = json.loads((workspace / "report.json").read_text(encoding="utf-8"))["run_id"]
    taken = metaqore("checkpoint", "list", "--db", dsn, "--project", "nb-diamond", cwd=workspace)
    assert taken.returncode == 0, taken
    assert re.fullmatch(
        rf"chk_[0-9a-f]{{12}}  \S+  nb-diamond  {run_id}  \(4 artifacts, 0 tasks\)\n", taken.stdout
    )
    empty = metaqore("checkpoint", "list", "--db", dsn, "--project", "nope", cwd=workspace)
    assert empty.returncode == 0 and empty.stdout == "no checkpoints\n"

    created = metaqore(
        "checkpoint",
        "create",
        "--project",
        "nb-diamond",
        "--label",
        "release-1.0",
        "--db",
        dsn,
        cwd=workspace,
    )
    assert created.returncode == 0, created
    match = re.match(
        r"created (chk_[0-9a-f]{12})  \S+  nb-diamond  release-1.0  \(4 artifacts, ",
        created.stdout,
    )
    assert match, created.stdout
    checkpoint = match.group(1)

    listed = metaqore("checkpoint", "list", "--db", dsn, "--project", "nb-diamond", cwd=workspace)
    assert listed.stdout.count("\n") == 2 and checkpoint in listed.stdout.splitlines()[1]

    restored = metaqore("checkpoint", "restore", checkpoint, "--db", dsn, cwd=workspace)
    assert restored.returncode == 0, restored
    assert restored.stdout.startswith(
        f"restored project nb-diamond from {checkpoint} (4 artifacts)"
    )
    after = metaqore(
        "checkpoint", "list", "--db", dsn, "--project", "nb-diamond", cwd=workspace
    ).stdout.splitlines()
    assert len(after) == 3
    assert checkpoint in after[1] and "auto-backup-" in after[2]
    # The restored store still judges the same manifests the same way.
    assert check("neighbours", "--db", dsn, cwd=workspace).returncode == 0

    unknown = metaqore("checkpoint", "create", "--project", "nope", "--db", dsn, cwd=workspace)
    assert unknown.returncode == 2 and "'nope' is not in the store" in unknown.stderr
    memory = metaqore("checkpoint", "list", cwd=workspace)
    assert memory.returncode == 2 and "persistent store" in memory.stderr


def test_checkpoint_of_a_project_with_signed_artifacts(workspace: Path) -> None:
    dsn = "sqlite:///state.db"
    assert check("examples/passing", "--db", dsn, cwd=workspace).returncode == 0
    created = metaqore(
        "checkpoint", "create", "--project", "checkout-service", "--db", dsn, cwd=workspace
    )
    assert created.returncode == 0, created
    assert "checkout-service  manual  (15 artifacts" in created.stdout


# -- version -----------------------------------------------------------------------------


def test_version_and_python_dash_m(tmp_path: Path) -> None:
    result = metaqore("version", cwd=tmp_path)
    assert result.returncode == 0
    assert re.fullmatch(
        rf"metaqore {re.escape(metaqore_package.__version__)} \(Python \d+\.\d+\.\d+\)\n",
        result.stdout,
    )
    console = shutil.which("metaqore", path=str(Path(__import__("sys").executable).parent))
    if console is not None:  # the console script and `python -m` are the same command
        import subprocess

        scripted = subprocess.run(
            [console, "version"], capture_output=True, text=True, check=False, cwd=tmp_path
        )
        assert scripted.stdout == result.stdout
    helped = metaqore("--help", cwd=tmp_path)
    assert helped.returncode == 0
    for command in ("check", "audit", "schema", "init", "keygen", "sign", "checkpoint", "version"):
        assert command in helped.stdout
