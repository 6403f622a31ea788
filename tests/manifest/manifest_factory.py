"""Synthetic manifests for the loader tests, and the JSON Lines load measurement.

``python tests/manifest/manifest_factory.py 1000000`` writes a JSON Lines run of that
many artifacts (about two dependencies each, 20 types, 50 agents, small ``data``) and
times ``load_manifests`` alone in a fresh subprocess, reporting wall time and peak RSS.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TYPES = [f"type-{number:02d}" for number in range(20)]
AGENTS = [f"agent-{number:02d}" for number in range(50)]

HEADER: dict[str, Any] = {
    "metaqore": 1,
    "project": {"id": "bench", "name": "Benchmark"},
    "run": {"id": "run-1", "iteration": 1},
}


def artifacts(count: int, *, seed: int = 7) -> Iterator[dict[str, Any]]:
    """``count`` artifacts whose dependencies all point at earlier ones."""
    rng = random.Random(seed)
    for number in range(count):
        artifact: dict[str, Any] = {
            "id": f"art-{number:07d}",
            "type": TYPES[number % len(TYPES)],
            "created_by": AGENTS[rng.randrange(len(AGENTS))],
        }
        if number >= 2:
            first, second = rng.sample(range(number), 2)
            artifact["depends_on"] = [f"art-{first:07d}", f"art-{second:07d}"]
        artifact["data"] = {"summary": f"artifact {number} of the run", "n": number % 7}
        yield artifact


def write_jsonl(path: Path, count: int, *, seed: int = 7) -> Path:
    with path.open("w", encoding="utf-8") as stream:
        stream.write(json.dumps(HEADER) + "\n")
        for artifact in artifacts(count, seed=seed):
            stream.write(json.dumps(artifact, separators=(",", ":")) + "\n")
    return path


_MEASURE = """
import resource, sys, time
from pathlib import Path
from metaqore.config import MetaQoreConfig
from metaqore.core.records import RunIndex
from metaqore.manifest.discover import ManifestFile
from metaqore.manifest.loader import load_manifests

path = Path(sys.argv[1])
index = RunIndex()
start = time.perf_counter()
load_manifests([ManifestFile(path, path.name, "jsonl")], config=MetaQoreConfig(), index=index)
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{len(index.run_records)} artifacts loaded in {elapsed:.2f} s, peak RSS {peak:.0f} MB")
"""


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 1_000_000
    runs = int(argv[1]) if len(argv) > 1 else 3
    with tempfile.TemporaryDirectory() as directory:
        path = write_jsonl(Path(directory, "bench.metaqore.jsonl"), count)
        print(f"{path.stat().st_size / 1e6:.0f} MB of JSON Lines, {count} artifacts")
        for _ in range(runs):
            subprocess.run([sys.executable, "-c", _MEASURE, str(path)], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
