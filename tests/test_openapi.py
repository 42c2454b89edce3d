"""The OpenAPI document: valid 3.1, covering every HTTP function, matching what collect accepts."""

from __future__ import annotations

import json

import jsonschema
from openapi_spec_validator import validate

import function_app
from dci.openapi import document
from dci.runner.index import host_functions
from tests.factories import batch, event


def test_openapi_document_is_valid_3_1() -> None:
    validate(document())
    assert document()["openapi"] == "3.1.0"


def test_openapi_covers_every_http_route_and_method() -> None:
    paths = document()["paths"]
    for function in host_functions(function_app.app):
        trigger = function.get_trigger().get_dict_repr()
        if trigger["type"] != "httpTrigger":
            continue
        path = "/" + trigger["route"]
        assert path in paths, f"{function.get_function_name()} ({path}) is missing from the OpenAPI document"
        for method in trigger["methods"]:
            assert getattr(method, "value", method).lower() in paths[path]


def test_openapi_anonymous_routes_need_no_key() -> None:
    for function in host_functions(function_app.app):
        trigger = function.get_trigger().get_dict_repr()
        if trigger["type"] == "httpTrigger" and str(getattr(trigger["authLevel"], "value", "")) == "anonymous":
            for operation in document()["paths"]["/" + trigger["route"]].values():
                assert operation["security"] == []


def _batch_schema() -> dict:
    doc = json.loads(json.dumps(document()))
    return {**doc["components"]["schemas"]["CollectBatch"], "components": doc["components"]}


def test_openapi_collect_schema_accepts_a_real_batch_and_rejects_unknown_fields() -> None:
    schema = _batch_schema()
    validator = jsonschema.Draft202012Validator(schema)
    good = batch([event(kind) for kind in ("page_view", "search", "search_click", "engagement", "case_form",
                                           "case_submitted")])
    assert list(validator.iter_errors(good)) == []
    assert list(validator.iter_errors({**good, "ip": "203.0.113.7"})) != []
    assert list(validator.iter_errors({**good, "events": [{**event(), "type": "hover"}]})) != []


def test_openapi_key_protected_routes_require_the_function_key() -> None:
    for function in host_functions(function_app.app):
        trigger = function.get_trigger().get_dict_repr()
        if trigger["type"] == "httpTrigger" and str(getattr(trigger["authLevel"], "value", "")) == "function":
            for operation in document()["paths"]["/" + trigger["route"]].values():
                assert "security" not in operation  # the document-wide functionKey requirement applies
    assert document()["security"] == [{"functionKey": []}]


def test_openapi_health_anonymous_answer_is_the_status_only_and_details_need_the_key() -> None:
    paths = document()["paths"]
    status = document()["components"]["schemas"]["HealthStatus"]
    assert (status["required"], status["additionalProperties"]) == (["status"], False)
    assert paths["/health"]["get"]["security"] == []
    assert "security" not in paths["/health/details"]["get"]  # the function key, as the report routes
    assert set(paths["/health/details"]["get"]["responses"]) == {"200", "401", "503"}


def test_openapi_insights_names_every_bad_parameter_its_400_answers_and_the_search_tables() -> None:
    from dci.insights import TREND_RATES
    from dci.reports.schemas import SEARCH_PROPERTIES, SEARCH_REQUIRED

    get = document()["paths"]["/insights"]["get"]
    said = get["responses"]["400"]["description"]
    for name in ("range", "format", "signed_in", "portal", "sort_<table>", "table", "search", "article"):
        assert name in said, name
    insights = document()["components"]["schemas"]["Insights"]
    assert set(SEARCH_REQUIRED) <= set(insights["required"]) and set(SEARCH_PROPERTIES) <= set(insights["properties"])
    trend = insights["properties"]["trend"]["properties"]["range"]
    assert {f"{name}{end}" for name in TREND_RATES for end in ("", "_of", "_too_few")} <= set(trend["required"])
