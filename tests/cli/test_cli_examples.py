"""The bundled examples, run exactly as examples/README.md tells a user to run them."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_support import (
    EXAMPLES,
    REPO,
    audit_records,
    check,
    copy_examples,
    metaqore,
)

README = EXAMPLES / "README.md"
# | example | what it shows | `command` | exit | blocking findings |
_ROW = re.compile(
    r"^\|[^|]*\|[^|]*\|\s*`(?P<command>metaqore check [^`]+)`\s*\|\s*(?P<exit>\d)\s*\|"
    r"(?P<findings>[^|]*)\|\s*$"
)
_PROMISE = re.compile(r"`(?P<rule>[^`]+)` on `(?P<artifact>[^`]+)`")


def readme_commands() -> list[tuple[list[str], int, set[tuple[str, str]]]]:
    """(argv after ``metaqore``, exit code, blocking (rule, artifact)) per README row."""
    rows = []
    for line in README.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            argv = shlex.split(match["command"])[1:]
            promised = {(m["rule"], m["artifact"]) for m in _PROMISE.finditer(match["findings"])}
            rows.append((argv, int(match["exit"]), promised))
    return rows


COMMANDS = readme_commands()

# What the terminal report must show a reader of each example, beyond the rule names.
EVIDENCE = {
    "examples/passing": ["✓ checkout-service (Checkout service) — pass (15 artifacts)"],
    "examples/conflicts/version_mismatch": [
        "declares version 3 but the next code version in project "
        "'example-version-mismatch' is 2 (skips ahead)",
    ],
    "examples/conflicts/parallel_creation": [
        "competing agents in iteration 1: planner ('plan-by-planner' v2), "
        "architect ('plan-by-architect' v1)",
    ],
    "examples/conflicts/missing_dependency": ["missing: 'api-spec', needed by 'order-service'"],
    "examples/conflicts/circular_dependency": [
        "cycle: test-plan → api-code → api-design → test-plan",
    ],
    "examples/vetoes/routing": [
        "Provider 'openrouter' disallowed for critical tasks",
        "sensitivity: critical, inherited from upstream artifact 'fraud-export'",
        "allowed providers: hmcp_gateway, ollama",
    ],
    "examples/vetoes/unknown_provider": ["provider: gpt-turbo-cloud (not a known provider)"],
    "examples/vetoes/graph_depth": [
        "Graph node 'test' is at depth 4, deeper than max_graph_depth 3",
    ],
    "examples/vetoes/branches": [
        "Graph node 'fan-out' has 6 children, more than max_parallel_branches 5",
    ],
    "examples/vetoes/conversation_turns": [
        "Conversation 'flaky-test' reached turn 11, past max_conversation_turns 10",
    ],
    "examples/vetoes/participants": [
        "Conversation 'design-review' has 7 participants, "
        "more than max_conversation_participants 6",
    ],
    "examples/vetoes/task_transition": [
        "task 't-tests': transition completed -> in_progress is not allowed "
        "(completed is terminal)",
    ],
    "examples/vetoes/signature": [
        "signature does not verify with key id 'demo-2026'",
        "needs a valid signature by its creator 'security-reviewer'; none found",
    ],
}

ALL_VARIANTS = sorted(
    path.relative_to(REPO).as_posix()
    for group in ("conflicts", "vetoes")
    for path in (EXAMPLES / group).iterdir()
    if path.is_dir()
)


def _example_dirs() -> set[str]:
    return {
        "examples/passing",
        "examples/waivers",
        *ALL_VARIANTS,
    }


def test_the_readme_table_covers_every_example() -> None:
    named = {argv[-1] for argv, _exit, _promised in COMMANDS}
    assert named >= _example_dirs()
    assert len(COMMANDS) >= len(_example_dirs())


@pytest.mark.parametrize(
    ("argv", "exit_code", "promised"),
    COMMANDS,
    ids=[" ".join(argv[2:]) for argv, _e, _p in COMMANDS],
)
def test_readme_command(
    workspace: Path, argv: list[str], exit_code: int, promised: set[tuple[str, str]]
) -> None:
    result = metaqore(*argv, "--json", "report.json", cwd=workspace)
    assert result.returncode == exit_code, result
    assert "Traceback" not in result.stderr
    report = result.report()
    blocking = {(f["rule"], f["artifact_id"]) for f in report["findings"] if f["blocking"]}
    assert blocking == promised, result
    assert report["verdict"] == ("pass" if exit_code == 0 else "blocked")
    for words in EVIDENCE.get(argv[-1], []):
        assert words in result.stdout, result
    by_rule = {(f["rule"], f["artifact_id"]): f for f in report["findings"]}
    for rule, artifact in promised:
        finding = by_rule[(rule, artifact)]
        where = f"{finding['location']['path']}:{finding['location']['line']}"
        assert where.startswith(argv[-1] + "/")
        head = f"✗ {finding['severity'].upper()} {rule} · {artifact} · {where}"
        assert head in result.stdout, result
    expected = "metaqore: PASS — " if exit_code == 0 else "metaqore: BLOCKED — "
    assert expected in result.stdout


def test_passing_example_in_detail(workspace: Path) -> None:
    result = check("examples/passing", cwd=workspace)
    assert result.returncode == 0, result
    report = result.report()
    assert report["summary"] == {
        "projects": 1,
        "artifacts": 15,
        "conflicts": 0,
        "vetoes": 0,
        "blocking": 0,
        "waived": 0,
        "auto_resolved": 0,
    }
    assert report["findings"] == []
    (project,) = report["projects"]
    assert project["project_id"] == "checkout-service"
    assert project["organization"] == "acme"
    assert sorted(project["paths"]) == [
        "examples/passing/iteration-1.metaqore.yaml",
        "examples/passing/iteration-2-tests.metaqore.json",
        "examples/passing/iteration-2.metaqore.yaml",
        "examples/passing/iteration-3-dependency-scan.metaqore.jsonl",
        "examples/passing/iteration-3.metaqore.yaml",
    ]
    assert (
        "metaqore: PASS — 1 project, 15 artifacts, 0 blocking, 0 waived, 0 auto-resolved"
        in result.stdout
    )

    # The audit says how each artifact was routed and how sensitive it turned out.
    records = audit_records(workspace / "metaqore-audit.jsonl")
    assert records[0]["event_type"] == "run_started"
    assert records[-1]["event_type"] == "run_finished"
    assert records[-1]["payload"]["verdict"] == "pass"
    declared = {
        r["payload"]["artifact_id"]: r["payload"]
        for r in records
        if r["event_type"] == "artifact_declared"
    }
    assert len(declared) == 15
    route = {aid: (p["sensitivity"], p["provider"]) for aid, p in declared.items()}
    assert route["checkout-plan"] == ("internal", "openrouter")
    assert route["threat-model"] == ("sensitive", "ollama")
    assert route["payment-client"] == ("sensitive", "ollama")  # inherited from threat-model
    assert route["unit-tests"] == ("sensitive", "ollama")
    assert route["pci-scope-review"] == ("critical", "hmcp_gateway")
    assert route["release-signoff"] == ("critical", "hmcp_gateway")
    versions = {aid: p["version"] for aid, p in declared.items()}
    assert (versions["checkout-plan"], versions["checkout-plan-v2"]) == (1, 2)
    assert [versions[a] for a in ("cart-api", "payment-client", "cart-api-v2")] == [1, 2, 3]
    assert {p["iteration"] for p in declared.values()} == {1, 2, 3}
    # Three iterations, five agents, three formats.
    assert {p["agent"] for p in declared.values()} == {
        "planner",
        "architect",
        "coder",
        "tester",
        "security-reviewer",
    }
    assert all("data" not in p for p in declared.values())
    events = Counter(r["event_type"] for r in records)
    assert events["veto"] == 0 and events["conflict_detected"] == 0
    assert events["routing_decision"] > 0

    verify = metaqore("audit", "verify", "metaqore-audit.jsonl", cwd=workspace)
    assert verify.returncode == 0, verify


def test_variants_run_together_do_not_mix(workspace: Path) -> None:
    """Each variant has its own project: judged together they find exactly the union."""
    result = check("examples/conflicts", "examples/vetoes", cwd=workspace)
    assert result.returncode == 1, result
    report = result.report()
    promised = {
        (argv[-1], rule, artifact)
        for argv, _exit, promises in COMMANDS
        if argv[-1] in ALL_VARIANTS and "--mode" not in argv
        for rule, artifact in promises
    }
    found = set()
    paths = {}
    for finding in report["findings"]:
        directory = finding["location"]["path"].rsplit("/", 1)[0]
        found.add((directory, finding["rule"], finding["artifact_id"]))
        paths.setdefault(finding["project_id"], set()).add(directory)
    assert found == promised
    # One project per directory, never shared.
    assert all(len(directories) == 1 for directories in paths.values())
    assert report["summary"]["projects"] == len(ALL_VARIANTS)


def test_every_variant_has_its_own_project_id() -> None:
    owners: dict[str, set[str]] = {}
    for manifest in sorted(EXAMPLES.rglob("*.metaqore.*")):
        text = manifest.read_text(encoding="utf-8")
        if manifest.suffix == ".jsonl":
            document = json.loads(text.splitlines()[0])
        elif manifest.suffix == ".json":
            document = json.loads(text)
        else:
            document = yaml.safe_load(text)
        owners.setdefault(document["project"]["id"], set()).add(
            manifest.parent.relative_to(EXAMPLES).as_posix()
        )
    assert all(len(directories) == 1 for directories in owners.values()), owners
    assert owners["checkout-service"] == {"passing"}


def test_demo_key_is_the_trusted_one_and_reproduces_the_committed_signatures(
    workspace: Path,
) -> None:
    config = yaml.safe_load((EXAMPLES / "metaqore.yaml").read_text(encoding="utf-8"))
    public = (EXAMPLES / "keys" / "demo-2026.pub").read_text(encoding="utf-8").strip()
    assert config["trusted_keys"] == {"demo-2026": public}
    assert config["require_signatures"] == ["critical"]
    assert "DEMO" in (EXAMPLES / "keys" / "README.md").read_text(encoding="utf-8")

    key = workspace / "demo-2026.key"
    shutil.copy(EXAMPLES / "keys" / "demo-2026.key", key)
    key.chmod(0o600)  # git checkouts leave it 0644, which `metaqore sign` refuses
    manifest = "examples/passing/iteration-2.metaqore.yaml"
    committed = _signature_of(
        yaml.safe_load(
            (EXAMPLES / "passing" / "iteration-2.metaqore.yaml").read_text(encoding="utf-8")
        ),
        "pci-scope-review",
    )
    result = metaqore(
        "sign", manifest, "--key", str(key), "--artifact", "pci-scope-review", cwd=workspace
    )
    assert result.returncode == 0, result
    # Ed25519 is deterministic: the committed signature is what the demo key makes.
    assert _signature_of(yaml.safe_load(result.stdout), "pci-scope-review") == committed


def _signature_of(document: dict[str, Any], artifact_id: str) -> str:
    (artifact,) = [a for a in document["artifacts"] if a["id"] == artifact_id]
    (entry,) = artifact["provenance"]
    assert entry["key_id"] == "demo-2026"
    signature: str = entry["signature"]
    return signature


def test_metaqore_check_at_the_repository_root_passes(tmp_path: Path) -> None:
    """`metaqore check` with no arguments at the root judges the passing example."""
    copy_examples(tmp_path)
    shutil.copy(REPO / "metaqore.yaml", tmp_path / "metaqore.yaml")
    result = check(cwd=tmp_path, config=None)
    assert result.returncode == 0, result
    assert result.report()["summary"]["artifacts"] == 15


def test_directory_argument_with_rooted_manifest_globs(workspace: Path) -> None:
    config = yaml.safe_load((EXAMPLES / "metaqore.yaml").read_text(encoding="utf-8"))
    config["manifests"] = [
        "examples/passing/**/*.metaqore.yaml",
        "examples/passing/**/*.metaqore.json",
        "examples/passing/**/*.metaqore.jsonl",
    ]
    (workspace / "metaqore.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    everything = check(cwd=workspace, config=None)
    assert everything.returncode == 0, everything  # the globs themselves are fine
    result = check("examples/passing", cwd=workspace, config=None)
    assert result.returncode == 0, result
    assert result.report()["summary"]["artifacts"] == 15
