"""The search analytics on the support manager's page: four tables rendered from a hand-built report
(term links that keep range, filters and `code`; sorting by links, no script; the small-sample rule),
the filter controls, the drill-down's trend, refinements and clicked results, the four CSV tables,
and the page in real headless Chromium."""

from __future__ import annotations

import csv
import html
import io
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from dci import spreadsheet
from dci.insights import report
from dci.pages import CSP
from dci.problems import Problem
from dci.reports.dashboard import SEARCH_TABLES, behind_page, insights_page, sort_of
from dci.views import CSV_TABLES
from tests.test_beacon import browser  # noqa: F401  (the module's Chromium fixture)
from tests.test_manager_page import Page, readable
from tests.test_reports import no_overflow

RANGE = {"from": "2031-03-10", "to": "2031-03-11"}
FILTERED = {"signed_in": "true", "portal": "portal.example.com", "code": "k1"}
XSS = "<script>alert(1)</script>"
CMD = "=cmd|' /C calc'!A0"
KB = "https://portal.example.com/knowledgebase/article/{}/en-us"


def term_row(term: str, searches: int, cases_after: int, *, zero: float | None = 0.25,
             position: float | None = 1.5) -> dict[str, Any]:
    """A `search_terms` item: `searches` searches (all said how many they found), under the
    small-sample rule below 20."""
    few = searches < 20
    return {"term": term, "searches": searches, "sessions": searches - 1, "with_result_count": searches,
            "zero_result_rate": zero, "zero_result_rate_too_few": few, "click_through_rate": 0.5,
            "click_through_rate_too_few": few, "mean_click_position": position, "refinement_rate": 0.1,
            "refinement_rate_too_few": few, "exit_rate": 0.25, "exit_rate_too_few": few, "cases_after": cases_after}


def article_row(number: str, title: str | None, views: int, sessions: int, followed: int) -> dict[str, Any]:
    return {"article": number, "title": title, "url": KB.format(number) if title else None, "views": views,
            "sessions": sessions, "from_search": views // 2, "cases_after": followed, "sessions_followed": followed,
            "failed_to_deflect_rate": followed / sessions, "failed_to_deflect_rate_too_few": sessions < 20}


def hand_built(signed_in: bool | None = None, portal: str | None = None) -> dict[str, Any]:
    """A report of two days with the search analytics' lists in the report's own order."""
    return report(RANGE["from"], RANGE["to"], []) | {
        "search_terms": [term_row("vpn", 40, 3), term_row(CMD, 30, 0, position=None),
                         term_row("printer", 25, 1, zero=None), term_row("reset password", 4, 5, zero=0.5)],
        "top_articles": [article_row("KA-01024", "Set up the VPN client", 60, 40, 8),
                         article_row("KA-00007", None, 12, 4, 3),
                         article_row("KA-00300", "Add a printer", 9, 9, 1)],
        "refinements": [{"from": "vpn", "to": "vpn client", "count": 7}, {"from": "printer", "to": XSS, "count": 2},
                        {"from": "reset password", "to": "forgot password", "count": 2}],
        "content_gaps": [{"term": "reset password", "forms": ["Reset password", "reset  password"], "searches": 4,
                          "sessions": 4, "cases_after": 5},
                         {"term": "billing portal", "forms": ["billing portal"], "searches": 9, "sessions": 8,
                          "cases_after": 2}],
        "filters": {"signed_in": signed_in, "portal": portal},
        "portals": ["portal.example.com", "help.example.com"]}


def section(page: bytes, table: str) -> str:
    found = re.search(rf'(?s)<section id="{table}">.*?</section>', page.decode())
    assert found, f"no section {table}"
    return found.group(0)


def column(page: bytes, table: str, index: int = 0) -> list[str]:
    """The text of one column of a table, top to bottom."""
    rows = re.findall(r"(?s)<tr>(.*?)</tr>", section(page, table).split("<tbody>")[1])
    return [html.unescape(re.sub(r"<[^>]+>", "", re.findall(r"(?s)<td[^>]*>(.*?)</td>", row)[index])).strip()
            for row in rows]


def links(markup: str) -> dict[str, str]:
    """Each link's text and its address (as the browser reads them); the first of the same text."""
    found: dict[str, str] = {}
    for href, text in re.findall(r'<a href="([^"]*)"[^>]*>(.*?)</a>', markup):
        found.setdefault(html.unescape(re.sub(r"<[^>]+>", "", text)), html.unescape(href))
    return found


def query(href: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(href).query, keep_blank_values=True))


def headings(markup: str) -> dict[str, dict[str, str]]:
    """Each column heading of a table: its link's address and its `aria-sort` ("" for none)."""
    return {html.unescape(text): {"href": html.unescape(href), "sort": sort or ""}
            for sort, href, text in re.findall(r'<th scope="col"(?: class="num")?(?: aria-sort="(\w+)")?>'
                                               r'<a href="([^"]*)">(.*?)</a></th>', markup)}


# --- the page ---------------------------------------------------------------------------------------

def test_search_page_shows_the_four_sections_after_the_cards_with_their_csv() -> None:
    page = insights_page(hand_built(), {**RANGE, "format": "html"}, follow_days=7)
    text = page.decode()
    order = [text.index(f"<h2>{title}</h2>") for title in
             ("Site search", "Top searches", "Top articles", "Refinements", "Content gaps",
              "Top searches before cases")]
    assert order == sorted(order)
    for name, table in SEARCH_TABLES.items():
        markup = section(page, table.csv)
        assert f"<h2>{table.title}</h2>" in markup
        assert query(links(markup)["Download as CSV"]) == {**RANGE, "format": "csv", "table": table.csv}, name
    assert text.count("Download as CSV") == 3 + 4
    readable(Page(page).text)
    assert XSS not in text and html.escape(XSS, quote=False) in text  # visitors' text is text


def test_search_page_term_links_keep_the_range_the_filters_and_the_key() -> None:
    page = insights_page(hand_built(True, "portal.example.com"), {**RANGE, "format": "html", **FILTERED,
                                                                  "sort_terms": "term"})
    kept = {**RANGE, "format": "html", **FILTERED}
    terms = links(section(page, "search-terms"))
    assert query(terms["vpn"]) == {**kept, "search": "vpn"}
    assert query(terms[CMD]) == {**kept, "search": CMD}
    refinements = links(section(page, "refinements"))
    assert query(refinements[XSS]) == {**kept, "search": XSS}
    assert query(refinements["vpn client"]) == {**kept, "search": "vpn client"}
    assert query(links(section(page, "content-gaps"))["billing portal"]) == {**kept, "search": "billing portal"}
    articles = links(section(page, "top-articles"))
    assert articles["Set up the VPN client"] == KB.format("KA-01024")  # the article on the portal
    assert query(articles["see the cases"]) == {**kept, "article": "KA-01024"}
    assert query(articles["KA-00007"]) == {**kept, "article": "KA-00007"}  # (no title: its number)
    # The CSV keeps the filters and the key, not the page's sort.
    assert query(links(section(page, "search-terms"))["Download as CSV"]) == {
        **RANGE, **FILTERED, "format": "csv", "table": "search-terms"}


def test_search_page_headings_sort_by_links_that_keep_every_other_parameter() -> None:
    asked = {**RANGE, "format": "html", **FILTERED, "sort_articles": "sessions"}
    page = insights_page(hand_built(True, "portal.example.com"), asked)
    terms = headings(section(page, "search-terms"))
    assert len(terms) == len(SEARCH_TABLES["terms"].columns) == 10
    assert query(terms["Search"]["href"]) == {**asked, "sort_terms": "term"}
    assert urlsplit(terms["Search"]["href"]).fragment == "search-terms"
    assert query(terms["Found nothing"]["href"])["sort_terms"] == "zero_result_rate"
    # Unsorted: the report's own order, marked on its field; the articles as asked.
    assert {name: h["sort"] for name, h in terms.items() if h["sort"]} == {"Times searched": "descending"}
    articles = headings(section(page, "top-articles"))
    assert {name: h["sort"] for name, h in articles.items() if h["sort"]} == {"Visits": "descending"}
    assert query(articles["Views"]["href"]) == {**asked, "sort_articles": "views"}
    assert column(page, "top-articles", 2) == ["40", "9", "4"]
    # A text column sorts A–Z, marked ascending.
    by_term = insights_page(hand_built(), {**RANGE, "sort_terms": "term"})
    assert column(by_term, "search-terms") == [CMD, "printer", "reset password", "vpn"]
    assert headings(section(by_term, "search-terms"))["Search"]["sort"] == "ascending"
    # A number column sorts highest first, the empty ones last, ties in the report's order.
    by_cases = insights_page(hand_built(), {**RANGE, "sort_terms": "cases_after", "sort_refinements": "count",
                                            "sort_gaps": "searches"})
    assert column(by_cases, "search-terms") == ["reset password", "vpn", "printer", CMD]
    assert headings(section(by_cases, "search-terms"))["Cases after it"]["sort"] == "descending"
    by_zero = insights_page(hand_built(), {**RANGE, "sort_terms": "zero_result_rate"})
    assert column(by_zero, "search-terms") == ["reset password", "vpn", CMD, "printer"]
    assert column(by_cases, "refinements", 1) == ["vpn client", XSS, "forgot password"]
    assert column(by_cases, "content-gaps") == ["billing portal", "reset password"]
    by_title = insights_page(hand_built(), {**RANGE, "sort_articles": "title"})
    assert column(by_title, "top-articles") == ["Add a printer KA-00300 · see the cases",
                                                "Set up the VPN client KA-01024 · see the cases", "KA-00007"]
    assert headings(section(by_title, "top-articles"))["Article"]["sort"] == "ascending"


def test_search_page_sorting_leaves_the_report_as_it_was() -> None:
    body = hand_built()
    before = [row["term"] for row in body["search_terms"]]
    insights_page(body, {**RANGE, "sort_terms": "term", "sort_gaps": "term"})
    assert [row["term"] for row in body["search_terms"]] == before


@pytest.mark.parametrize(("params", "field"), [
    ({"sort_terms": "bogus"}, "sort_terms"),
    ({"sort_terms": "zero_result_rate_too_few"}, "sort_terms"),  # a flag is no column
    ({"sort_articles": "term"}, "sort_articles"),
    ({"sort_everything": "term"}, "sort_everything"),
])
def test_search_page_an_unknown_sort_is_a_400_naming_the_parameter(params: dict[str, str], field: str) -> None:
    with pytest.raises(Problem) as raised:
        sort_of({**RANGE, "code": "k1", **params})
    problem = raised.value
    assert (problem.status, problem.kind, [e.field for e in problem.errors]) == (400, "invalid-parameter", [field])
    assert field in problem.detail
    assert re.match(r"must be one of \w|names no table: sort_terms, sort_articles", problem.errors[0].detail)
    # The form again, the error said, the bad sort not carried on by "Show", the key kept.
    page = insights_page(None, {**RANGE, "code": "k1", "sort_gaps": "cases_after", **params}, problem).decode()
    assert f"{field}: {problem.errors[0].detail}." in page and "Show the page again without it." in page
    assert f'name="{field}"' not in page
    assert '<input type="hidden" name="code" value="k1">' in page
    assert '<input type="hidden" name="sort_gaps" value="cases_after">' in page


def test_search_page_sort_of_reads_each_tables_field() -> None:
    assert sort_of({}) == {}
    assert sort_of({**RANGE, "sort_terms": "", "code": "k1"}) == {}  # empty: the report's order
    assert sort_of({"sort_terms": "exit_rate", "sort_articles": "url", "sort_refinements": "to",
                    "sort_gaps": "forms"}) == {"terms": "exit_rate", "articles": "url", "refinements": "to",
                                               "gaps": "forms"}
    with pytest.raises(Problem) as raised:
        sort_of({"sort_terms": "x", "sort_gaps": "y"})
    assert [e.field for e in raised.value.errors] == ["sort_terms", "sort_gaps"]


def test_search_page_greys_a_rate_of_too_few_and_shows_its_count() -> None:
    page = insights_page(hand_built(), {**RANGE})
    row = re.findall(r"(?s)<tr>(.*?)</tr>", section(page, "search-terms").split("<tbody>")[1])[3]
    assert "reset password" in row
    cells = re.findall(r'<td class="([^"]*)">([^<]*)</td>', row)
    assert ("num rate few", "too few: 2 of 4 searches") in cells  # found nothing: 0.5 of 4
    assert ("num rate few", "too few: 1 of 4 searches") in cells  # exits: 0.25 of 4
    assert ("num rate", "25 %") in re.findall(r'<td class="([^"]*)">([^<]*)</td>', section(page, "search-terms"))
    # The articles' share of visits followed by a case: 4 visits are too few, 40 are not.
    articles = re.findall(r'<td class="(num rate[^"]*)">([^<]*)</td>', section(page, "top-articles"))
    assert articles == [("num rate", "20 %"), ("num rate few", "too few: 3 of 4 visits"),
                        ("num rate few", "too few: 1 of 9 visits")]
    assert "None" not in Page(page).text and "0.25" not in Page(page).text


def test_search_page_filter_controls_are_preselected_and_named_in_the_heading() -> None:
    page = insights_page(hand_built(True, "portal.example.com"), {**RANGE, "format": "html", **FILTERED})
    text = page.decode()
    assert re.search(r"<h1>Portal insights <span class=\"scope\">Signed-in visitors on portal.example.com</span>"
                     r"</h1>", text)
    assert "<title>Portal insights 2031-03-10 to 2031-03-11 · Signed-in visitors on portal.example.com</title>" \
           in text
    assert '<option value="true" selected>Signed in</option>' in text
    assert '<option value="portal.example.com" selected>portal.example.com</option>' in text
    assert '<option value="help.example.com">help.example.com</option>' in text
    # The form sets the filters itself: they are not carried twice; the key is.
    assert 'type="hidden" name="signed_in"' not in text and 'type="hidden" name="portal"' not in text
    assert '<input type="hidden" name="code" value="k1">' in text
    anonymous = insights_page(hand_built(False), {**RANGE, "signed_in": "false"}).decode()
    assert '<span class="scope">Anonymous visitors</span>' in anonymous
    assert '<option value="false" selected>Anonymous</option>' in anonymous
    everyone = insights_page(hand_built(), {**RANGE}).decode()
    assert 'class="scope"' not in everyone
    assert '<option value="" selected>All visitors</option>' in everyone
    assert '<option value="" selected>All portals</option>' in everyone
    readable(Page(page).text)


def test_search_page_without_the_lists_shows_what_it_did_before() -> None:
    lists = [table.key for table in SEARCH_TABLES.values()]
    older = {name: value for name, value in report(RANGE["from"], RANGE["to"], []).items() if name not in lists}
    page = insights_page(older, {**RANGE})
    assert "<section" not in page.decode() and page.decode().count("Download as CSV") == 3


# --- the drill-down ----------------------------------------------------------------------------------

def behind_document(**extra: Any) -> dict[str, Any]:
    return {**RANGE, "search": "vpn", "case_count": 1, "sessions": 6, "sessions_followed_by_case": 1,
            "sessions_without_case": 5, "cases": [{"case_id": "c1", "ticket": "CAS-01", "title": "VPN down",
                                                   "day": "2031-03-10"}],
            "trend": [{"day": "2031-03-10", "searches": 4}, {"day": "2031-03-11", "searches": 2}],
            "refined_to": [{"to": "vpn client", "count": 3}, {"to": XSS, "count": 1}],
            "clicked": [{"article": "KA-01024", "title": "Set up the VPN client", "count": 3, "mean_position": 1.3333},
                        {"url": "https://portal.example.com/contact", "title": None, "count": 1, "mean_position": 4.0},
                        {"url": "javascript:alert(1)", "title": "Hostile", "count": 1, "mean_position": None}],
            **extra}


def test_search_page_drill_down_shows_the_trend_the_refinements_and_the_clicked_results() -> None:
    page = behind_page(behind_document(), {"code": "k1"}, follow_days=7)
    text = page.decode()
    chart = re.search(r'(?s)<figure class="trend behind-trend">.*?</figure>', text)
    assert chart
    assert re.findall(r'<circle class="day" cx="([\d.]+)" cy="([\d.]+)"', chart.group(0)) == [
        ("6.0", "6.0"), ("314.0", "45.0")]  # the highest day at the top, a point per day
    assert "<title>2031-03-11: 2</title>" in chart.group(0) and "6 searches in these days" in chart.group(0)
    assert "<td>2031-03-10</td><td class=\"num\">4</td>" in chart.group(0)
    found = links(text)
    kept = {**RANGE, "format": "html", "code": "k1"}
    assert query(found["vpn client"]) == {**kept, "search": "vpn client"}
    assert query(found[XSS]) == {**kept, "search": XSS}
    assert "vpn client</a> · 3 times" in text and "</a> · 1 time</li>" in text
    assert query(found["Set up the VPN client"]) == {**kept, "article": "KA-01024"}
    assert found["https://portal.example.com/contact"] == "https://portal.example.com/contact"
    assert "Hostile" not in found and "javascript:" not in text  # no link but a web address
    clicked = re.search(r'(?s)<table class="clicked">.*?</table>', text).group(0)  # type: ignore[union-attr]
    assert re.findall(r'<td class="num">([^<]*)</td>', clicked) == ["3", "1.3", "1", "4.0", "1", "–"]
    # The cases stay the first links of the page's tables (the dashboard test opens the first case).
    assert text.index("CAS-01") < text.index("Refined to") < text.index("Clicked results")
    readable(Page(page).text)


def test_search_page_drill_down_keeps_the_filters_it_was_asked_with() -> None:
    page = behind_page(behind_document(filters={"signed_in": False, "portal": "help.example.com"}), {"code": "k1"})
    found = links(page.decode())
    assert query(found["Back to the insights of these days"]) == {
        **RANGE, "format": "html", "signed_in": "false", "portal": "help.example.com", "code": "k1"}
    assert query(found["vpn client"])["signed_in"] == "false"
    # An article's drill-down (or one from before these lists) shows none of them.
    article = behind_page({**RANGE, "article": "KA-01024", "case_count": 0, "sessions": 0,
                           "sessions_followed_by_case": 0, "sessions_without_case": 0, "cases": []}, {}).decode()
    assert "Refined to" not in article and "Clicked results" not in article and "<svg" not in article


# --- CSV --------------------------------------------------------------------------------------------

FIELDS = {
    "search-terms": ["term", "searches", "sessions", "with_result_count", "zero_result_rate",
                     "zero_result_rate_too_few", "click_through_rate", "click_through_rate_too_few",
                     "mean_click_position", "refinement_rate", "refinement_rate_too_few", "exit_rate",
                     "exit_rate_too_few", "cases_after"],
    "top-articles": ["article", "title", "url", "views", "sessions", "from_search", "cases_after",
                     "sessions_followed", "failed_to_deflect_rate", "failed_to_deflect_rate_too_few"],
    "refinements": ["from", "to", "count"],
    "content-gaps": ["term", "forms", "searches", "sessions", "cases_after"],
}


def csv_rows(name: str, body: dict[str, Any]) -> list[list[str]]:
    key, header, row = CSV_TABLES[name]
    data = spreadsheet.table(header, (row(item) for item in body[key]))
    assert data.startswith(spreadsheet.BOM.encode())
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


@pytest.mark.parametrize("name", list(FIELDS))
def test_search_page_each_csv_table_has_the_json_field_names_and_neutralises_formulas(name: str) -> None:
    body = hand_built()
    hostile = {"search-terms": ("search_terms", "term"), "top-articles": ("top_articles", "title"),
               "refinements": ("refinements", "to"), "content-gaps": ("content_gaps", "term")}[name]
    body[hostile[0]][0][hostile[1]] = CMD
    rows = csv_rows(name, body)
    assert rows[0] == FIELDS[name]
    assert list(rows[0]) == list(body[CSV_TABLES[name][0]][0])  # the JSON's own fields, in its order
    assert len(rows) == 1 + len(body[CSV_TABLES[name][0]])
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first[hostile[1]] == "'" + CMD  # a spreadsheet shows it as text, never runs it
    assert all(not spreadsheet.runs(value) for row in rows for value in row)


def test_search_page_csv_values_read_as_the_json_has_them() -> None:
    terms = csv_rows("search-terms", hand_built())
    vpn = dict(zip(terms[0], terms[1], strict=True))
    assert (vpn["zero_result_rate"], vpn["zero_result_rate_too_few"], vpn["mean_click_position"]) == (
        "0.25", "false", "1.5")
    printer = dict(zip(terms[0], terms[3], strict=True))
    assert printer["zero_result_rate"] == ""  # null
    assert dict(zip(terms[0], terms[4], strict=True))["exit_rate_too_few"] == "true"
    gaps = csv_rows("content-gaps", hand_built())
    assert gaps[1] == ["reset password", "Reset password; reset  password", "4", "4", "5"]
    assert csv_rows("refinements", hand_built())[2] == ["printer", XSS, "2"]


# --- in Chromium -------------------------------------------------------------------------------------

class Dashboard(BaseHTTPRequestHandler):
    """The page as the route answers it: rendered per request from the hand-built report with the
    filters asked for, a bad sort answered 400 with the form, the page's Content-Security-Policy."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        params = {name: values[-1] for name, values in parse_qs(urlsplit(self.path).query,
                                                                keep_blank_values=True).items()}
        signed_in = {"true": True, "false": False}.get(params.get("signed_in", ""))
        try:
            sort_of(params)
            status, body = 200, insights_page(hand_built(signed_in, params.get("portal") or None), params,
                                              follow_days=7)
        except Problem as problem:
            status, body = problem.status, insights_page(None, params, problem)
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Security-Policy", CSP)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def dashboard() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Dashboard)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/api/insights"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_search_page_in_chromium_sorts_and_filters_by_links_and_the_form(
        browser: Any, dashboard: str, tmp_path: Path) -> None:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    response = page.goto(f"{dashboard}?from=2031-03-10&to=2031-03-11&format=html&code=k1")
    assert response.status == 200
    assert page.locator("main section h2").all_inner_texts() == ["Top searches", "Top articles", "Refinements",
                                                                 "Content gaps"]
    terms = page.locator("#search-terms tbody tr td:first-child")
    assert terms.all_inner_texts() == ["vpn", CMD, "printer", "reset password"]
    assert page.locator("#search-terms th[aria-sort]").all_inner_texts() == ["Times searched"]
    # Sort by a text column: a link, no script.
    with page.expect_navigation():
        page.click("#search-terms th >> text=Search")
    asked = query(page.url)
    assert (asked["sort_terms"], asked["code"], asked["from"], asked["to"]) == ("term", "k1", *RANGE.values())
    assert terms.all_inner_texts() == [CMD, "printer", "reset password", "vpn"]
    assert page.locator("#search-terms th[aria-sort=ascending]").inner_text().startswith("Search")
    # ... then by a number: highest first; the other table's order kept.
    with page.expect_navigation():
        page.click("#search-terms th >> text=Cases after it")
    assert terms.all_inner_texts() == ["reset password", "vpn", "printer", CMD]
    with page.expect_navigation():
        page.click("#top-articles th >> text=Visits followed by a case")
    assert query(page.url)["sort_terms"] == "cases_after" and query(page.url)["sort_articles"] == "sessions_followed"
    assert page.locator("#top-articles tbody tr td:nth-child(6)").all_inner_texts() == ["8", "3", "1"]
    # Filter: anonymous visitors on one portal, through the form; the sorts and the key kept.
    page.select_option("select[name=signed_in]", "false")
    page.select_option("select[name=portal]", "help.example.com")
    with page.expect_navigation():
        page.click("form.filters button")
    asked = query(page.url)
    assert {k: asked[k] for k in ("signed_in", "portal", "code", "sort_terms", "from")} == {
        "signed_in": "false", "portal": "help.example.com", "code": "k1", "sort_terms": "cases_after",
        "from": "2031-03-10"}
    assert page.inner_text("h1") == "Portal insights\nAnonymous visitors on help.example.com"
    assert page.locator("select[name=signed_in]").input_value() == "false"
    assert page.locator("select[name=portal]").input_value() == "help.example.com"
    assert terms.all_inner_texts() == ["reset password", "vpn", "printer", CMD]
    # A term opens its drill-down with the range, the filters and the key.
    href = page.locator("#search-terms tbody a").first.get_attribute("href")
    assert query(href) == {**RANGE, "format": "html", "signed_in": "false",
                                                      "portal": "help.example.com", "code": "k1",
                                                      "search": "reset password"}
    page.screenshot(path=str(tmp_path / "search-page.png"), full_page=True)
    no_overflow(page)
    assert XSS in page.inner_text("#refinements") and page.locator("main img, main script").count() == 0
    # A bad sort: 400, the form again with the error, "Show" without it.
    response = page.goto(f"{dashboard}?from=2031-03-10&to=2031-03-11&format=html&code=k1&sort_gaps=bogus")
    assert response.status == 400
    assert "sort_gaps: must be one of term, forms, searches, sessions, cases_after." in page.inner_text(
        "p.error")
    with page.expect_navigation():
        page.click("form.filters button")
    assert "sort_gaps" not in query(page.url) and query(page.url)["code"] == "k1"
    assert page.locator("main section").count() == 4
    assert dialogs == []
    assert errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]  # no CSP
    context.close()
