from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from metaqore.config import GovernanceMode, MetaQoreConfig, load_config
from metaqore.core.models import ConflictSeverity
from metaqore.exceptions import ConfigurationError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    import os

    for key in list(os.environ):
        if key.upper().startswith("METAQORE_"):
            monkeypatch.delenv(key)


def test_defaults_construct_and_match_the_spec():
    config = MetaQoreConfig()
    assert config.governance_mode is GovernanceMode.STRICT
    assert config.organization == "default"
    assert (config.max_graph_depth, config.max_parallel_branches) == (3, 5)
    assert (config.max_conversation_turns, config.max_conversation_participants) == (10, 6)
    assert config.storage_dsn == "sqlite://"
    assert config.secure_gateway_policy == "default_local_first"
    assert config.checkpoint_retention == 5
    assert config.checkpoint_compression is True
    assert config.fail_on is ConflictSeverity.LOW
    assert config.audit_log == "metaqore-audit.jsonl"
    assert config.max_manifest_bytes == 256 * 1024 * 1024


def test_strict_mode_from_the_environment_keeps_defaults_valid(monkeypatch):
    monkeypatch.setenv("METAQORE_GOVERNANCE_MODE", "strict")
    assert MetaQoreConfig().governance_mode is GovernanceMode.STRICT


def test_environment_variables_are_read_case_insensitively(monkeypatch):
    monkeypatch.setenv("metaqore_governance_mode", "adaptive")
    monkeypatch.setenv("METAQORE_MAX_GRAPH_DEPTH", "7")
    monkeypatch.setenv("METAQORE_LOCAL_PROVIDERS", '["ollama", "vllm"]')
    config = MetaQoreConfig()
    assert config.governance_mode is GovernanceMode.ADAPTIVE
    assert config.max_graph_depth == 7
    assert config.local_providers == ["ollama", "vllm"]


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("default", "default_local_first"),
        ("local-first", "default_local_first"),
        ("LOCAL_FIRST", "default_local_first"),
        ("enterprise", "enterprise_residency"),
        ("Residency", "enterprise_residency"),
        ("compliance", "compliance_local_only"),
        ("local-only", "compliance_local_only"),
        ("compliance_local_only", "compliance_local_only"),
    ],
)
def test_policy_aliases_are_normalised(alias, canonical):
    assert MetaQoreConfig(secure_gateway_policy=alias).secure_gateway_policy == canonical


def test_unknown_policy_is_rejected():
    with pytest.raises(ValidationError, match="nope"):
        MetaQoreConfig(secure_gateway_policy="nope")


@pytest.mark.parametrize(
    ("field", "bad"),
    [
        ("max_graph_depth", 0),
        ("max_graph_depth", 11),
        ("max_parallel_branches", 21),
        ("max_conversation_turns", 101),
        ("max_conversation_participants", 33),
        ("governance_mode", "lenient"),
    ],
)
def test_out_of_range_values_are_rejected(field, bad):
    with pytest.raises(ValidationError):
        MetaQoreConfig(**{field: bad})


def test_unknown_keyword_suggests_the_nearest_field():
    with pytest.raises(ValidationError, match="did you mean 'governance_mode'"):
        MetaQoreConfig(governance_mod="strict")


def test_yaml_file_is_read_and_environment_wins_over_it(tmp_path, monkeypatch):
    path = tmp_path / "metaqore.yaml"
    path.write_text("governance_mode: adaptive\norganization: acme\nmax_graph_depth: 4\n")
    config = MetaQoreConfig.from_yaml(path)
    assert (config.governance_mode, config.organization, config.max_graph_depth) == (
        GovernanceMode.ADAPTIVE,
        "acme",
        4,
    )
    monkeypatch.setenv("METAQORE_ORGANIZATION", "from-env")
    assert MetaQoreConfig.from_yaml(path).organization == "from-env"
    overridden = MetaQoreConfig.from_yaml(path, overrides={"organization": "arg"})
    assert overridden.organization == "arg"


def test_unknown_key_in_yaml_names_file_line_and_suggestion(tmp_path):
    path = tmp_path / "metaqore.yaml"
    path.write_text("organization: acme\n\ngovernance_mod: strict\n")
    with pytest.raises(ConfigurationError) as info:
        MetaQoreConfig.from_yaml(path)
    assert str(info.value) == (
        f"{path}:3:1: unknown key 'governance_mod' (did you mean 'governance_mode'?)"
    )


def test_nested_unknown_key_in_a_waiver_is_located(tmp_path):
    path = tmp_path / "metaqore.yaml"
    path.write_text(
        "waivers:\n"
        "  - rule: parallel_creation\n"
        "    project: p\n"
        "    artifact: a\n"
        "    reason: merged by hand\n"
        "    aproved_by: alice\n"
        "    expires: 2026-12-31\n"
    )
    with pytest.raises(ConfigurationError) as info:
        MetaQoreConfig.from_yaml(path)
    message = str(info.value)
    assert f"{path}:6:5: unknown key 'aproved_by'" in message
    assert "did you mean 'approved_by'" in message


def test_waiver_requires_an_expiry(tmp_path):
    path = tmp_path / "metaqore.yaml"
    path.write_text("waivers:\n  - {rule: r, project: p, artifact: a, reason: x, approved_by: b}\n")
    with pytest.raises(ConfigurationError, match="missing required key 'expires'"):
        MetaQoreConfig.from_yaml(path)


def test_bad_value_in_yaml_is_located(tmp_path):
    path = tmp_path / "metaqore.yaml"
    path.write_text("organization: acme\nmax_graph_depth: deep\n")
    with pytest.raises(ConfigurationError, match=rf"{path}:2:1: max_graph_depth: got a string"):
        MetaQoreConfig.from_yaml(path)


def test_invalid_yaml_is_a_configuration_error_with_position(tmp_path):
    path = tmp_path / "metaqore.yaml"
    path.write_text("organization: [acme\n")
    with pytest.raises(ConfigurationError, match=rf"{path}:2:1: invalid YAML"):
        MetaQoreConfig.from_yaml(path)


def test_pyproject_tool_section_is_found_and_validated(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.metaqore]\ngovernance_mode = "playground"\n'
        'fail_on = "high"\n'
    )
    config = load_config(cwd=tmp_path)
    assert config.governance_mode is GovernanceMode.PLAYGROUND
    assert config.fail_on is ConflictSeverity.HIGH
    (tmp_path / "pyproject.toml").write_text('[tool.metaqore]\nfail_onn = "high"\n')
    with pytest.raises(ConfigurationError, match=r"pyproject.toml:2:1: unknown key 'fail_onn'"):
        load_config(cwd=tmp_path)


def test_metaqore_yaml_is_preferred_over_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.metaqore]\norganization = "toml"\n')
    (tmp_path / "metaqore.yaml").write_text("organization: yaml\n")
    assert load_config(cwd=tmp_path).organization == "yaml"


def test_no_config_file_gives_defaults_and_missing_explicit_file_is_an_error(tmp_path):
    assert load_config(cwd=tmp_path).organization == "default"
    with pytest.raises(ConfigurationError, match="not found"):
        load_config(tmp_path / "absent.yaml")


PUBLIC_KEY = "ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="


def test_an_invalid_trusted_key_names_the_file_line_and_key(tmp_path):
    path = tmp_path / "metaqore.yaml"
    path.write_text(f'organization: acme\ntrusted_keys:\n  good: "{PUBLIC_KEY}"\n  k: notakey\n')
    with pytest.raises(ConfigurationError) as info:
        load_config(path)
    assert str(info.value) == (
        f"{path}:4:3: trusted_keys.k: not an Ed25519 public key "
        "(expected ed25519:<base64 of 32 bytes>)"
    )
    path.write_text(f'trusted_keys:\n  good: "{PUBLIC_KEY}"\n')
    assert load_config(path).trusted_keys == {"good": PUBLIC_KEY}


def test_an_invalid_trusted_key_in_pyproject_is_located(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.metaqore]\ntrusted_keys = {k = "nope"}\n')
    with pytest.raises(ConfigurationError) as info:
        load_config(cwd=tmp_path)
    assert str(info.value) == (
        f"{tmp_path / 'pyproject.toml'}:2:1: trusted_keys.k: not an Ed25519 public key "
        "(expected ed25519:<base64 of 32 bytes>)"
    )


def test_an_invalid_trusted_key_from_the_environment_is_blamed_on_it(tmp_path, monkeypatch):
    path = tmp_path / "metaqore.yaml"
    path.write_text(f'trusted_keys:\n  good: "{PUBLIC_KEY}"\n')
    monkeypatch.setenv("METAQORE_TRUSTED_KEYS", '{"ci": "ed25519:AAAA"}')
    with pytest.raises(ConfigurationError) as info:
        load_config(path)
    assert str(info.value) == (
        "environment METAQORE_TRUSTED_KEYS: trusted_keys.ci: not an Ed25519 public key "
        "(expected ed25519:<base64 of 32 bytes>)"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("organization: ''", "organization: empty string (expected a non-empty string)"),
        ("max_graph_depth: 0", "max_graph_depth: 0 is too small (expected at least 1)"),
        ("max_graph_depth: 11", "max_graph_depth: 11 is too large (expected at most 10)"),
        ("store_timeout: 0", "store_timeout: 0 is too small (expected more than 0)"),
        ("log_format: xml", "log_format: 'xml' does not match (expected kv or json)"),
        (
            "waivers: [{rule: r, project: p, artifact: a, content_hash: abc, reason: x, "
            "approved_by: b, expires: 2026-12-31}]",
            "waivers[0].content_hash: 'abc' does not match "
            "(expected sha256:<64 lowercase hex digits>)",
        ),
        (
            "waivers: [{rule: r, project: p, artifact: a, reason: x, approved_by: b, "
            "expires: soon}]",
            "waivers[0].expires: 'soon' is not a date (expected a date such as 2026-12-31)",
        ),
    ],
)
def test_a_value_out_of_bounds_says_what_was_expected(tmp_path, line, message):
    path = tmp_path / "metaqore.yaml"
    path.write_text(line + "\n")
    with pytest.raises(ConfigurationError) as info:
        load_config(path)
    assert str(info.value).split(": ", 1)[1] == message


def test_list_settings_from_the_environment_may_be_comma_separated(tmp_path, monkeypatch):
    monkeypatch.setenv("METAQORE_REQUIRE_SIGNATURES", "internal, critical")
    monkeypatch.setenv("METAQORE_LOCAL_PROVIDERS", "ollama,vllm")
    monkeypatch.setenv("METAQORE_MANIFESTS", '["agents/*.yaml"]')
    config = load_config(cwd=tmp_path)
    assert [s.value for s in config.require_signatures] == ["internal", "critical"]
    assert config.local_providers == ["ollama", "vllm"]
    assert config.manifests == ["agents/*.yaml"]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("METAQORE_TRUSTED_KEYS", "{bad", "METAQORE_TRUSTED_KEYS: cannot be read"),
        ("METAQORE_LOCAL_PROVIDERS", "[bad", "not a JSON list (expected a,b or a JSON list)"),
        ("METAQORE_LOG_LEVEL", "loud", "(expected DEBUG, INFO, WARNING, ERROR or CRITICAL)"),
    ],
)
def test_an_unreadable_environment_value_is_a_configuration_error(
    tmp_path, monkeypatch, variable, value, message
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        load_config(cwd=tmp_path)
    (tmp_path / "metaqore.yaml").write_text("organization: acme\n")
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        load_config(cwd=tmp_path)
