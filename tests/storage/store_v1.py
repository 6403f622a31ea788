"""A store exactly as MetaQore's schema version 1 left it, for the migration tests.

The tables are a frozen copy of the version-1 DDL (``metaqore/storage/schema.py`` at
version 1); the rows are what version-1 code wrote, including the gate's incomplete
provenance entries (only actor, action, key_id and signature) and a checkpoint without
the version-2 count columns.
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from metaqore.core.canonical import canonical_bytes, canonical_json, content_hash
from metaqore.storage.schema import UTCDateTime

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
    sa.Column("data", sa.Text(), nullable=True),
    sa.Column("metadata", sa.Text(), nullable=False),
    sa.Column("provenance", sa.Text(), nullable=False),
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
    sa.Column("compressed", sa.Boolean(), nullable=False),
    sa.Column("snapshot", sa.LargeBinary(), nullable=False),
    sa.Index("ix_checkpoints_project_created", "project_id", "created_at"),
)

WHEN = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
PLAN_DATA = {"title": "Checkout API, first cut"}
SIGNED_DATA = {"scan": "clean"}
#: A manifest provenance entry as the version-1 gate stored it (no id, no artifact_id).
GATE_PROVENANCE = {
    "actor": "scanner",
    "action": "created",
    "key_id": "demo-2026",
    "signature": "ed25519:c2lnbmF0dXJl",
}
HASH_ONLY = "sha256:" + "ab" * 32


def _artifact(artifact_id: str, version: int, **values: Any) -> dict[str, Any]:
    data = values.pop("data", None)
    row: dict[str, Any] = {
        "project_id": "shop",
        "id": artifact_id,
        "version": version,
        "artifact_type": values.pop("artifact_type", "plan"),
        "iteration": values.pop("iteration", 1),
        "created_by": values.pop("created_by", "planner"),
        "created_at": WHEN,
        "content_hash": content_hash(data) if data is not None else HASH_ONLY,
        "depends_on": canonical_json(values.pop("depends_on", [])),
        "data": canonical_json(data) if data is not None else None,
        "metadata": canonical_json(values.pop("metadata", {})),
        "provenance": canonical_json(values.pop("provenance", [])),
        "sensitivity": values.pop("sensitivity", None),
    }
    assert not values, values
    return row


def create_v1_store(dsn: str) -> dict[str, Any]:
    """Create the version-1 tables in the empty store ``dsn`` and fill them; returns the
    version-1 checkpoint's snapshot."""
    engine = sa.create_engine(dsn)
    try:
        with engine.begin() as connection:
            metadata.create_all(connection)
            connection.execute(sa.insert(meta).values(key="schema_version", value="1"))
            connection.execute(
                sa.insert(projects).values(
                    id="shop",
                    name="Shop",
                    description=None,
                    organization="acme",
                    status="initialized",
                    created_at=WHEN,
                    updated_at=WHEN,
                    metadata="{}",
                )
            )
            connection.execute(
                sa.insert(artifacts),
                [
                    _artifact(
                        "plan",
                        1,
                        data=PLAN_DATA,
                        metadata={"line": 3, "source": "plan.metaqore.yaml"},
                        sensitivity="internal",
                    ),
                    _artifact(
                        "scan",
                        1,
                        artifact_type="scan",
                        created_by="scanner",
                        data=SIGNED_DATA,
                        depends_on=["plan"],
                        provenance=[GATE_PROVENANCE],
                        sensitivity="critical",
                    ),
                    _artifact("digest", 1, artifact_type="digest", created_by="gate"),
                ],
            )
            connection.execute(
                sa.insert(tasks).values(
                    project_id="shop",
                    id="t-1",
                    title="Design",
                    status="pending",
                    assigned_to=None,
                    depends_on="[]",
                    created_at=WHEN,
                    updated_at=WHEN,
                    completed_at=None,
                    metadata="{}",
                )
            )
            snapshot: dict[str, Any] = {
                "project": {"id": "shop", "name": "Shop"},
                "artifacts": [{"id": "plan"}],
                "tasks": [{"id": "t-1"}],
                "conflicts": [],
            }
            connection.execute(
                sa.insert(checkpoints),
                [
                    {
                        "id": "chk_000000000001",
                        "project_id": "shop",
                        "label": "v1 release",
                        "created_at": WHEN,
                        "compressed": True,
                        "snapshot": gzip.compress(canonical_bytes(snapshot), mtime=0),
                    },
                    {
                        "id": "chk_000000000002",
                        "project_id": "shop",
                        "label": "damaged",
                        "created_at": WHEN.replace(minute=31),
                        "compressed": True,
                        "snapshot": b"not gzip",
                    },
                ],
            )
    finally:
        engine.dispose()
    return snapshot


def table_names(dsn: str) -> set[str]:
    engine = sa.create_engine(dsn)
    try:
        with engine.connect() as connection:
            return set(sa.inspect(connection).get_table_names())
    finally:
        engine.dispose()
