"""ComplianceAuditor and the audit chain: what lands in the file, and what verify catches."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metaqore.core.audit import (
    AUDIT_RECOVERED,
    FORBIDDEN_PAYLOAD_KEYS,
    GENESIS_HASH,
    RECORD_FIELDS,
    AuditVerification,
    ComplianceAuditor,
    format_compliance_report,
    generate_compliance_report,
    verify_audit_log,
    verify_audit_log_or_raise,
)
from metaqore.core.canonical import canonical_json, sha256_text
from metaqore.core.models import VetoReason
from metaqore.exceptions import AuditIntegrityError

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def write_log(path: Path, count: int, **kwargs: Any) -> ComplianceAuditor:
    auditor = ComplianceAuditor(path=path, **kwargs)
    with auditor:
        for index in range(count):
            auditor.log_event("artifact_declared", {"artifact_id": f"a{index}", "version": 1})
    return auditor


def read_lines(path: Path) -> list[str]:
    # Only "\n" ends a record: str.splitlines() would also split on U+2028, U+0085, ...
    with path.open(encoding="utf-8", newline="\n") as stream:
        return list(stream)


def records_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in read_lines(path)]


def rehash(record: dict[str, Any]) -> str:
    """The line a forger would write after editing ``record`` and fixing its hash."""
    body = {key: value for key, value in record.items() if key != "hash"}
    return canonical_json({**body, "hash": sha256_text(canonical_json(body))}) + "\n"


def run_python(code: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True, **kwargs)


# -- the chain ----------------------------------------------------------------------------


def test_every_line_is_a_canonical_chained_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    auditor = ComplianceAuditor(path=path, organization="acme", run_id="run-1")
    returned = [
        auditor.log_event("artifact_declared", {"artifact_id": "a", "n": i}) for i in range(3)
    ]
    auditor.close()

    lines = read_lines(path)
    assert len(lines) == 3
    previous = GENESIS_HASH
    for seq, (line, record) in enumerate(zip(lines, returned, strict=True), start=1):
        assert line == canonical_json(record) + "\n"
        assert tuple(sorted(record)) == RECORD_FIELDS
        assert record["seq"] == seq
        assert record["prev_hash"] == previous
        body = {key: value for key, value in record.items() if key != "hash"}
        assert record["hash"] == sha256_text(canonical_json(body))
        assert record["organization"] == "acme"
        assert record["run_id"] == "run-1"
        assert datetime.fromisoformat(record["timestamp"]).utcoffset() == timedelta(0)
        previous = record["hash"]
    assert auditor.head_hash == previous
    assert json.loads((tmp_path / "audit.jsonl.head").read_text()) == {"seq": 3, "hash": previous}


def test_record_chain_fields_are_filled_when_written(tmp_path: Path) -> None:
    auditor = ComplianceAuditor(path=tmp_path / "audit.jsonl", flush_interval=100)
    record = auditor.log_event("run_started", {"mode": "strict"})
    assert record["hash"] is None
    assert record["seq"] is None
    auditor.flush()
    assert record["seq"] == 1
    assert record["hash"] == auditor.head_hash
    auditor.close()


def test_default_run_id_is_fresh_per_auditor() -> None:
    first, second = ComplianceAuditor(), ComplianceAuditor()
    assert first.run_id.startswith("run_")
    assert len(first.run_id) == len("run_") + 12
    assert first.run_id != second.run_id


def test_second_auditor_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    first = write_log(path, 25, flush_interval=10)
    second = write_log(path, 7, flush_interval=3)

    records = records_of(path)
    assert [record["seq"] for record in records] == list(range(1, 33))
    assert records[25]["prev_hash"] == first.head_hash
    assert records[25]["run_id"] == second.run_id
    result = verify_audit_log(path)
    assert result == AuditVerification(
        True, 32, None, "audit chain intact: 32 records", second.head_hash
    )


def test_log_dir_names_the_file_after_the_organization(tmp_path: Path) -> None:
    log_dir = tmp_path / "nested" / "logs"
    with ComplianceAuditor(organization="acme", log_dir=log_dir) as auditor:
        auditor.log_event("run_started", {"mode": "strict"})
    assert auditor.path == log_dir / "compliance_audit_acme.jsonl"
    assert verify_audit_log(auditor.path).records == 1


def test_organization_that_would_escape_log_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be part of a file name"):
        ComplianceAuditor(organization="../etc", log_dir=tmp_path)


# -- what verify catches --------------------------------------------------------------------

Tamper = Callable[[list[str]], list[str]]


def _edit_line_5(lines: list[str]) -> list[str]:
    record = json.loads(lines[4])
    record["payload"]["artifact_id"] = "forged"
    return [*lines[:4], canonical_json(record) + "\n", *lines[5:]]


def _forge_seq_on_line_5(lines: list[str]) -> list[str]:
    record = json.loads(lines[4])
    record["seq"] = 9
    return [*lines[:4], rehash(record), *lines[5:]]


def _rewrite_last_line(lines: list[str]) -> list[str]:
    record = json.loads(lines[-1])
    record["payload"]["artifact_id"] = "forged"
    return [*lines[:-1], rehash(record)]


@pytest.mark.parametrize(
    ("tamper", "first_bad_line", "message"),
    [
        pytest.param(_edit_line_5, 5, "line 5: hash mismatch (record was edited)", id="edit"),
        pytest.param(
            lambda lines: lines[:4] + lines[5:],
            5,
            "line 5: prev_hash does not match line 4 (a line was removed, inserted or reordered)",
            id="delete-middle",
        ),
        pytest.param(
            lambda lines: lines[1:],
            1,
            "line 1: prev_hash is not the genesis hash (lines were removed from the start)",
            id="delete-first",
        ),
        pytest.param(
            lambda lines: lines[:-1],
            10,
            "file ends at line 9 but its head records seq 10: lines were removed from the end",
            id="delete-last",
        ),
        pytest.param(
            lambda lines: [*lines[:6], lines[2], *lines[6:]],
            7,
            "line 7: prev_hash does not match line 6 (a line was removed, inserted or reordered)",
            id="insert-copy",
        ),
        pytest.param(
            lambda lines: [*lines[:4], lines[3], *lines[4:]],
            5,
            "line 5: prev_hash does not match line 4 (a line was removed, inserted or reordered)",
            id="duplicate",
        ),
        pytest.param(
            lambda lines: [*lines[:5], lines[6], lines[5], *lines[7:]],
            6,
            "line 6: prev_hash does not match line 5 (a line was removed, inserted or reordered)",
            id="swap-adjacent",
        ),
        pytest.param(
            _forge_seq_on_line_5,
            5,
            "line 5: seq 9 follows 4 (a line was removed, inserted or reordered)",
            id="forged-seq",
        ),
        pytest.param(
            _rewrite_last_line,
            10,
            "line 10: hash differs from the one in audit.jsonl.head (the chain was rewritten)",
            id="rewrite-last-with-valid-hash",
        ),
        pytest.param(
            lambda lines: [*lines[:2], "not json\n", *lines[3:]],
            3,
            "line 3: not valid JSON",
            id="garbage",
        ),
        pytest.param(
            lambda lines: [*lines[:2], '{"seq": 3}\n', *lines[3:]],
            3,
            "line 3: not an audit record (missing event_type, hash, organization",
            id="wrong-keys",
        ),
    ],
)
def test_verify_names_the_first_bad_line(
    tmp_path: Path, tamper: Tamper, first_bad_line: int, message: str
) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 10, flush_interval=4)
    assert verify_audit_log(path).ok

    path.write_text("".join(tamper(read_lines(path))), "utf-8")

    result = verify_audit_log(path)
    assert not result.ok
    assert result.first_bad_line == first_bad_line
    assert result.message.startswith(message)
    with pytest.raises(AuditIntegrityError) as raised:
        verify_audit_log_or_raise(path)
    assert raised.value.line == first_bad_line


def test_verify_empty_file_is_ok(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.touch()
    assert verify_audit_log(path) == AuditVerification(
        True, 0, None, "audit chain intact: 0 records", None
    )


def test_verify_checks_the_expected_head(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    auditor = write_log(path, 3)
    assert verify_audit_log(path, expect_head=auditor.head_hash).ok

    result = verify_audit_log(path, expect_head=GENESIS_HASH)
    assert not result.ok
    assert result.first_bad_line == 3
    assert "is not the expected head" in result.message


# -- crashes and refusals -----------------------------------------------------------------


def test_torn_tail_is_cut_off_and_recorded(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    torn = b'{"event_type":"artifact_declared","hash":"sha256:12'
    with path.open("ab") as stream:
        stream.write(torn)

    result = verify_audit_log(path)
    assert (result.ok, result.first_bad_line) == (False, 4)
    assert result.message.startswith("line 4: incomplete final line")
    assert verify_audit_log(path, allow_torn_tail=True).ok

    write_log(path, 1)

    records = records_of(path)
    assert [record["event_type"] for record in records] == [
        *["artifact_declared"] * 3,
        AUDIT_RECOVERED,
        "artifact_declared",
    ]
    assert records[3]["payload"] == {
        "truncated_bytes": len(torn),
        "truncated_sha256": "sha256:" + hashlib.sha256(torn).hexdigest(),
    }
    assert verify_audit_log(path).records == 5


def test_torn_first_line_restarts_from_genesis(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"event_type":"run_st')
    write_log(path, 1)
    records = records_of(path)
    assert [record["event_type"] for record in records] == [AUDIT_RECOVERED, "artifact_declared"]
    assert records[0]["prev_hash"] == GENESIS_HASH
    assert verify_audit_log(path).ok


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda line: line.replace('"a2"', '"a9"'), id="edited"),
        pytest.param(lambda line: line[:40] + "\n", id="cut-short"),
    ],
)
def test_refuses_to_append_after_a_corrupted_last_line(
    tmp_path: Path, corrupt: Callable[[str], str]
) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    lines = read_lines(path)
    path.write_text("".join([*lines[:2], corrupt(lines[2])]), "utf-8")
    before = path.read_bytes()

    auditor = ComplianceAuditor(path=path)
    auditor.log_event("artifact_declared", {"artifact_id": "late"})
    with pytest.raises(AuditIntegrityError, match="line 3 ") as raised:
        auditor.flush()
    assert raised.value.line == 3
    assert path.read_bytes() == before


def test_refuses_to_append_after_lines_were_removed_from_the_end(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 5)
    path.write_text("".join(read_lines(path)[:3]), "utf-8")

    auditor = ComplianceAuditor(path=path)
    auditor.log_event("artifact_declared", {"artifact_id": "late"})
    with pytest.raises(AuditIntegrityError, match="head records seq 5"):
        auditor.flush()
    assert len(read_lines(path)) == 3


# -- several writers ----------------------------------------------------------------------

WRITER = """
import os, sys, time
from metaqore.core.audit import ComplianceAuditor
path, count, tag, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
with ComplianceAuditor(path=path, flush_interval=3, run_id=tag) as auditor:
    for index in range(count):
        auditor.log_event("artifact_declared", {"writer": tag, "index": index})
        time.sleep(0.0002)  # leave the other writer room to get the lock in between
"""


def test_two_processes_appending_at_once_form_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    go = tmp_path / "go"
    writers = [
        run_python(WRITER, str(path), "500", tag, str(go), stdout=subprocess.PIPE)
        for tag in ("w1", "w2")
    ]
    try:
        for writer in writers:
            assert writer.stdout is not None
            assert writer.stdout.readline().strip() == "ready"
        go.touch()
        for writer in writers:
            assert writer.wait(timeout=120) == 0
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
            if writer.stdout is not None:
                writer.stdout.close()

    result = verify_audit_log(path)
    assert (result.ok, result.records) == (True, 1000), result.message
    records = records_of(path)
    writers_in_order = [record["run_id"] for record in records]
    switches = sum(a != b for a, b in itertools.pairwise(writers_in_order))
    assert switches > 1, "the writers never overlapped: this run proves nothing"
    for tag in ("w1", "w2"):
        indexes = [r["payload"]["index"] for r in records if r["run_id"] == tag]
        assert indexes == list(range(500))


LOCK_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


def test_lock_held_elsewhere_times_out_with_an_integrity_error(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    holder = run_python(
        LOCK_HOLDER,
        str(tmp_path / "audit.jsonl.lock"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    auditor = ComplianceAuditor(path=path, lock_timeout=0.5)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        auditor.log_event("artifact_declared", {"artifact_id": "a"})
        started = time.monotonic()
        with pytest.raises(AuditIntegrityError, match="is locked by another process"):
            auditor.flush()
        assert time.monotonic() - started < 5
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
        if holder.stdout is not None:
            holder.stdout.close()

    auditor.close()  # the lock is free again: the buffered event is written
    assert [r["payload"] for r in records_of(path)] == [{"artifact_id": "a"}]


def test_exclusive_block_keeps_other_writers_out(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    runner = ComplianceAuditor(path=path, flush_interval=2, run_id="run")
    other = ComplianceAuditor(path=path, lock_timeout=0.2, run_id="other")
    with runner.exclusive():
        runner.log_event("run_started", {})
        with runner.exclusive():  # re-entrant
            runner.log_event("artifact_declared", {"artifact_id": "a"})
        other.log_event("artifact_declared", {"artifact_id": "b"})
        with pytest.raises(AuditIntegrityError, match="locked"):
            other.flush()
        runner.log_event("run_finished", {"verdict": "pass"})
    other.close()
    runner.close()

    assert [r["run_id"] for r in records_of(path)] == ["run", "run", "run", "other"]
    assert verify_audit_log(path).ok


# -- batching -------------------------------------------------------------------------------


def test_events_are_written_in_batches_of_flush_interval(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    auditor = ComplianceAuditor(path=path, flush_interval=5)
    for index in range(4):
        auditor.log_event("artifact_declared", {"index": index})
    assert not path.exists()
    auditor.log_event("artifact_declared", {"index": 4})
    assert len(read_lines(path)) == 5
    auditor.log_event("artifact_declared", {"index": 5})
    assert len(read_lines(path)) == 5
    auditor.close()
    assert len(read_lines(path)) == 6
    auditor.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        auditor.log_event("artifact_declared", {"index": 6})


def test_context_manager_flushes_on_exit(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"

    def failing_run() -> None:
        with ComplianceAuditor(path=path, flush_interval=100) as auditor:
            auditor.log_event("run_started", {})
            raise RuntimeError("the run failed")

    with pytest.raises(RuntimeError):
        failing_run()
    assert [r["event_type"] for r in records_of(path)] == ["run_started"]


def test_memory_only_auditor_writes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with ComplianceAuditor(flush_interval=2) as auditor:
        for index in range(5):
            auditor.log_event("artifact_declared", {"index": index})
        trail = auditor.get_audit_trail()
    assert auditor.path is None
    assert list(tmp_path.iterdir()) == []
    assert [r["seq"] for r in trail] == [1, 2, 3, 4, 5]
    assert trail[0]["prev_hash"] == GENESIS_HASH
    assert all(r["prev_hash"] == p["hash"] for p, r in itertools.pairwise(trail))
    assert auditor.head_hash == trail[-1]["hash"]


# -- reading the trail ----------------------------------------------------------------------


def _log_mixed(auditor: ComplianceAuditor) -> None:
    auditor.log_routing_decision({"provider": "ollama", "agent_name": "planner"})
    auditor.log_routing_decision({"provider": "ollama", "agent_name": "coder"})
    auditor.log_routing_decision({"provider": "openrouter", "agent_name": "writer"})
    veto = VetoReason(reason="Provider 'openrouter' disallowed", policy_violated="routing")
    auditor.log_veto_event(veto, {"provider": "openrouter", "agent_name": "coder"})
    auditor.log_veto_event({"reason": "bad signature", "policy_violated": "provenance"})
    auditor.log_event("artifact_declared", {"artifact_id": "a1"})


@pytest.mark.parametrize("on_disk", [True, False], ids=["file", "memory"])
def test_audit_trail_filters(tmp_path: Path, on_disk: bool) -> None:
    path = tmp_path / "audit.jsonl" if on_disk else None
    auditor = ComplianceAuditor(path=path, organization="acme")
    _log_mixed(auditor)

    def agents(filters: dict[str, Any]) -> list[Any]:
        return [r["payload"].get("agent_name") for r in auditor.get_audit_trail(filters)]

    assert len(auditor.get_audit_trail()) == 6
    assert agents({"event_type": "routing_decision"}) == ["planner", "coder", "writer"]
    assert agents({"provider": "ollama"}) == ["planner", "coder"]
    assert agents({"agent_name": ["coder", "writer"]}) == ["coder", "writer", "coder"]
    assert agents({"event_type": "veto", "agent_name": "coder"}) == ["coder"]
    assert agents({"seq": {1, 6}}) == ["planner", None]
    assert agents({"organization": "other"}) == []
    now = datetime.now(UTC)
    assert len(auditor.get_audit_trail({"since": now - timedelta(minutes=1)})) == 6
    assert auditor.get_audit_trail({"since": (now + timedelta(minutes=1)).isoformat()}) == []
    assert auditor.get_audit_trail({"until": now - timedelta(minutes=1)}) == []
    [veto] = auditor.get_audit_trail({"event_type": "veto", "provider": "openrouter"})
    assert veto["payload"]["veto"] == {
        "reason": "Provider 'openrouter' disallowed",
        "policy_violated": "routing",
        "severity": "critical",
        "details": {},
    }
    auditor.close()


def test_compliance_report_counts_one_organization(tmp_path: Path) -> None:
    path = tmp_path / "compliance_audit_acme.jsonl"
    with ComplianceAuditor(path=path, organization="acme") as auditor:
        _log_mixed(auditor)
    with ComplianceAuditor(path=path, organization="globex") as other:
        other.log_routing_decision({"provider": "ollama"})

    expected = {
        "organization": "acme",
        "total_events": 6,
        "by_event": {"routing_decision": 3, "veto": 2, "artifact_declared": 1},
        "by_provider": {"ollama": 2, "openrouter": 2},
        "policy_violations": {"provenance": 1, "routing": 1},
    }
    assert auditor.get_compliance_report() == expected
    assert generate_compliance_report("acme", log_dir=tmp_path) == expected
    assert generate_compliance_report("acme", path=path) == expected
    assert generate_compliance_report("globex", path=path)["total_events"] == 1
    with pytest.raises(FileNotFoundError):
        generate_compliance_report("initech", log_dir=tmp_path)


def test_format_compliance_report() -> None:
    report = {
        "organization": "acme",
        "total_events": 6,
        "by_event": {"artifact_declared": 1, "veto": 2, "routing_decision": 3},
        "by_provider": {"openrouter": 2, "ollama": 2},
        "policy_violations": {"routing": 1, "provenance": 1},
    }
    assert format_compliance_report(report) == (
        "Compliance Report :: acme\n"
        "=========================\n"
        "Total Events: 6\n"
        "\n"
        "Events by Type\n"
        "  - routing_decision: 3\n"
        "  - veto: 2\n"
        "  - artifact_declared: 1\n"
        "\n"
        "Events by Provider\n"
        "  - ollama: 2\n"
        "  - openrouter: 2\n"
        "\n"
        "Policy Violations\n"
        "  - provenance: 1\n"
        "  - routing: 1"
    )


def test_format_empty_compliance_report() -> None:
    report = ComplianceAuditor(organization="default").get_compliance_report()
    assert format_compliance_report(report) == (
        "Compliance Report :: default\n"
        "============================\n"
        "Total Events: 0\n"
        "\n"
        "Events by Type\n"
        "  (none)\n"
        "\n"
        "Events by Provider\n"
        "  (none)\n"
        "\n"
        "Policy Violations\n"
        "  (none)"
    )


# -- what must never be written -------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"artifact_id": "a", "data": {"title": "x"}},
        {"artifact_id": "a", "details": {"nested": [{"API_KEY": "k"}]}},
        {"Password": "hunter2"},
        {"context": {"token": "t"}},
    ],
)
def test_payload_guard_refuses_content_and_secrets(tmp_path: Path, payload: dict[str, Any]) -> None:
    path = tmp_path / "audit.jsonl"
    with ComplianceAuditor(path=path, flush_interval=1) as auditor:
        with pytest.raises(ValueError, match="not allowed in the audit log"):
            auditor.log_event("artifact_declared", payload)
        auditor.log_event("artifact_declared", {"content_hash": "sha256:0", "note": '"data":'})
    assert [r["payload"]["note"] for r in records_of(path)] == ['"data":']


def test_veto_context_cannot_hide_the_veto() -> None:
    veto = VetoReason(reason="r", policy_violated="p")
    with pytest.raises(ValueError, match="veto"):
        ComplianceAuditor().log_veto_event(veto, {"veto": "nothing to see"})


# -- the fast serializer --------------------------------------------------------------------

_keys = st.text(max_size=12).filter(lambda key: key.lower() not in FORBIDDEN_PAYLOAD_KEYS)
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=16,
)
_tricky_text = st.text(min_size=1, max_size=12) | st.sampled_from(
    ['"quoted"', "back\\slash", "ünïcødé ✓ 🚀", "line\nbreak", "\x00\x1f\u2028"]
)


@pytest.fixture(scope="module")
def serializer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serializer")


_file_numbers = itertools.count()


@settings(max_examples=150, deadline=None)
@given(
    payloads=st.lists(st.dictionaries(_keys, _json_values, max_size=8), min_size=1, max_size=3),
    event_type=_tricky_text,
    organization=_tricky_text,
    run_id=_tricky_text,
)
def test_written_lines_equal_canonical_json(
    serializer_dir: Path,
    payloads: list[dict[str, Any]],
    event_type: str,
    organization: str,
    run_id: str,
) -> None:
    path = serializer_dir / f"audit-{next(_file_numbers)}.jsonl"
    with ComplianceAuditor(path=path, organization=organization, run_id=run_id) as auditor:
        records = [auditor.log_event(event_type, payload) for payload in payloads]
    assert read_lines(path) == [canonical_json(record) + "\n" for record in records]
    for record in records:
        body = {key: value for key, value in record.items() if key != "hash"}
        assert record["hash"] == sha256_text(canonical_json(body))
    assert verify_audit_log(path).ok
