"""The store's tables, its schema version and the migration runner that upgrades old stores.

A brand-new store is created at :data:`SCHEMA_VERSION`. An older store is upgraded by the
ordered :data:`MIGRATIONS`, each moving it one version up, all inside the caller's
transaction, so a failed upgrade leaves the store as it was. A store written by a newer
MetaQore is refused rather than misread.

Versions:

1. projects, artifacts, tasks, conflicts, checkpoints, and ``metaqore_meta`` holding the
   version itself.
2. ``runs`` (one row per project of every passing gate run that changed it: run id,
   verdict, mode, engine version, how many artifacts it added, its checkpoint), and
   ``checkpoints.artifact_count`` / ``task_count`` so that listing checkpoints never has
   to decompress their snapshots.

We use this small built-in runner rather than Alembic, because of how MetaQore meets its
stores: a CI job runs ``metaqore check --db DSN`` against whatever store the DSN names, with
no migration step of its own and often many runners at once. The runner therefore has to
upgrade in place, on first open, inside the same transaction that holds the store's
exclusive lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so that two
runners never both migrate and a failed step rolls back completely. Alembic is built for the
opposite workflow (an operator runs ``alembic upgrade`` with an ``env.py`` and a script
directory shipped beside the code), would add a dependency and its own version table, and
its autogenerate and branching features have nothing to do here: MetaQore's history is a
single line of small, hand-written steps, each tested against a store built by the
previous version's DDL on both SQLite and PostgreSQL.

Payload columns hold canonical JSON text (:func:`metaqore.core.canonical.canonical_json`) in
``Text`` columns, which reads back identically on SQLite and PostgreSQL.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from metaqore.core.canonical import canonical_json
from metaqore.exceptions import StorageError

#: The layout this MetaQore reads and writes.
SCHEMA_VERSION = 2

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
    # Version 2: what the snapshot holds, so that listing never decodes snapshots.
    # NULL only for a version-1 checkpoint whose snapshot could not be read when migrating.
    sa.Column("artifact_count", sa.Integer(), nullable=True),
    sa.Column("task_count", sa.Integer(), nullable=True),
    sa.Index("ix_checkpoints_project_created", "project_id", "created_at"),
)

# Version 2: the passing gate runs that changed a project (a blocked run writes nothing).
runs = sa.Table(
    "runs",
    metadata,
    sa.Column(
        "project_id",
        sa.String(),
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("run_id", sa.String(), primary_key=True),
    sa.Column("verdict", sa.String(), nullable=False),
    sa.Column("mode", sa.String(), nullable=False),
    sa.Column("engine_version", sa.String(), nullable=False),
    # How many artifact rows the run added to the project.
    sa.Column("artifacts", sa.Integer(), nullable=False),
    # No foreign key: retention deletes old checkpoints, the run stays on record.
    sa.Column("checkpoint_id", sa.String(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index("ix_runs_project_created", "project_id", "created_at"),
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


def _v2_runs_table() -> sa.Table:
    """The ``runs`` table exactly as version 2 introduced it (a later version may change
    :data:`runs`; this step must keep creating what version 2 had)."""
    frozen = sa.MetaData()
    sa.Table("projects", frozen, sa.Column("id", sa.String(), primary_key=True))
    return sa.Table(
        "runs",
        frozen,
        sa.Column(
            "project_id",
            sa.String(),
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("run_id", sa.String(), primary_key=True),
        sa.Column("verdict", sa.String(), nullable=False),
        sa.Column("mode", sa.String(), nullable=False),
        sa.Column("engine_version", sa.String(), nullable=False),
        sa.Column("artifacts", sa.Integer(), nullable=False),
        sa.Column("checkpoint_id", sa.String(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Index("ix_runs_project_created", "project_id", "created_at"),
    )


def snapshot_counts(raw: bytes, *, compressed: bool) -> tuple[int, int] | None:
    """(artifacts, tasks) in a stored snapshot, or ``None`` if it cannot be read."""
    try:
        if compressed:
            raw = gzip.decompress(raw)
        snapshot = json.loads(raw)
        return len(snapshot["artifacts"]), len(snapshot["tasks"])
    except (OSError, EOFError, ValueError, KeyError, TypeError):
        return None


def provenance_id(project_id: str, artifact_id: str, version: int, position: int) -> str:
    """The stable id of the ``position``-th provenance entry of an artifact version."""
    key = f"{project_id}\0{artifact_id}\0{version}\0{position}"
    return "prov_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def _complete_gate_provenance(connection: Connection) -> None:
    """Version-1 gates stored manifest provenance entries as given (actor, action, key_id,
    signature): complete them into full ``Provenance`` entries, so those artifacts load."""
    table = sa.table(
        "artifacts",
        sa.column("project_id", sa.String()),
        sa.column("id", sa.String()),
        sa.column("version", sa.Integer()),
        sa.column("created_at", UTCDateTime()),
        sa.column("provenance", sa.Text()),
    )
    rows = connection.execute(
        sa.select(
            table.c.project_id, table.c.id, table.c.version, table.c.created_at, table.c.provenance
        ).where(table.c.provenance != "[]")
    ).all()
    updates: list[dict[str, object]] = []
    for project_id, artifact_id, version, created_at, text in rows:
        try:
            entries = json.loads(text)
        except ValueError:
            continue  # damaged: reading the artifact reports it
        if not isinstance(entries, list) or all(
            isinstance(entry, dict) and "artifact_id" in entry for entry in entries
        ):
            continue
        stamp = created_at.isoformat().replace("+00:00", "Z")
        completed = [
            {
                "id": provenance_id(project_id, artifact_id, version, position),
                "artifact_id": artifact_id,
                "reason": None,
                "signature": None,
                "key_id": None,
                "created_at": stamp,
                "metadata": {},
                **entry,
            }
            if isinstance(entry, dict)
            else entry
            for position, entry in enumerate(entries)
        ]
        updates.append(
            {
                "p": project_id,
                "i": artifact_id,
                "v": version,
                "provenance": canonical_json(completed),
            }
        )
    if updates:
        connection.execute(
            sa.update(table)
            .where(
                table.c.project_id == sa.bindparam("p"),
                table.c.id == sa.bindparam("i"),
                table.c.version == sa.bindparam("v"),
            )
            .values(provenance=sa.bindparam("provenance")),
            updates,
        )


def _migrate_1_to_2(connection: Connection) -> None:
    _complete_gate_provenance(connection)
    _v2_runs_table().create(connection)
    connection.execute(sa.text("ALTER TABLE checkpoints ADD COLUMN artifact_count INTEGER"))
    connection.execute(sa.text("ALTER TABLE checkpoints ADD COLUMN task_count INTEGER"))
    # Count what every existing snapshot holds, one checkpoint in memory at a time. An
    # unreadable snapshot keeps NULL counts: reading it later reports the damage.
    ids = connection.execute(sa.text("SELECT id FROM checkpoints")).scalars().all()
    update = sa.text(
        "UPDATE checkpoints SET artifact_count = :artifacts, task_count = :tasks WHERE id = :id"
    )
    for checkpoint_id in ids:
        row = connection.execute(
            sa.text("SELECT compressed, snapshot FROM checkpoints WHERE id = :id"),
            {"id": checkpoint_id},
        ).one()
        counts = snapshot_counts(bytes(row.snapshot), compressed=bool(row.compressed))
        if counts is not None:
            connection.execute(
                update, {"artifacts": counts[0], "tasks": counts[1], "id": checkpoint_id}
            )


#: The upgrade path, oldest first.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs table and checkpoint counts", _migrate_1_to_2),
)


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
    "provenance_id",
    "read_schema_version",
    "runs",
    "snapshot_counts",
    "tasks",
    "write_schema_version",
]
