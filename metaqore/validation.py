"""Turns pydantic validation errors into ``what is wrong (what was expected)`` problems.

Manifests and config files share this, so a typo reads the same everywhere: the key
that is wrong, where it is, and the nearest valid key.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One validation problem at ``loc`` inside the validated document."""

    loc: Loc
    message: str
    expected: str | None = None


def suggest(key: str, candidates: Iterable[str]) -> str | None:
    """The nearest candidate to ``key``, if any is close enough to be a likely typo."""
    matches = difflib.get_close_matches(key, sorted(set(candidates)), n=1, cutoff=0.6)
    return matches[0] if matches else None


def unknown_key_problem(loc: Loc, key: str, candidates: Iterable[str]) -> Problem:
    names = sorted(set(candidates))
    hint = suggest(key, names)
    if hint:
        return Problem(loc, f"unknown key '{key}' (did you mean '{hint}'?)")
    return Problem(loc, f"unknown key '{key}'", "one of: " + ", ".join(names))


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _union_members(annotation: Any) -> list[Any] | None:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return [_unwrap(arg) for arg in typing.get_args(annotation) if arg is not type(None)]
    return None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _tag_of(model: type[BaseModel]) -> set[str]:
    """Literal values of a model's fields: how a tagged union names the member in ``loc``."""
    tags: set[str] = set()
    for field in model.model_fields.values():
        annotation = _unwrap(field.annotation)
        if typing.get_origin(annotation) is typing.Literal:
            tags.update(str(arg) for arg in typing.get_args(annotation))
    return tags


def _field_names(annotation: Any) -> set[str]:
    annotation = _unwrap(annotation)
    members = _union_members(annotation)
    if members is not None:
        names: set[str] = set()
        for member in members:
            names |= _field_names(member)
        return names
    if _is_model(annotation):
        names = set()
        for name, field in annotation.model_fields.items():
            names.add(field.alias or name)
        return names
    return set()


def _step(annotation: Any, step: str | int) -> Any:
    annotation = _unwrap(annotation)
    members = _union_members(annotation)
    if members is not None:
        for member in members:
            if _is_model(member) and isinstance(step, str) and step in _tag_of(member):
                return member
        for member in members:
            found = _step(member, step)
            if found is not None:
                return found
        return None
    if _is_model(annotation):
        for name, field in annotation.model_fields.items():
            if step in (name, field.alias):
                return field.annotation
        return None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple, set, frozenset) and args and isinstance(step, int):
        return args[0]
    if origin is dict and len(args) == 2 and isinstance(step, str):
        return args[1]
    return None


def fields_at(root: Any, loc: Loc) -> set[str]:
    """Keys valid at ``loc`` below the model (or annotation) ``root``."""
    current: Any = root
    for step in loc:
        following = _step(current, step)
        if following is None:
            # Tagged unions put the tag in ``loc``; skip steps that name no field.
            continue
        current = following
    return _field_names(current)


_EXPECTED_PREFIX = "Input should be "


def _expected_from(error: Any) -> str | None:
    message: str = error.get("msg", "")
    if message.startswith(_EXPECTED_PREFIX):
        return message[len(_EXPECTED_PREFIX) :]
    ctx = error.get("ctx") or {}
    if "expected" in ctx:
        return str(ctx["expected"])
    return None


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _dotted(loc: Loc) -> str:
    text = ""
    for step in loc:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "document"


def explain(error: ValidationError, root: Any) -> list[Problem]:
    """One :class:`Problem` per pydantic error, with keys suggested for typos."""
    problems: list[Problem] = []
    for item in error.errors(include_url=False):
        loc: Loc = tuple(item["loc"])
        kind = item["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            problems.append(unknown_key_problem(loc, key, fields_at(root, loc[:-1])))
        elif kind == "missing":
            problems.append(
                Problem(loc[:-1], f"missing required key '{loc[-1]}'", f"a '{loc[-1]}' key")
            )
        elif kind == "union_tag_invalid":
            ctx = item.get("ctx") or {}
            key = str(ctx.get("discriminator", "kind")).strip("'")
            problems.append(
                Problem(
                    loc,
                    f"{_dotted(loc)}: unknown {key} {ctx.get('tag')!r}",
                    f"one of {ctx.get('expected_tags')}",
                )
            )
        elif kind == "union_tag_not_found":
            ctx = item.get("ctx") or {}
            key = str(ctx.get("discriminator", "kind")).strip("'")
            problems.append(Problem(loc, f"missing required key '{key}'", f"a '{key}' key"))
        elif kind in ("value_error", "assertion_error"):
            message = item["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
            problems.append(Problem(loc, f"{_dotted(loc)}: {message}"))
        else:
            expected = _expected_from(item)
            got = _describe(item.get("input"))
            problems.append(Problem(loc, f"{_dotted(loc)}: got {got}", expected))
    return problems


__all__ = ["Problem", "explain", "fields_at", "suggest", "unknown_key_problem"]
