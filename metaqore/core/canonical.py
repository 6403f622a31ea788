"""Canonical JSON and content hashes: the one definition every hash in MetaQore uses."""

from __future__ import annotations

import hashlib
import json
from typing import Any

HASH_PREFIX = "sha256:"

_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, non-ASCII kept as is, NaN/Infinity refused."""
    return _encoder.encode(value)


def canonical_bytes(value: Any) -> bytes:
    return _encoder.encode(value).encode("utf-8")


def sha256_text(text: str) -> str:
    """``sha256:<hex>`` of the UTF-8 bytes of ``text``."""
    return HASH_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_hash(data: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``data`` (an artifact's content hash)."""
    return HASH_PREFIX + hashlib.sha256(canonical_bytes(data)).hexdigest()


__all__ = ["HASH_PREFIX", "canonical_bytes", "canonical_json", "content_hash", "sha256_text"]
