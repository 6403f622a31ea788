"""Ed25519 provenance signatures: key files, the signed payload, signing and verification.

A signature binds one provenance entry (who did what) to one artifact version and its
content: the signed bytes are the canonical JSON of ``{artifact_id, artifact_type, version,
content_hash, actor, action}``, so a signature replayed onto another artifact, version or
content does not verify. Keys and signatures travel as text: ``ed25519:<base64>``.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from metaqore.core.canonical import canonical_bytes
from metaqore.exceptions import SignatureValidationError

#: Prefix of every key and signature text.
KEY_PREFIX = "ed25519:"

_PUBLIC_KEY_BYTES = 32
_SIGNATURE_BYTES = 64
# A PKCS8 PEM Ed25519 key is about 120 bytes; anything far larger is not a key file.
_MAX_KEY_FILE_BYTES = 64 * 1024
# Key ids become file names: no separators, no leading dot, nothing a shell would expand.
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _b64decode(text: str, expected_length: int) -> bytes:
    """Strict base64 of exactly ``expected_length`` bytes; ``ValueError`` otherwise."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("not base64") from None
    if len(raw) != expected_length:
        raise ValueError(f"expected {expected_length} bytes, got {len(raw)}")
    return raw


def public_key_text(public_key: Ed25519PublicKey) -> str:
    """``ed25519:<base64 of the raw 32-byte public key>``."""
    raw = public_key.public_bytes(
        encoding=serialization.Encoding.Raw, format=serialization.PublicFormat.Raw
    )
    return KEY_PREFIX + base64.b64encode(raw).decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    """The key of an ``ed25519:<base64>`` text (surrounding whitespace ignored).

    Raises :class:`SignatureValidationError` for anything else.
    """
    stripped = text.strip()
    if not stripped.startswith(KEY_PREFIX):
        raise SignatureValidationError(
            f"not an Ed25519 public key (expected '{KEY_PREFIX}<base64 of 32 bytes>')"
        )
    try:
        raw = _b64decode(stripped[len(KEY_PREFIX) :], _PUBLIC_KEY_BYTES)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise SignatureValidationError(f"not an Ed25519 public key ({exc})") from None


def generate_keypair() -> tuple[bytes, str]:
    """A new key pair: (PKCS8 PEM of the private key, ``ed25519:...`` public key text)."""
    private_key = Ed25519PrivateKey.generate()
    pem = private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    return pem, public_key_text(private_key.public_key())


def _write_new(path: Path, data: bytes, mode: int) -> None:
    # O_EXCL: never overwrite (or follow a planted symlink to) an existing file.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def write_keypair(directory: str | os.PathLike[str], key_id: str) -> tuple[Path, Path]:
    """Generate a key pair into ``directory``: ``<key_id>.key`` (0600) and ``<key_id>.pub``.

    Refuses to overwrite either file. Returns (private key path, public key path).
    """
    if not _KEY_ID.fullmatch(key_id):
        raise SignatureValidationError(
            f"invalid key id {key_id!r} (expected letters, digits, '.', '_' or '-', "
            "not starting with '.' or '-')"
        )
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    private_path = folder / f"{key_id}.key"
    public_path = folder / f"{key_id}.pub"
    for path in (private_path, public_path):
        if os.path.lexists(path):
            raise SignatureValidationError(f"{path}: already exists; refusing to overwrite it")
    pem, public_text = generate_keypair()
    try:
        _write_new(private_path, pem, 0o600)
    except FileExistsError:
        raise SignatureValidationError(
            f"{private_path}: already exists; refusing to overwrite it"
        ) from None
    try:
        _write_new(public_path, (public_text + "\n").encode("ascii"), 0o644)
    except FileExistsError:
        # A private key without its public half is useless and should not linger.
        private_path.unlink(missing_ok=True)
        raise SignatureValidationError(
            f"{public_path}: already exists; refusing to overwrite it"
        ) from None
    except BaseException:
        private_path.unlink(missing_ok=True)
        raise
    return private_path, public_path


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PKCS8 PEM file only its owner can read.

    Raises :class:`SignatureValidationError` (never quoting the file's content) when the
    file is missing, not a regular file, readable by group or others, or not such a key.
    """
    where = os.fspath(path)
    # O_NONBLOCK: opening a FIFO planted in place of the key must not hang the run.
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(where, flags)
    except OSError as exc:
        raise SignatureValidationError(
            f"{where}: cannot open private key ({exc.strerror})"
        ) from None
    try:
        # fstat on the open file: what is checked is what is read.
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SignatureValidationError(f"{where}: private key is not a regular file")
        if os.name != "nt" and info.st_mode & 0o077:
            raise SignatureValidationError(
                f"{where}: private key is accessible by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {where}"
            )
        if info.st_size > _MAX_KEY_FILE_BYTES:
            raise SignatureValidationError(f"{where}: too large to be a private key file")
        chunks: list[bytes] = []
        size = 0
        while size <= _MAX_KEY_FILE_BYTES:
            chunk = os.read(fd, _MAX_KEY_FILE_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    try:
        return _private_key_from_pem(data)
    except SignatureValidationError as exc:
        raise SignatureValidationError(f"{where}: {exc.message}") from None


def load_public_key(text_or_path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """A public key from ``ed25519:<base64>`` text, or from a file holding that text."""
    if isinstance(text_or_path, str) and text_or_path.strip().startswith(KEY_PREFIX):
        return parse_public_key(text_or_path)
    where = os.fspath(text_or_path)
    try:
        with open(where, "rb") as handle:
            data = handle.read(_MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise SignatureValidationError(
            f"{where}: not a public key text ('{KEY_PREFIX}<base64>') "
            f"nor a readable file ({exc.strerror})"
        ) from None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise SignatureValidationError(f"{where}: not an Ed25519 public key file") from None
    try:
        return parse_public_key(text)
    except SignatureValidationError as exc:
        raise SignatureValidationError(f"{where}: {exc.message}") from None


def signing_payload(
    *,
    artifact_id: str,
    artifact_type: str,
    version: int,
    content_hash: str,
    actor: str,
    action: str,
) -> bytes:
    """The bytes a provenance signature covers (canonical JSON, UTF-8).

    Raises ``TypeError`` for a non-``str`` field or a non-``int`` version, so that the
    signer and the verifier can never serialise the same entry differently.
    """
    fields = {
        "artifact_id": artifact_id,
        "artifact_type": artifact_type,
        "content_hash": content_hash,
        "actor": actor,
        "action": action,
    }
    for name, value in fields.items():
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    if not isinstance(version, int) or isinstance(version, bool):
        raise TypeError(f"version must be an integer, not {type(version).__name__}")
    return canonical_bytes({**fields, "version": version})


def _private_key_from_pem(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureValidationError("not an unencrypted PEM (PKCS8) Ed25519 private key")
    return key


def sign_provenance(
    private_key: Ed25519PrivateKey | bytes,
    *,
    artifact_id: str,
    artifact_type: str,
    version: int,
    content_hash: str,
    actor: str,
    action: str,
) -> str:
    """``ed25519:<base64 signature>`` of :func:`signing_payload` of the given fields.

    ``private_key`` is a key (see :func:`load_private_key`) or its PEM bytes.
    """
    if isinstance(private_key, bytes):
        private_key = _private_key_from_pem(private_key)
    if not isinstance(private_key, Ed25519PrivateKey):
        raise TypeError("private_key must be an Ed25519PrivateKey or its PEM bytes")
    payload = signing_payload(
        artifact_id=artifact_id,
        artifact_type=artifact_type,
        version=version,
        content_hash=content_hash,
        actor=actor,
        action=action,
    )
    return KEY_PREFIX + base64.b64encode(private_key.sign(payload)).decode("ascii")


def verify_signature(
    public_key_text: str | Ed25519PublicKey,
    signature: str,
    *,
    artifact_id: str,
    artifact_type: str,
    version: int,
    content_hash: str,
    actor: str,
    action: str,
) -> bool:
    """Whether ``signature`` is the key's signature of these fields.

    ``False`` for any malformed key, signature or field; never raises on bad input.
    """
    try:
        key = (
            public_key_text
            if isinstance(public_key_text, Ed25519PublicKey)
            else parse_public_key(public_key_text)
        )
        if not signature.startswith(KEY_PREFIX):
            return False
        raw = _b64decode(signature[len(KEY_PREFIX) :], _SIGNATURE_BYTES)
        payload = signing_payload(
            artifact_id=artifact_id,
            artifact_type=artifact_type,
            version=version,
            content_hash=content_hash,
            actor=actor,
            action=action,
        )
        key.verify(raw, payload)
    except (InvalidSignature, SignatureValidationError, ValueError, TypeError, AttributeError):
        return False
    return True


__all__ = [
    "KEY_PREFIX",
    "generate_keypair",
    "load_private_key",
    "load_public_key",
    "parse_public_key",
    "public_key_text",
    "sign_provenance",
    "signing_payload",
    "verify_signature",
    "write_keypair",
]
