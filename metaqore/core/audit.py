"""The tamper-evident JSONL audit chain: appending to it, verifying it, reporting on it.

Every record is one line of canonical JSON with eight fields (:data:`RECORD_FIELDS`).
``hash`` is ``sha256:`` + the SHA-256 of the canonical JSON of the record without ``hash``;
``prev_hash`` is the previous line's ``hash`` (:data:`GENESIS_HASH` on line 1) and ``seq``
counts lines from 1. Editing, removing, inserting or reordering a line breaks the chain;
removing lines from the end is caught through the ``<file>.head`` sidecar, which holds the
seq and hash of the last record written.

Writers take an ``fcntl.flock`` on ``<file>.lock``, so several auditors and processes
appending to one file form a single chain. A writer killed mid-line leaves a torn tail;
the next writer cuts it off and records that in an ``audit_recovered`` record.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from metaqore.core.canonical import HASH_PREFIX, canonical_json
from metaqore.core.models import VetoReason
from metaqore.exceptions import AuditIntegrityError
from metaqore.text import one_line

#: ``prev_hash`` of the first record of every chain.
GENESIS_HASH: Final = HASH_PREFIX + "0" * 64

#: The fields of a record, in canonical (sorted) order.
RECORD_FIELDS: Final = (
    "event_type",
    "hash",
    "organization",
    "payload",
    "prev_hash",
    "run_id",
    "seq",
    "timestamp",
)

#: Payload keys ``log_event`` refuses at any depth (compared case-insensitively): the audit
#: file holds hashes, never artifact content or secrets.
FORBIDDEN_PAYLOAD_KEYS: Final = frozenset(
    {"data", "content", "private_key", "secret", "password", "api_key", "token"}
)

#: Event type of the record a writer adds after cutting off a torn tail.
AUDIT_RECOVERED: Final = "audit_recovered"

_FIELD_SET: Final = frozenset(RECORD_FIELDS)
# Any forbidden key shows up in canonical JSON as `"name":`; a miss proves the payload clean,
# a hit (possibly inside a string value) sends it to the exact walk.
_FORBIDDEN_KEY_TEXT: Final = re.compile(
    '"(?:' + "|".join(sorted(FORBIDDEN_PAYLOAD_KEYS)) + ')":', re.IGNORECASE
)
_HASH_TEXT: Final = re.compile(r"sha256:[0-9a-f]{64}\Z")
_CHUNK: Final = 1 << 16
_ANY_OF: Final = (list, tuple, set, frozenset)
_MISSING: Final = object()
_CACHE_LIMIT: Final = 4096
# Sidecar files are opened without following a symlink in their place (POSIX).
_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)


def _canonical_encoder() -> Callable[[Any, int], Sequence[str]]:
    """The C encoder ``canonical_json`` runs, built once instead of once per call.

    ``JSONEncoder.iterencode`` builds exactly this object (same separators, sorted keys,
    no ASCII escaping, NaN refused) on every call, which costs a third of the encoding time
    of a small payload. Circular-reference markers are left out: a stale marker left by a
    failed call would poison later ones; a circular payload ends in RecursionError.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    encode_string = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or encode_string is None:  # no C accelerator: take the slow road
        return lambda value, _level: (canonical_json(value),)
    encoder: Callable[[Any, int], Sequence[str]] = make(
        None, json.JSONEncoder().default, encode_string, None, ":", ",", True, False, False
    )
    return encoder


_encode_canonical: Final = _canonical_encoder()
_encode_string: Final[Callable[[str], str]] = json.encoder.encode_basestring


def new_run_id() -> str:
    """``run_`` followed by 12 random hex characters."""
    return f"run_{secrets.token_hex(6)}"


def _utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _record_problem(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """Parse one line (without its newline) and check its own hash.

    Returns ``(record, "")`` for a valid record, else ``(None, problem)``.
    """
    try:
        record = json.loads(raw)
    except UnicodeDecodeError:
        return None, "not valid UTF-8"
    except ValueError as exc:
        return None, f"not valid JSON ({exc})"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    if record.keys() != _FIELD_SET:
        missing = sorted(_FIELD_SET - record.keys())
        extra = sorted(record.keys() - _FIELD_SET)
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unexpected {', '.join(extra)}" if extra else "",
            )
            if part
        )
        return None, f"not an audit record ({detail})"
    if type(record["seq"]) is not int:
        return None, "seq is not an integer (record was edited)"
    stated = record["hash"]
    body = dict(record)
    del body["hash"]
    try:
        text = "".join(_encode_canonical(body, 0))
        expected = HASH_PREFIX + hashlib.sha256(text.encode()).hexdigest()
    except (ValueError, RecursionError):  # NaN, Infinity: never written by an auditor
        return None, "hash mismatch (record was edited)"
    if stated != expected:
        return None, "hash mismatch (record was edited)"
    # The hash covers the parsed record; the bytes must also be exactly the canonical line
    # the writer wrote. Otherwise a duplicate key (parsers disagree on which one wins), an
    # escape or a space could change what a reader sees while the hash still matches.
    event_type = record["event_type"]
    head = '{"event_type":' + (
        _encode_string(event_type)
        if isinstance(event_type, str)
        else "".join(_encode_canonical(event_type, 0))
    )
    if (head + f',"hash":"{stated}"' + text[len(head) :]).encode() != raw:
        return None, "not in canonical form (record was edited)"
    return record, ""


def _find_forbidden_key(value: Any) -> str | None:
    """Dotted path of the first forbidden key in ``value`` (any depth), or None."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                name = f"{where}.{key}" if where else str(key)
                if isinstance(key, str) and key.lower() in FORBIDDEN_PAYLOAD_KEYS:
                    return name
                if isinstance(child, dict | list | tuple):
                    stack.append((name, child))
        elif isinstance(item, list | tuple):
            for index, child in enumerate(item):
                if isinstance(child, dict | list | tuple):
                    stack.append((f"{where}[{index}]", child))
    return None


class ComplianceAuditor:
    """Appends governance events to a hash-chained JSONL audit file.

    The file is ``path`` when given, else ``<log_dir>/compliance_audit_<organization>.jsonl``
    (``log_dir`` is created). With neither, records are kept in memory only and nothing is
    written anywhere; the chain is built all the same and :meth:`get_audit_trail` reads it.

    Events are buffered and written in one ``write()`` per batch when ``flush_interval``
    events are waiting, on :meth:`flush`, :meth:`close` and when a ``with`` block ends.
    The record :meth:`log_event` returns is the auditor's own dict: ``seq``, ``timestamp``,
    ``prev_hash`` and ``hash`` are None until its batch is written, then filled in.
    ``timestamp`` is the moment the batch entered the chain (one per batch, taken under the
    file lock, so it follows chain order rather than call order).

    Every write holds ``fcntl.flock`` on ``<file>.lock`` (waiting at most ``lock_timeout``
    seconds) and continues from the file's last line, so auditors in several processes
    form one chain. :meth:`exclusive` holds the lock across a block so that a run's records
    are contiguous. Thread-safe within a process.
    """

    def __init__(
        self,
        *,
        organization: str = "default",
        log_dir: str | os.PathLike[str] | None = None,
        path: str | os.PathLike[str] | None = None,
        flush_interval: int = 10,
        run_id: str | None = None,
        lock_timeout: float = 30.0,
    ) -> None:
        if not isinstance(organization, str) or not organization:
            raise ValueError("organization must be a non-empty string")
        if type(flush_interval) is not int or flush_interval < 1:
            raise ValueError(f"flush_interval must be a positive integer, got {flush_interval!r}")
        if lock_timeout < 0:
            raise ValueError(f"lock_timeout must be >= 0 seconds, got {lock_timeout!r}")
        self.organization = organization
        self.flush_interval = flush_interval
        self.lock_timeout = float(lock_timeout)
        #: Stamped on every record logged from now on; the gate sets it per run.
        self.run_id: str = run_id if run_id is not None else new_run_id()

        self._path: Path | None
        if path is not None:
            self._path = Path(path)
        elif log_dir is not None:
            if (
                organization in {".", ".."}
                or "/" in organization
                or "\\" in organization
                or "\0" in organization
            ):
                raise ValueError(
                    f"organization {organization!r} cannot be part of a file name; "
                    "pass path= instead"
                )
            directory = Path(log_dir)
            directory.mkdir(parents=True, exist_ok=True)
            self._path = directory / f"compliance_audit_{organization}.jsonl"
        else:
            self._path = None

        self._org_json = canonical_json(organization)
        self._json_cache: dict[Any, str] = {}
        self._safe_keys: set[str] = set()
        # (record handed to the caller, event_type JSON, run_id JSON, payload JSON)
        self._buffer: list[tuple[dict[str, Any] | None, str, str, str]] = []
        self._mutex = threading.Lock()
        self._closed = False
        self._last_hash: str | None = None

        # Memory-only chain.
        self._memory_lines: list[str] = []
        self._memory_tail: tuple[int, str] = (0, GENESIS_HASH)

        # File state, valid while the file lock is held.
        self._lock_depth = 0
        self._lock_fd: int | None = None
        self._data_fd: int | None = None
        self._tail: tuple[int, str] | None = None
        self._size = 0
        self._recovery: dict[str, Any] | None = None
        self._head_dirty = False

    # -- public surface -------------------------------------------------------------

    @property
    def path(self) -> Path | None:
        """The audit file, or None for a memory-only auditor."""
        return self._path

    @property
    def head_hash(self) -> str | None:
        """Hash of the last record this auditor wrote (None before its first flush)."""
        return self._last_hash

    @property
    def closed(self) -> bool:
        return self._closed

    def log_event(self, event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Buffer one event; returns its record (chain fields filled in when written).

        The payload is serialised now, so later changes to it are not audited. Raises
        ``ValueError`` for a payload key named like content or a secret
        (:data:`FORBIDDEN_PAYLOAD_KEYS`, any depth), ``TypeError`` for a value JSON cannot
        hold.
        """
        if type(payload) is not dict:
            if not isinstance(payload, Mapping):
                raise TypeError(f"payload must be a mapping, got {type(payload).__name__}")
            payload = dict(payload)
        payload_json = "".join(_encode_canonical(payload, 0))
        # Fast path: a flat payload whose keys all passed before needs no further look.
        if not (
            payload.keys() <= self._safe_keys
            and payload_json.find("{", 1) == -1
            and "[" not in payload_json
        ):
            self._guard_payload(payload, payload_json)
        cache = self._json_cache
        event_json = cache.get(event_type)
        if event_json is None:
            if not isinstance(event_type, str) or not event_type:
                raise ValueError(f"event_type must be a non-empty string, got {event_type!r}")
            event_json = self._cache_json(event_type)
        run_id = self.run_id
        run_json = cache.get(run_id)
        if run_json is None:
            run_json = self._cache_json(run_id)
        record: dict[str, Any] = {
            "seq": None,
            "timestamp": None,
            "event_type": event_type,
            "organization": self.organization,
            "run_id": run_id,
            "payload": payload,
            "prev_hash": None,
            "hash": None,
        }
        with self._mutex:
            if self._closed:
                raise ValueError(f"{self!r} is closed")
            buffer = self._buffer
            buffer.append((record, event_json, run_json, payload_json))
            if len(buffer) >= self.flush_interval:
                self._flush_locked(write_head=self._lock_depth == 0)
        return record

    def log_encoded(self, event_type: str, payload_json: str) -> None:
        """Buffer an event whose payload the caller already encoded as canonical JSON.

        For trusted hot paths (the gate writes one ``artifact_declared`` per artifact):
        the caller guarantees ``payload_json == canonical_json(payload)`` and that its
        keys name no content or secret, so neither is checked here. Returns nothing.
        """
        cache = self._json_cache
        event_json = cache.get(event_type)
        if event_json is None:
            event_json = self._cache_json(event_type)
        run_json = cache.get(self.run_id)
        if run_json is None:
            run_json = self._cache_json(self.run_id)
        with self._mutex:
            if self._closed:
                raise ValueError(f"{self!r} is closed")
            buffer = self._buffer
            buffer.append((None, event_json, run_json, payload_json))
            if len(buffer) >= self.flush_interval:
                self._flush_locked(write_head=self._lock_depth == 0)

    def log_encoded_many(self, event_type: str, payloads_json: Iterable[str]) -> int:
        """:meth:`log_encoded` for many events of one type; returns how many were logged."""
        event_json = self._json_cache.get(event_type) or self._cache_json(event_type)
        run_json = self._json_cache.get(self.run_id) or self._cache_json(self.run_id)
        count = 0
        interval = self.flush_interval
        with self._mutex:
            if self._closed:
                raise ValueError(f"{self!r} is closed")
            buffer = self._buffer
            append = buffer.append
            for payload_json in payloads_json:
                append((None, event_json, run_json, payload_json))
                count += 1
                if len(buffer) >= interval:
                    self._flush_locked(write_head=self._lock_depth == 0)
                    buffer = self._buffer
                    append = buffer.append
        return count

    def log_routing_decision(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Audit a routing decision (event type ``routing_decision``)."""
        return self.log_event("routing_decision", payload)

    def log_veto_event(
        self,
        veto: VetoReason | Mapping[str, Any],
        context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Audit a veto: payload ``{"veto": <veto as JSON>, **context}``."""
        veto_json = veto.model_dump(mode="json") if isinstance(veto, VetoReason) else dict(veto)
        extra = dict(context or {})
        if "veto" in extra:
            raise ValueError("context must not contain a 'veto' key: it would hide the veto")
        return self.log_event("veto", {"veto": veto_json, **extra})

    def flush(self) -> None:
        """Write every buffered event (and the head sidecar) now."""
        with self._mutex:
            self._flush_locked(write_head=True)

    def close(self) -> None:
        """Flush and release the file lock. Idempotent; logging afterwards raises."""
        with self._mutex:
            if self._closed:
                return
            try:
                self._flush_locked(write_head=True)
            finally:
                self._closed = True
                if self._lock_depth:
                    self._lock_depth = 0
                    self._release_file_lock()

    def __enter__(self) -> ComplianceAuditor:
        if self._closed:
            raise ValueError(f"{self!r} is closed")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = str(self._path) if self._path is not None else "memory"
        return f"ComplianceAuditor(organization={self.organization!r}, {where})"

    @contextmanager
    def exclusive(self) -> Iterator[ComplianceAuditor]:
        """Hold the file lock for the whole block (re-entrant); flush when it ends.

        No other writer can append meanwhile, so the block's records are contiguous.
        Flushes inside the block reuse the lock and write the head sidecar only on
        :meth:`flush` and when the block ends.
        """
        with self._mutex:
            if self._closed:
                raise ValueError(f"{self!r} is closed")
            if self._path is not None and self._lock_depth == 0:
                self._acquire_file_lock()
            self._lock_depth += 1
        try:
            yield self
        finally:
            with self._mutex:
                if self._lock_depth == 1:
                    try:
                        self._flush_locked(write_head=True)
                    finally:
                        self._lock_depth = 0
                        self._release_file_lock()
                elif self._lock_depth > 1:
                    self._lock_depth -= 1

    def get_audit_trail(self, filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every record written so far (after a flush) that matches ``filters``.

        A filter key names a record field or, failing that, a payload key; the value must
        be equal, or one of the values of a list/tuple/set. ``since`` and ``until``
        (datetime or ISO 8601 string, inclusive) bound ``timestamp``. A file shared with
        other organizations yields their records too unless ``organization`` is filtered.
        """
        self.flush()
        if self._path is None:
            with self._mutex:
                lines = list(self._memory_lines)
            records: Iterator[dict[str, Any]] = (json.loads(line) for line in lines)
        else:
            if not self._path.exists():
                return []
            records = _iter_records(self._path)
        matches = _record_filter(filters)
        return [record for record in records if matches(record)]

    def get_compliance_report(self, organization: str | None = None) -> dict[str, Any]:
        """Counts by event type, provider and violated policy for ``organization``."""
        org = organization if organization is not None else self.organization
        return _build_report(org, self.get_audit_trail({"organization": org}))

    # -- internals ------------------------------------------------------------------

    def _cache_json(self, value: Any) -> str:
        if len(self._json_cache) >= _CACHE_LIMIT:
            self._json_cache.clear()
        encoded = canonical_json(value)
        self._json_cache[value] = encoded
        return encoded

    def _guard_payload(self, payload: dict[str, Any], payload_json: str) -> None:
        if _FORBIDDEN_KEY_TEXT.search(payload_json):
            where = _find_forbidden_key(payload)
            if where is not None:
                raise ValueError(
                    f"payload key {where!r} is not allowed in the audit log: it records "
                    "hashes, never artifact content or secrets"
                )
        if len(self._safe_keys) < _CACHE_LIMIT:
            self._safe_keys.update(key for key in payload if isinstance(key, str))

    def _chain(
        self, entries: Sequence[tuple[dict[str, Any] | None, str, str, str]], seq: int, prev: str
    ) -> tuple[list[str], int, str]:
        """Serialise ``entries`` as chained lines after (seq, prev); fills in the records.

        The line is built by concatenating pre-encoded canonical parts in sorted key order,
        which is exactly ``canonical_json(record)`` without encoding each record twice.
        """
        timestamp = _utc_now_iso()
        org = self._org_json
        sha256 = hashlib.sha256
        lines: list[str] = []
        append = lines.append
        for record, event_json, run_json, payload_json in entries:
            seq += 1
            head = '{"event_type":' + event_json + ","
            tail = (
                f'"organization":{org},"payload":{payload_json},"prev_hash":"{prev}",'
                f'"run_id":{run_json},"seq":{seq},"timestamp":"{timestamp}"}}'
            )
            digest = "sha256:" + sha256((head + tail).encode()).hexdigest()
            append(f'{head}"hash":"{digest}",{tail}\n')
            if record is not None:
                record["seq"] = seq
                record["timestamp"] = timestamp
                record["prev_hash"] = prev
                record["hash"] = digest
            prev = digest
        return lines, seq, prev

    def _recovery_entry(self, payload: dict[str, Any]) -> tuple[dict[str, Any], str, str, str]:
        record: dict[str, Any] = {
            "seq": None,
            "timestamp": None,
            "event_type": AUDIT_RECOVERED,
            "organization": self.organization,
            "run_id": self.run_id,
            "payload": payload,
            "prev_hash": None,
            "hash": None,
        }
        return (
            record,
            canonical_json(AUDIT_RECOVERED),
            canonical_json(self.run_id),
            canonical_json(payload),
        )

    def _flush_locked(self, *, write_head: bool) -> None:
        """Write the buffer; the caller holds ``self._mutex``."""
        if self._path is None:
            if self._buffer:
                seq, prev = self._memory_tail
                lines, seq, prev = self._chain(self._buffer, seq, prev)
                self._memory_lines.extend(lines)
                self._memory_tail = (seq, prev)
                self._last_hash = prev
                self._buffer = []
            return
        if self._lock_depth > 0:
            if self._buffer:
                self._write_buffer()
            if write_head and self._head_dirty:
                self._write_head()
            return
        if not self._buffer:
            return
        self._acquire_file_lock()
        try:
            self._write_buffer()
            self._write_head()
        finally:
            self._release_file_lock()

    def _write_buffer(self) -> None:
        """Append the buffer to the file; the file lock is held."""
        if self._tail is None:
            self._open_and_read_tail()
        assert self._tail is not None
        assert self._data_fd is not None
        entries = self._buffer
        if self._recovery is not None:
            entries = [self._recovery_entry(self._recovery), *entries]
        seq, prev = self._tail
        lines, new_seq, new_prev = self._chain(entries, seq, prev)
        data = "".join(lines).encode()
        fd = self._data_fd
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            # Leave the file as it was (a valid chain) and the events buffered.
            os.ftruncate(fd, self._size)
            for record, *_ in entries:
                if record is not None:
                    record["seq"] = record["timestamp"] = record["prev_hash"] = None
                    record["hash"] = None
            raise _cannot("append to the audit file", self._path, exc) from None
        self._size += len(data)
        self._tail = (new_seq, new_prev)
        self._last_hash = new_prev
        self._recovery = None
        self._buffer = []
        self._head_dirty = True

    def _acquire_file_lock(self) -> None:
        assert self._path is not None
        lock_path = _sidecar(self._path, ".lock")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | _NOFOLLOW, 0o644)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise _cannot("lock the audit file", lock_path, exc) from None
            raise AuditIntegrityError(
                f"audit lock file {lock_path} is a symbolic link; refusing to follow it "
                "(remove it: the lock file is created when needed)"
            ) from None
        deadline = time.monotonic() + self.lock_timeout
        # Short polls: a writer that flushes in a loop releases the lock only briefly.
        pause = 0.0005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    os.close(fd)
                    raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.close(fd)
                raise AuditIntegrityError(
                    f"audit file {self._path} is locked by another process "
                    f"(waited {self.lock_timeout:g}s for {lock_path})"
                )
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.005)
        self._lock_fd = fd

    def _release_file_lock(self) -> None:
        if self._data_fd is not None:
            os.close(self._data_fd)
            self._data_fd = None
        self._tail = None
        self._recovery = None
        if self._lock_fd is not None:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None

    def _open_and_read_tail(self) -> None:
        """Find where the chain ends; cut off a torn tail. The file lock is held."""
        assert self._path is not None
        try:
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        except OSError as exc:
            raise _cannot("open the audit file", self._path, exc) from None
        try:
            size = os.fstat(fd).st_size
            complete_end = size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                complete_end = _rfind_newline(fd, size) + 1
            seq, last_hash = 0, GENESIS_HASH
            if complete_end:
                start = _rfind_newline(fd, complete_end - 1) + 1
                raw = os.pread(fd, complete_end - 1 - start, start)
                record, problem = _record_problem(raw)
                if record is None:
                    line = _count_newlines(fd, start) + 1
                    raise AuditIntegrityError(
                        f"{self._path}: line {line} (the last complete line): {problem}; "
                        "refusing to extend a broken chain (run `metaqore audit verify`)",
                        line=line,
                    )
                seq, last_hash = record["seq"], record["hash"]
            self._check_head(seq, last_hash)
            recovery = None
            if complete_end < size:
                torn = hashlib.sha256()
                position = complete_end
                while position < size:
                    chunk = os.pread(fd, min(_CHUNK, size - position), position)
                    if not chunk:
                        break
                    torn.update(chunk)
                    position += len(chunk)
                os.ftruncate(fd, complete_end)
                recovery = {
                    "truncated_bytes": size - complete_end,
                    "truncated_sha256": HASH_PREFIX + torn.hexdigest(),
                }
        except BaseException:
            os.close(fd)
            raise
        self._data_fd = fd
        self._size = complete_end
        self._tail = (seq, last_hash)
        self._recovery = recovery

    def _check_head(self, seq: int, last_hash: str) -> None:
        assert self._path is not None
        head = _read_head(_sidecar(self._path, ".head"))
        if head is None:
            return
        head_seq, head_hash = head
        refuse = "; refusing to append (restore the file, or delete the .head file to start anew)"
        if head_seq > seq:
            raise AuditIntegrityError(
                f"{self._path} ends at seq {seq} but its head records seq {head_seq}: "
                f"lines were removed from the end{refuse}",
                line=seq + 1,
            )
        if head_seq == seq and head_hash != last_hash:
            raise AuditIntegrityError(
                f"{self._path}: the last record (seq {seq}) differs from its head: "
                f"the end of the chain was rewritten{refuse}",
                line=seq,
            )

    def _write_head(self) -> None:
        assert self._path is not None
        if self._tail is None:
            return
        seq, last_hash = self._tail
        head = _sidecar(self._path, ".head")
        # A fresh name, created exclusively: a file or symlink planted at a fixed temporary
        # name (say, by the repository under test) is never written through.
        temporary = _sidecar(self._path, f".head.{secrets.token_hex(6)}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o644)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                stream.write(canonical_json({"hash": last_hash, "seq": seq}) + "\n")
            os.replace(temporary, head)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        self._head_dirty = False


# -- reading and verifying ----------------------------------------------------------------


def _cannot(action: str, path: Path | None, error: OSError) -> AuditIntegrityError:
    """An I/O failure on the audit file in words (a usage problem, not a bug)."""
    reason = error.strerror or type(error).__name__
    return AuditIntegrityError(f"cannot {action} {path}: {reason}")


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _rfind_newline(fd: int, end: int) -> int:
    """Offset of the last ``\\n`` before ``end``, or -1."""
    position = end
    while position > 0:
        start = max(0, position - _CHUNK)
        chunk = os.pread(fd, position - start, start)
        index = chunk.rfind(b"\n")
        if index >= 0:
            return start + index
        position = start
    return -1


def _count_newlines(fd: int, end: int) -> int:
    count = 0
    position = 0
    while position < end:
        chunk = os.pread(fd, min(_CHUNK, end - position), position)
        if not chunk:
            break
        count += chunk.count(b"\n")
        position += len(chunk)
    return count


def _read_head(head_path: Path) -> tuple[int, str] | None:
    """``(seq, hash)`` from a head sidecar; None when there is none."""
    try:
        text = head_path.read_text("utf-8")
    except FileNotFoundError:
        return None
    try:
        head = json.loads(text)
        seq, head_hash = head["seq"], head["hash"]
    except (ValueError, TypeError, KeyError):
        head = seq = head_hash = None
    if type(seq) is not int or not isinstance(head_hash, str) or not _HASH_TEXT.match(head_hash):
        raise AuditIntegrityError(
            f'{head_path} is not a valid audit head (expected {{"seq": N, "hash": ...}})'
        )
    return seq, head_hash


def _iter_records(path: Path) -> Iterator[dict[str, Any]]:
    """Parsed records of ``path``, skipping a torn final line (hashes are not checked)."""
    with path.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            if not raw.endswith(b"\n"):
                return
            try:
                record = json.loads(raw)
            except ValueError as exc:
                raise AuditIntegrityError(
                    f"{path}: line {number}: not valid JSON ({exc})", line=number
                ) from exc
            if not isinstance(record, dict):
                raise AuditIntegrityError(f"{path}: line {number}: not a JSON object", line=number)
            yield record


def _as_utc_datetime(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _record_filter(filters: Mapping[str, Any] | None) -> Callable[[dict[str, Any]], bool]:
    """A predicate over records implementing the ``get_audit_trail`` filters."""
    if not filters:
        return lambda record: True
    wanted = dict(filters)
    since = wanted.pop("since", None)
    until = wanted.pop("until", None)
    lower = _as_utc_datetime(since) if since is not None else None
    upper = _as_utc_datetime(until) if until is not None else None

    def matches(record: dict[str, Any]) -> bool:
        payload = record.get("payload")
        for key, expected in wanted.items():
            if key in _FIELD_SET:
                actual = record.get(key, _MISSING)
            elif isinstance(payload, dict):
                actual = payload.get(key, _MISSING)
            else:
                actual = _MISSING
            if actual is _MISSING:
                return False
            if isinstance(expected, _ANY_OF):
                if actual not in expected:
                    return False
            elif actual != expected:
                return False
        if lower is not None or upper is not None:
            try:
                moment = _as_utc_datetime(record["timestamp"])
            except (KeyError, TypeError, ValueError):
                return False
            if lower is not None and moment < lower:
                return False
            if upper is not None and moment > upper:
                return False
        return True

    return matches


def _ordered_counts(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda item: (-item[1], item[0])))


def _build_report(organization: str, records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    by_event: Counter[str] = Counter()
    by_provider: Counter[str] = Counter()
    violations: Counter[str] = Counter()
    total = 0
    for record in records:
        if record.get("organization") != organization:
            continue
        total += 1
        by_event[str(record.get("event_type"))] += 1
        payload = record.get("payload")
        if not isinstance(payload, dict):
            continue
        provider = payload.get("provider")
        if provider is not None:
            by_provider[str(provider)] += 1
        veto = payload.get("veto")
        if isinstance(veto, dict) and veto.get("policy_violated") is not None:
            violations[str(veto["policy_violated"])] += 1
    return {
        "organization": organization,
        "total_events": total,
        "by_event": _ordered_counts(by_event),
        "by_provider": _ordered_counts(by_provider),
        "policy_violations": _ordered_counts(violations),
    }


def generate_compliance_report(
    organization: str = "default",
    log_dir: str | os.PathLike[str] | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """The compliance report of ``organization`` from its audit file.

    The file is ``path`` when given, else ``<log_dir or cwd>/compliance_audit_<org>.jsonl``;
    a missing file raises ``FileNotFoundError`` (a typo must not read as "0 events").
    """
    if path is not None:
        source = Path(path)
    else:
        source = Path(log_dir if log_dir is not None else Path.cwd())
        source = source / f"compliance_audit_{organization}.jsonl"
    if not source.is_file():
        raise FileNotFoundError(errno.ENOENT, "no audit log at this path", str(source))
    return _build_report(organization, _iter_records(source))


def format_compliance_report(report: Mapping[str, Any]) -> str:
    """The report as text: title, underline, total, then three count sections."""
    # Keys come from manifests (providers, policies): printed on one line each, escaped.
    title = one_line(f"Compliance Report :: {report.get('organization', 'default')}")
    lines = [title, "=" * len(title), f"Total Events: {report.get('total_events', 0)}"]
    sections = (
        ("Events by Type", "by_event"),
        ("Events by Provider", "by_provider"),
        ("Policy Violations", "policy_violations"),
    )
    for heading, key in sections:
        lines += ["", heading]
        counts: Mapping[str, int] = report.get(key) or {}
        ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
        lines += [f"  - {one_line(str(name))}: {count}" for name, count in ordered] or ["  (none)"]
    return "\n".join(lines)


@dataclass(frozen=True)
class AuditVerification:
    """Outcome of :func:`verify_audit_log`.

    ``records`` counts the valid records read (up to the first bad line); ``head_hash`` is
    the hash of the last valid one (None when there is none).
    """

    ok: bool
    records: int
    first_bad_line: int | None
    message: str
    head_hash: str | None


def verify_audit_log(
    path: str | os.PathLike[str],
    *,
    expect_head: str | None = None,
    allow_torn_tail: bool = False,
) -> AuditVerification:
    """Check the whole chain of ``path``; the result names the first bad line.

    Each line must be a JSON object with exactly the eight record fields whose hash
    matches its content, whose ``prev_hash`` is the previous line's hash (genesis on line 1)
    and whose ``seq`` is the previous one + 1. ``<path>.head``, when present, must be
    covered by the file (catches lines removed from the end); ``expect_head`` must be the
    last line's hash. A final line without a newline is bad unless ``allow_torn_tail``.
    A missing file raises ``FileNotFoundError``.
    """
    source = Path(path)
    head_path = _sidecar(source, ".head")
    # Read the head before the file: a writer updates it only after appending.
    try:
        head = _read_head(head_path)
    except AuditIntegrityError as exc:
        return AuditVerification(False, 0, None, str(exc), None)

    def bad(line: int, message: str) -> AuditVerification:
        return AuditVerification(False, records, line, message, prev if records else None)

    records = 0
    prev = GENESIS_HASH
    seq_prev = 0
    hash_at_head: str | None = None
    with source.open("rb") as stream:
        for number, raw in enumerate(stream, start=1):
            if not raw.endswith(b"\n"):
                if allow_torn_tail:
                    break
                return bad(
                    number,
                    f"line {number}: incomplete final line (no trailing newline: "
                    "a writer was interrupted)",
                )
            record, problem = _record_problem(raw[:-1])
            if record is None:
                return bad(number, f"line {number}: {problem}")
            if record["prev_hash"] != prev:
                if number == 1:
                    return bad(
                        1,
                        "line 1: prev_hash is not the genesis hash "
                        "(lines were removed from the start)",
                    )
                return bad(
                    number,
                    f"line {number}: prev_hash does not match line {number - 1} "
                    "(a line was removed, inserted or reordered)",
                )
            if record["seq"] != seq_prev + 1:
                return bad(
                    number,
                    f"line {number}: seq {record['seq']} follows {seq_prev} "
                    "(a line was removed, inserted or reordered)",
                )
            records += 1
            prev = record["hash"]
            seq_prev = record["seq"]
            if head is not None and seq_prev == head[0]:
                hash_at_head = prev

    last_hash = prev if records else None
    if head is not None:
        head_seq, head_hash = head
        if records < head_seq:
            return AuditVerification(
                False,
                records,
                records + 1,
                f"file ends at line {records} but its head records seq {head_seq}: "
                "lines were removed from the end",
                last_hash,
            )
        if head_seq > 0 and hash_at_head != head_hash:
            return AuditVerification(
                False,
                records,
                head_seq,
                f"line {head_seq}: hash differs from the one in {head_path.name} "
                "(the chain was rewritten)",
                last_hash,
            )
    if expect_head is not None and expect_head != (last_hash or GENESIS_HASH):
        return AuditVerification(
            False,
            records,
            max(records, 1),
            f"line {records}: last hash {last_hash} is not the expected head {expect_head}"
            if records
            else f"file has no records but head {expect_head} was expected",
            last_hash,
        )
    return AuditVerification(
        True, records, None, f"audit chain intact: {records} records", last_hash
    )


def verify_audit_log_or_raise(
    path: str | os.PathLike[str],
    *,
    expect_head: str | None = None,
    allow_torn_tail: bool = False,
) -> AuditVerification:
    """:func:`verify_audit_log`, raising ``AuditIntegrityError`` when the chain is broken."""
    result = verify_audit_log(path, expect_head=expect_head, allow_torn_tail=allow_torn_tail)
    if not result.ok:
        raise AuditIntegrityError(f"{path}: {result.message}", line=result.first_bad_line)
    return result


__all__ = [
    "AUDIT_RECOVERED",
    "FORBIDDEN_PAYLOAD_KEYS",
    "GENESIS_HASH",
    "RECORD_FIELDS",
    "AuditVerification",
    "ComplianceAuditor",
    "format_compliance_report",
    "generate_compliance_report",
    "new_run_id",
    "verify_audit_log",
    "verify_audit_log_or_raise",
]
