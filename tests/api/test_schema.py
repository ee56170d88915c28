"""Property-based tests from the app's own OpenAPI schema: no 5xx, and every response conforms.

Bounded (a few examples per operation) so the suite stays fast.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from assistant.api.app import create_app

from .conftest import AUTH, make_settings

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


@pytest.fixture(scope="module")
def api_schema(home, advisor):  # type: ignore[no-untyped-def]
    app = create_app(make_settings(home, rate_limit_per_minute=1_000_000), advisor=advisor, warm_up=False)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=AUTH, checks=CHECKS)


def test_schema_documents_every_public_route(api_schema) -> None:  # type: ignore[no-untyped-def]
    paths = set(api_schema.raw_schema["paths"])
    for route in ("/v1/critiques", "/v1/chat", "/v1/chat/completions", "/v1/models", "/v1/framework",
                  "/v1/interventions", "/v1/cases", "/v1/cases/{case_id}", "/healthz", "/readyz"):
        assert route in paths, f"{route} missing from the OpenAPI schema"
