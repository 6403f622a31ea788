"""pytest plugin for MetaQore: ``pytest --metaqore`` gates the session on artifact manifests."""
