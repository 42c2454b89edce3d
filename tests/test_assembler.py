"""Assembling case timelines on Azurite with the local Dataverse: windows, devices, stitching,
shared browsers, ticket numbers that prove nothing, late events, and exactly one note per case."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import azure.functions as func
import pytest

import function_app
from dci import assembler
from dci.cases import CaseFollowUp, case_message, incident_case, take
from dci.dataverse.client import Dataverse, Incident, TokenSource, session
from dci.linker import link
from dci.runner.dataverse import LocalDataverse
from dci.settings import Settings
from tests.conftest import STORAGE, RecordingQueue, Store, stores_of
from tests.factories import BASE, encoded, iso, queued_batch, queued_event

M, H = 60_000, 3_600_000
CREATED = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
CREATED_MS = int(CREATED.timestamp() * 1000)
A, B = "6f1c2a4e-0b7d-4c1e-9a55-2f4d8b1e7c30", "0b9e3d51-7a2c-4f8e-8d10-3c6a2e9f4b71"


class World:
    """Storage, Dataverse and the `cases` queue of one test, and helpers to act in it."""

    def __init__(self, store: Store, fake: LocalDataverse) -> None:
        self.fake = fake
        self.queue: list[tuple[str, int]] = []
        self.stores = stores_of(store, queue=self)
        self.interactions, self.cases = self.stores.interactions, self.stores.cases
        self.dataverse = Dataverse(fake.url, TokenSource(fake.url, fixed="test-token"), session(backoff=0.05))
        self.settings = Settings(AzureWebJobsStorage=STORAGE, PORTAL_ISSUERS="portal.example.com",
                                 DATAVERSE_URL=fake.url, CASE_SETTLE_SECONDS=600)

    def send(self, text: str, delay_seconds: int = 0) -> None:
        self.queue.append((text, delay_seconds))

    def browse(self, visitor: str, minutes_before: list[float], contact: str | None = None, kind: str = "page_view",
               received_minutes_after: float = 0.0, **fields: Any) -> list[str]:
        """Store a batch of events that happened `minutes_before` the case."""
        events = [queued_event(CREATED_MS - int(m * M), kind, **fields) for m in minutes_before]
        received = CREATED + timedelta(minutes=received_minutes_after)
        message = queued_batch(events, visitor=visitor, contact=contact, received_at=iso(received))
        link(self.interactions, encoded(message), CaseFollowUp.of(self.settings, self.stores))
        return [e["id"] for e in events]

    def open_case(self, contact: str | None, ticket: str = "CAS-01234-X1Y2Z3") -> str:
        case_id = self.fake.add_incident(CREATED, contact=contact, ticket=ticket)
        incident = Incident(case_id, CREATED_MS, ticket, "Cannot sign in", contact)
        take(self.cases, incident_case(incident, "poll"), self.send)
        return case_id

    def assemble(self, minutes_after: float = 15) -> list[str]:
        """Run the assembler over everything queued; returns the outcomes."""
        outcomes, pending, self.queue = [], self.queue, []
        now = CREATED_MS + int(minutes_after * M)
        for text, _ in pending:
            outcomes.append(assembler.handle(text.encode(), self.stores, self.settings, now, self.dataverse))
        return outcomes

    def timeline(self, case_id: str) -> dict[str, Any]:
        return self.cases.timeline(case_id)["document"]


@pytest.fixture
def world(store: Store, fake: LocalDataverse) -> World:
    return World(store, fake)


def ids(document: dict[str, Any]) -> list[str]:
    return [item["id"] for item in document["items"]]


def test_assembler_window_edges_and_nothing_after_the_case(world: World) -> None:
    phone = str(uuid.uuid4())
    too_early = world.browse(phone, [72 * 60 + 1], contact=A)
    edge, inside, at_case = (world.browse(phone, [m], contact=A)[0] for m in (72 * 60, 30, 0))
    after = world.browse(phone, [-1], contact=A)
    case = world.open_case(A)
    assert world.assemble() == ["assembled"]
    assert ids(world.timeline(case)) == [edge, inside, at_case]
    assert not set(too_early + after) & set(ids(world.timeline(case)))


def test_assembler_two_devices_and_stitched_browsing_before_sign_in(world: World) -> None:
    laptop, phone = str(uuid.uuid4()), str(uuid.uuid4())
    anonymous = world.browse(laptop, [50, 45])
    signed_in = world.browse(laptop, [40], contact=A)
    on_phone = world.browse(phone, [20], contact=A)
    case = world.open_case(A)
    world.assemble()
    document = world.timeline(case)
    assert ids(document) == anonymous + signed_in + on_phone
    assert [i["attribution"] for i in document["items"]] == ["stitched", "stitched", "verified", "verified"]
    assert {i["visitor"] for i in document["items"]} == {laptop, phone}


def test_assembler_shared_device_keeps_other_people_out(world: World) -> None:
    shared = str(uuid.uuid4())
    b_before = world.browse(shared, [90], contact=B)
    between = world.browse(shared, [70])  # B left, A has not signed in yet: nobody's
    a_ids = world.browse(shared, [60, 10], contact=A)
    b_after = world.browse(shared, [5], contact=B)
    case = world.open_case(A)
    world.assemble()
    assert ids(world.timeline(case)) == a_ids
    assert not set(b_before + between + b_after) & set(ids(world.timeline(case)))


def test_assembler_anonymous_ticket_adds_nothing_to_the_case(world: World, fake: LocalDataverse) -> None:
    # The attack: while the victim's case settles, a tokenless batch from the attacker's browser
    # carries the victim's ticket number and a search. It used to land in the victim's timeline
    # (and so in the note written on the case in Dataverse).
    mine = world.browse(str(uuid.uuid4()), [20], contact=A, kind="search", query="reset password", results=0)
    case = world.open_case(A, ticket="CAS-77777-ABCDEF")
    attacker = str(uuid.uuid4())
    world.browse(attacker, [3], kind="search", query="ATTACKER-INJECTED", results=0)
    world.browse(attacker, [1], kind="case_submitted", ticket="CAS-77777-ABCDEF")
    assert world.assemble() == ["assembled"]
    assert ids(world.timeline(case)) == mine
    assert "ATTACKER-INJECTED" not in json.dumps(world.timeline(case))
    (note,) = fake.notes_for(case)
    assert "ATTACKER-INJECTED" not in note["notetext"]
    assert attacker not in {item["visitor"] for item in world.timeline(case)["items"]}


def test_assembler_a_case_is_never_rebound_to_another_contact(world: World) -> None:
    world.browse(str(uuid.uuid4()), [20], contact=A)
    case_id = world.open_case(A)
    incident = Incident(case_id, CREATED_MS, "CAS-01234-X1Y2Z3", "Cannot sign in", B)  # e.g. a replayed webhook
    assert take(world.cases, incident_case(incident, "webhook"), world.send) == "known"
    assert world.cases.case(case_id)["contact"] == A
    assert world.cases.cases_of(B) == []
    assert world.assemble() == ["assembled"]  # the one queued for A


def test_assembler_writes_exactly_one_note_and_unchanged_reruns_do_nothing(world: World, fake: LocalDataverse) -> None:
    world.browse(str(uuid.uuid4()), [15], contact=A, kind="search", query="reset password", results=0)
    case = world.open_case(A)
    message = world.queue[0]
    assert world.assemble() == ["assembled"]
    (note,) = fake.notes_for(case)
    assert note["subject"] == "Portal activity before this case"
    assert '"reset password" (no results)' in note["notetext"]
    requests_before = len(fake.requests)
    world.queue.append(message)  # the same message delivered again
    assert world.assemble() == ["unchanged"]
    assert len(fake.requests) == requests_before and len(fake.notes_for(case)) == 1
    assert world.cases.timeline(case)["version"] == 1


def test_assembler_trace_context_in_a_message_is_not_part_of_the_case(world: World, fake: LocalDataverse) -> None:
    # Queue messages carry the W3C trace context of the batch that led to them; a re-delivery from
    # another trace is the same case, and no trace id is stored with it.
    world.browse(str(uuid.uuid4()), [15], contact=A)
    case = world.open_case(A)
    (text, _), = world.queue
    traced = [json.dumps({**json.loads(text), "traceparent": f"00-{trace * 32}-{'2' * 16}-01", "tracestate": "a=b"})
              for trace in "13"]
    world.queue = [(traced[0], 0)]
    assert world.assemble() == ["assembled"]
    world.queue = [(traced[1], 0)]
    assert world.assemble() == ["unchanged"]
    stored = json.dumps([world.cases.stored_case(case), world.timeline(case)])
    assert "traceparent" not in stored and "a=b" not in stored
    assert len(fake.notes_for(case)) == 1


def test_assembler_late_events_reassemble_and_update_the_same_note(world: World, fake: LocalDataverse) -> None:
    phone = str(uuid.uuid4())
    first = world.browse(phone, [30], contact=A)
    case = world.open_case(A)
    world.assemble()
    late = world.browse(phone, [25], contact=A, received_minutes_after=120)  # sat in the beacon's retry queue
    assert len(world.queue) == 1  # the linker queued a re-assembly
    assert world.assemble(minutes_after=121) == ["assembled"]
    assert ids(world.timeline(case)) == first + late
    assert world.cases.timeline(case)["version"] == 2
    (note,) = fake.notes_for(case)
    assert note["updates"] == 1  # the same note, updated


def test_assembler_late_anonymous_events_of_a_signed_in_browser_reassemble_too(world: World) -> None:
    # Browsing before sign-in that reaches the app after the case (the beacon retried it) is still
    # the customer's (stitched): the case is assembled again with it.
    laptop = str(uuid.uuid4())
    signed_in = world.browse(laptop, [20], contact=A)
    case = world.open_case(A)
    assert world.assemble() == ["assembled"]
    before = world.browse(laptop, [22], received_minutes_after=90)  # anonymous, late
    assert len(world.queue) == 1
    assert world.assemble(minutes_after=91) == ["assembled"]
    assert ids(world.timeline(case)) == before + signed_in
    world.browse(str(uuid.uuid4()), [21], received_minutes_after=95)  # late, on a browser nobody signed in on
    assert world.queue == []


def test_assembler_shows_the_contacts_name_from_dataverse_read_once(world: World, fake: LocalDataverse) -> None:
    fake.add_contact(A, "Jane Doe")
    world.browse(str(uuid.uuid4()), [15], contact=A)
    first, second = world.open_case(A), world.open_case(A, ticket="CAS-09999-Z9Y8X7")
    assert world.assemble() == ["assembled", "assembled"]
    assert [world.timeline(case)["case"]["contact_name"] for case in (first, second)] == ["Jane Doe"] * 2
    assert sum(path.startswith(f"/api/data/v9.2/contacts({A})") for _, path in fake.requests) == 1
    # A contact Dataverse does not know (deleted since): the timeline without a name.
    world.browse(str(uuid.uuid4()), [15], contact=B)
    unknown = world.open_case(B, ticket="CAS-07777-Q1W2E3")
    assert world.assemble() == ["assembled"]
    assert "contact_name" not in world.timeline(unknown)["case"]


def test_assembler_defers_a_case_until_it_has_settled(world: World) -> None:
    case = world.open_case(A)
    assert world.assemble(minutes_after=4) == ["deferred"]
    ((text, delay),) = world.queue
    assert json.loads(text)["case_id"] == case and 6 * 60 <= delay <= 6 * 60 + 1
    assert world.cases.case(case)["status"] == "queued"


def read_report(case_id: str, html: bool) -> tuple[int, bytes]:
    """GET /api/cases/{case_id}/timeline through the app, as JSON or as the agent's HTML report."""
    url = f"http://localhost/api/cases/{case_id}/timeline" + ("?format=html" if html else "")
    request = func.HttpRequest("GET", url, body=b"", params={"format": "html"} if html else {},
                               route_params={"case_id": case_id}, headers={"accept": "application/json"})
    response = function_app.case_timeline(request)
    return response.status_code, response.get_body()


def test_assembler_stores_and_reports_a_journey_of_1000_events_with_2000_character_urls(
        world: World, fake: LocalDataverse) -> None:
    # The attack (or a heavy reader's week): a journey too long for one Table string property
    # (32,768 UTF-16 code units) used to be refused (PropertyValueTooLarge); the case went back to
    # its queue for good, and no timeline or note was ever written. Every item is capped now, and
    # the document is stored across rows of the case's partition.
    laptop = str(uuid.uuid4())
    sent = []
    for batch in range(20):  # the beacon sends at most 50 events a batch
        events = []
        for n in range(batch * 50, batch * 50 + 50):
            url = f"{BASE}/p/{n:04}/" + "a" * 2_000
            url = url[:2_000]
            fields = {"query": f"how do I configure the vpn client {n:04}", "results": n % 3,
                      "url": url} if n % 10 == 0 else {"title": f"Article {n:04} " + "t" * 80, "url": url}
            events.append(queued_event(CREATED_MS - (1_000 - n) * 4 * M, "search" if n % 10 == 0 else "page_view",
                                       **fields))
        sent += [e["id"] for e in events]
        message = queued_batch(events, visitor=laptop, contact=A, received_at=iso(CREATED))
        link(world.interactions, encoded(message), CaseFollowUp.of(world.settings, world.stores))
    case = world.open_case(A)
    assert world.assemble() == ["assembled"]
    document = world.timeline(case)
    assert ids(document) == sent and not document["truncated"] and document["earlier_steps"] == 0
    assert all(len(item["url"]) == 500 and item["url"].endswith("\u2026") for item in document["items"])
    assert len(world.cases._timeline_keys(case)) > 1  # (more than one row holds it)
    (note,) = fake.notes_for(case)
    assert len(note["notetext"].splitlines()) <= 15
    status, body = read_report(case, html=False)
    assert status == 200 and ids(json.loads(body)) == sent
    status, page = read_report(case, html=True)
    assert status == 200
    # A row per step: each search, and the nine pages passed through after it as one (dci/steps.py rule 6).
    assert page.count(b'<tr class="search') == 100 and page.count(b'<tr class="browse') == 100
    assert b"Browsed 9 pages: Article 0991" in page and b"Article 0001" in page and b"earlier step" not in page


class PortalWorld:
    """No Dataverse: cases come from signed-in portal batches."""

    def __init__(self, store: Store) -> None:
        self.queue = RecordingQueue()
        self.stores = stores_of(store, queue=self.queue)
        self.cases = self.stores.cases
        self.settings = Settings(AzureWebJobsStorage=STORAGE, PORTAL_ISSUERS="portal.example.com")

    def link(self, ticket: str, contact: str | None, query: str = "x") -> None:
        events = [queued_event(CREATED_MS - 5 * M, "search", query=query),
                  queued_event(CREATED_MS, "case_submitted", ticket=ticket)]
        message = queued_batch(events, contact=contact, received_at="2026-11-28T12:00:01.000Z")
        link(self.stores.interactions, encoded(message), CaseFollowUp.of(self.settings, self.stores))

    def queued(self) -> list[str]:
        return [text for text, _ in self.queue.sent]

    def assemble(self, text: str) -> str:
        return assembler.handle(text.encode(), self.stores, self.settings, CREATED_MS + 11 * M, None)


def test_assembler_without_dataverse_assembles_portal_cases_and_writes_no_note(store: Store) -> None:
    world = PortalWorld(store)
    world.link("CAS-55555-PORTAL", A)
    (text,) = world.queued()
    world.queue.sent.clear()
    world.link("CAS-55555-PORTAL", A)  # the same ticket again (another batch): still one case
    assert world.queued() == []
    case = json.loads(text)
    assert (case["contact"], case["ticket"], case["source"]) == (A, "CAS-55555-PORTAL", "portal")
    assert world.assemble(text) == "assembled"
    items = world.cases.timeline(case["case_id"])["document"]["items"]
    assert [i["type"] for i in items] == ["search", "search", "case_submitted", "case_submitted"]


def test_assembler_anonymous_ticket_creates_no_portal_case_and_cannot_take_one(store: Store) -> None:
    # The attack: a tokenless batch with the victim's ticket, sent before the victim's own. It
    # used to create the case for the attacker's browser, and the victim's export listed none.
    world = PortalWorld(store)
    world.link("CAS-01234-VICTIM", None, "ATTACKER-INJECTED")
    assert world.queued() == []
    world.link("CAS-01234-VICTIM", A)
    (text,) = world.queued()
    assert json.loads(text)["contact"] == A
    assert [row["ticket"] for row in world.cases.cases_of(A)] == ["CAS-01234-VICTIM"]


def test_assembler_another_contacts_claim_of_a_ticket_is_a_case_of_their_own(store: Store) -> None:
    world = PortalWorld(store)
    world.link("CAS-01234-VICTIM", B, "ATTACKER-INJECTED")  # signed in, sent first
    world.link("CAS-01234-VICTIM", A, "mine")
    by_contact = {}
    for text in world.queued():
        case = json.loads(text)
        world.assemble(text)
        by_contact[case["contact"]] = world.cases.timeline(case["case_id"])["document"]
    assert set(by_contact) == {A, B}
    assert [i.get("query") for i in by_contact[A]["items"]] == ["mine", None]
    assert "ATTACKER-INJECTED" not in json.dumps(by_contact[A])


def test_assembler_skips_an_anonymous_case_queued_by_an_earlier_build(store: Store) -> None:
    world = PortalWorld(store)
    old = {"case_id": str(uuid.uuid4()), "created_ms": CREATED_MS, "ticket": "CAS-1", "visitor": "visitor-0001",
           "source": "portal"}
    take(world.cases, old, lambda _: None)  # type: ignore[arg-type]
    assert world.assemble(case_message(old)) == "skipped"  # type: ignore[arg-type]
    assert world.cases.case(old["case_id"])["reason"] == "no verified contact"
    assert world.cases.timeline(old["case_id"]) is None


def test_assembler_a_journey_of_long_non_ascii_searches_still_gets_its_timeline_note_and_fact(
        world: World, fake: LocalDataverse) -> None:
    # The outside attack run on the fixes: 30 long Japanese searches (or emoji terms and 64-character
    # article numbers) made the case's insight fact larger than a property; its write failed before
    # the timeline's, five times, and the case ended in the poison queue with no timeline and no note.
    laptop = str(uuid.uuid4())
    for n in range(60):
        world.browse(laptop, [30 - n * 0.4], contact=A, kind="search", query=f"{n:02d}" + "接続できません" * 14,
                     results=0)
        world.browse(laptop, [30 - n * 0.4 - 0.1], contact=A, query=f"{n:02d}" + "🔥" * 98,
                     kind="search", results=0)
        world.browse(laptop, [30 - n * 0.4 - 0.2], contact=A, url=f"{BASE}/knowledgebase/article/KA-{n:062d}",
                     article={"number": f"KA-{n:061d}X"})
    case_id = world.open_case(A)
    assert world.assemble() == ["assembled"]
    assert fake.notes_for(case_id) and world.timeline(case_id)["summary"]["searches"]
    (row,) = world.stores.insights._table.partition(f"c_{CREATED.date().isoformat()}")
    fact = json.loads(row["fact"])
    assert len(fact["searches"]) == len(fact["zero"]) == 40 and len(fact["articles"]) == 50
    assert f"59{'🔥' * 98}" in fact["searches"]  # the latest before the case are kept


def test_case_fact_at_its_bounds_fits_one_property() -> None:
    from dci.insights import COLUMN_LIMIT, case_fact, encode, utf16_len

    events = [{"visitor": f"v{n % 70}", "session": f"s{n % 90}", "ts": CREATED_MS - (n % 7) * 86_400_000 - n,
               "type": kind, "query": f"{n:03d}" + "\U0001f525" * 120, "results": 0,
               "article_number": f"{n:064d}"} for n in range(400) for kind in ("search", "page_view")]
    fact = case_fact({"created_ms": CREATED_MS}, events, follow_days=90)
    assert utf16_len(encode(dict(sorted(fact.items())))) <= COLUMN_LIMIT
