"""Assembling case timelines on Azurite with the local Dataverse: windows, devices, stitching,
shared browsers, tickets, late events, and exactly one note per case."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from dci import assembler
from dci.cases import case_message, incident_case, take
from dci.casestore import CaseStore
from dci.dataverse import Dataverse, Incident, TokenSource, session
from dci.linker import CaseFollowUp, link
from dci.settings import Settings
from dci.store import InteractionStore
from tests.conftest import STORAGE, Store
from tests.dataverse_server import FakeDataverse

M, H = 60_000, 3_600_000
CREATED = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
CREATED_MS = int(CREATED.timestamp() * 1000)
A, B = "6f1c2a4e-0b7d-4c1e-9a55-2f4d8b1e7c30", "0b9e3d51-7a2c-4f8e-8d10-3c6a2e9f4b71"


@pytest.fixture
def fake() -> Iterator[FakeDataverse]:
    server = FakeDataverse()
    yield server
    server.close()


class World:
    """Storage, Dataverse and the queue of one test, and helpers to act in it."""

    def __init__(self, store: Store, fake: FakeDataverse) -> None:
        self.fake = fake
        self.interactions = InteractionStore(store.tables)
        self.cases = CaseStore(store.tables)
        self.dataverse = Dataverse(fake.url, TokenSource(fake.url, fixed="test-token"), session(backoff=0.05))
        self.settings = Settings(AzureWebJobsStorage=STORAGE, PORTAL_ISSUERS="portal.example.com",
                                 DATAVERSE_URL=fake.url, CASE_SETTLE_SECONDS=600)
        self.queue: list[tuple[str, int]] = []

    def enqueue(self, text: str, delay: int = 0) -> None:
        self.queue.append((text, delay))

    def browse(self, visitor: str, minutes_before: list[float], contact: str | None = None, kind: str = "page_view",
               received_minutes_after: float = 0.0, **fields: Any) -> list[str]:
        """Store a batch of events that happened `minutes_before` the case."""
        events = [{"id": str(uuid.uuid4()), "type": kind, "ts": CREATED_MS - int(m * M),
                   "url": "https://portal.example.com/kb/KA-01023", **fields} for m in minutes_before]
        received = CREATED + timedelta(minutes=received_minutes_after)
        message = {"v": 1, "received_at": received.isoformat().replace("+00:00", "Z"), "site": "portal.example.com",
                   "visitor": visitor, "session": str(uuid.uuid4()), "skew_ms": 0, "events": events}
        if contact:
            message["contact"] = contact
        follow = CaseFollowUp(self.cases, self.enqueue, portal_cases=False, settle_ms=600_000, lookback_ms=72 * H)
        link(self.interactions, json.dumps(message).encode(), follow)
        return [e["id"] for e in events]

    def open_case(self, contact: str | None, ticket: str = "CAS-01234-X1Y2Z3") -> str:
        case_id = self.fake.add_incident(CREATED, contact=contact, ticket=ticket)
        incident = Incident(case_id, CREATED_MS, ticket, "Cannot sign in", contact)
        take(self.cases, incident_case(incident, "poll"), self.enqueue)
        return case_id

    def assemble(self, minutes_after: float = 15) -> list[str]:
        """Run the assembler over everything queued; returns the outcomes."""
        outcomes, pending, self.queue = [], self.queue, []
        now = CREATED_MS + int(minutes_after * M)
        for text, _ in pending:
            outcomes.append(assembler.handle(text.encode(), store=self.interactions, cases=self.cases,
                                             dataverse=self.dataverse, requeue=self.enqueue, settings=self.settings,
                                             now_ms=now))
        return outcomes

    def timeline(self, case_id: str) -> dict[str, Any]:
        return self.cases.timeline(case_id)["document"]


@pytest.fixture
def world(store: Store, fake: FakeDataverse) -> World:
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


def test_assembler_anonymous_case_form_is_linked_by_its_ticket(world: World) -> None:
    kiosk = str(uuid.uuid4())
    before = world.browse(kiosk, [30, 20])
    submitted = world.browse(kiosk, [0], kind="case_submitted", ticket="CAS-77777-ABCDEF")
    case = world.open_case(A, ticket="CAS-77777-ABCDEF")  # the contact never signed in on that browser
    world.assemble()
    document = world.timeline(case)
    assert ids(document) == before + submitted
    assert [i["attribution"] for i in document["items"]] == ["stitched", "stitched", "ticket"]


def test_assembler_writes_exactly_one_note_and_unchanged_reruns_do_nothing(world: World, fake: FakeDataverse) -> None:
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


def test_assembler_late_events_reassemble_and_update_the_same_note(world: World, fake: FakeDataverse) -> None:
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


def test_assembler_defers_a_case_until_it_has_settled(world: World) -> None:
    case = world.open_case(A)
    assert world.assemble(minutes_after=4) == ["deferred"]
    ((text, delay),) = world.queue
    assert json.loads(text)["case_id"] == case and 6 * 60 <= delay <= 6 * 60 + 1
    assert world.cases.case(case)["status"] == "queued"


def test_assembler_without_dataverse_assembles_portal_cases_and_writes_no_note(store: Store) -> None:
    interactions, cases = InteractionStore(store.tables), CaseStore(store.tables)
    queue: list[str] = []
    follow = CaseFollowUp(cases, queue.append, portal_cases=True, settle_ms=600_000, lookback_ms=72 * H)
    visitor = str(uuid.uuid4())
    events = [{"id": str(uuid.uuid4()), "type": "search", "ts": CREATED_MS - 5 * M, "url": "https://p/s", "query": "x"},
              {"id": str(uuid.uuid4()), "type": "case_submitted", "ts": CREATED_MS, "url": "https://p/c",
               "ticket": "CAS-55555-PORTAL"}]
    message = {"v": 1, "received_at": "2026-11-28T12:00:01.000Z", "site": "portal.example.com", "visitor": visitor,
               "session": str(uuid.uuid4()), "events": events}
    link(interactions, json.dumps(message).encode(), follow)
    link(interactions, json.dumps(message).encode(), follow)  # re-delivered: still one case
    (text,) = queue
    case = json.loads(text)
    assert (case["visitor"], case["ticket"], case["source"]) == (visitor, "CAS-55555-PORTAL", "portal")
    settings = Settings(AzureWebJobsStorage=STORAGE, PORTAL_ISSUERS="portal.example.com")
    outcome = assembler.handle(text.encode(), store=interactions, cases=cases, dataverse=None, requeue=print,
                               settings=settings, now_ms=CREATED_MS + 11 * M)
    assert outcome == "assembled"
    assert [i["type"] for i in cases.timeline(case["case_id"])["document"]["items"]] == ["search", "case_submitted"]


@pytest.mark.parametrize("body", [b"nope", b'{"v": 2}', json.dumps({"v": 1, "case_id": "x"}).encode(),
                                  case_message({"case_id": "x", "created_ms": 1}).encode()])
def test_assembler_bad_messages_raise_for_the_poison_queue(world: World, body: bytes) -> None:
    with pytest.raises(assembler.BadCaseMessage):
        assembler.handle(body, store=world.interactions, cases=world.cases, dataverse=None, requeue=print,
                         settings=world.settings, now_ms=CREATED_MS)


def test_assembler_export_includes_cases_and_erasure_removes_their_timelines(world: World) -> None:
    from dci import privacy

    world.browse(str(uuid.uuid4()), [15], contact=A)
    case = world.open_case(A)
    world.assemble()
    document = privacy.export(world.interactions, A, 24 * H, 30 * M, world.cases)
    (exported,) = document["cases"]
    assert exported["case_id"] == case and exported["timeline"]["case"]["case_id"] == case
    removed = privacy.erase(world.interactions, A, 24 * H, world.cases)
    assert removed == {"interactions": 1, "visitors": 1, "cases": 1}
    assert world.cases.timeline(case) is None and world.cases.case(case) is None
    assert privacy.export(world.interactions, A, 24 * H, 30 * M, world.cases)["cases"] == []
