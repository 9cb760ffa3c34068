"""Fuzzing the HTTP API from its own OpenAPI description (schemathesis): whatever a client
sends, the answer is never a server error. `pytest -s` prints how many requests were sent."""

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from bridge_server.serve.app import ServerSettings, create_app

schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(ServerSettings(max_upload_mb=5))
)
SENT = {"requests": 0, "server errors": 0}


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_a_server_error(case):
    response = case.call()
    SENT["requests"] += 1
    SENT["server errors"] += response.status_code >= 500
    case.validate_response(response, checks=[not_a_server_error])


def test_zz_report():
    print(f"\nAPI fuzzing: {SENT['requests']} requests, {SENT['server errors']} server errors")
    assert SENT["requests"] > 100 and SENT["server errors"] == 0
