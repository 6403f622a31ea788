"""StateManager.create_artifact runs SecureGateway before PSMP (SPEC §2, §4): routing
information is never ignored, provenance signatures are checked, and a vetoed artifact is
never stored. Real StateManager, PSMPEngine and SecureGateway over a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from metaqore.config import MetaQoreConfig
from metaqore.core import security
from metaqore.core.models import Artifact, Project, Provenance, TaskSensitivity
from metaqore.core.psmp import PSMPEngine
from metaqore.core.security import POLICY_PROVENANCE, SecureGateway
from metaqore.core.signing import generate_keypair, sign_provenance
from metaqore.core.state_manager import StateManager
from metaqore.exceptions import VetoAppliedError
from metaqore.storage.backends.sqlite import SQLiteBackend


@pytest.fixture
def backend(tmp_path: Path) -> Iterator[SQLiteBackend]:
    store = SQLiteBackend(dsn=f"sqlite:///{tmp_path / 's.db'}")
    yield store
    store.close()


def managed(
    backend: SQLiteBackend,
    *,
    config: MetaQoreConfig | None = None,
    gateway: SecureGateway | None = None,
) -> StateManager:
    manager = StateManager(backend, config=config, secure_gateway=gateway)
    PSMPEngine(manager, config=config)  # attaches itself
    manager.create_project(Project(id="proj", name="Checkout"))
    return manager


def artifact(
    artifact_id: str,
    *,
    artifact_type: str = "code",
    created_by: str = "coder",
    version: int = 1,
    depends_on: tuple[str, ...] = (),
    metadata: dict[str, Any] | None = None,
    provenance: list[Provenance] | None = None,
) -> Artifact:
    return Artifact(
        id=artifact_id,
        project_id="proj",
        artifact_type=artifact_type,
        created_by=created_by,
        version=version,
        data={"body": artifact_id},
        depends_on=list(depends_on),
        metadata=metadata or {},
        provenance=provenance or [],
    )


def stored_ids(manager: StateManager) -> list[str]:
    return [a.id for a in manager.list_artifacts("proj")]


# -- routing information without an attached gateway -----------------------------------


def test_unknown_provider_with_sensitive_data_is_vetoed_without_a_gateway(
    backend: SQLiteBackend,
) -> None:
    manager = managed(backend)
    mystery = artifact("leak", metadata={"llm_provider": "mystery", "has_sensitive_data": True})
    with pytest.raises(VetoAppliedError) as caught:
        manager.create_artifact(mystery)
    assert caught.value.veto.reason == "Provider 'mystery' disallowed for sensitive tasks"
    assert caught.value.veto.details["unknown_provider"] is True
    assert caught.value.context["artifact_id"] == "leak"
    assert stored_ids(manager) == []
    assert manager.get_artifact("leak") is None
    # The default gateway is not attached: it only ever rules on routing information.
    assert manager.secure_gateway is None


def test_cloud_provider_for_sensitive_work_is_vetoed_without_a_gateway(
    backend: SQLiteBackend,
) -> None:
    manager = managed(backend)
    with pytest.raises(VetoAppliedError, match="'openrouter' disallowed for critical"):
        manager.create_artifact(
            artifact(
                "keys",
                metadata={
                    "llm_provider": "openrouter",
                    "is_security_task": True,
                    "has_sensitive_data": True,
                },
            )
        )
    assert stored_ids(manager) == []
    # The same work on a local provider is stored, at its classified sensitivity.
    stored = manager.create_artifact(
        artifact("keys", metadata={"llm_provider": "ollama", "is_security_task": True})
    )
    assert stored.metadata["sensitivity"] == "sensitive"
    assert backend.get_sensitivities(["keys"], project_id="proj") == {"keys": "sensitive"}


def test_routing_flags_alone_are_classified_without_a_gateway(backend: SQLiteBackend) -> None:
    manager = managed(backend)
    stored = manager.create_artifact(artifact("pii", metadata={"has_private_data": True}))
    assert stored.metadata["sensitivity"] == "sensitive"
    planned = manager.create_artifact(
        artifact("roadmap", artifact_type="plan", metadata={"agent_name": "planner"})
    )
    # A planning task is internal (SPEC §4): the task type defaults to <type>_creation.
    assert planned.metadata["sensitivity"] == "internal"


def test_the_default_gateway_follows_the_state_managers_config(backend: SQLiteBackend) -> None:
    everywhere = managed(backend)
    public = everywhere.create_artifact(artifact("public", metadata={"llm_provider": "openrouter"}))
    assert public.metadata["sensitivity"] == "public"

    local_only = StateManager(
        backend, config=MetaQoreConfig(secure_gateway_policy="compliance_local_only")
    )
    PSMPEngine(local_only)
    with pytest.raises(VetoAppliedError, match="'openrouter' disallowed for public"):
        local_only.create_artifact(
            artifact("other", version=2, metadata={"llm_provider": "openrouter"})
        )
    assert stored_ids(everywhere) == ["public"]


def test_without_routing_information_no_gateway_is_built(
    backend: SQLiteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = managed(backend)

    def no_gateway(*args: Any, **kwargs: Any) -> SecureGateway:
        raise AssertionError("a StateManager without routing information built a gateway")

    monkeypatch.setattr(security, "SecureGateway", no_gateway)
    root = manager.create_artifact(
        artifact("root", artifact_type="plan", metadata={"sensitivity": "critical"})
    )
    child = manager.create_artifact(artifact("child", depends_on=("root",)))
    plain = manager.create_artifact(artifact("plain", version=2))
    assert root.metadata["sensitivity"] == "critical"
    # The declared and upstream sensitivities are still recorded, without a gateway.
    assert child.metadata["sensitivity"] == "critical"
    assert "sensitivity" not in plain.metadata
    assert stored_ids(manager) == ["root", "child", "plain"]


def test_upstream_sensitivity_propagates_transitively_to_the_default_gateway(
    backend: SQLiteBackend,
) -> None:
    manager = managed(backend)
    manager.create_artifact(
        artifact("secrets", artifact_type="config", metadata={"has_sensitive_data": True})
    )
    # No routing information: stored ungoverned, but it inherits its input's sensitivity...
    middle = manager.create_artifact(
        artifact("middle", artifact_type="plan", depends_on=("secrets",))
    )
    assert middle.metadata["sensitivity"] == "sensitive"
    # ...so public work two steps downstream may not go to the cloud.
    summary = artifact(
        "summary",
        artifact_type="doc",
        depends_on=("middle",),
        metadata={"llm_provider": "openrouter"},
    )
    with pytest.raises(VetoAppliedError, match="disallowed for sensitive tasks") as caught:
        manager.create_artifact(summary)
    assert caught.value.context["upstream_sensitivity"] == "sensitive"
    assert manager.get_artifact("summary") is None
    summary.metadata = {"llm_provider": "ollama"}
    assert manager.create_artifact(summary).metadata["sensitivity"] == "sensitive"


# -- provenance signatures -------------------------------------------------------------


@pytest.fixture
def signer() -> tuple[bytes, str]:
    """(private key PEM, public key text) of the trusted key ``ci``."""
    return generate_keypair()


def signed_config(public_key: str) -> MetaQoreConfig:
    return MetaQoreConfig(trusted_keys={"ci": public_key}, require_signatures=list(TaskSensitivity))


def signature(private_pem: bytes, target: Artifact, *, actor: str = "coder") -> str:
    return sign_provenance(
        private_pem,
        artifact_id=target.id,
        artifact_type=target.artifact_type,
        version=target.version,
        content_hash=target.content_hash,
        actor=actor,
        action="created",
    )


def with_signature(target: Artifact, value: str | None, key_id: str | None = "ci") -> Artifact:
    target.add_provenance(
        Provenance(
            artifact_id=target.id,
            actor=target.created_by,
            action="created",
            signature=value,
            key_id=key_id,
        )
    )
    return target


def test_a_good_signature_is_stored(backend: SQLiteBackend, signer: tuple[bytes, str]) -> None:
    private_pem, public_key = signer
    config = signed_config(public_key)
    manager = managed(backend, config=config, gateway=SecureGateway(config=config))
    target = artifact("api", metadata={"llm_provider": "ollama"})
    with_signature(target, signature(private_pem, target))
    manager.create_artifact(target)
    stored = manager.get_artifact("api")
    assert stored is not None
    assert [entry.key_id for entry in stored.provenance] == ["ci"]


def _rejected(manager: StateManager, target: Artifact, match: str) -> None:
    with pytest.raises(VetoAppliedError, match=match) as caught:
        manager.create_artifact(target)
    assert caught.value.veto.policy_violated == POLICY_PROVENANCE
    assert caught.value.context["artifact_id"] == target.id
    assert stored_ids(manager) == []
    assert manager.list_conflicts("proj") == []
    assert "sensitivity" not in target.metadata


@pytest.mark.parametrize("with_routing", [True, False], ids=["routed", "unrouted"])
def test_a_forged_signature_is_vetoed_and_not_stored(
    backend: SQLiteBackend, signer: tuple[bytes, str], with_routing: bool
) -> None:
    _, public_key = signer
    config = signed_config(public_key)
    manager = managed(backend, config=config, gateway=SecureGateway(config=config))
    impostor_pem, _ = generate_keypair()
    target = artifact("api", metadata={"llm_provider": "ollama"} if with_routing else {})
    # Signed with another key, claiming to be the trusted one.
    with_signature(target, signature(impostor_pem, target))
    _rejected(manager, target, "signature does not verify with key id 'ci'")


def test_a_signature_of_other_content_is_vetoed(
    backend: SQLiteBackend, signer: tuple[bytes, str]
) -> None:
    private_pem, public_key = signer
    config = signed_config(public_key)
    manager = managed(backend, config=config, gateway=SecureGateway(config=config))
    target = artifact("api")
    with_signature(target, signature(private_pem, target))
    target.data = {"body": "changed after signing"}
    _rejected(manager, target, "does not verify")


def test_a_missing_required_signature_is_vetoed(
    backend: SQLiteBackend, signer: tuple[bytes, str]
) -> None:
    _, public_key = signer
    config = signed_config(public_key)
    manager = managed(backend, config=config, gateway=SecureGateway(config=config))
    _rejected(
        manager,
        artifact("api", metadata={"llm_provider": "ollama"}),
        "needs a valid signature by its creator 'coder'",
    )
    # An unsigned provenance entry does not count as a signature.
    _rejected(manager, with_signature(artifact("api"), None, key_id=None), "none found")


def test_a_signature_by_someone_else_does_not_satisfy_the_requirement(
    backend: SQLiteBackend, signer: tuple[bytes, str]
) -> None:
    private_pem, public_key = signer
    config = signed_config(public_key)
    manager = managed(backend, config=config, gateway=SecureGateway(config=config))
    target = artifact("api")
    target.add_provenance(
        Provenance(
            artifact_id="api",
            actor="reviewer",
            action="approved",
            key_id="ci",
            signature=sign_provenance(
                private_pem,
                artifact_id="api",
                artifact_type="code",
                version=1,
                content_hash=target.content_hash,
                actor="reviewer",
                action="approved",
            ),
        )
    )
    _rejected(manager, target, "signature by its creator 'coder'")


def test_signatures_are_required_only_at_the_configured_sensitivities(
    backend: SQLiteBackend, signer: tuple[bytes, str]
) -> None:
    _, public_key = signer
    config = MetaQoreConfig(trusted_keys={"ci": public_key}, require_signatures=["critical"])
    manager = managed(backend, config=config, gateway=SecureGateway(config=config))
    manager.create_artifact(artifact("public"))
    vault = artifact(
        "vault",
        version=2,
        metadata={"llm_provider": "ollama", "is_security_task": True, "has_sensitive_data": True},
    )
    with pytest.raises(VetoAppliedError, match="is critical and needs a valid signature"):
        manager.create_artifact(vault)
    assert stored_ids(manager) == ["public"]


def test_an_unknown_key_is_vetoed(backend: SQLiteBackend, signer: tuple[bytes, str]) -> None:
    _, public_key = signer
    config = signed_config(public_key)
    manager = managed(backend, config=config, gateway=SecureGateway(config=config))
    other_pem, _ = generate_keypair()
    target = artifact("api", metadata={"llm_provider": "ollama"})
    with_signature(target, signature(other_pem, target), key_id="laptop")
    _rejected(manager, target, "unknown key id 'laptop'")


def test_the_default_gateway_checks_signatures_with_the_state_managers_config(
    backend: SQLiteBackend, signer: tuple[bytes, str]
) -> None:
    private_pem, public_key = signer
    manager = managed(backend, config=signed_config(public_key))
    forged = artifact("api", metadata={"llm_provider": "ollama"})
    with_signature(forged, signature(generate_keypair()[0], forged))
    _rejected(manager, forged, "does not verify")
    good = artifact("api", metadata={"llm_provider": "ollama"})
    with_signature(good, signature(private_pem, good))
    assert manager.create_artifact(good).metadata["sensitivity"] == "public"
    assert stored_ids(manager) == ["api"]
