"""Reading manifest files into validated headers and one compact record per artifact.

YAML goes through the one YAML chokepoint (:mod:`metaqore.yamlio`), JSON through a
strict :func:`json.loads` (duplicate keys, NaN and Infinity refused), and JSON Lines is
streamed: artifact lines are validated in batches by pydantic and turned into
:class:`~metaqore.core.records.ArtifactRecord` objects straight away, keeping only the
hash of ``data``. Every problem of every file is collected and raised together as
:class:`~metaqore.exceptions.ManifestErrors`, each located as ``path:line:column``; a
file with a problem contributes no records.

JSON Lines takes two paths. The bulk path validates a batch of lines in one pydantic
call (each line parsed on its own, so a line is exactly one value) and builds records
with no per-line parsing in Python. Any surprise in a batch -- a validation error, a
blank line, a hash mismatch, data nested too deep, a possibly dropped duplicate key --
sends the whole batch to the careful path, which reads it line by line with the same
strict JSON reader as ``.json`` files and locates every problem. Both give identical
records.

Nesting is measured as in a manifest document: an artifact line sits at level 3
(root > artifacts > artifact), so ``data`` may nest equally deep in every format.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import math
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

import yaml
from pydantic import Json, TypeAdapter, ValidationError

from metaqore.core.canonical import HASH_PREFIX, canonical_json, sha256_text
from metaqore.core.records import ArtifactRecord, DuplicateArtifactError, RunIndex
from metaqore.exceptions import ManifestError, ManifestErrors
from metaqore.manifest import parts
from metaqore.manifest.discover import ManifestFile
from metaqore.manifest.jsonpos import Path_, locate_many, scan_json
from metaqore.manifest.schema import (
    ARTIFACT_ADAPTER,
    ArtifactLine,
    GraphNodeEvent,
    Manifest,
    ManifestArtifact,
    ManifestHeader,
    ManifestProject,
    ManifestRun,
    ManifestTask,
    MessageEvent,
    TaskInfo,
    TransitionEvent,
    task_info,
)
from metaqore.text import one_line
from metaqore.validation import Problem, explain
from metaqore.yamlio import Located, YAMLDataError, load_yaml, yaml_error_position

if TYPE_CHECKING:
    from metaqore.config import MetaQoreConfig

EventModel = GraphNodeEvent | MessageEvent | TransitionEvent
Position = tuple[int, int]
Locator = Callable[[list[Path_]], list[Position]]

#: Problems shown before the rest are only counted.
MAX_PROBLEMS = 50
#: Artifact lines validated per pydantic call on the JSON Lines path (measured: 1,000 to
#: 5,000 are equally fast; larger batches fall out of the CPU caches).
BATCH_LINES = 2_000
#: Bytes read per call when streaming JSON Lines.
READ_CHUNK = 8 * 1024 * 1024
# Loads that leave this many records behind freeze them out of later collections.
_FREEZE_RECORDS = 10_000

_BOM = b"\xef\xbb\xbf"
_EMPTY_EXPECTED = "metaqore: 1 and a project"
_PROVENANCE_KEYS = ("actor", "action", "key_id", "signature")
# Each JSON Lines artifact line parsed and validated on its own, many per call.
_LINES_ADAPTER: TypeAdapter[list[ArtifactLine]] = TypeAdapter(list[Json[ArtifactLine]])
_LINE_LIST_ADAPTER: TypeAdapter[list[ArtifactLine]] = TypeAdapter(list[ArtifactLine])
_LONG_INTEGER = re.compile(r"\d{4000,}")
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


# -- results -------------------------------------------------------------------------------
@dataclass
class ProjectInfo:
    """A project as all its manifests describe it; ``path``/``line``: where first declared."""

    id: str
    name: str | None
    organization: str | None
    description: str | None
    path: str
    line: int
    paths: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LoadedManifest:
    """Everything a manifest holds except its artifacts (those went into the index)."""

    file: ManifestFile
    sha256: str
    size: int
    project: ManifestProject
    project_line: int
    run: ManifestRun | None
    tasks: list[tuple[ManifestTask, int]]
    events: list[tuple[EventModel, int]]
    artifact_count: int


@dataclass(frozen=True)
class LoadResult:
    """The manifests of a run, in file order, and the projects they declare."""

    manifests: list[LoadedManifest]
    projects: dict[str, ProjectInfo]

    @property
    def artifact_count(self) -> int:
        return sum(manifest.artifact_count for manifest in self.manifests)


# -- problems ------------------------------------------------------------------------------
class _Problems:
    """Every problem of the run, the first :data:`MAX_PROBLEMS` kept in full."""

    def __init__(self) -> None:
        self.shown: list[ManifestError] = []
        self.omitted = 0
        self.stopped = False  # a file was abandoned once the list was full

    @property
    def full(self) -> bool:
        return len(self.shown) >= MAX_PROBLEMS

    def add(self, errors: _FileProblems) -> None:
        for error in errors:
            if self.full:
                self.omitted += 1
            else:
                self.shown.append(error)
        self.omitted += errors.omitted

    def __bool__(self) -> bool:
        return bool(self.shown)

    def exception(self) -> ManifestErrors:
        error = ManifestErrors(self.shown)
        if self.omitted or self.stopped:
            more = f"{self.omitted} more problem" + ("s" if self.omitted != 1 else "")
            if not self.stopped:
                tail = f"... and {more}"
            elif self.omitted:
                tail = f"... and at least {more}"
            else:
                tail = f"... and maybe more: checking stopped after {MAX_PROBLEMS} problems"
            error.message += "\n" + tail
            error.args = (error.message,)
            error.metadata["omitted"] = self.omitted
        return error


class _FileProblems(list[ManifestError]):
    """The problems of one file, as ``path:line:column`` errors (beyond a limit, a count)."""

    def __init__(self, display: str) -> None:
        super().__init__()
        self.display = display
        self.omitted = 0

    def at(self, line: int, column: int, message: str, expected: str | None = None) -> None:
        if len(self) >= MAX_PROBLEMS:
            self.omitted += 1
            return
        self.append(
            ManifestError(
                one_line(message),
                path=one_line(self.display),
                line=line,
                column=column,
                expected=one_line(expected) if expected else expected,
            )
        )


class _Columns(NamedTuple):
    """Columns of a file's artifacts, tasks and events, to locate duplicate ids."""

    artifacts: list[int]
    tasks: list[int]
    events: list[int]


# A file's outcome: the manifest, its records and the columns -- or its problems.
_Outcome = tuple[LoadedManifest, list[ArtifactRecord], _Columns] | _FileProblems
# A parsed document: its value, the positions recorded while parsing, a locator.
_Parsed = tuple[Any, dict[Path_, Position], Locator]


class _Refused(Exception):
    """Raised inside :func:`json.loads` hooks for input strict JSON does not allow."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Refused("duplicate")
    return result


def _constant(token: str) -> float:
    raise _Refused("non-finite")


def _float(token: str) -> float:
    value = float(token)
    if math.isinf(value):
        raise _Refused("non-finite")
    return value


def _shown(value: Any) -> str:
    """A scalar as the manifest wrote it, a collection by its kind."""
    if isinstance(value, dict | list):
        return _kind(value)
    return json.dumps(value, ensure_ascii=False)


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _doc_path(value: Any, loc: Sequence[str | int]) -> Path_:
    """The document path a pydantic ``loc`` names.

    Steps that are not a key or index of the node reached so far are skipped: tagged
    unions put the tag (``'graph_node'``) into ``loc``.
    """
    path: list[str | int] = []
    node = value
    for step in loc:
        if isinstance(node, dict):
            found = isinstance(step, str) and step in node
        else:
            found = isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node)
        if found:
            node = node[step]
            path.append(step)
    return tuple(path)


def _duplicate(what: str, item_id: str, project: str, first: tuple[str, int]) -> str:
    """Worded as :class:`~metaqore.core.records.DuplicateArtifactError` words artifacts."""
    return (
        f"duplicate {what} id '{item_id}' in project '{project}' "
        f"(first declared at {first[0]}:{first[1]})"
    )


def _data_depth(value: Any) -> int:
    """Nesting depth of a JSON value (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Iterable[Any] = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _utf8_error(raw: bytes, error: UnicodeDecodeError, first_line: int = 1) -> tuple[int, int]:
    """(line, column) of the first byte that is not UTF-8; the column counts characters."""
    line_start = raw.rfind(b"\n", 0, error.start) + 1
    line = first_line + raw.count(b"\n", 0, error.start)
    prefix = raw[line_start : error.start]
    if line_start == 0 and prefix.startswith(_BOM):
        prefix = prefix[len(_BOM) :]
    column = len(prefix.decode("utf-8", errors="replace")) + 1
    return line, column


# -- the loader ----------------------------------------------------------------------------
class _Loader:
    def __init__(
        self,
        config: MetaQoreConfig,
        index: RunIndex,
        *,
        keep_data_keys: bool,
        keep_data: bool,
    ) -> None:
        self.config = config
        self.index = index
        self.keep_data_keys = keep_data_keys
        self.keep_data = keep_data
        self.max_depth = config.max_nesting_depth
        self.max_bytes = config.max_manifest_bytes
        self.problems = _Problems()
        self.projects: dict[str, ProjectInfo] = {}
        self.manifests: list[LoadedManifest] = []
        self.records_added = 0
        self.progress: Callable[[str, int, int | None], None] | None = None
        self._seen = 0
        # project -> task id / graph node id -> (path, line) where first declared
        self.task_ids: dict[str, dict[str, tuple[str, int]]] = {}
        self.node_ids: dict[str, dict[str, tuple[str, int]]] = {}
        # Equal TaskInfo tuples are shared: most artifacts of a run repeat a few.
        self.task_infos: dict[TaskInfo, TaskInfo] = {}
        # Processes per JSON Lines file: None chooses by size (parts.PARALLEL_MIN_BYTES).
        self.jobs: int | None = 1

    def jobs_for(self, size: int) -> int:
        """Into how many parts to cut a JSON Lines file of ``size`` bytes."""
        if self.jobs is not None:
            return self.jobs
        return parts.auto_jobs() if size >= parts.PARALLEL_MIN_BYTES else 1

    # -- shared pieces ---------------------------------------------------------------------
    def record(
        self,
        artifact: ManifestArtifact,
        digest: str,
        data_json: str,
        project: str,
        run_iteration: int | None,
        source: str,
        line: int,
        position: int,
    ) -> ArtifactRecord:
        """The compact record of a validated artifact (``data`` itself is not kept)."""
        task = artifact.task
        info: TaskInfo | None = None
        sensitivity: str | None = None
        if task is not None:
            made = task_info(task)
            if made is not None:
                info = self.task_infos.setdefault(made, made)
            if task.sensitivity is not None:
                sensitivity = task.sensitivity.value
        provenance: tuple[dict[str, Any], ...] = ()
        if artifact.provenance:
            provenance = tuple(
                {key: getattr(entry, key) for key in _PROVENANCE_KEYS}
                for entry in artifact.provenance
            )
        iteration = artifact.iteration
        return ArtifactRecord(
            project=project,
            id=artifact.id,
            artifact_type=artifact.type,
            agent=artifact.created_by,
            content_hash=digest,
            declared_version=artifact.version,
            iteration=run_iteration if iteration is None else iteration,
            depends_on=artifact.depends_on,
            source=source,
            line=line,
            position=position,
            sensitivity=sensitivity,
            task=info,
            provenance=provenance,
            data_keys=frozenset(artifact.data) if self.keep_data_keys else None,
            data_json=data_json if self.keep_data else None,
        )

    def line_record(
        self,
        artifact: ArtifactLine,
        digest: str,
        data_json: str,
        data: dict[str, Any],
        project: str,
        run_iteration: int | None,
        source: str,
        line: int,
        position: int,
    ) -> ArtifactRecord:
        """:meth:`record` of an artifact validated as a dict (the JSON Lines hot path)."""
        task = artifact.get("task")
        info: TaskInfo | None = None
        sensitivity: str | None = None
        if task is not None:
            made = TaskInfo(
                task.get("type"),
                task.get("provider"),
                task.get("has_sensitive_data", False),
                task.get("has_private_data", False),
                task.get("is_security_task", False),
            )
            info = self.task_infos.setdefault(made, made)
            level = task.get("sensitivity")
            if level is not None:
                sensitivity = level.value
        provenance: tuple[dict[str, Any], ...] = ()
        entries = artifact.get("provenance")
        if entries:
            provenance = tuple(
                {key: entry.get(key) for key in _PROVENANCE_KEYS} for entry in entries
            )
        iteration = artifact.get("iteration")
        return ArtifactRecord(
            project=project,
            id=artifact["id"],
            artifact_type=artifact["type"],
            agent=artifact["created_by"],
            content_hash=digest,
            declared_version=artifact.get("version"),
            iteration=run_iteration if iteration is None else iteration,
            depends_on=artifact.get("depends_on", ()),
            source=source,
            line=line,
            position=position,
            sensitivity=sensitivity,
            task=info,
            provenance=provenance,
            data_keys=frozenset(data) if self.keep_data_keys else None,
            data_json=data_json if self.keep_data else None,
        )

    def read_bytes(self, file: ManifestFile, problems: _FileProblems) -> bytes | None:
        """The file's bytes, refused before reading when it is over the size limit."""
        try:
            with open(file.path, "rb") as stream:
                info = os.fstat(stream.fileno())
                if not stat.S_ISREG(info.st_mode):
                    problems.at(1, 1, "not a regular file", "a manifest file")
                    return None
                if info.st_size > self.max_bytes:
                    self.too_large(info.st_size, problems)
                    return None
                raw = stream.read(self.max_bytes + 1)
        except OSError as exc:
            problems.at(1, 1, f"cannot read manifest ({exc.strerror})", "a readable file")
            return None
        if len(raw) > self.max_bytes:  # grew while being read
            self.too_large(None, problems)
            return None
        return raw

    def too_large(self, size: int | None, problems: _FileProblems) -> None:
        """A file over ``max_manifest_bytes`` (``size`` unknown when it grew while read)."""
        over = f"over the limit of {self.max_bytes} bytes"
        problems.at(
            1,
            1,
            f"manifest is {size} bytes, {over}" if size is not None else f"manifest is {over}",
            "a smaller manifest, or a higher max_manifest_bytes",
        )

    def decode(self, raw: bytes, problems: _FileProblems) -> str | None:
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line, column = _utf8_error(raw, exc)
            problems.at(line, column, "invalid UTF-8", "UTF-8 text")
            return None

    def check_version(
        self, value: dict[str, Any], problems: _FileProblems, locate_all: Locator
    ) -> bool:
        """Report a wrong ``metaqore`` version; False when the rest must not be judged."""
        if "metaqore" not in value:
            return True  # reported with the other problems
        version = value["metaqore"]
        if type(version) is int and version == 1:
            return True
        line, column = locate_all([("metaqore",)])[0]
        problems.at(line, column, f"unsupported manifest version {_shown(version)}", "1")
        return False

    def problem_errors(
        self,
        found: list[Problem],
        value: Any,
        problems: _FileProblems,
        locate_all: Locator,
        *,
        origin: tuple[int, int] = (1, 1),
        jsonl_header: bool = False,
    ) -> None:
        """Locate pydantic problems; document-level ones go to ``origin``."""
        paths = [_doc_path(value, problem.loc) for problem in found]
        positions = locate_all(paths)
        located: list[tuple[int, int, str, str | None]] = []
        for problem, (line, column) in zip(found, positions, strict=True):
            message, expected = problem.message, problem.expected
            if not problem.loc:
                line, column = origin
                if message == "missing required key 'metaqore'":
                    expected = "metaqore: 1"
                message = message.removeprefix("document: ")
            elif jsonl_header and problem.loc == ("artifacts",):
                message = "unknown key 'artifacts'"
                expected = "artifacts on their own lines after the header line"
            located.append((line, column, message, expected))
        for line, column, message, expected in sorted(located, key=lambda item: item[:2]):
            problems.at(line, column, message, expected)

    def hash_data(self, data: dict[str, Any]) -> tuple[str, str] | str:
        """``(canonical JSON, content hash)`` of ``data``, or why it cannot be hashed."""
        try:
            text = canonical_json(data)
            return text, sha256_text(text)
        except (ValueError, RecursionError) as exc:
            return str(exc) or type(exc).__name__

    # -- YAML and JSON documents -----------------------------------------------------------
    def load_document(self, file: ManifestFile) -> _Outcome:
        problems = _FileProblems(file.display)
        raw = self.read_bytes(file, problems)
        if raw is None:
            return problems
        text = self.decode(raw, problems)
        if text is None:
            return problems
        if file.format == "yaml":
            parsed = self.parse_yaml(text, problems)
        else:
            parsed = self.parse_json(text, problems)
        if parsed is None:
            return problems
        value, positions, locate_all = parsed

        def locate(path: Path_) -> Position:
            return locate_all([path])[0]

        if value is None:
            problems.at(1, 1, "empty manifest", _EMPTY_EXPECTED)
            return problems
        if not isinstance(value, dict):
            problems.at(1, 1, f"manifest is {_kind(value)}, not a mapping", _EMPTY_EXPECTED)
            return problems
        if not self.check_version(value, problems, locate_all):
            return problems
        try:
            manifest = Manifest.model_validate(value)
        except ValidationError as exc:
            self.problem_errors(explain(exc, Manifest), value, problems, locate_all)
            return problems

        def place_of(path: Path_) -> Position:
            return positions.get(path) or locate(path)

        project = manifest.project
        run = manifest.run
        run_iteration = run.iteration if run is not None else None
        records: list[ArtifactRecord] = []
        columns: list[int] = []
        refused: list[tuple[Path_, str, str]] = []  # located together below
        for position, artifact in enumerate(manifest.artifacts):
            item = ("artifacts", position)
            hashed = self.hash_data(artifact.data)
            if isinstance(hashed, str):
                refused.append(
                    ((*item, "data"), f"data cannot be hashed ({hashed})", "JSON-compatible data")
                )
                continue
            data_json, digest = hashed
            if artifact.content_hash is not None and artifact.content_hash != digest:
                refused.append(
                    ((*item, "content_hash"), "content_hash does not match data", digest)
                )
                continue
            line, column = positions.get(item) or locate(item)
            records.append(
                self.record(
                    artifact,
                    digest,
                    data_json,
                    project.id,
                    run_iteration,
                    file.display,
                    line,
                    position,
                )
            )
            columns.append(column)
        if refused:
            places = locate_all([path for path, _, _ in refused])
            for (line, column), (_, message, expected) in zip(places, refused, strict=True):
                problems.at(line, column, message, expected)
        if problems:
            return problems
        task_places = [place_of(("tasks", i)) for i in range(len(manifest.tasks))]
        event_places = [place_of(("events", i)) for i in range(len(manifest.events))]
        loaded = LoadedManifest(
            file=file,
            sha256=HASH_PREFIX + hashlib.sha256(raw).hexdigest(),
            size=len(raw),
            project=project,
            project_line=place_of(("project",))[0],
            run=run,
            tasks=[(task, task_places[i][0]) for i, task in enumerate(manifest.tasks)],
            events=[(event, event_places[i][0]) for i, event in enumerate(manifest.events)],
            artifact_count=len(records),
        )
        located = _Columns(
            columns,
            [column for _, column in task_places],
            [column for _, column in event_places],
        )
        return loaded, records, located

    def parse_yaml(self, text: str, problems: _FileProblems) -> _Parsed | None:
        limits = {
            "max_depth": self.max_depth,
            "max_alias_nodes": self.config.max_yaml_alias_nodes,
        }
        try:
            located = load_yaml(text, record_depth=2, **limits)
        except YAMLDataError as exc:
            problems.at(exc.line, exc.column, exc.message, exc.expected)
            return None
        except yaml.YAMLError as exc:
            line, column, message = yaml_error_position(exc, text)
            problems.at(line, column, message, "valid YAML")
            return None
        except ValueError:  # an integer with more digits than Python converts
            self.long_integer(text, problems)
            return None

        def locate_all(paths: list[Path_]) -> list[Position]:
            deepest = max((len(path) for path in paths), default=0)
            source: Located = located
            if deepest > 2:
                try:
                    source = load_yaml(text, record_depth=deepest, **limits)
                except (YAMLDataError, yaml.YAMLError):  # pragma: no cover - parsed once already
                    source = located
            return [source.locate(path) for path in paths]

        return located.value, located.positions, locate_all

    def parse_json(self, text: str, problems: _FileProblems) -> _Parsed | None:
        value = self.strict_json(text, problems)
        if value is _INVALID:
            return None
        scan = scan_json(text, depth=2, max_depth=self.max_depth)
        if scan.too_deep is not None:
            self.too_deep(scan.too_deep, problems)
            return None

        def locate_all(paths: list[Path_]) -> list[Position]:
            if all(len(path) <= 2 for path in paths):
                return [scan.locate(path) for path in paths]
            deeper = locate_many(text, paths)
            return [deeper.locate(path) for path in paths]

        return value, scan.positions, locate_all

    def too_deep(self, where: Position, problems: _FileProblems, limit: int | None = None) -> None:
        limit = self.max_depth if limit is None else limit
        problems.at(*where, f"nesting deeper than {limit} levels", f"at most {limit} levels")

    def strict_json(
        self,
        text: str,
        problems: _FileProblems,
        *,
        line: int = 1,
        blank_ok: bool = False,
        levels_above: int = 0,
    ) -> Any:
        """``json.loads`` that refuses duplicate keys, NaN and Infinity; ``_INVALID`` on error.

        ``line`` is the line ``text`` starts on (JSON Lines); positions are shifted by it.
        Blank text is ``_BLANK`` when ``blank_ok``, else an empty manifest. Nesting is
        checked as if ``text`` sat ``levels_above`` levels deep in a manifest.
        """
        shift = line - 1
        if not text.strip():
            if blank_ok:
                return _BLANK
            problems.at(line, 1, "empty manifest", _EMPTY_EXPECTED)
            return _INVALID
        try:
            value = json.loads(
                text, object_pairs_hook=_pairs, parse_constant=_constant, parse_float=_float
            )
            if "\\u" in text and _SURROGATE.search(text):
                self.check_surrogates(value, text, problems, shift)
                if problems:
                    return _INVALID
            return value
        except json.JSONDecodeError as exc:
            problems.at(exc.lineno + shift, exc.colno, f"invalid JSON: {exc.msg}", "valid JSON")
        except _Refused as exc:
            if exc.args[0] == "duplicate":
                found = scan_json(text, find_duplicates=True).duplicate
                at_line, column, key = found or (1, 1, "?")
                problems.at(at_line + shift, column, f"duplicate key '{key}'", "unique keys")
            else:
                non_finite = scan_json(text, find_non_finite=True).non_finite
                at_line, column, token = non_finite or (1, 1, "?")
                problems.at(
                    at_line + shift, column, f"non-finite number {token}", "a finite number"
                )
        except RecursionError:
            limit = min(self.max_depth, 500)
            where = scan_json(text, max_depth=limit - levels_above).too_deep or (1, 1)
            self.too_deep((where[0] + shift, where[1]), problems, limit)
        except ValueError:  # an integer with more digits than Python converts
            self.long_integer(text, problems, shift)
        return _INVALID

    def long_integer(self, text: str, problems: _FileProblems, shift: int = 0) -> None:
        match = _LONG_INTEGER.search(text)
        line, column = 1, 1
        if match is not None:
            line = text.count("\n", 0, match.start()) + 1
            column = match.start() - text.rfind("\n", 0, match.start())
        digits = sys.get_int_max_str_digits()
        problems.at(
            line + shift, column, f"integer longer than {digits} digits", "a smaller number"
        )

    def check_surrogates(self, value: Any, text: str, problems: _FileProblems, shift: int) -> None:
        """Refuse a ``\\ud800``-style escape that is half of a character (not UTF-8)."""
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            pass
        else:
            return
        paired_at = -1
        for match in _SURROGATE.finditer(text):
            start = match.start()
            if start == paired_at:
                continue
            high = match.group()[3].lower() in "89ab"
            following = _SURROGATE.match(text, match.end())
            if high and following is not None and following.group()[3].lower() in "cdef":
                paired_at = following.start()
                continue
            line = text.count("\n", 0, start) + 1
            column = start - text.rfind("\n", 0, start)
            problems.at(
                line + shift, column, f"lone surrogate {match.group()}", "valid Unicode text"
            )
            return
        problems.at(1 + shift, 1, "lone surrogate in a string", "valid Unicode text")

    # -- JSON Lines --------------------------------------------------------------------------
    def load_jsonl(self, file: ManifestFile) -> _Outcome:
        return _JSONLines(self, file).load()

    # -- the run -----------------------------------------------------------------------------
    def merge_project(self, loaded: LoadedManifest, problems: _FileProblems) -> None:
        project = loaded.project
        display = loaded.file.display
        known = self.projects.get(project.id)
        if known is None:
            self.projects[project.id] = ProjectInfo(
                id=project.id,
                name=project.name,
                organization=project.organization,
                description=project.description,
                path=display,
                line=loaded.project_line,
                paths=[display],
            )
            return
        for key in ("name", "organization"):
            mine, theirs = getattr(project, key), getattr(known, key)
            if mine is not None and theirs is not None and mine != theirs:
                problems.at(
                    loaded.project_line,
                    1,
                    f"project '{project.id}' has {key} {mine!r} here but {theirs!r} "
                    f"in {known.path}:{known.line}",
                    f"the same {key} in every manifest of the project",
                )
        if problems:
            return
        known.name = known.name or project.name
        known.organization = known.organization or project.organization
        known.description = known.description or project.description
        if display not in known.paths:
            known.paths.append(display)

    def report_progress(self, artifacts: int) -> None:
        """Tell the progress callback (if any) that ``artifacts`` more were read."""
        self._seen += artifacts
        if self.progress is not None:
            self.progress("loading", self._seen, None)

    def add_records(
        self, records: list[ArtifactRecord], columns: list[int], problems: _FileProblems
    ) -> None:
        self.records_added += len(records)
        if self.index.add_all(records):
            return
        add = self.index.add
        for number, record in enumerate(records):
            try:
                add(record)
            except DuplicateArtifactError as exc:
                column = columns[number] if number < len(columns) else 1
                problems.at(record.line, column, str(exc))

    def add_task_and_node_ids(
        self, loaded: LoadedManifest, columns: _Columns, problems: _FileProblems
    ) -> None:
        """Task ids and graph-node ids are unique in a project, as artifact ids are."""
        project = loaded.project.id
        display = loaded.file.display
        tasks = self.task_ids.setdefault(project, {})
        for (task, line), column in zip(loaded.tasks, columns.tasks, strict=True):
            first = tasks.get(task.id)
            if first is None:
                tasks[task.id] = (display, line)
            else:
                problems.at(line, column, _duplicate("task", task.id, project, first))
        nodes = self.node_ids.setdefault(project, {})
        for (event, line), column in zip(loaded.events, columns.events, strict=True):
            if not isinstance(event, GraphNodeEvent):
                continue
            first = nodes.get(event.id)
            if first is None:
                nodes[event.id] = (display, line)
            else:
                problems.at(line, column, _duplicate("graph node", event.id, project, first))

    def load(self, files: Sequence[ManifestFile]) -> LoadResult:
        for file in files:
            if self.problems.full:
                self.problems.stopped = True
                break
            outcome = self.load_jsonl(file) if file.format == "jsonl" else self.load_document(file)
            if isinstance(outcome, _FileProblems):
                self.problems.add(outcome)
                continue
            loaded, records, columns = outcome
            if file.format != "jsonl":  # JSON Lines report per batch while streaming
                self.report_progress(len(records))
            problems = _FileProblems(file.display)
            self.merge_project(loaded, problems)
            if not problems:
                self.add_records(records, columns.artifacts, problems)
                self.add_task_and_node_ids(loaded, columns, problems)
                self.manifests.append(loaded)
            self.problems.add(problems)
        if self.problems:
            raise self.problems.exception()
        return LoadResult(self.manifests, self.projects)


class _Sentinel:
    pass


_INVALID: Any = _Sentinel()
_BLANK: Any = _Sentinel()


class _JSONLines:
    """One JSON Lines manifest, streamed: a header line, then one artifact per line."""

    def __init__(self, loader: _Loader, file: ManifestFile) -> None:
        self.loader = loader
        self.file = file
        self.problems = _FileProblems(file.display)
        self.records: list[ArtifactRecord] = []
        self.header: ManifestHeader | None = None
        self.header_line = 0
        self.header_failed = False
        self.task_columns: list[int] = []  # columns of the header's tasks and events
        self.event_columns: list[int] = []
        self.position = 0  # index of the next artifact in the file
        self.stop = False
        self.project_id = ""
        self.run_iteration: int | None = None
        self.max_bytes = loader.max_bytes
        # Parts of the file after the first: (start, end, worker reading it, if any).
        self.parts: list[tuple[int, int, parts.Worker | None]] = []
        self.planned = 0  # the file's size when the parts were planned
        self.fd = -1  # the open manifest the parts are read from
        self.own_seconds = 0.0  # how long this process took for the first part
        # An artifact line is level 3 of a manifest (root > artifacts > artifact), so
        # data may nest as deep as in a YAML or JSON manifest, and no deeper.
        self.line_depth = loader.max_depth - 2
        # Canonical data shorter than this cannot hold more levels than allowed.
        self.deep_length = 2 * self.line_depth

    @property
    def clean(self) -> bool:
        """Whether records are still worth keeping: no problem so far, header read."""
        if self.problems or self.header_failed:
            self.records.clear()
            return False
        return True

    # The outcome ---------------------------------------------------------------------------
    def load(self) -> _Outcome:
        digest, size = self.stream()
        problems = self.problems
        header = self.header
        if header is None:
            if not problems:
                problems.at(1, 1, "empty manifest", _EMPTY_EXPECTED)
            return problems
        if not self.position and not header.tasks and not header.events and not problems:
            problems.at(
                self.header_line,
                1,
                "a manifest must hold at least one artifact, task or event",
                "artifact lines after the header, or tasks or events in it",
            )
        if problems:
            return problems
        line = self.header_line
        loaded = LoadedManifest(
            file=self.file,
            sha256=HASH_PREFIX + digest,
            size=size,
            project=header.project,
            project_line=line,
            run=header.run,
            tasks=[(task, line) for task in header.tasks],
            events=[(event, line) for event in header.events],
            artifact_count=len(self.records),
        )
        return loaded, self.records, _Columns([], self.task_columns, self.event_columns)

    # Reading ---------------------------------------------------------------------------------
    def stream(self) -> tuple[str, int]:
        hasher = hashlib.sha256()
        size = 0
        problems = self.problems
        try:
            with open(self.file.path, "rb") as stream:
                info = os.fstat(stream.fileno())
                if not stat.S_ISREG(info.st_mode):
                    problems.at(1, 1, "not a regular file", "a manifest file")
                    return hasher.hexdigest(), 0
                if info.st_size > self.max_bytes:  # refused unread, like a YAML or JSON file
                    self.loader.too_large(info.st_size, problems)
                    return hasher.hexdigest(), 0
                jobs = self.loader.jobs_for(info.st_size)
                if jobs > 1:
                    # Parts after the first go to workers once the header is read (feed);
                    # they read this open file, never the path again.
                    starts = parts.plan(stream, info.st_size, jobs)
                    ends = [*starts[1:], info.st_size]  # one too many when no start
                    self.parts = [
                        (start, end, None) for start, end in zip(starts, ends, strict=False)
                    ]
                    self.planned = info.st_size
                    self.fd = stream.fileno()
                end = self.parts[0][0] if self.parts else None
                try:
                    began = time.monotonic()
                    size = self.read(stream, hasher, end=end)
                    self.own_seconds = time.monotonic() - began
                    if self.workers:
                        size = self.finish_parts(stream, hasher, size)
                finally:
                    parts.abandon(self.workers)  # any not collected: stopped early, or an error
        except OSError as exc:
            problems.at(1, 1, f"cannot read manifest ({exc.strerror})", "a readable file")
        return hasher.hexdigest(), size

    def read(
        self,
        stream: parts.Readable,
        hasher: Any,
        *,
        end: int | None,
        size: int = 0,
        next_line: int = 1,
        read_on: bool = True,
    ) -> int:
        """Feed the lines from the stream's position up to ``end``; the offset reached.

        At ``end`` (a line boundary) reading stops if workers took the rest, or
        ``read_on`` is False; otherwise it goes on to the end of the file.
        """
        limit = self.max_bytes
        leftover = b""
        pending: list[bytes] = []
        first = size == 0
        while not self.stop:
            # Never more than one byte past the limit: no line, however long, is held
            # beyond it even if the file grows while it is read.
            want = min(READ_CHUNK, limit + 1 - size)
            if end is not None:
                if size >= end:
                    if self.workers or not read_on:
                        break
                    end = None  # no worker started (no header in the first part):
                    self.parts = []  # this process reads the whole file
                    continue
                want = min(want, end - size)
            chunk = stream.read(want)
            if not chunk:
                break
            if hasher is not None:
                hasher.update(chunk)
            size += len(chunk)
            if size > limit:
                self.loader.too_large(None, self.problems)
                self.stop = True
                break
            if first:
                first = False
                if chunk.startswith(_BOM):
                    chunk = chunk[len(_BOM) :]
            buffer = leftover + chunk if leftover else chunk
            lines = buffer.split(b"\n")
            leftover = lines.pop()
            if pending:
                pending.extend(lines)
            else:
                pending = lines
            taken = self.feed(pending, next_line, final=False)
            next_line += taken
            pending = pending[taken:]
        if not self.stop:
            if leftover:
                pending.append(leftover)
            self.feed(pending, next_line, final=True)
        return size

    # Parts read by workers (metaqore.manifest.parts) -----------------------------------------
    @property
    def workers(self) -> list[parts.Worker]:
        return [worker for _, _, worker in self.parts if worker is not None]

    def start_workers(self) -> None:
        """Fork a worker per part; a part no worker took is read here afterwards."""
        if not parts.can_fork():
            self.parts = []
            return
        started: list[tuple[int, int, parts.Worker | None]] = []
        for start, end, _ in self.parts:
            work = functools.partial(self.read_as_worker, start, end)
            started.append((start, end, parts.fork(work, start, end, self.fd)))
        self.parts = started

    def read_as_worker(self, start: int, end: int) -> tuple[Any, ...]:
        """In a worker: read [start, end) afresh, return what the parent merges."""
        self.parts = []
        self.records = []
        self.problems = _FileProblems(self.file.display)
        self.position = 0
        self.loader.progress = None
        digest = self.read_part(start, end)
        packed = parts.pack(self.records) if self.clean else b""
        found = [(e.line, e.column, e.problem, e.expected) for e in self.problems]
        return packed, found, self.problems.omitted, self.position, self.stop, digest

    def read_part(self, start: int, end: int) -> str:
        """Read the lines of [start, end) of the open file into this reader, numbered as
        in the file; the SHA-256 of the bytes read."""
        reader = parts.PartReader(self.fd)
        next_line = parts.lines_before(reader, start) + 1
        reader.seek(start)
        hasher = hashlib.sha256()
        self.read(reader, hasher, end=end, size=start, next_line=next_line, read_on=False)
        return hasher.hexdigest()

    def finish_parts(self, stream: BinaryIO, hasher: Any, size: int) -> int:
        """After the first part: hash the rest, then merge each part in file order.

        Each part's bytes are hashed on their own too: what a worker read must be what
        the manifest's hash covers, or the file changed while it was read.
        """
        digests: list[str] = []
        for _, end, _ in self.parts:
            part = hashlib.sha256()
            while size < end:
                chunk = stream.read(min(READ_CHUNK, end - size))
                if not chunk:
                    break
                hasher.update(chunk)
                part.update(chunk)
                size += len(chunk)
            digests.append(part.hexdigest())
        limit = self.max_bytes
        while not self.stop:  # anything past the planned size: the file grew
            chunk = stream.read(min(READ_CHUNK, limit + 1 - size))
            if not chunk:
                break
            hasher.update(chunk)
            size += len(chunk)
            if size > limit:
                self.loader.too_large(None, self.problems)
                self.stop = True
        timeout = max(parts.COLLECT_MIN_TIMEOUT, 10 * self.own_seconds)
        for number, (start, end, worker) in enumerate(self.parts):
            if self.stop:
                break
            self.parts[number] = (start, end, None)  # collected from here on
            outcome = parts.collect(worker, timeout) if worker is not None else None
            if outcome is None or not self.merge_part(outcome, digests[number]):
                digest = self.read_part(start, end)  # no worker, or it failed: read it here
                if digest != digests[number] and not self.stop:
                    self.changed()
        if size != self.planned and not self.stop:
            self.changed()
        return size

    def changed(self) -> None:
        self.problems.at(
            1,
            1,
            "manifest changed while it was read",
            "a manifest that stays the same during the run",
        )
        self.stop = True

    def merge_part(self, outcome: Any, digest: str) -> bool:
        """Merge what a worker sent; False (nothing merged) if it is not a part's outcome.

        Problems are taken in line order as this process would have found them: once
        :data:`MAX_PROBLEMS` are reached, the rest of that line's are counted and reading
        stops there, whatever the worker found further on.
        """
        try:
            packed, found, omitted, count, stopped, read_digest = outcome
            found = [
                (int(line), int(column), str(message), None if expected is None else str(expected))
                for line, column, message, expected in found
            ]
            omitted, count, stopped = int(omitted), int(count), bool(stopped)
            if not stopped and read_digest != digest:
                self.changed()  # the worker read other bytes than were hashed
                return True
            records = (
                parts.unpack(
                    packed,
                    project=self.project_id,
                    source=self.file.display,
                    first_position=self.position,
                    shared=self.loader.task_infos,
                )
                if packed and self.clean
                else []
            )
        except Exception:  # whatever it is, it is not trusted
            return False
        problems = self.problems
        full_at: int | None = None  # the line on which the limit was reached
        taken = 0
        for line, column, message, expected in found:
            if full_at is not None and line != full_at:
                break
            problems.at(line, column, message, expected)
            taken += 1
            if full_at is None and len(problems) >= MAX_PROBLEMS:
                full_at = line
        if full_at is None or taken == len(found):
            problems.omitted += omitted  # the worker's own overflow is of the same line
        if records and self.clean:
            self.records.extend(records)
        self.position += count
        self.loader.report_progress(count)
        if full_at is not None or stopped or self.loader.problems.full:
            self.loader.problems.stopped = True
            self.stop = True
        return True

    def feed(self, lines: list[bytes], first_line: int, *, final: bool) -> int:
        """Process whole batches of ``lines`` (all of them when ``final``); how many were taken."""
        taken = 0
        total = len(lines)
        while taken < total and not self.stop:
            if self.header is None and not self.header_failed:
                self.read_header(lines[taken], first_line + taken)
                taken += 1
                if self.header is not None and self.parts:
                    self.start_workers()
                continue
            if total - taken < BATCH_LINES and not final:
                break
            batch = lines[taken : taken + BATCH_LINES]
            line = first_line + taken
            if not self.fast_batch(batch, line):
                self.slow_batch(batch, line)
            taken += len(batch)
            self.loader.report_progress(len(batch))
            if self.loader.problems.full or len(self.problems) >= MAX_PROBLEMS:
                self.loader.problems.stopped = True
                self.stop = True
        return taken

    # The header ------------------------------------------------------------------------------
    def read_header(self, raw: bytes, line: int) -> None:
        value = self.parse_line(raw, line, header=True)
        if value is _BLANK:
            return
        self.header_failed = True
        if value is _INVALID:
            self.stop = True  # not JSON Lines at all: one problem, not one per line
            return
        problems = self.problems
        text = raw.decode("utf-8")
        if not isinstance(value, dict):
            problems.at(
                line,
                1,
                f"the header line is {_kind(value)}",
                "a header object with " + _EMPTY_EXPECTED,
            )
            return
        if "metaqore" not in value and ("id" in value or "created_by" in value):
            problems.at(
                line,
                1,
                "the first line is an artifact, not the header",
                "a header line with metaqore: 1 and a project before the artifact lines",
            )
            return

        def locate_all(paths: list[Path_]) -> list[Position]:
            scan = locate_many(text, paths)
            return [(line, scan.locate(path)[1]) for path in paths]

        if not self.loader.check_version(value, problems, locate_all):
            return
        try:
            header = ManifestHeader.model_validate(value)
        except ValidationError as exc:
            self.loader.problem_errors(
                explain(exc, ManifestHeader),
                value,
                problems,
                locate_all,
                origin=(line, 1),
                jsonl_header=True,
            )
            return
        self.header = header
        self.header_failed = False
        self.header_line = line
        if header.tasks or header.events:
            paths: list[Path_] = [("tasks", i) for i in range(len(header.tasks))]
            paths += [("events", i) for i in range(len(header.events))]
            columns = [column for _, column in locate_all(paths)]
            self.task_columns = columns[: len(header.tasks)]
            self.event_columns = columns[len(header.tasks) :]
        run = header.run
        self.run_iteration = run.iteration if run is not None else None
        self.project_id = header.project.id

    def parse_line(self, raw: bytes, line: int, *, header: bool = False) -> Any:
        """One line as strict JSON; ``_BLANK`` for a blank line, ``_INVALID`` after a problem.

        The header is a manifest's root; an artifact line sits two levels below it.
        """
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            at_line, column = _utf8_error(raw, exc, line)
            self.problems.at(at_line, column, "invalid UTF-8", "UTF-8 text")
            return _INVALID
        levels_above = 0 if header else 2
        value = self.loader.strict_json(
            text, self.problems, line=line, blank_ok=True, levels_above=levels_above
        )
        if value is _INVALID or value is _BLANK:
            return value
        limit = self.loader.max_depth - levels_above
        if text.count("[") + text.count("{") > limit:
            too_deep = scan_json(text, max_depth=limit).too_deep
            if too_deep is not None:
                self.loader.too_deep((line, too_deep[1]), self.problems)
                return _INVALID
        return value

    # Artifact lines --------------------------------------------------------------------------
    def fast_batch(self, lines: list[bytes], first_line: int) -> bool:
        """Validate and record a batch in bulk; False (nothing recorded) if any line is off.

        Each line is parsed on its own (``Json[...]``), so a line holds exactly one
        value, and validated into plain dicts (:class:`ArtifactLine`, the model's mirror).
        pydantic keeps the last of duplicate keys silently, so the batch's ``:`` count is
        compared with the keys and colons the validated artifacts kept: equal means no
        key was dropped (``\\u003a``, an escaped colon, sends the batch to the careful
        path instead). Anything off goes to :meth:`slow_batch`, which validates with the
        models and says where and what.
        """
        try:
            artifacts = _LINES_ADAPTER.validate_python(lines)
        except ValidationError:
            return False
        text = b"".join(lines)
        if b"\\u003" in text:
            return False
        colons = text.count(b":")
        kept = 0
        deep_length = self.deep_length
        data_limit = self.line_depth - 1  # the artifact object is the line's first level
        record = self.loader.line_record
        project = self.project_id
        run_iteration = self.run_iteration
        source = self.file.display
        position = self.position
        line = first_line
        made: list[ArtifactRecord] = []
        append = made.append
        empty: dict[str, Any] = {}
        try:
            for artifact in artifacts:
                data = artifact.get("data", empty)
                data_json = canonical_json(data)
                digest = sha256_text(data_json)
                declared = artifact.get("content_hash")
                if declared is not None and declared != digest:
                    return False
                if (
                    len(data_json) >= deep_length
                    and data_json.count("{") + data_json.count("[") > data_limit
                    and _data_depth(data) > data_limit
                ):
                    return False
                depends_on = artifact.get("depends_on", ())
                if len(set(depends_on)) != len(depends_on):
                    return False  # the model says which id is listed twice
                kept += len(artifact) + data_json.count(":")
                task = artifact.get("task")
                if task is not None:
                    kept += len(task)
                for entry in artifact.get("provenance", ()):
                    kept += len(entry)
                append(
                    record(
                        artifact,
                        digest,
                        data_json,
                        data,
                        project,
                        run_iteration,
                        source,
                        line,
                        position,
                    )
                )
                line += 1
                position += 1
        except (ValueError, RecursionError):
            return False
        if kept != colons and (
            # Colons inside ids, types or names: count what the artifacts kept exactly.
            kept > colons or _LINE_LIST_ADAPTER.dump_json(artifacts).count(b":") != colons
        ):
            return False
        if self.clean:
            self.records.extend(made)
        self.position = position
        return True

    def slow_batch(self, lines: list[bytes], first_line: int) -> None:
        """Line by line, locating every problem; records only while the file is clean."""
        for offset, raw in enumerate(lines):
            line = first_line + offset
            before = len(self.problems)
            value = self.parse_line(raw, line)
            if value is _BLANK:
                continue
            position = self.position
            self.position += 1
            if value is _INVALID:
                continue
            self.artifact_line(raw, value, line, position)
            if len(self.problems) > before and len(self.problems) >= MAX_PROBLEMS:
                return

    def artifact_line(self, raw: bytes, value: Any, line: int, position: int) -> None:
        problems = self.problems
        if not isinstance(value, dict):
            problems.at(
                line,
                1,
                f"an artifact line must be a JSON object, not {_kind(value)}",
                "one artifact object per line",
            )
            return
        if "metaqore" in value:
            problems.at(line, 1, "a second header line", "one artifact object per line")
            return
        text = raw.decode("utf-8")
        try:
            artifact = ARTIFACT_ADAPTER.validate_json(raw)
        except ValidationError as exc:
            invalid = [error for error in exc.errors() if error["type"] == "json_invalid"]
            if invalid:  # json.loads took it, pydantic's parser did not
                problems.at(line, 1, f"invalid JSON: {invalid[0]['msg']}", "valid JSON")
                return

            def locate_all(paths: list[Path_]) -> list[Position]:
                scan = locate_many(text, paths)
                return [(line, scan.locate(path)[1]) for path in paths]

            self.loader.problem_errors(
                explain(exc, ManifestArtifact), value, problems, locate_all, origin=(line, 1)
            )
            return
        hashed = self.loader.hash_data(artifact.data)
        if isinstance(hashed, str):
            column = locate_many(text, [("data",)]).locate(("data",))[1]
            problems.at(line, column, f"data cannot be hashed ({hashed})", "JSON-compatible data")
            return
        data_json, digest = hashed
        if artifact.content_hash is not None and artifact.content_hash != digest:
            column = locate_many(text, [("content_hash",)]).locate(("content_hash",))[1]
            problems.at(line, column, "content_hash does not match data", digest)
            return
        if not self.clean:
            return  # the file contributes no records; keep looking for problems only
        self.records.append(
            self.loader.record(
                artifact,
                digest,
                data_json,
                self.project_id,
                self.run_iteration,
                self.file.display,
                line,
                position,
            )
        )


def load_manifests(
    files: Sequence[ManifestFile],
    *,
    config: MetaQoreConfig,
    index: RunIndex,
    keep_data_keys: bool = False,
    keep_data: bool = False,
    progress: Callable[[str, int, int | None], None] | None = None,
    jobs: int | None = 1,
) -> LoadResult:
    """Read ``files``, add one record per artifact to ``index``, return the rest.

    Records of a file are added in file order (the index sorts them into replay order
    when finalised). Every problem of every file is raised at once as
    :class:`ManifestErrors` (the index then holds the clean files' records and should be
    dropped); nothing else is raised for bad input. ``keep_data_keys`` keeps each
    artifact's top-level ``data`` keys, ``keep_data`` its canonical JSON. ``jobs``
    processes read each JSON Lines file, a part each (None: two for a file of
    :data:`~metaqore.manifest.parts.PARALLEL_MIN_BYTES` or more, where there are two CPUs).
    """
    loader = _Loader(config, index, keep_data_keys=keep_data_keys, keep_data=keep_data)
    loader.progress = progress
    loader.jobs = jobs
    # Nothing here makes reference cycles, and a collector walking a million fresh
    # records several times over would triple the load time.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return loader.load(files)
    finally:
        if loader.records_added >= _FREEZE_RECORDS:
            # The records live as long as the run: keep later collections off them.
            gc.freeze()
        if enabled:
            gc.enable()


__all__ = [
    "BATCH_LINES",
    "MAX_PROBLEMS",
    "EventModel",
    "LoadResult",
    "LoadedManifest",
    "ProjectInfo",
    "load_manifests",
]
