"""Fuzzing the gate: whatever the manifests, the exit code tells the truth.

For every generated input -- valid runs, near-valid ones (one mutated key, type, value or
structure) and broken files (encodings, truncation, noise, odd YAML, sizes) -- the real
``metaqore check`` must exit 0, 1 or 2, never show a traceback, finish in bounded time and
memory, and explain an exit 2 with ``path:line:column`` lines. For valid runs the verdict
and every finding must match :func:`manifest_model.oracle`, computed from the SPEC without
MetaQore's code; a mutation that is certainly invalid must exit 2, never 0.

A failing input is saved under ``corpus/`` (the directory a test run prints), and every
corpus entry is replayed by :func:`test_corpus_entry`.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from manifest_model import (
    ManifestModel,
    NotRoundTrippable,
    RunModel,
    content_hash,
    jsonl_lines,
    oracle,
    render,
    reported,
    run_models,
)
from reliability_support import (
    CORPUS,
    assert_gate_contract,
    record_figures,
    run_in_process,
    run_subprocess,
)

CI_EXAMPLES = {"valid": 300, "near_valid": 500, "broken": 300, "subprocess": 20}
SLOW_EXAMPLES = {"valid": 3000, "near_valid": 5000, "broken": 4000, "subprocess": 300}


def fuzz_settings(examples: int, *, slow: bool) -> Any:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=not slow,  # CI: the same sample every run; slow: new inputs each time
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


# -- one fuzz case ----------------------------------------------------------------------------


@dataclass
class Case:
    """Files to judge together, the options, and what must (at least) happen."""

    files: dict[str, bytes]
    options: list[str] = field(default_factory=list)
    config: bytes | None = None
    must_fail: bool = False  # certainly invalid: exit 2 is the only right answer
    why: str = ""

    def args(self) -> list[str]:
        args = ["check", *sorted(self.files), *self.options, "--json", "report.json"]
        if self.config is not None:
            args += ["--config", "fuzz-config.yaml"]
        return [*args, "--no-color", "--no-github"]

    def write(self, directory: Path) -> None:
        for name, data in self.files.items():
            (directory / name).write_bytes(data)
        if self.config is not None:
            (directory / "fuzz-config.yaml").write_bytes(self.config)

    def save(self, corpus: Path) -> Path:
        """The case as a corpus entry: its files and ``case.json``."""
        digest = hashlib.sha256(
            json.dumps([sorted((k, v.hex()) for k, v in self.files.items()), self.options]).encode()
        ).hexdigest()[:12]
        target = corpus / f"found-{digest}"
        target.mkdir(parents=True, exist_ok=True)
        self.write(target)
        (target / "case.json").write_text(
            json.dumps(
                {"options": self.options, "must_fail": self.must_fail, "why": self.why},
                indent=2,
            )
            + "\n"
        )
        return target


_last_failure: list[Case] = []


@contextmanager
def saving_failures() -> Iterator[None]:
    """Save the last (the shrunk) failing case of a hypothesis test as a corpus entry."""
    _last_failure.clear()
    try:
        yield
    except BaseException:
        if _last_failure:
            saved = _last_failure[-1].save(CORPUS)
            print(f"failing input saved as corpus entry {saved}")
        raise


@contextmanager
def workspace() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="metaqore-fuzz-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def judge(case: Case, *, subprocess_run: bool = False) -> tuple[Any, dict[str, Any] | None]:
    """Run the gate on ``case``; assert the contract every input must meet."""
    with workspace() as directory:
        case.write(directory)
        args = case.args()
        with suppress(InvalidArgument):  # not inside a hypothesis test (corpus replay)
            note(f"metaqore {' '.join(args)}  ({case.why})")
        try:
            run = (
                run_subprocess(args, cwd=directory)
                if subprocess_run
                else run_in_process(args, cwd=directory)
            )
            assert_gate_contract(run, paths=sorted(case.files))
            if case.must_fail:
                assert run.code == 2, f"certainly invalid ({case.why}) but exit {run.code}\n{run}"
        except BaseException:
            _last_failure.append(case)
            raise
        report_path = directory / "report.json"
        report = json.loads(report_path.read_text("utf-8")) if report_path.exists() else None
        return run, report


def files_of(model: RunModel) -> dict[str, bytes]:
    try:
        return {manifest.name: render(manifest) for manifest in model.manifests}
    except NotRoundTrippable:
        assume(False)
        raise


# -- valid runs against the oracle ------------------------------------------------------------


def check_valid(model: RunModel, *, subprocess_run: bool = False) -> None:
    expected = oracle(model)
    case = Case(files_of(model), model.options(), why="valid run")
    run, report = judge(case, subprocess_run=subprocess_run)
    try:
        assert run.code == expected.exit_code, f"oracle says exit {expected.exit_code}\n{run}"
        assert report is not None
        every, blocking = reported(report)
        assert every == expected.findings
        assert blocking == expected.blocking
    except BaseException:
        _last_failure.append(case)
        raise


def _valid_test(examples: int, *, slow: bool) -> Callable[[], None]:
    counter = {"inputs": 0}

    @fuzz_settings(examples, slow=slow)
    @given(model=run_models())
    def fuzz(model: RunModel) -> None:
        counter["inputs"] += 1
        check_valid(model)

    def test() -> None:
        with saving_failures():
            fuzz()
        record_figures("fuzz.valid", slow=slow, inputs=counter["inputs"], failures=0)

    return test


test_valid_runs_match_the_oracle = _valid_test(CI_EXAMPLES["valid"], slow=False)
test_valid_runs_match_the_oracle_long = pytest.mark.slow(
    _valid_test(SLOW_EXAMPLES["valid"], slow=True)
)


# -- near-valid: one mutation of a valid document -------------------------------------------

Mutation = Callable[[Any, random.Random], tuple[str, bool]]
"""Mutates a document in place; returns (what it did, whether the result is certainly bad)."""


def _artifact_lists(document: Any) -> list[list[Any]]:
    if isinstance(document, list):  # JSON Lines: [header, artifact, ...]
        return [document[1:]] if len(document) > 1 else []
    artifacts = document.get("artifacts")
    return [artifacts] if isinstance(artifacts, list) and artifacts else []


def _objects(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], dict]]:
    """Every mapping of the document outside ``data`` (where any key is fine)."""
    if isinstance(value, dict):
        yield path, value
        for key, child in value.items():
            if key != "data":
                yield from _objects(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _objects(child, (*path, index))


def _pick_object(document: Any, rng: random.Random) -> tuple[tuple[Any, ...], dict]:
    objects = [item for item in _objects(document) if item[1]]
    return rng.choice(objects)


def typo_key(document: Any, rng: random.Random) -> tuple[str, bool]:
    path, target = _pick_object(document, rng)
    key = rng.choice(list(target))
    if key == "from":  # the alias of TransitionEvent.from_
        return "kept", False
    position = rng.randrange(len(key) + 1)
    typo = key[:position] + rng.choice("xz_") + key[position:]
    target[typo] = target.pop(key)
    return f"key {key!r} at {path} renamed {typo!r}", True


def unknown_key(document: Any, rng: random.Random) -> tuple[str, bool]:
    path, target = _pick_object(document, rng)
    name = rng.choice(["priority", "Id", "dependson", "extra", "metaqore2", "__proto__"])
    if name in target:
        return "kept", False
    target[name] = rng.choice([1, "x", None, [], {}])
    return f"unknown key {name!r} added at {path}", True


def required_keys(path: tuple[Any, ...], target: dict[str, Any]) -> set[str]:
    """The keys SPEC §5 requires of the object at ``path`` (a JSON Lines line: (index,))."""
    if path in ((), (0,)):
        return {"metaqore", "project"}
    if path == ("project",) or path == (0, "project"):
        return {"id"}
    last = path[-1]
    if last in ("run", "task"):
        return set()
    if len(path) >= 2 and path[-2] == "provenance":
        return {"actor", "action"}
    if len(path) == 1 or (len(path) == 2 and path[0] == "artifacts"):
        return {"id", "type", "created_by"}
    if "tasks" in path:
        return {"id", "title"}
    kind = target.get("kind")
    if kind == "transition":
        return {"kind", "entity", "id", "from", "to"}
    if kind == "graph_node":
        return {"kind", "id"}
    return {"kind", "conversation", "turn", "sender"}


def drop_required(document: Any, rng: random.Random) -> tuple[str, bool]:
    path, target = _pick_object(document, rng)
    present = sorted(required_keys(path, target) & set(target))
    if not present:
        return "kept", False
    key = rng.choice(present)
    del target[key]
    return f"required key {key!r} removed at {path}", True


WRONG_TYPES: dict[str, list[Any]] = {
    "metaqore": ["1", 1.0, True, 2, None, [1]],
    "id": [1, None, [], {}, "", True],
    "type": [7, None, ["plan"], ""],
    "created_by": [0, None, {"name": "x"}, ""],
    "version": ["1", 1.5, 0, -1, True, [1]],
    "iteration": ["0", -1, 1.0, False, {}],
    "depends_on": ["a1", {"a1": 1}, [1], [None], ["a1", "a1"], [""]],
    "data": ["text", [1, 2], 3, True],
    "content_hash": ["sha256:0", "md5:abc", 5, "sha256:" + "G" * 64],
    "task": ["planning", [1], 1],
    "provider": [1, ["ollama"], {}],
    "sensitivity": ["secret", "PUBLIC", 3, None],
    "has_sensitive_data": ["yes", 1, "true", None],
    "history": ["pending", ["done"], [1], {}],
    "status": ["finished", 1, None],
    "events": [{}, "x", [1], [None]],
    "tasks": [{}, "t1", [1]],
    "artifacts": [{}, "a1", [1], [[]]],
    "kind": ["node", 1, None, "Message"],
    "turn": ["1", -1, 1.5, None],
    "depth": ["2", -1, 2.5],
    "entity": ["job", 1],
    "from": ["done", 1, None],
    "project": ["shop", ["shop"], {}, {"name": "x"}],
    "run": ["r", [1], {"iteration": -1}, {"iteration": "1"}],
    "provenance": [
        {},
        ["x"],
        [{"actor": "x"}],
        [{"actor": "x", "action": "y", "signature": "rsa:"}],
    ],
    "title": [1, None],
    "recipients": ["coder", [1], [""]],
}


NOT_NULLABLE = {"status", "data", "depends_on", "history", "tasks", "events", "artifacts"}


def wrong_type(document: Any, rng: random.Random) -> tuple[str, bool]:
    path, target = _pick_object(document, rng)
    keys = [key for key in target if key in WRONG_TYPES]
    if not keys:
        return "kept", False
    key = rng.choice(keys)
    if key == "sensitivity" and path and path[-1] != "task" and "kind" not in target:
        return "kept", False
    value = rng.choice(WRONG_TYPES[key])
    if value in (None, "") and key not in required_keys(path, target) | NOT_NULLABLE:
        return "kept", False  # an optional key may be null or empty
    target[key] = value
    return f"{key!r} at {path} set to {value!r}", True


def duplicate_artifact(document: Any, rng: random.Random) -> tuple[str, bool]:
    lists = _artifact_lists(document)
    if not lists:
        return "kept", False
    artifacts = lists[0]
    copy = json.loads(json.dumps(rng.choice(artifacts)))
    if isinstance(document, list):
        document.insert(rng.randrange(1, len(document) + 1), copy)
    else:
        artifacts.insert(rng.randrange(len(artifacts) + 1), copy)
    return f"artifact {copy.get('id')!r} declared twice", True


def wrong_content_hash(document: Any, rng: random.Random) -> tuple[str, bool]:
    lists = _artifact_lists(document)
    if not lists:
        return "kept", False
    artifact = rng.choice(lists[0])
    data = artifact.get("data", {})
    artifact["content_hash"] = content_hash({**data, "tampered": True})
    return f"content_hash of {artifact['id']!r} does not match its data", True


def empty_everything(document: Any, rng: random.Random) -> tuple[str, bool]:
    header = document[0] if isinstance(document, list) else document
    for key in ("artifacts", "tasks", "events"):
        header.pop(key, None)
    if isinstance(document, list):
        del document[1:]
    return "no artifacts, tasks or events", True


def drop_optional(document: Any, rng: random.Random) -> tuple[str, bool]:
    path, target = _pick_object(document, rng)
    optional = sorted(set(target) - required_keys(path, target))
    if not optional:
        return "kept", False
    key = rng.choice(optional)
    del target[key]
    return f"optional key {key!r} removed at {path} (may still be valid)", False


MUTATIONS: list[Mutation] = [
    typo_key,
    unknown_key,
    drop_required,
    wrong_type,
    duplicate_artifact,
    wrong_content_hash,
    empty_everything,
    drop_optional,
]


@st.composite
def near_valid_cases(draw: st.DrawFn) -> Case:
    model = draw(run_models(max_files=2))
    files = files_of(model)
    rng = random.Random(draw(st.integers(0, 2**32)))
    target: ManifestModel = draw(st.sampled_from(model.manifests))
    document: Any = jsonl_lines(target) if target.format == "jsonl" else target.document()
    document = json.loads(json.dumps(document))
    mutation = draw(st.sampled_from(MUTATIONS))
    what, certain = mutation(document, rng)
    assume(what != "kept")
    try:
        files[target.name] = render(target, document)
    except NotRoundTrippable:
        assume(False)
    if target.format == "jsonl" and mutation is wrong_type and "artifacts" in what:
        certain = True
    return Case(files, model.options(), must_fail=certain, why=f"{target.name}: {what}")


def _near_valid_test(examples: int, *, slow: bool) -> Callable[[], None]:
    counter = {"inputs": 0, "exit_2": 0}

    @fuzz_settings(examples, slow=slow)
    @given(case=near_valid_cases())
    def fuzz(case: Case) -> None:
        counter["inputs"] += 1
        run, _report = judge(case)
        counter["exit_2"] += run.code == 2

    def test() -> None:
        with saving_failures():
            fuzz()
        assert counter["exit_2"] > counter["inputs"] // 3  # the mutations do bite
        record_figures("fuzz.near_valid", slow=slow, failures=0, **counter)

    return test


test_near_valid_manifests_never_pass_silently = _near_valid_test(
    CI_EXAMPLES["near_valid"], slow=False
)
test_near_valid_manifests_never_pass_silently_long = pytest.mark.slow(
    _near_valid_test(SLOW_EXAMPLES["near_valid"], slow=True)
)


# -- broken files: bytes, encodings, YAML oddities, sizes -----------------------------------


def truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    cut = rng.randrange(len(data))
    return data[:cut], f"truncated at byte {cut}"


def splice_noise(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    at = rng.randrange(len(data) + 1)
    noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 9)))
    return data[:at] + noise + data[at:], f"{noise!r} inserted at byte {at}"


def flip_byte(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    at = rng.randrange(len(data))
    value = rng.choice([0x00, 0x80, 0xC3, 0xFF, 0x22, 0x7B, 0x0A, 0x3A, 0x2D, 0x09])
    return data[:at] + bytes([value]) + data[at + 1 :], f"byte {at} set to {value:#04x}"


def re_encode(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    encoding = rng.choice(["utf-16", "utf-16-le", "utf-32", "latin-1", "utf-8-sig", "cp1252"])
    text = data.decode("utf-8", "replace")
    try:
        return text.encode(encoding), f"re-encoded as {encoding}"
    except UnicodeEncodeError:
        return text.encode(encoding, "replace"), f"re-encoded as {encoding} (lossy)"


def shuffle_lines(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = data.split(b"\n")
    operation = rng.choice(["drop", "duplicate", "swap", "indent"])
    at = rng.randrange(len(lines))
    if operation == "drop":
        del lines[at]
    elif operation == "duplicate":
        lines.insert(at, lines[at])
    elif operation == "swap" and len(lines) > 1:
        other = rng.randrange(len(lines))
        lines[at], lines[other] = lines[other], lines[at]
    else:
        lines[at] = b"   " + lines[at]
    return b"\n".join(lines), f"line {at + 1}: {operation}"


YAML_ODDITIES = [
    "!!python/object/apply:os.system ['echo pwned']",
    "!!python/name:os.system",
    "!!binary aGVsbG8=",
    "!custom 1",
    "&anchor {a: 1}",
    "*undefined_alias",
    "!!set {a, b}",
    "!!omap [a: 1]",
    "<<: {a: 1}",
    ".nan",
    "-.inf",
    "0x1F",
    "1_000",
    "2026-11-24T10:00:00Z",
    "[" * 80 + "]" * 80,
    "{? [a]: b}",
    "|\n  block",
    "'unterminated",
    '"\\ud800"',
    "~",
    "%TAG ! tag:evil.com,2026:",
]


def yaml_oddity(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    candidates = [index for index, line in enumerate(lines) if ": " in line]
    if not candidates:
        return data, "kept"
    at = rng.choice(candidates)
    key, _value = lines[at].split(": ", 1)
    oddity = rng.choice(YAML_ODDITIES)
    lines[at] = f"{key}: {oddity}"
    text = "\n".join(lines)
    return text.encode("utf-8", "surrogateescape"), f"line {at + 1} value replaced by {oddity!r}"


def alias_bomb(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    levels = rng.randrange(5, 12)
    bomb = ["bomb0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * 10)
        bomb.append(f"      bomb{level}: &l{level} [{refs}]")
    text = data.decode("utf-8", "surrogateescape")
    marker = "data:"
    if marker not in text:
        return data, "kept"
    text = text.replace(marker, "data:\n      " + "\n".join(bomb) + "\n      old:", 1)
    return text.encode("utf-8", "surrogateescape"), f"alias bomb of {levels} levels in data"


def duplicate_key_text(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    lines = data.split(b"\n")
    keyed = [index for index, line in enumerate(lines) if b": " in line or b'": ' in line]
    if not keyed:
        return data, "kept"
    at = rng.choice(keyed)
    lines.insert(at + 1, lines[at])
    return b"\n".join(lines), f"line {at + 1} repeated (duplicate key)"


BYTE_MUTATIONS = [
    truncate,
    splice_noise,
    flip_byte,
    re_encode,
    shuffle_lines,
    yaml_oddity,
    alias_bomb,
    duplicate_key_text,
]


def huge(model: RunModel, rng: random.Random) -> Case:
    """Sizes: long strings, many artifacts, wide or deep data, a file over the size limit."""
    manifest = model.manifests[0]
    kind = rng.choice(["long string", "many artifacts", "wide data", "deep data", "over limit"])
    config = None
    must_fail = False
    if kind == "long string":
        manifest.artifacts = [{"id": "a0", "type": "t", "created_by": "x" * 400}]
        manifest.artifacts[0]["data"] = {"blob": "é" * rng.randrange(10_000, 2_000_000)}
    elif kind == "many artifacts":
        count = rng.randrange(1_000, 20_000)
        manifest.artifacts = [
            {"id": f"bulk{n}", "type": "t", "created_by": "x", "depends_on": [f"bulk{n - 1}"]}
            for n in range(1, count)
        ]
        manifest.artifacts.insert(0, {"id": "bulk0", "type": "t", "created_by": "x"})
    elif kind == "wide data":
        manifest.artifacts = [
            {
                "id": "a0",
                "type": "t",
                "created_by": "x",
                "data": {f"k{n}": n for n in range(rng.randrange(1_000, 100_000))},
            }
        ]
    elif kind == "deep data":
        # Written as text: the test's own json.dumps would overflow the stack first.
        depth = rng.choice([58, 60, 61, 62, 70, 500, 5_000])
        opened = "".join(rng.choice(['{"k":', "["]) for _ in range(depth))
        closed = "".join("}" if char == "{" else "]" for char in reversed(opened) if char in "[{")
        artifact = (
            '{"id":"a0","type":"t","created_by":"x","data":{"d":' + opened + "1" + closed + "}}"
        )
        header = json.dumps(manifest.header() | {"tasks": [], "events": []})
        if manifest.format == "jsonl":
            text = header + "\n" + artifact + "\n"
        else:
            text = header[:-1] + ', "artifacts": [' + artifact + "]}"
        name = manifest.name if manifest.format == "jsonl" else "deep.metaqore.json"
        # data is level 4 of the document (root > artifacts > artifact > data); limit 64.
        return Case({name: text.encode()}, must_fail=depth + 4 > 64, why=f"size: deep data {depth}")
    else:
        manifest.artifacts = [
            {"id": "a0", "type": "t", "created_by": "x", "data": {"pad": "x" * 5000}}
        ]
        config = b"max_manifest_bytes: 4096\n"
        must_fail = True
    manifest.tasks, manifest.events = [], []
    if manifest.format == "yaml" and kind in ("deep data", "many artifacts"):
        manifest.format = "json"
        manifest.name = manifest.name.rsplit(".", 1)[0] + ".json"
    data = (
        render(manifest) if manifest.format != "yaml" else json.dumps(manifest.document()).encode()
    )  # JSON is YAML: PyYAML's dumper is too slow for these sizes
    return Case({manifest.name: data}, config=config, must_fail=must_fail, why=f"size: {kind}")


@st.composite
def broken_cases(draw: st.DrawFn) -> Case:
    model = draw(run_models(max_files=2))
    rng = random.Random(draw(st.integers(0, 2**32)))
    if draw(st.integers(0, 9)) == 0:
        return huge(model, rng)
    files = files_of(model)
    name = draw(st.sampled_from(sorted(files)))
    mutations = draw(st.lists(st.sampled_from(BYTE_MUTATIONS), min_size=1, max_size=3))
    data, done = files[name], []
    for mutation in mutations:
        if not data:
            break
        data, what = mutation(data, rng)
        done.append(what)
    files[name] = data
    return Case(files, model.options(), why=f"{name}: {'; '.join(done)}")


def _broken_test(examples: int, *, slow: bool) -> Callable[[], None]:
    counter = {"inputs": 0, "exit_2": 0}

    @fuzz_settings(examples, slow=slow)
    @given(case=broken_cases())
    def fuzz(case: Case) -> None:
        counter["inputs"] += 1
        run, _report = judge(case)
        counter["exit_2"] += run.code == 2

    def test() -> None:
        with saving_failures():
            fuzz()
        assert counter["exit_2"] > counter["inputs"] // 3
        record_figures("fuzz.broken", slow=slow, failures=0, **counter)

    return test


test_broken_files_get_located_errors = _broken_test(CI_EXAMPLES["broken"], slow=False)
test_broken_files_get_located_errors_long = pytest.mark.slow(
    _broken_test(SLOW_EXAMPLES["broken"], slow=True)
)


# -- a sample through a real process: wall-clock and address-space limits ----------------------


@st.composite
def any_cases(draw: st.DrawFn) -> Case:
    kind = draw(st.sampled_from(["valid", "near", "broken"]))
    if kind == "valid":
        model = draw(run_models())
        return Case(files_of(model), model.options(), why="valid run")
    return draw(near_valid_cases() if kind == "near" else broken_cases())


def _subprocess_test(examples: int, *, slow: bool) -> Callable[[], None]:
    counter = {"inputs": 0}

    @fuzz_settings(examples, slow=slow)
    @given(case=any_cases())
    def fuzz(case: Case) -> None:
        counter["inputs"] += 1
        judge(case, subprocess_run=True)

    def test() -> None:
        with saving_failures():
            fuzz()
        record_figures("fuzz.subprocess", slow=slow, failures=0, **counter)

    return test


test_real_processes_stay_in_bounds = _subprocess_test(CI_EXAMPLES["subprocess"], slow=False)
test_real_processes_stay_in_bounds_long = pytest.mark.slow(
    _subprocess_test(SLOW_EXAMPLES["subprocess"], slow=True)
)


# -- the corpus of past failures ---------------------------------------------------------------


def corpus_entries() -> list[Path]:
    return sorted(path for path in CORPUS.iterdir() if path.is_dir()) if CORPUS.is_dir() else []


@pytest.mark.parametrize("entry", corpus_entries(), ids=lambda path: path.name)
def test_corpus_entry(entry: Path) -> None:
    """Each entry: manifest files, optional ``fuzz-config.yaml``, and ``case.json`` with the
    options, why it is there, and optionally what must happen (``expect``: exit code,
    substrings of stderr, findings as [kind, rule, project, artifact])."""
    settings_file = entry / "case.json"
    case_settings = json.loads(settings_file.read_text()) if settings_file.exists() else {}
    files = {
        path.name: path.read_bytes()
        for path in entry.iterdir()
        if path.name not in ("case.json", "fuzz-config.yaml")
    }
    config_file = entry / "fuzz-config.yaml"
    case = Case(
        files,
        case_settings.get("options", []),
        config=config_file.read_bytes() if config_file.exists() else None,
        must_fail=case_settings.get("must_fail", False),
        why=case_settings.get("why", entry.name),
    )
    run, report = judge(case)
    expect = case_settings.get("expect", {})
    if "exit" in expect:
        assert run.code == expect["exit"], str(run)
    for text in expect.get("stderr", []):
        assert text in run.stderr, str(run)
    if "findings" in expect:
        assert report is not None
        found = sorted(
            [f["kind"], f["rule"], f["project_id"], f["artifact_id"]] for f in report["findings"]
        )
        assert found == sorted(expect["findings"]), str(run)


def test_the_corpus_is_not_empty() -> None:
    assert len(corpus_entries()) >= 5
