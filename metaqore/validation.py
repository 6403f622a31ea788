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
_EXPECTED_MARKER = " (expected "
#: Characters of a wrong value quoted in a message; longer values are cut.
_SHOWN_CHARS = 40
#: What a pattern a model constrains strings with means, in the words of its users.
_PATTERN_MEANINGS = {
    r"^sha256:[0-9a-f]{64}$": "sha256:<64 lowercase hex digits>",
    r"^ed25519:": "ed25519:<base64>",
    r"^(kv|json)$": "kv or json",
}
_DATE_TYPES = frozenset(
    {"date_type", "date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact"}
)
_DATE_EXPECTED = "a date such as 2026-12-31"
_OBJECT_TYPES = frozenset({"model_type", "model_attributes_type", "dict_type", "mapping_type"})


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


def _shown(value: Any) -> str:
    """A wrong value as a message quotes it: short scalars as written, long ones cut."""
    if isinstance(value, str):
        if len(value) > _SHOWN_CHARS:
            return repr(value[: _SHOWN_CHARS - 3]) + f"... ({len(value)} characters)"
        return repr(value)
    if isinstance(value, bool) or value is None:
        return _describe(value)
    if isinstance(value, int | float):
        text = str(value)
        return text if len(text) <= _SHOWN_CHARS else f"a number of {len(text)} digits"
    return _describe(value)


def _number(value: Any) -> str:
    """A bound as a user would write it: ``0``, not ``0.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _items(count: Any) -> str:
    return f"{count} item" + ("" if count == 1 else "s")


def _characters(count: Any) -> str:
    return f"{count} character" + ("" if count == 1 else "s")


def _constraint(kind: str, value: Any, ctx: dict[str, Any]) -> tuple[str, str] | None:
    """``(what is wrong, what was expected)`` for a value of the right type that breaks a
    length, pattern or range constraint; ``None`` for other kinds of error."""
    if kind == "string_too_short":
        least = ctx.get("min_length", 1)
        if value == "":
            expected = "a non-empty string" if least == 1 else f"at least {_characters(least)}"
            return "empty string", expected
        return f"{_shown(value)} is too short", f"at least {_characters(least)}"
    if kind == "string_too_long":
        length = len(value) if isinstance(value, str) else "?"
        return (
            f"string of {_characters(length)} is too long",
            f"at most {_characters(ctx.get('max_length'))}",
        )
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern", ""))
        meaning = _PATTERN_MEANINGS.get(pattern, f"a string matching {pattern}")
        return f"{_shown(value)} does not match", meaning
    if kind in ("too_short", "too_long"):
        actual = ctx.get("actual_length")
        if kind == "too_short":
            return f"has {_items(actual)}", f"at least {_items(ctx.get('min_length'))}"
        return f"has {_items(actual)}", f"at most {_items(ctx.get('max_length'))}"
    bounds = {
        "greater_than_equal": ("too small", "at least", "ge"),
        "greater_than": ("too small", "more than", "gt"),
        "less_than_equal": ("too large", "at most", "le"),
        "less_than": ("too large", "less than", "lt"),
    }
    if kind in bounds:
        problem, relation, key = bounds[kind]
        return f"{_shown(value)} is {problem}", f"{relation} {_number(ctx.get(key))}"
    if kind == "multiple_of":
        return (
            f"{_shown(value)} is not a multiple of {_number(ctx.get('multiple_of'))}",
            f"a multiple of {_number(ctx.get('multiple_of'))}",
        )
    if kind == "finite_number":
        return f"{_shown(value)} is not a finite number", "a finite number"
    if kind in _DATE_TYPES:
        if isinstance(value, str):
            return f"{_shown(value)} is not a date", _DATE_EXPECTED
        return f"got {_describe(value)}", _DATE_EXPECTED
    if kind in ("enum", "literal_error") and isinstance(value, str | int):
        # The value itself says more than its type: a misspelt status is still a string.
        expected = str(ctx.get("expected", "")) or "one of the allowed values"
        return f"got {_shown(value)}", expected
    if kind == "json_invalid":
        error = (ctx.get("error") or "not JSON").split(" at line ")[0]
        return f"invalid JSON: {error}", "valid JSON"
    return None


def _without_tags(root: Any, loc: Loc) -> Loc:
    """``loc`` without the member tags tagged unions add (``events[0].graph_node.depth``
    names the key ``events[0].depth``)."""
    kept: list[str | int] = []
    current: Any = root
    for step in loc:
        members = _union_members(_unwrap(current)) if current is not None else None
        tagged = [
            member
            for member in members or ()
            if _is_model(member) and isinstance(step, str) and step in _tag_of(member)
        ]
        if tagged:
            current = tagged[0]
            continue
        kept.append(step)
        current = _step(current, step) if current is not None else None
    return tuple(kept)


def _dotted(loc: Loc) -> str:
    text = ""
    for step in loc:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text or "document"


def _value_problem(loc: Loc, name: str, kind: str, item: Any) -> Problem:
    """A wrong value at ``name``: what it is, and what was expected (every kind says both)."""
    value = item.get("input")
    found = _constraint(kind, value, item.get("ctx") or {})
    if found is not None:
        message, expected = found
        return Problem(loc, f"{name}: {message}", expected)
    wanted = _expected_from(item)
    if wanted is None:
        # A kind no model here produces today: pydantic's own words say what was wrong.
        text = str(item.get("msg", "invalid value"))
        wanted = "a valid value: " + text[:1].lower() + text[1:]
    elif kind in _OBJECT_TYPES and wanted.startswith("a valid dictionary"):
        wanted = "a mapping"  # not "... or instance of ManifestTask"
    return Problem(loc, f"{name}: got {_describe(value)}", wanted)


def explain(error: ValidationError, root: Any) -> list[Problem]:
    """One :class:`Problem` per pydantic error, with keys suggested for typos."""
    problems: list[Problem] = []
    for item in error.errors(include_url=False):
        loc: Loc = tuple(item["loc"])
        kind = item["type"]
        name = _dotted(_without_tags(root, loc))
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
                    f"{name}: unknown {key} {ctx.get('tag')!r}",
                    f"one of {ctx.get('expected_tags')}",
                )
            )
        elif kind == "union_tag_not_found":
            ctx = item.get("ctx") or {}
            key = str(ctx.get("discriminator", "kind")).strip("'")
            problems.append(Problem(loc, f"missing required key '{key}'", f"a '{key}' key"))
        elif kind in ("value_error", "assertion_error"):
            message = item["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
            # Validators say what they expected as "... (expected X)" at the end.
            said, marker, expected = message.rpartition(_EXPECTED_MARKER)
            if marker and expected.endswith(")"):
                problems.append(Problem(loc, f"{name}: {said}", expected[:-1]))
            else:
                problems.append(Problem(loc, f"{name}: {message}"))
        else:
            problems.append(_value_problem(loc, name, kind, item))
    return problems


__all__ = ["Problem", "explain", "fields_at", "suggest", "unknown_key_problem"]
