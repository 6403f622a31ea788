"""Ed25519 provenance signatures: keys on disk, signing, verification and the gateway's vetoes."""

from __future__ import annotations

import base64
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from metaqore.config import MetaQoreConfig
from metaqore.core.canonical import canonical_json, content_hash
from metaqore.core.models import Provenance, VetoReason
from metaqore.core.security import (
    SecureGateway,
    generate_keypair,
    load_private_key,
    load_public_key,
    sign_provenance,
    signing_payload,
    verify_signature,
    write_keypair,
)
from metaqore.exceptions import ConfigurationError, SignatureValidationError

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")

FIELDS: dict[str, Any] = {
    "artifact_id": "art_0123456789ab",
    "artifact_type": "plan",
    "version": 2,
    "content_hash": content_hash({"steps": ["design", "build"]}),
    "actor": "planner",
    "action": "created",
}


def _pem_body(pem: bytes) -> list[str]:
    """The base64 lines of a PEM file: the key material itself."""
    return [line for line in pem.decode("ascii").splitlines() if not line.startswith("-----")]


def _flip_bit(signature: str) -> str:
    raw = bytearray(base64.b64decode(signature.removeprefix("ed25519:")))
    raw[10] ^= 0x01
    return "ed25519:" + base64.b64encode(bytes(raw)).decode("ascii")


@pytest.fixture(scope="module")
def keypair() -> tuple[bytes, str]:
    return generate_keypair()


# -- payload, signing, verification ----------------------------------------------------


def test_payload_is_the_canonical_json_of_the_six_fields() -> None:
    assert signing_payload(**FIELDS) == canonical_json(FIELDS).encode("utf-8")
    assert signing_payload(**FIELDS).startswith(b'{"action":"created","actor":"planner"')
    with pytest.raises(TypeError, match="version"):
        signing_payload(**{**FIELDS, "version": "2"})


def test_key_and_signature_texts(keypair: tuple[bytes, str]) -> None:
    pem, public_text = keypair
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_text.startswith("ed25519:")
    assert len(base64.b64decode(public_text.removeprefix("ed25519:"))) == 32
    signature = sign_provenance(pem, **FIELDS)
    assert signature.startswith("ed25519:")
    assert len(base64.b64decode(signature.removeprefix("ed25519:"))) == 64


def test_good_signature_verifies(keypair: tuple[bytes, str]) -> None:
    pem, public_text = keypair
    signature = sign_provenance(pem, **FIELDS)
    assert verify_signature(public_text, signature, **FIELDS) is True
    assert verify_signature(load_public_key(public_text), signature, **FIELDS) is True


def test_forged_signature_fails(keypair: tuple[bytes, str]) -> None:
    pem, public_text = keypair
    signature = sign_provenance(pem, **FIELDS)
    assert verify_signature(public_text, _flip_bit(signature), **FIELDS) is False


@pytest.mark.parametrize(
    "change",
    [
        {"artifact_id": "art_ffffffffffff"},
        {"content_hash": content_hash({"steps": ["design", "build", "ship"]})},
        {"version": 3},
        {"artifact_type": "code"},
        {"actor": "intruder"},
        {"action": "approved"},
    ],
)
def test_signature_replayed_onto_other_fields_fails(
    keypair: tuple[bytes, str], change: dict[str, Any]
) -> None:
    pem, public_text = keypair
    signature = sign_provenance(pem, **FIELDS)
    assert verify_signature(public_text, signature, **{**FIELDS, **change}) is False


def test_wrong_key_fails(keypair: tuple[bytes, str]) -> None:
    pem, _ = keypair
    _, other_public = generate_keypair()
    assert verify_signature(other_public, sign_provenance(pem, **FIELDS), **FIELDS) is False


@pytest.mark.parametrize(
    ("key", "signature", "fields"),
    [
        ("ed25519:not base64!", None, {}),
        ("ssh-ed25519 AAAA", None, {}),
        ("ed25519:" + base64.b64encode(b"short").decode(), None, {}),
        (None, "", {}),
        (None, "ed25519:", {}),
        (None, "ed25519:%%%", {}),
        (None, "rsa:" + base64.b64encode(b"x" * 64).decode(), {}),
        (None, "ed25519:" + base64.b64encode(b"x" * 63).decode(), {}),
        (None, None, {"version": "2"}),
        (None, None, {"version": True}),
        (None, None, {"actor": None}),
        (None, None, {"content_hash": 7}),
    ],
)
def test_malformed_input_is_false_never_an_error(
    keypair: tuple[bytes, str], key: str | None, signature: str | None, fields: dict[str, Any]
) -> None:
    pem, public_text = keypair
    good_signature = sign_provenance(pem, **FIELDS)
    assert (
        verify_signature(
            public_text if key is None else key,
            good_signature if signature is None else signature,
            **{**FIELDS, **fields},
        )
        is False
    )


def test_non_string_inputs_are_false() -> None:
    junk: Any = 12
    assert verify_signature(junk, junk, **FIELDS) is False


# -- key files -------------------------------------------------------------------------


@posix_only
def test_write_keypair_creates_an_owner_only_private_key(tmp_path: Path) -> None:
    private_path, public_path = write_keypair(tmp_path / "keys", "ci-bot")
    assert private_path == tmp_path / "keys" / "ci-bot.key"
    assert public_path == tmp_path / "keys" / "ci-bot.pub"
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    public_text = public_path.read_text()
    assert public_text.endswith("\n")
    assert public_text.startswith("ed25519:")

    key = load_private_key(private_path)
    signature = sign_provenance(key, **FIELDS)
    assert verify_signature(public_text.strip(), signature, **FIELDS)
    assert verify_signature(load_public_key(public_path), signature, **FIELDS)


def test_write_keypair_refuses_to_overwrite(tmp_path: Path) -> None:
    private_path, _ = write_keypair(tmp_path, "ci")
    before = private_path.read_bytes()
    with pytest.raises(SignatureValidationError, match="refusing to overwrite"):
        write_keypair(tmp_path, "ci")
    assert private_path.read_bytes() == before
    (tmp_path / "other.pub").write_text("mine\n")
    with pytest.raises(SignatureValidationError, match="refusing to overwrite"):
        write_keypair(tmp_path, "other")
    assert not (tmp_path / "other.key").exists()
    assert (tmp_path / "other.pub").read_text() == "mine\n"


@pytest.mark.parametrize("key_id", ["../escape", "a/b", ".hidden", "", "-rf"])
def test_write_keypair_rejects_key_ids_that_are_not_plain_names(
    tmp_path: Path, key_id: str
) -> None:
    with pytest.raises(SignatureValidationError, match="invalid key id"):
        write_keypair(tmp_path / "keys", key_id)
    assert not (tmp_path / "keys").exists() or not any((tmp_path / "keys").iterdir())


@posix_only
@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_private_key_readable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    private_path, _ = write_keypair(tmp_path, "ci")
    pem = private_path.read_bytes()
    os.chmod(private_path, mode)
    with pytest.raises(SignatureValidationError, match="group or others") as info:
        load_private_key(private_path)
    assert "chmod 600" in str(info.value)
    for line in _pem_body(pem):
        assert line not in str(info.value)
        assert line not in repr(info.value)


@posix_only
def test_private_key_must_be_a_regular_file(tmp_path: Path) -> None:
    directory = tmp_path / "ci.key"
    directory.mkdir(mode=0o700)
    with pytest.raises(SignatureValidationError, match="not a regular file"):
        load_private_key(directory)
    with pytest.raises(SignatureValidationError, match="cannot open"):
        load_private_key(tmp_path / "missing.key")
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo, 0o600)
    # Must refuse at once rather than wait for a writer.
    with pytest.raises(SignatureValidationError, match="not a regular file"):
        load_private_key(fifo)


def _owner_only(path: Path, data: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


@posix_only
def test_private_key_must_be_ed25519_and_errors_never_quote_it(
    tmp_path: Path, keypair: tuple[bytes, str]
) -> None:
    pem, _ = keypair
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    truncated = pem[: len(pem) // 2 + 20]
    candidates = {
        "ec.key": ec_pem,
        "truncated.key": truncated,
        "raw.key": base64.b64decode("".join(_pem_body(pem))),
        "public.key": keypair[1].encode(),
    }
    for name, data in candidates.items():
        path = _owner_only(tmp_path / name, data)
        with pytest.raises(SignatureValidationError, match="Ed25519 private key") as info:
            load_private_key(path)
        text = str(info.value)
        for line in _pem_body(ec_pem) + _pem_body(pem):
            assert line not in text
        assert keypair[1].removeprefix("ed25519:") not in text
        assert info.value.__cause__ is None


def test_load_public_key_rejects_non_keys(tmp_path: Path) -> None:
    with pytest.raises(SignatureValidationError):
        load_public_key("ed25519:AAAA")
    with pytest.raises(SignatureValidationError, match="nor a readable file"):
        load_public_key(str(tmp_path / "absent.pub"))
    garbage = tmp_path / "garbage.pub"
    garbage.write_text("hello\n")
    with pytest.raises(SignatureValidationError, match="not an Ed25519 public key"):
        load_public_key(garbage)


# -- the gateway's provenance check ----------------------------------------------------


class RecordingAuditor:
    def __init__(self) -> None:
        self.decisions: list[dict[str, Any]] = []
        self.vetoes: list[tuple[VetoReason, dict[str, Any] | None]] = []

    def log_routing_decision(self, payload: dict[str, Any]) -> None:
        self.decisions.append(payload)

    def log_veto_event(self, veto: VetoReason, context: dict[str, Any] | None = None) -> None:
        self.vetoes.append((veto, context))


ARTIFACT = {key: FIELDS[key] for key in ("artifact_id", "artifact_type", "version", "content_hash")}


def _gateway(public_text: str, **config: Any) -> tuple[SecureGateway, RecordingAuditor]:
    auditor = RecordingAuditor()
    gateway = SecureGateway(
        auditor=auditor,
        config=MetaQoreConfig(trusted_keys={"planner-key": public_text}, **config),
    )
    return gateway, auditor


def _entry(pem: bytes, *, key_id: str = "planner-key", **change: Any) -> dict[str, Any]:
    fields = {**FIELDS, **change}
    return {
        "actor": fields["actor"],
        "action": fields["action"],
        "key_id": key_id,
        "signature": sign_provenance(pem, **fields),
    }


def _verify(gateway: SecureGateway, provenance: list[Any], **change: Any) -> VetoReason | None:
    arguments: dict[str, Any] = {
        **ARTIFACT,
        "sensitivity": "sensitive",
        "created_by": "planner",
        "provenance": provenance,
        **change,
    }
    return gateway.verify_provenance(**arguments)


def test_valid_signature_passes(keypair: tuple[bytes, str]) -> None:
    pem, public_text = keypair
    gateway, auditor = _gateway(public_text, require_signatures=["sensitive"])
    assert _verify(gateway, [_entry(pem)]) is None
    # Provenance models work as well as mappings.
    model = Provenance(artifact_id=FIELDS["artifact_id"], **_entry(pem))
    assert _verify(gateway, [model]) is None
    assert auditor.vetoes == []


def test_forged_signature_is_vetoed(keypair: tuple[bytes, str]) -> None:
    pem, public_text = keypair
    gateway, auditor = _gateway(public_text)
    entry = _entry(pem)
    entry["signature"] = _flip_bit(entry["signature"])
    veto = _verify(gateway, [entry])
    assert veto is not None
    assert veto.policy_violated == "provenance"
    assert "signature does not verify" in veto.reason
    assert veto.details["key_id"] == "planner-key"
    assert veto.details["index"] == 0
    assert auditor.vetoes == [
        (
            veto,
            {
                "artifact_id": FIELDS["artifact_id"],
                "artifact_type": "plan",
                "version": 2,
                "created_by": "planner",
            },
        )
    ]


@pytest.mark.parametrize(
    "change",
    [{"artifact_id": "art_ffffffffffff"}, {"content_hash": content_hash({"steps": []})}],
)
def test_signature_replayed_onto_another_artifact_is_vetoed(
    keypair: tuple[bytes, str], change: dict[str, Any]
) -> None:
    pem, public_text = keypair
    gateway, _ = _gateway(public_text)
    veto = _verify(gateway, [_entry(pem)], **change)
    assert veto is not None
    assert "signature does not verify" in veto.reason


def test_signature_by_an_untrusted_key_under_a_trusted_id_is_vetoed(
    keypair: tuple[bytes, str],
) -> None:
    _, public_text = keypair
    other_pem, _ = generate_keypair()
    gateway, _ = _gateway(public_text)
    veto = _verify(gateway, [_entry(other_pem)])
    assert veto is not None
    assert "signature does not verify" in veto.reason


def test_unknown_key_id_is_vetoed(keypair: tuple[bytes, str]) -> None:
    pem, public_text = keypair
    gateway, auditor = _gateway(public_text)
    veto = _verify(gateway, [_entry(pem, key_id="someone-else")])
    assert veto is not None
    assert veto.policy_violated == "provenance"
    assert "unknown key id 'someone-else'" in veto.reason
    assert len(auditor.vetoes) == 1


def test_missing_required_signature_is_vetoed(keypair: tuple[bytes, str]) -> None:
    pem, public_text = keypair
    gateway, auditor = _gateway(public_text, require_signatures=["sensitive", "critical"])
    unsigned = {"actor": "planner", "action": "created", "key_id": None, "signature": None}
    veto = _verify(gateway, [unsigned])
    assert veto is not None
    assert veto.policy_violated == "provenance"
    assert "needs a valid signature by its creator 'planner'" in veto.reason
    # A valid signature by someone other than the creator does not count.
    reviewer = _entry(pem, actor="reviewer", action="approved")
    assert _verify(gateway, [reviewer]) is not None
    assert _verify(gateway, [reviewer], sensitivity="critical") is not None
    assert len(auditor.vetoes) == 3
    # Requirements are per sensitivity: public work needs none.
    assert _verify(gateway, [unsigned], sensitivity="public") is None


def test_absent_signature_passes_when_not_required(keypair: tuple[bytes, str]) -> None:
    _, public_text = keypair
    gateway, auditor = _gateway(public_text, require_signatures=["critical"])
    assert _verify(gateway, []) is None
    assert _verify(gateway, [{"actor": "planner", "action": "created"}]) is None
    assert auditor.vetoes == []


def test_untrusted_key_text_in_config_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"trusted_keys\['planner-key'\]"):
        _gateway("ed25519:AAAA")
