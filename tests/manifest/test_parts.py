"""A large JSON Lines manifest read in parts by forked workers gives what one process gives.

Each load runs in a fresh single-threaded interpreter (a pytest-xdist worker has
threads, and the loader forks only where no other thread runs), counts the workers it
really started, and prints every record field and problem as JSON for comparison.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from manifest_factory import HEADER, artifacts

from metaqore.manifest import parts

LOAD = r"""
import json, os, sys
from metaqore.config import MetaQoreConfig
from metaqore.core.records import RunIndex
from metaqore.exceptions import ManifestErrors
from metaqore.manifest import discover_manifests, load_manifests, parts

path, jobs, sabotage = sys.argv[1], int(sys.argv[2]), sys.argv[3]
forked = []
real_fork = parts.fork

def fork(work, start, end, keep):
    if sabotage == "raise":  # the worker fails with an exception
        def work():
            raise RuntimeError("worker broke")
    elif sabotage == "kill":  # the worker dies from a signal
        def work():
            os.kill(os.getpid(), 9)
    elif sabotage == "garble":  # the worker sends something that is not its result
        def work():
            return "not a part"
    elif sabotage == "fds":  # say which files the worker holds open
        def work(read=work):
            held = []
            for fd in os.listdir("/proc/self/fd"):
                try:
                    held.append(os.readlink(f"/proc/self/fd/{fd}"))
                except OSError:
                    pass
            with open(path + ".held", "w") as out:
                out.write("\n".join(held))
            return read()
    elif sabotage == "digest":  # the worker read other bytes than the gate hashed
        def work(read=work):
            return (*read()[:5], "0" * 64)
    elif sabotage == "hang":  # the worker never answers
        def work():
            import time
            time.sleep(3600)
    worker = real_fork(work, start, end, keep)
    forked.append(worker is not None)
    return worker

parts.fork = fork
if sabotage == "grow":  # the file grows after the parts were planned
    real_plan = parts.plan
    def plan(stream, size, count):
        starts = real_plan(stream, size, count)
        with open(path, "a") as grown:
            grown.write('{"id":"late","type":"t","created_by":"x"}\n')
        return starts
    parts.plan = plan
if sabotage == "swap":  # another file is renamed over the manifest once it is open
    real_plan = parts.plan
    def plan(stream, size, count):
        starts = real_plan(stream, size, count)
        with open(path + ".new", "w") as other:
            other.write(open(path).read().replace('"art-', '"new-'))
        os.replace(path + ".new", path)
        return starts
    parts.plan = plan
if sabotage == "hang":
    parts.COLLECT_MIN_TIMEOUT = 1.0
if sabotage == "error":  # the gate fails after its workers started
    from metaqore.manifest import loader
    def finish_parts(self, stream, hasher, size):
        raise OSError(5, "Input/output error")
    loader._JSONLines.finish_parts = finish_parts
lock = os.open(path + ".lock", os.O_CREAT | os.O_RDWR)  # as the audit file's lock would be
config = MetaQoreConfig()
index = RunIndex()
files = discover_manifests([path], config=config, root=os.path.dirname(path))
out = {"forked": forked}
try:
    result = load_manifests(
        files, config=config, index=index, keep_data_keys=True, keep_data=True, jobs=jobs
    )
except ManifestErrors as error:
    out["problems"] = [str(problem) for problem in error.errors]
    out["message"] = str(error)
else:
    manifest = result.manifests[0]
    out["sha256"], out["size"] = manifest.sha256, manifest.size
    out["count"] = manifest.artifact_count
    out["records"] = [
        [r.project, r.id, r.artifact_type, r.agent, r.content_hash, r.declared_version,
         r.iteration, list(r.depends_on), r.source, r.line, r.position, r.sensitivity,
         list(r.task) if r.task else None, [dict(p) for p in r.provenance],
         sorted(r.data_keys) if r.data_keys is not None else None, r.data_json]
        for r in index.run_records
    ]
    out["shared_tasks"] = len({id(r.task) for r in index.run_records if r.task})
try:
    os.waitpid(-1, os.WNOHANG)
    out["children_left"] = True
except ChildProcessError:
    out["children_left"] = False
out["fds"] = sorted(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else []
print(json.dumps(out))
"""


def load(path: Path, jobs: int, sabotage: str = "") -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", LOAD, str(path), str(jobs), sabotage],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def varied(count: int) -> list[dict[str, Any]]:
    """Artifacts using every field the loader records."""
    items = list(artifacts(count))
    for number, item in enumerate(items):
        if number % 7 == 0:
            item["task"] = {"type": "coding", "provider": "ollama", "sensitivity": "internal"}
        if number % 11 == 0:
            item["provenance"] = [{"actor": "a", "action": "made", "signature": "ed25519:x"}]
        if number % 13 == 0:
            item["version"] = 1 + number // 13
            item["iteration"] = 4
        if number % 5 == 0:
            item["data"] = {"nested": {"list": [1, 2.5, None, "é"]}, "n": number}
    return items


def write_manifest(path: Path, lines: list[str], *, blank_every: int = 0) -> Path:
    text = [json.dumps(HEADER)]
    for number, line in enumerate(lines):
        if blank_every and number % blank_every == 0:
            text.append("")  # blank lines: line numbers and positions part ways
        text.append(line)
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def clean_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parts")
    lines = [json.dumps(item) for item in varied(5000)]
    return write_manifest(root / "run.metaqore.jsonl", lines, blank_every=97)


@pytest.fixture(scope="module")
def alone(clean_file: Path) -> dict[str, Any]:
    return load(clean_file, 1)


@pytest.mark.parametrize("jobs", [2, 3])
def test_parts_give_the_records_one_process_gives(
    clean_file: Path, alone: dict[str, Any], jobs: int
) -> None:
    split = load(clean_file, jobs)
    assert alone["forked"] == []
    assert split["forked"] == [True] * (jobs - 1)
    assert split["records"] == alone["records"]
    assert (split["sha256"], split["size"], split["count"]) == (
        alone["sha256"],
        alone["size"],
        alone["count"],
    )
    assert alone["count"] == 5000
    # Task infos from the workers are the parent's objects, not copies.
    assert split["shared_tasks"] == alone["shared_tasks"] == 1


@pytest.mark.parametrize("sabotage", ["raise", "kill", "garble", "hang"])
def test_a_failed_worker_s_part_is_read_again_here(
    clean_file: Path, alone: dict[str, Any], sabotage: str
) -> None:
    split = load(clean_file, 2, sabotage)
    assert split["forked"] == [True]
    assert split["records"] == alone["records"]
    assert split["sha256"] == alone["sha256"]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_a_worker_holds_no_file_of_the_gate_but_its_pipe(
    clean_file: Path, alone: dict[str, Any]
) -> None:
    split = load(clean_file, 2, "fds")
    assert split["records"] == alone["records"]
    held = Path(str(clean_file) + ".held").read_text().splitlines()
    assert str(clean_file) + ".lock" not in held  # the gate's lock is not kept alive
    assert any(target.startswith("pipe:") for target in held)
    assert str(clean_file) in held  # the manifest the gate opened, read from there


def test_workers_read_the_file_the_gate_opened_not_the_path(
    clean_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "swapped.metaqore.jsonl"
    path.write_bytes(clean_file.read_bytes())
    alone = load(path, 1)
    path.write_bytes(clean_file.read_bytes())
    split = load(path, 2, "swap")  # renamed over the manifest after the parts were planned
    assert split["forked"] == [True]
    assert [record[1] for record in split["records"]] == [record[1] for record in alone["records"]]
    assert split["sha256"] == alone["sha256"]


def test_a_part_read_other_than_hashed_is_refused(clean_file: Path) -> None:
    split = load(clean_file, 2, "digest")
    assert split["problems"] == [
        f"{clean_file.name}:1:1: manifest changed while it was read "
        "(expected a manifest that stays the same during the run)"
    ]


def test_an_error_after_forking_leaves_no_worker_behind(clean_file: Path) -> None:
    for jobs in (1, 2, 3):
        result = load(clean_file, jobs, "error" if jobs > 1 else "")
        assert result["children_left"] is False
        assert len(result["fds"]) <= len(load(clean_file, 1)["fds"])
    assert (
        "cannot read manifest (Input/output error)" in load(clean_file, 2, "error")["problems"][0]
    )


def test_problems_in_every_part_are_reported_in_file_order(tmp_path: Path) -> None:
    lines = [json.dumps(item) for item in varied(3000)]
    lines[10] = '{"id":"bad-1","type":"t","created_by":"x","version":"2"}'
    lines[1500] = "{not json"
    lines[2990] = '{"id":"bad-2","type":"t","created_by":"x","depends_on":["a","a"]}'
    path = write_manifest(tmp_path / "bad.metaqore.jsonl", lines)
    alone, split = load(path, 1), load(path, 2)
    assert split["forked"] == [True]
    assert split["problems"] == alone["problems"]
    assert [problem.split(":")[1] for problem in alone["problems"]] == ["12", "1502", "2992"]
    assert "'a' is listed twice" in alone["problems"][2]


def test_an_id_declared_in_two_parts_is_a_duplicate(tmp_path: Path) -> None:
    lines = [json.dumps(item) for item in varied(3000)]
    lines[2990] = '{"id":"art-0000003","type":"t","created_by":"x"}'  # an id of part one
    path = write_manifest(tmp_path / "twice.metaqore.jsonl", lines)
    alone, split = load(path, 1), load(path, 2)
    assert split["forked"] == [True]
    assert split["problems"] == alone["problems"]
    assert len(alone["problems"]) == 1
    assert alone["problems"][0].startswith("twice.metaqore.jsonl:2992:")
    assert "duplicate artifact id 'art-0000003'" in alone["problems"][0]


def test_problems_past_the_limit_in_a_later_part_are_counted_as_one_process_would(
    tmp_path: Path,
) -> None:
    lines = [json.dumps(item) for item in varied(300)]
    for number in [*range(3, 23, 2), *range(198, 288)]:  # 10 in part one, 90 later
        lines[number] = "[1]"
    path = write_manifest(tmp_path / "spread.metaqore.jsonl", lines)
    alone = load(path, 1)
    assert alone["message"].endswith("checking stopped after 50 problems")
    for jobs in (2, 3):
        split = load(path, jobs)
        assert split["forked"] == [True] * (jobs - 1)
        assert (split["problems"], split["message"]) == (alone["problems"], alone["message"])


def test_many_problems_stop_at_the_same_limit(tmp_path: Path) -> None:
    lines = [f'{{"id":"x{n}","type":"t","created_by":"x","iteration":-1}}' for n in range(3000)]
    path = write_manifest(tmp_path / "worse.metaqore.jsonl", lines)
    alone, split = load(path, 1), load(path, 2)
    assert split["problems"] == alone["problems"]
    assert len(alone["problems"]) == 50
    assert split["message"].splitlines()[-1] == alone["message"].splitlines()[-1]


def test_a_file_that_grows_while_read_is_refused(clean_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "grows.metaqore.jsonl"
    path.write_bytes(clean_file.read_bytes())
    split = load(path, 2, "grow")
    assert split["forked"] == [True]
    assert split["problems"] == [
        f"{path.name}:1:1: manifest changed while it was read "
        "(expected a manifest that stays the same during the run)"
    ]


def test_a_file_of_one_artifact_is_not_cut(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "one.metaqore.jsonl", [json.dumps(varied(1)[0])])
    split = load(path, 2)
    assert split["count"] == 1
    assert split["records"] == load(path, 1)["records"]


def test_plan_cuts_just_after_a_newline() -> None:
    data = b"".join(b"%d\n" % (10**n) for n in range(12))  # lines of growing length
    starts = parts.plan(io.BytesIO(data), len(data), 3)
    assert len(starts) == 2
    assert starts == sorted(set(starts))
    for start in starts:
        assert data[start - 1 : start] == b"\n"
        assert 0 < start < len(data)
    # The first part is the larger one (it is read while the workers read theirs).
    assert starts[0] >= len(data) * parts.FIRST_SHARE / (parts.FIRST_SHARE + 2) - 13


def test_plan_cannot_cut_a_single_line() -> None:
    for data in (b"x" * 100, b"x" * 100 + b"\n", b"\n" + b"x" * 100):
        assert parts.plan(io.BytesIO(data), len(data), 2) in ([], [1])
    assert parts.plan(io.BytesIO(b"x" * 100), 100, 2) == []
    assert parts.plan(io.BytesIO(b"x" * 99 + b"\n"), 100, 2) == []


def test_lines_before_counts_newlines() -> None:
    data = b"a\nb\n\nc" * 1000
    assert parts.lines_before(io.BytesIO(data), 6) == 3
    assert parts.lines_before(io.BytesIO(data), len(data)) == 3000
