"""Blocked artifacts the server holds until their conflicts are resolved.

In strict (and adaptive) mode PSMP never stores a blocked artifact, yet resolving its
conflicts later (``merge`` merges its data, ``retry`` renumbers it) needs the artifact.
The server keeps the latest blocked declaration of each artifact id here, in memory and
bounded; its conflicts are in the store, so they outlive a restart even though the held
artifact does not.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from metaqore.core.models import Artifact

#: How many blocked artifacts a server holds by default (the oldest is let go first).
DEFAULT_MAX_PENDING = 10_000


class PendingArtifacts:
    """Blocked artifacts keyed by (project id, artifact id), oldest first."""

    def __init__(self, capacity: int = DEFAULT_MAX_PENDING) -> None:
        if capacity < 1:
            raise ValueError(f"pending capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, str], Artifact] = OrderedDict()
        self._lock = threading.Lock()

    def hold(self, artifact: Artifact) -> list[Artifact]:
        """Hold ``artifact`` (replacing an earlier one with its id); returns those let go
        to stay within capacity."""
        key = (artifact.project_id, artifact.id)
        with self._lock:
            self._items.pop(key, None)
            self._items[key] = artifact
            evicted = []
            while len(self._items) > self.capacity:
                evicted.append(self._items.popitem(last=False)[1])
        return evicted

    def get(self, project_id: str, artifact_id: str) -> Artifact | None:
        with self._lock:
            return self._items.get((project_id, artifact_id))

    def release(self, project_id: str, artifact_id: str) -> Artifact | None:
        with self._lock:
            return self._items.pop((project_id, artifact_id), None)

    def for_project(self, project_id: str) -> list[Artifact]:
        with self._lock:
            return [
                artifact for (project, _), artifact in self._items.items() if project == project_id
            ]

    def holding(self, project_id: str, conflict_id: str) -> Artifact | None:
        """The held artifact of ``project_id`` that ``conflict_id`` blocks."""
        for artifact in self.for_project(project_id):
            if any(conflict.id == conflict_id for conflict in artifact.blocked_by):
                return artifact
        return None

    def drop_project(self, project_id: str) -> int:
        with self._lock:
            keys = [key for key in self._items if key[0] == project_id]
            for key in keys:
                del self._items[key]
        return len(keys)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


__all__ = ["DEFAULT_MAX_PENDING", "PendingArtifacts"]
