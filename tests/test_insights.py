"""Insights across cases on Azurite: facts written as events are linked and cases assembled, day
rollups, the KPIs of a hand-computed data set, and ranges that add up to their days."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import azure.functions as func
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import function_app
from dci import assembler
from dci.cases import case_message, take
from dci.clock import day_of
from dci.insights import case_fact, report, rollup, session_hash, wilson
from dci.linker import link
from dci.openapi import document
from dci.privacy import erase
from dci.settings import Settings
from dci.storage.insights import InsightStore
from tests.conftest import STORAGE, Store, stores_of
from tests.factories import encoded, queued_batch, queued_event

M, H = 60_000, 3_600_000
DAY0 = datetime(2031, 3, 10, tzinfo=timezone.utc)
C1, C2 = "6f1c2a4e-0b7d-4c1e-9a55-2f4d8b1e7c30", "0b9e3d51-7a2c-4f8e-8d10-3c6a2e9f4b71"


def at(day: int, hour: int, minute: int = 0) -> int:
    return int((DAY0 + timedelta(days=day, hours=hour, minutes=minute)).timestamp() * 1000)


class Scene:
    """Storage of one test, and helpers that link batches and assemble cases as the app does."""

    def __init__(self, store: Store, follow_days: int = 7) -> None:
        self.stores = stores_of(store, follow_days)
        self.interactions, self.cases, self.insights = self.stores.interactions, self.stores.cases, self.stores.insights
        self.settings = Settings(AzureWebJobsStorage=STORAGE, PORTAL_ISSUERS="portal.example.com",
                                 CASE_SETTLE_SECONDS=0, INSIGHTS_FOLLOW_DAYS=follow_days)

    def browse(self, visitor: str, events: list[tuple[int, str, dict[str, Any]]], contact: str | None = None) -> None:
        message = queued_batch([queued_event(ms, kind, **fields) for ms, kind, fields in events], visitor=visitor,
                               contact=contact, received_at="2031-03-20T00:00:00.000Z")
        link(self.interactions, encoded(message), insights=self.insights)

    def case(self, contact: str, created_ms: int, ticket: str) -> str:
        case_id = str(uuid.uuid4())
        queued: list[str] = []
        take(self.cases, {"case_id": case_id, "created_ms": created_ms, "ticket": ticket, "title": "Help",
                          "contact": contact, "source": "portal"}, queued.append)
        for text in queued:
            assembler.handle(text.encode(), self.stores, self.settings, created_ms + H, None)
        return case_id


def search(query: str, results: int | None) -> dict[str, Any]:
    url = "https://portal.example.com/search/?" + urlencode({"q": query})
    return {"query": query, "url": url} | ({} if results is None else {"results": results})


def article(number: str) -> dict[str, Any]:
    return {"article": {"number": number, "lang": "en-us"}, "title": f"Article {number}", "url": kb(number)}


def kb(number: str) -> str:
    """A knowledge article's address on the portal."""
    return f"https://portal.example.com/knowledgebase/article/{number}/en-us"


@pytest.fixture
def scene(store: Store) -> Scene:
    """The hand-computed data set (see the expected figures in the tests)."""
    s = Scene(store)
    s.browse("visitor-aaaa", [(at(0, 9), "search", search("Reset password", 0)),
                              (at(0, 9, 2), "search", search("password reset", 3)),
                              (at(0, 9, 3), "page_view", article("KA-00001"))], contact=C1)
    s.browse("visitor-bbbb", [(at(0, 11), "search", search("vpn", 2)),
                              (at(0, 11, 1), "page_view", article("KA-00002"))])
    s.browse("visitor-dddd", [(at(0, 15), "page_view", article("KA-00001")),
                              (at(0, 15, 5), "search", search("reset  PASSWORD", 0))], contact=C2)
    s.browse("visitor-eeee", [(at(1, 8), "search", search("printer", 0)),
                              (at(1, 8, 1), "page_view", {"title": "Home"})])  # not an article: not self-service
    s.case(C1, at(0, 10), "CAS-1")  # an hour after visitor A's first search
    s.case(C2, at(1, 9), "CAS-2")  # 18 hours after visitor D's first read
    return s


def insights_api(query: str) -> tuple[int, Any]:
    response = function_app.insights(func.HttpRequest("GET", f"http://localhost/api/insights?{query}", body=b"",
                                                      params=dict(p.split("=") for p in query.split("&") if p)))
    return response.status_code, json.loads(response.get_body())


def test_insights_of_a_hand_computed_data_set(scene: Scene) -> None:
    status, body = insights_api("from=2031-03-10&to=2031-03-11")
    assert status == 200
    jsonschema.validate(body, document()["components"]["schemas"]["Insights"])
    assert body["cases"] == 2
    assert body["top_searches_before_cases"] == [{"query": "reset password", "cases": 2, "searches": 2},
                                                 {"query": "password reset", "cases": 1, "searches": 1}]
    assert body["zero_result_searches"] == [
        {"query": "reset password", "searches": 2, "followed_by_case": 2, "cases_after": 2},
        {"query": "printer", "searches": 1, "followed_by_case": 0, "cases_after": 0}]
    # Wilson intervals, 95 %: 2 of 2 is [0.34, 1] (not "100 %"), 2 of 4 is [0.15, 0.85].
    assert body["articles"] == [{"article": "KA-00001", "title": "Article KA-00001", "url": kb("KA-00001"), "reads": 2,
                                 "cases_after": 2, "reads_followed_by_case": 2, "failed_to_deflect_rate": 1.0,
                                 "failed_to_deflect_interval": [0.3424, 1.0], "failed_to_deflect_too_few": True}]
    assert body["deflection"] == {"self_service_sessions": 4, "followed_by_case": 2, "deflected": 2, "rate": 0.5,
                                  "interval": [0.15, 0.85], "too_few": True}
    assert body["first_touch_to_case"] == {"cases": 2, "median_ms": (1 * H + 18 * H) // 2}


def test_insights_of_one_day_count_cases_that_followed_after_it(scene: Scene) -> None:
    status, body = insights_api("from=2031-03-10&to=2031-03-10")
    assert status == 200
    assert body["cases"] == 1  # case 2 was opened the next day ...
    assert body["deflection"] == {"self_service_sessions": 3, "followed_by_case": 2, "deflected": 1, "rate": 0.3333,
                                  "interval": [0.0615, 0.7923], "too_few": True}
    assert body["first_touch_to_case"] == {"cases": 1, "median_ms": 1 * H}  # ... but followed D's session


def test_insights_change_when_a_contact_is_erased(scene: Scene) -> None:
    erase(scene.interactions, C2, 24 * H, scene.cases, scene.insights)
    status, body = insights_api("from=2031-03-10&to=2031-03-11")
    assert body["cases"] == 1
    assert body["top_searches_before_cases"] == [{"query": "password reset", "cases": 1, "searches": 1},
                                                 {"query": "reset password", "cases": 1, "searches": 1}]
    assert body["deflection"]["self_service_sessions"] == 3
    assert body["articles"] == [{"article": "KA-00001", "title": "Article KA-00001", "url": kb("KA-00001"), "reads": 1,
                                 "cases_after": 1, "reads_followed_by_case": 1, "failed_to_deflect_rate": 1.0,
                                 "failed_to_deflect_interval": [0.2065, 1.0],
                                 "failed_to_deflect_too_few": True}]


def test_reassembly_and_redelivery_do_not_count_twice(scene: Scene) -> None:
    before = insights_api("from=2031-03-10&to=2031-03-11")[1]
    rows = scene.interactions.visitor_events("visitor-aaaa")
    again = [{"id": r["id"], "type": r["type"], "ts": r["ts"], "url": r["url"],
              **({"query": r["query"], "results": r["results"]} if r["type"] == "search" else
                 {"title": r["title"], "article": {"number": r["article_number"], "lang": r["article_lang"]}})}
             for r in rows]
    message = {"v": 1, "received_at": "2031-03-20T00:00:00.000Z", "site": "portal.example.com",
               "visitor": "visitor-aaaa", "session": "s-visitor-aaaa", "skew_ms": 0, "contact": C1, "events": again}
    link(scene.interactions, json.dumps(message).encode(), insights=scene.insights)  # a batch delivered again
    for row in scene.cases.cases_of(C1):  # and the case assembled again
        text = case_message({"case_id": row["case_id"], "created_ms": row["created_ms"], "contact": C1,
                             "ticket": "CAS-1", "title": "Help", "source": "portal"})
        assert assembler.handle(text.encode(), scene.stores, scene.settings, at(3, 0), None) == "unchanged"
    assert insights_api("from=2031-03-10&to=2031-03-11")[1] == before


@pytest.mark.parametrize(("query", "field"), [
    ("from=2031-03-12&to=2031-03-10", "from"), ("from=yesterday", "from"), ("to=2031-13-01", "to"),
    ("from=2029-01-01&to=2031-03-10", "from"), ("format=xml", "format")])
def test_insights_refuse_a_bad_range_naming_the_parameter(query: str, field: str) -> None:
    status, body = insights_api(query)
    assert status == 400
    assert [e["field"] for e in body["errors"]] == [field]


def test_insights_of_an_empty_range_are_zeros_not_errors(store: Store) -> None:
    status, body = insights_api("from=2030-01-01&to=2030-12-31")
    assert status == 200
    assert body["cases"] == 0 and body["deflection"]["rate"] is None
    assert body["first_touch_to_case"]["median_ms"] is None


def test_insights_site_search_figures_of_a_hand_computed_day(store: Store) -> None:
    scene = Scene(store)
    click = {"query": "q", "position": 1, "target": kb("KA-00001")}
    # v1: "vpn" found 2 and was clicked; then "mfa" found nothing and was the session's last step.
    scene.browse("visitor-s1s1", [(at(0, 9), "search", search("vpn", 2)), (at(0, 9, 1), "search_click", click),
                                  (at(0, 9, 2), "page_view", article("KA-00001")),
                                  (at(0, 9, 5), "search", search("mfa", 0))])
    # v2: "printer" found nothing and was refined at once; "printer driver" found 3 and was clicked.
    scene.browse("visitor-s2s2", [(at(0, 10), "search", search("printer", 0)),
                                  (at(0, 10, 1), "search", search("printer driver", 3)),
                                  (at(0, 10, 2), "search_click", click)])
    scene.browse("visitor-s3s3", [(at(0, 11), "page_view", article("KA-00002"))])  # read, never searched
    scene.browse("visitor-s4s4", [(at(0, 12), "search", search("x", None))])  # no result count, then left
    status, body = insights_api("from=2031-03-10&to=2031-03-10")
    figures = body["site_search"]
    assert {k: figures[k] for k in ("searches", "with_result_count", "zero", "sessions", "clicked", "refinements",
                                    "exits", "searches_per_session")} == {
        "searches": 5, "with_result_count": 4, "zero": 2, "sessions": 3, "clicked": 2, "refinements": 1, "exits": 2,
        "searches_per_session": 1.67}
    assert figures["zero_result_rate"] == {"rate": 0.5, "of": 4, "interval": wilson(2, 4), "too_few": True}
    assert [figures[name]["rate"] for name in ("click_through_rate", "refinement_rate", "exit_rate")] == [0.4, 0.2, 0.4]
    assert body["deflection"]["self_service_sessions"] == 4  # a click is not a session of its own


def test_insights_trend_day_by_day_against_the_period_before(scene: Scene) -> None:
    status, body = insights_api("from=2031-03-10&to=2031-03-11")
    trend = body["trend"]
    few = {"zero_result_rate_too_few": True, "click_through_rate_too_few": True, "deflection_rate_too_few": True}
    assert trend["days"] == [
        {"day": "2031-03-10", "searches": 4, "zero_result_rate": 0.5, "zero_result_rate_of": 4,
         "click_through_rate": 0.0, "click_through_rate_of": 4, "cases": 1, "deflection_rate": 0.3333,
         "deflection_rate_of": 3, **few},
        {"day": "2031-03-11", "searches": 1, "zero_result_rate": 1.0, "zero_result_rate_of": 1,
         "click_through_rate": 0.0, "click_through_rate_of": 1, "cases": 1, "deflection_rate": 1.0,
         "deflection_rate_of": 1, **few}]
    assert trend["range"] == {"searches": 5, "zero_result_rate": 0.6, "zero_result_rate_of": 5,
                              "click_through_rate": 0.0, "click_through_rate_of": 5, "cases": 2,
                              "deflection_rate": 0.5, "deflection_rate_of": 4, **few}
    assert trend["previous"] == {"from": "2031-03-08", "to": "2031-03-09", "searches": 0, "zero_result_rate": None,
                                 "zero_result_rate_of": 0, "click_through_rate": None, "click_through_rate_of": 0,
                                 "cases": 0, "deflection_rate": None, "deflection_rate_of": 0, **few,
                                 "missing_days": []}
    assert trend["change"] == {"searches": 5, "zero_result_rate": None, "click_through_rate": None, "cases": 2,
                               "deflection_rate": None, **few}
    # The next two days compare with these two.
    status, later = insights_api("from=2031-03-12&to=2031-03-13")
    assert later["trend"]["previous"] == {"from": "2031-03-10", "to": "2031-03-11", **trend["range"],
                                          "missing_days": []}
    assert later["trend"]["change"]["searches"] == -5


def test_insights_behind_a_term_or_an_article_are_its_cases_and_sessions(scene: Scene) -> None:
    status, body = insights_api("from=2031-03-10&to=2031-03-11&search=Reset PASSWORD")
    assert status == 200
    assert [(c["ticket"], c["day"]) for c in body["cases"]] == [("CAS-2", "2031-03-11"), ("CAS-1", "2031-03-10")]
    assert (body["search"], body["case_count"], body["sessions"], body["sessions_without_case"]) == (
        "reset password", 2, 2, 0)
    status, body = insights_api("from=2031-03-10&to=2031-03-11&search=vpn")  # searched by B, who opened no case
    assert (body["cases"], body["sessions"], body["sessions_without_case"]) == ([], 1, 1)
    # A case counts for an article on the day it was read: CAS-2 (created on the 11th) read it on the 10th.
    status, body = insights_api("from=2031-03-10&to=2031-03-10&article=ka-00001")
    assert ([c["ticket"] for c in body["cases"]], body["sessions"]) == (["CAS-2", "CAS-1"], 2)
    status, body = insights_api("from=2031-03-11&to=2031-03-11&article=ka-00001")
    assert (body["cases"], body["case_count"], body["sessions"]) == ([], 0, 0)
    status, problem = insights_api("search=vpn&article=KA-00001")
    assert status == 400 and problem["type"] == "urn:dci:problem:invalid-parameter"


@pytest.mark.parametrize("query", ["from=9999-12-30&to=9999-12-31&search=vpn", "to=9999-12-31&article=KA-01023",
                                   "from=9999-12-25&to=9999-12-31&search=vpn&format=html"])
def test_insights_behind_at_the_end_of_the_calendar_answers(store: Store, query: str) -> None:
    # The outside attack run: the follow window after 9999-12-31 overflowed into a 500.
    response = function_app.insights(func.HttpRequest("GET", f"http://localhost/api/insights?{query}", body=b"",
                                                      params=dict(p.split("=") for p in query.split("&"))))
    assert response.status_code == 200


def test_a_session_counts_as_followed_only_within_the_follow_window() -> None:
    events = [{"visitor": "v1", "session": "s1", "ts": at(0, 9), "type": "search", "query": "x", "results": 0},
              {"visitor": "v2", "session": "s2", "ts": at(2, 9), "type": "search", "query": "y", "results": 1}]
    fact = case_fact({"created_ms": at(2, 10)}, events, follow_days=1)
    assert [days for days in fact["sessions"].values()] == [["2031-03-12"]]  # s1 was 2 days earlier
    # Only searches within the follow window count for the case, each on the day it was made.
    assert fact["searches"] == {"y": ["2031-03-12", session_hash("v2", "s2")]} and fact["zero"] == {}
    assert fact["lead_ms"] == 49 * H


# --- a range is the sum of its days ----------------------------------------------------------------

TERMS = st.sampled_from(["vpn", "reset password", "printer", "mfa"])
EVENT = st.tuples(st.integers(0, 5), st.integers(0, 3), st.sampled_from(["search", "read", "click"]), TERMS,
                  st.sampled_from([None, 0, 2]))
CASE = st.tuples(st.integers(0, 5), st.lists(st.integers(0, 3), max_size=3, unique=True), st.lists(TERMS, max_size=2),
                 st.integers(1, 5000))
_runs = iter(range(10_000))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(EVENT, max_size=25), cases=st.lists(CASE, max_size=5))
def test_insights_over_a_range_equal_the_sum_over_its_days(store: Store, events: list, cases: list) -> None:
    base = date(2040, 1, 1) + timedelta(days=20 * next(_runs))  # each example in its own days
    insights = InsightStore(store.tables, follow_days=2)
    day = [(base + timedelta(days=n)).isoformat() for n in range(6)]
    facts = []
    for n, (offset, session, kind, term, results) in enumerate(events):
        fact = {"kind": kind, "session": f"s{session}"}
        if kind == "search":
            fact |= {"term": term, **({} if results is None else {"results": results})}
        else:
            fact |= {"term": term} if kind == "click" else {"article": term.upper()}
        facts.append((day[offset], f"{day[offset]}T00:00:00.000Z_{n:04d}", fact))
    insights.add_events(facts)
    for n, (offset, sessions, terms, lead) in enumerate(cases):
        active = {f"s{s}": [day[max(0, offset - 1)]] for s in sessions}
        insights.put_case(f"case-{n}", {"day": day[offset], "searches": sorted(set(terms)), "zero": [],
                                        "articles": [t.upper() for t in sorted(set(terms))], "sessions": active,
                                        "lead_ms": lead})
    whole = report(day[0], day[-1], insights.rollups(day[0], day[-1]), top=100)
    parts = [report(d, d, insights.rollups(d, d), top=100) for d in day]

    def by_key(rows: list[dict[str, Any]], key: str, value: str) -> dict[str, int]:
        return {row[key]: row[value] for row in rows}

    assert whole["cases"] == sum(p["cases"] for p in parts)
    for name in ("searches", "with_result_count", "zero", "sessions", "clicked", "refinements", "exits"):
        assert whole["site_search"][name] == sum(p["site_search"][name] for p in parts)
    for name in ("self_service_sessions", "followed_by_case", "deflected"):
        assert whole["deflection"][name] == sum(p["deflection"][name] for p in parts)
    assert whole["first_touch_to_case"]["cases"] == sum(p["first_touch_to_case"]["cases"] for p in parts)
    # (A list's other columns — all searches of a term, all reads of an article — are looked up for
    # the terms and articles that made the list, so a day that did not list them does not show them.)
    for section, key, value in (("top_searches_before_cases", "query", "cases"),
                                ("zero_result_searches", "query", "searches"),
                                ("zero_result_searches", "query", "followed_by_case"),
                                ("articles", "article", "cases_after")):
        summed: dict[str, int] = {}
        for part in parts:
            for k, v in by_key(part[section], key, value).items():
                summed[k] = summed.get(k, 0) + v
        assert by_key(whole[section], key, value) == {k: v for k, v in summed.items() if k in by_key(
            whole[section], key, value)}
        assert set(by_key(whole[section], key, value)) >= {
            k for part in parts for k in by_key(part[section], key, value)}


def test_rollup_of_one_day_by_hand() -> None:
    events = [{"kind": "search", "term": "vpn", "results": 0, "session": "a"},
              {"kind": "search", "term": "vpn", "results": 0, "session": "b"},
              {"kind": "read", "article": "KA-1", "session": "b"}]
    cases = [{"day": "d", "searches": ["vpn"], "zero": ["vpn"], "articles": ["KA-1"], "lead_ms": 5,
              "sessions": {"b": ["d"]}}]
    day = rollup("d", events, cases, followed={"b"})
    assert (day["sessions"], day["sessions_followed"]) == (2, 1)
    assert day["zero_result_searches"] == {"vpn": 2} and day["zero_result_searches_followed"] == {"vpn": 1}
    assert day["article_reads"] == {"KA-1": 1} and day["articles_before_cases"] == {"KA-1": 1}
    assert day_of(at(0, 23, 59)) == "2031-03-10"


def test_retention_removes_old_facts_and_keeps_the_rollups(scene: Scene) -> None:
    from dci.retention import apply

    before = insights_api("from=2031-03-10&to=2031-03-11")[1]
    apply(scene.stores, datetime(2031, 3, 12, 12, tzinfo=timezone.utc), 1)
    assert scene.insights._table.partition("e_2031-03-10") == []  # the day before the cut-off: gone
    assert scene.insights._table.partition("c_2031-03-10") == []
    assert scene.insights._table.partition("e_2031-03-11") != []  # the cut-off day itself stays
    assert insights_api("from=2031-03-10&to=2031-03-11")[1] == before  # the rollups keep what they counted


def test_live_day_marks_are_coalesced_and_the_timer_redoes_live_days_anyway(store: Store) -> None:
    insights = InsightStore(store.tables, 7, clock=lambda: DAY0 + timedelta(hours=12))  # "today" is DAY0
    today = "2031-03-10"
    fact = {"kind": "search", "term": "vpn", "results": 0}
    insights.add_events([(today, f"{today}T09:00:00.000Z_a", fact | {"session": "s1"})])
    assert set(insights.dirty()) == {today}
    insights.refresh(only=[today])  # a request reads today: the mark is consumed
    insights.add_events([(today, f"{today}T09:01:00.000Z_b", fact | {"session": "s2"})])
    assert insights.dirty() == {}  # marked by this process a moment ago: not marked again ...
    assert report(today, today, insights.rollups(today, today))["deflection"]["self_service_sessions"] == 1
    insights.refresh()  # ... but the timer redoes the live days whatever their marks
    assert report(today, today, insights.rollups(today, today))["deflection"]["self_service_sessions"] == 2
    old = "2031-03-01"  # a late event for an older day is always marked
    insights.add_events([(old, f"{old}T09:00:00.000Z_c", fact | {"session": "s3"})])
    insights.add_events([(old, f"{old}T09:01:00.000Z_d", fact | {"session": "s4"})])
    assert set(insights.dirty()) == {old}


def test_a_case_fact_at_its_bounds_takes_at_most_what_facts_py_says() -> None:
    # 40 terms (found nothing: in `searches` and `zero`) of 100 astral characters (2 UTF-16 units each,
    # the most JSON keeps as themselves), 50 articles of 64 characters, 50 sessions over 200 session-days,
    # a 253-character portal: the largest fact without escaped characters (dci/insights/facts.py).
    from dci.insights import COLUMN_LIMIT, encode, utf16_len

    created, events = at(30, 12), []
    for n in range(400):
        s, d = n // 8, n // 2 % 4
        who = {"visitor": f"v{s}", "session": f"s{s}", "site": "h" * 253, "ts": created - (d + 1) * 24 * H - n}
        events += [{**who, "type": "search", "results": 0, "query": chr(0x1F300 + n) * 3 + "\U0001f525" * 97},
                   {**who, "type": "page_view", "article_number": f"{n:064d}"}]
    fact = case_fact({"created_ms": created}, events, follow_days=90)
    assert (len(fact["searches"]), len(fact["zero"]), len(fact["articles"]), len(fact["sessions"])) == (40, 40, 50, 50)
    assert sum(len(days) for days in fact["sessions"].values()) == 200
    assert 28_700 < utf16_len(encode(dict(sorted(fact.items())))) <= 28_750 < COLUMN_LIMIT  # (lead_ms: 9 digits)
