"""The HTML reports in real headless Chromium, served by the runner: the case report, the contact
timeline and the insights dashboard — one mark per event, nothing overflowing at 1280×800, and
visitors' text (hostile search terms included) shown as text, never run as markup."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from dci.pages import LOCAL_TIME_SCRIPT
from tests.conftest import Store, running_app
from tests.test_beacon import CHROMIUM, browser  # noqa: F401  (the module's Chromium fixture)
from tests.test_insights import C1, C2, Scene, article, at, kb, search

XSS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
                                reason="Chromium is not installed (make test installs it)")


@pytest.fixture
def server(store: Store) -> Iterator[str]:
    with running_app() as url:
        yield f"{url}/api"


@pytest.fixture
def world(store: Store) -> dict[str, Any]:
    scene = Scene(store)
    scene.browse("visitor-aaaa", [(at(0, 9), "search", search(XSS[0], 0)),
                                  (at(0, 9, 2), "search", search(XSS[1], 3)),
                                  (at(0, 9, 3), "search_click", {"query": XSS[1], "position": 2,
                                                                 "target": kb("KA-00001")}),
                                  (at(0, 9, 4), "page_view", article("KA-00001") | {"title": XSS[1]}),
                                  (at(0, 9, 9), "engagement", {"engaged_ms": 300_000, "scroll": 80,
                                                               "url": kb("KA-00001")}),
                                  (at(0, 9, 12), "case_form", {})], contact=C1)
    scene.browse("visitor-a2a2", [(at(-1, 20), "page_view", article("KA-00002")),
                                  (at(-1, 20, 30), "search", search("vpn " * 40, 12))], contact=C1)
    scene.browse("visitor-dddd", [(at(0, 15), "search", search("printer", 0))], contact=C2)
    case = scene.case(C1, at(0, 10), "CAS-01234-X1Y2Z3")
    scene.case(C2, at(1, 9), "CAS-2")
    return {"case": case, "timeline": scene.cases.timeline(case)["document"]}


def open_page(browser: Any, url: str, tmp_path: Path, name: str) -> tuple[Any, Any, list[str]]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    response = page.goto(url)
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    assert response.status == 200
    return context, page, dialogs


def no_overflow(page: Any) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"the page is {widths[0]} px wide in a {widths[1]} px window"
    wide = page.evaluate("""[...document.querySelectorAll('main *')].filter(e => {
        const r = e.getBoundingClientRect(); return r.right > document.documentElement.clientWidth + 1;
      }).map(e => e.tagName + '.' + e.className)""")
    assert wide == []


def hostile_text_is_text(page: Any) -> None:
    # One script: the page's own, which shows times in the reader's zone (allowed by its CSP hash).
    assert page.evaluate("[...document.scripts].map(s => s.textContent)") == [LOCAL_TIME_SCRIPT]
    assert page.locator("main img").count() == 0
    text = page.inner_text("main")
    for payload in XSS:
        assert payload in text


def test_case_report_shows_one_row_per_step_and_escapes_what_visitors_typed(
        browser: Any, server: str, world: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    context, page, dialogs = open_page(browser, f"{server}/cases/{world['case']}/timeline?format=html", tmp_path,
                                       "case")
    assert len(world["timeline"]["items"]) == 8
    # Seven things done (the engagement is its page view's time) and a sign-in on each browser.
    texts = page.locator("main table.steps tbody tr td:nth-child(3)").all_inner_texts()
    assert texts == ["Signed in", 'Read "Article KA-00002" (KA-00002)', 'Searched "' + "vpn " * 40 + '" – 12 results',
                     "Signed in", f'Searched "{XSS[0]}" – no results', f'Searched "{XSS[1]}" – 3 results',
                     f'Opened search result #2: "{XSS[1]}" (KA-00001)',
                     f'Read "{XSS[1]}" (KA-00001) (5 min on the page, scrolled 80 %)', "Opened the case form"]
    assert page.locator("svg.timeline circle.mark").count() == len(texts)
    assert page.locator("svg.timeline circle.mark.zero").count() == 1
    assert page.locator("tr.zero").count() == 1
    assert page.locator("svg.timeline .case-line").count() == 1
    assert page.locator("svg.timeline rect.band").count() == len(world["timeline"]["sessions"]) == 2
    assert page.inner_text("h1") == "Case CAS-01234-X1Y2Z3: Help"
    assert page.inner_text(".summary") == world["timeline"]["summary"]["sentence"]
    # The key steps, in time order, each a link to its row; the search that found nothing flagged.
    keys = page.locator("ol.key-steps li a")
    assert keys.all_inner_texts() == ['Read "Article KA-00002" (KA-00002)',
                                      'Searched "' + "vpn " * 40 + '" – 12 results',
                                      f'Searched "{XSS[0]}"', f'Searched "{XSS[1]}" – 3 results',
                                      f'Opened search result #2: "{XSS[1]}" (KA-00001)', texts[7], texts[8]]
    assert page.locator("ol.key-steps li .flag").all_inner_texts() == ["found nothing"]
    assert "found nothing" in page.locator("ol.key-steps li").nth(2).inner_text()
    for index, key in enumerate(keys.all()):
        row = page.locator(key.get_attribute("href"))  # (#step-n)
        assert row.count() == 1 and row.evaluate("e => e.tagName") == "TR"
        assert row.locator("td:nth-child(3)").inner_text() == [texts[1], texts[2], *texts[4:]][index]
    keys.nth(2).click()
    assert page.url.endswith("#step-5") and page.locator("tr:target td:nth-child(3)").inner_text() == texts[4]
    assert "Created" in page.inner_text(".meta") and "Opened on the portal" in page.inner_text(".meta")
    assert "version" not in page.inner_text(".meta").lower()
    titles = page.locator("svg.timeline circle.mark title").all_text_contents()
    assert titles[1] == '14 h before the case: Read "Article KA-00002" (KA-00002)'
    no_overflow(page)
    hostile_text_is_text(page)
    assert dialogs == []
    context.close()


def test_case_report_prints_without_the_screen_only_parts(
        browser: Any, server: str, world: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{server}/cases/{world['case']}/timeline?format=html")
    pdf = page.pdf(format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 5_000
    context.close()


def test_contact_timeline_marks_events_and_cases(
        browser: Any, server: str, world: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    url = f"{server}/contacts/{C1}/timeline?format=html&from=2031-03-09&to=2031-03-11"
    context, page, dialogs = open_page(browser, url, tmp_path, "contact")
    assert page.locator("svg.timeline circle.mark").count() == 9  # as on the case report: 7 steps, 2 sign-ins
    assert page.locator("svg.timeline .case-line").count() == 1
    assert page.locator("tr.case-row").count() == 1
    no_overflow(page)
    hostile_text_is_text(page)
    assert dialogs == []
    filtered, page2, _ = open_page(browser, url + "&types=search", tmp_path, "contact-searches")
    assert page2.locator("svg.timeline circle.mark").count() == 3
    filtered.close()
    # The contact's case opens from its row, and links back to the contact, keeping the function key.
    with page.expect_navigation():
        page.click("tr.case-row a")
    assert page.url.endswith(f"/cases/{world['case']}/timeline?format=html")
    assert page.inner_text("h1") == "Case CAS-01234-X1Y2Z3: Help"
    keyed, page3, _ = open_page(browser, f"{server}/cases/{world['case']}/timeline?format=html&code=k1", tmp_path,
                                "case-keyed")
    with page3.expect_navigation():
        page3.click(".meta a")
    assert page3.url.endswith(f"/contacts/{C1}/timeline?format=html&from=2031-02-08&to=2031-03-10&code=k1")
    assert page3.locator("ul.cases a").count() == 1
    keyed.close()
    context.close()


def test_insights_dashboard(browser: Any, server: str, world: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    context, page, dialogs = open_page(browser, f"{server}/insights?format=html&from=2031-03-09&to=2031-03-11",
                                       tmp_path, "insights")
    assert page.inner_text(".kpi >> nth=0").startswith("2")  # cases created
    tables = page.locator("main > table")
    assert tables.count() == 3
    # Day by day: a chart per figure, a point per day of the range, a table of the values behind it.
    assert page.locator("figure.trend").count() == 5
    searches = page.locator("figure.trend").first
    assert searches.locator("circle.day").count() == 3
    assert searches.locator("details table tbody tr").count() == 3
    zero = tables.nth(1).inner_text()
    assert XSS[0] in zero and "printer" in zero
    # Articles by title, linked to the portal; a rate of a handful of reads is "too few", not "100 %".
    articles = tables.nth(2)
    assert articles.locator("a").first.get_attribute("href") == kb("KA-00001")
    assert articles.locator("a").first.inner_text() == XSS[1]
    assert articles.locator("td.rate").first.inner_text() == "too few: 1 of 1 read"
    assert page.locator("a[download]").count() == 3 + 4  # (and one for each search-analytics section)
    # The top search opens what lies behind it: its cases, each opening its report.
    with page.expect_navigation():
        page.locator("main > table >> nth=0").locator("a").first.click()
    assert page.inner_text("h1").startswith("Behind the search")
    assert page.locator("main table tbody tr").count() >= 1
    with page.expect_navigation():
        page.locator("main table tbody a").first.click()
    assert page.inner_text("h1").startswith("Case CAS-")
    no_overflow(page)
    hostile_text_is_text(page)
    assert dialogs == []
    context.close()


def test_insights_form_keeps_the_function_key(browser: Any, server: str, world: dict[str, Any],  # noqa: F811
                                              tmp_path: Path) -> None:
    # In Azure the dashboard is opened with ?code=…: "Show" used to drop it (401).
    context, page, _ = open_page(browser, f"{server}/insights?format=html&code=k1&from=2031-03-09&to=2031-03-11",
                                 tmp_path, "insights-keyed")
    page.fill("input[name=from]", "2031-03-11")
    with page.expect_navigation():
        page.click("form.filters button")
    assert "code=k1" in page.url and "from=2031-03-11" in page.url
    assert page.inner_text(".kpi >> nth=0").startswith("1")  # the case of the 11th only
    context.close()


@pytest.mark.parametrize(("path", "accept", "kind"), [
    ("/insights", "text/html,application/xhtml+xml", "text/html"),
    ("/insights", "application/json", "application/json"),
    ("/insights", None, "application/json"),
    ("/insights?format=json", "text/html", "application/json"),
])
def test_reports_answer_html_to_browsers_and_json_otherwise(server: str, path: str, accept: str | None,
                                                            kind: str) -> None:
    request = urllib.request.Request(server + path, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith(kind)
        if kind == "text/html":
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_html_errors_are_pages_that_name_the_problem(server: str, store: Store) -> None:
    # The dashboard answers a bad range with its form again, the error beside the field, the key kept.
    request = urllib.request.Request(f"{server}/insights?from=2031-03-12&to=2031-03-10&code=k1",
                                     headers={"Accept": "text/html"})
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as error:
        assert error.code == 400
        assert error.headers["Content-Type"].startswith("text/html")
        page = error.read().decode()
        assert '<span class="error" id="from-error">must not be after to</span>' in page
        assert 'name="from" value="2031-03-12" aria-invalid="true"' in page
        assert '<input type="hidden" name="code" value="k1">' in page
    else:
        pytest.fail("a bad range was answered 2xx")
    request = urllib.request.Request(f"{server}/contacts/not-a-contact/timeline", headers={"Accept": "text/html"})
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as error:
        assert (error.code, error.headers["Content-Type"].split(";")[0]) == (400, "text/html")
    else:
        pytest.fail("a bad contact id was answered 2xx")


def test_case_report_of_a_settling_case_says_so(server: str, store: Store) -> None:
    import uuid

    from dci.cases import take
    from dci.clock import ms_of
    from dci.settings import get_settings
    from dci.storage.cases import CaseStore

    case_id = str(uuid.uuid4())
    created = ms_of(datetime.now(timezone.utc)) - 20_000
    take(CaseStore(store.tables), {"case_id": case_id, "created_ms": created, "ticket": "CAS-3", "contact": C1,
                                   "source": "portal"}, lambda _: None)
    # Opened by its ticket number, as an agent has it; answered with the time left to settle.
    request = urllib.request.Request(f"{server}/cases/cas-3/timeline", headers={"Accept": "text/html"})
    with urllib.request.urlopen(request, timeout=10) as response:
        left = (created + get_settings().settle_ms - ms_of(datetime.now(timezone.utc))) / 1000
        assert response.status == 202
        assert left - 2 <= int(response.headers["Retry-After"]) <= left + 2
        assert response.headers["Content-Type"].startswith("text/html")
        page = response.read().decode()
        assert "Timeline on its way" in page
        assert f'<meta http-equiv="refresh" content="{response.headers["Retry-After"]}">' in page
