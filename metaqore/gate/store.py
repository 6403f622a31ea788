"""The gate's persistent store: history in, a passing run's artifacts out, in one transaction.

Only used when a persistent ``--db`` is given; the default in-memory store keeps nothing
between runs, so the gate skips the store entirely.

One gate run is one :meth:`~metaqore.storage.backend.StorageBackend.run_transaction` over
the run's projects: it takes the projects' locks before reading their history (so a run
judging the same project at the same time waits, then judges against what this one
wrote). Only a run that passes outside playground mode writes, in two steps around the
run's audit records:

1. :func:`persist` stages the artifacts, checkpoints and run records in the transaction
   (a lost connection or a timeout fails here: nothing is stored, and the audit file gets
   no "pass" for a run the store refused);
2. the gate writes the audit records; :func:`commit` flushes them (an audit file that
   cannot be appended fails here, and the store rolls back) and then commits.

Everything else (a blocked run, an error, an interrupted process) rolls back and leaves
the store as it was.
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
from metaqore.storage.backend import RunRecord, RunTransaction, StorageBackend

_SENSITIVITIES = list(TaskSensitivity)


def open_store(dsn: str, config: MetaQoreConfig, load: Any) -> Any:
    """Open the store and start the run's transaction over every project of ``load``.

    A missing driver, an unreachable server, a store of a newer schema version, or a lock
    held longer than ``config.store_timeout`` raise
    :class:`~metaqore.exceptions.StorageError` (exit 2) before anything is judged.
    """
    from metaqore.storage.backends.sqlite import SQLiteBackend

    backend = SQLiteBackend(
        dsn, timeout=config.store_timeout, compress_checkpoints=config.checkpoint_compression
    )
    return _closing_transaction(backend, sorted(load.projects))


@contextmanager
def _closing_transaction(
    backend: StorageBackend, project_ids: list[str]
) -> Iterator[RunTransaction]:
    try:
        with backend.run_transaction(project_ids) as transaction:
            yield transaction
    finally:
        backend.close()


def add_prior(index: RunIndex, transaction: RunTransaction, load: Any) -> None:
    """Give the run the stored artifacts of its projects: they count for versions,
    dependencies and identical re-declarations."""
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


def _timestamp(value: datetime) -> str:
    """UTC as the models write it in JSON (``...Z``)."""
    return value.isoformat().replace("+00:00", "Z")


def _writes(verdict: Verdict, config: MetaQoreConfig) -> bool:
    return verdict.passed and config.governance_mode is not GovernanceMode.PLAYGROUND


def persist(
    transaction: RunTransaction, judge: Any, verdict: Verdict, config: MetaQoreConfig
) -> None:
    """Stage a passing run's new artifacts as history (:func:`commit` makes them
    durable); a blocked or playground run stages nothing and the transaction rolls back
    when the ``with`` block ends.

    For every project the run changed (new artifacts, or a new or renamed project) the
    same transaction then takes a checkpoint labelled with the run id, applies
    ``checkpoint_retention`` and records the run in the ``runs`` table. A run that only
    re-declares stored artifacts identically changes nothing and writes nothing: re-running
    a job neither grows the store nor pushes real checkpoints out of retention.
    """
    if not _writes(verdict, config):
        return
    from metaqore import __version__
    from metaqore.storage.schema import provenance_id

    now = datetime.now(UTC)
    stamp = _timestamp(now)
    run_id = verdict.run_id
    changed = transaction.upsert_projects(
        [
            {
                "id": pid,
                "name": info.name or pid,
                "organization": info.organization or config.organization,
            }
            for pid, info in judge.load.projects.items()
        ]
    )
    added: dict[str, int] = {}

    def rows() -> Iterator[dict[str, Any]]:
        for record in judge.index.judged():
            if record.idempotent:  # stored already, identically
                continue
            added[record.project] = added.get(record.project, 0) + 1
            rank = judge.sensitivity[record.key]
            route = judge.routing[record.key]
            sensitivity = _SENSITIVITIES[rank].value if rank < len(_SENSITIVITIES) else None
            metadata: dict[str, Any] = {
                "source": record.source,
                "line": record.line,
                "run_id": run_id,
            }
            if route is not None:
                metadata["llm_provider"] = route[0]
            if sensitivity is not None:
                # The model-level convention (StateManager) reads it from metadata.
                metadata["sensitivity"] = sensitivity
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
                # Complete Provenance entries, so that the stored artifact loads as a model.
                "provenance": [
                    {
                        # Stable: the same entry gets the same id in every process.
                        "id": provenance_id(record.project, record.id, record.version, position),
                        "artifact_id": record.id,
                        "actor": entry.get("actor"),
                        "action": entry.get("action"),
                        "reason": None,
                        "signature": entry.get("signature"),
                        "key_id": entry.get("key_id"),
                        "created_at": stamp,
                        "metadata": {},
                    }
                    for position, entry in enumerate(record.provenance)
                ],
                "sensitivity": sensitivity,
            }

    transaction.bulk_save_artifacts(rows())
    for project_id in sorted(changed | added.keys()):
        checkpoint = transaction.checkpoint_project(
            project_id,
            run_id,
            compress=config.checkpoint_compression,
            keep=config.checkpoint_retention,
        )
        transaction.record_run(
            RunRecord(
                project_id=project_id,
                run_id=run_id,
                verdict=verdict.verdict,
                mode=config.governance_mode.value,
                engine_version=__version__,
                artifacts=added.get(project_id, 0),
                checkpoint_id=checkpoint.id,
                created_at=now,
            )
        )


def commit(
    transaction: RunTransaction, auditor: Any, verdict: Verdict, config: MetaQoreConfig
) -> None:
    """After the run's audit records: write them out, then commit what :func:`persist`
    staged. If the audit cannot be written the store is left as it was."""
    if not _writes(verdict, config):
        return
    flush = getattr(auditor, "flush", None)  # the null auditor (no audit file) has none
    if flush is not None:
        flush()
    transaction.commit()


__all__ = ["add_prior", "commit", "open_store", "persist"]
