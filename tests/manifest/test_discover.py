"""Finding manifests: which files a gate run judges, and what it refuses to judge."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from metaqore.config import MetaQoreConfig
from metaqore.exceptions import ManifestError, ManifestErrors, NothingToCheckError
from metaqore.manifest import ManifestFile, discover_manifests

CONFIG = MetaQoreConfig()
MANIFEST = "metaqore: 1\nproject: {id: p}\nartifacts:\n  - {id: a, type: t, created_by: x}\n"


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(MANIFEST)


def shown(files: list[ManifestFile]) -> list[str]:
    return [file.display for file in files]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    touch(
        root,
        "a.metaqore.yaml",
        "runs/b.metaqore.yml",
        "runs/deep/c.metaqore.json",
        "runs/deep/d.metaqore.jsonl",
        "runs/notes.yaml",  # not a manifest name
        "README.metaqore.md",
        ".venv/lib/e.metaqore.yaml",  # excluded directories
        "node_modules/pkg/f.metaqore.yaml",
    )
    return root


def test_default_globs_find_every_format_and_skip_excluded_directories(repo: Path) -> None:
    files = discover_manifests([], config=CONFIG, root=repo)
    assert [(file.display, file.format) for file in files] == [
        ("a.metaqore.yaml", "yaml"),
        ("runs/b.metaqore.yml", "yaml"),
        ("runs/deep/c.metaqore.json", "json"),
        ("runs/deep/d.metaqore.jsonl", "jsonl"),
    ]
    assert all(file.path.is_absolute() and file.path.is_file() for file in files)


def test_configured_globs_and_excludes_are_used(repo: Path) -> None:
    config = MetaQoreConfig(manifests=["runs/**/*.json*", "**/notes.yaml"], exclude=["deep"])
    assert shown(discover_manifests([], config=config, root=repo)) == ["runs/notes.yaml"]
    config = MetaQoreConfig(manifests=["runs/**/*.json*"], exclude=[])
    assert shown(discover_manifests([], config=config, root=repo)) == [
        "runs/deep/c.metaqore.json",
        "runs/deep/d.metaqore.jsonl",
    ]


def test_files_directories_and_globs_in_any_order_give_one_sorted_list(repo: Path) -> None:
    arguments = ["runs", "a.metaqore.yaml", "runs/deep/*.json", "./runs/b.metaqore.yml"]
    expected = [
        "a.metaqore.yaml",
        "runs/b.metaqore.yml",
        "runs/deep/c.metaqore.json",
        "runs/deep/d.metaqore.jsonl",
    ]
    for order in itertools.permutations(arguments):
        assert shown(discover_manifests(list(order), config=CONFIG, root=repo)) == expected


def test_a_named_directory_is_searched_even_if_its_name_is_excluded(repo: Path) -> None:
    assert shown(discover_manifests([".venv"], config=CONFIG, root=repo)) == [
        ".venv/lib/e.metaqore.yaml"
    ]


def test_a_named_file_needs_a_manifest_suffix_not_the_metaqore_infix(repo: Path) -> None:
    (repo / "runs" / "plain.json").write_text("{}")
    files = discover_manifests(["runs/notes.yaml", "runs/plain.json"], config=CONFIG, root=repo)
    assert [(file.display, file.format) for file in files] == [
        ("runs/notes.yaml", "yaml"),
        ("runs/plain.json", "json"),
    ]
    with pytest.raises(ManifestError) as caught:
        discover_manifests(["README.metaqore.md"], config=CONFIG, root=repo)
    assert str(caught.value) == (
        "README.metaqore.md:1:1: unsupported manifest type (expected .yaml, .yml, .json or .jsonl)"
    )


def test_symlinks_inside_the_repository_are_one_manifest(repo: Path) -> None:
    (repo / "alias.metaqore.yaml").symlink_to(repo / "a.metaqore.yaml")
    (repo / "linked").symlink_to(repo / "runs", target_is_directory=True)
    files = discover_manifests(
        ["alias.metaqore.yaml", "a.metaqore.yaml", "linked"], config=CONFIG, root=repo
    )
    assert shown(files) == [
        "a.metaqore.yaml",
        "runs/b.metaqore.yml",
        "runs/deep/c.metaqore.json",
        "runs/deep/d.metaqore.jsonl",
    ]


def test_a_manifest_escaping_through_a_symlink_is_refused(repo: Path, tmp_path: Path) -> None:
    touch(tmp_path, "outside/secret.metaqore.yaml")
    (repo / "runs" / "leak.metaqore.yaml").symlink_to(tmp_path / "outside/secret.metaqore.yaml")
    for arguments in ([], ["runs"], ["runs/leak.metaqore.yaml"], ["runs/*.yaml"]):
        with pytest.raises(ManifestError) as caught:
            discover_manifests(arguments, config=CONFIG, root=repo)
        assert str(caught.value).startswith(
            "runs/leak.metaqore.yaml:1:1: escapes the repository through a symlink"
        )


def test_a_directory_escaping_through_a_symlink_is_refused(repo: Path, tmp_path: Path) -> None:
    touch(tmp_path, "outside/x.metaqore.yaml")
    (repo / "elsewhere").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(ManifestError, match=r"^elsewhere:1:1: escapes the repository"):
        discover_manifests(["elsewhere"], config=CONFIG, root=repo)
    with pytest.raises(ManifestError, match=r"^elsewhere/x.metaqore.yaml:1:1: escapes"):
        discover_manifests(["elsewhere/x.metaqore.yaml"], config=CONFIG, root=repo)
    # A walk never follows a directory symlink, so it never leaves the tree.
    assert "elsewhere/x.metaqore.yaml" not in shown(
        discover_manifests([], config=CONFIG, root=repo)
    )


def test_a_file_named_outside_the_root_is_shown_by_its_absolute_path(
    repo: Path, tmp_path: Path
) -> None:
    touch(tmp_path, "other/x.metaqore.yaml")
    files = discover_manifests([str(tmp_path / "other")], config=CONFIG, root=repo)
    assert shown(files) == [(tmp_path / "other/x.metaqore.yaml").resolve().as_posix()]


def test_missing_paths_and_empty_globs_are_errors(repo: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        discover_manifests(["runs/nope.metaqore.yaml"], config=CONFIG, root=repo)
    assert str(caught.value) == (
        "runs/nope.metaqore.yaml:1:1: no such file or directory "
        "(expected an existing manifest path)"
    )
    with pytest.raises(ManifestErrors) as several:
        discover_manifests(["x.yaml", "runs/*.jsonl", "a.metaqore.yaml"], config=CONFIG, root=repo)
    assert [str(error) for error in several.value.errors] == [
        "runs/*.jsonl:1:1: no file matches this pattern (expected at least one manifest file)",
        "x.yaml:1:1: no such file or directory (expected an existing manifest path)",
    ]


def test_nothing_found_says_where_it_looked(tmp_path: Path) -> None:
    touch(tmp_path, "docs/readme.md")
    with pytest.raises(NothingToCheckError) as caught:
        discover_manifests([], config=CONFIG, root=tmp_path)
    assert str(caught.value) == (
        f"no manifests found under {tmp_path} (looked for **/*.metaqore.yaml, "
        "**/*.metaqore.yml, **/*.metaqore.json, **/*.metaqore.jsonl)"
    )
    with pytest.raises(NothingToCheckError, match=r"no manifests found under .*docs \(looked"):
        discover_manifests(["docs"], config=CONFIG, root=tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_refused_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.metaqore.yaml")
    with pytest.raises(ManifestError, match=r"^pipe.metaqore.yaml:1:1: not a regular file"):
        discover_manifests([], config=CONFIG, root=tmp_path)
