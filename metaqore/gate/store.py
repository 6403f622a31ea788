"""The gate's persistent store: history in, a passing run's artifacts out, in one transaction.

Only used when a persistent ``--db`` is given; the default in-memory store keeps
nothing between runs, so the gate skips the store entirely.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from metaqore.config import GovernanceMode, MetaQoreConfig
from metaqore.core.models import TaskSensitivity
from metaqore.core.records import ArtifactRecord, RunIndex
from metaqore.gate.verdict import Verdict

_SENSITIVITIES = list(TaskSensitivity)


def open_store(dsn: str, config: MetaQoreConfig, load: Any) -> Any:
    from metaqore.storage.backends.sqlite import SQLiteBackend

    backend = SQLiteBackend(
        dsn, timeout=config.store_timeout, compress_checkpoints=config.checkpoint_compression
    )
    return _closing_transaction(backend, sorted(load.projects))


@contextmanager
def _closing_transaction(backend: Any, project_ids: list[str]) -> Iterator[Any]:
    try:
        with backend.run_transaction(project_ids) as transaction:
            yield transaction
    finally:
        backend.close()


def add_prior(index: RunIndex, transaction: Any, load: Any) -> None:
    for row in transaction.iter_artifact_records(sorted(load.projects)):
        index.add_prior(
            ArtifactRecord(
                project=row.project_id,
                id=row.id,
                artifact_type=row.artifact_type,
                agent=row.created_by,
                content_hash=row.content_hash,
                declared_version=row.version,
                iteration=row.iteration,
                depends_on=row.depends_on,
                sensitivity=row.sensitivity,
                source="(store)",
            )
        )


def persist(transaction: Any, judge: Any, verdict: Verdict, config: MetaQoreConfig) -> None:
    """A passing run's new artifacts become history; a blocked or playground run writes
    nothing (the transaction rolls back when the ``with`` block ends)."""
    if not verdict.passed or config.governance_mode is GovernanceMode.PLAYGROUND:
        return
    now = datetime.now(UTC)
    transaction.ensure_projects(
        [
            {
                "id": pid,
                "name": info.name or pid,
                "organization": info.organization or config.organization,
            }
            for pid, info in judge.load.projects.items()
        ]
    )

    def rows() -> Iterator[dict[str, Any]]:
        for record in judge.index.judged():
            rank = judge.sensitivity[record.key]
            route = judge.routing[record.key]
            metadata: dict[str, Any] = {"source": record.source, "line": record.line}
            if route is not None:
                metadata["llm_provider"] = route[0]
            yield {
                "project_id": record.project,
                "id": record.id,
                "version": record.version,
                "artifact_type": record.artifact_type,
                "iteration": record.iteration,
                "created_by": record.agent,
                "created_at": now,
                "content_hash": record.content_hash,
                "depends_on": list(record.depends_on),
                "data_json": record.data_json,
                "metadata": metadata,
                "provenance": [dict(entry) for entry in record.provenance],
                "sensitivity": _SENSITIVITIES[rank].value if rank < len(_SENSITIVITIES) else None,
            }

    transaction.bulk_save_artifacts(rows())
    transaction.commit()


__all__ = ["add_prior", "open_store", "persist"]
