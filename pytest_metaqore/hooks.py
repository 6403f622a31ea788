"""Hooks pytest-metaqore adds to pytest, so other plugins and conftests can extend the gate.

Added through ``pytest_addhooks``. Implement them in a plugin or in the rootdir's
``conftest.py`` (both are loaded before the session starts; a conftest deeper in the
tree is loaded during collection, too late to take part in the gate).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from metaqore.core.rules import ConflictRule
    from metaqore.core.security import RoutingPolicy
    from metaqore.gate.verdict import Verdict


@pytest.hookspec
def pytest_metaqore_rules(config: pytest.Config) -> list[ConflictRule] | None:
    """Return extra PSMP conflict rules for this session's gate (and ``metaqore_gate``).

    Called once per gate run, in the process that runs the gate (never on an xdist
    worker), after ``pytest_configure``. The lists of every implementation are joined.
    Each rule satisfies :class:`metaqore.core.rules.ConflictRule`: a ``conflict_type``
    no other rule uses, a default ``severity`` and ``strategy``, and ``check(index)``
    yielding :class:`metaqore.core.rules.RuleHit` for records of ``index.judged()`` only.
    Its findings are bucketed, waived, baselined, reported and audited like the built-in
    rules' (config ``rules:`` can re-grade or disable it). A clash of ``conflict_type`` is a
    usage error.
    """


@pytest.hookspec
def pytest_metaqore_policies(config: pytest.Config) -> list[type[RoutingPolicy]] | None:
    """Return extra routing policy classes that ``--metaqore-policy`` and config can name.

    Called once, in ``pytest_configure`` of a ``--metaqore`` run (and for each
    ``metaqore_gate`` call), before the MetaQore config is loaded. Each class subclasses
    :class:`metaqore.core.security.RoutingPolicy` with a unique canonical ``name`` and
    ``aliases``. They are registered on the engine's plugin manager for the session and
    removed in ``pytest_unconfigure``; a name clash with another policy is a usage error.
    """


@pytest.hookspec
def pytest_metaqore_verdict(config: pytest.Config, verdict: Verdict) -> None:
    """Called with the session's verdict once the gate has judged the manifests.

    Called once per session, in the process that ran the gate (the controller under
    pytest-xdist), before collection. ``verdict`` is read-only: write extra reports
    from it, never change it (items, the summary and the exit status use it as it is).
    Not called when the gate could not judge (bad manifests or config).
    """
