"""The agent's case report: the key steps linked to their rows, the header's words, the previous
case, and a ticket number this app does not know yet (looked up in the local Dataverse)."""

from __future__ import annotations

import html
import json
import logging
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from dci.clock import ms_of
from dci.dataverse.client import Dataverse, TicketedCase, TokenSource, session
from dci.pages import LANE_NAMES, case_link, case_page, contact_page, layout
from dci.problems import Problem
from dci.runner.dataverse import LocalDataverse
from dci.schedules import WEEK_SECONDS, longest_gap_seconds
from dci.settings import Settings
from dci.timeline import assemble
from tests.conftest import PORTAL, STORAGE, Store

M = 60_000
GAP = 30 * M
CREATED = datetime(2026, 11, 28, 10, 0, tzinfo=timezone.utc)
CREATED_MS = ms_of(CREATED)
BASE = f"https://{PORTAL}"
KB = f"{BASE}/knowledgebase/article/KA-01023/en-us"
PREVIOUS = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"


def ev(minutes_before: float, kind: str, **fields: Any) -> dict[str, Any]:
    return {"id": f"{kind}-{minutes_before}", "type": kind, "ts": CREATED_MS - int(minutes_before * M),
            "visitor": "laptop", "attribution": "verified", **fields}


JOURNEY = [
    ev(50, "page_view", url=f"{BASE}/", title="Home"), ev(49.9, "page_view", url=f"{BASE}/products/", title="Products"),
    ev(49.8, "page_view", url=f"{BASE}/contact-us/", title="Contact us"), ev(49.7, "page_view", url=f"{BASE}/",
                                                                               title="Home"),
    ev(40, "search", url=f"{BASE}/search/?q=reset+password", query="reset password", results=0),
    ev(38, "search", url=f"{BASE}/search/?q=password", query="password", results=4),
    ev(37, "search_click", query="password", position=2, target=KB),
    ev(36, "page_view", url=KB, title="Reset your password", article_number="KA-01023"),
    ev(34, "engagement", url=KB, engaged_ms=90_000, scroll=80),
    ev(2, "page_view", url=f"{BASE}/support/create-case/", title="Create a case"),
    ev(2, "case_form", url=f"{BASE}/support/create-case/"),
    ev(0, "case_submitted", url=f"{BASE}/support/case-created/", ticket="CAS-01234-X1Y2Z3"),
]


def document(events: list[dict[str, Any]], source: str = "portal", version: int = 1,
             previous: dict[str, Any] | None = None) -> dict[str, Any]:
    case = {"case_id": "c1", "ticket": "CAS-01234-X1Y2Z3", "title": "Cannot sign in", "contact": "a",
            "created_ms": CREATED_MS, "source": source}
    doc = assemble(case, events, GAP) | {"version": version}
    if previous:
        doc["previous_case"] = previous  # (as the assembler stores it: built by hand here)
    return doc


def text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def key_links(page: str) -> list[tuple[str, str]]:
    (listed,) = re.findall(r'<ol class="key-steps"[^>]*>(.*?)</ol>', page, re.S)
    return [(href, text_of(text)) for href, text in re.findall(r'<a href="#(step-\d+)">(.*?)</a>', listed)]


def row(page: str, anchor: str) -> str:
    (found,) = re.findall(rf'<tr class="([^"]*)" id="{anchor}">(.*?)</tr>', page, re.S)
    return found[0] + " | " + text_of(re.findall(r"<td>(.*?)</td>", found[1], re.S)[0])


# --- the page --------------------------------------------------------------------------------------

def test_case_report_key_steps_are_in_time_order_and_each_opens_its_row() -> None:
    page = case_page(document(JOURNEY), GAP).decode()
    assert key_links(page) == [
        ("step-3", 'Searched "reset password"'), ("step-4", 'Searched "password" – 4 results'),
        ("step-5", 'Opened search result #2: "Reset your password" (KA-01023)'),
        ("step-6", 'Read "Reset your password" (KA-01023) (1 min on the page, scrolled 80 %)'),
        ("step-7", "Opened the case form"), ("step-8", "Submitted case CAS-01234-X1Y2Z3")]
    assert row(page, "step-3") == 'search zero | Searched "reset password" – no results'
    assert row(page, "step-6") == 'view | Read "Reset your password" (KA-01023) (1 min on the page, scrolled 80 %)'
    assert row(page, "step-8") == "case_submitted | Submitted case CAS-01234-X1Y2Z3"
    # Only the search that found nothing is flagged, once, and nothing says it twice.
    (listed,) = re.findall(r'<ol class="key-steps"[^>]*>(.*?)</ol>', page, re.S)
    flagged = [text_of(li) for li in re.findall(r"<li>(.*?)</li>", listed, re.S) if "flag" in li]
    assert flagged == ['40 min before Searched "reset password" found nothing']
    assert page.count('class="flag"') == 1
    assert "no results found nothing" not in page and "(s)" not in text_of(page)
    # The sentence stays, above the list.
    assert page.index('<p class="summary">First seen on the portal 50 min before this case') \
        < page.index('<ol class="key-steps"')


def test_case_report_folds_browsing_into_one_row_on_the_pages_lane() -> None:
    page = case_page(document(JOURNEY), GAP).decode()
    assert row(page, "step-2") == "browse | Browsed 4 pages: Home, Products, Contact us"
    assert page.count("<tr class=") == 8  # sign-in, browse, 2 searches, click, article, form, submission
    assert page.count('<circle class="mark browse view"') == 1
    (mark,) = layout([{"ms": 0, "kind": "browse", "label": "Browsed"}], GAP)["marks"]
    lanes = layout([], GAP)["lanes"]
    assert mark["y"] == lanes[LANE_NAMES.index("Pages")]["y"]


def test_case_report_key_steps_list_the_latest_and_count_the_rest() -> None:
    events = [ev(100 - i, "search", url=f"{BASE}/search/?q=t{i}", query=f"t{i}", results=1) for i in range(20)]
    page = case_page(document(events), GAP).decode()
    links = key_links(page)
    assert [text for _, text in links] == [f'Searched "t{i}" – 1 result' for i in range(8, 20)]
    assert links[0][0] == "step-10"  # (a sign-in row, then t0 … t7 before it)
    assert "8 earlier key steps in the table below" in page


@pytest.mark.parametrize(("source", "words"), [("portal", "Opened on the portal"), ("poll", "Opened in Dataverse"),
                                               ("webhook", "Opened in Dataverse")])
def test_case_report_says_where_the_case_was_opened(source: str, words: str) -> None:
    page = case_page(document(JOURNEY, source=source), GAP).decode()
    (meta,) = re.findall(r'<dl class="meta">(.*?)</dl>', page, re.S)
    assert words in text_of(meta) and "Opened in the" not in page and "case form" not in text_of(meta)


def test_case_report_says_updated_only_after_late_activity() -> None:
    first, later = (case_page(document(JOURNEY, version=v), GAP).decode() for v in (1, 3))
    assert "version" not in text_of(first).lower() and "Updated after late activity" not in first
    assert "Updated after late activity" in later and "version" not in text_of(later).lower()


def test_case_report_names_the_previous_case_and_links_to_its_report() -> None:
    previous = {"case_id": PREVIOUS, "ticket": "CAS-01001-X", "title": "VPN <b>drops</b>",
                "created": "2026-11-12T09:12:00.000Z"}
    page = case_page(document(JOURNEY, previous=previous), GAP, {"code": "k1"}).decode()
    (line,) = re.findall(r'<p class="previous">(.*?)</p>', page, re.S)
    assert text_of(line) == "Previous case: CAS-01001-X: VPN <b>drops</b> (12 Nov 2026, 09:12 UTC) — its journey is " \
                            "on its own report."
    assert f'<a href="{html.escape(case_link(PREVIOUS, {"code": "k1"}))}">CAS-01001-X</a>' in line
    assert "code=k1" in case_link(PREVIOUS, {"code": "k1"}) and "<b>" not in line  # (escaped, as text)
    assert page.index('<p class="previous">') < page.index('<p class="summary">')
    assert "No portal activity" not in page
    # Without a ticket number, the previous case is named by its id.
    page = case_page(document(JOURNEY, previous={"case_id": PREVIOUS, "ticket": None, "title": None,
                                                 "created": "2026-11-12T09:12:00.000Z"}), GAP).decode()
    (line,) = re.findall(r'<p class="previous">(.*?)</p>', page, re.S)
    assert text_of(line).startswith(f"Previous case: {PREVIOUS} (12 Nov 2026")


def test_case_report_without_steps_says_the_earlier_activity_is_on_the_previous_case() -> None:
    previous = {"case_id": PREVIOUS, "ticket": "CAS-01001-X", "title": None, "created": "2026-11-12T09:12:00.000Z"}
    page = case_page(document([], previous=previous), GAP, {"code": "k1"}).decode()
    (empty,) = re.findall(r'<p class="empty">(.*?)</p>', page, re.S)
    assert text_of(empty) == ("No portal activity was recorded between the previous case and this one. The activity "
                              "before the previous case is on the report of case CAS-01001-X.")
    assert html.escape(case_link(PREVIOUS, {"code": "k1"})) in empty
    assert '<ol class="key-steps"' not in page
    alone = case_page(document([]), GAP).decode()
    assert text_of(re.findall(r'<p class="empty">(.*?)</p>', alone, re.S)[0]) == \
        "No portal activity was recorded before this case."
    assert 'class="previous"' not in alone and "previous case" not in text_of(alone)


def test_contact_page_says_a_search_found_nothing_once_and_folds_browsing() -> None:
    items = [{**e, "ms": e["ts"], "ts": None} for e in JOURNEY]
    report = {"contact": "a", "from": "2026-11-27T00:00:00.000Z", "to": "2026-11-29T00:00:00.000Z", "types": [],
              "interactions": items, "cases": []}
    page = contact_page(report, GAP).decode()
    cells = [text_of(cell) for cell in re.findall(r'<tr class="[^"]*"><td class="when">.*?</td><td>(.*?)</td>', page)]
    assert cells[:3] == ["Signed in", "Browsed 4 pages: Home, Products, Contact us",
                         'Searched "reset password" – no results']
    assert "no results found nothing" not in text_of(page) and "(s)" not in text_of(page)


# --- the poll schedule ----------------------------------------------------------------------------

@pytest.mark.parametrize(("schedule", "seconds"), [
    ("0 */5 * * * *", 300), ("*/2 * * * * *", 2), ("*/5 * * * * *", 5), ("0 0 * * * *", 3_600),
    ("0 0,30 9-17 * * *", 15 * 3_600 + 30 * 60),  # 17:30 to 09:00 the next day
    ("5/15 * * * * *", 15), ("0 0-30/10 * * * *", 30 * 60),
    ("0 0 0 * * MON", WEEK_SECONDS), ("0 */5 * 1 * *", WEEK_SECONDS), ("0 */0 * * * *", WEEK_SECONDS),
    ("0 70 * * * *", WEEK_SECONDS), ("not a schedule", WEEK_SECONDS),
])
def test_case_report_poll_schedule_longest_gap(schedule: str, seconds: int) -> None:
    assert longest_gap_seconds(schedule) == seconds


# --- a ticket number not known here yet ----------------------------------------------------------

def settings_for(fake: LocalDataverse | None, **values: Any) -> Settings:
    dataverse = {"DATAVERSE_URL": fake.url, "DATAVERSE_TOKEN": "test-token"} if fake else {}
    return Settings(AzureWebJobsStorage=STORAGE, PORTAL_ISSUERS=PORTAL, CASE_SCHEDULE="0 */5 * * * *",
                    CASE_SETTLE_SECONDS=60, **dataverse, **values)


def ask(store: Store, settings: Settings, key: str, html_page: bool, after: timedelta):
    from dci.storage.cases import CaseStore
    from dci.views import case_timeline

    return case_timeline(CaseStore(store.tables), key, html_page, settings, CREATED + after)


def test_case_report_of_a_ticket_dataverse_just_created_waits_then_says_no_journey(
        store: Store, fake: LocalDataverse) -> None:
    settings = settings_for(fake)  # due: 60 s settle + 300 s between polls + 120 s
    case_id = fake.add_incident(CREATED, contact=str(uuid.uuid4()), ticket="CAS-02002-NEW1")
    reply = ask(store, settings, "cas-02002-new1", True, timedelta(seconds=30))
    assert (reply.status, reply.headers["Retry-After"]) == (202, "30")
    page = reply.body.decode()
    assert '<meta http-equiv="refresh" content="30">' in page and "Case on its way" in page
    assert "Dataverse created case cas-02002-new1 30 s ago (28 Nov 2026, 10:00 UTC)" in page
    (method, path), = fake.requests
    assert method == "GET" and "$filter=ticketnumber%20eq%20'cas-02002-new1'" in path
    assert path.endswith("&$select=incidentid,createdon,ticketnumber")
    reply = ask(store, settings, "CAS-02002-NEW1", False, timedelta(seconds=479))
    assert (reply.status, reply.headers["Retry-After"], reply.content_type) == (202, "5", "application/json")
    answer = json.loads(reply.body)
    assert (answer["status"], answer["ticket"], answer["ready_in_seconds"]) == ("pending", "CAS-02002-NEW1", 5)
    assert answer["created"] == "2026-11-28T10:00:00.000Z"
    with pytest.raises(Problem) as late:
        ask(store, settings, "CAS-02002-NEW1", True, timedelta(seconds=481))
    assert late.value.status == 404 and late.value.kind == "unknown-case"
    assert late.value.detail.startswith("No journey was found for ticket CAS-02002-NEW1: Dataverse created this "
                                        "case on 28 Nov 2026, 10:00 UTC, but this app never took it up.")
    # Once the poller has taken it, the store answers: the settling page, and no more Dataverse look-ups.
    from dci.cases import take
    from dci.storage.cases import CaseStore

    asked = len(fake.requests)
    take(CaseStore(store.tables), {"case_id": case_id, "created_ms": CREATED_MS, "ticket": "CAS-02002-NEW1",
                                   "contact": str(uuid.uuid4()), "source": "poll"}, lambda _: None)
    reply = ask(store, settings, "CAS-02002-NEW1", True, timedelta(seconds=481))
    assert reply.status == 202 and "Timeline on its way" in reply.body.decode()
    assert len(fake.requests) == asked


def test_case_report_of_a_ticket_dataverse_does_not_have_is_404(store: Store, fake: LocalDataverse) -> None:
    fake.add_incident(CREATED, contact=str(uuid.uuid4()), ticket="CAS-02002-OTHER")
    with pytest.raises(Problem) as unknown:
        ask(store, settings_for(fake), "CAS-99999-NOPE", True, timedelta(seconds=30))
    assert (unknown.value.status, unknown.value.kind) == (404, "unknown-case")
    assert unknown.value.detail == "No case with ticket number CAS-99999-NOPE is known here or in Dataverse."
    assert len(fake.requests) == 1


def test_case_report_when_dataverse_fails_says_the_ticket_could_not_be_checked(
        store: Store, fake: LocalDataverse, caplog: pytest.LogCaptureFixture) -> None:
    fake.add_incident(CREATED, contact=str(uuid.uuid4()), ticket="CAS-02002-NEW1")
    fake.fail(500)
    with caplog.at_level(logging.WARNING, logger="dci.tickets"), pytest.raises(Problem) as failed:
        ask(store, settings_for(fake), "CAS-02002-NEW1", False, timedelta(seconds=30))
    assert (failed.value.status, failed.value.kind) == (404, "unknown-case")
    assert "Dataverse could not be asked whether it has one" in failed.value.detail
    (record,) = [r for r in caplog.records if r.name == "dci.tickets"]
    assert "HTTP 500" in record.getMessage() and "CAS-02002" not in record.getMessage().upper()


def test_case_report_without_dataverse_answers_an_unknown_ticket_as_before(store: Store, fake: LocalDataverse) -> None:
    fake.add_incident(CREATED, contact=str(uuid.uuid4()), ticket="CAS-02002-NEW1")
    with pytest.raises(Problem) as unknown:
        ask(store, settings_for(None), "CAS-02002-NEW1", True, timedelta(seconds=30))
    assert unknown.value.detail == "No case with ticket number CAS-02002-NEW1 is known here (yet)."
    assert fake.requests == []


def test_case_report_route_answers_a_new_ticket_202_and_an_old_one_404_never_500(
        store: Store, fake: LocalDataverse, monkeypatch: pytest.MonkeyPatch) -> None:
    import azure.functions as func

    import function_app
    from dci.settings import get_settings

    now = datetime.now(timezone.utc)
    fake.add_incident(now - timedelta(seconds=10), contact=str(uuid.uuid4()), ticket="CAS-03003-NEW")
    fake.add_incident(now - timedelta(days=2), contact=str(uuid.uuid4()), ticket="CAS-03003-OLD")
    monkeypatch.setenv("DATAVERSE_URL", fake.url)
    monkeypatch.setenv("DATAVERSE_TOKEN", "test-token")
    get_settings.cache_clear()

    def route(ticket: str, params: dict[str, str]) -> func.HttpResponse:
        return function_app.case_timeline(func.HttpRequest(
            "GET", f"http://localhost/api/cases/{ticket}/timeline", body=b"", params=params,
            route_params={"case_id": ticket}, headers={"x-functions-key": "key"}))

    try:
        new = route("CAS-03003-NEW", {"format": "html"})
        assert new.status_code == 202 and new.headers["Content-Type"].startswith("text/html")
        assert f'<meta http-equiv="refresh" content="{new.headers["Retry-After"]}">' in new.get_body().decode()
        old = route("CAS-03003-OLD", {})
        assert old.status_code == 404 and old.headers["Content-Type"] == "application/problem+json"
        assert json.loads(old.get_body())["detail"].startswith("No journey was found for ticket CAS-03003-OLD: ")
        fake.fail(500)
        failed = route("CAS-03003-NEW", {"format": "html"})
        assert failed.status_code == 404 and "could not be asked" in failed.get_body().decode()
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_case_report_dataverse_finds_a_case_by_ticket_quotes_escaped_any_letter_case(fake: LocalDataverse) -> None:
    client = Dataverse(fake.url, TokenSource(fake.url, fixed="test-token"), session(backoff=0.05))
    later = fake.add_incident(CREATED + timedelta(minutes=5), contact="c", ticket="CAS-1'X")
    first = fake.add_incident(CREATED, contact="c", ticket="cas-1'x")
    fake.add_incident(CREATED, contact="c", ticket="CAS-2")
    assert later != first
    assert client.case_with_ticket("CAS-1'X") == TicketedCase(first, "cas-1'x", CREATED_MS)  # the oldest
    assert "ticketnumber%20eq%20'CAS-1''X'" in fake.requests[-1][1]
    assert client.case_with_ticket("CAS-3") is None
    assert client.case_with_ticket("x' or ticketnumber ne 'y") is None  # a quote cannot widen the filter


# --- the demo portal's confirmation page ----------------------------------------------------------

def test_case_report_demo_confirmation_page_shows_makers_the_liquid_for_the_ticket() -> None:
    from dci.runner.portal import DemoPortal

    created: list[str] = []
    portal = DemoPortal(on_case=lambda contact, ticket, title: created.append(ticket))
    status, _, body = portal.handle("GET", "/support/case-created/?title=VPN", {"cookie": "demo_contact=abc"})
    page = body.decode()
    (comment,) = re.findall(r"<!--(.*?)-->", page, re.S)
    assert '<span data-ticket-number>{{ case.ticketnumber }}</span>' in comment
    visible = re.sub(r"<!--.*?-->", "", page, flags=re.S)
    assert status == 200 and f"<span data-ticket-number>{created[0]}</span>" in visible
    assert "{{" not in visible
