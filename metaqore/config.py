"""Configuration: defaults < ``metaqore.yaml``/``[tool.metaqore]`` < ``METAQORE_*`` < arguments."""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from metaqore.core.models import ConflictSeverity, ResolutionStrategy, TaskSensitivity
from metaqore.exceptions import ConfigurationError
from metaqore.validation import Problem, explain, suggest, unknown_key_problem

CONFIG_FILENAMES = ("metaqore.yaml", "metaqore.yml")
DEFAULT_MANIFEST_GLOBS = (
    "**/*.metaqore.yaml",
    "**/*.metaqore.yml",
    "**/*.metaqore.json",
    "**/*.metaqore.jsonl",
)
DEFAULT_EXCLUDES = (".git", ".hg", ".venv", "venv", "node_modules", ".tox", "__pycache__")


# A list setting; from the environment, comma-separated or a JSON list.
_Names = Annotated[list[str], NoDecode]


class GovernanceMode(str, Enum):
    """What blocks the build: everything (strict), all but mechanical fixes (adaptive), nothing."""

    STRICT = "strict"
    ADAPTIVE = "adaptive"
    PLAYGROUND = "playground"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Waiver(_Strict):
    """A human decision to accept one finding until a date (SPEC §7)."""

    rule: str = Field(min_length=1)
    project: str = Field(min_length=1)
    artifact: str = Field(min_length=1)
    content_hash: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    reason: str = Field(min_length=1)
    approved_by: str = Field(min_length=1)
    expires: date


class TrustedKey(_Strict):
    """A trusted public key bound to the actors it may sign for (``trusted_keys``)."""

    key: str = Field(min_length=1)
    actors: list[str] = Field(min_length=1)


def trusted_key_text(value: str | TrustedKey) -> str:
    """The public key text of a ``trusted_keys`` value, in either of its two forms."""
    return value if isinstance(value, str) else value.key


class RuleSettings(_Strict):
    """Per-rule overrides: a different severity or default strategy, or the rule switched off."""

    severity: ConflictSeverity | None = None
    strategy: ResolutionStrategy | None = None
    enabled: bool = True


# Values of the config file being loaded; read by the settings source below so that
# environment variables and arguments still take precedence over the file.
_FILE_VALUES: ContextVar[Mapping[str, Any] | None] = ContextVar("_FILE_VALUES", default=None)


class _FileSource(PydanticBaseSettingsSource):
    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        values = _FILE_VALUES.get() or {}
        return values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_VALUES.get() or {})


class MetaQoreConfig(BaseSettings):
    """Every setting of the engine and the gate; ``MetaQoreConfig()`` is always valid."""

    model_config = SettingsConfigDict(
        env_prefix="METAQORE_",
        case_sensitive=False,
        extra="forbid",
        validate_default=True,
    )

    governance_mode: GovernanceMode = GovernanceMode.STRICT
    organization: str = Field(default="default", min_length=1)
    max_graph_depth: int = Field(default=3, ge=1, le=10)
    max_parallel_branches: int = Field(default=5, ge=1, le=20)
    max_conversation_turns: int = Field(default=10, ge=1, le=100)
    max_conversation_participants: int = Field(default=6, ge=1, le=32)
    storage_dsn: str = "sqlite://"
    secure_gateway_policy: str = "default_local_first"
    checkpoint_retention: int = Field(default=5, ge=0)
    checkpoint_compression: bool = True

    # SecureGateway (SPEC §4)
    local_providers: _Names = Field(default_factory=lambda: ["hmcp_gateway", "ollama"])
    cloud_providers: _Names = Field(default_factory=lambda: ["openrouter"])
    unavailable_providers: _Names = Field(default_factory=list)
    # key id -> public key (any actor may sign with it), or {key, actors} (only those)
    trusted_keys: dict[str, str | TrustedKey] = Field(default_factory=dict)
    require_signatures: Annotated[list[TaskSensitivity], NoDecode] = Field(default_factory=list)

    # The gate (SPEC §5-§9)
    manifests: _Names = Field(default_factory=lambda: list(DEFAULT_MANIFEST_GLOBS))
    exclude: _Names = Field(default_factory=lambda: list(DEFAULT_EXCLUDES))
    fail_on: ConflictSeverity = ConflictSeverity.LOW
    audit_log: str = "metaqore-audit.jsonl"
    waivers: list[Waiver] = Field(default_factory=list)
    rules: dict[str, RuleSettings] = Field(default_factory=dict)
    max_manifest_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    max_nesting_depth: int = Field(default=64, ge=4, le=10_000)
    max_yaml_alias_nodes: int = Field(default=100_000, ge=0)
    store_timeout: float = Field(default=30.0, gt=0)

    # Logging
    log_format: str = Field(default="kv", pattern="^(kv|json)$")
    log_level: str = Field(default="WARNING")

    # Fields set by a METAQORE_* variable or by load_config's overrides (the arguments of
    # a front door), as opposed to a config file, keyword arguments or the defaults.
    _explicit_fields: frozenset[str] = PrivateAttr(default=frozenset())

    def model_post_init(self, context: Any, /) -> None:
        prefix = str(self.model_config.get("env_prefix", "")).lower()
        environment = {name.lower() for name in os.environ}
        self._explicit_fields = frozenset(
            field for field in self.model_fields_set if f"{prefix}{field}" in environment
        )

    def chosen_explicitly(self, field: str) -> bool:
        """Whether ``field`` was set by ``METAQORE_*`` or a front door's argument.

        A config file, and whatever sits at a default path, may come with the repository
        under test: the gate does not let them choose where it writes outside the tree.
        """
        return field in self._explicit_fields

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, values: Any) -> Any:
        if isinstance(values, dict):
            known = set(cls.model_fields)
            for key in values:
                if key not in known:
                    hint = suggest(str(key), known)
                    raise ValueError(
                        f"unknown key '{key}'" + (f" (did you mean '{hint}'?)" if hint else "")
                    )
        return values

    @field_validator("secure_gateway_policy")
    @classmethod
    def _canonical_policy(cls, value: str) -> str:
        from metaqore.core.security import canonical_policy_name

        return canonical_policy_name(value)

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(
                f"unknown log level {value!r} (expected DEBUG, INFO, WARNING, ERROR or CRITICAL)"
            )
        return level

    @field_validator(
        "local_providers",
        "cloud_providers",
        "unavailable_providers",
        "require_signatures",
        "manifests",
        "exclude",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        """A list from ``METAQORE_*`` may be written ``a,b`` as well as ``["a", "b"]``."""
        if not isinstance(value, str):
            return value
        if value.lstrip().startswith("["):
            try:
                return json.loads(value)
            except ValueError:
                raise ValueError("not a JSON list (expected a,b or a JSON list)") from None
        return [part.strip() for part in value.split(",") if part.strip()]

    @classmethod
    def from_yaml(
        cls, path: str | os.PathLike[str], *, overrides: Mapping[str, Any] | None = None
    ) -> MetaQoreConfig:
        """Load ``path`` (a ``metaqore.yaml``); environment and ``overrides`` win over it."""
        return _build(cls, Path(path), _read_yaml_config(Path(path)), overrides)

    @classmethod
    def from_pyproject(
        cls, path: str | os.PathLike[str], *, overrides: Mapping[str, Any] | None = None
    ) -> MetaQoreConfig:
        """Load ``[tool.metaqore]`` from a ``pyproject.toml``."""
        return _build(cls, Path(path), _read_pyproject_config(Path(path)), overrides)


class _Source:
    """Where config values came from, so errors can point at the right line."""

    def __init__(self, path: Path, text: str, positions: Mapping[tuple[Any, ...], tuple[int, int]]):
        self.path = path
        self.text = text
        self.positions = positions

    def locate(self, loc: tuple[Any, ...]) -> tuple[int, int]:
        for end in range(len(loc), 0, -1):
            found = self.positions.get(tuple(loc[:end]))
            if found:
                return found
        return (1, 1)


def _read_yaml_config(path: Path) -> tuple[dict[str, Any], _Source]:
    import yaml

    from metaqore.yamlio import YAMLDataError, load_yaml, yaml_error_position

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigurationError(f"{path}:{line}:1: invalid UTF-8 (expected UTF-8 text)") from None
    try:
        located = load_yaml(text, record_depth=6)
    except YAMLDataError as exc:
        suffix = f" (expected {exc.expected})" if exc.expected else ""
        raise ConfigurationError(f"{path}:{exc.line}:{exc.column}: {exc.message}{suffix}") from None
    except yaml.YAMLError as exc:
        line, column, message = yaml_error_position(exc)
        raise ConfigurationError(f"{path}:{line}:{column}: {message}") from None
    value = located.value
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigurationError(
            f"{path}:1:1: config must be a mapping (expected key: value pairs)"
        )
    return value, _Source(path, text, located.positions)


def _read_pyproject_config(path: Path) -> tuple[dict[str, Any], _Source]:
    try:
        text = path.read_text(encoding="utf-8")
        document = tomllib.loads(text)
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: invalid TOML ({exc})") from None
    section = document.get("tool", {}).get("metaqore", {})
    if not isinstance(section, dict):
        raise ConfigurationError(f"{path}: [tool.metaqore] must be a table")
    # tomllib keeps no positions: find each top-level key's line inside the section.
    positions: dict[tuple[Any, ...], tuple[int, int]] = {}
    in_section = False
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            in_section = stripped.startswith("[tool.metaqore")
            continue
        match = re.match(r"\s*([A-Za-z0-9_\-]+)\s*=", line)
        if in_section and match:
            positions.setdefault((match.group(1),), (number, line.index(match.group(1)) + 1))
    return section, _Source(path, text, positions)


def _problems_to_error(problems: list[Problem], source: _Source | None) -> ConfigurationError:
    lines = []
    for problem in problems:
        suffix = f" (expected {problem.expected})" if problem.expected else ""
        where = "config"
        if source is not None and problem.loc and (problem.loc[0],) in source.positions:
            line, column = source.locate(problem.loc)
            where = f"{source.path}:{line}:{column}"
        elif problem.loc and isinstance(problem.loc[0], str):
            env = f"METAQORE_{problem.loc[0].upper()}"
            where = f"environment {env}" if env in os.environ else "config"
        lines.append(f"{where}: {problem.message}{suffix}")
    return ConfigurationError("\n".join(lines))


def _build(
    cls: type[MetaQoreConfig],
    path: Path,
    loaded: tuple[dict[str, Any], _Source],
    overrides: Mapping[str, Any] | None,
) -> MetaQoreConfig:
    values, source = loaded
    known = set(cls.model_fields)
    problems = [unknown_key_problem((key,), str(key), known) for key in values if key not in known]
    if problems:
        raise _problems_to_error(problems, source)
    token = _FILE_VALUES.set(values)
    try:
        config = cls(**dict(overrides or {}))
    except ValidationError as exc:
        raise _problems_to_error(explain(exc, cls), source) from None
    except SettingsError as exc:
        raise _environment_error(exc) from None
    finally:
        _FILE_VALUES.reset(token)
    problems = _trusted_key_problems(config)
    if problems:
        # METAQORE_TRUSTED_KEYS and arguments merge into the file's keys: a key is located
        # in the file only when its value there is the one in use.
        in_file = values.get("trusted_keys")
        given = (overrides or {}).get("trusted_keys")
        located = [
            problem
            for problem in problems
            if isinstance(in_file, dict)
            and problem.loc[1] in in_file
            and in_file[problem.loc[1]] == _plain(config.trusted_keys[str(problem.loc[1])])
            and not (isinstance(given, Mapping) and problem.loc[1] in given)
        ]
        elsewhere = [problem for problem in problems if problem not in located]
        errors = [
            str(_problems_to_error(group, where))
            for group, where in ((located, source), (elsewhere, None))
            if group
        ]
        raise ConfigurationError("\n".join(errors))
    return config


def _trusted_key_problems(config: MetaQoreConfig) -> list[Problem]:
    """One problem per ``trusted_keys`` entry that is not an Ed25519 public key.

    Checked when a front door loads its config, so the error names the file, line and
    key id; the value is never echoed (a private key pasted by mistake stays out of logs).
    """
    if not config.trusted_keys:
        return []
    from metaqore.core.signing import KEY_PREFIX, parse_public_key
    from metaqore.exceptions import SignatureValidationError

    problems = []
    for key_id, value in config.trusted_keys.items():
        try:
            parse_public_key(trusted_key_text(value))
        except SignatureValidationError:
            problems.append(
                Problem(
                    ("trusted_keys", key_id),
                    f"trusted_keys.{key_id}: not an Ed25519 public key",
                    f"{KEY_PREFIX}<base64 of 32 bytes>",
                )
            )
    return problems


def _plain(value: str | TrustedKey) -> Any:
    return value if isinstance(value, str) else value.model_dump()


def _environment_error(error: SettingsError) -> ConfigurationError:
    """A ``METAQORE_*`` value pydantic-settings could not decode (JSON for a mapping)."""
    found = re.search(r'field "(\w+)"', str(error))
    field = found.group(1) if found else "a setting"
    return ConfigurationError(
        f"environment METAQORE_{field.upper()}: cannot be read (expected a JSON object)"
    )


@contextmanager
def _no_file() -> Iterator[None]:
    token = _FILE_VALUES.set(None)
    try:
        yield
    finally:
        _FILE_VALUES.reset(token)


def find_config_file(start: str | os.PathLike[str] | None = None) -> Path | None:
    """``metaqore.yaml``/``.yml`` in ``start`` (default: cwd), else a ``pyproject.toml``
    there that has a ``[tool.metaqore]`` table."""
    base = Path(start) if start is not None else Path.cwd()
    for name in CONFIG_FILENAMES:
        candidate = base / name
        if candidate.is_file():
            return candidate
    pyproject = base / "pyproject.toml"
    if pyproject.is_file():
        try:
            document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            return None
        if isinstance(document.get("tool", {}).get("metaqore"), dict):
            return pyproject
    return None


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    cwd: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> MetaQoreConfig:
    """The config a front door runs with: ``path`` if given, else the one found in ``cwd``.

    Every problem is a :class:`ConfigurationError` naming the file, line and key.
    """
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    if path is None:
        found = find_config_file(cwd)
    else:
        found = Path(path)
        if not found.is_file():
            raise ConfigurationError(f"{found}: config file not found")
    if found is None:
        with _no_file():
            try:
                config = MetaQoreConfig(**overrides)
            except ValidationError as exc:
                raise _problems_to_error(explain(exc, MetaQoreConfig), None) from None
            except SettingsError as exc:
                raise _environment_error(exc) from None
            problems = _trusted_key_problems(config)
            if problems:
                raise _problems_to_error(problems, None)
    elif found.name == "pyproject.toml":
        config = MetaQoreConfig.from_pyproject(found, overrides=overrides)
    else:
        config = MetaQoreConfig.from_yaml(found, overrides=overrides)
    config._explicit_fields |= overrides.keys()
    return config


__all__ = [
    "CONFIG_FILENAMES",
    "DEFAULT_MANIFEST_GLOBS",
    "GovernanceMode",
    "MetaQoreConfig",
    "RuleSettings",
    "TrustedKey",
    "Waiver",
    "find_config_file",
    "load_config",
    "trusted_key_text",
]
