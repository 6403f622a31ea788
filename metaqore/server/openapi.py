"""Print the API's OpenAPI document: ``python -m metaqore.server.openapi > docs/openapi.json``."""

from __future__ import annotations

import json
import sys

from metaqore.server.app import create_app


def render() -> str:
    """The OpenAPI document of ``create_app()`` as committed in ``docs/openapi.json``."""
    return json.dumps(create_app().openapi(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
