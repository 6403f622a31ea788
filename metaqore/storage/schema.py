"""The store's tables, its schema version and the migration runner that upgrades old stores.

A brand-new store is created at :data:`SCHEMA_VERSION`. An older store is upgraded by the
ordered :data:`MIGRATIONS`, each moving it one version up, all inside the caller's
transaction, so a failed upgrade leaves the store as it was. A store written by a newer
MetaQore is refused rather than misread.

We use this small built-in runner rather than Alembic: it adds no dependency, and every step
runs in the caller's transaction on both SQLite and PostgreSQL (Alembic wants its own
environment, script directory and connection handling, which a CI tool that opens a store
given on the command line has no use for).

Payload columns hold canonical JSON text (:func:`metaqore.core.canonical.canonical_json`) in
``Text`` columns, which reads back identically on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from metaqore.exceptions import StorageError

#: The layout this MetaQore reads and writes.
SCHEMA_VERSION = 1

#: Key of the schema version row in ``metaqore_meta``.
SCHEMA_VERSION_KEY = "schema_version"


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware.

    SQLite has no time zone type: values are stored as naive UTC there; PostgreSQL gets a
    ``timestamp with time zone``.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = sa.MetaData()

meta = sa.Table(
    "metaqore_meta",
    metadata,
    sa.Column("key", sa.String(), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
)

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("name", sa.Text(), nullable=False),
    sa.Column("description", sa.Text(), nullable=True),
    sa.Column("organization", sa.String(), nullable=False),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("metadata", sa.Text(), nullable=False),
)

artifacts = sa.Table(
    "artifacts",
    metadata,
    sa.Column(
        "project_id",
        sa.String(),
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("version", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("artifact_type", sa.String(), nullable=False),
    sa.Column("iteration", sa.Integer(), nullable=True),
    sa.Column("created_by", sa.String(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("content_hash", sa.String(), nullable=False),
    sa.Column("depends_on", sa.Text(), nullable=False),
    # NULL: the content is not stored (only its hash is known).
    sa.Column("data", sa.Text(), nullable=True),
    sa.Column("metadata", sa.Text(), nullable=False),
    sa.Column("provenance", sa.Text(), nullable=False),
    # The artifact's effective sensitivity (already includes its inputs').
    sa.Column("sensitivity", sa.String(), nullable=True),
    sa.Index("ix_artifacts_project_type_version", "project_id", "artifact_type", "version"),
    sa.Index("ix_artifacts_id", "id"),
)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column(
        "project_id",
        sa.String(),
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("title", sa.Text(), nullable=False),
    sa.Column("status", sa.String(), nullable=False),
    sa.Column("assigned_to", sa.String(), nullable=True),
    sa.Column("depends_on", sa.Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("completed_at", UTCDateTime(), nullable=True),
    sa.Column("metadata", sa.Text(), nullable=False),
    sa.Index("ix_tasks_id", "id"),
)

# No foreign key to artifacts: PSMP records conflicts on artifacts it refused to store.
conflicts = sa.Table(
    "conflicts",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column("project_id", sa.String(), nullable=True),
    sa.Column("artifact_id", sa.String(), nullable=False),
    sa.Column("resolved", sa.Boolean(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Index("ix_conflicts_project_artifact", "project_id", "artifact_id"),
)

checkpoints = sa.Table(
    "checkpoints",
    metadata,
    sa.Column("id", sa.String(), primary_key=True),
    sa.Column(
        "project_id",
        sa.String(),
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("label", sa.Text(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    # Whether ``snapshot`` is gzip; recorded per row so toggling compression keeps old rows
    # readable.
    sa.Column("compressed", sa.Boolean(), nullable=False),
    sa.Column("snapshot", sa.LargeBinary(), nullable=False),
    sa.Index("ix_checkpoints_project_created", "project_id", "created_at"),
)

#: Every table MetaQore owns.
TABLE_NAMES = frozenset(metadata.tables)


@dataclass(frozen=True)
class Migration:
    """One step that moves a store from ``from_version`` to ``from_version + 1``."""

    from_version: int
    description: str
    apply: Callable[[Connection], None]

    @property
    def to_version(self) -> int:
        return self.from_version + 1


#: The upgrade path, oldest first. Version 1 is the first layout: nothing to migrate yet.
MIGRATIONS: tuple[Migration, ...] = ()


def read_schema_version(connection: Connection) -> int | None:
    """The store's schema version, or ``None`` for a database without MetaQore tables."""
    if not sa.inspect(connection).has_table(meta.name):
        return None
    value = connection.execute(
        sa.select(meta.c.value).where(meta.c.key == SCHEMA_VERSION_KEY)
    ).scalar_one_or_none()
    if value is None:
        raise StorageError("store has a metaqore_meta table without a schema_version row")
    try:
        return int(value)
    except ValueError:
        raise StorageError(f"store schema_version {value!r} is not a number") from None


def write_schema_version(connection: Connection, version: int) -> None:
    updated = connection.execute(
        sa.update(meta).where(meta.c.key == SCHEMA_VERSION_KEY).values(value=str(version))
    )
    if updated.rowcount == 0:
        connection.execute(sa.insert(meta).values(key=SCHEMA_VERSION_KEY, value=str(version)))


def migrate(
    connection: Connection,
    current: int,
    *,
    target: int = SCHEMA_VERSION,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> list[Migration]:
    """Apply the steps from ``current`` up to ``target`` in order; return the steps applied.

    Runs in the caller's transaction: if a step fails, rolling back leaves the store at its
    old version. A gap in the path is an error, never a skipped step.
    """
    by_version = {step.from_version: step for step in migrations}
    applied: list[Migration] = []
    version = current
    while version < target:
        step = by_version.get(version)
        if step is None:
            raise StorageError(
                f"no migration from store schema version {version} to {version + 1}; "
                "this store cannot be upgraded by this MetaQore"
            )
        try:
            step.apply(connection)
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(
                f"migration {step.from_version} -> {step.to_version} "
                f"({step.description}) failed: {_first_line(exc)}"
            ) from exc
        version = step.to_version
        applied.append(step)
    write_schema_version(connection, version)
    return applied


def ensure_schema(
    connection: Connection,
    *,
    target: int = SCHEMA_VERSION,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> int:
    """Create, upgrade or accept the store's tables; return the version found (0 if new).

    Call it inside a write transaction that excludes other writers, so two processes
    opening the same new store do not both create it.
    """
    found = read_schema_version(connection)
    if found is None:
        present = TABLE_NAMES & set(sa.inspect(connection).get_table_names())
        if present:
            raise StorageError(
                "store has MetaQore tables (" + ", ".join(sorted(present)) + ") but no "
                "schema version; refusing to guess its layout"
            )
        metadata.create_all(connection)
        write_schema_version(connection, target)
        return 0
    if found > target:
        raise StorageError(
            f"store schema version {found} is newer than this MetaQore supports "
            f"({target}); upgrade metaqore"
        )
    if found < target:
        migrate(connection, found, target=target, migrations=migrations)
    return found


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SCHEMA_VERSION_KEY",
    "TABLE_NAMES",
    "Migration",
    "UTCDateTime",
    "artifacts",
    "checkpoints",
    "conflicts",
    "ensure_schema",
    "meta",
    "metadata",
    "migrate",
    "projects",
    "read_schema_version",
    "tasks",
    "write_schema_version",
]
