"""Schemathesis against the local runner and the app's own OpenAPI document: generated requests for
every operation get no 5xx, and every answer conforms (status code, content type, JSON schema)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dci.openapi import document
from tests.conftest import running_app

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def app_url(azurite: str) -> Iterator[str]:
    with running_app() as url:
        yield url


# The document the app serves at /api/openapi.json (tests/test_openapi.py checks that it is).
schema = schemathesis.openapi.from_dict(document())


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_to_the_openapi_document(case: schemathesis.Case, app_url: str) -> None:
    case.call_and_validate(base_url=f"{app_url}/api", checks=CHECKS)
