"""pytest plugin for MetaQore: ``pytest --metaqore`` gates the session on artifact manifests.

``plugin`` is the ``pytest11`` entry point (options, ini keys, marker, the ``metaqore_gate``
fixture; stdlib and pytest only), ``hooks`` the hooks it adds to pytest, and ``session``
the gate's session, imported only when ``--metaqore`` is given.
"""
