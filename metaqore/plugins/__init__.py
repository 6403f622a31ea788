"""Plugin points: rules and routing policies are plugins, the built-in ones included."""

from __future__ import annotations

from metaqore.plugins.hookspecs import hookimpl, hookspec
from metaqore.plugins.manager import (
    conflict_rules,
    create_plugin_manager,
    get_plugin_manager,
    routing_policies,
)

__all__ = [
    "conflict_rules",
    "create_plugin_manager",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "routing_policies",
]
