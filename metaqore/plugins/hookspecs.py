"""Hook specifications of the ``metaqore`` plugin host: how rules and policies join the engine.

A plugin is any module or object with functions marked ``@metaqore.plugins.hookimpl``,
registered through the ``metaqore`` entry-point group (or directly on the plugin manager).
The built-in rules and routing policies are registered through these same hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from metaqore.core.rules import ConflictRule
    from metaqore.core.security import RoutingPolicy

PROJECT_NAME = "metaqore"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def metaqore_conflict_rules() -> list[ConflictRule]:
    """Return PSMP conflict rules to run on every replay.

    Each rule is an object satisfying :class:`metaqore.core.rules.ConflictRule`: a unique
    ``conflict_type``, a default ``severity`` and ``strategy``, and ``check(index)`` that
    yields :class:`metaqore.core.rules.RuleHit` for records of the run being judged.
    """
    raise NotImplementedError


@hookspec
def metaqore_routing_policies() -> list[type[RoutingPolicy]]:
    """Return routing policy classes for SecureGateway.

    Each class subclasses :class:`metaqore.core.security.RoutingPolicy` and sets a unique
    canonical ``name`` and a tuple of ``aliases``; ``resolve_routing_policy`` finds it by
    either (case-insensitively, ``-`` read as ``_``).
    """
    raise NotImplementedError
