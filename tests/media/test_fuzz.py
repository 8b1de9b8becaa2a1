"""Schemathesis over the OpenAPI document: whatever the requests, no server error."""

from __future__ import annotations

import os
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.transport.requests import REQUESTS_TRANSPORT, text_serializer

from summitry.config import Config
from summitry.runtime import build_app
from tests.media.conftest import Room
from tests.servers import Server

# SDP bodies are text: send whatever was generated as such.
REQUESTS_TRANSPORT.serializer("application/sdp", "application/trickle-ice-sdpfrag")(text_serializer)

_spec_dir = Path(os.environ.get("TMPDIR", "/tmp")) / "summitry-openapi"
schema = schemathesis.openapi.from_dict(
    build_app(Config.from_environ({"SUMMITRY_MEDIA": "off"}, data_dir=_spec_dir)).openapi()
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
        base_url=media_server.url,
        checks=[not_a_server_error],
        headers={"Authorization": f"Bearer {room.summit.ru_token}"},
    )
