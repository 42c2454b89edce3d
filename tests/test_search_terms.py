"""Site-search analytics per term and per article, refinements, content gaps and the filters, on a
small fixed data set whose figures are counted by hand (on Azurite, through the linker and the
assembler as real events go)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import azure.functions as func
import jsonschema
import pytest
from azure.data.tables import TableClient, UpdateMode

import function_app
from dci import assembler
from dci.cases import CaseFollowUp
from dci.insights import gap_key
from dci.linker import link
from dci.openapi import document
from dci.reports.insights import Filters, filtered_report, term_details
from dci.settings import Settings
from tests.conftest import STORAGE, Store, stores_of
from tests.factories import encoded, queued_batch, queued_event

DAY = "2031-03-10"
T0 = datetime(2031, 3, 10, 9, 0, tzinfo=timezone.utc)
P1, P2 = "portal.example.com", "help.example.com"
C1 = "6f1c2a4e-0b7d-4c1e-9a55-2f4d8b1e7c30"
M = 60_000


def at(minutes: float) -> int:
    return int((T0 + timedelta(minutes=minutes)).timestamp() * 1000)


def search(query: str, results: int, host: str = P1) -> dict[str, Any]:
    return {"query": query, "results": results, "url": f"https://{host}/search/?{urlencode({'q': query})}"}


def kb(number: str, host: str = P1) -> str:
    return f"https://{host}/knowledgebase/article/{number}/en-us"


def click(query: str, position: int, number: str) -> dict[str, Any]:
    return {"query": query, "position": position, "target": kb(number)}


def read(number: str) -> dict[str, Any]:
    return {"article": {"number": number, "lang": "en-us"}, "title": "Set up the VPN client", "url": kb(number)}


class Site:
    def __init__(self, store: Store) -> None:
        self.queue: list[str] = []
        self.stores = stores_of(store, queue=self)
        self.settings = Settings(AzureWebJobsStorage=STORAGE, PORTAL_ISSUERS=f"{P1},{P2}", CASE_SETTLE_SECONDS=0)

    def send(self, text: str, delay_seconds: int = 0) -> None:
        self.queue.append(text)

    def session(self, events: list[tuple[float, str, dict[str, Any]]], site: str = P1,
                contact: str | None = None) -> None:
        visitor = f"visitor-{uuid.uuid4().hex[:8]}"
        message = queued_batch([queued_event(at(m), kind, **fields) for m, kind, fields in events], visitor=visitor,
                               contact=contact, site=site, received_at="2031-03-10T12:00:00.000Z")
        link(self.stores.interactions, encoded(message), CaseFollowUp.of(self.settings, self.stores),
             self.stores.insights)
        for text in self.queue:
            assembler.handle(text.encode(), self.stores, self.settings, at(200), None)
        self.queue.clear()

    def report(self, filters: Filters | None = None) -> dict[str, Any]:
        return filtered_report(self.stores.insights, DAY, DAY, ("2031-03-09", "2031-03-09"), filters or Filters(),
                               top=50)


@pytest.fixture
def site(store: Store) -> Site:
    """The hand-counted data set:

    A (anonymous, P1): "vpn error" (0) → "VPN error!" (0) → "vpn setup" (5) → click #2 KA-1 → read KA-1
    B (signed in as C1, P1): "vpn setup" (5) → click #1 KA-1 → read KA-1 → "printer" (3), then a case
    C (anonymous, P2): "vpn error" (0), and nothing after
    """
    s = Site(store)
    s.session([(0, "search", search("vpn error", 0)), (1, "search", search("VPN error!", 0)),
               (2, "search", search("vpn setup", 5)), (3, "search_click", click("vpn setup", 2, "KA-1")),
               (3.1, "page_view", read("KA-1"))])
    s.session([(10, "search", search("vpn setup", 5)), (11, "search_click", click("vpn setup", 1, "KA-1")),
               (11.1, "page_view", read("KA-1")), (14, "search", search("printer", 3)),
               (20, "case_submitted", {"ticket": "CAS-1", "url": f"https://{P1}/support/thanks/"})], contact=C1)
    s.session([(30, "search", search("vpn error", 0, P2), )], site=P2)
    return s


def test_search_terms_by_hand(site: Site) -> None:
    figures = site.report()
    terms = {row["term"]: row for row in figures["search_terms"]}
    assert [row["term"] for row in figures["search_terms"]] == ["vpn error", "vpn setup", "printer", "vpn error!"]
    assert terms["vpn setup"] | {} == {
        "term": "vpn setup", "searches": 2, "sessions": 2, "with_result_count": 2,
        "zero_result_rate": 0.0, "zero_result_rate_too_few": True, "click_through_rate": 1.0,
        "click_through_rate_too_few": True, "mean_click_position": 1.5, "refinement_rate": 0.0,
        "refinement_rate_too_few": True, "exit_rate": 0.0, "exit_rate_too_few": True, "cases_after": 1}
    vpn_error = terms["vpn error"]
    fields = ("searches", "sessions", "zero_result_rate", "click_through_rate", "mean_click_position",
              "refinement_rate", "exit_rate", "cases_after")
    assert tuple(vpn_error[field] for field in fields) == (2, 2, 1.0, 0.0, None, 0.5, 0.5, 0)
    assert (terms["vpn error!"]["refinement_rate"], terms["vpn error!"]["exit_rate"]) == (1.0, 0.0)
    assert (terms["printer"]["exit_rate"], terms["printer"]["cases_after"]) == (1.0, 1)
    # Per-term counts add up to the site-wide ones.
    site_search = figures["site_search"]
    for field, total in (("searches", "searches"), ("with_result_count", "with_result_count")):
        assert sum(row[field] for row in figures["search_terms"]) == site_search[total]
    assert sum(round(row["exit_rate"] * row["searches"]) for row in figures["search_terms"]) == site_search["exits"]
    assert sum(round(row["refinement_rate"] * row["searches"]) for row in figures["search_terms"]) == \
        site_search["refinements"]


def test_top_articles_refinements_and_content_gaps_by_hand(site: Site) -> None:
    figures = site.report()
    assert figures["top_articles"] == [{
        "article": "KA-1", "title": "Set up the VPN client", "url": kb("KA-1"), "views": 2, "sessions": 2,
        "from_search": 2, "cases_after": 1, "sessions_followed": 1, "failed_to_deflect_rate": 0.5,
        "failed_to_deflect_rate_too_few": True}]
    assert figures["refinements"] == [{"from": "vpn error", "to": "vpn error!", "count": 1},
                                      {"from": "vpn error!", "to": "vpn setup", "count": 1}]
    assert figures["content_gaps"] == [{"term": "vpn error", "forms": ["vpn error", "vpn error!"], "searches": 3,
                                        "sessions": 2, "cases_after": 0}]
    assert figures["portals"] == [P2, P1] and figures["filters"] == {"signed_in": None, "portal": None}


@pytest.mark.parametrize(("raw", "key"), [("VPN error!", "vpn error"), ("vpn  error", "vpn error"),
                                          ("vpn-error", "vpn error"), ("¿Dónde está?", "dónde está"),
                                          ("!!!", "!!!"), ("wi_fi", "wi fi")])
def test_content_gaps_group_case_space_and_punctuation_insensitively(raw: str, key: str) -> None:
    assert gap_key(" ".join(raw.lower().split())) == key


def test_filters_split_the_figures_and_add_up(site: Site) -> None:
    whole = site.report()
    signed, anonymous = site.report(Filters(signed_in=True)), site.report(Filters(signed_in=False))
    assert {r["term"]: r["searches"] for r in signed["search_terms"]} == {"vpn setup": 1, "printer": 1}
    assert (signed["cases"], anonymous["cases"], whole["cases"]) == (1, 0, 1)
    for name in ("searches", "zero", "clicked", "refinements", "exits", "sessions", "with_result_count"):
        assert signed["site_search"][name] + anonymous["site_search"][name] == whole["site_search"][name], name
    by_term = {r["term"]: r for r in whole["search_terms"]}
    for row in signed["search_terms"] + anonymous["search_terms"]:
        assert row["searches"] <= by_term[row["term"]]["searches"]
    assert sum(r["searches"] for r in signed["search_terms"] + anonymous["search_terms"]) == \
        sum(r["searches"] for r in whole["search_terms"])
    assert sum(r["cases_after"] for r in signed["search_terms"] + anonymous["search_terms"]) == \
        sum(r["cases_after"] for r in whole["search_terms"])
    assert [a["views"] for a in signed["top_articles"]] == [1]
    assert [a["views"] for a in anonymous["top_articles"]] == [1]
    second = site.report(Filters(portal=P2))
    assert [(r["term"], r["searches"]) for r in second["search_terms"]] == [("vpn error", 1)]
    assert second["content_gaps"][0]["searches"] == 1 and second["cases"] == 0
    both = site.report(Filters(signed_in=True, portal=P1))
    assert both["site_search"]["searches"] == 2 and both["cases"] == 1


def test_the_drill_down_of_a_term_has_its_trend_refinements_and_clicks(site: Site) -> None:
    error = term_details(site.stores.insights, "2031-03-09", DAY, "vpn error")
    assert error == {"trend": [{"day": "2031-03-09", "searches": 0}, {"day": DAY, "searches": 2}],
                     "refined_to": [{"to": "vpn error!", "count": 1}], "clicked": []}
    setup = term_details(site.stores.insights, DAY, DAY, "vpn setup")
    assert setup["clicked"] == [{"article": "KA-1", "title": "Set up the VPN client", "count": 2, "mean_position": 1.5}]


def insights_api(query: str) -> tuple[int, Any]:
    params = dict(p.split("=") for p in query.split("&") if p)
    response = function_app.insights(func.HttpRequest("GET", f"http://localhost/api/insights?{urlencode(params)}",
                                                      body=b"", params=params))
    return response.status_code, json.loads(response.get_body())


@pytest.mark.parametrize(("query", "field"), [("signed_in=yes", "signed_in"), ("portal=not a host", "portal"),
                                              ("portal=-bad.example", "portal")])
def test_a_bad_filter_is_a_problem_naming_it(store: Store, query: str, field: str) -> None:
    status, problem = insights_api(f"from={DAY}&to={DAY}&{query}")
    assert status == 400 and [e["field"] for e in problem["errors"]] == [field]


def test_the_route_answers_a_filtered_report(site: Site) -> None:
    status, body = insights_api(f"from={DAY}&to={DAY}&signed_in=false&portal={P2}")
    assert status == 200 and body["filters"] == {"signed_in": False, "portal": P2}
    schemas = document()["components"]["schemas"]
    jsonschema.validate(body, schemas["Insights"])
    assert [(r["term"], r["searches"]) for r in body["search_terms"]] == [("vpn error", 1)]
    status, body = insights_api(f"from={DAY}&to={DAY}&search=vpn setup")
    assert status == 200 and body["clicked"][0]["count"] == 2
    jsonschema.validate(body, schemas["Behind"])


def test_the_openapi_document_names_every_csv_table_and_sort() -> None:
    from dci.reports.dashboard import SEARCH_TABLES
    from dci.views import CSV_TABLES

    parameters = {p["name"]: p for p in document()["paths"]["/insights"]["get"]["parameters"]}
    assert parameters["table"]["schema"]["enum"] == list(CSV_TABLES)
    assert {f"sort_{table}" for table in SEARCH_TABLES} <= set(parameters)
    assert {"signed_in", "portal"} <= set(parameters)


def test_the_outside_runs_defects_stay_fixed(site: Site) -> None:
    # The drill-down took no filter: a bad one was a 200, a good one was dropped from its links,
    # and nothing said that it counts every visitor.
    status, problem = insights_api(f"from={DAY}&to={DAY}&search=vpn setup&signed_in=bogus")
    assert status == 400 and [e["field"] for e in problem["errors"]] == ["signed_in"]
    status, body = insights_api(f"from={DAY}&to={DAY}&search=vpn setup&signed_in=true&portal={P1}")
    assert status == 200 and body["filters"] == {"signed_in": True, "portal": P1} and body["filtered"] is False
    params = {"from": DAY, "to": DAY, "search": "vpn error", "signed_in": "true", "portal": P1, "format": "html"}
    page = function_app.insights(func.HttpRequest("GET", "http://localhost/api/insights?" + urlencode(params),
                                                  body=b"", params=params)).get_body().decode()
    assert "does not apply here" in page and "signed_in=true" in page.split("Refined to")[1]
    # A port beyond 65535 is no portal; the error form does not show a refused portal as the scope.
    assert insights_api(f"from={DAY}&to={DAY}&portal=localhost:99999")[0] == 400
    params = {"from": DAY, "to": DAY, "portal": '"><img>', "format": "html"}
    page = function_app.insights(func.HttpRequest("GET", "http://localhost/api/insights?" + urlencode(params),
                                                  body=b"", params=params)).get_body().decode()
    assert "visitors on" not in page


def test_top_articles_titles_lose_the_site_suffix_like_the_other_list(store: Store) -> None:
    s = Site(store)
    for n, number in enumerate(("KA-1", "KA-2")):
        s.session([(n, "page_view", {**read(number), "title": f"Article {number} · Contoso Support"})])
    status, body = insights_api(f"from={DAY}&to={DAY}")
    assert status == 200 and {row["title"] for row in body["top_articles"]} == {"Article KA-1", "Article KA-2"}


def test_the_page_says_how_many_searches_its_top_searches_leave_out(site: Site) -> None:
    # The outside run: a flood of made-up terms pushed real ones out of a day's lists, silently.
    from dci.reports.dashboard import insights_page

    figures = site.report()
    assert "outside a day's top" not in insights_page(figures, {}).decode()
    figures["other"] = {**figures["other"], "searches": 110}
    assert "And 110 searches of terms outside a day's top 100" in insights_page(figures, {}).decode()


def test_a_day_rolled_up_before_a_selected_figure_existed_is_read_without_it(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # A rollup stored before refinement pairs were kept has no such column, and the drill-down selects
    # it: Azure answers a selected column a row lacks as null (Azurite leaves it out; here it does as
    # Azure does). The day is read without it, not named missing.
    s = Site(store)
    s.session([(0, "search", search("vpn error", 0)), (1, "search", search("vpn setup", 5))])
    insights = s.stores.insights
    assert insights.refresh(only=[DAY]) == [DAY]
    row = insights._table.client.get_entity(f"d_{DAY}", "rollup")
    insights._table.client.upsert_entity({key: value for key, value in row.items() if key != "refinement_pairs"},
                                         mode=UpdateMode.REPLACE)
    query = TableClient.query_entities

    def as_azure(self: TableClient, *args: Any, select: list[str] | None = None, **kwargs: Any) -> Iterator[Any]:
        for found in query(self, *args, select=select, **kwargs):
            found.update({name: None for name in select or () if name not in found})
            yield found

    monkeypatch.setattr(TableClient, "query_entities", as_azure)
    assert insights.read(DAY, DAY, figures=["day", "refinement_pairs", "article_pages"]) == (
        [{"day": DAY, "article_pages": {}}], [])
    assert term_details(insights, DAY, DAY, "vpn error")["refined_to"] == []
