"""Schemathesis over the OpenAPI document, with every check and the rate limits on:
whatever the requests, no server error, and every answer is one the document declares
(its status, headers, content type and body)."""

from __future__ import annotations

import os
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.transport.requests import REQUESTS_TRANSPORT, text_serializer

from summitry.config import Config
from summitry.runtime import build_app
from tests.media.conftest import Room
from tests.servers import Server

# SDP bodies are text: send whatever was generated as such.
REQUESTS_TRANSPORT.serializer("application/sdp", "application/trickle-ice-sdpfrag")(text_serializer)

_spec_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "summitry-openapi"
# Some inputs are refused (422) for what no JSON Schema can say: a key that is not a point
# on the curve, a wrap that is not one, an IANA zone name that does not exist, a readout
# that is both a statement and none. For those operations, 422 for schema-valid data is a
# documented answer; everywhere else it is a failure.
SEMANTIC_CHECKS = r"""
[[operations]]
include-path-regex = '/e2ee/|/readout$|/public/\{slug\}$|/summits/\{summit_id\}$|/summits$'
checks.positive_data_acceptance.expected-statuses = [
  "2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"
]
"""
schema = schemathesis.openapi.from_dict(
    build_app(Config.from_environ({"SUMMITRY_MEDIA": "off"}, data_dir=_spec_dir)).openapi(),
    config=SchemathesisConfig.from_str(SEMANTIC_CHECKS),
)


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_request_makes_a_server_error(
    case: schemathesis.Case, media_server: Server, room: Room
) -> None:
    """As a coordinator of a summit whose lobby is open, with Janus behind."""
    case.call_and_validate(
        base_url=media_server.url, headers={"Authorization": f"Bearer {room.summit.ru_token}"}
    )
