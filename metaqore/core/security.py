"""SecureGateway: sensitivity classification, provider routing policies and vetoes.

The gateway decides whether a task of some sensitivity may run on an LLM provider,
whether an agent graph or a conversation stays within the configured limits, whether a
state transition is allowed, and whether provenance signatures hold. Every veto it
returns is also handed to its auditor. Routing policies are plugins: the three built-in
ones are registered through the same ``metaqore_routing_policies`` hook as any other.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from metaqore.config import MetaQoreConfig
from metaqore.core.models import (
    PROJECT_TRANSITIONS,
    TASK_TRANSITIONS,
    ConflictSeverity,
    TaskSensitivity,
    VetoReason,
    transition_allowed,
)
from metaqore.core.signing import (
    KEY_PREFIX,
    generate_keypair,
    load_private_key,
    load_public_key,
    parse_public_key,
    public_key_text,
    sign_provenance,
    signing_payload,
    verify_signature,
    write_keypair,
)
from metaqore.exceptions import ConfigurationError, SignatureValidationError
from metaqore.plugins.hookspecs import hookimpl

DEFAULT_LOCAL_PROVIDERS: tuple[str, ...] = ("hmcp_gateway", "ollama")
DEFAULT_CLOUD_PROVIDERS: tuple[str, ...] = ("openrouter",)

#: ``policy_violated`` of each non-routing veto.
POLICY_MAX_GRAPH_DEPTH = "max_graph_depth"
POLICY_MAX_PARALLEL_BRANCHES = "max_parallel_branches"
POLICY_MAX_CONVERSATION_TURNS = "max_conversation_turns"
POLICY_MAX_CONVERSATION_PARTICIPANTS = "max_conversation_participants"
POLICY_STATE_TRANSITION = "state_transition"
POLICY_PROVENANCE = "provenance"

_INTERNAL_TASK_WORDS = ("plan", "state", "governance")
_INTERNAL_AGENT_WORDS = ("validator",)


@dataclass
class ProviderStatus:
    """What the gateway knows about one provider right now."""

    available: bool = True
    latency_ms: float | None = None
    capacity_score: float | None = None


class GatewayAuditor(Protocol):
    """What SecureGateway needs from an auditor (``ComplianceAuditor`` is one)."""

    def log_routing_decision(self, payload: dict[str, Any]) -> object: ...

    def log_veto_event(self, veto: VetoReason, context: dict[str, Any] | None = None) -> object: ...


def as_sensitivity(value: TaskSensitivity | str) -> TaskSensitivity:
    """``value`` as a :class:`TaskSensitivity` (names are case-insensitive)."""
    if isinstance(value, TaskSensitivity):
        return value
    try:
        return TaskSensitivity(str(value).strip().lower())
    except ValueError:
        known = ", ".join(level.value for level in TaskSensitivity)
        raise ValueError(f"unknown sensitivity {value!r} (expected one of: {known})") from None


def effective_sensitivity(*sensitivities: TaskSensitivity | str | None) -> TaskSensitivity:
    """The highest of the given sensitivities that are not ``None`` (public if none)."""
    highest = TaskSensitivity.PUBLIC
    for value in sensitivities:
        if value is not None:
            level = as_sensitivity(value)
            if level > highest:
                highest = level
    return highest


def _unique(providers: Iterable[str]) -> tuple[str, ...]:
    if isinstance(providers, str):
        providers = (providers,)
    return tuple(dict.fromkeys(providers))


class RoutingPolicy(ABC):
    """Which providers a task of each sensitivity may use.

    Subclasses set a unique canonical ``name`` and its ``aliases`` and implement
    :meth:`get_allowed_providers`, listing local providers first, then cloud ones, each
    in configured order.
    """

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        local_providers: Iterable[str] = DEFAULT_LOCAL_PROVIDERS,
        cloud_providers: Iterable[str] = DEFAULT_CLOUD_PROVIDERS,
    ) -> None:
        self.local_providers: tuple[str, ...] = _unique(local_providers)
        # A provider listed as both is local: the stricter reading of a config typo
        # would be to refuse it, but local is where it runs by the user's own word.
        self.cloud_providers: tuple[str, ...] = tuple(
            provider
            for provider in _unique(cloud_providers)
            if provider not in self.local_providers
        )

    @abstractmethod
    def get_allowed_providers(self, sensitivity: TaskSensitivity | str) -> list[str]:
        """Providers allowed for ``sensitivity``: local first, then cloud."""

    def get_recommended_provider(
        self,
        sensitivity: TaskSensitivity | str,
        provider_status: Mapping[str, ProviderStatus],
    ) -> str | None:
        """The first allowed provider that is available (unlisted ones count as available)."""
        for provider in self.get_allowed_providers(sensitivity):
            status = provider_status.get(provider)
            if status is None or status.available:
                return provider
        return None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(local_providers={list(self.local_providers)!r}, "
            f"cloud_providers={list(self.cloud_providers)!r})"
        )


class DefaultRoutingPolicy(RoutingPolicy):
    """Sensitive and critical work stays local; public and internal may also go to cloud."""

    name: ClassVar[str] = "default_local_first"
    aliases: ClassVar[tuple[str, ...]] = ("default", "local_first")

    def get_allowed_providers(self, sensitivity: TaskSensitivity | str) -> list[str]:
        if as_sensitivity(sensitivity) >= TaskSensitivity.SENSITIVE:
            return list(self.local_providers)
        return [*self.local_providers, *self.cloud_providers]


class EnterpriseRoutingPolicy(RoutingPolicy):
    """Data residency: only public work may leave for cloud providers."""

    name: ClassVar[str] = "enterprise_residency"
    aliases: ClassVar[tuple[str, ...]] = ("enterprise", "residency")

    def get_allowed_providers(self, sensitivity: TaskSensitivity | str) -> list[str]:
        if as_sensitivity(sensitivity) is TaskSensitivity.PUBLIC:
            return [*self.local_providers, *self.cloud_providers]
        return list(self.local_providers)


class CompliancePolicy(RoutingPolicy):
    """Nothing leaves: every task runs on a local provider."""

    name: ClassVar[str] = "compliance_local_only"
    aliases: ClassVar[tuple[str, ...]] = ("compliance", "local_only")

    def get_allowed_providers(self, sensitivity: TaskSensitivity | str) -> list[str]:
        as_sensitivity(sensitivity)
        return list(self.local_providers)


BUILTIN_POLICIES: tuple[type[RoutingPolicy], ...] = (
    DefaultRoutingPolicy,
    EnterpriseRoutingPolicy,
    CompliancePolicy,
)


@hookimpl
def metaqore_routing_policies() -> list[type[RoutingPolicy]]:
    """The built-in routing policies, registered like any plugin's."""
    return list(BUILTIN_POLICIES)


def _normalise_policy_name(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _policy_table() -> dict[str, type[RoutingPolicy]]:
    """Normalised canonical name or alias -> class, over every registered policy."""
    # Imported here: the plugin manager imports this module to register the built-ins.
    from metaqore.plugins.manager import routing_policies

    table: dict[str, type[RoutingPolicy]] = {}
    for policy in routing_policies().values():
        for key in (policy.name, *policy.aliases):
            normalised = _normalise_policy_name(key)
            owner = table.get(normalised)
            if owner is not None and owner is not policy:
                raise ConfigurationError(
                    f"routing policies '{owner.name}' and '{policy.name}' both claim "
                    f"the name '{normalised}'"
                )
            table[normalised] = policy
    return table


def _policy_class(name: str) -> type[RoutingPolicy]:
    if not isinstance(name, str):
        raise TypeError(f"a routing policy name must be a string, not {type(name).__name__}")
    table = _policy_table()
    normalised = _normalise_policy_name(name)
    found = table.get(normalised)
    if found is not None:
        return found
    # Imported here: metaqore.validation is only needed to explain a mistake.
    from metaqore.validation import suggest

    hint = suggest(normalised, table)
    known = sorted(
        f"{policy.name} ({', '.join(policy.aliases)})" if policy.aliases else policy.name
        for policy in set(table.values())
    )
    raise ValueError(
        f"unknown routing policy '{name}'"
        + (f" (did you mean '{hint}'?)" if hint else "")
        + "; known policies: "
        + "; ".join(known)
    )


def canonical_policy_name(name: str) -> str:
    """The canonical name of the policy ``name`` names (alias, any case, ``-`` or ``_``).

    Raises ``ValueError`` naming the known policies when no registered policy matches.
    """
    return _policy_class(name).name


def resolve_routing_policy(
    name_or_policy: str | RoutingPolicy | type[RoutingPolicy] | None = None,
    *,
    local_providers: Iterable[str] | None = None,
    cloud_providers: Iterable[str] | None = None,
) -> RoutingPolicy:
    """A policy instance: the default for ``None``, an instance as is, a name or class built.

    The provider lists apply to the policies built here, not to a given instance.
    """
    if isinstance(name_or_policy, RoutingPolicy):
        return name_or_policy
    if name_or_policy is None:
        policy_class: type[RoutingPolicy] = DefaultRoutingPolicy
    elif isinstance(name_or_policy, type) and issubclass(name_or_policy, RoutingPolicy):
        policy_class = name_or_policy
    else:
        policy_class = _policy_class(name_or_policy)
    return policy_class(
        local_providers=DEFAULT_LOCAL_PROVIDERS if local_providers is None else local_providers,
        cloud_providers=DEFAULT_CLOUD_PROVIDERS if cloud_providers is None else cloud_providers,
    )


def _get(item: Any, key: str, default: Any = None) -> Any:
    """``item[key]`` for a mapping, ``item.key`` for anything else."""
    if item is None:
        return default
    if isinstance(item, Mapping):
        return item.get(key, default)
    return getattr(item, key, default)


def _text(value: Any) -> str:
    return str(value.value) if isinstance(value, Enum) else str(value)


def graph_depths(nodes: Iterable[tuple[str, str | None, int | None]]) -> dict[str, int]:
    """Each node's depth from ``(id, parent, declared depth)`` triples in any order.

    The depth is the larger of the declared one and the parent's depth + 1 (a root, or a
    node whose parent is unknown, is 1), so a trace replayed out of order -- a child
    before its parent, in another file -- is judged as deep as it is. Iterative: a
    million-node chain needs no recursion. A parent cycle is cut where it closes.
    """
    parents: dict[str, str | None] = {}
    declared: dict[str, int] = {}
    for node_id, parent, depth in nodes:
        parents.setdefault(node_id, parent)
        if depth is not None:
            declared[node_id] = max(depth, declared.get(node_id, depth))
    depths: dict[str, int] = {}
    for start in parents:
        chain: list[str] = []
        on_chain: set[str] = set()
        node: str | None = start
        while node is not None and node in parents and node not in depths:
            if node in on_chain:
                break
            chain.append(node)
            on_chain.add(node)
            node = parents[node]
        # Unknown parent (declared nowhere): at depth 1 at least, as veto_graph_node says.
        above = 0 if node is None else depths.get(node, 1)
        for member in reversed(chain):
            above = max(above + 1, declared.get(member, 0))
            depths[member] = above
    return depths


def _required(item: Any, key: str, what: str) -> Any:
    value = _get(item, key)
    if value is None:
        raise ValueError(f"{what} has no '{key}'")
    return value


def _as_int(value: Any, key: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} '{key}' must be an integer, not {value!r}")
    return value


class SecureGateway:
    """Routes tasks to providers by sensitivity and vetoes what the policy forbids.

    ``config`` (default ``MetaQoreConfig()``) supplies the policy name, provider lists,
    limits, trusted keys and required signatures. ``provider_status`` is a public dict
    (provider -> :class:`ProviderStatus`) that callers may edit; every configured provider
    starts available except ``config.unavailable_providers``. The auditor is any object
    with ``log_routing_decision(payload)`` and ``log_veto_event(veto, context=None)``.

    The graph and conversation checks remember what they have seen (children per node,
    participants per conversation) until :meth:`reset_run_state`.
    """

    def __init__(
        self,
        *,
        policy: str | RoutingPolicy | type[RoutingPolicy] | None = None,
        provider_status: Mapping[str, ProviderStatus] | None = None,
        auditor: GatewayAuditor | None = None,
        organization: str | None = None,
        config: MetaQoreConfig | None = None,
    ) -> None:
        self.config: MetaQoreConfig = config if config is not None else MetaQoreConfig()
        self.organization: str = (
            organization if organization is not None else self.config.organization
        )
        self._set_policy(self.config.secure_gateway_policy if policy is None else policy)
        from metaqore.config import trusted_key_text

        self._trusted_keys: dict[str, Ed25519PublicKey] = {}
        # key id -> the only actors it may sign for (keys not bound: absent)
        self._key_actors: dict[str, frozenset[str]] = {}
        for key_id, value in self.config.trusted_keys.items():
            try:
                self._trusted_keys[key_id] = parse_public_key(trusted_key_text(value))
            except SignatureValidationError as exc:
                raise ConfigurationError(f"trusted_keys['{key_id}']: {exc.message}") from None
            if not isinstance(value, str):
                self._key_actors[key_id] = frozenset(value.actors)
        self._require_signatures: frozenset[TaskSensitivity] = frozenset(
            self.config.require_signatures
        )

        if auditor is None:
            # Imported here: the auditor is only built when the caller brings none.
            from metaqore.core.audit import ComplianceAuditor

            auditor = ComplianceAuditor(organization=self.organization)
        self.auditor: GatewayAuditor = auditor

        unavailable = set(self.config.unavailable_providers)
        self.provider_status: dict[str, ProviderStatus] = {
            provider: ProviderStatus(available=provider not in unavailable)
            for provider in (*self._known_providers_in_order, *self.config.unavailable_providers)
        }
        if provider_status is not None:
            self.provider_status.update(provider_status)

        self._pending_veto: VetoReason | None = None
        self._node_depths: dict[Any, int] = {}
        self._children: dict[Any, set[Any]] = {}
        self._participants: dict[Any, set[Any]] = {}

    # -- policy ---------------------------------------------------------------------

    @property
    def policy(self) -> RoutingPolicy:
        """The routing policy in force (assign a name, class or instance to change it)."""
        return self._policy

    @policy.setter
    def policy(self, value: str | RoutingPolicy | type[RoutingPolicy] | None) -> None:
        self._set_policy(self.config.secure_gateway_policy if value is None else value)

    def _set_policy(self, value: str | RoutingPolicy | type[RoutingPolicy]) -> None:
        policy = resolve_routing_policy(
            value,
            local_providers=self.config.local_providers,
            cloud_providers=self.config.cloud_providers,
        )
        self._policy = policy
        self._policy_name = policy.name
        # Precomputed per sensitivity: evaluate_route runs once per artifact of a run.
        self._allowed: dict[TaskSensitivity, tuple[str, ...]] = {
            level: tuple(policy.get_allowed_providers(level)) for level in TaskSensitivity
        }
        self._allowed_sets: dict[TaskSensitivity, frozenset[str]] = {
            level: frozenset(providers) for level, providers in self._allowed.items()
        }
        ordered = [*policy.local_providers, *policy.cloud_providers]
        for providers in self._allowed.values():
            ordered.extend(providers)
        self._known_providers_in_order: tuple[str, ...] = tuple(dict.fromkeys(ordered))
        self._known_providers: frozenset[str] = frozenset(ordered)

    @property
    def policy_name(self) -> str:
        """Canonical name of the policy in force."""
        return self._policy_name

    @property
    def known_providers(self) -> tuple[str, ...]:
        """Every provider the policy knows (local first); any other provider is vetoed."""
        return self._known_providers_in_order

    @property
    def last_veto(self) -> VetoReason | None:
        """The veto of the last failed routing check, until a routing check succeeds."""
        return self._pending_veto

    def reset_run_state(self) -> None:
        """Forget graph nodes, conversations and the pending veto (start of a new run)."""
        self._pending_veto = None
        self._node_depths.clear()
        self._children.clear()
        self._participants.clear()

    # -- classification and routing ----------------------------------------------------

    def classify_task(
        self,
        *,
        agent_name: str,
        task_type: str,
        has_private_data: bool = False,
        has_sensitive_data: bool = False,
        is_security_task: bool = False,
    ) -> TaskSensitivity:
        """The sensitivity of a task (SPEC §4; the first matching rule wins)."""
        if is_security_task:
            return TaskSensitivity.CRITICAL if has_sensitive_data else TaskSensitivity.SENSITIVE
        if has_sensitive_data or has_private_data:
            return TaskSensitivity.SENSITIVE
        kind = (task_type or "").lower()
        if any(word in kind for word in _INTERNAL_TASK_WORDS):
            return TaskSensitivity.INTERNAL
        agent = (agent_name or "").lower()
        if any(word in agent for word in _INTERNAL_AGENT_WORDS):
            return TaskSensitivity.INTERNAL
        return TaskSensitivity.PUBLIC

    def get_allowed_providers(self, sensitivity: TaskSensitivity | str) -> list[str]:
        """Providers the policy allows for ``sensitivity`` (local first)."""
        return list(self._allowed[as_sensitivity(sensitivity)])

    def get_recommended_provider(self, sensitivity: TaskSensitivity | str) -> str | None:
        """The first allowed provider that is available; audited as ``auto_recommendation``."""
        level = as_sensitivity(sensitivity)
        provider = self._policy.get_recommended_provider(level, self.provider_status)
        if provider is not None:
            self.auditor.log_routing_decision(
                {
                    "agent_name": "auto",
                    "task_type": "recommendation",
                    "sensitivity": level.value,
                    "provider": provider,
                    "policy": self._policy_name,
                    "reason": "auto_recommendation",
                }
            )
        return provider

    def register_provider_status(
        self,
        provider: str,
        *,
        available: bool,
        latency_ms: float | None = None,
        capacity_score: float | None = None,
    ) -> None:
        """Record whether ``provider`` is available (and how fast / how loaded it is)."""
        self.provider_status[provider] = ProviderStatus(
            available=available, latency_ms=latency_ms, capacity_score=capacity_score
        )

    def evaluate_route(
        self, *, sensitivity: TaskSensitivity | str, provider: str
    ) -> VetoReason | None:
        """The veto routing ``sensitivity`` work to ``provider`` earns, or ``None``.

        Pure: nothing is audited and nothing remembered.
        """
        level = sensitivity if type(sensitivity) is TaskSensitivity else as_sensitivity(sensitivity)
        if provider in self._allowed_sets[level]:
            status = self.provider_status.get(provider)
            if status is None or status.available:
                return None
            reason = f"Provider '{provider}' unavailable"
        else:
            reason = f"Provider '{provider}' disallowed for {level.value} tasks"
        return VetoReason(
            reason=reason,
            policy_violated=self._policy_name,
            severity=ConflictSeverity.CRITICAL,
            details={
                "policy": self._policy_name,
                "provider": provider,
                "sensitivity": level.value,
                "allowed": list(self._allowed[level]),
                "unknown_provider": provider not in self._known_providers,
            },
        )

    def _route(
        self,
        *,
        agent_name: str,
        task_type: str,
        provider: str,
        has_private_data: bool,
        has_sensitive_data: bool,
        is_security_task: bool,
        sensitivity: TaskSensitivity | str | None,
        context: Mapping[str, Any] | None = None,
    ) -> VetoReason | None:
        level = self.classify_task(
            agent_name=agent_name,
            task_type=task_type,
            has_private_data=has_private_data,
            has_sensitive_data=has_sensitive_data,
            is_security_task=is_security_task,
        )
        if sensitivity is not None:
            level = effective_sensitivity(level, sensitivity)
        veto = self.evaluate_route(sensitivity=level, provider=provider)
        record = {
            "agent_name": agent_name,
            "task_type": task_type,
            "sensitivity": level.value,
            "provider": provider,
        }
        if veto is None:
            self._pending_veto = None
            self.auditor.log_routing_decision(
                {**record, "policy": self._policy_name, "reason": "allowed"}
            )
            return None
        if context:
            veto = veto.model_copy(update={"details": {**veto.details, **context}})
        self._pending_veto = veto
        self.auditor.log_veto_event(veto, {**record, **(context or {})})
        return veto

    def enforce_policy(
        self,
        *,
        agent_name: str,
        task_type: str,
        provider: str,
        has_private_data: bool = False,
        has_sensitive_data: bool = False,
        is_security_task: bool = False,
        sensitivity: TaskSensitivity | str | None = None,
    ) -> bool:
        """Whether the task may run on ``provider``; the decision is audited either way.

        ``sensitivity`` raises the classified sensitivity (never lowers it): pass the
        declared one, or the highest among the task's dependencies. On failure the veto
        stays pending (:attr:`last_veto`) until a routing check succeeds.
        """
        return (
            self._route(
                agent_name=agent_name,
                task_type=task_type,
                provider=provider,
                has_private_data=has_private_data,
                has_sensitive_data=has_sensitive_data,
                is_security_task=is_security_task,
                sensitivity=sensitivity,
            )
            is None
        )

    def _veto(self, veto: VetoReason, context: dict[str, Any]) -> VetoReason:
        self.auditor.log_veto_event(veto, context)
        return veto

    def _pending_annotated(
        self, *, reason_suffix: str | None = None, detail: tuple[str, str] | None = None
    ) -> VetoReason | None:
        # Already audited when enforce_policy failed; returning it again is not a new event.
        veto = self._pending_veto
        if veto is None:
            return None
        update: dict[str, Any] = {}
        if reason_suffix is not None:
            update["reason"] = f"{veto.reason} :: {reason_suffix}"
        if detail is not None:
            update["details"] = {**veto.details, detail[0]: detail[1]}
        return veto.model_copy(update=update)

    # -- vetoes ------------------------------------------------------------------------

    def veto_graph_node(self, node: Mapping[str, Any] | object | str) -> VetoReason | None:
        """Veto a node deeper than ``max_graph_depth``, a parent with more than
        ``max_parallel_branches`` children, or a task routed where the policy forbids.

        ``node`` has ``id``, ``parent`` (``None`` for a root), optional ``depth`` (the
        depth is the larger of it and the one derived from the parents seen so far, a
        root being 1), ``agent`` and an optional
        ``task`` (``type``, ``provider``, ``has_private_data``, ``has_sensitive_data``,
        ``is_security_task``, ``sensitivity``). A plain string returns the pending routing
        veto with the string appended to its reason.
        """
        if isinstance(node, str):
            return self._pending_annotated(reason_suffix=node)
        node_id = _required(node, "id", "graph node")
        parent = _get(node, "parent")
        depth_value = _get(node, "depth")
        # A declared depth can only add to what the parents say: an agent that writes
        # depth 1 on every node must not hide a deep chain.
        depth = 1 if parent is None else self._node_depths.get(parent, 1) + 1
        if depth_value is not None:
            depth = max(depth, _as_int(depth_value, "depth", f"graph node '{node_id}'"))
        self._node_depths[node_id] = depth
        children = 0
        if parent is not None:
            siblings = self._children.setdefault(parent, set())
            siblings.add(node_id)
            children = len(siblings)
        agent = _get(node, "agent")
        context: dict[str, Any] = {"node_id": node_id, "parent": parent, "agent_name": agent}

        depth_limit = self.config.max_graph_depth
        if depth > depth_limit:
            return self._veto(
                VetoReason(
                    reason=(
                        f"Graph node '{node_id}' is at depth {depth}, "
                        f"deeper than max_graph_depth {depth_limit}"
                    ),
                    policy_violated=POLICY_MAX_GRAPH_DEPTH,
                    details={**context, "depth": depth, "limit": depth_limit},
                ),
                context,
            )
        branch_limit = self.config.max_parallel_branches
        if children > branch_limit:
            return self._veto(
                VetoReason(
                    reason=(
                        f"Graph node '{parent}' has {children} children, more than "
                        f"max_parallel_branches {branch_limit} (adding '{node_id}')"
                    ),
                    policy_violated=POLICY_MAX_PARALLEL_BRANCHES,
                    details={**context, "children": children, "limit": branch_limit},
                ),
                context,
            )

        task = _get(node, "task")
        provider = _get(task, "provider", _get(node, "provider"))
        if provider is None:
            return None
        return self._route(
            agent_name=str(agent or ""),
            task_type=str(_get(task, "type") or "graph_node"),
            provider=str(provider),
            has_private_data=bool(_get(task, "has_private_data", False)),
            has_sensitive_data=bool(_get(task, "has_sensitive_data", False)),
            is_security_task=bool(_get(task, "is_security_task", False)),
            sensitivity=_get(task, "sensitivity"),
            context={"node_id": node_id},
        )

    def veto_conversation_message(
        self, message: Mapping[str, Any] | object | str
    ) -> VetoReason | None:
        """Veto a turn past ``max_conversation_turns``, a conversation with more than
        ``max_conversation_participants`` (senders and recipients so far), or a message
        routed where the policy forbids.

        ``message`` has ``conversation``, ``turn``, ``sender``, ``recipients`` and optional
        ``provider``, ``contains_sensitive_data``, ``task_type`` (default
        ``conversation``), ``sensitivity``. A plain string returns the pending routing veto
        with the string as ``details["message"]``.
        """
        if isinstance(message, str):
            return self._pending_annotated(detail=("message", message))
        conversation = _required(message, "conversation", "conversation message")
        what = f"message of conversation '{conversation}'"
        turn = _as_int(_required(message, "turn", what), "turn", what)
        sender = _get(message, "sender")
        recipients = _get(message, "recipients") or ()
        if isinstance(recipients, str):
            recipients = (recipients,)
        participants = self._participants.setdefault(conversation, set())
        if sender is not None:
            participants.add(sender)
        participants.update(recipients)
        context: dict[str, Any] = {
            "conversation": conversation,
            "turn": turn,
            "agent_name": sender,
        }

        turn_limit = self.config.max_conversation_turns
        if turn > turn_limit:
            return self._veto(
                VetoReason(
                    reason=(
                        f"Conversation '{conversation}' reached turn {turn}, "
                        f"past max_conversation_turns {turn_limit}"
                    ),
                    policy_violated=POLICY_MAX_CONVERSATION_TURNS,
                    details={**context, "limit": turn_limit},
                ),
                context,
            )
        participant_limit = self.config.max_conversation_participants
        if len(participants) > participant_limit:
            return self._veto(
                VetoReason(
                    reason=(
                        f"Conversation '{conversation}' has {len(participants)} participants, "
                        f"more than max_conversation_participants {participant_limit}"
                    ),
                    policy_violated=POLICY_MAX_CONVERSATION_PARTICIPANTS,
                    details={
                        **context,
                        "participants": sorted(map(str, participants)),
                        "count": len(participants),
                        "limit": participant_limit,
                    },
                ),
                context,
            )

        provider = _get(message, "provider")
        if provider is None:
            return None
        return self._route(
            agent_name=str(sender or ""),
            task_type=str(_get(message, "task_type") or "conversation"),
            provider=str(provider),
            has_private_data=False,
            has_sensitive_data=bool(_get(message, "contains_sensitive_data", False)),
            is_security_task=False,
            sensitivity=_get(message, "sensitivity"),
            context={"conversation": conversation, "turn": turn},
        )

    def veto_state_transition(
        self, transition: Mapping[str, Any] | object | str
    ) -> VetoReason | None:
        """Veto a task or project status change the transition table (SPEC §2) forbids.

        ``transition`` has ``entity`` (``task`` or ``project``), ``id``, ``from``, ``to``
        and optional ``by`` and ``provider`` (routed with ``by`` as the agent). A plain
        string returns the pending routing veto with the string as
        ``details["transition"]``.
        """
        if isinstance(transition, str):
            return self._pending_annotated(detail=("transition", transition))
        entity = _text(_get(transition, "entity", ""))
        subject = _get(transition, "id")
        source = _get(transition, "from", _get(transition, "from_status"))
        target = _get(transition, "to", _get(transition, "to_status"))
        by = _get(transition, "by")
        source_text = "" if source is None else _text(source)
        target_text = "" if target is None else _text(target)
        if not transition_allowed(entity, source_text, target_text):
            tables: dict[str, Mapping[Any, frozenset[Any]]] = {
                "task": TASK_TRANSITIONS,
                "project": PROJECT_TRANSITIONS,
            }
            table = tables.get(entity)
            allowed: list[str] = []
            if table is None:
                problem = f"refused: unknown entity '{entity}' (expected task or project)"
            else:
                statuses = {status.value: status for status in table}
                if source_text not in statuses:
                    problem = f"refused: unknown {entity} status '{source_text}'"
                elif target_text not in statuses:
                    problem = f"refused: unknown {entity} status '{target_text}'"
                else:
                    allowed = sorted(status.value for status in table[statuses[source_text]])
                    problem = "is not allowed" + (
                        f" (allowed from {source_text}: {', '.join(allowed)})"
                        if allowed
                        else f" ({source_text} is terminal)"
                    )
            context: dict[str, Any] = {
                "entity": entity,
                "id": subject,
                "from": source_text,
                "to": target_text,
                "by": by,
            }
            return self._veto(
                VetoReason(
                    reason=(
                        f"{entity or 'entity'} '{subject}': transition "
                        f"{source_text} -> {target_text} {problem}"
                    ),
                    policy_violated=POLICY_STATE_TRANSITION,
                    details={**context, "allowed": allowed},
                ),
                context,
            )
        provider = _get(transition, "provider")
        if provider is None:
            return None
        return self._route(
            agent_name=str(by or ""),
            task_type=f"{entity}_state_transition",
            provider=str(provider),
            has_private_data=False,
            has_sensitive_data=False,
            is_security_task=False,
            sensitivity=_get(transition, "sensitivity"),
            context={"entity": entity, "id": subject},
        )

    # -- provenance --------------------------------------------------------------------

    def verify_provenance(
        self,
        *,
        artifact_id: str,
        artifact_type: str,
        version: int,
        content_hash: str,
        sensitivity: TaskSensitivity | str | None,
        created_by: str,
        provenance: Iterable[Mapping[str, Any] | object],
    ) -> VetoReason | None:
        """Veto a signature that does not verify or names an untrusted key, or a missing
        signature by ``created_by`` when ``sensitivity`` is in ``require_signatures``.

        Each provenance entry has ``actor``, ``action``, ``key_id`` and ``signature``;
        entries without a signature are not checked.
        """
        level = effective_sensitivity(sensitivity)
        context: dict[str, Any] = {
            "artifact_id": artifact_id,
            "artifact_type": artifact_type,
            "version": version,
            "created_by": created_by,
        }
        signed_by_creator = False
        for index, entry in enumerate(provenance):
            signature = _get(entry, "signature")
            if not signature:
                continue
            actor = _get(entry, "actor")
            action = _get(entry, "action")
            key_id = _get(entry, "key_id")
            key = self._trusted_keys.get(key_id) if isinstance(key_id, str) else None
            where = f"Provenance entry {index} of artifact '{artifact_id}' (actor '{actor}')"
            if key is None:
                reason = (
                    f"{where} is signed without a key id"
                    if key_id is None
                    else f"{where} is signed with unknown key id '{key_id}' (not in trusted_keys)"
                )
            elif not verify_signature(
                key,
                signature,
                artifact_id=artifact_id,
                artifact_type=artifact_type,
                version=version,
                content_hash=content_hash,
                actor=actor,
                action=action,
            ):
                reason = f"{where}: signature does not verify with key id '{key_id}'"
            elif key_id in self._key_actors and actor not in self._key_actors[key_id]:
                allowed = ", ".join(sorted(self._key_actors[key_id]))
                reason = (
                    f"{where} is signed with key id '{key_id}', which may sign only for "
                    f"{allowed}"
                )
            else:
                if actor == created_by:
                    signed_by_creator = True
                continue
            return self._veto(
                VetoReason(
                    reason=reason,
                    policy_violated=POLICY_PROVENANCE,
                    details={
                        **context,
                        "index": index,
                        "actor": actor,
                        "action": action,
                        "key_id": key_id,
                        "sensitivity": level.value,
                    },
                ),
                context,
            )
        if level in self._require_signatures and not signed_by_creator:
            return self._veto(
                VetoReason(
                    reason=(
                        f"Artifact '{artifact_id}' is {level.value} and needs a valid "
                        f"signature by its creator '{created_by}'; none found"
                    ),
                    policy_violated=POLICY_PROVENANCE,
                    details={**context, "sensitivity": level.value, "required": True},
                ),
                context,
            )
        return None


__all__ = [
    "BUILTIN_POLICIES",
    "DEFAULT_CLOUD_PROVIDERS",
    "DEFAULT_LOCAL_PROVIDERS",
    "KEY_PREFIX",
    "POLICY_MAX_CONVERSATION_PARTICIPANTS",
    "POLICY_MAX_CONVERSATION_TURNS",
    "POLICY_MAX_GRAPH_DEPTH",
    "POLICY_MAX_PARALLEL_BRANCHES",
    "POLICY_PROVENANCE",
    "POLICY_STATE_TRANSITION",
    "CompliancePolicy",
    "DefaultRoutingPolicy",
    "EnterpriseRoutingPolicy",
    "GatewayAuditor",
    "ProviderStatus",
    "RoutingPolicy",
    "SecureGateway",
    "TaskSensitivity",
    "as_sensitivity",
    "canonical_policy_name",
    "effective_sensitivity",
    "generate_keypair",
    "graph_depths",
    "load_private_key",
    "load_public_key",
    "metaqore_routing_policies",
    "parse_public_key",
    "public_key_text",
    "resolve_routing_policy",
    "sign_provenance",
    "signing_payload",
    "verify_signature",
    "write_keypair",
]
