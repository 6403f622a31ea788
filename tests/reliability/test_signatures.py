"""Provenance signatures through the real gate: forgeries are vetoed, keys stay private.

Two trusted keys (``planner-2026``, ``coder-2026``) and one untrusted (``mallory``), made
with ``metaqore keygen``; artifacts signed with ``metaqore sign``. Every attack on a signed
manifest -- a flipped bit, a signature replayed onto another artifact, version or content,
a signature by the wrong trusted key, an unknown key id, a stripped signature -- must end
in a ``provenance`` veto on the attacked artifact when signatures are required.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from reliability_support import Run, run_in_process, run_subprocess

from metaqore.core.canonical import content_hash
from metaqore.core.signing import sign_provenance

ALL_LEVELS = "[public, internal, sensitive, critical]"
MANIFEST: dict[str, Any] = {
    "metaqore": 1,
    "project": {"id": "signed"},
    "artifacts": [
        {
            "id": "plan",
            "type": "plan",
            "created_by": "planner",
            "version": 1,
            "data": {"steps": ["design", "build"]},
        },
        {
            "id": "code",
            "type": "code",
            "created_by": "coder",
            "version": 1,
            "depends_on": ["plan"],
            "data": {"lines": 120},
        },
        {
            "id": "tests",
            "type": "tests",
            "created_by": "planner",
            "version": 1,
            "depends_on": ["code"],
            "data": {"cases": 7},
        },
    ],
}


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("keys")
    made: dict[str, Any] = {"dir": directory}
    for key_id in ("planner-2026", "coder-2026", "mallory"):
        result = run_in_process(["keygen", key_id, "--out", "keys"], cwd=directory)
        assert result.code == 0, str(result)
        made[key_id] = {
            "pem": (directory / "keys" / f"{key_id}.key").read_bytes(),
            "public": (directory / "keys" / f"{key_id}.pub").read_text().strip(),
            "path": directory / "keys" / f"{key_id}.key",
            "output": result.stdout + result.stderr,
        }
    return made


@pytest.fixture(scope="module")
def signed(keys: dict[str, Any]) -> dict[str, Any]:
    """MANIFEST with each artifact signed by its creator, through ``metaqore sign``."""
    directory: Path = keys["dir"]
    (directory / "m.metaqore.json").write_text(json.dumps(MANIFEST))
    for key_id, artifacts in (("planner-2026", ["plan", "tests"]), ("coder-2026", ["code"])):
        args = ["sign", "m.metaqore.json", "--key", f"keys/{key_id}.key", "-i"]
        for artifact in artifacts:
            args += ["--artifact", artifact]
        result = run_in_process(args, cwd=directory)
        assert result.code == 0, str(result)
    document: dict[str, Any] = json.loads((directory / "m.metaqore.json").read_text())
    return document


def config_text(keys: dict[str, Any], required: str = ALL_LEVELS) -> str:
    trusted = {key_id: keys[key_id]["public"] for key_id in ("planner-2026", "coder-2026")}
    return f"trusted_keys: {json.dumps(trusted)}\nrequire_signatures: {required}\n"


def judge(
    directory: Path, document: dict[str, Any], keys: dict[str, Any], required: str = ALL_LEVELS
) -> tuple[Run, dict[str, Any]]:
    (directory / "metaqore.yaml").write_text(config_text(keys, required))
    (directory / "m.metaqore.json").write_text(json.dumps(document))
    result = run_in_process(["check", "m.metaqore.json", "--json", "r.json"], cwd=directory)
    assert result.code in (0, 1), str(result)
    return result, json.loads((directory / "r.json").read_text())


def provenance_vetoes(report: dict[str, Any]) -> dict[str, str]:
    return {
        finding["artifact_id"]: finding["message"]
        for finding in report["findings"]
        if finding["rule"] == "provenance" and finding["blocking"]
    }


def _entry(document: dict[str, Any], artifact: str) -> dict[str, Any]:
    (found,) = [item for item in document["artifacts"] if item["id"] == artifact]
    entry: dict[str, Any] = found["provenance"][-1]
    return entry


def _artifact(document: dict[str, Any], artifact: str) -> dict[str, Any]:
    (found,) = [item for item in document["artifacts"] if item["id"] == artifact]
    return found


def flip_bit(document: dict[str, Any], keys: dict[str, Any]) -> str:
    entry = _entry(document, "plan")
    raw = bytearray(base64.b64decode(entry["signature"].removeprefix("ed25519:")))
    raw[17] ^= 0x04
    entry["signature"] = "ed25519:" + base64.b64encode(bytes(raw)).decode()
    return "plan"


def replay_onto_another_artifact(document: dict[str, Any], keys: dict[str, Any]) -> str:
    # tests and plan share a creator: only the artifact id differs in what is signed.
    _artifact(document, "tests")["provenance"] = [copy.deepcopy(_entry(document, "plan"))]
    return "tests"


def replay_onto_another_creator(document: dict[str, Any], keys: dict[str, Any]) -> str:
    _artifact(document, "code")["provenance"] = [copy.deepcopy(_entry(document, "plan"))]
    return "code"


def replay_onto_another_version(document: dict[str, Any], keys: dict[str, Any]) -> str:
    document["artifacts"].append(
        {**copy.deepcopy(_artifact(document, "plan")), "id": "plan-v2", "version": 2}
    )
    _artifact(document, "plan-v2")["provenance"] = [copy.deepcopy(_entry(document, "plan"))]
    return "plan-v2"


def change_the_content(document: dict[str, Any], keys: dict[str, Any]) -> str:
    _artifact(document, "code")["data"] = {"lines": 121}
    return "code"


def change_the_signed_version(document: dict[str, Any], keys: dict[str, Any]) -> str:
    # Same id, same content, a later version: the signature covered version 1.
    _artifact(document, "tests")["version"] = 2
    return "tests"


def _resign(
    document: dict[str, Any], keys: dict[str, Any], artifact: str, key: str, *, actor: str
) -> dict[str, Any]:
    """Sign the last provenance entry of version-1 ``artifact`` again, validly, with
    ``key``'s private key, as ``actor``; returns the entry (its key_id unchanged)."""
    entry = _entry(document, artifact)
    entry["signature"] = sign_provenance(
        keys[key]["pem"],
        artifact_id=artifact,
        artifact_type=_artifact(document, artifact)["type"],
        version=1,
        content_hash=content_hash(_artifact(document, artifact)["data"]),
        actor=actor,
        action=entry["action"],
    )
    return entry


def sign_with_the_wrong_trusted_key(document: dict[str, Any], keys: dict[str, Any]) -> str:
    _resign(document, keys, "plan", "coder-2026", actor="planner")
    return "plan"  # key_id still says planner-2026


def sign_with_an_unknown_key(document: dict[str, Any], keys: dict[str, Any]) -> str:
    _resign(document, keys, "code", "mallory", actor="coder")["key_id"] = "mallory"
    return "code"


def sign_without_a_key_id(document: dict[str, Any], keys: dict[str, Any]) -> str:
    del _entry(document, "code")["key_id"]
    return "code"


def strip_the_signature(document: dict[str, Any], keys: dict[str, Any]) -> str:
    del _entry(document, "plan")["signature"]
    return "plan"


def strip_the_provenance(document: dict[str, Any], keys: dict[str, Any]) -> str:
    del _artifact(document, "code")["provenance"]
    return "code"


def malformed_signature(document: dict[str, Any], keys: dict[str, Any]) -> str:
    _entry(document, "tests")["signature"] = "ed25519:" + base64.b64encode(b"x" * 63).decode()
    return "tests"


def truncated_signature(document: dict[str, Any], keys: dict[str, Any]) -> str:
    entry = _entry(document, "plan")
    entry["signature"] = entry["signature"][:-8]
    return "plan"


def signature_by_someone_else_only(document: dict[str, Any], keys: dict[str, Any]) -> str:
    # A valid signature by a trusted key, but of another actor: the creator never signed.
    code = _artifact(document, "code")
    code["provenance"] = [
        {
            "actor": "planner",
            "action": "reviewed",
            "key_id": "planner-2026",
            "signature": sign_provenance(
                keys["planner-2026"]["pem"],
                artifact_id="code",
                artifact_type="code",
                version=1,
                content_hash=content_hash(code["data"]),
                actor="planner",
                action="reviewed",
            ),
        }
    ]
    return "code"


ATTACKS: list[Callable[[dict[str, Any], dict[str, Any]], str]] = [
    flip_bit,
    replay_onto_another_artifact,
    replay_onto_another_creator,
    replay_onto_another_version,
    change_the_content,
    change_the_signed_version,
    sign_with_the_wrong_trusted_key,
    sign_with_an_unknown_key,
    sign_without_a_key_id,
    strip_the_signature,
    strip_the_provenance,
    malformed_signature,
    truncated_signature,
    signature_by_someone_else_only,
]


def test_the_signed_manifest_passes(
    tmp_path: Path, keys: dict[str, Any], signed: dict[str, Any]
) -> None:
    result, report = judge(tmp_path, signed, keys)
    assert result.code == 0, str(result)
    assert provenance_vetoes(report) == {}


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda attack: attack.__name__)
def test_every_attack_is_vetoed_when_signatures_are_required(
    tmp_path: Path, keys: dict[str, Any], signed: dict[str, Any], attack: Callable[..., str]
) -> None:
    document = copy.deepcopy(signed)
    target = attack(document, keys)
    result, report = judge(tmp_path, document, keys)
    assert result.code == 1, str(result)
    vetoes = provenance_vetoes(report)
    assert target in vetoes, f"{attack.__name__}: no provenance veto on {target}\n{result}"


BAD_EVEN_UNREQUIRED = [
    flip_bit,
    replay_onto_another_artifact,
    change_the_content,
    sign_with_the_wrong_trusted_key,
    sign_with_an_unknown_key,
    malformed_signature,
]


@pytest.mark.parametrize("attack", BAD_EVEN_UNREQUIRED, ids=lambda attack: attack.__name__)
def test_a_bad_signature_is_vetoed_even_when_none_is_required(
    tmp_path: Path, keys: dict[str, Any], signed: dict[str, Any], attack: Callable[..., str]
) -> None:
    document = copy.deepcopy(signed)
    target = attack(document, keys)
    result, report = judge(tmp_path, document, keys, required="[]")
    assert result.code == 1 and target in provenance_vetoes(report), str(result)


def test_a_missing_signature_blocks_only_the_sensitivities_that_require_one(
    tmp_path: Path, keys: dict[str, Any], signed: dict[str, Any]
) -> None:
    document = copy.deepcopy(signed)
    strip_the_provenance(document, keys)  # `code`: public by classification
    assert judge(tmp_path, document, keys, required="[critical]")[0].code == 0
    _artifact(document, "code")["task"] = {"is_security_task": True, "has_sensitive_data": True}
    result, report = judge(tmp_path, document, keys, required="[critical]")
    # `code` is critical now, and so is `tests`, which depends on it and is signed.
    assert result.code == 1 and set(provenance_vetoes(report)) == {"code"}, str(result)


# -- keys bound to actors ----------------------------------------------------------------------


def sign_as_another_actor(document: dict[str, Any], keys: dict[str, Any]) -> str:
    """The coder's own, trusted key signs an entry that claims the planner wrote `plan`."""
    _resign(document, keys, "plan", "coder-2026", actor="planner")["key_id"] = "coder-2026"
    return "plan"


def bound_config_text(keys: dict[str, Any]) -> str:
    trusted = {
        "planner-2026": {"key": keys["planner-2026"]["public"], "actors": ["planner"]},
        "coder-2026": {"key": keys["coder-2026"]["public"], "actors": ["coder"]},
    }
    return f"trusted_keys: {json.dumps(trusted)}\nrequire_signatures: {ALL_LEVELS}\n"


def test_a_key_bound_to_its_actors_cannot_sign_for_another(
    tmp_path: Path, keys: dict[str, Any], signed: dict[str, Any]
) -> None:
    document = copy.deepcopy(signed)
    target = sign_as_another_actor(document, keys)
    # Unbound keys (a key id maps to a key only): any trusted key may claim any actor.
    result, report = judge(tmp_path, document, keys)
    assert result.code == 0 and provenance_vetoes(report) == {}, str(result)
    # Bound keys: the signature is valid, but not the coder's to make.
    (tmp_path / "metaqore.yaml").write_text(bound_config_text(keys))
    bound = run_in_process(["check", "m.metaqore.json", "--json", "r.json"], cwd=tmp_path)
    assert bound.code == 1, str(bound)
    vetoes = provenance_vetoes(json.loads((tmp_path / "r.json").read_text()))
    assert set(vetoes) == {target}
    assert "key id 'coder-2026', which may sign only for coder" in vetoes[target]
    # The honest manifest still passes with bound keys.
    (tmp_path / "m.metaqore.json").write_text(json.dumps(signed))
    honest = run_in_process(["check", "m.metaqore.json"], cwd=tmp_path)
    assert honest.code == 0, str(honest)


def test_keygen_prints_an_entry_bound_to_its_actors(tmp_path: Path) -> None:
    result = run_in_process(
        ["keygen", "planner-2026", "--out", "keys", "--actor", "planner"], cwd=tmp_path
    )
    assert result.code == 0, str(result)
    public = (tmp_path / "keys" / "planner-2026.pub").read_text().strip()
    assert f'  planner-2026: {{key: "{public}", actors: ["planner"]}}' in result.stdout
    # The printed entry is valid config as it stands.
    entry = result.stdout.split("trusted_keys:\n", 1)[1]
    (tmp_path / "metaqore.yaml").write_text("trusted_keys:\n" + entry)
    from metaqore.config import TrustedKey, load_config

    config = load_config(cwd=tmp_path)
    assert config.trusted_keys == {"planner-2026": TrustedKey(key=public, actors=["planner"])}


# -- key files -------------------------------------------------------------------------------


def _material(pem: bytes) -> list[str]:
    return [line for line in pem.decode().splitlines() if not line.startswith("-----")]


def test_keygen_never_prints_the_private_key(keys: dict[str, Any]) -> None:
    for key_id in ("planner-2026", "coder-2026", "mallory"):
        output = keys[key_id]["output"]
        assert "PRIVATE KEY" not in output
        for line in _material(keys[key_id]["pem"]):
            assert line not in output
        assert keys[key_id]["public"] in output  # what the user needs is printed
        mode = stat.S_IMODE(keys[key_id]["path"].stat().st_mode)
        assert mode == 0o600, oct(mode)


def test_keygen_writes_a_private_key_only_its_owner_can_read_whatever_the_umask(
    tmp_path: Path,
) -> None:
    previous = os.umask(0)
    try:
        assert run_in_process(["keygen", "k", "--out", "."], cwd=tmp_path).code == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600
    again = run_in_process(["keygen", "k", "--out", "."], cwd=tmp_path)
    assert again.code == 2 and "refusing to overwrite" in again.stderr


def _sign_with(directory: Path, key: Path, *extra: str) -> Run:
    (directory / "m.metaqore.json").write_text(json.dumps(MANIFEST))
    return run_subprocess(
        ["sign", "m.metaqore.json", "--key", str(key), "--key-id", "planner-2026", *extra],
        cwd=directory,
    )


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o666, 0o660])
def test_a_private_key_others_can_read_is_refused(
    tmp_path: Path, keys: dict[str, Any], mode: int
) -> None:
    key = tmp_path / "loose.key"
    key.write_bytes(keys["planner-2026"]["pem"])
    key.chmod(mode)
    result = _sign_with(tmp_path, key)
    assert result.code == 2, str(result)
    assert f"mode {mode:04o}" in result.stderr and "chmod 600" in result.stderr, str(result)
    for line in _material(keys["planner-2026"]["pem"]):
        assert line not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_a_private_key_only_its_owner_can_read_is_used(
    tmp_path: Path, keys: dict[str, Any], mode: int
) -> None:
    key = tmp_path / "tight.key"
    key.write_bytes(keys["planner-2026"]["pem"])
    key.chmod(mode)
    result = _sign_with(tmp_path, key)
    assert result.code == 0, str(result)
    for line in _material(keys["planner-2026"]["pem"]):
        assert line not in result.stdout + result.stderr


def _damaged_pem(pem: bytes) -> bytes:
    lines = pem.splitlines()
    body = bytearray(lines[1])
    body[5] = ord("A") if body[5] != ord("A") else ord("B")
    return b"\n".join([lines[0], bytes(body), *lines[2:]]) + b"\n"


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "--debug"])
@pytest.mark.parametrize("content", ["damaged", "other", "huge", "directory", "fifo"])
def test_a_bad_key_file_is_a_clear_error_that_quotes_nothing(
    tmp_path: Path, keys: dict[str, Any], content: str, debug: bool
) -> None:
    pem = keys["planner-2026"]["pem"]
    key = tmp_path / "bad.key"
    if content == "damaged":
        key.write_bytes(_damaged_pem(pem))
    elif content == "other":
        key.write_bytes(b"sEcReT-NoT-a-KeY-3141\n" + pem.replace(b"PRIVATE", b"PUBLIC"))
    elif content == "huge":
        key.write_bytes(pem * 2000)
    elif content == "directory":
        key.mkdir()
    else:
        os.mkfifo(key)
    if content in ("damaged", "other", "huge"):
        key.chmod(0o600)
    else:
        key.chmod(0o700)
    result = _sign_with(tmp_path, key, *(["--debug"] if debug else []))
    assert result.code == 2, str(result)
    assert str(key) in result.stderr, str(result)
    output = result.stdout + result.stderr
    for line in [*_material(pem), *_material(_damaged_pem(pem)), "sEcReT-NoT-a-KeY-3141"]:
        assert line not in output, f"key file content echoed\n{result}"
