"""A customer's second case: each case holds its own journey, names the case before it, and counts
once in the insights. On Azurite, with the local Dataverse (cases polled through its Web API) and
with portal cases (no Dataverse)."""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from dci import assembler
from dci.cases import CaseFollowUp, incident_case, poll, take
from dci.dataverse.client import Dataverse, Incident, TokenSource, session
from dci.insights import report
from dci.linker import link
from dci.runner.dataverse import LocalDataverse
from dci.settings import Settings
from dci.views import case_timeline
from tests.conftest import STORAGE, Store, stores_of
from tests.factories import BASE, encoded, iso, new_id, queued_batch, queued_event

S, M = 1000, 60_000
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
T0_MS = int(T0.timestamp() * 1000)
CONTACT = "6f1c2a4e-0b7d-4c1e-9a55-2f4d8b1e7c30"
BROWSER, PHONE = "browser-1111", "phone-2222"
CONFIRM = f"{BASE}/support/confirmation/"
REPORTS = "https://dci.example.com/api"


def at(minutes: float) -> int:
    return T0_MS + int(minutes * M)


def search(query: str, results: int) -> dict[str, Any]:
    return {"query": query, "results": results, "url": f"{BASE}/search/?q={query.replace(' ', '+')}"}


def read(number: str, title: str) -> dict[str, Any]:
    return {"article": {"number": number, "lang": "en-us"}, "title": title,
            "url": f"{BASE}/knowledgebase/article/{number}/en-us"}


class Portal:
    """One test's storage, `cases` queue and (optionally) Dataverse, with the customer's actions."""

    def __init__(self, store: Store, fake: LocalDataverse | None) -> None:
        self.fake = fake
        self.queue: list[str] = []
        self.stores = stores_of(store, queue=self)
        self.settings = Settings(AzureWebJobsStorage=STORAGE, PORTAL_ISSUERS="portal.example.com",
                                 CASE_SETTLE_SECONDS=60, REPORT_BASE_URL=REPORTS,
                                 **({"DATAVERSE_URL": fake.url} if fake else {}))
        self.dataverse = Dataverse(fake.url, TokenSource(fake.url, fixed="test-token"),
                                   session(backoff=0.05)) if fake else None

    def send(self, text: str, delay_seconds: int = 0) -> None:
        self.queue.append(text)

    def batch(self, visitor: str, events: list[tuple[float, str, dict[str, Any]]], signed_in: bool = True) -> list[str]:
        """Events at minutes after T0 from one browser, linked as the linker does; their ids."""
        queued = [queued_event(at(minutes), kind, **fields) for minutes, kind, fields in events]
        message = queued_batch(queued, visitor=visitor, contact=CONTACT if signed_in else None,
                               received_at=iso(T0 + timedelta(minutes=max(m for m, _, _ in events) + 0.1)))
        link(self.stores.interactions, encoded(message), CaseFollowUp.of(self.settings, self.stores),
             self.stores.insights)
        return [event["id"] for event in queued]

    def submit(self, visitor: str, minutes: float, ticket: str, after_created_s: float = 1.0) -> list[str]:
        """The confirmation page after a case was created at `minutes`: its view and `case_submitted`
        (`after_created_s` later: the page loads after Dataverse made the case), then the time on it."""
        when = minutes + after_created_s / 60
        return self.batch(visitor, [(when, "page_view", {"url": CONFIRM, "title": "Thank you"}),
                                    (when + 0.001, "case_submitted", {"url": CONFIRM, "ticket": ticket}),
                                    (when + 1.5, "engagement", {"url": CONFIRM, "engaged_ms": 90_000})])

    def open_case(self, minutes: float, ticket: str) -> str:
        """A Dataverse case created at `minutes` (whole seconds, as Dataverse keeps them)."""
        assert self.fake is not None
        return self.fake.add_incident(T0 + timedelta(minutes=minutes), contact=CONTACT, ticket=ticket, title=ticket)

    def poll_and_assemble(self, minutes: float) -> list[str]:
        if self.dataverse is not None:
            poll(self.dataverse, self.stores.cases, self.send, at(minutes))
        outcomes = []
        while self.queue:
            text = self.queue.pop(0)
            outcomes.append(assembler.handle(text.encode(), self.stores, self.settings, at(minutes), self.dataverse))
        return outcomes

    def document(self, key: str) -> dict[str, Any]:
        reply = case_timeline(self.stores.cases, key, False, self.settings)
        assert reply.status == 200, reply.body
        return json.loads(reply.body)

    def html(self, key: str) -> str:
        reply = case_timeline(self.stores.cases, key, True, self.settings)
        assert reply.status == 200
        return reply.body.decode()


def two_journeys(portal: Portal, dataverse: bool) -> dict[str, list[str]]:
    """Journey 1 (anonymous, then signed in) ends in CAS-1 at minute 10; journey 2, on another
    device, in CAS-2 at minute 50. Returns each journey's event ids (confirmations included)."""
    ids = {"1": [], "2": []}
    ids["1"] += portal.batch(BROWSER, [(0, "search", search("vpn error 809", 0)),
                                       (2, "page_view", read("KA-01001", "Set up the VPN client"))], signed_in=False)
    ids["1"] += portal.batch(BROWSER, [(5, "page_view", {"url": f"{BASE}/support/", "title": "Support"}),
                                       (6, "case_form", {"url": f"{BASE}/support/create-case/"})])
    if dataverse:
        case_1 = portal.open_case(10, "CAS-1")
        ids["1"] += portal.submit(BROWSER, 10, "CAS-1")
    else:
        ids["1"] += portal.submit(BROWSER, 10, "CAS-1", after_created_s=0)
    ids["2"] += portal.batch(PHONE, [(30, "search", search("printer offline", 3)),
                                     (31, "search_click", {"position": 1, "target": read("KA-02002", "")["url"]}),
                                     (31.2, "page_view", read("KA-02002", "Printer offline")),
                                     (45, "case_form", {"url": f"{BASE}/support/create-case/"})])
    if dataverse:
        case_2 = portal.open_case(50, "CAS-2")
        ids["2"] += portal.submit(PHONE, 50, "CAS-2")
        assert case_1 and case_2
    else:
        ids["2"] += portal.submit(PHONE, 50, "CAS-2", after_created_s=0)
    return ids


@pytest.mark.parametrize("dataverse", [True, False], ids=["dataverse", "portal"])
def test_each_case_holds_its_own_journey_and_names_the_one_before(store: Store, fake: LocalDataverse,
                                                                  dataverse: bool) -> None:
    portal = Portal(store, fake if dataverse else None)
    journeys = two_journeys(portal, dataverse)
    assert set(portal.poll_and_assemble(70)) == {"assembled"}
    first, second = portal.document("CAS-1"), portal.document("CAS-2")

    assert [item["id"] for item in first["items"]] == journeys["1"]  # the confirmation, and the time on it, too
    assert [item["id"] for item in second["items"]] == journeys["2"]
    assert "previous_case" not in first
    assert second["previous_case"] == {"case_id": first["case"]["case_id"], "ticket": "CAS-1",
                                       "title": "CAS-1" if dataverse else None, "created": first["case"]["created"]}
    # "First visit" is measured within the journey: 20 minutes before case 2, not 50.
    assert 20 * M <= second["summary"]["first_touch_before_case_ms"] <= 20 * M + S  # (a portal case: its submission)
    assert "vpn" not in second["summary"]["sentence"] and "printer offline" in second["summary"]["sentence"]
    assert [s["query"] for s in first["summary"]["searches"]] == ["vpn error 809"]

    page = portal.html("CAS-2")
    assert "vpn error 809" not in page and "printer offline" in page
    assert f"cases/{first['case']['case_id']}/timeline" in page  # the previous case, linked

    if dataverse:
        (note,) = portal.fake.notes_for(second["case"]["case_id"])
        text = note["notetext"]
        assert "vpn" not in text and "printer offline" in text
        assert f"Starts after the previous case, CAS-1 of 2026-11-28: {REPORTS}/cases/" \
               f"{first['case']['case_id']}/timeline?format=html" in text
        assert "previous case" not in portal.fake.notes_for(first["case"]["case_id"])[0]["notetext"]

    # The insights count each search and article for the case it came before, once.
    portal.stores.insights.refresh(only=["2026-11-28"])
    figures = report("2026-11-28", "2026-11-28", portal.stores.insights.rollups("2026-11-28", "2026-11-28"))
    assert {row["query"]: row["cases"] for row in figures["top_searches_before_cases"]} == {
        "vpn error 809": 1, "printer offline": 1}
    assert {row["article"]: row["cases_after"] for row in figures["articles"]} == {"KA-01001": 1, "KA-02002": 1}


def test_a_case_assembled_before_the_one_before_it_is_assembled_again(store: Store, fake: LocalDataverse) -> None:
    # The webhook brought case 2 first; case 1 comes from a later poll. Case 2's journey then starts after case 1.
    portal = Portal(store, fake)
    journeys = two_journeys(portal, dataverse=True)
    case_2 = portal.stores.cases.cases_with_ticket("CAS-2") or [
        c["incidentid"] for c in fake.incidents if c["ticketnumber"] == "CAS-2"]
    take(portal.stores.cases, incident_case(Incident(case_2[0], at(50), "CAS-2", "CAS-2", CONTACT), "webhook"),
         portal.send)
    text = portal.queue.pop()
    assert assembler.handle(text.encode(), portal.stores, portal.settings, at(70), portal.dataverse) == "assembled"
    assert len(portal.document("CAS-2")["items"]) == len(journeys["1"]) + len(journeys["2"])  # all of it, for now

    assert "assembled" in portal.poll_and_assemble(75)  # case 1 arrives, and case 2 is queued again
    assert portal.poll_and_assemble(76) == []
    second = portal.document("CAS-2")
    assert [item["id"] for item in second["items"]] == journeys["2"]
    assert second["previous_case"]["ticket"] == "CAS-1" and second["version"] == 2
    (note,) = fake.notes_for(case_2[0])  # the same note, updated
    assert "vpn" not in note["notetext"]


def test_a_case_that_arrives_later_is_named_previous_though_no_item_moves(store: Store,
                                                                         fake: LocalDataverse) -> None:
    # Case 1 was opened by phone (nothing on the portal claims it); case 2 came first by the webhook.
    # Case 1 arriving moves none of case 2's items, yet case 2 must now name it (found from outside).
    portal = Portal(store, fake)
    ids = portal.batch(PHONE, [(30, "search", search("printer offline", 3)),
                               (45, "case_form", {"url": f"{BASE}/support/create-case/"})])
    case_2 = portal.open_case(50, "CAS-2")
    ids += portal.submit(PHONE, 50, "CAS-2")
    take(portal.stores.cases, incident_case(Incident(case_2, at(50), "CAS-2", "CAS-2", CONTACT), "webhook"),
         portal.send)
    assert assembler.handle(portal.queue.pop().encode(), portal.stores, portal.settings, at(70),
                            portal.dataverse) == "assembled"
    assert "previous_case" not in portal.document("CAS-2")

    portal.open_case(20, "CAS-1")
    assert "assembled" in portal.poll_and_assemble(75)  # case 1; case 2 is queued again and updated
    second = portal.document("CAS-2")
    assert [item["id"] for item in second["items"]] == ids
    assert second["previous_case"]["ticket"] == "CAS-1" and second["version"] == 2
    (note,) = fake.notes_for(case_2)
    assert "Starts after the previous case, CAS-1 of 2026-11-28" in note["notetext"]


def test_two_cases_created_in_the_same_second_split_by_ticket_else_by_time(store: Store,
                                                                           fake: LocalDataverse) -> None:
    portal = Portal(store, fake)
    early = portal.batch(BROWSER, [(1, "search", search("alpha", 1)), (2, "search", search("beta", 0))])
    portal.open_case(10, "CAS-B")
    portal.open_case(10, "CAS-A")  # the same second: CAS-A comes first (ticket order)
    own_b = portal.submit(BROWSER, 10, "CAS-B", after_created_s=2)
    own_a = portal.submit(PHONE, 10, "CAS-A", after_created_s=3)
    assert set(portal.poll_and_assemble(30)) == {"assembled"}
    a, b = portal.document("CAS-A"), portal.document("CAS-B")
    assert [item["id"] for item in a["items"]] == early + own_a  # by time: the earlier activity, to the first
    assert [item["id"] for item in b["items"]] == own_b  # by ticket: its own confirmation only
    assert b["previous_case"]["ticket"] == "CAS-A" and "previous_case" not in a
    assert b["summary"]["sentence"].startswith("First seen on the portal")


def test_a_confirmation_an_anonymous_batch_names_claims_nothing(store: Store, fake: LocalDataverse) -> None:
    # Rule 1 of cases.claimed_case holds for journeys too: an anonymous `case_submitted` naming
    # case 1's ticket minutes after it does not pull later activity into case 1.
    portal = Portal(store, fake)
    portal.batch(BROWSER, [(1, "search", search("alpha", 1))])
    portal.open_case(10, "CAS-1")
    later = portal.batch(BROWSER, [(14, "search", search("gamma", 2))])
    portal.batch(BROWSER, [(15, "case_submitted", {"url": CONFIRM, "ticket": "CAS-1"})], signed_in=False)
    portal.open_case(20, "CAS-2")
    assert set(portal.poll_and_assemble(40)) == {"assembled"}
    first, second = portal.document("CAS-1"), portal.document("CAS-2")
    assert [item["id"] for item in second["items"]][:1] == later
    assert all(item.get("query") != "gamma" for item in first["items"])
    assert new_id() not in json.dumps(first)  # (ids are fresh per event)


@pytest.mark.parametrize("dataverse", [True, False], ids=["dataverse", "portal"])
def test_a_later_visit_to_the_confirmation_page_belongs_to_the_next_journey(store: Store, fake: LocalDataverse,
                                                                            dataverse: bool) -> None:
    # The outside run: a portal that confirms on the case form's own page. Case 1's "confirmation
    # page" claimed every later view of that address within a minute and all time spent on it within
    # 30 minutes, so case 1 ended 28 minutes after its creation and case 2's journey moved into it.
    portal = Portal(store, fake if dataverse else None)
    form = f"{BASE}/support/create-case/"
    sent = 1 / 60 if dataverse else 0  # (Dataverse made the case a second before the page said so)
    one = portal.batch(BROWSER, [(5, "search", search("wifi drops", 2)), (6, "page_view", {"url": form})])
    if dataverse:
        portal.open_case(10, "CAS-1")
    one += portal.batch(BROWSER, [(10 + sent, "case_submitted", {"url": form, "ticket": "CAS-1"})])
    two = portal.batch(BROWSER, [(10.2, "page_view", {"url": f"{BASE}/", "title": "Home"}),
                                 (10.5, "page_view", {"url": form}),  # the same address, another visit
                                 (26, "search", search("bluetooth pairing", 3)),
                                 (27, "page_view", {"url": form}),
                                 (28, "engagement", {"url": form, "engaged_ms": 60_000})])
    if dataverse:
        portal.open_case(40, "CAS-2")
    two += portal.batch(BROWSER, [(40 + sent, "case_submitted", {"url": form, "ticket": "CAS-2"})])
    assert set(portal.poll_and_assemble(60)) == {"assembled"}
    first, second = portal.document("CAS-1"), portal.document("CAS-2")
    assert [item["id"] for item in first["items"]] == one
    assert [item["id"] for item in second["items"]] == two
    assert second["summary"]["first_touch_before_case_ms"] > 29 * M  # (never negative)


def test_a_one_article_journey_loses_the_site_suffix_and_its_confirmation_reads_after_the_case(
        store: Store, fake: LocalDataverse) -> None:
    # The outside run: a journey with one title had nothing to learn the suffix from, and the
    # confirmation page, seconds after Dataverse made the case, read "0 s before".
    portal = Portal(store, fake)
    portal.batch(BROWSER, [(1, "page_view", {"url": f"{BASE}/", "title": "Home · Contoso Support"}),
                           (2, "page_view", {"url": f"{BASE}/support/", "title": "Support · Contoso Support"})])
    portal.open_case(5, "CAS-1")
    portal.submit(BROWSER, 5, "CAS-1")
    portal.batch(BROWSER, [(20, "page_view", read("KA-03003", "Export your invoices · Contoso Support"))])
    portal.open_case(30, "CAS-2")
    portal.submit(BROWSER, 30, "CAS-2", after_created_s=4)
    assert set(portal.poll_and_assemble(50)) == {"assembled"}
    second = portal.document("CAS-2")
    assert [a["title"] for a in second["summary"]["articles"]] == ["Export your invoices"]
    page = html.unescape(portal.html("CAS-2"))
    assert '"Export your invoices" (KA-03003)' in page and "Contoso Support" not in page
    assert "4 s after" in page and "0 s before" not in page
    (note,) = fake.notes_for(second["case"]["case_id"])
    assert '"Export your invoices" (KA-03003)' in note["notetext"]
