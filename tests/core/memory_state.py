"""A dict-backed stand-in for the state-manager interface PSMPEngine needs (SPEC §2)."""

from __future__ import annotations

from metaqore.core.models import Artifact, Conflict, Project


class MemoryState:
    def __init__(self, *project_ids: str) -> None:
        self.projects = {pid: Project(id=pid, name=pid) for pid in project_ids}
        self.artifacts: list[Artifact] = []
        self.conflicts: dict[str, Conflict] = {}

    def get_project(self, project_id: str) -> Project | None:
        return self.projects.get(project_id)

    def list_artifacts(self, project_id: str) -> list[Artifact]:
        found = [a for a in self.artifacts if a.project_id == project_id]
        return sorted(found, key=lambda a: (a.version, a.created_at))

    def get_artifact(self, artifact_id: str) -> Artifact | None:
        found = [a for a in self.artifacts if a.id == artifact_id]
        return max(found, key=lambda a: a.version) if found else None

    def save_artifact(self, artifact: Artifact) -> Artifact:
        # Ids are unique per project: the same id and version in another project is
        # another artifact.
        same = (artifact.project_id, artifact.id, artifact.version)
        self.artifacts = [a for a in self.artifacts if (a.project_id, a.id, a.version) != same]
        self.artifacts.append(artifact.model_copy(deep=True))
        return artifact

    def update_conflict(self, conflict: Conflict) -> Conflict:
        self.conflicts[conflict.id] = conflict.model_copy()
        return conflict
