"""``metaqore init``: a commented ``metaqore.yaml`` and an example manifest to start from."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from metaqore.exceptions import ConfigurationError

CONFIG_TEMPLATE = """\
# MetaQore configuration. Every key is optional; unknown keys are errors.
# Environment variables METAQORE_<KEY> override this file; CLI options override both.

# What blocks the build: strict (every finding), adaptive (all but low/medium
# conflicts MetaQore can resolve mechanically), playground (nothing; report only).
governance_mode: strict

# Lowest severity that blocks: low, medium, high or critical.
fail_on: low

# Routing policy: default_local_first, enterprise_residency or compliance_local_only.
secure_gateway_policy: default_local_first
local_providers: [hmcp_gateway, ollama]
cloud_providers: [openrouter]

organization: {organization}

# Where the gate looks when `metaqore check` is given no paths.
manifests:
  - "**/*.metaqore.yaml"
  - "**/*.metaqore.yml"
  - "**/*.metaqore.json"
  - "**/*.metaqore.jsonl"

# The tamper-evident audit chain every run appends to.
audit_log: metaqore-audit.jsonl

# Limits of the orchestration graph and of agent conversations.
max_graph_depth: 3
max_parallel_branches: 5
max_conversation_turns: 10
max_conversation_participants: 6

# Sensitivities whose artifacts must carry a valid signature by their creator, and the
# public keys trusted to sign (see `metaqore keygen`).
require_signatures: []
trusted_keys: {{}}

# Human decisions to accept a finding until a date. Example:
# waivers:
#   - rule: parallel_creation
#     project: checkout-service
#     artifact: api-plan
#     reason: "Plans merged by hand in review"
#     approved_by: alice
#     expires: 2026-12-31
waivers: []
"""

MANIFEST_TEMPLATE = """\
# An artifact manifest: what each agent produced, from which inputs, with which provider.
metaqore: 1
project:
  id: {project}
  name: Example project
run:
  id: example-run
  iteration: 1
artifacts:
  - id: requirements
    type: requirements
    created_by: planner
    data: {{summary: "What the service must do"}}
    task: {{type: planning, provider: ollama}}
  - id: api-plan
    type: plan
    created_by: planner
    depends_on: [requirements]
    data: {{title: "API plan"}}
    task: {{type: planning, provider: ollama}}
  - id: api-code
    type: code
    created_by: coder
    depends_on: [api-plan]
    data: {{files: 3}}
    task: {{type: coding, provider: openrouter}}
"""


def add_parser(commands: Any, name: str) -> None:
    parser = commands.add_parser(
        name, help="write a commented metaqore.yaml and an example manifest"
    )
    parser.add_argument("directory", nargs="?", default=".", help="where to write (default: .)")
    parser.add_argument("--organization", default="default")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    files = {
        directory / "metaqore.yaml": CONFIG_TEMPLATE.format(organization=args.organization),
        directory / "example.metaqore.yaml": MANIFEST_TEMPLATE.format(project="example"),
    }
    existing = [str(path) for path in files if path.exists()]
    if existing and not args.force:
        raise ConfigurationError(
            f"{', '.join(existing)} already exist(s); use --force to overwrite"
        )
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    print("next: metaqore check")
    return 0
