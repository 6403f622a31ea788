"""The storage contract: what every MetaQore store (SQLite, PostgreSQL) must offer.

The interface is synchronous. Model-level methods (``save_artifact``, ``list_tasks`` ...) serve
the :class:`~metaqore.core.state_manager.StateManager`; the bulk methods
(``bulk_save_artifacts``, ``iter_artifact_records``, ``upsert_projects``,
``checkpoint_project``, ``run_transaction``) serve the gate's hot path, which must never make
a database round trip per artifact.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from types import TracebackType
from typing import Any, NamedTuple, Self

from metaqore.core.models import Artifact, Checkpoint, Conflict, Project, Task

#: Metadata key that marks an artifact whose content (``data``) is not in the store.
#: A store row may hold only the content hash (a manifest may state a hash without data);
#: such a row loads as an :class:`Artifact` with ``data == {}`` and this key holding the
#: stored hash, and saving that artifact back keeps the row content-less with its hash.
STORED_CONTENT_HASH_KEY = "_metaqore_content_hash"


class StoredRecord(NamedTuple):
    """One stored artifact without its content: what the gate needs to judge a run."""

    project_id: str
    id: str
    artifact_type: str
    version: int
    iteration: int | None
    created_by: str
    content_hash: str
    depends_on: tuple[str, ...]
    sensitivity: str | None
    created_at: datetime


class CheckpointInfo(NamedTuple):
    """A stored checkpoint without its snapshot: what listing and retention need."""

    id: str
    project_id: str
    label: str
    created_at: datetime
    #: How many artifacts / tasks the snapshot holds (``None``: unknown, see schema v2).
    artifacts: int | None
    tasks: int | None
    compressed: bool
    #: Bytes the snapshot takes in the store.
    size: int


class RunRecord(NamedTuple):
    """One passing gate run that changed one project (the ``runs`` table)."""

    project_id: str
    run_id: str
    verdict: str
    mode: str
    engine_version: str
    #: How many artifact rows the run added to the project.
    artifacts: int
    checkpoint_id: str | None
    created_at: datetime


class RunTransaction(ABC):
    """One gate run's unit of work: a single transaction holding the run's project locks.

    Leaving the ``with`` block of :meth:`StorageBackend.run_transaction` without
    :meth:`commit` rolls everything back. After ``commit()`` or ``rollback()`` the
    transaction is finished and further calls raise :class:`~metaqore.exceptions.StorageError`.
    """

    @abstractmethod
    def iter_artifact_records(self, project_ids: Iterable[str]) -> Iterator[StoredRecord]:
        """Same as :meth:`StorageBackend.iter_artifact_records`, inside this transaction."""

    @abstractmethod
    def bulk_save_artifacts(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Same as :meth:`StorageBackend.bulk_save_artifacts`, inside this transaction."""

    @abstractmethod
    def ensure_projects(self, projects: Iterable[Mapping[str, Any]]) -> int:
        """Same as :meth:`StorageBackend.ensure_projects`, inside this transaction."""

    @abstractmethod
    def upsert_projects(self, projects: Iterable[Mapping[str, Any]]) -> set[str]:
        """Same as :meth:`StorageBackend.upsert_projects`, inside this transaction."""

    @abstractmethod
    def checkpoint_project(
        self,
        project_id: str,
        label: str,
        *,
        compress: bool | None = None,
        keep: int = 0,
        protect: Iterable[str] = (),
    ) -> CheckpointInfo:
        """Same as :meth:`StorageBackend.checkpoint_project`, inside this transaction (the
        snapshot includes this transaction's own writes)."""

    @abstractmethod
    def record_run(self, run: RunRecord) -> None:
        """Same as :meth:`StorageBackend.record_run`, inside this transaction."""

    @abstractmethod
    def save_checkpoint(
        self, checkpoint: Checkpoint, *, compress: bool | None = None
    ) -> Checkpoint:
        """Same as :meth:`StorageBackend.save_checkpoint`, inside this transaction."""

    @abstractmethod
    def list_checkpoints(self, project_id: str) -> list[Checkpoint]:
        """Same as :meth:`StorageBackend.list_checkpoints`, inside this transaction."""

    @abstractmethod
    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        """Same as :meth:`StorageBackend.delete_checkpoint`, inside this transaction."""

    @abstractmethod
    def commit(self) -> None:
        """Make the run's writes durable and release its locks."""

    @abstractmethod
    def rollback(self) -> None:
        """Discard the run's writes and release its locks."""


class StorageBackend(ABC):
    """Abstract, synchronous store. Every public method is one transaction of its own,
    unless called inside :meth:`transaction` (or a :meth:`run_transaction`) on the same
    thread, where it joins that transaction.

    Failures of the underlying database never escape raw: they are
    :class:`~metaqore.exceptions.StorageError` with a one-line message.
    """

    # -- lifecycle -------------------------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Release connections. Later calls raise ``StorageError``."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @abstractmethod
    def transaction(self, *, write: bool = True) -> AbstractContextManager[None]:
        """Group every call made on this backend from this thread inside the block into one
        transaction: all of them are committed together, or none (an exception rolls back).
        Nested blocks join the outermost one. ``write=False`` promises reads only, which
        lets SQLite start without taking the write lock."""

    # -- projects --------------------------------------------------------------------

    @abstractmethod
    def save_project(self, project: Project) -> Project:
        """Insert or update the project's own row (not its artifacts or tasks)."""

    @abstractmethod
    def get_project(self, project_id: str) -> Project | None:
        """The project row, with ``artifacts`` and ``tasks`` left empty."""

    @abstractmethod
    def list_projects(self) -> list[Project]:
        """Every project (artifacts and tasks left empty), oldest first."""

    @abstractmethod
    def delete_project(self, project_id: str) -> bool:
        """Delete the project with its artifacts, tasks, conflicts and checkpoints.
        Returns whether the project existed."""

    @abstractmethod
    def replace_project_state(
        self,
        project: Project,
        artifacts: Iterable[Artifact],
        tasks: Iterable[Task],
        conflicts: Iterable[Conflict],
    ) -> None:
        """Atomically replace a project's row, artifacts, tasks and conflicts by the given
        ones (a checkpoint restore); its checkpoints are kept."""

    # -- artifacts -------------------------------------------------------------------

    @abstractmethod
    def save_artifact(self, artifact: Artifact) -> Artifact:
        """Insert or replace the artifact (keyed by project, id and version), and its
        ``blocked_by`` conflicts."""

    @abstractmethod
    def get_artifact(
        self, artifact_id: str, *, project_id: str | None = None, version: int | None = None
    ) -> Artifact | None:
        """The highest (or the given) version of an artifact id. Without ``project_id``,
        an id present in several projects resolves to the most recently created one."""

    @abstractmethod
    def list_artifacts(self, project_id: str) -> list[Artifact]:
        """Every version of every artifact of the project, by version then creation time."""

    @abstractmethod
    def delete_artifact(self, artifact_id: str, *, project_id: str | None = None) -> int:
        """Delete every version of an artifact id; returns how many rows went.
        Without ``project_id`` the id must not be ambiguous across projects."""

    @abstractmethod
    def get_sensitivities(
        self, artifact_ids: Iterable[str], *, project_id: str
    ) -> dict[str, str | None]:
        """The stored (effective) sensitivity of the highest version of each id found."""

    # -- tasks -----------------------------------------------------------------------

    @abstractmethod
    def save_task(self, task: Task) -> Task:
        """Insert or replace the task (keyed by project and id)."""

    @abstractmethod
    def get_task(self, task_id: str, *, project_id: str | None = None) -> Task | None:
        """The task; without ``project_id``, the most recently created task with that id."""

    @abstractmethod
    def list_tasks(self, project_id: str) -> list[Task]:
        """The project's tasks ordered by ``created_at``."""

    @abstractmethod
    def delete_task(self, task_id: str, *, project_id: str | None = None) -> bool:
        """Delete a task; returns whether it existed."""

    # -- conflicts -------------------------------------------------------------------

    @abstractmethod
    def save_conflicts(self, conflicts: Iterable[Conflict]) -> list[Conflict]:
        """Insert or replace conflicts (keyed by id)."""

    @abstractmethod
    def update_conflict(self, conflict: Conflict) -> Conflict:
        """Store the conflict's new state (inserting it if it was never stored)."""

    @abstractmethod
    def get_conflict(self, conflict_id: str) -> Conflict | None:
        """One conflict by id."""

    @abstractmethod
    def list_conflicts(self, project_id: str) -> list[Conflict]:
        """The project's conflicts, oldest first."""

    # -- checkpoints -----------------------------------------------------------------

    @abstractmethod
    def save_checkpoint(
        self, checkpoint: Checkpoint, *, compress: bool | None = None
    ) -> Checkpoint:
        """Store a checkpoint; ``compress`` overrides the backend's default for this one."""

    @abstractmethod
    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint | None:
        """One checkpoint, its snapshot a plain dict whatever the stored encoding."""

    @abstractmethod
    def list_checkpoints(self, project_id: str) -> list[Checkpoint]:
        """The project's checkpoints, oldest first."""

    @abstractmethod
    def delete_checkpoint(self, checkpoint_id: str) -> bool:
        """Delete a checkpoint; returns whether it existed."""

    @abstractmethod
    def list_checkpoint_info(self, project_id: str) -> list[CheckpointInfo]:
        """The project's checkpoints without their snapshots, oldest first (nothing is
        decompressed: cheap whatever the snapshots' size)."""

    @abstractmethod
    def project_snapshot(self, project_id: str) -> bytes | None:
        """The project's current state as a checkpoint snapshot: the canonical JSON (UTF-8)
        of ``{"project", "artifacts", "tasks", "conflicts"}``, each entry exactly the
        model's ``model_dump(mode="json")`` (artifacts without their computed fields).
        Built from the rows in bulk, without a model per artifact. ``None`` if the project
        does not exist."""

    @abstractmethod
    def checkpoint_project(
        self,
        project_id: str,
        label: str,
        *,
        compress: bool | None = None,
        keep: int = 0,
        protect: Iterable[str] = (),
    ) -> CheckpointInfo:
        """Snapshot the project (see :meth:`project_snapshot`) into a new checkpoint and
        apply retention, in one transaction: ``keep`` > 0 deletes the project's oldest
        checkpoints beyond the newest ``keep``, except those whose ids are in ``protect``.
        A missing project raises :class:`~metaqore.exceptions.NotFoundError`."""

    # -- gate runs -------------------------------------------------------------------

    @abstractmethod
    def record_run(self, run: RunRecord) -> None:
        """Store (or replace) the record of a passing gate run for one project."""

    @abstractmethod
    def list_runs(self, project_id: str) -> list[RunRecord]:
        """The project's recorded runs, oldest first."""

    # -- the gate's hot path ---------------------------------------------------------

    @abstractmethod
    def bulk_save_artifacts(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert many artifact rows without a round trip per row.

        Each row has ``project_id, id, version, artifact_type, iteration, created_by,
        created_at, content_hash, depends_on, data_json, metadata, provenance,
        sensitivity``. A row whose key (project, id, version) is stored already is
        skipped, whatever its content: a stored version is history and is never rewritten
        (a gate run that passes with a waived same-version change leaves it as it was).
        Returns how many rows were written.
        """

    @abstractmethod
    def iter_artifact_records(self, project_ids: Iterable[str]) -> Iterator[StoredRecord]:
        """Stream the stored artifacts of the projects, without content, ordered by
        project id, version and creation time. Iterate to the end or close the iterator:
        it holds a read transaction meanwhile."""

    @abstractmethod
    def ensure_projects(self, projects: Iterable[Mapping[str, Any]]) -> int:
        """Insert missing projects and update changed names/organizations from rows with
        ``id`` (required), ``name`` and ``organization``. Returns how many rows changed."""

    @abstractmethod
    def upsert_projects(self, projects: Iterable[Mapping[str, Any]]) -> set[str]:
        """Same as :meth:`ensure_projects`, returning the ids of the rows it inserted or
        changed."""

    @abstractmethod
    def run_transaction(self, project_ids: Iterable[str]) -> AbstractContextManager[RunTransaction]:
        """Open one transaction that locks the given projects against other gate runs
        until it ends. Waiting longer than the backend's timeout raises ``StorageError``."""

    @abstractmethod
    def lock_projects(self, project_ids: Iterable[str]) -> None:
        """Inside :meth:`transaction`: take the same project locks a
        :meth:`run_transaction` takes, until the transaction ends (so a restore or a
        checkpoint never interleaves with a gate run on the same project)."""


__all__ = [
    "STORED_CONTENT_HASH_KEY",
    "CheckpointInfo",
    "RunRecord",
    "RunTransaction",
    "StorageBackend",
    "StoredRecord",
]
