"""Exception hierarchy of the engine; each class maps to one CLI exit code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from metaqore.core.models import Conflict, VetoReason

#: Exit codes of the gate (SPEC §8). The CLI maps exceptions to them in one place.
EXIT_PASS = 0
EXIT_BLOCKED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class MetaQoreError(Exception):
    """Base class of every error the engine raises on purpose."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str, *, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, Any] = dict(metadata or {})

    def __str__(self) -> str:
        return self.message


class ConfigurationError(MetaQoreError):
    """Invalid configuration: unknown key, bad value, unreadable config file."""


class ManifestError(MetaQoreError):
    """A manifest that cannot be read or validated; carries where the problem is.

    ``str()`` gives the ``path:line:column: problem`` form every front door prints.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str,
        line: int = 1,
        column: int = 1,
        expected: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.problem = message
        self.expected = expected
        text = f"{path}:{line}:{column}: {message}"
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)


class ManifestErrors(ManifestError):
    """Every manifest problem found in one run, reported together.

    It is a :class:`ManifestError` located at the first problem, so ``except
    ManifestError`` catches one bad file and many alike.
    """

    def __init__(self, errors: list[ManifestError]) -> None:
        self.errors = errors
        first = errors[0] if errors else ManifestError("no manifest problem", path="")
        super().__init__(
            first.problem,
            path=first.path,
            line=first.line,
            column=first.column,
            expected=first.expected,
        )
        self.message = "\n".join(str(error) for error in errors)

    def __str__(self) -> str:
        return self.message


class NothingToCheckError(MetaQoreError):
    """The gate found no manifest to judge; it must never pass silently."""


class ConflictDetectedError(MetaQoreError):
    """PSMP found conflicts; the artifact was not declared."""

    exit_code = EXIT_BLOCKED

    def __init__(
        self,
        message: str,
        *,
        conflicts: list[Conflict] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, metadata=metadata)
        self.conflicts: list[Conflict] = list(conflicts or [])


class VetoAppliedError(MetaQoreError):
    """SecureGateway vetoed an action; carries the veto."""

    exit_code = EXIT_BLOCKED

    def __init__(self, veto: VetoReason, *, context: dict[str, Any] | None = None) -> None:
        super().__init__(veto.reason, metadata=dict(context or {}))
        self.veto = veto
        self.context: dict[str, Any] = dict(context or {})


class NotFoundError(MetaQoreError, LookupError):
    """A project, artifact, task, conflict or checkpoint that does not exist."""


class InvalidTransitionError(MetaQoreError, ValueError):
    """A task or project status change that the transition table does not allow."""


class SignatureValidationError(MetaQoreError):
    """A provenance signature, key or key file that cannot be trusted."""


class StorageError(MetaQoreError):
    """The store cannot be opened, read or written (connection, lock, schema)."""


class AuditIntegrityError(MetaQoreError):
    """The audit file's hash chain is broken, or it cannot be appended safely."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


__all__ = [
    "EXIT_BLOCKED",
    "EXIT_INTERNAL",
    "EXIT_PASS",
    "EXIT_USAGE",
    "AuditIntegrityError",
    "ConfigurationError",
    "ConflictDetectedError",
    "InvalidTransitionError",
    "ManifestError",
    "ManifestErrors",
    "MetaQoreError",
    "NotFoundError",
    "NothingToCheckError",
    "SignatureValidationError",
    "StorageError",
    "VetoAppliedError",
]
