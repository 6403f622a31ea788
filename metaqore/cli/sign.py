"""``metaqore sign``: add Ed25519 provenance signatures to the artifacts of a manifest."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from metaqore.cli.common import add_debug
from metaqore.exceptions import ConfigurationError


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(
        name,
        help="sign artifacts' provenance with an Ed25519 key",
        description="Sign {artifact_id, artifact_type, version, content_hash, actor, action} "
        "of each artifact (or of those named with --artifact) and add the provenance entry "
        "to the manifest. Signed artifacts must state their version. Prints the signed "
        "manifest, or rewrites it with --in-place (comments are not kept).",
    )
    parser.add_argument("manifest", metavar="MANIFEST")
    parser.add_argument("--key", metavar="FILE", required=True, help="private key (.key)")
    parser.add_argument("--key-id", metavar="ID", help="key id (default: the key file's stem)")
    parser.add_argument(
        "--artifact", metavar="ID", action="append", help="sign only this artifact (repeatable)"
    )
    parser.add_argument("--actor", metavar="NAME", help="signer (default: the artifact's creator)")
    parser.add_argument("--action", default="created", help="provenance action (default: created)")
    parser.add_argument("--config", metavar="FILE", help="config file")
    parser.add_argument("-i", "--in-place", action="store_true", help="rewrite MANIFEST")
    add_debug(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from metaqore.config import load_config
    from metaqore.core.records import RunIndex
    from metaqore.core.signing import load_private_key, sign_provenance
    from metaqore.manifest import discover_manifests, load_manifests

    root = Path.cwd()
    config = load_config(args.config, cwd=root)
    (manifest,) = discover_manifests([args.manifest], config=config, root=root)
    index = RunIndex()
    load_manifests([manifest], config=config, index=index)  # validates; raises on bad input
    records = {record.id: record for record in index.run_records}
    wanted = args.artifact or list(records)
    unknown = [name for name in wanted if name not in records]
    if unknown:
        raise ConfigurationError(f"{manifest.display}: no artifact {', '.join(map(repr, unknown))}")
    private_key = load_private_key(Path(args.key))
    key_id = args.key_id or Path(args.key).stem
    entries: dict[str, dict[str, Any]] = {}
    for artifact_id in wanted:
        record = records[artifact_id]
        if record.declared_version is None:
            raise ConfigurationError(
                f"{manifest.display}:{record.line}: artifact '{artifact_id}' has no version; "
                "a signature covers the version, so state it before signing"
            )
        actor = args.actor or record.agent
        entries[artifact_id] = {
            "actor": actor,
            "action": args.action,
            "key_id": key_id,
            "signature": sign_provenance(
                private_key,
                artifact_id=record.id,
                artifact_type=record.artifact_type,
                version=record.declared_version,
                content_hash=record.content_hash,
                actor=actor,
                action=args.action,
            ),
        }
    text = _rewrite(manifest.path, manifest.format, entries)
    if args.in_place:
        from metaqore.report import write_report

        write_report(manifest.path, text)
        print(f"signed {len(entries)} artifact(s) in {manifest.display} with key {key_id}")
    else:
        sys.stdout.write(text)
    return 0


def _signed(artifact: dict[str, Any], entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    entry = entries.get(artifact.get("id", ""))
    if entry is None:
        return artifact
    kept = [
        existing
        for existing in artifact.get("provenance", [])
        if not (
            existing.get("actor") == entry["actor"] and existing.get("action") == entry["action"]
        )
    ]
    return {**artifact, "provenance": [*kept, entry]}


def _rewrite(path: Path, format: str, entries: dict[str, dict[str, Any]]) -> str:
    raw = path.read_bytes()
    if format == "jsonl":
        lines = raw.decode("utf-8-sig").split("\n")
        out = [lines[0]]
        for line in lines[1:]:
            if line.strip():
                line = json.dumps(_signed(json.loads(line), entries), ensure_ascii=False)
            out.append(line)
        return "\n".join(out)
    if format == "json":
        document = json.loads(raw.decode("utf-8-sig"))
    else:
        from metaqore.yamlio import load_yaml

        document = load_yaml(raw.decode("utf-8-sig")).value
    document["artifacts"] = [_signed(item, entries) for item in document.get("artifacts", [])]
    if format == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    from metaqore.yamlio import dump_yaml

    return dump_yaml(document)
