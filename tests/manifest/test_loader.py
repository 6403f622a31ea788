"""Loading manifests into records: what the gate sees of a run, whatever the format."""

from __future__ import annotations

import gc
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from manifest_factory import HEADER, artifacts, write_jsonl

from metaqore.config import MetaQoreConfig
from metaqore.core.canonical import canonical_json, content_hash
from metaqore.core.records import ArtifactRecord, RunIndex
from metaqore.exceptions import ManifestErrors
from metaqore.manifest import discover_manifests, load_manifests
from metaqore.manifest import loader as loader_module
from metaqore.manifest.loader import LoadResult
from metaqore.yamlio import dump_yaml

CONFIG = MetaQoreConfig()

EXAMPLE_YAML = """\
metaqore: 1
project:
  id: checkout
  name: Checkout service
  organization: acme
run:
  id: run-17
  iteration: 3
artifacts:
  - id: requirements
    type: spec
    created_by: planner
    data: {title: Checkout, pages: 3}

  - id: api-plan
    type: plan
    created_by: architect
    version: 2
    iteration: 1
    depends_on: [requirements]
    data: {title: "Checkout API"}
    content_hash: "CONTENT_HASH"
    task:
      type: planning
      provider: openrouter
      sensitivity: internal
      has_private_data: true
    provenance:
      - {actor: architect, action: created, key_id: arch-2026, signature: "ed25519:AAAA"}
      - {actor: reviewer, action: approved}
tasks:
  - {id: t-1, title: Design API, status: completed, assigned_to: architect}
  - id: t-2
    title: Write code
events:
  - {kind: graph_node, id: n1, agent: planner, depth: 1}
  - {kind: transition, entity: task, id: t-1, from: pending, to: in_progress}
"""


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def load(
    root: Path, *paths: str, config: MetaQoreConfig = CONFIG, **options: bool
) -> tuple[LoadResult, RunIndex]:
    index = RunIndex()
    files = discover_manifests(list(paths), config=config, root=root)
    return load_manifests(files, config=config, index=index, **options), index


def fields(record: ArtifactRecord, *, with_place: bool = True) -> tuple[Any, ...]:
    """Everything the loader sets on a record (``source``/``line`` optional)."""
    common = (
        record.project,
        record.id,
        record.artifact_type,
        record.agent,
        record.content_hash,
        record.declared_version,
        record.iteration,
        record.depends_on,
        record.position,
        record.sensitivity,
        record.task,
        record.provenance,
        record.data_keys,
        record.data_json,
    )
    return (*common, record.source, record.line) if with_place else common


def problems_of(error: ManifestErrors) -> list[str]:
    return [str(problem) for problem in error.errors]


@pytest.fixture
def example(tmp_path: Path) -> Path:
    digest = content_hash({"title": "Checkout API"})
    write(tmp_path / "run.metaqore.yaml", EXAMPLE_YAML.replace("CONTENT_HASH", digest))
    return tmp_path


def test_yaml_manifest_gives_one_record_per_artifact(example: Path) -> None:
    result, index = load(example, keep_data_keys=True)

    requirements, plan = index.run_records
    assert (requirements.id, requirements.artifact_type, requirements.agent) == (
        "requirements",
        "spec",
        "planner",
    )
    assert requirements.iteration == 3  # inherited from run.iteration
    assert requirements.declared_version is None
    assert requirements.line == 10 and requirements.position == 0
    assert requirements.content_hash == content_hash({"title": "Checkout", "pages": 3})
    assert requirements.task is None and requirements.sensitivity is None
    assert requirements.provenance == ()
    assert requirements.data_keys == frozenset({"title", "pages"})
    assert requirements.data_json is None

    assert plan.iteration == 1  # its own iteration wins over the run's
    assert plan.declared_version == 2
    assert plan.depends_on == ("requirements",)
    assert plan.line == 15 and plan.position == 1
    assert plan.source == "run.metaqore.yaml"
    assert plan.sensitivity == "internal"
    assert plan.task == ("planning", "openrouter", False, True, False)
    assert plan.provenance == (
        {
            "actor": "architect",
            "action": "created",
            "key_id": "arch-2026",
            "signature": "ed25519:AAAA",
        },
        {"actor": "reviewer", "action": "approved", "key_id": None, "signature": None},
    )

    (manifest,) = result.manifests
    raw = (example / "run.metaqore.yaml").read_bytes()
    assert manifest.sha256 == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert manifest.size == len(raw)
    assert manifest.project.id == "checkout" and manifest.project_line == 2
    assert manifest.run is not None and manifest.run.id == "run-17"
    assert [(task.id, line) for task, line in manifest.tasks] == [("t-1", 32), ("t-2", 33)]
    assert [(event.kind, line) for event, line in manifest.events] == [
        ("graph_node", 36),
        ("transition", 37),
    ]
    assert manifest.artifact_count == 2
    project = result.projects["checkout"]
    assert (project.name, project.organization, project.paths) == (
        "Checkout service",
        "acme",
        ["run.metaqore.yaml"],
    )
    assert (project.path, project.line) == ("run.metaqore.yaml", 2)


def test_keep_data_keeps_the_canonical_json(example: Path) -> None:
    _, index = load(example, keep_data=True)
    assert [record.data_json for record in index.run_records] == [
        canonical_json({"title": "Checkout", "pages": 3}),
        canonical_json({"title": "Checkout API"}),
    ]
    assert all(record.data_keys is None for record in index.run_records)


def _same_run_in_three_formats(root: Path, count: int) -> None:
    items = list(artifacts(count))
    items[1]["task"] = {"type": "coding", "provider": "ollama", "sensitivity": "sensitive"}
    items[1]["provenance"] = [{"actor": "a", "action": "created", "signature": "ed25519:x"}]
    items[2]["iteration"] = 7
    items[2]["version"] = 4
    items[3]["data"] = {"nested": {"list": [1, 2.5, None, True, "é"]}, "empty": {}}
    items[4]["content_hash"] = content_hash(items[4]["data"])
    header = dict(HEADER, tasks=[{"id": "t", "title": "Task"}])
    write(root / "yaml" / "run.metaqore.yaml", dump_yaml({**header, "artifacts": items}))
    write(root / "json" / "run.metaqore.json", json.dumps({**header, "artifacts": items}, indent=2))
    lines = [json.dumps(header)] + [json.dumps(item) for item in items]
    write(root / "jsonl" / "run.metaqore.jsonl", "\n".join(lines) + "\n")


def test_yaml_json_and_jsonl_of_one_run_give_the_same_records(tmp_path: Path) -> None:
    _same_run_in_three_formats(tmp_path, 40)
    loaded = {}
    for kind in ("yaml", "json", "jsonl"):
        _, index = load(tmp_path / kind, keep_data_keys=True, keep_data=True)
        loaded[kind] = [fields(record, with_place=False) for record in index.run_records]
        assert {record.source for record in index.run_records} == {f"run.metaqore.{kind}"}
    assert loaded["yaml"] == loaded["json"] == loaded["jsonl"]
    assert len(loaded["yaml"]) == 40


def test_artifact_lines_point_at_the_artifact_in_each_format(tmp_path: Path) -> None:
    _same_run_in_three_formats(tmp_path, 6)
    _, jsonl = load(tmp_path / "jsonl")
    assert [record.line for record in jsonl.run_records] == [2, 3, 4, 5, 6, 7]
    _, as_json = load(tmp_path / "json")
    text = (tmp_path / "json" / "run.metaqore.json").read_text().splitlines()
    for record in as_json.run_records:
        assert text[record.line - 1].strip() == "{"
        assert json.dumps(record.id) in text[record.line]
    _, as_yaml = load(tmp_path / "yaml")
    text = (tmp_path / "yaml" / "run.metaqore.yaml").read_text().splitlines()
    for record in as_yaml.run_records:
        assert text[record.line - 1].lstrip().startswith("- ")


def test_replay_order_does_not_depend_on_the_order_of_paths(tmp_path: Path) -> None:
    names = []
    for number in range(4):
        run = {"id": f"r{number}", "iteration": number % 2}
        items = [
            {"id": f"a{number}-{item}", "type": "code", "created_by": "coder"} for item in range(3)
        ]
        items[0]["iteration"] = 0
        document = {"metaqore": 1, "project": {"id": "shop"}, "run": run, "artifacts": items}
        name = f"m{number}.metaqore.{('yaml', 'json')[number % 2]}"
        text = dump_yaml(document) if name.endswith("yaml") else json.dumps(document)
        write(tmp_path / name, text)
        names.append(name)

    def order(paths: list[str]) -> list[tuple[str, str, int]]:
        _, index = load(tmp_path, *paths)
        index.finalize()
        return [(record.id, record.source, record.line) for record in index.run_records]

    expected = order(names)
    assert expected[0][0] == "a0-0"
    for seed in range(5):
        shuffled = names[:]
        random.Random(seed).shuffle(shuffled)
        assert order(shuffled) == expected
    assert order(["."]) == expected
    assert order(["*.metaqore.*", names[2]]) == expected


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_permutation_of_paths_gives_the_same_records(tmp_path: Path, data: Any) -> None:
    root = tmp_path / "perm"
    if not root.exists():
        for number in range(5):
            items = [
                {"id": f"x{number}{item}", "type": "t", "created_by": "a", "iteration": item % 2}
                for item in range(3)
            ]
            document = {"metaqore": 1, "project": {"id": "p"}, "artifacts": items}
            write(root / f"d{number}" / "m.metaqore.json", json.dumps(document))
    paths = data.draw(st.permutations([f"d{number}" for number in range(5)]))
    _, index = load(root, *paths)
    index.finalize()
    got = [(record.source, record.id) for record in index.run_records]
    assert got == sorted(got, key=lambda item: (int(item[1][-1]) % 2, item[0], item[1]))


def test_jsonl_streams_across_reads_and_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loader_module, "READ_CHUNK", 4096)  # lines straddle reads
    monkeypatch.setattr(loader_module, "BATCH_LINES", 97)
    write_jsonl(tmp_path / "big.metaqore.jsonl", 1234)
    result, index = load(tmp_path)
    records = index.run_records
    assert len(records) == 1234 == result.manifests[0].artifact_count
    assert [record.line for record in records] == list(range(2, 1236))
    assert [record.position for record in records] == list(range(1234))
    assert records[500].id == "art-0000500"
    assert all(record.iteration == 1 for record in records)
    raw = (tmp_path / "big.metaqore.jsonl").read_bytes()
    assert result.manifests[0].sha256 == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert result.manifests[0].size == len(raw)


def test_jsonl_careful_path_gives_the_same_records_as_the_bulk_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _same_run_in_three_formats(tmp_path, 60)
    _, bulk = load(tmp_path / "jsonl", keep_data_keys=True, keep_data=True)
    monkeypatch.setattr(loader_module._JSONLines, "fast_batch", lambda *args: False)
    _, careful = load(tmp_path / "jsonl", keep_data_keys=True, keep_data=True)
    assert [fields(record) for record in careful.run_records] == [
        fields(record) for record in bulk.run_records
    ]


def test_jsonl_blank_lines_crlf_and_bom_are_fine(tmp_path: Path) -> None:
    lines = [json.dumps(HEADER)] + [json.dumps(item) for item in artifacts(5)]
    text = "\r\n".join(lines[:3]) + "\r\n\r\n   \r\n" + "\r\n".join(lines[3:]) + "\r\n\n"
    write(tmp_path / "run.metaqore.jsonl", b"\xef\xbb\xbf" + text.encode())
    _, index = load(tmp_path)
    assert [record.line for record in index.run_records] == [2, 3, 6, 7, 8]
    assert [record.position for record in index.run_records] == [0, 1, 2, 3, 4]


def test_yaml_with_a_bom_is_fine(tmp_path: Path) -> None:
    text = "metaqore: 1\nproject: {id: p}\nartifacts:\n  - {id: a, type: t, created_by: x}\n"
    write(tmp_path / "bom.metaqore.yaml", b"\xef\xbb\xbf" + text.encode())
    _, index = load(tmp_path)
    assert [(record.id, record.line) for record in index.run_records] == [("a", 4)]


def test_jsonl_header_tasks_and_events_without_artifacts(tmp_path: Path) -> None:
    header = dict(
        HEADER,
        tasks=[{"id": "t-1", "title": "Plan"}],
        events=[{"kind": "message", "conversation": "c", "turn": 1, "sender": "a"}],
    )
    write(tmp_path / "trace.metaqore.jsonl", "\n" + json.dumps(header) + "\n")
    result, index = load(tmp_path)
    (manifest,) = result.manifests
    assert index.run_records == []
    assert [(task.id, line) for task, line in manifest.tasks] == [("t-1", 2)]
    assert [(event.kind, line) for event, line in manifest.events] == [("message", 2)]
    assert manifest.project_line == 2


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # pydantic keeps the last of duplicate keys; the loader must not.
        ('{"id":"a","type":"t","created_by":"x","id":"b"}', "duplicate key 'id'"),
        ('{"id":"a","type":"t","created_by":"x","data":{"k":{"z":1,"z":1}}}', "duplicate key 'z'"),
        (
            '{"id":"a:1","type":"t","created_by":"x","task":{"type":"a","type":"b"}}',
            "duplicate key 'type'",
        ),
        (
            '{"id":"a","type":"t","created_by":"x","data":{"\\u003a":1,":":2}}',
            "duplicate key ':'",
        ),
        ('{"id":"a","type":"t","created_by":"x","data":{"n":1e999}}', "non-finite number 1e999"),
        ('{"id":"a","type":"t","created_by":"x","data":{"n":-Infinity}}', "non-finite number"),
        ('{"id":"a","type":"t","created_by":"x"} ', "duplicate artifact id 'a'"),
        ('{"id":"z","type":"t","created_by":"x","version":"1"}', "version: got a string"),
    ],
)
def test_jsonl_problem_inside_a_large_batch_is_found_on_its_line(
    tmp_path: Path, line: str, expected: str
) -> None:
    lines = [json.dumps(HEADER)]
    lines += [json.dumps(item) for item in artifacts(3000)]
    lines[1] = '{"id":"a","type":"t","created_by":"x"}'
    lines[2001] = line
    write(tmp_path / "run.metaqore.jsonl", "\n".join(lines) + "\n")
    with pytest.raises(ManifestErrors) as caught:
        load(tmp_path)
    (problem,) = problems_of(caught.value)
    assert problem.startswith("run.metaqore.jsonl:2002:")
    assert expected in problem


def test_jsonl_colons_and_escapes_that_are_not_duplicates_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [
        {
            "id": f"plan:{number}",
            "type": "a:b",
            "created_by": "x",
            "depends_on": [f"plan:{number - 1}"] if number else [],
            "data": {"url": "http://x", "k:v": ":"},
        }
        for number in range(50)
    ]
    lines = [json.dumps(HEADER)] + [json.dumps(item) for item in items]
    lines.append('{"id":"escaped","type":"t","created_by":"x","data":{"c":"\\u003a\\u00e9"}}')
    write(tmp_path / "run.metaqore.jsonl", "\n".join(lines) + "\n")
    monkeypatch.setattr(loader_module, "BATCH_LINES", 25)
    careful: list[int] = []
    slow_batch = loader_module._JSONLines.slow_batch

    def spy(self: Any, lines: list[bytes], first_line: int) -> None:
        careful.append(first_line)
        slow_batch(self, lines, first_line)

    monkeypatch.setattr(loader_module._JSONLines, "slow_batch", spy)
    _, index = load(tmp_path)
    assert len(index.run_records) == 51
    assert careful == [52]  # only the batch with the escaped colon needed the careful path
    assert index.run_records[0].content_hash == content_hash(items[0]["data"])
    assert index.run_records[-1].content_hash == content_hash({"c": ":é"})


def nested(levels: int) -> Any:
    """``data`` nested ``levels`` deep: 1 is ``{"leaf": 1}``."""
    value: Any = {"leaf": 1}
    for number in range(levels - 1):
        value = {"k": value} if number % 2 else [value]
    return value


@pytest.mark.parametrize("kind", ["yaml", "json", "jsonl"])
def test_the_nesting_limit_is_the_same_in_every_format(tmp_path: Path, kind: str) -> None:
    # root > artifacts > artifact > data: data may nest max_nesting_depth - 3 levels.
    config = MetaQoreConfig(max_nesting_depth=12)

    def attempt(levels: int) -> None:
        item = {"id": "a", "type": "t", "created_by": "x", "data": {"d": nested(levels - 1)}}
        document = {**HEADER, "artifacts": [item]}
        if kind == "yaml":
            text = dump_yaml(document)
        elif kind == "json":
            text = json.dumps(document)
        else:
            text = json.dumps(HEADER) + "\n" + json.dumps(item) + "\n"
        write(tmp_path / f"m.metaqore.{kind}", text)
        load(tmp_path, config=config)

    attempt(9)
    with pytest.raises(ManifestErrors, match=r"m\.metaqore\.\w+:\d+:\d+: nesting deeper than 12"):
        attempt(10)


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path / "a.metaqore.yaml", "metaqore: 1\nproject: {id: p}\nartifacts:\n  - {id: x}\n")
    write(tmp_path / "b.metaqore.json", '{"metaqore": 1, "project": {"id": "p"}, "artifacts": [}')
    write(
        tmp_path / "c.metaqore.jsonl",
        json.dumps(HEADER) + '\n{"id": "x", "type": "t", "created_by": "a", "tpye": 1}\n',
    )
    write(
        tmp_path / "d.metaqore.yaml",
        "metaqore: 1\nproject: {id: p}\nartifacts:\n  - {id: fine, type: t, created_by: a}\n",
    )
    with pytest.raises(ManifestErrors) as caught:
        load(tmp_path)
    assert problems_of(caught.value) == [
        "a.metaqore.yaml:4:5: missing required key 'type' (expected a 'type' key)",
        "a.metaqore.yaml:4:5: missing required key 'created_by' (expected a 'created_by' key)",
        "b.metaqore.json:1:55: invalid JSON: Expecting value (expected valid JSON)",
        "c.metaqore.jsonl:2:45: unknown key 'tpye' (did you mean 'type'?)",
    ]


def test_a_file_with_a_problem_contributes_no_records(tmp_path: Path) -> None:
    lines = [json.dumps(HEADER)] + [json.dumps(item) for item in artifacts(10)]
    lines[9] = "{not json"
    write(tmp_path / "a.metaqore.jsonl", "\n".join(lines) + "\n")
    write(
        tmp_path / "b.metaqore.yaml",
        "metaqore: 1\nproject: {id: bench}\nartifacts:\n  - {id: art-0000001, type: t, "
        "created_by: a}\n",
    )
    index = RunIndex()
    files = discover_manifests([], config=CONFIG, root=tmp_path)
    with pytest.raises(ManifestErrors) as caught:
        load_manifests(files, config=CONFIG, index=index)
    # b's art-0000001 is no duplicate: the broken file a contributed nothing.
    assert problems_of(caught.value) == [
        "a.metaqore.jsonl:10:2: invalid JSON: Expecting property name enclosed in double quotes "
        "(expected valid JSON)"
    ]
    assert [record.source for record in index.run_records] == ["b.metaqore.yaml"]


def test_many_problems_are_cut_short(tmp_path: Path) -> None:
    lines = [json.dumps(HEADER)] + ['{"id": 1}'] * 20_000
    write(tmp_path / "bad.metaqore.jsonl", "\n".join(lines) + "\n")
    for number in range(3):
        write(tmp_path / f"x{number}.metaqore.yaml", "- not a mapping\n")
    with pytest.raises(ManifestErrors) as caught:
        load(tmp_path)
    error = caught.value
    assert len(error.errors) == loader_module.MAX_PROBLEMS
    assert str(error).splitlines()[-1].startswith("... and ")
    assert len(str(error).splitlines()) == loader_module.MAX_PROBLEMS + 1


def test_duplicate_ids_across_files_point_at_the_second(tmp_path: Path) -> None:
    first = "metaqore: 1\nproject: {id: p}\nartifacts:\n  - {id: a, type: t, created_by: x}\n"
    second = json.dumps(
        {
            "metaqore": 1,
            "project": {"id": "p"},
            "artifacts": [{"id": "a", "type": "t", "created_by": "y"}],
        },
        indent=1,
    )
    write(tmp_path / "a.metaqore.yaml", first)
    write(tmp_path / "b.metaqore.json", second)
    write(tmp_path / "c.metaqore.yaml", first.replace("{id: p}", "{id: other}"))
    with pytest.raises(ManifestErrors) as caught:
        load(tmp_path)
    assert problems_of(caught.value) == [
        "b.metaqore.json:7:3: duplicate artifact id 'a' in project 'p' "
        "(first declared at a.metaqore.yaml:4)"
    ]


def test_manifests_of_one_project_are_merged(tmp_path: Path) -> None:
    template = "metaqore: 1\nproject: PROJECT\nartifacts:\n  - {id: ID, type: t, created_by: x}\n"
    write(tmp_path / "a.metaqore.yaml", template.replace("PROJECT", "{id: p}").replace("ID", "a"))
    write(
        tmp_path / "b.metaqore.yaml",
        template.replace("PROJECT", "{id: p, name: Shop, description: Shop front}").replace(
            "ID", "b"
        ),
    )
    result, _ = load(tmp_path)
    project = result.projects["p"]
    assert (project.name, project.description) == ("Shop", "Shop front")
    assert project.paths == ["a.metaqore.yaml", "b.metaqore.yaml"]
    assert (project.path, project.line) == ("a.metaqore.yaml", 2)


def test_contradicting_project_names_are_an_error_at_the_second(tmp_path: Path) -> None:
    template = (
        "metaqore: 1\nproject: {id: p, name: NAME}\nartifacts:\n"
        "  - {id: ID, type: t, created_by: x}\n"
    )
    write(tmp_path / "a.metaqore.yaml", template.replace("NAME", "Shop").replace("ID", "a"))
    write(tmp_path / "b.metaqore.yaml", template.replace("NAME", "Store").replace("ID", "b"))
    with pytest.raises(ManifestErrors) as caught:
        load(tmp_path)
    (problem,) = problems_of(caught.value)
    assert problem.startswith("b.metaqore.yaml:2:1: project 'p' has name 'Store' here but 'Shop'")
    assert "a.metaqore.yaml:2" in problem


def test_a_matching_content_hash_is_accepted(tmp_path: Path) -> None:
    data = {"b": [1, {"c": None}], "a": "ü"}
    item = {
        "id": "a",
        "type": "t",
        "created_by": "x",
        "data": data,
        "content_hash": content_hash(data),
    }
    write(tmp_path / "ok.metaqore.json", json.dumps({**HEADER, "artifacts": [item]}))
    _, index = load(tmp_path)
    assert index.run_records[0].content_hash == content_hash(data)


def test_iteration_is_unset_without_run_or_artifact_iteration(tmp_path: Path) -> None:
    write(
        tmp_path / "m.metaqore.yaml",
        "metaqore: 1\nproject: {id: p}\nartifacts:\n  - {id: a, type: t, created_by: x}\n",
    )
    _, index = load(tmp_path)
    assert index.run_records[0].iteration is None


@pytest.mark.parametrize("enabled", [True, False])
def test_the_garbage_collector_state_is_restored(example: Path, enabled: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        load(example)
        assert gc.isenabled() is enabled
        write(example / "bad.metaqore.yaml", "[")
        with pytest.raises(ManifestErrors):
            load(example)
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
