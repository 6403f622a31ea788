"""Bad input: one clear ``path:line:column`` problem each, never a traceback, hang or exploit.

Every file in ``hostile/`` is one case; ``hostile/EXPECTED.json`` maps it to the place and
the words a user must see. Cases too large (or too odd) to commit are generated below.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from metaqore.config import MetaQoreConfig
from metaqore.core.records import RunIndex
from metaqore.exceptions import ManifestError, ManifestErrors
from metaqore.manifest import discover_manifests, load_manifests

HOSTILE = Path(__file__).parent / "hostile"
EXPECTED: dict[str, dict[str, str]] = json.loads((HOSTILE / "EXPECTED.json").read_text())
TIME_LIMIT = 5  # seconds for any one bad input
HEADER = '{"metaqore": 1, "project": {"id": "shop"}}'
ARTIFACT = '{{"id": "a{number}", "type": "plan", "created_by": "planner"{extra}}}'


class TookTooLong(Exception):
    pass


@pytest.fixture(autouse=True)
def time_limit() -> Iterator[None]:
    """Fail a case that takes longer than TIME_LIMIT instead of hanging the suite."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TookTooLong(f"gave up after {TIME_LIMIT} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TIME_LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def problems(root: Path, *paths: str, config: MetaQoreConfig | None = None) -> list[str]:
    """Every problem discovering and loading ``paths`` raises, as the user reads them."""
    config = config or MetaQoreConfig()
    try:
        files = discover_manifests(list(paths), config=config, root=root)
        load_manifests(files, config=config, index=RunIndex())
    except ManifestErrors as error:
        return [str(problem) for problem in error.errors]
    except ManifestError as error:
        return [str(error)]
    pytest.fail(f"{paths} loaded without a problem")


def only_problem(root: Path, path: str, **options: Any) -> str:
    found = problems(root, path, **options)
    assert len(found) == 1, found
    return found[0]


def test_every_case_file_has_an_expectation() -> None:
    cases = {path.name for path in HOSTILE.iterdir() if path.name != "EXPECTED.json"}
    assert cases == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hostile_file(name: str) -> None:
    expected = EXPECTED[name]
    problem = only_problem(HOSTILE, name)
    assert problem.startswith(f"{name}:{expected['at']}: "), problem
    assert expected["contains"] in problem
    assert "Traceback" not in problem


def test_an_unsafe_tag_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    (tmp_path / "evil.metaqore.yaml").write_text(
        "metaqore: 1\nproject: {id: p}\nartifacts:\n  - id: a\n    type: t\n"
        f'    created_by: !!python/object/apply:os.system ["touch {marker}"]\n'
    )
    assert "unsafe or unknown YAML tag" in only_problem(tmp_path, "evil.metaqore.yaml")
    assert not marker.exists()


@pytest.mark.parametrize("suffix", ["yaml", "json"])
def test_a_file_over_the_size_limit_is_refused_before_reading(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / f"big.metaqore.{suffix}").write_text(" " * 5000)
    config = MetaQoreConfig(max_manifest_bytes=4096)
    # Refused on its size alone: reading it would fail this test.
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read"))
    problem = only_problem(tmp_path, f"big.metaqore.{suffix}", config=config)
    assert problem == (
        f"big.metaqore.{suffix}:1:1: manifest is 5000 bytes, over the limit of 4096 bytes "
        "(expected a smaller manifest, or a higher max_manifest_bytes)"
    )


def test_a_json_lines_file_over_the_size_limit_is_refused_whatever_its_lines(
    tmp_path: Path,
) -> None:
    # Short lines do not make a large file acceptable: the limit is on the file (SPEC §5).
    lines = [HEADER] + [ARTIFACT.format(number=number, extra="") for number in range(60)]
    (tmp_path / "long.metaqore.jsonl").write_text("\n".join(lines) + "\n")
    size = (tmp_path / "long.metaqore.jsonl").stat().st_size
    assert max(map(len, lines)) < 2048 < size
    config = MetaQoreConfig(max_manifest_bytes=2048)
    problem = only_problem(tmp_path, "long.metaqore.jsonl", config=config)
    assert problem == (
        f"long.metaqore.jsonl:1:1: manifest is {size} bytes, over the limit of 2048 bytes "
        "(expected a smaller manifest, or a higher max_manifest_bytes)"
    )
    # At the limit it loads.
    config = MetaQoreConfig(max_manifest_bytes=size)
    files = discover_manifests([], config=config, root=tmp_path)
    assert load_manifests(files, config=config, index=RunIndex()).artifact_count == 60


def test_an_endless_jsonl_line_is_refused_without_reading_it_all(tmp_path: Path) -> None:
    (tmp_path / "endless.metaqore.jsonl").write_text(HEADER + "\n" + "[" * 3_000_000)
    config = MetaQoreConfig(max_manifest_bytes=1_000_000)
    problem = only_problem(tmp_path, "endless.metaqore.jsonl", config=config)
    assert problem.startswith(
        "endless.metaqore.jsonl:1:1: manifest is 3000043 bytes, over the limit of 1000000 bytes"
    )


DEEP_YAML_ITEM = "  - {id: a, type: t, created_by: x, data: {k: "


def deep_yaml(levels: int) -> str:
    nested = "[" * levels + "]" * levels
    return f"metaqore: 1\nproject: {{id: p}}\nartifacts:\n{DEEP_YAML_ITEM}{nested}}}}}\n"


@pytest.mark.parametrize("levels", [70, 100_000])
def test_deep_nesting_in_yaml(tmp_path: Path, levels: int) -> None:
    (tmp_path / "deep.metaqore.yaml").write_text(deep_yaml(levels))
    # root(1) > artifacts(2) > artifact(3) > data(4) > 61 brackets = 65 levels.
    column = len(DEEP_YAML_ITEM) + 61
    problem = only_problem(tmp_path, "deep.metaqore.yaml")
    if levels > 1000:
        # libyaml looks ahead in flow collections and stops at its own limit first.
        assert problem.startswith("deep.metaqore.yaml:4:")
        assert "exceeded maximum nesting depth" in problem
        return
    assert problem == (
        f"deep.metaqore.yaml:4:{column}: nesting deeper than 64 levels (expected at most 64 levels)"
    )


def deep_json(levels: int) -> str:
    return (
        '{"metaqore": 1, "project": {"id": "p"}, "artifacts": [{"id": "a", "type": "t", '
        '"created_by": "x",\n "data": {"k": ' + "[" * levels + "]" * levels + "}}]}"
    )


@pytest.mark.parametrize("levels", [70, 2_000, 100_000])
def test_deep_nesting_in_json(tmp_path: Path, levels: int) -> None:
    (tmp_path / "deep.metaqore.json").write_text(deep_json(levels))
    problem = only_problem(tmp_path, "deep.metaqore.json")
    # Same place as in YAML: the 61st bracket inside data (level 65 of the manifest).
    column = len(' "data": {"k": ') + 61
    assert problem == (
        f"deep.metaqore.json:2:{column}: nesting deeper than 64 levels (expected at most 64 levels)"
    )


@pytest.mark.parametrize("levels", [70, 2_000, 100_000])
def test_deep_nesting_in_json_lines(tmp_path: Path, levels: int) -> None:
    line = ARTIFACT.format(number=1, extra=', "data": {"k": ' + "[" * levels + "]" * levels + "}")
    (tmp_path / "deep.metaqore.jsonl").write_text(HEADER + "\n" + line + "\n")
    problem = only_problem(tmp_path, "deep.metaqore.jsonl")
    column = line.index("[") + 61
    assert problem == (
        f"deep.metaqore.jsonl:2:{column}: nesting deeper than 64 levels "
        "(expected at most 64 levels)"
    )


def test_deep_nesting_in_a_json_lines_header(tmp_path: Path) -> None:
    header = (
        '{"metaqore": 1, "project": {"id": "p", "name": ' + "[" * 100_000 + "]" * 100_000 + "}}"
    )
    (tmp_path / "deep.metaqore.jsonl").write_text(header + "\n")
    assert "nesting deeper than 64 levels" in only_problem(tmp_path, "deep.metaqore.jsonl")


def test_a_json_lines_file_of_garbage_stops_early(tmp_path: Path) -> None:
    started = time.perf_counter()
    (tmp_path / "junk.metaqore.jsonl").write_text(HEADER + "\n" + "not json\n" * 200_000)
    found = problems(tmp_path, "junk.metaqore.jsonl")
    assert len(found) == 50
    assert found[0].startswith("junk.metaqore.jsonl:2:1: invalid JSON: Expecting value")
    assert time.perf_counter() - started < TIME_LIMIT


def test_binary_garbage_is_one_problem_per_file(tmp_path: Path) -> None:
    # A JSON Lines file whose first line is not JSON is not read any further.
    garbage = bytes(range(256)) * 64
    for suffix in ("yaml", "json", "jsonl"):
        (tmp_path / f"noise.metaqore.{suffix}").write_bytes(garbage)
    found = problems(tmp_path)
    assert [problem.split(":", 1)[0] for problem in found] == [
        "noise.metaqore.json",
        "noise.metaqore.jsonl",
        "noise.metaqore.yaml",
    ]
    assert found[0] == "noise.metaqore.json:2:118: invalid UTF-8 (expected UTF-8 text)"
    assert found[1].startswith("noise.metaqore.jsonl:1:1: invalid JSON")


ITEM = "metaqore: 1\nproject: {id: p}\nartifacts:\n  - {id: a, type: t, created_by: x, "


@pytest.mark.parametrize(
    "text",
    [
        "\x00",
        "metaqore: 1\x00",
        "? [a, b]\n: c\n",
        "metaqore: 1\nproject: {id: p}\nartifacts: &x [*x]\n",
        ITEM + "data: !!set {a}}\n",
        ITEM + "data: {n: 1.0e+999}}\n",
        ITEM + "data: {n: " + "9" * 5000 + "}}\n",
        ITEM + "version: 1.0}\n",
        ITEM + "version: true}\n",
        ITEM + "data: {when: 2026-11-24, ok: yes, octal: 0o17, hex: 0x1F, sexagesimal: 1:20}, "
        "content_hash: sha256:0}\n",
        "metaqore: 1\nproject: {id: p}\nevents: [{kind: transition, entity: task, id: t, "
        "from: x, to: y}]\n",
        "metaqore: true\nproject: {id: p}\n",
        "metaqore: 1\nproject: [p]\nartifacts: []\n",
        "%YAML 9.9\n---\nmetaqore: 1\n",
        "metaqore: 1\n\tproject: {}\n",
    ],
)
def test_odd_yaml_gets_exactly_one_located_problem(tmp_path: Path, text: str) -> None:
    (tmp_path / "odd.metaqore.yaml").write_text(text)
    found = problems(tmp_path, "odd.metaqore.yaml")
    assert found and all(problem.startswith("odd.metaqore.yaml:") for problem in found)
    for problem in found:
        line, column = problem.split(":")[1:3]
        assert line.isdigit() and column.isdigit()


@pytest.mark.parametrize(
    "text",
    [
        '{"metaqore": 1, "project": {"id": "p"}, "artifacts": [{"id": "a", "type": "t", '
        '"created_by": "x", "data": {"n": ' + "9" * 5000 + "}}]}",
        '{"metaqore": 1, "project": {"id": "p"}, "artifacts": [{"id": "\\ud800", "type": "t", '
        '"created_by": "x"}]}',
        '{"metaqore": 1, "project": {"id": "p"}, "artifacts": [{"id": 1, "type": "t", '
        '"created_by": "x", "iteration": -1}]}',
        "\ufeff",
        "[" * 100_000,
        '{"a": ' * 100_000,
        '"just a string"',
        "null",
    ],
)
def test_odd_json_gets_located_problems(tmp_path: Path, text: str) -> None:
    (tmp_path / "odd.metaqore.json").write_text(text)
    found = problems(tmp_path, "odd.metaqore.json")
    assert found and all(problem.startswith("odd.metaqore.json:") for problem in found)
