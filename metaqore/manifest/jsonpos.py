"""Positions inside JSON text: the line and column where a document path starts.

:func:`json.loads` keeps no positions, so manifest errors find theirs here with a
regex tokenizer and an explicit stack (no recursion: 100,000 nested brackets are just
a long loop). The same pass answers the questions a strict JSON reader has after
:func:`json.loads` refused a document for a reason it cannot locate: where the first
duplicate key, non-finite number or too-deep bracket is.

Positions follow the YAML reader's convention: an object member is located at its
key, an array item and the root at the first character of their value. Lines and
columns are 1-based; columns count characters, not bytes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection
from dataclasses import dataclass, field

Path_ = tuple[str | int, ...]

# One token: a string, a structural character, or a run of scalar characters.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\],:]|[^\s{}\[\],:"]+')
# Everything up to the next bracket that is not inside a string.
_SKIP = re.compile(r'(?:[^"\[\]{}]+|"[^"\\]*(?:\\.[^"\\]*)*")*')
_NON_FINITE = frozenset({"NaN", "Infinity", "-Infinity"})


@dataclass
class JSONScan:
    """What one pass over a JSON text found; every position is ``(line, column)``."""

    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)
    too_deep: tuple[int, int] | None = None
    duplicate: tuple[int, int, str] | None = None
    non_finite: tuple[int, int, str] | None = None

    def locate(self, path: Path_) -> tuple[int, int]:
        """Position of ``path``, or of its nearest recorded ancestor."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return (1, 1)


class _Lines:
    """Turns increasing character offsets into (line, column) without a line table."""

    __slots__ = ("line", "offset", "start", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.line = 1
        self.start = 0  # offset of the current line's first character
        self.offset = 0  # offset up to which newlines are counted

    def at(self, offset: int) -> tuple[int, int]:
        if offset < self.offset:  # not expected; recount from the start
            self.line, self.start, self.offset = 1, 0, 0
        newlines = self.text.count("\n", self.offset, offset)
        if newlines:
            self.line += newlines
            self.start = self.text.rfind("\n", self.offset, offset) + 1
        self.offset = offset
        return (self.line, offset - self.start + 1)


class _Frame:
    __slots__ = ("expect_key", "index", "is_object", "key", "keys", "path")

    def __init__(self, is_object: bool, path: Path_ | None, track_keys: bool) -> None:
        self.is_object = is_object
        self.path = path  # None when nothing below this frame is recorded
        self.index = 0
        self.key: str | None = None
        self.expect_key = True
        self.keys: set[str] | None = set() if (track_keys and is_object) else None


def _key(token: str) -> str:
    try:
        value = json.loads(token)
    except ValueError:
        return token.strip('"')
    return value if isinstance(value, str) else token


def _is_non_finite(token: str) -> bool:
    if token in _NON_FINITE:
        return True
    if token[0] not in "-0123456789":
        return False
    try:
        return math.isinf(float(token))
    except ValueError:
        return False


def scan_json(
    text: str,
    *,
    depth: int = 0,
    wanted: Collection[Path_] | None = None,
    max_depth: int | None = None,
    find_duplicates: bool = False,
    find_non_finite: bool = False,
) -> JSONScan:
    """Scan ``text`` once.

    Records the position of every path up to ``depth`` elements long (only those in
    ``wanted`` when it is given), the first bracket nested deeper than ``max_depth``,
    and on request the first duplicate key or non-finite number (``NaN``,
    ``Infinity``, ``1e999``). Meant for text :func:`json.loads` accepted or refused;
    on any other text it returns whatever it found without failing.
    """
    result = JSONScan()
    lines = _Lines(text)
    record = result.positions
    fine_everywhere = find_duplicates or find_non_finite
    stack: list[_Frame] = []
    position = 0
    end = len(text)
    token_at = _TOKEN.search
    skip = _SKIP.match

    def value_path() -> Path_ | None:
        if not stack:
            return ()
        top = stack[-1]
        if top.path is None:
            return None
        if top.is_object:
            return None if top.key is None else (*top.path, top.key)
        return (*top.path, top.index)

    def note(path: Path_ | None, offset: int) -> None:
        # An object member was noted at its key; only items and the root at their value.
        if stack and stack[-1].is_object:
            return
        if path is not None and len(path) <= depth and (wanted is None or path in wanted):
            record[path] = lines.at(offset)

    while position < end:
        if stack and stack[-1].path is None and not fine_everywhere:
            # Nothing below is recorded: jump to the next bracket outside a string.
            skipped = skip(text, position)
            position = skipped.end() if skipped is not None else position
            if position >= end:
                break
            char = text[position]
            if char == "{" or char == "[":
                stack.append(_Frame(char == "{", None, False))
                if max_depth is not None and len(stack) > max_depth:
                    result.too_deep = lines.at(position)
                    if not depth:
                        return result
                    max_depth = None
            elif char == "}" or char == "]":
                stack.pop()
            position += 1
            continue
        match = token_at(text, position)
        if match is None:
            break
        start = match.start()
        position = match.end()
        token = match.group()
        first = token[0]
        if first == "{" or first == "[":
            path = value_path()
            note(path, start)
            child_path = path if path is not None and len(path) < depth else None
            stack.append(_Frame(first == "{", child_path, find_duplicates))
            if max_depth is not None and len(stack) > max_depth:
                result.too_deep = lines.at(start)
                if not depth and not fine_everywhere:
                    return result
                max_depth = None
        elif first == "}" or first == "]":
            if stack:
                stack.pop()
        elif first == ",":
            if stack:
                top = stack[-1]
                if top.is_object:
                    top.expect_key = True
                    top.key = None
                else:
                    top.index += 1
        elif first == ":":
            if stack:
                stack[-1].expect_key = False
        elif stack and stack[-1].is_object and stack[-1].expect_key:
            top = stack[-1]
            if top.path is not None or top.keys is not None:
                key = _key(token)
                top.key = key
                member = (*top.path, key) if top.path is not None else None
                if (
                    member is not None
                    and len(member) <= depth
                    and (wanted is None or member in wanted)
                ):
                    record[member] = lines.at(start)
                if top.keys is not None:
                    if key in top.keys:
                        line, column = lines.at(start)
                        result.duplicate = (line, column, key)
                        return result
                    top.keys.add(key)
        else:
            note(value_path(), start)
            if find_non_finite and first != '"' and _is_non_finite(token):
                line, column = lines.at(start)
                result.non_finite = (line, column, token)
                return result
    return result


def locate_json(text: str, path: Path_) -> tuple[int, int]:
    """Position of ``path`` (or its nearest ancestor) in a JSON text."""
    wanted = {path[:end] for end in range(len(path) + 1)}
    return scan_json(text, depth=len(path), wanted=wanted).locate(path)


def locate_many(text: str, paths: Collection[Path_]) -> JSONScan:
    """One pass that locates every path in ``paths`` (use :meth:`JSONScan.locate`)."""
    wanted = {path[:end] for path in paths for end in range(len(path) + 1)}
    depth = max((len(path) for path in paths), default=0)
    return scan_json(text, depth=depth, wanted=wanted)


__all__ = ["JSONScan", "Path_", "locate_json", "locate_many", "scan_json"]
