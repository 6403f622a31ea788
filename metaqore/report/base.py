"""The formatter interface every report format implements, and the atomic report writer."""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from metaqore.gate.verdict import Verdict


@dataclass(frozen=True, kw_only=True)
class ReportContext:
    """What a formatter may know besides the verdict: where, for whom, how loud.

    ``root`` is the repository root (finding paths in the verdict are already
    relative posix paths under it); ``tool_version`` falls back to the verdict's.
    """

    root: Path
    color: bool = False
    quiet: bool = False
    max_annotations: int = 10
    tool_version: str = ""


class Formatter(Protocol):
    """One output format: renders a verdict to text and never computes a finding."""

    name: str

    def render(self, verdict: Verdict, context: ReportContext) -> str: ...


def tool_version(verdict: Verdict, context: ReportContext) -> str:
    return context.tool_version or verdict.tool_version




def write_report(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; create missing parent directories.

    The text goes to a temporary file in the same directory, is flushed and fsynced,
    then renamed onto the final name: a reader (or a crash) sees the old report or the
    new one whole, never half of one. On failure the temporary file is removed.
    """
    target = Path(path)
    data = text.encode("utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            # Mode 0o666 so the umask decides, as for any file the user's tools write.
            descriptor = os.open(temporary, flags, 0o666)
        except FileExistsError:
            continue
        break
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(target.parent)
    return target


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX; directories can't be opened on Windows)."""
    if os.name != "posix":
        return
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(descriptor)
    finally:
        os.close(descriptor)


__all__ = ["Formatter", "ReportContext", "tool_version", "write_report"]
