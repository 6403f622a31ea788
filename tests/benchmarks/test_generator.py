"""The benchmark generator: its expected findings are exactly what the real gate finds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from benchmarks.generate import FAULT_KINDS, generate
from metaqore.config import MetaQoreConfig
from metaqore.gate import GateOptions, run_gate

Key = tuple[str, str, str, str]


def _gate_findings(directory: Path, manifests: list[Path]) -> tuple[str, Counter[Key]]:
    verdict = run_gate(
        GateOptions(
            config=MetaQoreConfig(),
            paths=[str(path) for path in manifests],
            root=directory,
            audit=False,
        )
    )
    found = Counter((f.rule, f.kind, f.project_id, f.artifact_id) for f in verdict.findings)
    return verdict.verdict, found


@pytest.mark.parametrize(
    ("artifacts", "projects", "faults"),
    [
        (2_000, 1, 5),  # every fault embedded in or appended to one large project
        (3_000, 3, 8),  # faults spread over projects, interleaved in replay order
        (30, 2, 3),  # too small to embed: every fault on fresh artifacts
        (0, 1, 2),  # nothing but faults
    ],
)
def test_gate_finds_exactly_the_injected_faults(
    tmp_path: Path, artifacts: int, projects: int, faults: int
) -> None:
    run = generate(tmp_path, artifacts=artifacts, seed=11, faults=faults, projects=projects)
    verdict, found = _gate_findings(tmp_path, run.manifests)

    expected = Counter((f.rule, f.kind, f.project_id, f.artifact_id) for f in run.findings)
    assert len(run.findings) == faults * len(FAULT_KINDS)
    assert Counter(f.fault for f in run.findings) == dict.fromkeys(FAULT_KINDS, faults)
    assert verdict == "blocked"
    assert found == expected


def test_clean_run_passes_with_no_finding(tmp_path: Path) -> None:
    run = generate(tmp_path, artifacts=2_000, seed=5, projects=2)
    verdict, found = _gate_findings(tmp_path, run.manifests)
    assert run.findings == []
    assert run.artifacts == 2_000
    assert (verdict, found) == ("pass", Counter())


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    def files(directory: Path, seed: int) -> dict[str, bytes]:
        generate(directory, artifacts=1_500, seed=seed, faults=4, projects=2)
        return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}

    first = files(tmp_path / "first", 3)
    assert files(tmp_path / "second", 3) == first
    other = files(tmp_path / "other", 4)
    assert other.keys() == first.keys()
    assert other != first


def test_faults_leave_the_base_artifacts_untouched_elsewhere(tmp_path: Path) -> None:
    clean = generate(tmp_path / "clean", artifacts=1_000, seed=2)
    faulty = generate(tmp_path / "faulty", artifacts=1_000, seed=2, faults=3)
    clean_lines = clean.manifests[0].read_text("utf-8").splitlines()
    faulty_lines = faulty.manifests[0].read_text("utf-8").splitlines()
    changed = [
        number
        for number, (before, after) in enumerate(zip(clean_lines, faulty_lines, strict=False))
        if before != after
    ]
    embedded = {f.artifact_id for f in faulty.findings if f.artifact_id.startswith("a")}
    assert len(faulty_lines) > len(clean_lines)
    assert {f"a{number - 1:07d}" for number in changed} == embedded
