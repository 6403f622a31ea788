"""Finding the manifest files a gate run judges, in an order that never depends on the caller.

Paths may be files, directories (walked for the config's ``manifests`` globs) or globs.
Nothing found is an error (:class:`~metaqore.exceptions.NothingToCheckError`), never a
silent pass; so are a named file that does not exist, a glob that matches nothing and
any manifest that leaves the repository through a symlink.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from metaqore.exceptions import ManifestError, ManifestErrors, NothingToCheckError
from metaqore.text import one_line

if TYPE_CHECKING:
    from metaqore.config import MetaQoreConfig

ManifestFormat = Literal["yaml", "json", "jsonl"]

FORMATS: dict[str, ManifestFormat] = {
    ".yaml": "yaml",
    ".yml": "yaml",
    ".json": "json",
    ".jsonl": "jsonl",
}
_SUPPORTED = ".yaml, .yml, .json or .jsonl"
_MAGIC = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class ManifestFile:
    """One manifest to load: where it is, what reports call it, how to parse it."""

    path: Path  # absolute, symlinks resolved
    display: str  # posix path relative to the root when inside it
    format: ManifestFormat


def manifest_format(path: str | os.PathLike[str]) -> ManifestFormat | None:
    """The format a file name says, or None when the suffix is not a manifest's."""
    return FORMATS.get(os.path.splitext(os.fspath(path))[1].lower())


@lru_cache(maxsize=64)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """``**`` spans directories, ``*``/``?``/``[...]`` stay within one path segment."""
    parts: list[str] = []
    index = 0
    size = len(pattern)
    while index < size:
        char = pattern[index]
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif char == "*":
            parts.append("[^/]*")
            index += 1
        elif char == "?":
            parts.append("[^/]")
            index += 1
        elif char == "[":
            negated = pattern[index + 1 : index + 2] == "!"
            close = pattern.find("]", index + (2 if negated else 1))
            if close == -1:
                parts.append(re.escape(char))
                index += 1
                continue
            body = pattern[index + 1 : close]
            if body.startswith("!"):
                body = "^" + body[1:]
            parts.append("[" + body.replace("\\", "\\\\") + "]")
            index = close + 1
        else:
            parts.append(re.escape(char))
            index += 1
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def _split_glob(pattern: str) -> tuple[str, str]:
    """``("some/dir", "rest/**/*.yaml")``: the literal directory a glob starts from."""
    segments = pattern.split("/")
    literal: list[str] = []
    for segment in segments:
        if _MAGIC.search(segment):
            break
        literal.append(segment)
    rest = segments[len(literal) :]
    base = "/".join(literal)
    if pattern.startswith("/") and not base:
        base = "/"
    return base, "/".join(rest)


def _walk(top: Path, excluded: frozenset[str]) -> Iterator[tuple[str, Path]]:
    """``(posix path relative to top, path)`` of every file below ``top``.

    Directory symlinks are not followed (a walk never leaves the tree through one);
    directories named in ``excluded`` are skipped below ``top``.
    """
    for directory, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames[:] = sorted(name for name in dirnames if name not in excluded)
        relative = os.path.relpath(directory, top)
        prefix = "" if relative == "." else relative.replace(os.sep, "/") + "/"
        for name in filenames:
            yield prefix + name, Path(directory, name)


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def repository_top(directory: Path) -> Path:
    """The work tree ``directory`` is in (the nearest parent holding ``.git``), else itself.

    A manifest may be a symlink to another file of the same repository, from whichever
    of its directories the gate runs; a link that leaves the repository is refused.
    """
    for candidate in (directory, *directory.parents):
        if (candidate / ".git").exists():
            return candidate
    return directory


class _Discovery:
    def __init__(self, config: MetaQoreConfig, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self.real_root = self.root.resolve()
        self.boundary = repository_top(self.real_root)
        self.globs = list(config.manifests)
        self.excluded = frozenset(config.exclude)
        self.found: dict[Path, ManifestFile] = {}
        self.errors: list[ManifestError] = []
        self.looked: list[str] = []

    def display(self, real: Path) -> str:
        if _is_within(real, self.real_root):
            return real.relative_to(self.real_root).as_posix() or "."
        return real.as_posix()

    def shown(self, given: str) -> str:
        """How an argument is named in an error: relative to the root when inside it."""
        absolute = Path(os.path.abspath(self.root / given))
        if _is_within(absolute, self.root):
            return absolute.relative_to(self.root).as_posix() or "."
        return given

    def fail(self, given: str, message: str, expected: str | None = None) -> None:
        self.errors.append(
            ManifestError(one_line(message), path=one_line(given), expected=expected)
        )

    def add(self, given: str, candidate: Path, *, named: bool) -> None:
        """Accept ``candidate`` (``given`` is how the user or the walk named it)."""
        absolute = Path(os.path.abspath(candidate))
        try:
            real = absolute.resolve(strict=True)
        except (OSError, RuntimeError):
            if absolute.is_symlink():
                self.fail(given, "broken symlink", "a link to an existing file")
            else:
                self.fail(given, "no such file or directory", "an existing manifest path")
            return
        if (
            _is_within(absolute, self.root) or _is_within(absolute, self.real_root)
        ) and not _is_within(real, self.boundary):
            self.fail(
                given,
                f"escapes the repository through a symlink (it resolves to {real})",
                f"a manifest inside {self.boundary}",
            )
            return
        kind = manifest_format(real.name) or manifest_format(absolute.name)
        if kind is None:
            if named:
                self.fail(given, "unsupported manifest type", _SUPPORTED)
            return
        try:
            mode = real.stat().st_mode
        except OSError as exc:
            self.fail(given, f"cannot read ({exc.strerror})", "a readable file")
            return
        if not stat.S_ISREG(mode):
            if named or not stat.S_ISDIR(mode):
                self.fail(given, "not a regular file", "a manifest file")
            return
        if real not in self.found:
            self.found[real] = ManifestFile(real, self.display(real), kind)

    def search(self, top: Path, patterns: Sequence[str], *, named: bool, label: str) -> int:
        """Files under ``top`` whose path relative to it matches one of ``patterns``."""
        regexes = [_glob_regex(pattern) for pattern in patterns]
        count = 0
        for relative, path in _walk(top, self.excluded):
            if any(regex.match(relative) for regex in regexes):
                count += 1
                shown = f"{label.rstrip('/')}/{relative}" if label not in ("", ".") else relative
                self.add(shown, path, named=named)
        return count

    def directory(self, given: str, path: Path) -> None:
        absolute = Path(os.path.abspath(path))
        real = absolute.resolve()
        if _is_within(absolute, self.root) and not _is_within(real, self.boundary):
            self.fail(
                given,
                f"escapes the repository through a symlink (it resolves to {real})",
                f"a directory inside {self.boundary}",
            )
            return
        self.looked.append(str(absolute))
        self.search(real, self.directory_patterns(), named=False, label=self.shown(given))

    def directory_patterns(self) -> list[str]:
        """What a named directory is searched for: each glob as written and, so that a
        glob rooted elsewhere (``examples/passing/**/*.metaqore.yaml``) still finds the
        directory's manifests, its file-name part at any depth (``**/*.metaqore.yaml``)."""
        patterns = list(self.globs)
        for pattern in self.globs:
            name = pattern.rsplit("/", 1)[-1]
            if name and "**" not in name and f"**/{name}" not in patterns:
                patterns.append(f"**/{name}")
        return patterns

    def glob(self, pattern: str) -> None:
        base, rest = _split_glob(pattern)
        top = self.root / base if base else self.root
        self.looked.append(pattern)
        matched = 0
        if top.is_dir() and rest:
            matched = self.search(top, [rest], named=True, label=base)
        if not matched:
            self.fail(pattern, "no file matches this pattern", "at least one manifest file")

    def argument(self, given: str) -> None:
        posix = given.replace(os.sep, "/")
        candidate = self.root / given
        if candidate.is_dir():
            self.directory(given, candidate)
        elif os.path.lexists(candidate) or not _MAGIC.search(posix):
            self.add(self.shown(given), candidate, named=True)
        else:
            self.glob(posix)


def discover_manifests(
    paths: Sequence[str], *, config: MetaQoreConfig, root: Path
) -> list[ManifestFile]:
    """The manifests ``paths`` name (default: the config's globs under ``root``).

    Relative paths and globs are taken from ``root``. The result is de-duplicated by
    real path and sorted by display path, so the order of ``paths`` never matters.
    Raises :class:`ManifestError` for one bad path (:class:`ManifestErrors` for
    several) and :class:`NothingToCheckError` when nothing is found.
    """
    discovery = _Discovery(config, root)
    if paths:
        for given in paths:
            discovery.argument(os.fspath(given))
    else:
        discovery.looked.append(str(discovery.root))
        discovery.search(discovery.real_root, discovery.globs, named=False, label="")
    errors = sorted(discovery.errors, key=lambda error: (error.path, error.problem))
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ManifestErrors(errors)
    if not discovery.found:
        where = ", ".join(dict.fromkeys(discovery.looked)) or str(discovery.root)
        raise NothingToCheckError(
            f"no manifests found under {where} (looked for {', '.join(discovery.globs)})"
        )
    return sorted(discovery.found.values(), key=lambda file: (file.display, str(file.path)))


__all__ = ["FORMATS", "ManifestFile", "ManifestFormat", "discover_manifests", "manifest_format"]
