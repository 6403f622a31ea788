"""Structured logging (JSON lines or key=value) that never prints secrets or artifact content."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

ROOT_LOGGER = "metaqore"
REDACTED = "***"
_SECRET_KEYS = re.compile(
    r"(private_key|secret|password|passwd|token|api_key|apikey|authorization|data|content)$",
    re.IGNORECASE,
)
_PEM_PRIVATE = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S
)
_DSN_PASSWORD = re.compile(r"(://[^:/@\s]+:)([^@\s]+)(@)")
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact_text(text: str) -> str:
    """Mask private keys and passwords embedded in DSNs."""
    text = _PEM_PRIVATE.sub(REDACTED, text)
    return _DSN_PASSWORD.sub(rf"\g<1>{REDACTED}\g<3>", text)


def redact(value: Any, key: str = "") -> Any:
    """A copy of ``value`` with secret-named keys masked, at any depth."""
    if key and _SECRET_KEYS.search(key):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: redact(value, key)
        for key, value in vars(record).items()
        if key not in _STANDARD and not key.startswith("_")
    }


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
            **_extras(record),
        }
        if record.exc_info:
            entry["exc"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
            **_extras(record),
        }
        parts = []
        for key, value in fields.items():
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            if not text or any(ch in text for ch in ' ="'):
                text = json.dumps(text, ensure_ascii=False)
            parts.append(f"{key}={text}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + redact_text(self.formatException(record.exc_info))
        return line


def get_logger(name: str) -> logging.Logger:
    """A logger under the ``metaqore`` namespace."""
    if name != ROOT_LOGGER and not name.startswith(ROOT_LOGGER + "."):
        name = f"{ROOT_LOGGER}.{name}"
    return logging.getLogger(name)


def configure_logging(
    *, level: str | int = "WARNING", fmt: str = "kv", stream: TextIO | None = None
) -> logging.Logger:
    """Send ``metaqore`` logs to ``stream`` (stderr) as ``kv`` or ``json``; idempotent."""
    logger = logging.getLogger(ROOT_LOGGER)
    for handler in list(logger.handlers):
        if getattr(handler, "_metaqore", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else KeyValueFormatter())
    handler._metaqore = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level if isinstance(level, int) else level.upper())
    logger.propagate = False
    return logger


__all__ = ["configure_logging", "get_logger", "redact", "redact_text"]
