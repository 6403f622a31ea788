"""The one YAML chokepoint: libyaml's C parser, plain data only, every node locatable.

Nothing else in MetaQore parses YAML. Values are built from the parser's event stream
(iteratively, so nesting depth never reaches the C stack), which lets this module:

* give ``line:column`` for any node (for ``path:line:column`` error messages);
* refuse duplicate mapping keys, which ``yaml.safe_load`` silently overwrites;
* refuse every tag that is not plain YAML data (``!!python/...`` and friends);
* bound alias expansion (billion-laughs documents) and nesting depth;
* keep timestamps as the strings they were written as, and refuse NaN/Infinity,
  so whatever it returns is JSON-compatible.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - libyaml is present on every supported platform
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

Path_ = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_PLAIN_TAGS = {
    _TAG + "str",
    _TAG + "int",
    _TAG + "float",
    _TAG + "bool",
    _TAG + "null",
    _TAG + "timestamp",
}
_COLLECTION_TAGS = {_TAG + "map", _TAG + "seq"}
_VALUE_TAG = _TAG + "value"

_resolver = Resolver()
_constructor = SafeConstructor()

DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_ALIAS_NODES = 100_000


class YAMLDataError(ValueError):
    """A YAML document that is not acceptable plain data; ``line``/``column`` are 1-based."""

    def __init__(self, message: str, line: int, column: int, expected: str | None = None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.expected = expected


@dataclass
class Located:
    """A parsed document and where its nodes are (1-based line, column)."""

    value: Any
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: Path_) -> tuple[int, int]:
        """Position of ``path``, or of its nearest recorded ancestor."""
        for end in range(len(path), -1, -1):
            found = self.positions.get(tuple(path[:end]))
            if found is not None:
                return found
        return (1, 1)


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _mark(event: Any) -> tuple[int, int]:
    return (event.start_mark.line + 1, event.start_mark.column + 1)


def _scalar(event: Any) -> Any:
    tag = event.tag
    if tag in (None, "!"):
        tag = _resolver.resolve(  # type: ignore[no-untyped-call]
            yaml.ScalarNode, event.value, event.implicit
        )
        if tag == _VALUE_TAG:  # a plain `=`: YAML 1.1's value key, a string in YAML 1.2
            tag = _TAG + "str"
    if tag not in _PLAIN_TAGS:
        line, column = _mark(event)
        if event.tag is None:  # a plain `<<`: YAML 1.1's merge key, not plain data
            raise YAMLDataError(
                f"YAML merge key {event.value!r} is not supported",
                line,
                column,
                "plain YAML data (write the keys out, or quote '<<' to mean the string)",
            )
        raise YAMLDataError(
            f"unsafe or unknown YAML tag '{_tag_name(event.tag)}'", line, column, "plain YAML data"
        )
    if tag == _TAG + "timestamp" or tag == _TAG + "str":
        return event.value
    try:
        value = _constructor.construct_object(yaml.ScalarNode(tag, event.value))
    except ValueError:  # e.g. an integer longer than Python's 4300-digit limit
        line, column = _mark(event)
        raise YAMLDataError(
            f"number {event.value[:20]!r}... is too large", line, column, "a smaller number"
        ) from None
    if isinstance(value, float) and not math.isfinite(value):
        line, column = _mark(event)
        raise YAMLDataError(f"non-finite number {event.value!r}", line, column, "a finite number")
    return value


def _check_collection_tag(event: Any) -> None:
    if event.tag not in (None, "!") and event.tag not in _COLLECTION_TAGS:
        line, column = _mark(event)
        raise YAMLDataError(
            f"unsafe or unknown YAML tag '{_tag_name(event.tag)}'", line, column, "plain YAML data"
        )


class _Frame:
    __slots__ = ("anchor", "container", "key", "key_mark", "path", "size", "start")

    def __init__(self, container: Any, path: Path_, anchor: str | None, start: tuple[int, int]):
        self.container = container
        self.key: Any = _NO_KEY
        self.key_mark: tuple[int, int] = start
        self.path = path
        self.anchor = anchor
        self.start = start
        # Nodes this collection stands for once aliases are expanded.
        self.size = 1


_NO_KEY = object()


def _events(data: bytes | str) -> Iterator[Any]:
    return yaml.parse(data, Loader=_SafeLoader)


def load_yaml(
    data: bytes | str,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_alias_nodes: int = DEFAULT_MAX_ALIAS_NODES,
    record_depth: int = 2,
) -> Located:
    """Parse one YAML document into plain data, recording node positions.

    Positions are kept for paths up to ``record_depth`` elements long (use
    :func:`locate_yaml` to find a deeper one after an error). Raises
    :class:`YAMLDataError` for anything that is not acceptable plain data and
    ``yaml.YAMLError`` (with a problem mark) for syntax errors.
    """
    positions: dict[Path_, tuple[int, int]] = {}
    anchors: dict[str, tuple[Any, int]] = {}  # anchor -> (value, expanded size)
    alias_nodes = 0
    stack: list[_Frame] = []
    root: Any = _NO_KEY
    documents = 0

    def attach(value: Any, start: tuple[int, int], size: int) -> None:
        nonlocal root
        if not stack:
            root = value
            positions[()] = start
            return
        frame = stack[-1]
        frame.size += size
        if isinstance(frame.container, list):
            path = (*frame.path, len(frame.container))
            frame.container.append(value)
            if len(path) <= record_depth:
                positions[path] = start
            return
        if frame.key is _NO_KEY:
            if not isinstance(value, str):
                raise YAMLDataError(
                    f"mapping key {value!r} is not a string", *start, "a string key"
                )
            if value in frame.container:
                raise YAMLDataError(f"duplicate key '{value}'", *start, "unique keys")
            frame.key = value
            frame.key_mark = start
            return
        path = (*frame.path, frame.key)
        frame.container[frame.key] = value
        if len(path) <= record_depth:
            positions[path] = frame.key_mark
        frame.key = _NO_KEY

    for event in _events(data):
        kind = type(event)
        if kind is yaml.ScalarEvent:
            value = _scalar(event)
            if event.anchor is not None:
                anchors[event.anchor] = (value, 1)
            attach(value, _mark(event), 1)
        elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
            _check_collection_tag(event)
            if len(stack) >= max_depth:
                raise YAMLDataError(
                    f"nesting deeper than {max_depth} levels",
                    *_mark(event),
                    f"at most {max_depth} levels",
                )
            start = _mark(event)
            container: Any = {} if kind is yaml.MappingStartEvent else []
            if stack:
                parent = stack[-1]
                if isinstance(parent.container, list):
                    path: Path_ = (*parent.path, len(parent.container))
                elif parent.key is _NO_KEY:
                    raise YAMLDataError(
                        "a mapping key must be a plain scalar", *start, "a string key"
                    )
                else:
                    path = (*parent.path, parent.key)
            else:
                path = ()
            stack.append(_Frame(container, path, event.anchor, start))
        elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
            frame = stack.pop()
            attach(frame.container, frame.start, frame.size)
            if frame.anchor is not None:
                anchors[frame.anchor] = (frame.container, frame.size)
        elif kind is yaml.AliasEvent:
            if event.anchor not in anchors:
                raise YAMLDataError(
                    f"unknown alias '*{event.anchor}'", *_mark(event), "a defined anchor"
                )
            value, size = anchors[event.anchor]
            alias_nodes += size
            if alias_nodes > max_alias_nodes:
                raise YAMLDataError(
                    f"aliases expand to more than {max_alias_nodes} nodes",
                    *_mark(event),
                    "a document without alias bombs",
                )
            attach(value, _mark(event), size)
        elif kind is yaml.DocumentStartEvent:
            documents += 1
            if documents > 1:
                raise YAMLDataError(
                    "more than one YAML document", *_mark(event), "a single document"
                )
    if root is _NO_KEY:
        root = None
    return Located(root, positions)


def locate_yaml(data: bytes | str, path: Path_) -> tuple[int, int]:
    """Position of ``path`` in a document that :func:`load_yaml` accepted."""
    try:
        located = load_yaml(data, record_depth=len(path) + 1)
    except (YAMLDataError, yaml.YAMLError):
        return (1, 1)
    return located.locate(path)


def yaml_error_position(error: yaml.YAMLError, text: str | None = None) -> tuple[int, int, str]:
    """``(line, column, message)`` of a libyaml error; the message is one line.

    A reader error (a character YAML does not allow, e.g. NUL) has no mark, only a byte
    offset into the UTF-8 of the document: ``text`` turns it into a line and column.
    """
    if isinstance(error, yaml.reader.ReaderError):
        message = f"invalid YAML: unacceptable character #x{error.character:04x}: {error.reason}"
        if text is None or not isinstance(error.position, int):
            return (1, 1, message)
        before = text.encode("utf-8", "surrogatepass")[: error.position]
        prefix = before.decode("utf-8", "ignore")
        line_start = prefix.rfind("\n") + 1
        return (prefix.count("\n") + 1, len(prefix) - line_start + 1, message)
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error).split("\n", 1)[0]
    context = getattr(error, "context", None)
    message = f"invalid YAML: {problem}"
    if context:
        message += f" ({context})"
    if mark is None:
        return (1, 1, message)
    return (mark.line + 1, mark.column + 1, message)


def dump_yaml(value: Any) -> str:
    """Plain block-style YAML for files MetaQore writes (``metaqore init``)."""
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False)


__all__ = [
    "DEFAULT_MAX_ALIAS_NODES",
    "DEFAULT_MAX_DEPTH",
    "Located",
    "YAMLDataError",
    "dump_yaml",
    "load_yaml",
    "locate_yaml",
    "yaml_error_position",
]
