"""The read routes' parameters: every date a client can send is a result or a 400 naming it."""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import urlencode

import azure.functions as func
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import function_app
from tests.conftest import Store
from tests.test_insights import C1

# Found by an attack run and, on some seeds, by schemathesis: each raised OverflowError (500).
EXTREMES = [
    ("contact", {"to": "0001-01-01"}),
    ("contact", {"from": "0001-01-01T00:00:00+01:00"}),
    ("contact", {"to": "9999-12-31T23:59:59-01:00"}),
    ("insights", {"to": "0001-01-01"}),
]


def call(route: str, params: dict[str, str]) -> tuple[int, dict]:
    if route == "contact":
        url = f"http://localhost/api/contacts/{C1}/timeline"
        request = func.HttpRequest("GET", f"{url}?{urlencode(params)}", body=b"", params=params,
                                   route_params={"contact_id": C1}, headers={"accept": "application/json"})
        response = function_app.contact_timeline(request)
    else:
        request = func.HttpRequest("GET", f"http://localhost/api/insights?{urlencode(params)}", body=b"",
                                   params=params, headers={"accept": "application/json"})
        response = function_app.insights(request)
    return response.status_code, json.loads(response.get_body())


def assert_result_or_named_400(status: int, body: dict, params: dict[str, str]) -> None:
    assert status in (200, 400), (status, body)
    if status == 400:
        assert {e["field"] for e in body["errors"]} <= set(params) | {"from", "to"}, body
        assert body["type"] == "urn:dci:problem:invalid-parameter"


@pytest.mark.parametrize(("route", "params"), EXTREMES)
def test_views_extreme_dates_are_a_400_naming_the_parameter(store: Store, route: str, params: dict[str, str]) -> None:
    status, body = call(route, params)
    assert status == 400, body
    assert [e["field"] for e in body["errors"]] == list(params)
    assert "between 1970-01-01 and 9999-12-31" in body["errors"][0]["detail"]


@pytest.mark.parametrize(("route", "params"), [
    ("contact", {"from": "1970-01-01", "to": "1970-01-01"}),
    ("contact", {"from": "9999-12-30T00:00:00Z", "to": "9999-12-31"}),
    ("contact", {"to": "1970-01-01T00:00:00Z"}),  # the default `from` lies before 1970: still a result
    ("insights", {"from": "9999-12-01", "to": "9999-12-31"}),
    ("insights", {"to": "1970-01-01"}),
])
def test_views_edges_of_the_range_are_results(store: Store, route: str, params: dict[str, str]) -> None:
    status, body = call(route, params)
    assert status == 200, body


moments = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))
zones = st.sampled_from(["Z", "+00:00", "+01:00", "-01:00", "+14:00", "-12:00", ""])
date_texts = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.builds(lambda m, z: m.isoformat() + z, moments, zones),
    st.text(max_size=12),
)


@given(route=st.sampled_from(["contact", "insights"]), first=st.none() | date_texts, last=st.none() | date_texts)
@example(route="contact", first=None, last="0001-01-01")
@example(route="contact", first="0001-01-01T00:00:00+01:00", last=None)
@example(route="contact", first=None, last="9999-12-31T23:59:59-01:00")
@example(route="insights", first=None, last="0001-01-01")
@example(route="insights", first="9999-12-31", last=None)
def test_views_any_date_is_a_result_or_a_400(azurite: str, route: str, first: str | None, last: str | None) -> None:
    params = {name: value for name, value in (("from", first), ("to", last)) if value is not None}
    status, body = call(route, params)
    assert_result_or_named_400(status, body, params)
