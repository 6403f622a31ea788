"""``metaqore check --db`` on a SQLite file and on PostgreSQL: the same behaviour.

The commands run in this process through ``metaqore.cli.main`` (the console script's entry
point) to keep the suite fast; tests/store_e2e/test_race.py and test_store_failures.py run
real processes.

History counts for versions and dependencies, identical re-runs write nothing, blocked and
playground runs write nothing, every passing run that changes a project checkpoints it
(label = run id, with retention), and ``metaqore checkpoint list|create|restore`` work, a
restore changing what the next gate run judges against.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from store_support import art, check, metaqore, store_state, stored_versions, write_manifest

from metaqore.storage import schema
from metaqore.storage.backends.sqlite import SQLiteBackend

REPO = Path(__file__).resolve().parents[2]


def first_run(work: Path, db: str) -> str:
    """requirements v1 and plan v1 in iteration 1; returns the run id."""
    manifest = write_manifest(
        work,
        "iteration-1",
        [
            art("requirements", "requirements", "planner"),
            art("plan-1", "plan", "planner", depends_on=["requirements"]),
        ],
        iteration=1,
    )
    result = check(manifest, db=db, cwd=work)
    assert result.returncode == 0, result
    run_id: str = result.report()["run_id"]
    return run_id


def test_history_counts_for_versions_and_dependencies(work: Path, db: str) -> None:
    first_run(work, db)
    # Iteration 2 alone: its plan is version 2 because version 1 is in the store, and its
    # code depends on artifacts that only the store knows.
    later = write_manifest(
        work,
        "iteration-2",
        [
            art("plan-2", "plan", "planner", depends_on=["plan-1"]),
            art("code", "code", "coder", depends_on=["plan-2", "requirements"]),
        ],
        iteration=2,
    )
    second = check(later, db=db, cwd=work)
    assert second.returncode == 0, second
    assert stored_versions(db)["plan"] == [("plan-1", 1), ("plan-2", 2)]

    # Another version 2 of the plan type now conflicts with the stored one.
    rival = write_manifest(
        work, "rival", [art("plan-x", "plan", "planner", version=2)], iteration=3
    )
    before = store_state(db)
    blocked = check(rival, db=db, cwd=work)
    assert blocked.returncode == 1, blocked
    [finding] = blocked.report()["findings"]
    assert (finding["rule"], finding["artifact_id"]) == ("version_mismatch", "plan-x")
    assert store_state(db) == before  # a blocked run writes nothing

    # A dependency on something the store does not hold is still missing.
    dangling = write_manifest(
        work, "dangling", [art("doc", "doc", "writer", depends_on=["nowhere"])], iteration=3
    )
    assert check(dangling, db=db, cwd=work).rules == {"missing_dependency"}


def test_identical_rerun_passes_and_writes_nothing(work: Path, db: str) -> None:
    first_run(work, db)
    before = store_state(db)
    again = check("iteration-1.metaqore.json", db=db, cwd=work)
    assert again.returncode == 0, again
    assert again.report()["findings"] == []
    assert store_state(db) == before
    declared = [
        json.loads(line)["payload"]
        for line in (work / "metaqore-audit.jsonl").read_text(encoding="utf-8").splitlines()
        if '"artifact_declared"' in line
    ]
    assert [p["artifact_id"] for p in declared[-2:]] == ["requirements", "plan-1"]
    assert all(p.get("idempotent") for p in declared[-2:])


def test_playground_runs_never_write(work: Path, db: str) -> None:
    first_run(work, db)
    before = store_state(db)
    new = write_manifest(work, "new", [art("plan-2", "plan", "planner")], iteration=2)
    clash = write_manifest(
        work, "clash", [art("plan-9", "plan", "planner", version=9)], iteration=2
    )
    for paths in ([new], [new, clash]):
        played = metaqore(
            "check", *paths, "--db", db, "--mode", "playground", "--json", "report.json", cwd=work
        )
        assert played.returncode == 0, played
    assert store_state(db) == before
    # The same passing manifest in strict mode does write.
    assert check(new, db=db, cwd=work).returncode == 0
    assert stored_versions(db)["plan"] == [("plan-1", 1), ("plan-2", 2)]


def checkpoint_lines(db: str, work: Path, *extra: str) -> list[str]:
    listed = metaqore("checkpoint", "list", "--db", db, *extra, cwd=work)
    assert listed.returncode == 0, listed
    return listed.stdout.splitlines()


def test_each_passing_run_checkpoints_the_projects_it_changed(work: Path, db: str) -> None:
    (work / "metaqore.yaml").write_text("checkpoint_retention: 2\n", encoding="utf-8")
    run_ids = [first_run(work, db)]
    assert checkpoint_lines(db, work)[0].split()[3] == run_ids[0]
    for number in range(2, 5):
        manifest = write_manifest(
            work,
            f"iteration-{number}",
            [art(f"plan-{number}", "plan", "planner")],
            iteration=number,
        )
        result = check(manifest, db=db, cwd=work)
        assert result.returncode == 0, result
        run_ids.append(result.report()["run_id"])
    # Retention 2: the checkpoints of the last two runs, labelled with their run ids.
    lines = checkpoint_lines(db, work)
    assert [line.split()[3] for line in lines] == run_ids[-2:]
    assert lines[-1].endswith("(5 artifacts, 0 tasks)")

    # A run over two projects checkpoints each project it changed, and only those.
    other = write_manifest(work, "other", [art("o-1", "plan", "x")], project="other")
    unchanged = "iteration-4.metaqore.json"
    both = check(other, unchanged, db=db, cwd=work)
    assert both.returncode == 0, both
    assert [line.split()[3] for line in checkpoint_lines(db, work, "--project", "other")] == [
        both.report()["run_id"]
    ]
    assert [line.split()[3] for line in checkpoint_lines(db, work, "--project", "shop")] == (
        run_ids[-2:]
    )

    backend = SQLiteBackend(db)
    try:
        runs = backend.list_runs("shop")
        assert [(r.run_id, r.verdict, r.mode, r.artifacts) for r in runs] == [
            (run_ids[0], "pass", "strict", 2),
            *((run_id, "pass", "strict", 1) for run_id in run_ids[1:]),
        ]
        # A run keeps its record when retention drops its checkpoint.
        kept = {i.id for i in backend.list_checkpoint_info("shop")}
        assert [r.checkpoint_id in kept for r in runs] == [False, False, True, True]
    finally:
        backend.close()


def test_checkpoint_commands_and_a_restore_the_gate_sees(work: Path, db: str) -> None:
    first_run(work, db)
    second = check(
        write_manifest(work, "iteration-2", [art("plan-2", "plan", "planner")], iteration=2),
        db=db,
        cwd=work,
    )
    assert second.returncode == 0, second
    rival = write_manifest(work, "rival", [art("plan-b", "plan", "reviewer", version=2)])
    assert check(rival, db=db, cwd=work).rules == {"version_mismatch"}

    created = metaqore(
        "checkpoint", "create", "--project", "shop", "--label", "manual", "--db", db, cwd=work
    )
    assert created.returncode == 0, created
    assert re.fullmatch(
        r"created chk_[0-9a-f]{12}  \S+  shop  manual  \(3 artifacts, 0 tasks\)\n", created.stdout
    )
    first_checkpoint = checkpoint_lines(db, work)[0].split()[0]

    restored = metaqore("checkpoint", "restore", first_checkpoint, "--db", db, cwd=work)
    assert restored.returncode == 0, restored
    assert restored.stdout.startswith(
        f"restored project shop from {first_checkpoint} (2 artifacts)"
    )
    lines = checkpoint_lines(db, work)
    assert len(lines) == 4 and "auto-backup-" in lines[-1]
    assert lines[-1].endswith("(3 artifacts, 0 tasks)")  # the state before the restore
    assert stored_versions(db)["plan"] == [("plan-1", 1)]

    # The next gate run judges against the restored history: version 2 is free again.
    after = check(rival, db=db, cwd=work)
    assert after.returncode == 0, after
    assert stored_versions(db)["plan"] == [("plan-1", 1), ("plan-b", 2)]

    missing = metaqore("checkpoint", "restore", "chk_000000000000", "--db", db, cwd=work)
    assert missing.returncode == 2 and "not found" in missing.stderr


def test_signed_artifacts_are_stored_whole_and_checkpointed(work: Path, db: str) -> None:
    shutil.copytree(REPO / "examples", work / "examples")
    passed = metaqore(
        "check", "--config", "examples/metaqore.yaml", "examples/passing", "--db", db, cwd=work
    )
    assert passed.returncode == 0, passed
    created = metaqore(
        "checkpoint",
        "create",
        "--project",
        "checkout-service",
        "--label",
        "x",
        "--db",
        db,
        cwd=work,
    )
    assert created.returncode == 0, created
    assert "checkout-service  x  (15 artifacts, 0 tasks)" in created.stdout
    backend = SQLiteBackend(db)
    try:
        signed = [
            a
            for a in backend.list_artifacts("checkout-service")
            if any(entry.signature for entry in a.provenance)
        ]
    finally:
        backend.close()
    assert signed and all(e.artifact_id == a.id for a in signed for e in a.provenance)


def test_a_newer_store_is_refused_with_exit_2(work: Path, db: str) -> None:
    first_run(work, db)
    backend = SQLiteBackend(db)
    with backend.engine.begin() as connection:
        schema.write_schema_version(connection, schema.SCHEMA_VERSION + 1)
    backend.close()
    expected = (
        f"store schema version {schema.SCHEMA_VERSION + 1} is newer than this MetaQore "
        f"supports ({schema.SCHEMA_VERSION}); upgrade metaqore"
    )
    for result in (
        check("iteration-1.metaqore.json", db=db, cwd=work, process=True),
        metaqore("checkpoint", "list", "--db", db, cwd=work, process=True),
    ):
        assert result.returncode == 2, result
        assert expected in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_a_lax_earlier_run_does_not_launder_findings(work: Path, db: str) -> None:
    """Manifests get the same verdict whether a laxer run (a higher --fail-on) stored
    them before or not: re-declarations are judged again, not taken as settled."""
    manifest = write_manifest(
        work,
        "parallel",
        [art("plan-a", "plan", "planner"), art("plan-b", "plan", "architect")],
        iteration=1,
    )
    lax = check(manifest, "--fail-on", "critical", db=db, cwd=work)
    assert lax.returncode == 0, lax
    assert stored_versions(db)["plan"] == [("plan-a", 1), ("plan-b", 2)]
    before = store_state(db)
    strict = check(manifest, db=db, cwd=work)
    assert strict.returncode == 1, strict
    [finding] = strict.report()["findings"]
    assert (finding["rule"], finding["artifact_id"]) == ("parallel_creation", "plan-b")
    assert store_state(db) == before
    # Re-run as the lax run was: the same verdict as then.
    again = check(manifest, "--fail-on", "critical", db=db, cwd=work)
    assert again.returncode == 0, again
    assert [f["rule"] for f in again.report()["findings"]] == ["parallel_creation"]
    assert store_state(db) == before



def test_a_stored_version_is_never_rewritten(work: Path, db: str) -> None:
    """A same-version change that passes anyway (below --fail-on here; a waiver alike)
    is reported, and the stored content stays what the first run stored."""
    first_run(work, db)
    before = store_state(db)
    changed = write_manifest(
        work,
        "changed",
        [art("plan-1", "plan", "planner", version=1, data={"rewritten": True})],
        iteration=1,
    )
    result = check(changed, "--fail-on", "high", db=db, cwd=work)
    assert result.returncode == 0, result
    [finding] = result.report()["findings"]
    assert (finding["rule"], finding["status"]) == ("version_mismatch", "warning")
    assert store_state(db)["artifacts"] == before["artifacts"]
