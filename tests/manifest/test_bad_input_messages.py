"""Bad input as a CI log shows it: exit 2 and ``path:line:column: problem (expected ...)``.

Each case runs the real ``metaqore check`` in a subprocess and compares the lines a user
reads: values that break a length, pattern or range constraint, bad config values and
trusted keys, duplicate task and graph-node ids, and JSON Lines files over the size limit.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from metaqore.config import MetaQoreConfig
from metaqore.core.records import RunIndex
from metaqore.exceptions import ManifestErrors
from metaqore.manifest import discover_manifests, load_manifests
from metaqore.manifest import loader as loader_module

TIMEOUT = 60
PUBLIC_KEY = "ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
HEX = "0123456789abcdef" * 4
EXPECTED_HASH = "(expected sha256:<64 lowercase hex digits>)"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stderr.splitlines()


def check(cwd: Path, *args: str, **env: str) -> Run:
    """``metaqore check ARGS`` in ``cwd`` with no CI or METAQORE_ settings but ``env``."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("METAQORE_", "GITHUB_"))
    }
    completed = subprocess.run(
        [sys.executable, "-m", "metaqore", "check", *args],
        cwd=cwd,
        env={**clean, "PYTHONIOENCODING": "utf-8", **env},
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        check=False,
    )
    return Run(completed.returncode, completed.stdout, completed.stderr)


def judged(run: Run) -> list[str]:
    """The problem lines of a run that could not judge (exit 2, no traceback)."""
    assert run.returncode == 2, run
    assert "Traceback" not in run.stderr, run.stderr
    return run.lines


GOOD_ARTIFACT = "  - {id: plan, type: plan, created_by: planner}\n"


# -- item 1: every constraint error says what was expected ---------------------------------


def test_manifest_values_that_break_a_constraint_say_what_was_expected(tmp_path: Path) -> None:
    (tmp_path / "bad.metaqore.yaml").write_text(
        "metaqore: 1\n"
        "project: {id: shop}\n"
        "run: {iteration: -1}\n"
        "artifacts:\n"
        '  - id: ""\n'
        f"    type: {'t' * 600}\n"
        "    created_by: planner\n"
        "    version: 0\n"
        "    depends_on: [spec, spec]\n"
        '    content_hash: "abc"\n'
        "    task: [planning]\n"
        "    provenance:\n"
        '      - {actor: planner, action: created, signature: "rsa:abc"}\n'
        "  - id: code\n"
        "    type: code\n"
        "    created_by: coder\n"
        f'    content_hash: "sha256:{HEX}000"\n'
        "tasks:\n"
        "  - {id: t-1, title: Plan, status: done}\n"
        "events:\n"
        "  - {kind: graph_node, id: n1, depth: -1}\n"
        "  - {kind: message, conversation: c1, turn: -1, sender: planner}\n"
        "  - {kind: transition, entity: job, id: t-1, from: pending, to: completed}\n",
        encoding="utf-8",
    )
    assert judged(check(tmp_path, "bad.metaqore.yaml")) == [
        "bad.metaqore.yaml:3:7: run.iteration: -1 is too small (expected at least 0)",
        "bad.metaqore.yaml:5:5: artifacts[0].id: empty string (expected a non-empty string)",
        "bad.metaqore.yaml:6:5: artifacts[0].type: string of 600 characters is too long "
        "(expected at most 512 characters)",
        "bad.metaqore.yaml:8:5: artifacts[0].version: 0 is too small (expected at least 1)",
        "bad.metaqore.yaml:9:5: artifacts[0].depends_on: 'spec' is listed twice "
        "(expected each dependency once)",
        f"bad.metaqore.yaml:10:5: artifacts[0].content_hash: 'abc' does not match {EXPECTED_HASH}",
        "bad.metaqore.yaml:11:5: artifacts[0].task: got a list (expected a mapping)",
        "bad.metaqore.yaml:13:43: artifacts[0].provenance[0].signature: 'rsa:abc' does not "
        "match (expected ed25519:<base64>)",
        # A long value is cut, with its length.
        "bad.metaqore.yaml:17:5: artifacts[1].content_hash: "
        f"'sha256:{HEX[:30]}'... (74 characters) does not match {EXPECTED_HASH}",
        "bad.metaqore.yaml:19:28: tasks[0].status: got 'done' "
        "(expected 'pending', 'in_progress', 'completed', 'failed' or 'blocked')",
        "bad.metaqore.yaml:21:32: events[0].depth: -1 is too small (expected at least 0)",
        "bad.metaqore.yaml:22:39: events[1].turn: -1 is too small (expected at least 0)",
        "bad.metaqore.yaml:23:24: events[2].entity: got 'job' (expected 'task' or 'project')",
    ]


def test_json_lines_values_that_break_a_constraint_say_what_was_expected(
    tmp_path: Path,
) -> None:
    (tmp_path / "run.metaqore.jsonl").write_text(
        '{"metaqore": 1, "project": {"id": ""}}\n'
        '{"id": "", "type": "plan", "created_by": "planner", "version": 0}\n',
        encoding="utf-8",
    )
    assert judged(check(tmp_path, "run.metaqore.jsonl")) == [
        "run.metaqore.jsonl:1:29: project.id: empty string (expected a non-empty string)",
        "run.metaqore.jsonl:2:2: id: empty string (expected a non-empty string)",
        "run.metaqore.jsonl:2:53: version: 0 is too small (expected at least 1)",
    ]


def test_a_manifest_with_nothing_in_it_says_what_was_expected(tmp_path: Path) -> None:
    (tmp_path / "empty.metaqore.yaml").write_text(
        "metaqore: 1\nproject: {id: shop}\nartifacts: []\n", encoding="utf-8"
    )
    (tmp_path / "header.metaqore.jsonl").write_text(
        '{"metaqore": 1, "project": {"id": "shop"}}\n', encoding="utf-8"
    )
    assert judged(check(tmp_path, "empty.metaqore.yaml", "header.metaqore.jsonl")) == [
        "empty.metaqore.yaml:1:1: a manifest must hold at least one artifact, task or event "
        "(expected a non-empty artifacts, tasks or events list)",
        "header.metaqore.jsonl:1:1: a manifest must hold at least one artifact, task or event "
        "(expected artifact lines after the header, or tasks or events in it)",
    ]


def test_config_values_that_break_a_constraint_say_what_was_expected(tmp_path: Path) -> None:
    (tmp_path / "ok.metaqore.yaml").write_text(
        "metaqore: 1\nproject: {id: shop}\nartifacts:\n" + GOOD_ARTIFACT, encoding="utf-8"
    )
    (tmp_path / "metaqore.yaml").write_text(
        "waivers:\n"
        "  - rule: parallel_creation\n"
        '    project: ""\n'
        "    artifact: plan\n"
        '    content_hash: "abc"\n'
        "    reason: merged by hand\n"
        "    approved_by: alice\n"
        "    expires: tomorrow\n"
        "max_graph_depth: 0\n"
        "max_parallel_branches: 99\n"
        "store_timeout: 0\n"
        "log_format: xml\n"
        "fail_on: severe\n",
        encoding="utf-8",
    )
    found = judged(check(tmp_path, "--config", "metaqore.yaml", "ok.metaqore.yaml"))
    assert sorted(found) == [
        "metaqore.yaml:10:1: max_parallel_branches: 99 is too large (expected at most 20)",
        "metaqore.yaml:11:1: store_timeout: 0 is too small (expected more than 0)",
        "metaqore.yaml:12:1: log_format: 'xml' does not match (expected kv or json)",
        "metaqore.yaml:13:1: fail_on: got 'severe' "
        "(expected 'low', 'medium', 'high' or 'critical')",
        "metaqore.yaml:3:5: waivers[0].project: empty string (expected a non-empty string)",
        f"metaqore.yaml:5:5: waivers[0].content_hash: 'abc' does not match {EXPECTED_HASH}",
        "metaqore.yaml:8:5: waivers[0].expires: 'tomorrow' is not a date "
        "(expected a date such as 2026-12-31)",
        "metaqore.yaml:9:1: max_graph_depth: 0 is too small (expected at least 1)",
    ]


def test_an_invalid_trusted_key_is_located_in_the_config(tmp_path: Path) -> None:
    (tmp_path / "ok.metaqore.yaml").write_text(
        "metaqore: 1\nproject: {id: shop}\nartifacts:\n" + GOOD_ARTIFACT, encoding="utf-8"
    )
    (tmp_path / "metaqore.yaml").write_text(
        "organization: acme\n"
        "trusted_keys:\n"
        f'  planner-2026: "{PUBLIC_KEY}"\n'
        "  k: notakey\n"
        '  short: "ed25519:AAAA"\n',
        encoding="utf-8",
    )
    expected = "(expected ed25519:<base64 of 32 bytes>)"
    assert judged(check(tmp_path, "--config", "metaqore.yaml", "ok.metaqore.yaml")) == [
        f"metaqore.yaml:4:3: trusted_keys.k: not an Ed25519 public key {expected}",
        f"metaqore.yaml:5:3: trusted_keys.short: not an Ed25519 public key {expected}",
    ]
    # A key from the environment is not blamed on the file.
    (tmp_path / "metaqore.yaml").write_text("organization: acme\n", encoding="utf-8")
    run = check(tmp_path, "ok.metaqore.yaml", METAQORE_TRUSTED_KEYS='{"ci": "nope"}')
    assert judged(run) == [
        f"environment METAQORE_TRUSTED_KEYS: trusted_keys.ci: not an Ed25519 public key {expected}"
    ]


# -- item 2: duplicate task and graph-node ids ----------------------------------------------


def test_duplicate_task_and_graph_node_ids_are_bad_input(tmp_path: Path) -> None:
    (tmp_path / "a.metaqore.yaml").write_text(
        "metaqore: 1\n"
        "project: {id: shop}\n"
        "tasks:\n"
        "  - {id: t-1, title: Plan}\n"
        "  - {id: t-1, title: Plan again}\n"
        "events:\n"
        "  - {kind: graph_node, id: n1, agent: planner}\n"
        # A message may carry any id: only graph nodes are unique.
        "  - {kind: message, conversation: c1, turn: 1, sender: planner, id: n1}\n"
        "  - {kind: graph_node, id: n1, agent: coder}\n",
        encoding="utf-8",
    )
    (tmp_path / "b.metaqore.jsonl").write_text(
        '{"metaqore": 1, "project": {"id": "shop"}, "tasks": [{"id": "t-1", "title": "x"}, '
        '{"id": "t-2", "title": "y"}], "events": [{"kind": "graph_node", "id": "n1"}]}\n',
        encoding="utf-8",
    )
    (tmp_path / "c.metaqore.json").write_text(
        '{"metaqore": 1, "project": {"id": "shop"},\n "tasks": [{"id": "t-2", "title": "z"}]}\n',
        encoding="utf-8",
    )
    # Another project may use the same ids.
    (tmp_path / "d.metaqore.yaml").write_text(
        "metaqore: 1\nproject: {id: billing}\ntasks: [{id: t-1, title: Bill}]\n"
        "events: [{kind: graph_node, id: n1}]\n",
        encoding="utf-8",
    )
    assert judged(check(tmp_path, ".")) == [
        "a.metaqore.yaml:5:5: duplicate task id 't-1' in project 'shop' "
        "(first declared at a.metaqore.yaml:4)",
        "a.metaqore.yaml:9:5: duplicate graph node id 'n1' in project 'shop' "
        "(first declared at a.metaqore.yaml:7)",
        "b.metaqore.jsonl:1:54: duplicate task id 't-1' in project 'shop' "
        "(first declared at a.metaqore.yaml:4)",
        "b.metaqore.jsonl:1:124: duplicate graph node id 'n1' in project 'shop' "
        "(first declared at a.metaqore.yaml:7)",
        "c.metaqore.json:2:12: duplicate task id 't-2' in project 'shop' "
        "(first declared at b.metaqore.jsonl:1)",
    ]


def test_unique_task_and_node_ids_across_manifests_pass(tmp_path: Path) -> None:
    (tmp_path / "a.metaqore.yaml").write_text(
        "metaqore: 1\nproject: {id: shop}\ntasks: [{id: t-1, title: Plan}]\n"
        "events: [{kind: graph_node, id: n1}, {kind: transition, entity: task, id: t-1, "
        "from: pending, to: in_progress}]\n",
        encoding="utf-8",
    )
    (tmp_path / "b.metaqore.yaml").write_text(
        "metaqore: 1\nproject: {id: shop}\ntasks: [{id: t-2, title: Code}]\n"
        "events: [{kind: graph_node, id: n2, parent: n1}, {kind: transition, entity: task, "
        "id: t-1, from: in_progress, to: completed}]\n",
        encoding="utf-8",
    )
    run = check(tmp_path, ".")
    assert run.returncode == 0, run


# -- item 4: JSON Lines files are held to max_manifest_bytes ----------------------------------


def _jsonl_run(path: Path, artifacts: int) -> int:
    lines = ['{"metaqore": 1, "project": {"id": "shop"}}']
    lines += [
        f'{{"id": "a{number}", "type": "plan", "created_by": "planner"}}'
        for number in range(artifacts)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path.stat().st_size


def test_a_json_lines_file_over_the_size_limit_exits_2(tmp_path: Path) -> None:
    size = _jsonl_run(tmp_path / "big.metaqore.jsonl", 100)
    assert size > 4096
    (tmp_path / "metaqore.yaml").write_text("max_manifest_bytes: 4096\n", encoding="utf-8")
    expected = [
        f"big.metaqore.jsonl:1:1: manifest is {size} bytes, over the limit of 4096 bytes "
        "(expected a smaller manifest, or a higher max_manifest_bytes)"
    ]
    assert judged(check(tmp_path, "--config", "metaqore.yaml", "big.metaqore.jsonl")) == expected
    (tmp_path / "metaqore.yaml").unlink()
    run = check(tmp_path, "big.metaqore.jsonl", METAQORE_MAX_MANIFEST_BYTES="4096")
    assert judged(run) == expected
    # A limit the file fits passes.
    run = check(tmp_path, "big.metaqore.jsonl", METAQORE_MAX_MANIFEST_BYTES=str(size))
    assert run.returncode == 0, run


class _Unread:
    """An open file whose content must not be read: only its size may be looked at."""

    def __init__(self, path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> None:
        self._file = open(path, mode, *args, **kwargs)  # noqa: SIM115

    def fileno(self) -> int:
        return self._file.fileno()

    def read(self, *args: Any) -> bytes:
        pytest.fail("the manifest was read")

    def __enter__(self) -> _Unread:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()


def problems(root: Path, config: MetaQoreConfig) -> list[str]:
    try:
        files = discover_manifests([], config=config, root=root)
        load_manifests(files, config=config, index=RunIndex())
    except ManifestErrors as error:
        return [str(problem) for problem in error.errors]
    pytest.fail("loaded without a problem")


@pytest.mark.parametrize("suffix", ["yaml", "json", "jsonl"])
def test_a_file_over_the_size_limit_is_refused_unread(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = _jsonl_run(tmp_path / f"big.metaqore.{suffix}", 100)
    monkeypatch.setattr(loader_module, "open", _Unread, raising=False)
    assert problems(tmp_path, MetaQoreConfig(max_manifest_bytes=4096)) == [
        f"big.metaqore.{suffix}:1:1: manifest is {size} bytes, over the limit of 4096 bytes "
        "(expected a smaller manifest, or a higher max_manifest_bytes)"
    ]


@pytest.mark.parametrize("suffix", ["yaml", "jsonl"])
def test_a_file_that_grows_past_the_limit_while_read_is_refused(
    tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _jsonl_run(tmp_path / f"big.metaqore.{suffix}", 100)
    real_fstat = os.fstat

    def small_at_first(fd: int) -> os.stat_result:
        # The size seen before reading; the file is larger by the time it is read.
        fields = list(real_fstat(fd))
        fields[6] = 10  # st_size
        return os.stat_result(fields)

    monkeypatch.setattr(loader_module.os, "fstat", small_at_first)
    assert problems(tmp_path, MetaQoreConfig(max_manifest_bytes=4096)) == [
        f"big.metaqore.{suffix}:1:1: manifest is over the limit of 4096 bytes "
        "(expected a smaller manifest, or a higher max_manifest_bytes)"
    ]
