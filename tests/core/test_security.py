"""SecureGateway: classification, routing policies, vetoes and what gets audited."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from metaqore.config import MetaQoreConfig
from metaqore.core import models
from metaqore.core.models import ConflictSeverity, VetoReason
from metaqore.core.security import (
    CompliancePolicy,
    DefaultRoutingPolicy,
    EnterpriseRoutingPolicy,
    ProviderStatus,
    RoutingPolicy,
    SecureGateway,
    TaskSensitivity,
    canonical_policy_name,
    effective_sensitivity,
    resolve_routing_policy,
)
from metaqore.plugins import get_plugin_manager, hookimpl, routing_policies

PUBLIC = TaskSensitivity.PUBLIC
INTERNAL = TaskSensitivity.INTERNAL
SENSITIVE = TaskSensitivity.SENSITIVE
CRITICAL = TaskSensitivity.CRITICAL

LOCAL = ["hmcp_gateway", "ollama"]
EVERYWHERE = ["hmcp_gateway", "ollama", "openrouter"]


class RecordingAuditor:
    """Keeps exactly what the gateway audits, in order."""

    def __init__(self) -> None:
        self.decisions: list[dict[str, Any]] = []
        self.vetoes: list[tuple[VetoReason, dict[str, Any] | None]] = []

    def log_routing_decision(self, payload: dict[str, Any]) -> None:
        self.decisions.append(payload)

    def log_veto_event(self, veto: VetoReason, context: dict[str, Any] | None = None) -> None:
        self.vetoes.append((veto, context))


GatewayFactory = Callable[..., tuple[SecureGateway, RecordingAuditor]]


@pytest.fixture
def make_gateway() -> GatewayFactory:
    def build(
        policy: Any = None, provider_status: Any = None, **config: Any
    ) -> tuple[SecureGateway, RecordingAuditor]:
        auditor = RecordingAuditor()
        gateway = SecureGateway(
            policy=policy,
            provider_status=provider_status,
            auditor=auditor,
            config=MetaQoreConfig(**config),
        )
        return gateway, auditor

    return build


# -- classification --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"is_security_task": True, "has_sensitive_data": True}, CRITICAL),
        ({"is_security_task": True}, SENSITIVE),
        ({"is_security_task": True, "has_private_data": True}, SENSITIVE),
        ({"has_sensitive_data": True}, SENSITIVE),
        ({"has_private_data": True}, SENSITIVE),
        ({"task_type": "sprint_planning"}, INTERNAL),
        ({"task_type": "StateSync"}, INTERNAL),
        ({"task_type": "GOVERNANCE_review"}, INTERNAL),
        ({"agent_name": "SchemaValidator"}, INTERNAL),
        ({"agent_name": "writer", "task_type": "code"}, PUBLIC),
        # first match wins: data flags beat an internal task type or agent name
        ({"task_type": "plan", "has_private_data": True}, SENSITIVE),
        ({"agent_name": "validator", "has_sensitive_data": True}, SENSITIVE),
        # security beats data flags
        ({"task_type": "plan", "is_security_task": True, "has_sensitive_data": True}, CRITICAL),
    ],
)
def test_classify_task_rules(
    make_gateway: GatewayFactory, kwargs: dict[str, Any], expected: TaskSensitivity
) -> None:
    gateway, auditor = make_gateway()
    arguments = {"agent_name": "writer", "task_type": "code", **kwargs}
    assert gateway.classify_task(**arguments) is expected
    assert auditor.decisions == []
    assert auditor.vetoes == []


def test_effective_sensitivity_is_the_highest_given() -> None:
    assert effective_sensitivity() is PUBLIC
    assert effective_sensitivity(None, None) is PUBLIC
    assert effective_sensitivity(PUBLIC, "critical", INTERNAL) is CRITICAL
    assert effective_sensitivity("Internal", None, PUBLIC) is INTERNAL
    with pytest.raises(ValueError, match="unknown sensitivity 'secret'"):
        effective_sensitivity("secret")


# -- policies --------------------------------------------------------------------------

ALLOWED_TABLE = [
    ("default_local_first", PUBLIC, EVERYWHERE),
    ("default_local_first", INTERNAL, EVERYWHERE),
    ("default_local_first", SENSITIVE, LOCAL),
    ("default_local_first", CRITICAL, LOCAL),
    ("enterprise_residency", PUBLIC, EVERYWHERE),
    ("enterprise_residency", INTERNAL, LOCAL),
    ("enterprise_residency", SENSITIVE, LOCAL),
    ("enterprise_residency", CRITICAL, LOCAL),
    ("compliance_local_only", PUBLIC, LOCAL),
    ("compliance_local_only", INTERNAL, LOCAL),
    ("compliance_local_only", SENSITIVE, LOCAL),
    ("compliance_local_only", CRITICAL, LOCAL),
]

# Classification inputs that land on each sensitivity.
TASK_OF: dict[TaskSensitivity, dict[str, Any]] = {
    PUBLIC: {"agent_name": "writer", "task_type": "code"},
    INTERNAL: {"agent_name": "writer", "task_type": "release_plan"},
    SENSITIVE: {"agent_name": "writer", "task_type": "code", "has_private_data": True},
    CRITICAL: {
        "agent_name": "auditor",
        "task_type": "pentest",
        "is_security_task": True,
        "has_sensitive_data": True,
    },
}


@pytest.mark.parametrize(("policy", "sensitivity", "allowed"), ALLOWED_TABLE)
def test_allowed_providers_per_policy_and_sensitivity(
    make_gateway: GatewayFactory, policy: str, sensitivity: TaskSensitivity, allowed: list[str]
) -> None:
    gateway, _ = make_gateway(policy=policy)
    assert gateway.get_allowed_providers(sensitivity) == allowed
    assert gateway.get_allowed_providers(sensitivity.value.upper()) == allowed
    assert resolve_routing_policy(policy).get_allowed_providers(sensitivity) == allowed


@pytest.mark.parametrize("provider", EVERYWHERE)
@pytest.mark.parametrize(("policy", "sensitivity", "allowed"), ALLOWED_TABLE)
def test_enforce_policy_per_cell(
    make_gateway: GatewayFactory,
    policy: str,
    sensitivity: TaskSensitivity,
    allowed: list[str],
    provider: str,
) -> None:
    gateway, auditor = make_gateway(policy=policy)
    task = TASK_OF[sensitivity]

    result = gateway.enforce_policy(provider=provider, **task)

    record = {
        "agent_name": task["agent_name"],
        "task_type": task["task_type"],
        "sensitivity": sensitivity.value,
        "provider": provider,
    }
    if provider in allowed:
        assert result is True
        assert auditor.decisions == [{**record, "policy": policy, "reason": "allowed"}]
        assert auditor.vetoes == []
        assert gateway.last_veto is None
    else:
        assert result is False
        assert auditor.decisions == []
        [(veto, context)] = auditor.vetoes
        assert veto.reason == f"Provider '{provider}' disallowed for {sensitivity.value} tasks"
        assert veto.policy_violated == policy
        assert veto.severity is ConflictSeverity.CRITICAL
        assert veto.details == {
            "policy": policy,
            "provider": provider,
            "sensitivity": sensitivity.value,
            "allowed": allowed,
            "unknown_provider": False,
        }
        assert context == record
        assert gateway.last_veto == veto


def test_a_passed_sensitivity_raises_but_never_lowers_the_classification(
    make_gateway: GatewayFactory,
) -> None:
    gateway, auditor = make_gateway()
    # A public task built from a critical input is critical.
    assert not gateway.enforce_policy(
        agent_name="writer", task_type="code", provider="openrouter", sensitivity="critical"
    )
    assert auditor.vetoes[-1][0].reason == "Provider 'openrouter' disallowed for critical tasks"
    assert not gateway.enforce_policy(
        agent_name="writer",
        task_type="code",
        provider="openrouter",
        has_private_data=True,
        sensitivity=PUBLIC,
    )
    assert auditor.vetoes[-1][0].reason == "Provider 'openrouter' disallowed for sensitive tasks"


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("default_local_first", "default_local_first"),
        ("default", "default_local_first"),
        ("local_first", "default_local_first"),
        ("Local-First", "default_local_first"),
        ("DEFAULT-LOCAL-FIRST", "default_local_first"),
        ("enterprise_residency", "enterprise_residency"),
        (" ENTERPRISE ", "enterprise_residency"),
        ("residency", "enterprise_residency"),
        ("Enterprise-Residency", "enterprise_residency"),
        ("compliance_local_only", "compliance_local_only"),
        ("compliance", "compliance_local_only"),
        ("local_only", "compliance_local_only"),
        ("Local-Only\n", "compliance_local_only"),
    ],
)
def test_policy_names_and_aliases(name: str, canonical: str) -> None:
    assert canonical_policy_name(name) == canonical
    assert resolve_routing_policy(name).name == canonical
    assert MetaQoreConfig(secure_gateway_policy=name).secure_gateway_policy == canonical


def test_config_normalises_the_residency_alias() -> None:
    assert MetaQoreConfig(secure_gateway_policy="residency").secure_gateway_policy == (
        "enterprise_residency"
    )


def test_unknown_policy_name_raises_with_a_suggestion_and_the_known_names() -> None:
    with pytest.raises(ValueError, match="unknown routing policy 'enterprize'") as info:
        canonical_policy_name("enterprize")
    message = str(info.value)
    assert "did you mean 'enterprise'?" in message
    for name in ("default_local_first", "enterprise_residency", "compliance_local_only"):
        assert name in message
    with pytest.raises(ValidationError, match="unknown routing policy 'cloud_only'"):
        MetaQoreConfig(secure_gateway_policy="cloud_only")


def test_resolve_routing_policy_forms() -> None:
    assert type(resolve_routing_policy(None)) is DefaultRoutingPolicy
    instance = CompliancePolicy(local_providers=["vllm"])
    assert resolve_routing_policy(instance) is instance
    built = resolve_routing_policy(
        EnterpriseRoutingPolicy, local_providers=["vllm"], cloud_providers=["bedrock"]
    )
    assert built.get_allowed_providers(PUBLIC) == ["vllm", "bedrock"]
    assert built.get_allowed_providers(INTERNAL) == ["vllm"]


def test_builtin_policies_are_registered_through_the_plugin_hook() -> None:
    assert routing_policies() == {
        "default_local_first": DefaultRoutingPolicy,
        "enterprise_residency": EnterpriseRoutingPolicy,
        "compliance_local_only": CompliancePolicy,
    }


class EuOnlyPolicy(RoutingPolicy):
    """A third-party policy: only the first local provider, whatever the sensitivity."""

    name: ClassVar[str] = "test_eu_only"
    aliases: ClassVar[tuple[str, ...]] = ("eu_only",)

    def get_allowed_providers(self, sensitivity: TaskSensitivity | str) -> list[str]:
        return list(self.local_providers[:1])


class _EuOnlyPlugin:
    @hookimpl
    def metaqore_routing_policies(self) -> list[type[RoutingPolicy]]:
        return [EuOnlyPolicy]


@pytest.fixture
def eu_only_plugin() -> Iterator[None]:
    manager = get_plugin_manager()
    plugin = _EuOnlyPlugin()
    manager.register(plugin, name="test-eu-only")
    try:
        yield
    finally:
        manager.unregister(plugin)


@pytest.mark.usefixtures("eu_only_plugin")
def test_a_plugin_policy_resolves_by_alias(make_gateway: GatewayFactory) -> None:
    assert canonical_policy_name("EU-Only") == "test_eu_only"
    gateway, _ = make_gateway(secure_gateway_policy="eu-only")
    assert gateway.policy_name == "test_eu_only"
    assert gateway.get_allowed_providers(PUBLIC) == ["hmcp_gateway"]
    assert not gateway.enforce_policy(agent_name="a", task_type="code", provider="ollama")


# -- providers -------------------------------------------------------------------------


def test_configured_provider_lists(make_gateway: GatewayFactory) -> None:
    gateway, auditor = make_gateway(
        local_providers=["vllm_local", "ollama"], cloud_providers=["openrouter", "anthropic"]
    )
    assert gateway.get_allowed_providers(CRITICAL) == ["vllm_local", "ollama"]
    assert gateway.get_allowed_providers(PUBLIC) == [
        "vllm_local",
        "ollama",
        "openrouter",
        "anthropic",
    ]
    assert gateway.enforce_policy(provider="vllm_local", **TASK_OF[CRITICAL])
    assert not gateway.enforce_policy(provider="anthropic", **TASK_OF[CRITICAL])
    # hmcp_gateway is no longer configured: unknown, so vetoed even for public work.
    assert not gateway.enforce_policy(provider="hmcp_gateway", **TASK_OF[PUBLIC])
    assert auditor.vetoes[-1][0].details["unknown_provider"] is True


def test_unknown_provider_is_vetoed(make_gateway: GatewayFactory) -> None:
    gateway, auditor = make_gateway()
    assert not gateway.enforce_policy(agent_name="writer", task_type="code", provider="gpt-x")
    [(veto, _)] = auditor.vetoes
    assert veto.reason == "Provider 'gpt-x' disallowed for public tasks"
    assert veto.details["unknown_provider"] is True
    assert veto.details["allowed"] == EVERYWHERE


def test_unavailable_provider_is_vetoed_as_unavailable(make_gateway: GatewayFactory) -> None:
    gateway, auditor = make_gateway(unavailable_providers=["ollama"])
    assert gateway.provider_status["ollama"] == ProviderStatus(available=False)
    assert gateway.provider_status["hmcp_gateway"].available

    assert not gateway.enforce_policy(provider="ollama", **TASK_OF[SENSITIVE])
    [(veto, _)] = auditor.vetoes
    assert veto.reason == "Provider 'ollama' unavailable"
    assert veto.policy_violated == "default_local_first"
    assert veto.details["unknown_provider"] is False

    # Disallowed wins over unavailable: the reason names the policy problem.
    gateway.register_provider_status("openrouter", available=False)
    assert not gateway.enforce_policy(provider="openrouter", **TASK_OF[SENSITIVE])
    assert auditor.vetoes[-1][0].reason == "Provider 'openrouter' disallowed for sensitive tasks"

    gateway.register_provider_status("ollama", available=True, latency_ms=12.5)
    assert gateway.enforce_policy(provider="ollama", **TASK_OF[SENSITIVE])
    # provider_status is a public dict: editing it is enough.
    gateway.provider_status["ollama"] = ProviderStatus(available=False)
    assert not gateway.enforce_policy(provider="ollama", **TASK_OF[SENSITIVE])


def test_recommended_provider_skips_unavailable_and_is_audited(
    make_gateway: GatewayFactory,
) -> None:
    gateway, auditor = make_gateway(unavailable_providers=["hmcp_gateway"])
    assert gateway.get_recommended_provider(CRITICAL) == "ollama"
    assert auditor.decisions == [
        {
            "agent_name": "auto",
            "task_type": "recommendation",
            "sensitivity": "critical",
            "provider": "ollama",
            "policy": "default_local_first",
            "reason": "auto_recommendation",
        }
    ]
    gateway.register_provider_status("ollama", available=False)
    assert gateway.get_recommended_provider("public") == "openrouter"
    assert gateway.get_recommended_provider(CRITICAL) is None
    assert [payload["provider"] for payload in auditor.decisions] == ["ollama", "openrouter"]
    assert auditor.vetoes == []


def test_evaluate_route_is_pure(make_gateway: GatewayFactory) -> None:
    gateway, auditor = make_gateway()
    assert gateway.evaluate_route(sensitivity=PUBLIC, provider="openrouter") is None
    veto = gateway.evaluate_route(sensitivity="critical", provider="openrouter")
    assert veto is not None
    assert veto.reason == "Provider 'openrouter' disallowed for critical tasks"
    assert auditor.decisions == []
    assert auditor.vetoes == []
    assert gateway.last_veto is None


def test_pending_veto_lasts_until_a_routing_check_succeeds(make_gateway: GatewayFactory) -> None:
    gateway, _ = make_gateway()
    assert not gateway.enforce_policy(provider="openrouter", **TASK_OF[CRITICAL])
    assert gateway.last_veto is not None
    assert gateway.enforce_policy(provider="ollama", **TASK_OF[CRITICAL])
    assert gateway.last_veto is None


def test_gateway_uses_the_configured_policy_and_organization(make_gateway: GatewayFactory) -> None:
    gateway, _ = make_gateway(secure_gateway_policy="compliance", organization="acme")
    assert gateway.policy_name == "compliance_local_only"
    assert isinstance(gateway.policy, CompliancePolicy)
    assert gateway.organization == "acme"
    explicit, _ = make_gateway(policy="Enterprise", secure_gateway_policy="compliance")
    assert explicit.policy_name == "enterprise_residency"


def test_default_auditor_is_a_compliance_auditor() -> None:
    audit = pytest.importorskip("metaqore.core.audit")
    gateway = SecureGateway(organization="acme")
    assert isinstance(gateway.auditor, audit.ComplianceAuditor)


# -- graph nodes -----------------------------------------------------------------------


def test_graph_depth_limit_from_the_parent_chain(make_gateway: GatewayFactory) -> None:
    gateway, auditor = make_gateway()
    assert gateway.veto_graph_node({"id": "root", "parent": None, "agent": "planner"}) is None
    assert gateway.veto_graph_node({"id": "a", "parent": "root", "agent": "coder"}) is None
    assert gateway.veto_graph_node({"id": "b", "parent": "a", "agent": "coder"}) is None
    veto = gateway.veto_graph_node({"id": "c", "parent": "b", "agent": "coder"})
    assert veto is not None
    assert veto.policy_violated == "max_graph_depth"
    assert veto.details["node_id"] == "c"
    assert (veto.details["depth"], veto.details["limit"]) == (4, 3)
    assert "'c'" in veto.reason
    assert "depth 4" in veto.reason
    assert auditor.vetoes == [(veto, {"node_id": "c", "parent": "b", "agent_name": "coder"})]


def test_graph_depth_limit_from_a_declared_depth(make_gateway: GatewayFactory) -> None:
    gateway, _ = make_gateway(max_graph_depth=5)
    assert gateway.veto_graph_node({"id": "x", "parent": "p", "depth": 5}) is None
    veto = gateway.veto_graph_node(SimpleNamespace(id="y", parent="x", depth=None, agent="a"))
    assert veto is not None
    assert veto.details["depth"] == 6
    assert veto.details["limit"] == 5


def test_graph_branch_limit(make_gateway: GatewayFactory) -> None:
    gateway, auditor = make_gateway()
    gateway.veto_graph_node({"id": "root", "parent": None})
    for index in range(5):
        assert gateway.veto_graph_node({"id": f"child{index}", "parent": "root"}) is None
    # Judging a node twice does not make it two children.
    assert gateway.veto_graph_node({"id": "child0", "parent": "root"}) is None
    veto = gateway.veto_graph_node({"id": "child5", "parent": "root", "agent": "coder"})
    assert veto is not None
    assert veto.policy_violated == "max_parallel_branches"
    assert veto.details["node_id"] == "child5"
    assert veto.details["parent"] == "root"
    assert (veto.details["children"], veto.details["limit"]) == (6, 5)
    assert [logged for logged, _ in auditor.vetoes] == [veto]

    gateway.reset_run_state()
    assert gateway.veto_graph_node({"id": "child5", "parent": "root"}) is None


def test_graph_node_routing(make_gateway: GatewayFactory) -> None:
    gateway, auditor = make_gateway()
    allowed = gateway.veto_graph_node(
        {
            "id": "n1",
            "parent": None,
            "agent": "coder",
            "task": {"type": "code", "provider": "openrouter"},
        }
    )
    assert allowed is None
    assert auditor.decisions == [
        {
            "agent_name": "coder",
            "task_type": "code",
            "sensitivity": "public",
            "provider": "openrouter",
            "policy": "default_local_first",
            "reason": "allowed",
        }
    ]
    veto = gateway.veto_graph_node(
        {
            "id": "n2",
            "parent": "n1",
            "agent": "coder",
            "task": {"type": "code", "provider": "openrouter", "has_sensitive_data": True},
        }
    )
    assert veto is not None
    assert veto.reason == "Provider 'openrouter' disallowed for sensitive tasks"
    assert veto.policy_violated == "default_local_first"
    assert veto.details["node_id"] == "n2"
    assert auditor.vetoes == [
        (
            veto,
            {
                "agent_name": "coder",
                "task_type": "code",
                "sensitivity": "sensitive",
                "provider": "openrouter",
                "node_id": "n2",
            },
        )
    ]
    declared = gateway.veto_graph_node(
        {"id": "n3", "parent": "n1", "task": {"provider": "openrouter", "sensitivity": "critical"}}
    )
    assert declared is not None
    assert declared.details["sensitivity"] == "critical"


def test_graph_node_limits_are_checked_before_routing(make_gateway: GatewayFactory) -> None:
    gateway, auditor = make_gateway(max_graph_depth=1)
    veto = gateway.veto_graph_node(
        {"id": "deep", "parent": "root", "task": {"provider": "not-a-provider"}}
    )
    assert veto is not None
    assert veto.policy_violated == "max_graph_depth"
    assert len(auditor.vetoes) == 1


# -- conversations ---------------------------------------------------------------------


def _message(turn: int, sender: str, recipients: list[str], **extra: Any) -> dict[str, Any]:
    return {"conversation": "c1", "turn": turn, "sender": sender, "recipients": recipients, **extra}


def test_conversation_turn_limit(make_gateway: GatewayFactory) -> None:
    gateway, auditor = make_gateway()
    assert gateway.veto_conversation_message(_message(10, "a", ["b"])) is None
    veto = gateway.veto_conversation_message(_message(11, "b", ["a"]))
    assert veto is not None
    assert veto.policy_violated == "max_conversation_turns"
    assert (veto.details["turn"], veto.details["limit"]) == (11, 10)
    assert veto.details["conversation"] == "c1"
    assert [logged for logged, _ in auditor.vetoes] == [veto]


def test_conversation_participant_limit(make_gateway: GatewayFactory) -> None:
    gateway, auditor = make_gateway()
    assert gateway.veto_conversation_message(_message(1, "a", ["b", "c"])) is None
    assert gateway.veto_conversation_message(_message(2, "d", ["e", "f", "a"])) is None
    # Another conversation's participants do not count.
    other = {"conversation": "c2", "turn": 1, "sender": "x", "recipients": ["y"]}
    assert gateway.veto_conversation_message(other) is None
    veto = gateway.veto_conversation_message(_message(3, "g", ["a"]))
    assert veto is not None
    assert veto.policy_violated == "max_conversation_participants"
    assert (veto.details["count"], veto.details["limit"]) == (7, 6)
    assert veto.details["participants"] == ["a", "b", "c", "d", "e", "f", "g"]
    assert len(auditor.vetoes) == 1


def test_conversation_routing(make_gateway: GatewayFactory) -> None:
    gateway, auditor = make_gateway(policy="enterprise")
    assert gateway.veto_conversation_message(_message(1, "a", ["b"], provider="openrouter")) is None
    assert auditor.decisions[-1]["task_type"] == "conversation"
    assert auditor.decisions[-1]["agent_name"] == "a"

    veto = gateway.veto_conversation_message(
        _message(2, "b", ["a"], provider="openrouter", contains_sensitive_data=True)
    )
    assert veto is not None
    assert veto.reason == "Provider 'openrouter' disallowed for sensitive tasks"
    assert veto.policy_violated == "enterprise_residency"
    assert veto.details["conversation"] == "c1"

    # A validator's messages are internal: residency keeps them local.
    veto = gateway.veto_conversation_message(
        _message(3, "schema_validator", ["a"], provider="openrouter")
    )
    assert veto is not None
    assert veto.details["sensitivity"] == "internal"
    assert auditor.vetoes[-1][1] is not None
    assert auditor.vetoes[-1][1]["agent_name"] == "schema_validator"


# -- state transitions -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("entity", "source", "target"),
    [
        ("task", "pending", "in_progress"),
        ("task", "blocked", "pending"),
        ("task", "failed", "pending"),
        ("project", "initialized", "planning"),
        ("project", "planning", "in_progress"),
        ("project", "completed", "archived"),
    ],
)
def test_allowed_transitions_pass(
    make_gateway: GatewayFactory, entity: str, source: str, target: str
) -> None:
    gateway, auditor = make_gateway()
    transition = {"entity": entity, "id": "x1", "from": source, "to": target, "by": "pm"}
    assert gateway.veto_state_transition(transition) is None
    assert auditor.vetoes == []


@pytest.mark.parametrize(
    ("entity", "source", "target", "words"),
    [
        ("task", "completed", "pending", "completed is terminal"),
        ("task", "pending", "completed", "allowed from pending: blocked, in_progress"),
        ("project", "archived", "planning", "archived is terminal"),
        ("project", "archived", "in_progress", "archived is terminal"),
        ("project", "initialized", "completed", "allowed from initialized"),
        ("project", "planning", "done", "unknown project status 'done'"),
        ("milestone", "open", "closed", "unknown entity 'milestone'"),
    ],
)
def test_disallowed_transitions_are_vetoed(
    make_gateway: GatewayFactory, entity: str, source: str, target: str, words: str
) -> None:
    gateway, auditor = make_gateway()
    transition = {"entity": entity, "id": "x1", "from": source, "to": target, "by": "pm"}
    veto = gateway.veto_state_transition(transition)
    assert veto is not None
    assert veto.policy_violated == "state_transition"
    assert f"transition {source} -> {target}" in veto.reason
    assert words in veto.reason
    assert veto.details["id"] == "x1"
    assert veto.details["by"] == "pm"
    assert auditor.vetoes == [
        (veto, {"entity": entity, "id": "x1", "from": source, "to": target, "by": "pm"})
    ]


def test_transition_accepts_status_enums(make_gateway: GatewayFactory) -> None:
    gateway, _ = make_gateway()
    status = models.TaskStatus
    ok = {"entity": "task", "id": "t", "from": status.PENDING, "to": status.IN_PROGRESS}
    assert gateway.veto_state_transition(ok) is None
    bad = {"entity": "task", "id": "t", "from": status.COMPLETED, "to": status.FAILED}
    veto = gateway.veto_state_transition(bad)
    assert veto is not None
    assert "completed -> failed" in veto.reason


def test_transition_routing(make_gateway: GatewayFactory) -> None:
    gateway, auditor = make_gateway(policy="compliance")
    transition = {
        "entity": "task",
        "id": "t1",
        "from": "pending",
        "to": "in_progress",
        "by": "pm",
        "provider": "openrouter",
    }
    veto = gateway.veto_state_transition(transition)
    assert veto is not None
    assert veto.reason == "Provider 'openrouter' disallowed for internal tasks"
    assert veto.policy_violated == "compliance_local_only"
    assert auditor.vetoes[-1][1] is not None
    assert auditor.vetoes[-1][1]["agent_name"] == "pm"


# -- string compatibility --------------------------------------------------------------


def test_string_forms_return_nothing_without_a_pending_veto(make_gateway: GatewayFactory) -> None:
    gateway, _ = make_gateway()
    assert gateway.veto_graph_node("planner -> coder") is None
    assert gateway.veto_conversation_message("hello") is None
    assert gateway.veto_state_transition("task t1 pending -> in_progress") is None


def test_string_forms_return_the_pending_routing_veto(make_gateway: GatewayFactory) -> None:
    gateway, auditor = make_gateway()
    assert not gateway.enforce_policy(provider="openrouter", **TASK_OF[CRITICAL])
    pending = gateway.last_veto
    assert pending is not None

    graph = gateway.veto_graph_node("planner -> coder")
    assert graph is not None
    assert graph.reason == "Provider 'openrouter' disallowed for critical tasks :: planner -> coder"
    message = gateway.veto_conversation_message("please deploy")
    assert message is not None
    assert message.reason == pending.reason
    assert message.details["message"] == "please deploy"
    transition = gateway.veto_state_transition("task t1 pending -> in_progress")
    assert transition is not None
    assert transition.details["transition"] == "task t1 pending -> in_progress"
    assert transition.policy_violated == "default_local_first"
    # The pending veto itself is untouched and was audited once, by enforce_policy.
    assert gateway.last_veto == pending
    assert "message" not in pending.details
    assert len(auditor.vetoes) == 1

    assert gateway.enforce_policy(provider="ollama", **TASK_OF[CRITICAL])
    assert gateway.veto_graph_node("planner -> coder") is None
