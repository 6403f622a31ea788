"""The SQLAlchemy store: SQLite (in memory or a file) and, with the same code, PostgreSQL.

DSNs: ``sqlite://`` (in memory, the default), ``sqlite:///path/to/store.db`` (a file, WAL
journal) and ``postgresql+psycopg://user:password@host/db`` (needs the ``postgres`` extra).
Only portable SQL is used; the few dialect specifics (upsert syntax, how a transaction takes
its write lock) are behind ``if self.dialect == ...``.

Every public method runs in one transaction of its own unless the calling thread is inside
:meth:`SQLiteBackend.transaction` or :meth:`SQLiteBackend.run_transaction`, whose
transaction it then joins. Every database failure leaves as a one-line
:class:`~metaqore.exceptions.StorageError` naming the DSN with its password masked.

How two gate runs on one store stay consistent. A gate run reads the stored history of its
projects, judges the manifests against it and, if it passes, writes its artifacts, all in one
:meth:`~SQLiteBackend.run_transaction` that takes its locks *before* the first read:

- SQLite: ``BEGIN IMMEDIATE`` takes the file's write lock (one writer per file; readers
  go on, WAL journal). A second run waits (``busy_timeout``) until the first commits, then
  reads what it wrote.
- PostgreSQL: one transaction-scoped advisory lock per project of the run, taken in sorted
  order (so two runs sharing projects cannot deadlock), keyed by the store's schema and the
  project id (stores in different schemas of one database never wait for each other). The
  engine runs at READ COMMITTED whatever the server's default, so every statement after the
  lock sees what the previous holder committed. At REPEATABLE READ or SERIALIZABLE the
  snapshot would be taken by the lock statement itself, before the other run's commit, and
  both runs could accept conflicting versions. Waits are bounded by ``lock_timeout``.

A run that waits longer than the backend's ``timeout`` gets a ``StorageError`` (exit 2 from
the CLI), never a hang; a run that fails or does not pass rolls back and leaves nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import math
import re
import sqlite3
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from itertools import islice
from json.encoder import encode_basestring as _text
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from metaqore.core.canonical import canonical_bytes, canonical_json, sha256_text
from metaqore.core.models import (
    Artifact,
    Checkpoint,
    Conflict,
    Project,
    Provenance,
    Task,
    TaskSensitivity,
    current_utc,
    new_id,
)
from metaqore.exceptions import NotFoundError, StorageError
from metaqore.logger import get_logger
from metaqore.storage import schema
from metaqore.storage.backend import (
    STORED_CONTENT_HASH_KEY,
    CheckpointInfo,
    RunRecord,
    RunTransaction,
    StorageBackend,
    StoredRecord,
)

#: Rows per ``executemany`` batch and per streamed fetch.
CHUNK_SIZE = 5_000
#: Project ids per ``IN (...)`` list (well under every database's bound-parameter limit).
_IDS_PER_QUERY = 500
#: ``Connection.info`` key telling the ``begin`` hook which BEGIN to emit on SQLite.
_BEGIN_KEY = "metaqore_begin"
#: Advisory lock name serialising schema creation/migration on PostgreSQL.
_SCHEMA_LOCK_NAME = "schema"
#: gzip level of checkpoint snapshots: level 1 is several times faster than 6 and, on the
#: repetitive JSON of a snapshot, only slightly larger.
_GZIP_LEVEL = 1
#: Snapshot text handed to the compressor at a time.
_SNAPSHOT_BATCH = 1 << 20

_SENSITIVITIES = frozenset(level.value for level in TaskSensitivity)
_log = get_logger("storage")
_T = TypeVar("_T")

_a = schema.artifacts
_p = schema.projects
_t = schema.tasks
_c = schema.conflicts
_k = schema.checkpoints
_r = schema.runs


# statement_timeout is lock_timeout plus this, so a lock wait is reported as a lock.
_STATEMENT_GRACE_MS = 1000

def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ``***``, safe for messages and logs."""
    try:
        url = make_url(dsn)
    except Exception:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)
    if "password" in url.query:
        url = url.update_query_dict({"password": "***"})
    return url.render_as_string(hide_password=True)


def advisory_lock_key(name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_xact_lock`` (same in every process)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def project_lock_key(project_id: str, namespace: str = "") -> int:
    """The advisory lock key of a project in the store whose schema is ``namespace``."""
    return advisory_lock_key(f"metaqore:{namespace}:project:{project_id}")


def _chunks(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _json(value: Any) -> str:
    # Empty containers are by far the most common payloads on the hot path.
    if not value:
        if isinstance(value, dict):
            return "{}"
        if isinstance(value, list | tuple):
            return "[]"
    return canonical_json(value)


def _json_list(text: str) -> list[Any]:
    if text == "[]":
        return []
    value = json.loads(text)
    return list(value)


def _json_dict(text: str) -> dict[str, Any]:
    if text == "{}":
        return {}
    value = json.loads(text)
    return dict(value)


#: Columns of the PostgreSQL bulk upsert, with their array element types.
_UNNEST_COLUMNS = (
    ("project_id", "varchar"),
    ("id", "varchar"),
    ("version", "integer"),
    ("artifact_type", "varchar"),
    ("iteration", "integer"),
    ("created_by", "varchar"),
    ("created_at", "timestamptz"),
    ("content_hash", "varchar"),
    ("depends_on", "text"),
    ("data", "text"),
    ("metadata", "text"),
    ("provenance", "text"),
    ("sensitivity", "varchar"),
)


def _unnest_insert_sql() -> str:
    names = [name for name, _ in _UNNEST_COLUMNS]
    # %b: binary parameters (psycopg dumps text arrays in text format with a regex per item).
    arrays = ", ".join(f"%b::{cast}[]" for _, cast in _UNNEST_COLUMNS)
    # Unqualified: the store's schema is the connection's search_path. A stored version
    # is history: never rewritten (see bulk_save_artifacts).
    return (
        f"INSERT INTO artifacts ({', '.join(names)}) SELECT * FROM unnest({arrays}) "
        "ON CONFLICT (project_id, id, version) DO NOTHING"
    )


_UNNEST_INSERT = _unnest_insert_sql()


def _utc(value: datetime) -> datetime:
    """What ``schema.UTCDateTime`` binds: naive values are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime) -> str:
    """A UTC timestamp as pydantic writes it in JSON mode (``...Z``)."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _iso_text(value: str) -> str:
    """``YYYY-MM-DD?HH:MM:SS.ffffff`` (UTC) as pydantic writes it: ``T``, no ``.000000``,
    ``Z``. Any other form is parsed (and must carry no other time zone than UTC)."""
    if len(value) == 26 and value[19] == ".":
        date_part, time_part = value[:10], value[11:]
        if time_part.endswith(".000000"):
            time_part = time_part[:-7]
        return f"{date_part}T{time_part}Z"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return _iso(parsed.astimezone(UTC))


def _sensitivity(value: Any) -> str | None:
    text = getattr(value, "value", value)
    if isinstance(text, str) and text.lower() in _SENSITIVITIES:
        return text.lower()
    return None


class SQLiteBackend(StorageBackend):
    """SQLAlchemy 2 store for ``sqlite://``, ``sqlite:///file.db`` and
    ``postgresql+psycopg://`` DSNs.

    ``timeout`` (seconds) bounds every wait: connecting, a locked SQLite file
    (``busy_timeout``), a PostgreSQL lock (``lock_timeout``) and another run holding the
    projects of :meth:`run_transaction`. ``compress_checkpoints`` is the default encoding of
    new checkpoint snapshots (gzip of canonical JSON); each row records its own encoding.
    """

    def __init__(
        self,
        dsn: str = "sqlite://",
        *,
        timeout: float = 30.0,
        compress_checkpoints: bool = True,
    ) -> None:
        self.dsn = dsn
        self.safe_dsn = mask_dsn(dsn)
        if not (isinstance(timeout, int | float) and math.isfinite(timeout) and timeout > 0):
            raise StorageError(f"store timeout must be a positive number of seconds: {timeout!r}")
        self._timeout = float(timeout)
        self.compress_checkpoints = compress_checkpoints
        self._password = ""
        self._closed = False
        self._opening = False
        # PostgreSQL: the store's schema, part of every advisory lock key.
        self._lock_namespace = ""
        #: The schema version the store had when opened (0: created by this open).
        self.opened_at_version: int | None = None
        self._local = threading.local()
        url = self._parse(dsn)
        self._password = url.password or ""
        self.in_memory = url.drivername.startswith("sqlite") and url.database in (
            None,
            "",
            ":memory:",
        )
        # One shared in-memory connection: a lock gives each transaction it alone.
        self._memory_lock: threading.Lock | None = threading.Lock() if self.in_memory else None
        self._engine = self._create_engine(url)
        self.dialect: str = self._engine.dialect.name
        self._build_statements()
        self._open()

    @property
    def timeout(self) -> float:
        """Seconds any wait may last (fixed when the backend is opened)."""
        return self._timeout

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, for diagnostics and benchmarks (it bypasses the store's
        own locking and error translation)."""
        return self._engine

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.safe_dsn!r})"

    # -- opening -------------------------------------------------------------------

    def _parse(self, dsn: str) -> URL:
        expected = (
            "expected sqlite://, sqlite:///path/to/store.db or "
            "postgresql+psycopg://user:password@host/database"
        )
        try:
            url = make_url(dsn)
        except ArgumentError:
            raise StorageError(f"invalid store DSN {self.safe_dsn!r} ({expected})") from None
        # Parsed by hand: asking SQLAlchemy for the driver loads the dialect, which fails
        # for schemes it does not know.
        backend, _, driver = url.drivername.partition("+")
        if backend == "sqlite":
            if driver not in ("", "pysqlite"):
                raise StorageError(
                    f"unsupported SQLite driver in store DSN {self.safe_dsn!r} ({expected})"
                )
            return url
        if backend in ("postgresql", "postgres"):
            if driver not in ("", "psycopg"):
                raise StorageError(
                    f"unsupported PostgreSQL driver {driver!r} in store DSN "
                    f"{self.safe_dsn!r} (MetaQore uses psycopg 3: postgresql+psycopg://...)"
                )
            if importlib.util.find_spec("psycopg") is None:
                raise StorageError(
                    "PostgreSQL stores need psycopg 3, which is not installed: "
                    "pip install 'metaqore[postgres]'"
                )
            return url.set(drivername="postgresql+psycopg")
        raise StorageError(f"unsupported store DSN {self.safe_dsn!r} ({expected})")

    def _create_engine(self, url: URL) -> Engine:
        timeout_ms = int(self.timeout * 1000)
        if url.drivername.startswith("sqlite"):
            if self.in_memory:
                engine = sa.create_engine(
                    "sqlite://",
                    poolclass=StaticPool,
                    connect_args={"check_same_thread": False},
                )
            else:
                path = Path(str(url.database)).expanduser()
                if not path.parent.is_dir():
                    raise StorageError(
                        f"cannot open store {self.safe_dsn}: directory {path.parent} does not exist"
                    )
                engine = sa.create_engine(
                    url,
                    connect_args={"timeout": self.timeout, "check_same_thread": False},
                )
            file_based = not self.in_memory

            def on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
                # Take BEGIN away from the sqlite3 module so that reads are transactional
                # and writers can ask for BEGIN IMMEDIATE (the `begin` hook below).
                dbapi_connection.isolation_level = None
                cursor = dbapi_connection.cursor()
                cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
                cursor.execute("PRAGMA foreign_keys = ON")
                if file_based:
                    cursor.execute("PRAGMA journal_mode = WAL")
                cursor.close()

            def on_begin(connection: Connection) -> None:
                connection.exec_driver_sql(connection.info.pop(_BEGIN_KEY, "BEGIN"))

            sa.event.listen(engine, "connect", on_sqlite_connect)
            sa.event.listen(engine, "begin", on_begin)
            return engine

        try:
            seconds = max(1, math.ceil(self.timeout))
            engine = sa.create_engine(
                url,
                connect_args={
                    "connect_timeout": seconds,
                    # A server that stops answering mid-run (a dead peer, a cut
                    # network) is given up on too, instead of hanging the gate.
                    "keepalives": 1,
                    "keepalives_idle": seconds,
                    "keepalives_interval": max(1, seconds // 3),
                    "keepalives_count": 3,
                    "tcp_user_timeout": timeout_ms,
                },
                pool_pre_ping=True,
                # Whatever the server's default: see the module docstring.
                isolation_level="READ COMMITTED",
            )
        except ImportError as exc:
            raise StorageError(
                f"PostgreSQL stores need psycopg 3 ({_first_line(exc)}): "
                "pip install 'metaqore[postgres]'"
            ) from None

        def on_pg_connect(dbapi_connection: Any, _record: Any) -> None:
            # Lock waits (advisory and row locks) give up instead of hanging.
            cursor = dbapi_connection.cursor()
            cursor.execute(f"SET lock_timeout = {timeout_ms}")
            # A statement the server stalls on ends too; a little later than a lock wait,
            # so that one is still reported as a lock.
            cursor.execute(f"SET statement_timeout = {timeout_ms + _STATEMENT_GRACE_MS}")
            cursor.close()
            dbapi_connection.commit()

        sa.event.listen(engine, "connect", on_pg_connect)
        return engine

    def _open(self) -> None:
        self._opening = True
        try:
            with self._session(write=False) as connection:
                if self.dialect == "postgresql":
                    self._lock_namespace = str(
                        connection.execute(sa.text("SELECT current_schema()")).scalar() or ""
                    )
                found = schema.read_schema_version(connection)
            self.opened_at_version = found
            if found != schema.SCHEMA_VERSION:
                with self._session(write=True) as connection:
                    if self.dialect == "postgresql":
                        connection.execute(
                            sa.text("SELECT pg_advisory_xact_lock(:key)"),
                            {"key": self._lock_key(_SCHEMA_LOCK_NAME)},
                        )
                    self.opened_at_version = schema.ensure_schema(connection)
                if 0 < (self.opened_at_version or 0) < schema.SCHEMA_VERSION:
                    # Said once, where an operator sees it: from now on only a MetaQore
                    # that knows this version can open the store.
                    _log.warning(
                        "upgraded store %s from schema version %s to %s; older MetaQore "
                        "versions can no longer open it",
                        self.safe_dsn,
                        self.opened_at_version,
                        schema.SCHEMA_VERSION,
                    )
        except StorageError as exc:
            self._closed = True
            self._engine.dispose()
            message = exc.message
            if self.safe_dsn not in message:
                message = f"cannot open store {self.safe_dsn}: {message}"
            raise StorageError(message) from None
        finally:
            self._opening = False

    def _lock_key(self, name: str) -> int:
        return advisory_lock_key(f"metaqore:{self._lock_namespace}:{name}")

    def _build_statements(self) -> None:
        a_key = ("project_id", "id", "version")
        a_rest = [c.name for c in _a.columns if c.name not in a_key]
        self._artifact_upsert = self._upsert(_a, a_key, a_rest)
        bulk = self._insert(_a)
        self._artifact_bulk_insert = self._counted(
            bulk.on_conflict_do_nothing(index_elements=[_a.c[name] for name in a_key])
        )
        self._project_upsert = self._upsert(
            _p, ("id",), [c.name for c in _p.columns if c.name != "id"]
        )
        ensure = self._insert(_p)
        self._project_ensure = ensure.on_conflict_do_update(
            index_elements=[_p.c.id],
            set_={
                "name": ensure.excluded.name,
                "organization": ensure.excluded.organization,
                "updated_at": ensure.excluded.updated_at,
            },
            where=sa.or_(
                _p.c.name != ensure.excluded.name,
                _p.c.organization != ensure.excluded.organization,
            ),
        )
        self._task_upsert = self._upsert(
            _t,
            ("project_id", "id"),
            [c.name for c in _t.columns if c.name not in ("project_id", "id")],
        )
        conflict = self._insert(_c)
        conflict_set: dict[str, Any] = {
            name: conflict.excluded[name]
            for name in ("artifact_id", "resolved", "created_at", "payload")
        }
        # A conflict saved without a project keeps the project it was attached to.
        conflict_set["project_id"] = sa.func.coalesce(conflict.excluded.project_id, _c.c.project_id)
        self._conflict_upsert = conflict.on_conflict_do_update(
            index_elements=[_c.c.id], set_=conflict_set
        )
        self._checkpoint_upsert = self._upsert(
            _k, ("id",), [c.name for c in _k.columns if c.name != "id"]
        )
        self._run_upsert = self._upsert(
            _r,
            ("project_id", "run_id"),
            [c.name for c in _r.columns if c.name not in ("project_id", "run_id")],
        )

    @staticmethod
    def _counted(
        statement: sqlite_dialect.Insert | pg_dialect.Insert,
    ) -> sqlite_dialect.Insert | pg_dialect.Insert:
        # Without this, SQLAlchemy reports -1 for a batched INSERT on psycopg.
        return statement.execution_options(preserve_rowcount=True)

    def _insert(self, table: sa.Table) -> sqlite_dialect.Insert | pg_dialect.Insert:
        if self.dialect == "postgresql":
            return pg_dialect.insert(table)
        return sqlite_dialect.insert(table)

    def _upsert(
        self, table: sa.Table, key: Sequence[str], rest: Sequence[str]
    ) -> sqlite_dialect.Insert | pg_dialect.Insert:
        statement = self._insert(table)
        return statement.on_conflict_do_update(
            index_elements=[table.c[name] for name in key],
            set_={name: statement.excluded[name] for name in rest},
        )

    # -- transactions and errors ---------------------------------------------------

    def _locked_message(self) -> str:
        return f"store {self.safe_dsn} is locked by another run for more than {self.timeout:g} s"

    def _translate(self, exc: SQLAlchemyError) -> StorageError:
        orig = getattr(exc, "orig", None)
        if isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig):
            return StorageError(self._locked_message())
        if getattr(orig, "sqlstate", None) == "55P03":  # lock_not_available
            return StorageError(self._locked_message())
        if getattr(orig, "sqlstate", None) == "57014":  # query_canceled: statement_timeout
            return StorageError(
                f"store {self.safe_dsn} did not answer within {self.timeout:g} s "
                "(store_timeout): nothing was written"
            )
        reason = _first_line(orig if orig is not None else exc)
        if self._password:
            reason = reason.replace(self._password, "***")
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return StorageError(f"lost connection to store {self.safe_dsn}: {reason}")
        if isinstance(exc, sa.exc.OperationalError) and self.dialect == "postgresql":
            verb = "open" if self._opening else "reach"
            return StorageError(f"cannot {verb} store {self.safe_dsn}: {reason}")
        return StorageError(f"store {self.safe_dsn}: {reason}")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            # The original stays reachable as __context__, without its traceback noise.
            raise self._translate(exc) from None

    @contextmanager
    def _decoding(self, what: str) -> Iterator[None]:
        """Turn a stored row that no longer reads back into a model into a StorageError."""
        try:
            yield
        except (ValidationError, ValueError, TypeError) as exc:
            raise StorageError(
                f"store {self.safe_dsn} holds a damaged {what}: {_first_line(exc)}"
            ) from None

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError(f"store {self.safe_dsn} is closed")

    def _active(self) -> Connection | None:
        connection: Connection | None = getattr(self._local, "connection", None)
        return connection

    def _acquire_memory_lock(self) -> bool:
        if self._memory_lock is None:
            return False
        if not self._memory_lock.acquire(timeout=self.timeout):
            raise StorageError(self._locked_message())
        return True

    def _release_memory_lock(self, acquired: bool) -> None:
        if acquired and self._memory_lock is not None:
            self._memory_lock.release()

    @contextmanager
    def _session(self, *, write: bool) -> Iterator[Connection]:
        """The calling thread's open transaction, or a new one for the block."""
        active = self._active()
        if active is not None:
            with self._errors():
                yield active
            return
        self._check_open()
        acquired = self._acquire_memory_lock()
        try:
            with self._errors(), self._engine.connect() as connection:
                if write and self.dialect == "sqlite":
                    # Take the write lock up front: a deferred transaction that later
                    # writes can fail at once with "database is locked" instead of waiting.
                    connection.info[_BEGIN_KEY] = "BEGIN IMMEDIATE"
                with connection.begin():
                    self._local.connection = connection
                    try:
                        yield connection
                    finally:
                        self._local.connection = None
        finally:
            self._release_memory_lock(acquired)

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[None]:
        with self._session(write=write):
            yield

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._engine.dispose()

    # -- projects --------------------------------------------------------------------

    @staticmethod
    def _project_params(project: Project) -> dict[str, Any]:
        dumped = project.model_dump(mode="json", include={"metadata"})
        return {
            "id": project.id,
            "name": project.name,
            "description": project.description,
            "organization": project.organization,
            "status": project.status.value,
            "created_at": project.created_at,
            "updated_at": project.updated_at,
            "metadata": _json(dumped["metadata"]),
        }

    def _project_from_row(self, row: sa.Row[Any]) -> Project:
        with self._decoding(f"project row {row.id!r}"):
            return Project.model_validate(
                {
                    "id": row.id,
                    "name": row.name,
                    "description": row.description,
                    "organization": row.organization,
                    "status": row.status,
                    "created_at": row.created_at,
                    "updated_at": row.updated_at,
                    "metadata": _json_dict(row.metadata),
                }
            )

    def save_project(self, project: Project) -> Project:
        with self._session(write=True) as connection:
            connection.execute(self._project_upsert, [self._project_params(project)])
        return project

    def get_project(self, project_id: str) -> Project | None:
        with self._session(write=False) as connection:
            row = connection.execute(sa.select(_p).where(_p.c.id == project_id)).first()
            return None if row is None else self._project_from_row(row)

    def list_projects(self) -> list[Project]:
        with self._session(write=False) as connection:
            rows = connection.execute(sa.select(_p).order_by(_p.c.created_at, _p.c.id))
            return [self._project_from_row(row) for row in rows]

    def delete_project(self, project_id: str) -> bool:
        with self._session(write=True) as connection:
            self._clear_project(connection, project_id)
            connection.execute(sa.delete(_k).where(_k.c.project_id == project_id))
            connection.execute(sa.delete(_r).where(_r.c.project_id == project_id))
            deleted = connection.execute(sa.delete(_p).where(_p.c.id == project_id))
            return deleted.rowcount > 0

    @staticmethod
    def _clear_project(connection: Connection, project_id: str) -> None:
        connection.execute(sa.delete(_c).where(_c.c.project_id == project_id))
        connection.execute(sa.delete(_a).where(_a.c.project_id == project_id))
        connection.execute(sa.delete(_t).where(_t.c.project_id == project_id))

    def replace_project_state(
        self,
        project: Project,
        artifacts: Iterable[Artifact],
        tasks: Iterable[Task],
        conflicts: Iterable[Conflict],
    ) -> None:
        with self._session(write=True) as connection:
            self._clear_project(connection, project.id)
            connection.execute(self._project_upsert, [self._project_params(project)])
            artifact_rows: list[dict[str, Any]] = []
            conflict_rows: list[dict[str, Any]] = []
            for artifact in artifacts:
                artifact_rows.append(self._artifact_params(artifact))
                conflict_rows.extend(
                    self._conflict_params(conflict, artifact.project_id)
                    for conflict in artifact.blocked_by
                )
            conflict_rows.extend(self._conflict_params(c, project.id) for c in conflicts)
            # An artifact's blocked_by and the conflict list name the same conflicts.
            unique_conflicts = list({row["id"]: row for row in conflict_rows}.values())
            for chunk in _chunks(artifact_rows, CHUNK_SIZE):
                connection.execute(self._artifact_upsert, chunk)
            for task_chunk in _chunks((self._task_params(t) for t in tasks), CHUNK_SIZE):
                connection.execute(self._task_upsert, task_chunk)
            for conflict_chunk in _chunks(unique_conflicts, CHUNK_SIZE):
                connection.execute(self._conflict_upsert, conflict_chunk)

    # -- artifacts -------------------------------------------------------------------

    @staticmethod
    def _artifact_params(artifact: Artifact) -> dict[str, Any]:
        dumped = artifact.model_dump(
            mode="json", include={"data", "metadata", "provenance", "depends_on"}
        )
        metadata: dict[str, Any] = dumped["metadata"]
        stored_hash = metadata.pop(STORED_CONTENT_HASH_KEY, None)
        data_json: str | None
        if stored_hash is not None and not artifact.data:
            data_json, content_hash = None, str(stored_hash)
        else:
            data_json = _json(dumped["data"])
            content_hash = sha256_text(data_json)
        return {
            "project_id": artifact.project_id,
            "id": artifact.id,
            "version": artifact.version,
            "artifact_type": artifact.artifact_type,
            "iteration": artifact.iteration,
            "created_by": artifact.created_by,
            "created_at": artifact.created_at,
            "content_hash": content_hash,
            "depends_on": _json(dumped["depends_on"]),
            "data": data_json,
            "metadata": _json(metadata),
            "provenance": _json(dumped["provenance"]),
            "sensitivity": _sensitivity(metadata.get("sensitivity")),
        }

    def _artifact_from_row(self, row: sa.Row[Any], blocked_by: list[Conflict]) -> Artifact:
        with self._decoding(f"artifact row {row.project_id}/{row.id} v{row.version}"):
            metadata = _json_dict(row.metadata)
            # The column holds the effective sensitivity (bulk rows may carry it only there):
            # it is what the model-level convention, metadata["sensitivity"], must say.
            if row.sensitivity is not None and (
                _sensitivity(metadata.get("sensitivity")) != row.sensitivity
            ):
                metadata["sensitivity"] = row.sensitivity
            values: dict[str, Any] = {
                "id": row.id,
                "project_id": row.project_id,
                "artifact_type": row.artifact_type,
                "version": row.version,
                "iteration": row.iteration,
                "created_by": row.created_by,
                "created_at": row.created_at,
                "depends_on": _json_list(row.depends_on),
                "metadata": metadata,
                "provenance": _json_list(row.provenance),
                "blocked_by": blocked_by,
            }
            if row.data is None:
                values["data"] = {}
                metadata[STORED_CONTENT_HASH_KEY] = row.content_hash
            else:
                values["data"] = _json_dict(row.data)
                # The model checks the stated hash against the data: a damaged row fails.
                values["content_hash"] = row.content_hash
            return Artifact.model_validate(values)

    def _conflict_from_payload(self, payload: str) -> Conflict:
        with self._decoding("conflict row"):
            return Conflict.model_validate_json(payload)

    @staticmethod
    def _conflict_params(conflict: Conflict, project_id: str | None) -> dict[str, Any]:
        return {
            "id": conflict.id,
            "project_id": conflict.project_id or project_id,
            "artifact_id": conflict.artifact_id,
            "resolved": conflict.resolved,
            "created_at": conflict.created_at,
            "payload": conflict.model_dump_json(),
        }

    def _blocked_by(
        self, connection: Connection, project_id: str, artifact_id: str | None = None
    ) -> dict[str, list[Conflict]]:
        query = sa.select(_c.c.artifact_id, _c.c.payload).where(_c.c.project_id == project_id)
        if artifact_id is not None:
            query = query.where(_c.c.artifact_id == artifact_id)
        grouped: dict[str, list[Conflict]] = {}
        for row in connection.execute(query.order_by(_c.c.created_at, _c.c.id)):
            grouped.setdefault(row.artifact_id, []).append(self._conflict_from_payload(row.payload))
        return grouped

    def save_artifact(self, artifact: Artifact) -> Artifact:
        with self._session(write=True) as connection:
            connection.execute(self._artifact_upsert, [self._artifact_params(artifact)])
            if artifact.blocked_by:
                connection.execute(
                    self._conflict_upsert,
                    [self._conflict_params(c, artifact.project_id) for c in artifact.blocked_by],
                )
        return artifact

    def _artifact_project(self, connection: Connection, artifact_id: str) -> str | None:
        project_id: str | None = connection.execute(
            sa.select(_a.c.project_id)
            .where(_a.c.id == artifact_id)
            .order_by(_a.c.created_at.desc(), _a.c.version.desc())
            .limit(1)
        ).scalar_one_or_none()
        return project_id

    def get_artifact(
        self, artifact_id: str, *, project_id: str | None = None, version: int | None = None
    ) -> Artifact | None:
        with self._session(write=False) as connection:
            if project_id is None:
                project_id = self._artifact_project(connection, artifact_id)
                if project_id is None:
                    return None
            query = sa.select(_a).where(_a.c.project_id == project_id, _a.c.id == artifact_id)
            if version is not None:
                query = query.where(_a.c.version == version)
            row = connection.execute(query.order_by(_a.c.version.desc()).limit(1)).first()
            if row is None:
                return None
            blocked = self._blocked_by(connection, project_id, artifact_id)
            return self._artifact_from_row(row, blocked.get(artifact_id, []))

    def list_artifacts(self, project_id: str) -> list[Artifact]:
        with self._session(write=False) as connection:
            blocked = self._blocked_by(connection, project_id)
            rows = connection.execute(
                sa.select(_a)
                .where(_a.c.project_id == project_id)
                .order_by(_a.c.version, _a.c.created_at, _a.c.id)
            )
            return [self._artifact_from_row(row, blocked.get(row.id, [])) for row in rows]

    def delete_artifact(self, artifact_id: str, *, project_id: str | None = None) -> int:
        with self._session(write=True) as connection:
            if project_id is None:
                projects = (
                    connection.execute(
                        sa.select(_a.c.project_id).where(_a.c.id == artifact_id).distinct()
                    )
                    .scalars()
                    .all()
                )
                if not projects:
                    return 0
                if len(projects) > 1:
                    raise StorageError(
                        f"artifact id {artifact_id!r} exists in several projects "
                        f"({', '.join(sorted(projects))}); pass project_id"
                    )
                project_id = projects[0]
            deleted = connection.execute(
                sa.delete(_a).where(_a.c.project_id == project_id, _a.c.id == artifact_id)
            ).rowcount
            connection.execute(
                sa.delete(_c).where(_c.c.project_id == project_id, _c.c.artifact_id == artifact_id)
            )
            return int(deleted)

    def get_sensitivities(
        self, artifact_ids: Iterable[str], *, project_id: str
    ) -> dict[str, str | None]:
        ids = sorted(set(artifact_ids))
        found: dict[str, tuple[int, str | None]] = {}
        with self._session(write=False) as connection:
            for chunk in _chunks(ids, _IDS_PER_QUERY):
                rows = connection.execute(
                    sa.select(_a.c.id, _a.c.version, _a.c.sensitivity).where(
                        _a.c.project_id == project_id, _a.c.id.in_(chunk)
                    )
                )
                for row in rows:
                    if row.id not in found or row.version > found[row.id][0]:
                        found[row.id] = (row.version, row.sensitivity)
        return {artifact_id: value for artifact_id, (_, value) in found.items()}

    # -- tasks -----------------------------------------------------------------------

    @staticmethod
    def _task_params(task: Task) -> dict[str, Any]:
        dumped = task.model_dump(mode="json", include={"metadata", "depends_on"})
        return {
            "project_id": task.project_id,
            "id": task.id,
            "title": task.title,
            "status": task.status.value,
            "assigned_to": task.assigned_to,
            "depends_on": _json(dumped["depends_on"]),
            "created_at": task.created_at,
            "updated_at": task.updated_at,
            "completed_at": task.completed_at,
            "metadata": _json(dumped["metadata"]),
        }

    def _task_from_row(self, row: sa.Row[Any]) -> Task:
        with self._decoding(f"task row {row.project_id}/{row.id}"):
            return Task.model_validate(
                {
                    "id": row.id,
                    "project_id": row.project_id,
                    "title": row.title,
                    "status": row.status,
                    "assigned_to": row.assigned_to,
                    "depends_on": _json_list(row.depends_on),
                    "created_at": row.created_at,
                    "updated_at": row.updated_at,
                    "completed_at": row.completed_at,
                    "metadata": _json_dict(row.metadata),
                }
            )

    def save_task(self, task: Task) -> Task:
        with self._session(write=True) as connection:
            connection.execute(self._task_upsert, [self._task_params(task)])
        return task

    def get_task(self, task_id: str, *, project_id: str | None = None) -> Task | None:
        with self._session(write=False) as connection:
            query = sa.select(_t).where(_t.c.id == task_id)
            if project_id is not None:
                query = query.where(_t.c.project_id == project_id)
            row = connection.execute(query.order_by(_t.c.created_at.desc()).limit(1)).first()
            return None if row is None else self._task_from_row(row)

    def list_tasks(self, project_id: str) -> list[Task]:
        with self._session(write=False) as connection:
            rows = connection.execute(
                sa.select(_t)
                .where(_t.c.project_id == project_id)
                .order_by(_t.c.created_at, _t.c.id)
            )
            return [self._task_from_row(row) for row in rows]

    def delete_task(self, task_id: str, *, project_id: str | None = None) -> bool:
        with self._session(write=True) as connection:
            statement = sa.delete(_t).where(_t.c.id == task_id)
            if project_id is None:
                count = connection.execute(
                    sa.select(sa.func.count()).select_from(_t).where(_t.c.id == task_id)
                ).scalar_one()
                if count > 1:
                    raise StorageError(
                        f"task id {task_id!r} exists in several projects; pass project_id"
                    )
            else:
                statement = statement.where(_t.c.project_id == project_id)
            return connection.execute(statement).rowcount > 0

    # -- conflicts -------------------------------------------------------------------

    def save_conflicts(self, conflicts: Iterable[Conflict]) -> list[Conflict]:
        saved = list(conflicts)
        if not saved:
            return saved
        with self._session(write=True) as connection:
            for chunk in _chunks((self._conflict_params(c, None) for c in saved), CHUNK_SIZE):
                connection.execute(self._conflict_upsert, chunk)
        return saved

    def update_conflict(self, conflict: Conflict) -> Conflict:
        with self._session(write=True) as connection:
            connection.execute(self._conflict_upsert, [self._conflict_params(conflict, None)])
        return conflict

    def get_conflict(self, conflict_id: str) -> Conflict | None:
        with self._session(write=False) as connection:
            payload = connection.execute(
                sa.select(_c.c.payload).where(_c.c.id == conflict_id)
            ).scalar_one_or_none()
            return None if payload is None else self._conflict_from_payload(payload)

    def list_conflicts(self, project_id: str) -> list[Conflict]:
        with self._session(write=False) as connection:
            payloads = connection.execute(
                sa.select(_c.c.payload)
                .where(_c.c.project_id == project_id)
                .order_by(_c.c.created_at, _c.c.id)
            ).scalars()
            return [self._conflict_from_payload(payload) for payload in payloads]

    # -- checkpoints -----------------------------------------------------------------

    def _checkpoint_params(self, checkpoint: Checkpoint, compress: bool | None) -> dict[str, Any]:
        compressed = self.compress_checkpoints if compress is None else compress
        snapshot = checkpoint.model_dump(mode="json", include={"snapshot"})["snapshot"]
        raw = canonical_bytes(snapshot)

        def count(key: str) -> int | None:
            items = snapshot.get(key)
            return len(items) if isinstance(items, list) else None

        return {
            "id": checkpoint.id,
            "project_id": checkpoint.project_id,
            "label": checkpoint.label,
            "created_at": checkpoint.created_at,
            "compressed": compressed,
            "snapshot": gzip.compress(raw, compresslevel=_GZIP_LEVEL, mtime=0)
            if compressed
            else raw,
            "artifact_count": count("artifacts"),
            "task_count": count("tasks"),
        }

    # Snapshots straight from the rows: the JSON of each entry is assembled from the
    # stored canonical JSON columns, with keys in sorted order, instead of building and
    # dumping a model per artifact (several seconds per 100,000 artifacts).

    def _snapshot_pieces(
        self, connection: Connection, project_id: str, counts: list[int]
    ) -> Iterator[str] | None:
        """The canonical JSON text of the project's snapshot in pieces (``None`` if the
        project does not exist); ``counts`` receives the artifact and task counts."""
        row = connection.execute(sa.select(_p).where(_p.c.id == project_id)).first()
        if row is None:
            return None
        project = self._project_from_row(row).model_dump(
            mode="json", exclude={"artifacts", "tasks"}
        )
        conflicts = [
            (artifact_id, canonical_json(json.loads(payload)))
            for artifact_id, payload in connection.execute(
                sa.select(_c.c.artifact_id, _c.c.payload)
                .where(_c.c.project_id == project_id)
                .order_by(_c.c.created_at, _c.c.id)
            )
        ]
        blocked: dict[str, list[str]] = {}
        for artifact_id, text in conflicts:
            blocked.setdefault(artifact_id, []).append(text)
        tasks = [
            canonical_json(self._task_from_row(task).model_dump(mode="json"))
            for task in connection.execute(
                sa.select(_t)
                .where(_t.c.project_id == project_id)
                .order_by(_t.c.created_at, _t.c.id)
            )
        ]
        counts[:] = [0, len(tasks)]

        def pieces() -> Iterator[str]:
            yield '{"artifacts":['
            rows = connection.execute(
                sa.select(*(self._iso_column(c) if c is _a.c.created_at else c for c in _a.c))
                .where(_a.c.project_id == project_id)
                .order_by(_a.c.version, _a.c.created_at, _a.c.id)
                .execution_options(yield_per=CHUNK_SIZE)
            )
            entry = self._artifact_snapshot_json
            first = True
            try:
                for artifact in rows:
                    text = entry(artifact, blocked)
                    yield text if first else "," + text
                    first = False
                    counts[0] += 1
            finally:
                rows.close()  # a server-side cursor on PostgreSQL
            yield '],"conflicts":[' + ",".join(text for _, text in conflicts) + "]"
            yield ',"project":' + canonical_json(project)
            yield ',"tasks":[' + ",".join(tasks) + "]}"

        return pieces()

    def _iso_column(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        """A timestamp column read as ``YYYY-MM-DD?HH:MM:SS.ffffff`` text in UTC (no
        datetime object per row; :func:`_iso_text` finishes it)."""
        if self.dialect == "postgresql":
            return sa.func.to_char(
                sa.func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US'
            ).label(column.key)
        # SQLite holds UTC timestamps as text already (see schema.UTCDateTime).
        return sa.type_coerce(column, sa.String()).label(column.key)

    def _artifact_snapshot_json(self, row: Sequence[Any], blocked: dict[str, list[str]]) -> str:
        """One artifact's entry: ``Artifact.model_dump(mode="json")`` without the computed
        fields, as :meth:`_artifact_from_row` would load it, in canonical JSON."""
        (
            project_id,
            artifact_id,
            version,
            artifact_type,
            iteration,
            created_by,
            created_at,
            content_hash,
            depends_on,
            data,
            metadata,
            provenance,
            sensitivity,
        ) = row
        try:
            if data is None or sensitivity is not None:
                values = json.loads(metadata)
                stated = values.get("sensitivity")
                changed = False
                if (
                    sensitivity is not None
                    and stated != sensitivity
                    and (_sensitivity(stated) != sensitivity)
                ):
                    values["sensitivity"] = sensitivity
                    changed = True
                if data is None:
                    values[STORED_CONTENT_HASH_KEY] = content_hash
                    changed = True
                if changed:
                    metadata = _json(values)
            if data is None:
                data = "{}"
            elif sha256_text(data) != content_hash:
                raise ValueError(f"content_hash {content_hash} does not match the stored data")
            if provenance != "[]":
                # Rare (signed artifacts): validated and completed like the model does.
                provenance = _json(
                    [
                        Provenance.model_validate(entry).model_dump(mode="json")
                        for entry in _json_list(provenance)
                    ]
                )
            created = _iso_text(created_at)
        except (ValidationError, ValueError, TypeError, AttributeError) as exc:
            raise StorageError(
                f"store {self.safe_dsn} holds a damaged artifact row "
                f"{project_id}/{artifact_id} v{version}: {_first_line(exc)}"
            ) from None
        conflicts = blocked.get(artifact_id)
        return (
            f'{{"artifact_type":{_text(artifact_type)},'
            f'"blocked_by":[{",".join(conflicts) if conflicts else ""}],'
            f'"created_at":"{created}","created_by":{_text(created_by)},'
            f'"data":{data},"depends_on":{depends_on},"id":{_text(artifact_id)},'
            f'"iteration":{"null" if iteration is None else iteration},'
            f'"metadata":{metadata},"project_id":{_text(project_id)},'
            f'"provenance":{provenance},"version":{version}}}'
        )

    def _snapshot_bytes(
        self, connection: Connection, project_id: str, *, compress: bool, counts: list[int]
    ) -> bytes | None:
        pieces = self._snapshot_pieces(connection, project_id, counts)
        if pieces is None:
            return None
        if not compress:
            return "".join(pieces).encode("utf-8")
        # Compressed as it is built: only the compressed snapshot is ever held whole.
        packer = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31)  # 31: gzip container
        out: list[bytes] = []
        batch: list[str] = []
        size = 0
        for piece in pieces:
            batch.append(piece)
            size += len(piece)
            if size >= _SNAPSHOT_BATCH:
                out.append(packer.compress("".join(batch).encode("utf-8")))
                batch, size = [], 0
        out.append(packer.compress("".join(batch).encode("utf-8")))
        out.append(packer.flush())
        return b"".join(out)

    def project_snapshot(self, project_id: str) -> bytes | None:
        with self._session(write=False) as connection:
            return self._snapshot_bytes(connection, project_id, compress=False, counts=[])

    def _checkpoint_project(
        self,
        connection: Connection,
        project_id: str,
        label: str,
        *,
        compress: bool | None,
        keep: int,
        protect: Iterable[str],
    ) -> CheckpointInfo:
        compressed = self.compress_checkpoints if compress is None else compress
        counts: list[int] = []
        raw = self._snapshot_bytes(connection, project_id, compress=compressed, counts=counts)
        if raw is None:
            raise NotFoundError(f"project '{project_id}' not found")
        info = CheckpointInfo(
            id=new_id("chk"),
            project_id=project_id,
            label=label,
            created_at=current_utc(),
            artifacts=counts[0],
            tasks=counts[1],
            compressed=compressed,
            size=len(raw),
        )
        connection.execute(
            sa.insert(_k),
            {
                "id": info.id,
                "project_id": project_id,
                "label": label,
                "created_at": info.created_at,
                "compressed": compressed,
                "snapshot": raw,
                "artifact_count": info.artifacts,
                "task_count": info.tasks,
            },
        )
        if keep > 0:
            self._prune_checkpoints(connection, project_id, keep, {info.id, *protect})
        return info

    @staticmethod
    def _prune_checkpoints(
        connection: Connection, project_id: str, keep: int, protect: set[str]
    ) -> None:
        ids = (
            connection.execute(
                sa.select(_k.c.id)
                .where(_k.c.project_id == project_id)
                .order_by(_k.c.created_at.desc(), _k.c.id.desc())
            )
            .scalars()
            .all()
        )
        doomed = [checkpoint_id for checkpoint_id in ids[keep:] if checkpoint_id not in protect]
        for chunk in _chunks(doomed, _IDS_PER_QUERY):
            connection.execute(sa.delete(_k).where(_k.c.id.in_(chunk)))

    def checkpoint_project(
        self,
        project_id: str,
        label: str,
        *,
        compress: bool | None = None,
        keep: int = 0,
        protect: Iterable[str] = (),
    ) -> CheckpointInfo:
        with self._session(write=True) as connection:
            return self._checkpoint_project(
                connection, project_id, label, compress=compress, keep=keep, protect=protect
            )

    def list_checkpoint_info(self, project_id: str) -> list[CheckpointInfo]:
        with self._session(write=False) as connection:
            rows = connection.execute(
                sa.select(
                    _k.c.id,
                    _k.c.project_id,
                    _k.c.label,
                    _k.c.created_at,
                    _k.c.artifact_count,
                    _k.c.task_count,
                    _k.c.compressed,
                    sa.func.length(_k.c.snapshot),
                )
                .where(_k.c.project_id == project_id)
                .order_by(_k.c.created_at, _k.c.id)
            )
            return [
                CheckpointInfo(
                    row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), int(row[7])
                )
                for row in rows
            ]

    def _checkpoint_from_row(self, row: sa.Row[Any]) -> Checkpoint:
        raw = bytes(row.snapshot)
        try:
            if row.compressed:
                raw = gzip.decompress(raw)
            snapshot = json.loads(raw.decode("utf-8"))
        except (OSError, EOFError, ValueError) as exc:
            raise StorageError(
                f"store {self.safe_dsn}: checkpoint {row.id} has an unreadable snapshot "
                f"({_first_line(exc)})"
            ) from None
        with self._decoding(f"checkpoint row {row.id!r}"):
            return Checkpoint.model_validate(
                {
                    "id": row.id,
                    "project_id": row.project_id,
                    "label": row.label,
                    "created_at": row.created_at,
                    "snapshot": snapshot,
                }
            )

    def _save_checkpoint(
        self, connection: Connection, checkpoint: Checkpoint, compress: bool | None
    ) -> Checkpoint:
        connection.execute(self._checkpoint_upsert, [self._checkpoint_params(checkpoint, compress)])
        return checkpoint

    def _list_checkpoints(self, connection: Connection, project_id: str) -> list[Checkpoint]:
        rows = connection.execute(
            sa.select(_k).where(_k.c.project_id == project_id).order_by(_k.c.created_at, _k.c.id)
        )
        return [self._checkpoint_from_row(row) for row in rows]

    @staticmethod
    def _delete_checkpoint(connection: Connection, checkpoint_id: str) -> bool:
        return connection.execute(sa.delete(_k).where(_k.c.id == checkpoint_id)).rowcount > 0

    def save_checkpoint(
        self, checkpoint: Checkpoint, *, compress: bool | None = None
    ) -> Checkpoint:
        with self._session(write=True) as connection:
            return self._save_checkpoint(connection, checkpoint, compress)

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        with self._session(write=False) as connection:
            row = connection.execute(sa.select(_k).where(_k.c.id == checkpoint_id)).first()
            return None if row is None else self._checkpoint_from_row(row)

    def list_checkpoints(self, project_id: str) -> list[Checkpoint]:
        with self._session(write=False) as connection:
            return self._list_checkpoints(connection, project_id)

    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        with self._session(write=True) as connection:
            return self._delete_checkpoint(connection, checkpoint_id)

    # -- gate runs -------------------------------------------------------------------

    def _record_run(self, connection: Connection, run: RunRecord) -> None:
        connection.execute(self._run_upsert, [run._asdict()])

    def record_run(self, run: RunRecord) -> None:
        with self._session(write=True) as connection:
            self._record_run(connection, run)

    def list_runs(self, project_id: str) -> list[RunRecord]:
        with self._session(write=False) as connection:
            rows = connection.execute(
                sa.select(*(_r.c[name] for name in RunRecord._fields))
                .where(_r.c.project_id == project_id)
                .order_by(_r.c.created_at, _r.c.run_id)
            )
            return [RunRecord(*row) for row in rows]

    # -- the gate's hot path ---------------------------------------------------------

    @staticmethod
    def _bulk_params(row: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return {
                "project_id": row["project_id"],
                "id": row["id"],
                "version": row["version"],
                "artifact_type": row["artifact_type"],
                "iteration": row.get("iteration"),
                "created_by": row["created_by"],
                "created_at": row["created_at"],
                "content_hash": row["content_hash"],
                "depends_on": _json(list(row.get("depends_on") or ())),
                "data": row.get("data_json"),
                "metadata": _json(row.get("metadata") or {}),
                "provenance": _json(list(row.get("provenance") or ())),
                "sensitivity": _sensitivity(row.get("sensitivity")),
            }
        except KeyError as exc:
            raise ValueError(f"bulk artifact row lacks the key {exc.args[0]!r}") from None

    def _bulk_save_artifacts(
        self, connection: Connection, rows: Iterable[Mapping[str, Any]]
    ) -> int:
        written = 0
        for chunk in _chunks(map(self._bulk_params, rows), CHUNK_SIZE):
            if self.dialect == "postgresql":
                written += self._unnest_insert(connection, chunk)
            else:
                written += max(connection.execute(self._artifact_bulk_insert, chunk).rowcount, 0)
        return written

    def _unnest_insert(self, connection: Connection, chunk: list[dict[str, Any]]) -> int:
        """PostgreSQL: one ``INSERT ... SELECT FROM unnest(arrays)`` per chunk.

        An ``executemany`` costs psycopg a statement per row (pipelined, but still about
        50 µs of client time each); one array per column costs one statement per chunk.
        """
        # One row per key, the first (as SQLite's row-by-row DO NOTHING keeps it).
        firsts: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
        for row in chunk:
            firsts.setdefault((row["project_id"], row["id"], row["version"]), row)
        unique = list(firsts.values())
        arrays = []
        for name, _cast in _UNNEST_COLUMNS:
            if name == "created_at":
                arrays.append([_utc(row[name]) for row in unique])
            else:
                arrays.append([row[name] for row in unique])
        result = connection.exec_driver_sql(_UNNEST_INSERT, tuple(arrays))
        return max(result.rowcount, 0)

    def bulk_save_artifacts(self, rows: Iterable[Mapping[str, Any]]) -> int:
        with self._session(write=True) as connection:
            return self._bulk_save_artifacts(connection, rows)

    def _ensure_projects(
        self, connection: Connection, projects: Iterable[Mapping[str, Any]]
    ) -> set[str]:
        now = current_utc()
        # One row per id (the last wins): an upsert may not touch a row twice.
        wanted = {
            str(row["id"]): (
                row.get("name") or str(row["id"]),
                row.get("organization") or "default",
            )
            for row in projects
        }
        stored: dict[str, tuple[str, str]] = {}
        for ids in _chunks(sorted(wanted), _IDS_PER_QUERY):
            rows = connection.execute(
                sa.select(_p.c.id, _p.c.name, _p.c.organization).where(_p.c.id.in_(ids))
            )
            stored.update((row.id, (row.name, row.organization)) for row in rows)
        # Read first rather than RETURNING from the upsert: SQLite has RETURNING only
        # since 3.35.
        changed = {pid for pid, values in wanted.items() if stored.get(pid) != values}
        params = (
            {
                "id": pid,
                "name": wanted[pid][0],
                "description": None,
                "organization": wanted[pid][1],
                "status": "initialized",
                "created_at": now,
                "updated_at": now,
                "metadata": "{}",
            }
            for pid in sorted(changed)
        )
        for chunk in _chunks(params, CHUNK_SIZE):
            connection.execute(self._project_ensure, chunk)
        return changed

    def ensure_projects(self, projects: Iterable[Mapping[str, Any]]) -> int:
        return len(self.upsert_projects(projects))

    def upsert_projects(self, projects: Iterable[Mapping[str, Any]]) -> set[str]:
        with self._session(write=True) as connection:
            return self._ensure_projects(connection, projects)

    def _project_order(self) -> sa.ColumnElement[str]:
        # Python's (code point) order on every dialect, so that chunked queries stay sorted.
        if self.dialect == "postgresql":
            return _a.c.project_id.collate("C")
        return _a.c.project_id

    def _stream_records(
        self, connection: Connection, project_ids: Sequence[str]
    ) -> Iterator[StoredRecord]:
        columns = (
            _a.c.project_id,
            _a.c.id,
            _a.c.artifact_type,
            _a.c.version,
            _a.c.iteration,
            _a.c.created_by,
            _a.c.content_hash,
            _a.c.depends_on,
            _a.c.sensitivity,
            _a.c.created_at,
        )
        with self._errors():
            for chunk in _chunks(project_ids, _IDS_PER_QUERY):
                query = (
                    sa.select(*columns)
                    .where(_a.c.project_id.in_(chunk))
                    .order_by(self._project_order(), _a.c.version, _a.c.created_at, _a.c.id)
                    .execution_options(yield_per=CHUNK_SIZE)
                )
                for row in connection.execute(query):
                    depends = row[7]
                    yield StoredRecord(
                        row[0],
                        row[1],
                        row[2],
                        row[3],
                        row[4],
                        row[5],
                        row[6],
                        () if depends == "[]" else tuple(json.loads(depends)),
                        row[8],
                        row[9],
                    )

    def _stream_own(self, project_ids: Sequence[str]) -> Iterator[StoredRecord]:
        with self._errors(), self._engine.connect() as connection, connection.begin():
            yield from self._stream_records(connection, project_ids)

    def iter_artifact_records(self, project_ids: Iterable[str]) -> Iterator[StoredRecord]:
        ids = sorted(set(project_ids))
        active = self._active()
        if active is not None:
            return self._stream_records(active, ids)
        self._check_open()
        if self.in_memory:
            # The in-memory store has one connection: read it all rather than hold it
            # between the caller's steps.
            with self._session(write=False) as connection:
                return iter(list(self._stream_records(connection, ids)))
        return self._stream_own(ids)

    @contextmanager
    def run_transaction(self, project_ids: Iterable[str]) -> Iterator[RunTransaction]:
        ids = sorted({str(project_id) for project_id in project_ids})
        if self._active() is not None:
            raise StorageError("run_transaction cannot be nested inside another transaction")
        self._check_open()
        run = self._begin_run(ids)
        self._local.connection = run.connection
        try:
            yield run
        finally:
            run.close()

    def _lock(self, connection: Connection, project_ids: Iterable[str]) -> None:
        if self.dialect != "postgresql":
            return  # a SQLite write transaction already excludes every other writer
        # Sorted order: two runs sharing projects never deadlock each other.
        for project_id in sorted(set(project_ids)):
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"),
                {"key": project_lock_key(project_id, self._lock_namespace)},
            )

    def lock_projects(self, project_ids: Iterable[str]) -> None:
        active = self._active()
        if active is None:
            raise StorageError("lock_projects needs an open transaction (use transaction())")
        with self._errors():
            self._lock(active, project_ids)

    def _begin_run(self, project_ids: Sequence[str]) -> _SQLRunTransaction:
        acquired = self._acquire_memory_lock()
        try:
            with self._errors():
                connection = self._engine.connect()
                try:
                    if self.dialect == "sqlite":
                        connection.info[_BEGIN_KEY] = "BEGIN IMMEDIATE"
                    transaction = connection.begin()
                    self._lock(connection, project_ids)
                except BaseException:
                    connection.close()
                    raise
        except BaseException:
            self._release_memory_lock(acquired)
            raise
        return _SQLRunTransaction(self, connection, transaction, memory_lock=acquired)


class _SQLRunTransaction(RunTransaction):
    def __init__(
        self,
        backend: SQLiteBackend,
        connection: Connection,
        transaction: sa.RootTransaction,
        *,
        memory_lock: bool,
    ) -> None:
        self._backend = backend
        self.connection = connection
        self._transaction = transaction
        self._memory_lock = memory_lock
        self._owner = threading.get_ident()
        self.finished = False

    def _open_connection(self) -> Connection:
        if self.finished:
            raise StorageError("this run transaction is already committed or rolled back")
        return self.connection

    def _call(self, operation: Callable[[Connection], _T]) -> _T:
        connection = self._open_connection()
        with self._backend._errors():
            return operation(connection)

    def iter_artifact_records(self, project_ids: Iterable[str]) -> Iterator[StoredRecord]:
        return self._backend._stream_records(self._open_connection(), sorted(set(project_ids)))

    def bulk_save_artifacts(self, rows: Iterable[Mapping[str, Any]]) -> int:
        return self._call(lambda connection: self._backend._bulk_save_artifacts(connection, rows))

    def ensure_projects(self, projects: Iterable[Mapping[str, Any]]) -> int:
        return len(self.upsert_projects(projects))

    def upsert_projects(self, projects: Iterable[Mapping[str, Any]]) -> set[str]:
        return self._call(lambda connection: self._backend._ensure_projects(connection, projects))

    def checkpoint_project(
        self,
        project_id: str,
        label: str,
        *,
        compress: bool | None = None,
        keep: int = 0,
        protect: Iterable[str] = (),
    ) -> CheckpointInfo:
        return self._call(
            lambda connection: self._backend._checkpoint_project(
                connection, project_id, label, compress=compress, keep=keep, protect=protect
            )
        )

    def record_run(self, run: RunRecord) -> None:
        self._call(lambda connection: self._backend._record_run(connection, run))

    def save_checkpoint(
        self, checkpoint: Checkpoint, *, compress: bool | None = None
    ) -> Checkpoint:
        return self._call(
            lambda connection: self._backend._save_checkpoint(connection, checkpoint, compress)
        )

    def list_checkpoints(self, project_id: str) -> list[Checkpoint]:
        return self._call(
            lambda connection: self._backend._list_checkpoints(connection, project_id)
        )

    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        return self._call(
            lambda connection: self._backend._delete_checkpoint(connection, checkpoint_id)
        )

    def commit(self) -> None:
        self._open_connection()
        with self._backend._errors():
            self._transaction.commit()
        self._finish()

    def rollback(self) -> None:
        if self.finished:
            return
        try:
            with self._backend._errors():
                self._transaction.rollback()
        finally:
            self._finish()

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        if threading.get_ident() == self._owner and self._backend._active() is self.connection:
            self._backend._local.connection = None
        self._backend._release_memory_lock(self._memory_lock)
        self._memory_lock = False

    def close(self) -> None:
        """End the run: roll back what was not committed, release every lock."""
        try:
            if not self.finished:
                with suppress(SQLAlchemyError):
                    self._transaction.rollback()
        finally:
            if self._backend._active() is self.connection:
                self._backend._local.connection = None
            with suppress(SQLAlchemyError):
                self.connection.close()
            self.finished = True
            self._backend._release_memory_lock(self._memory_lock)
            self._memory_lock = False


__all__ = ["CHUNK_SIZE", "SQLiteBackend", "advisory_lock_key", "mask_dsn", "project_lock_key"]
