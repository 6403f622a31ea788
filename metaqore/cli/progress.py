"""A progress line on stderr for long gate runs, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

_STAGES = {
    "loading": "reading manifests",
    "judging": "judging",
    "auditing": "writing the audit chain",
}


class TerminalProgress:
    """``metaqore: reading manifests — 350,000 artifacts``, redrawn at most 5 times a second.

    Nothing is drawn for runs that finish within ``delay`` seconds, and nothing at all
    when the stream is not a terminal (CI logs stay clean).
    """

    def __init__(self, stream: TextIO | None = None, *, delay: float = 1.0) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.started = time.monotonic()
        self.delay = delay
        self.last = 0.0
        self.drawn = False

    def __call__(self, stage: str, done: int, total: int | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.started < self.delay or now - self.last < 0.2:
            return
        self.last = now
        what = _STAGES.get(stage, stage)
        amount = f"{done:,}" if total is None else f"{done:,}/{total:,}"
        self.stream.write(f"\r\x1b[Kmetaqore: {what} — {amount} artifacts")
        self.stream.flush()
        self.drawn = True

    def clear(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False
