"""The audit trail: every single-line tamper is caught, and no secret is ever written.

Exhaustively, on a real 12-line audit file from two gate runs: every line edited (one
character changed in each of its fields, and semantic-preserving re-encodings of it),
deleted (the last one through the ``.head`` sidecar), duplicated, swapped with its
neighbour and a copied line inserted at every position. ``metaqore audit verify`` must
exit 1 naming the right line each time.

Then secrets planted in manifest data (values and keys), free text, a signing key and a
store DSN must appear nowhere in the audit file or the reports.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_support import record_figures, run_in_process, run_subprocess

from metaqore.core.audit import verify_audit_log

PASSING = """metaqore: 1
project: {id: shop}
artifacts:
  - {id: plan, type: plan, created_by: planner, data: {title: Checkout}}
  - {id: code, type: code, created_by: coder, depends_on: [plan]}
"""
BLOCKED = """metaqore: 1
project: {id: shop}
artifacts:
  - {id: api, type: code, created_by: coder, depends_on: [ghost],
     task: {provider: openrouter, has_private_data: true}}
  - {id: docs, type: docs, created_by: writer}
  - {id: notes, type: docs, created_by: editor}
"""
FIELDS = (
    "event_type",
    "hash",
    "organization",
    "payload",
    "prev_hash",
    "run_id",
    "seq",
    "timestamp",
)


@pytest.fixture(scope="module")
def audit_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, bytes]:
    """A real audit file of two runs (12 lines), its bytes and its head sidecar's bytes."""
    directory = tmp_path_factory.mktemp("audit")
    (directory / "pass.metaqore.yaml").write_text(PASSING)
    (directory / "block.metaqore.yaml").write_text(BLOCKED)
    assert run_in_process(["check", "pass.metaqore.yaml", "-q"], cwd=directory).code == 0
    assert run_in_process(["check", "block.metaqore.yaml", "-q"], cwd=directory).code == 1
    path = directory / "metaqore-audit.jsonl"
    data = path.read_bytes()
    assert data.count(b"\n") == 12, data.decode()
    return path, data, (directory / "metaqore-audit.jsonl.head").read_bytes()


def verify(path: Path) -> tuple[int, str]:
    result = run_in_process(["audit", "verify", str(path)], cwd=path.parent)
    return result.code, result.stdout + result.stderr


def restore(path: Path, data: bytes, head: bytes) -> None:
    path.write_bytes(data)
    path.with_name(path.name + ".head").write_bytes(head)


# -- the mutations ---------------------------------------------------------------------------


def _field_span(line: bytes, field: str) -> tuple[int, int]:
    """Byte span of the value of top-level ``field`` in a canonical record line."""
    start = line.index(f'"{field}":'.encode()) + len(field) + 3
    following = [line.index(f',"{other}":'.encode(), start) for other in FIELDS if other > field]
    return start, (min(following) if following else len(line) - 1)


def _changed(byte: int) -> int:
    """Another character of the same kind (digit, hex letter, letter), so the line still
    parses and only the value changes."""
    char = chr(byte)
    if char.isdigit():
        return ord("7" if char != "7" else "3")
    if char in "abcdef":
        return ord("e" if char != "e" else "a")
    if char.isalpha():
        return ord("q" if char != "q" else "z")
    return ord("x")


def edits(line: bytes) -> Iterator[tuple[str, bytes]]:
    """One character changed at the start, middle and end of each field's value, and
    byte changes that keep the parsed record identical (canonical form broken)."""
    for field in FIELDS:
        start, end = _field_span(line, field)
        value = line[start:end]
        alnum = [index for index, byte in enumerate(value) if chr(byte).isalnum()]
        spots = sorted({alnum[0], alnum[len(alnum) // 2], alnum[-1]})
        for index in spots:
            at = start + index
            yield (f"{field}[{index}]", line[:at] + bytes([_changed(line[at])]) + line[at + 1 :])
    yield "space after a colon", line.replace(b'":', b'": ', 1)
    yield "key escaped", line.replace(b'"seq"', b'"\\u0073eq"', 1)
    # A forged payload shadowed by the real one: parsers that keep the first key see it.
    start, end = _field_span(line, "payload")
    yield "duplicate key", line[: start - 10] + b'"payload":{"forged":true},' + line[start - 10 :]


def test_every_single_line_tamper_names_the_right_line(
    audit_file: tuple[Path, bytes, bytes],
) -> None:
    path, data, head = audit_file
    lines = data.splitlines(keepends=True)
    count = len(lines)
    cases: list[tuple[str, list[bytes], int]] = []
    for number, line in enumerate(lines, start=1):
        body = line.rstrip(b"\n")
        for what, edited in edits(body):
            assert edited != body
            mutated = list(lines)
            mutated[number - 1] = edited + b"\n"
            cases.append((f"line {number}: edit {what}", mutated, number))
        cases.append((f"line {number}: deleted", lines[: number - 1] + lines[number:], number))
        cases.append(
            (f"line {number}: duplicated", [*lines[:number], line, *lines[number:]], number + 1)
        )
        if number < count:
            swapped = list(lines)
            swapped[number - 1], swapped[number] = swapped[number], swapped[number - 1]
            cases.append((f"lines {number}/{number + 1}: swapped", swapped, number))
    for position in range(count + 1):  # a copy of a non-neighbouring line, at every gap
        copy = lines[(position + count // 2) % count]
        inserted = [*lines[:position], copy, *lines[position:]]
        cases.append((f"copy inserted before line {position + 1}", inserted, position + 1))

    kinds = {"edit": 0, "deleted": 0, "duplicated": 0, "swapped": 0, "inserted": 0}
    try:
        for what, mutated, bad_line in cases:
            path.write_bytes(b"".join(mutated))
            code, output = verify(path)
            assert code == 1, f"{what}: not detected\n{output}"
            assert output.startswith(f"{path}:{bad_line}: "), f"{what}: {output}"
            kinds[next(kind for kind in kinds if kind in what)] += 1
    finally:
        restore(path, data, head)
    assert verify(path)[0] == 0
    assert kinds["edit"] >= count * len(FIELDS)
    record_figures(
        "audit.tamper", slow=False, lines=count, mutations=len(cases), **kinds, failures=0
    )


def test_verify_in_a_real_process(audit_file: tuple[Path, bytes, bytes]) -> None:
    path, data, head = audit_file
    try:
        assert run_subprocess(["audit", "verify", str(path)], cwd=path.parent).code == 0
        lines = data.splitlines(keepends=True)
        path.write_bytes(b"".join(lines[:5] + lines[6:]))
        result = run_subprocess(["audit", "verify", str(path)], cwd=path.parent)
        assert result.code == 1 and result.stdout.startswith(f"{path}:6: "), str(result)
    finally:
        restore(path, data, head)


def test_a_rewritten_tail_needs_a_pinned_head(audit_file: tuple[Path, bytes, bytes]) -> None:
    """What a hash chain alone cannot catch, and what catches it.

    Anyone who can write the file can drop the last record and its ``.head`` sidecar
    together: the chain that is left is valid. The head hash published elsewhere (the JSON
    report's ``audit.head_hash``, the CI log) pins it: ``--expect-head``.
    """
    path, data, head = audit_file
    lines = data.splitlines(keepends=True)
    published = json.loads(lines[-1])["hash"]
    try:
        path.write_bytes(b"".join(lines[:-1]))
        path.with_name(path.name + ".head").unlink()
        assert verify(path)[0] == 0  # undetectable without an anchor
        result = run_in_process(
            ["audit", "verify", str(path), "--expect-head", published], cwd=path.parent
        )
        assert result.code == 1 and f"{path}:11: " in result.stdout, str(result)
    finally:
        restore(path, data, head)


# -- nothing secret is written ---------------------------------------------------------------

SECRETS = {
    "data value": "sEcReT-dAtA-vAlUe-4f1d",
    "nested data value": "sEcReT-NeStEd-9a2b",
    "data key": "sEcReT-kEy-77c3",
    "task title": "sEcReT-tItLe-0e5a",
    "project description": "sEcReT-dEsC-31bb",
    "provenance reason": "sEcReT-rEaSoN-c0de",
}

PLANTED = f"""metaqore: 1
project: {{id: vault, description: "{SECRETS["project description"]}"}}
tasks:
  - {{id: t1, title: "{SECRETS["task title"]}", status: pending}}
artifacts:
  - id: plan
    type: plan
    created_by: planner
    version: 1
    data:
      note: "{SECRETS["data value"]}"
      deep: {{list: [1, {{inner: "{SECRETS["nested data value"]}"}}]}}
      "{SECRETS["data key"]}": 1
    task: {{provider: ollama, has_sensitive_data: true}}
    provenance:
      - {{actor: reviewer, action: reviewed, reason: "{SECRETS["provenance reason"]}"}}
  - id: leak
    type: code
    created_by: coder
    depends_on: [plan]
    data: {{copy: "{SECRETS["data value"]}"}}
    task: {{provider: openrouter}}
"""


def _key_material(pem: bytes) -> list[str]:
    """Every way the private key could show up: PEM body lines, raw key as base64/hex."""
    from cryptography.hazmat.primitives import serialization

    body = [line for line in pem.decode().splitlines() if not line.startswith("-----")]
    key = serialization.load_pem_private_key(pem, password=None)
    raw = key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return [*body, base64.b64encode(raw).decode(), raw.hex(), "PRIVATE KEY"]


def _written(directory: Path) -> dict[str, str]:
    """Every file the gate wrote (audit chain, sidecars, reports)."""
    return {
        path.name: path.read_bytes().decode("utf-8", "replace")
        for path in directory.iterdir()
        if path.is_file() and not path.name.endswith((".yaml", ".key", ".pub"))
    }


def test_planted_secrets_never_reach_the_audit_file_or_the_reports(tmp_path: Path) -> None:
    keys = run_in_process(["keygen", "signer", "--out", "keys"], cwd=tmp_path)
    assert keys.code == 0, str(keys)
    pem = (tmp_path / "keys" / "signer.key").read_bytes()
    public = (tmp_path / "keys" / "signer.pub").read_text().strip()
    (tmp_path / "m.metaqore.yaml").write_text(PLANTED)
    signed = run_in_process(
        ["sign", "m.metaqore.yaml", "--key", "keys/signer.key", "--artifact", "plan", "-i"],
        cwd=tmp_path,
    )
    assert signed.code == 0, str(signed)
    (tmp_path / "metaqore.yaml").write_text(
        f'manifests: ["*.metaqore.yaml"]\ntrusted_keys: {{signer: "{public}"}}\n'
        "require_signatures: [sensitive, critical]\n"
    )
    result = run_in_process(
        [
            "check",
            "--json",
            "r.json",
            "--sarif",
            "r.sarif",
            "--junit-xml",
            "r.xml",
            "--markdown",
            "r.md",
            "--write-baseline",
            "baseline.json",
        ],
        cwd=tmp_path,
    )
    assert result.code == 1, str(result)  # `leak` inherits `plan`'s sensitivity: a veto
    written = _written(tmp_path)
    assert {"metaqore-audit.jsonl", "r.json", "r.sarif", "r.xml", "r.md"} <= set(written)
    audit = written["metaqore-audit.jsonl"]
    assert '"artifact_declared"' in audit and "default_local_first" in audit
    for name, text in written.items():
        for what, secret in SECRETS.items():
            assert secret not in text, f"{what} written to {name}"
        for material in _key_material(pem):
            assert material not in text, f"private key material written to {name}"
    assert "data" not in {key for line in audit.splitlines() for key in json.loads(line)["payload"]}
    for material in _key_material(pem):
        assert material not in result.stdout + result.stderr


def test_a_store_password_is_never_written(tmp_path: Path) -> None:
    """A DSN password from the config: not in the audit file, not in the error."""
    password = "sEcReT-PaSsWoRd-5e6f"
    (tmp_path / "m.metaqore.yaml").write_text(PASSING)
    (tmp_path / "metaqore.yaml").write_text(
        f'storage_dsn: "postgresql+psycopg://gate:{password}@127.0.0.1:9/metaqore"\n'
        "store_timeout: 2\n"
    )
    result = run_in_process(["check", "m.metaqore.yaml", "--json", "r.json"], cwd=tmp_path)
    assert result.code == 2, str(result)
    assert "***" in result.stderr, str(result)
    assert password not in result.stdout + result.stderr
    for name, text in _written(tmp_path).items():
        assert password not in text, name


def test_a_store_password_in_a_recorded_dsn_is_masked(
    tmp_path: Path, postgres_schema: object
) -> None:
    """A reachable store: the run records which store it used, with the password masked."""
    from sqlalchemy.engine import make_url

    dsn = make_url(postgres_schema())  # type: ignore[operator]
    # The server's own password when it has one (trust authentication ignores ours).
    password = dsn.password if dsn.password else "sEcReT-PaSsWoRd-a11e"
    assert len(str(password)) >= 8, "too short to look for"
    with_password = dsn.set(password=password).render_as_string(hide_password=False)
    (tmp_path / "m.metaqore.yaml").write_text(PASSING)
    result = run_in_process(
        ["check", "m.metaqore.yaml", "--db", with_password, "--json", "r.json"], cwd=tmp_path
    )
    assert result.code == 0, str(result)
    audit = (tmp_path / "metaqore-audit.jsonl").read_text()
    assert '"store":' in audit
    for name, text in _written(tmp_path).items():
        assert password not in text, name
    assert password not in result.stdout + result.stderr


def test_a_rejected_manifest_leaves_no_content_in_the_audit_file(tmp_path: Path) -> None:
    (tmp_path / "a.metaqore.json").write_text(
        '{"metaqore": 1, "project": {"id": "p"}, "artifacts": [{"id": "a", "type": "t", '
        '"created_by": "x", "data": {"sEcReT-kEy-1": 1, "sEcReT-kEy-1": 2}}]}'
    )
    (tmp_path / "b.metaqore.yaml").write_text(
        "metaqore: 1\nproject: {id: p}\nartifacts:\n"
        "  - {id: b, type: t, created_by: x, data: {k: !sEcReT-TaG-2 v}}\n"
    )
    result = run_in_process(["check", "a.metaqore.json", "b.metaqore.yaml"], cwd=tmp_path)
    assert result.code == 2 and "sEcReT-kEy-1" in result.stderr  # the user is told
    audit = (tmp_path / "metaqore-audit.jsonl").read_text()
    assert '"verdict":"error"' in audit  # the failed run is on record...
    assert re.search(r"a\.metaqore\.json:1:\d+", audit)  # ...with where it failed...
    assert "sEcReT" not in audit  # ...but not what the manifest holds


def test_the_audit_file_permissions_follow_the_umask(tmp_path: Path) -> None:
    (tmp_path / "m.metaqore.yaml").write_text(PASSING)
    previous = os.umask(0o077)
    try:
        assert run_in_process(["check", "m.metaqore.yaml"], cwd=tmp_path).code == 0
    finally:
        os.umask(previous)
    assert (tmp_path / "metaqore-audit.jsonl").stat().st_mode & 0o077 == 0
    assert verify_audit_log(tmp_path / "metaqore-audit.jsonl").ok
