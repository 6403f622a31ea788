"""Property-based API test: schemathesis generates requests from the committed OpenAPI
document (which another test proves is the one the server serves) and sends them to a
real ``metaqore serve`` process. No answer may be a 5xx, and every answer must conform
to the document (status code, content type, body schema); valid input must be accepted
and invalid input rejected.

The number of examples per operation is bounded so that the whole run stays well under
a minute; raise ``METAQORE_SCHEMATHESIS_EXAMPLES`` for a deeper local run. CI draws the
same examples every time (a failure is reproducible, never flaky); set
``METAQORE_SCHEMATHESIS_RANDOM=1`` to draw new ones. (Random runs can flag a false
positive of schemathesis itself: a "negative" boolean for a string query parameter is
sent as the valid string ``false``.)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from server_support import API_KEY

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
EXAMPLES = int(os.environ.get("METAQORE_SCHEMATHESIS_EXAMPLES", "25"))
RANDOM = os.environ.get("METAQORE_SCHEMATHESIS_RANDOM") == "1"

# Schemathesis sends the API key itself (so it knows when a case leaves it out on
# purpose), and counts 413 (a body over the server's --max-body) as a rejection too.
CONFIG = SchemathesisConfig.from_dict(
    {
        "auth": {"openapi": {"ApiKeyAuth": {"api_key": API_KEY}}},
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
            }
        },
    }
)

# /events is an endless stream by design; test_server_events.py covers it.
schema = schemathesis.openapi.from_path(OPENAPI, config=CONFIG).exclude(path="/events")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=not RANDOM,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_and_never_answers_5xx(case: Any, server: Any) -> None:
    case.call_and_validate(base_url=server.base_url)
