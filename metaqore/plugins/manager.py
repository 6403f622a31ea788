"""The plugin host: one pluggy manager with the built-ins and ``metaqore`` entry points."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pluggy

from metaqore.exceptions import ConfigurationError
from metaqore.plugins import hookspecs

if TYPE_CHECKING:
    from metaqore.core.rules import ConflictRule
    from metaqore.core.security import RoutingPolicy

_BUILTIN_PLUGINS = ("metaqore.core.rules", "metaqore.core.security")

_lock = threading.RLock()
_manager: pluggy.PluginManager | None = None


def create_plugin_manager(*, load_entrypoints: bool = True) -> pluggy.PluginManager:
    """A new manager with the hookspecs, the built-in plugins and (optionally) entry points."""
    import importlib

    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    for name in _BUILTIN_PLUGINS:
        manager.register(importlib.import_module(name), name=name)
    if load_entrypoints:
        manager.load_setuptools_entrypoints(hookspecs.PROJECT_NAME)
    return manager


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, created on first use."""
    global _manager
    with _lock:
        if _manager is None:
            _manager = create_plugin_manager()
        return _manager


def conflict_rules(manager: pluggy.PluginManager | None = None) -> list[ConflictRule]:
    """Every registered rule, built-ins first; two rules may not share a ``conflict_type``."""
    manager = manager or get_plugin_manager()
    rules: list[ConflictRule] = []
    seen: dict[str, str] = {}
    # pluggy calls the most recently registered first; built-ins were registered first.
    for batch in reversed(manager.hook.metaqore_conflict_rules()):
        for rule in batch or ():
            name = rule.conflict_type
            if name in seen:
                raise ConfigurationError(
                    f"two plugins register the conflict rule '{name}' "
                    f"({seen[name]} and {type(rule).__module__})"
                )
            seen[name] = type(rule).__module__
            rules.append(rule)
    return rules


def routing_policies(
    manager: pluggy.PluginManager | None = None,
) -> dict[str, type[RoutingPolicy]]:
    """Canonical policy name -> class, for every registered routing policy."""
    manager = manager or get_plugin_manager()
    policies: dict[str, type[RoutingPolicy]] = {}
    for batch in reversed(manager.hook.metaqore_routing_policies()):
        for policy in batch or ():
            if policy.name in policies and policies[policy.name] is not policy:
                raise ConfigurationError(f"two plugins register the routing policy '{policy.name}'")
            policies[policy.name] = policy
    return policies


__all__ = ["conflict_rules", "create_plugin_manager", "get_plugin_manager", "routing_policies"]
