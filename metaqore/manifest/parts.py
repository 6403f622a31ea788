"""One large JSON Lines manifest read by several processes, a part each.

Validating a million artifact lines is most of a large run's time, and every line is
judged on its own, so a big file is cut at line boundaries into parts and each part
after the first is read by a forked worker while this process reads the first. A
worker reads the file this process opened (never its path again) and sends back its
records, problems and the SHA-256 of the bytes it read through a pipe; they are merged
in file order, so the outcome is the one a single process gives, and a part read other
than hashed refuses the manifest. A worker that fails for any reason (or does not
answer in time) is not trusted: its part is read again here.

Forking is used only where it is safe and cheap: on POSIX, with no other thread
running (a fork copies only the calling thread), and before the run holds much
memory (workers start as soon as the header line is read).
"""

from __future__ import annotations

import contextlib
import marshal
import operator
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from metaqore.core.records import ArtifactRecord
from metaqore.manifest.schema import TaskInfo

#: Files this large are read in parts when ``jobs`` is automatic. At 100,000 artifacts
#: (23 MB) two processes were about 10% faster; the gain shrinks with the file, while
#: starting a worker and sending its records back costs much the same.
PARALLEL_MIN_BYTES = 16 * 1024 * 1024
#: The first part's size relative to the others' (measured on 1,000,000 artifacts in two
#: parts: both processes then finish their reading at about the same time).
FIRST_SHARE = 1.3
#: Exit code of a worker that failed (anything but 0 is taken as failure).
_FAILED = 70
_READ = 1024 * 1024
_MAX_FD = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65536


class Readable(Protocol):
    def seek(self, offset: int, /) -> Any: ...

    def read(self, size: int, /) -> bytes: ...


#: A worker that has not sent its part this long after the gate finished its own (and at
#: least ten times as long as the gate took for it) is stopped, and its part read here.
COLLECT_MIN_TIMEOUT = 60.0


def auto_jobs() -> int:
    """Parts for a large file when the user did not say: one per CPU, at most two."""
    return max(1, min(2, os.cpu_count() or 1))


def can_fork() -> bool:
    return hasattr(os, "fork") and threading.active_count() == 1


def plan(stream: Readable, size: int, parts: int) -> list[int]:
    """Offsets where parts 2..``parts`` start: just after a newline, increasing, < size.

    The first part, read here, is :data:`FIRST_SHARE` times as large as the others: a
    worker also packs what it read, and this process waits for it before unpacking.
    Fewer parts (or none) when the file has too few lines to cut. The stream is left at 0.
    """
    starts: list[int] = []
    shares = FIRST_SHARE + parts - 1
    for number in range(1, parts):
        cut = int(size * (FIRST_SHARE + number - 1) / shares)
        offset = max(cut, starts[-1] if starts else 0)
        start = _next_line(stream, offset, size)
        if start is None or (starts and start <= starts[-1]):
            continue
        starts.append(start)
    stream.seek(0)
    return starts


def _next_line(stream: Readable, offset: int, size: int) -> int | None:
    """The offset just after the first newline at or after ``offset`` (None: none before EOF)."""
    stream.seek(offset)
    while offset < size:
        chunk = stream.read(_READ)
        if not chunk:
            return None
        found = chunk.find(b"\n")
        if found >= 0:
            start = offset + found + 1
            return start if start < size else None
        offset += len(chunk)
    return None


def lines_before(stream: Readable, offset: int) -> int:
    """How many newlines the first ``offset`` bytes hold."""
    stream.seek(0)
    count = 0
    left = offset
    while left > 0:
        chunk = stream.read(min(8 * _READ, left))
        if not chunk:
            break
        count += chunk.count(b"\n")
        left -= len(chunk)
    return count


@dataclass
class Worker:
    """A forked reader of the part [start, end) of a file."""

    pid: int
    fd: int
    start: int
    end: int


def fork(work: Callable[[], Any], start: int, end: int, keep: int) -> Worker | None:
    """Run ``work`` in a forked child that keeps file descriptor ``keep``; None if no
    child could be started.

    The child marshals what ``work`` returns (plain values only) into a pipe and ends
    with ``os._exit`` (no ``atexit`` handler, no flush of the parent's buffers, no heap
    teardown). marshal here reads only what this process's own child wrote, never input.
    """
    try:
        read_fd, write_fd = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return None
    if pid == 0:  # the child
        code = _FAILED
        try:
            # Only the pipe and the manifest are kept: the audit file's lock, a store's
            # socket or anything else this process holds must not outlive it in a worker.
            low = 3
            for kept in sorted({write_fd, keep}):
                os.closerange(low, kept)
                low = kept + 1
            os.closerange(low, _MAX_FD)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            blob = marshal.dumps(work())
            view = memoryview(blob)
            while view:
                view = view[os.write(write_fd, view) :]
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    return Worker(pid=pid, fd=read_fd, start=start, end=end)


def collect(worker: Worker, timeout: float) -> Any:
    """What the worker's ``work`` returned, or None if it failed in any way or did not
    finish within ``timeout`` seconds (it is then stopped)."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([worker.fd], [], [], left)[0]:
                with contextlib.suppress(OSError):
                    os.kill(worker.pid, signal.SIGKILL)
                chunks = []
                break
            chunk = os.read(worker.fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        chunks = []
    finally:
        os.close(worker.fd)
    _, status = os.waitpid(worker.pid, 0)
    if not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0 or not chunks:
        return None
    try:
        return marshal.loads(b"".join(chunks))
    except Exception:  # a truncated or garbled message: read the part here instead
        return None


class PartReader:
    """A file-like view of an open file read with ``os.pread``: the file's own offset,
    shared with the process that opened it, is never moved."""

    def __init__(self, fd: int, offset: int = 0) -> None:
        self.fd = fd
        self.offset = offset

    def seek(self, offset: int, /) -> None:
        self.offset = offset

    def read(self, size: int, /) -> bytes:
        data = os.pread(self.fd, size, self.offset)
        self.offset += len(data)
        return data


def abandon(workers: Iterable[Worker]) -> None:
    """Stop and reap workers whose parts are no longer wanted (or were never collected)."""
    for worker in workers:
        with contextlib.suppress(OSError):
            os.kill(worker.pid, signal.SIGKILL)
        os.close(worker.fd)
        os.waitpid(worker.pid, 0)


# -- records across the pipe ---------------------------------------------------------------
# A record is sent as a row of plain values (marshal: about twenty times faster to write
# than pickle, as fast to read) with its task info as a number into a table of the
# distinct ones. Project and source the parent knows; positions it numbers.
_ROW = operator.attrgetter(
    "id",
    "artifact_type",
    "agent",
    "content_hash",
    "declared_version",
    "iteration",
    "depends_on",
    "line",
    "sensitivity",
    "provenance",
    "data_keys",
    "data_json",
)
_TASK = operator.attrgetter("task")


def pack(records: list[ArtifactRecord]) -> bytes:
    tasks = list(map(_TASK, records))
    distinct = list(dict.fromkeys(tasks))
    number = {task: index for index, task in enumerate(distinct)}
    table = [None if task is None else tuple(task) for task in distinct]
    return marshal.dumps((list(map(_ROW, records)), table, list(map(number.__getitem__, tasks))))


def unpack(
    packed: bytes,
    *,
    project: str,
    source: str,
    first_position: int,
    shared: dict[Any, Any],
) -> list[ArtifactRecord]:
    """Records again; equal task infos are shared with this process's (``shared``)."""
    rows, table, numbers = marshal.loads(packed)
    infos: list[Any] = []
    for entry in table:
        info = None if entry is None else TaskInfo(*entry)
        infos.append(None if info is None else shared.setdefault(info, info))
    made: list[ArtifactRecord] = []
    append = made.append
    position = first_position
    for (
        artifact_id,
        artifact_type,
        agent,
        content_hash,
        declared_version,
        iteration,
        depends_on,
        line,
        sensitivity,
        provenance,
        data_keys,
        data_json,
    ), task in zip(rows, numbers, strict=True):
        append(
            ArtifactRecord(
                project=project,
                id=artifact_id,
                artifact_type=artifact_type,
                agent=agent,
                content_hash=content_hash,
                declared_version=declared_version,
                iteration=iteration,
                depends_on=depends_on,
                source=source,
                line=line,
                position=position,
                sensitivity=sensitivity,
                task=infos[task],
                provenance=provenance,
                data_keys=data_keys,
                data_json=data_json,
            )
        )
        position += 1
    return made


__all__ = [
    "COLLECT_MIN_TIMEOUT",
    "PARALLEL_MIN_BYTES",
    "PartReader",
    "Readable",
    "Worker",
    "abandon",
    "auto_jobs",
    "can_fork",
    "collect",
    "fork",
    "lines_before",
    "pack",
    "plan",
    "unpack",
]
