"""Artifact manifests: their format, finding them, and reading them into records."""

from __future__ import annotations

from metaqore.manifest.discover import ManifestFile, ManifestFormat, discover_manifests
from metaqore.manifest.loader import LoadedManifest, LoadResult, ProjectInfo, load_manifests
from metaqore.manifest.schema import Manifest, ManifestArtifact, ManifestHeader, json_schema

__all__ = [
    "LoadResult",
    "LoadedManifest",
    "Manifest",
    "ManifestArtifact",
    "ManifestFile",
    "ManifestFormat",
    "ManifestHeader",
    "ProjectInfo",
    "discover_manifests",
    "json_schema",
    "load_manifests",
]
