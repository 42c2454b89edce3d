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
from dci.storage.interactions import InteractionStore
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


def case_route(key: str, headers: dict[str, str] | None = None,
               params: dict[str, str] | None = None) -> tuple[int, dict]:
    request = func.HttpRequest("GET", f"http://localhost/api/cases/{key}/timeline", body=b"", params=params or {},
                               route_params={"case_id": key}, headers={"accept": "application/json",
                                                                        "x-functions-key": "key", **(headers or {})})
    response = function_app.case_timeline(request)
    return response.status_code, json.loads(response.get_body())


def test_views_a_case_opens_by_its_ticket_number_as_well_as_its_id(store: Store) -> None:
    from dci.cases import take
    from dci.privacy import erase
    from dci.storage.cases import CaseStore
    from tests.test_insights import C2

    cases = CaseStore(store.tables)
    mine, theirs, other = "2f0d6c1a-1b9e-4c55-9f3e-7d2a8b6c4e10", "9a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", \
        "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
    created = 1_796_137_200_000
    take(cases, {"case_id": mine, "created_ms": created, "ticket": "CAS-01234-X1Y2Z3", "contact": C1,
                 "source": "poll"}, lambda _: None)
    take(cases, {"case_id": other, "created_ms": created, "ticket": "CAS-07777-A1B2C3", "contact": C1,
                 "source": "portal"}, lambda _: None)
    assert case_route("cas-01234-x1y2z3") == case_route(mine)  # any letter case, same answer as the id
    assert case_route(mine)[1]["case_id"] == mine
    # Two portal cases may carry one number (each contact's claim is a case of their own): ask which.
    take(cases, {"case_id": theirs, "created_ms": created + 1, "ticket": "CAS-07777-A1B2C3", "contact": C2,
                 "source": "portal"}, lambda _: None)
    status, problem = case_route("CAS-07777-A1B2C3")
    assert (status, problem["type"], problem["cases"]) == (409, "urn:dci:problem:ambiguous-ticket", [other, theirs])
    # Erasure takes the contact's ticket numbers with it.
    erase(InteractionStore(store.tables), C1, 24 * 3_600_000, cases)
    assert case_route("CAS-01234-X1Y2Z3")[0] == 404
    assert case_route("CAS-07777-A1B2C3")[1]["case_id"] == theirs


def test_views_a_shared_ticket_number_names_its_cases_only_to_an_authorised_caller(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # The attack run opened a shared ticket number without a key (the local runner checks none) and
    # read the ids of both contacts' cases from the 409.
    from dci.cases import take
    from dci.settings import get_settings
    from dci.storage.cases import CaseStore
    from tests.test_access import PRINCIPAL
    from tests.test_insights import C2

    first, second = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", "9a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
    for case_id, contact in ((first, C1), (second, C2)):
        take(CaseStore(store.tables), {"case_id": case_id, "created_ms": 1_796_137_200_000, "contact": contact,
                                       "ticket": "CAS-07777-A1B2C3", "source": "portal"}, lambda _: None)

    def named(status: int, problem: dict) -> bool:
        assert (status, problem["type"]) == (409, "urn:dci:problem:ambiguous-ticket")
        shown = json.dumps(problem)
        assert (first in shown) == (second in shown) == ("cases" in problem)
        return "cases" in problem

    assert not named(*case_route("CAS-07777-A1B2C3", {"x-functions-key": ""}))  # no key: the host did not check one
    assert named(*case_route("CAS-07777-A1B2C3"))  # a key, which the host checked
    assert named(*case_route("CAS-07777-A1B2C3", {"x-functions-key": ""}, {"code": "key"}))
    html = function_app.case_timeline(func.HttpRequest("GET", "http://localhost/api/cases/x/timeline", body=b"",
                                                       route_params={"case_id": "CAS-07777-A1B2C3"},
                                                       params={"format": "html"}))
    assert html.status_code == 409 and first not in html.get_body().decode()
    monkeypatch.setenv("REPORTS_AUTH", "app-service")
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    get_settings.cache_clear()
    try:
        assert named(*case_route("CAS-07777-A1B2C3", {"x-functions-key": "", "x-ms-client-principal": PRINCIPAL}))
        assert case_route("CAS-07777-A1B2C3")[0] == 401  # a key is no sign-in
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
