"""An erasure stays erased (issue 23, D3): what the poller re-reads, a webhook re-sends, a message
that waited or a beacon's re-send brings after the erasure is not stored again; the note already
on the case goes; the name cache and the ticket index forget the contact."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from dci import privacy
from dci.cases import CaseFollowUp, poll
from dci.dataverse import Dataverse, TokenSource, session
from dci.linker import link
from dci.runner.dataverse import LocalDataverse
from dci.settings import Settings
from dci.storage.erasures import Tombstones
from tests.conftest import STORAGE, Store, stores_of
from tests.factories import encoded, iso, queued_batch, queued_event
from tests.test_assembler import CREATED, CREATED_MS, M, World

A = "6f1c2a4e-0b7d-4c1e-9a55-2f4d8b1e7c30"


@pytest.fixture
def world(store: Store, fake: LocalDataverse) -> World:
    return World(store, fake)


def erase(world: World, at_ms: int) -> dict[str, int]:
    removed = privacy.erase(world.interactions, A, world.settings.stitch_window_ms, world.cases,
                            world.stores.insights, None, world.stores.erasures, now_ms=at_ms)
    assert world.stores.erasures is not None
    privacy.delete_pending_notes(world.stores.erasures, world.dataverse)
    return removed


def test_erasure_a_re_read_case_is_not_stored_assembled_or_noted_again(world: World, fake: LocalDataverse) -> None:
    # The attack: erase the contact, then let the poller re-read its last minutes (its overlap).
    fake.add_contact(A, "Jane Doe")
    laptop = str(uuid.uuid4())
    world.browse(laptop, [20, 10], contact=A, kind="search", query="vpn", results=0)
    case_id = fake.add_incident(CREATED, contact=A, ticket="CAS-01234-X1Y2Z3")
    poll(world.dataverse, world.cases, world.send, CREATED_MS + 2 * M, world.stores.erasures)
    assert world.assemble() == ["assembled"]
    assert fake.notes_for(case_id) and world.dataverse._names.get(A)  # a note on the case, a name remembered

    erase(world, CREATED_MS + 20 * M)
    assert fake.notes_for(case_id) == []  # the note already written goes
    assert A not in world.dataverse._names  # and the name this process remembered
    assert world.cases.case(case_id) is None and world.cases.cases_with_ticket("CAS-01234-X1Y2Z3") == []

    world.cases.set_watermark(CREATED_MS - M)  # the overlap: the next poll reads the case again
    result = poll(world.dataverse, world.cases, world.send, CREATED_MS + 25 * M, world.stores.erasures)
    assert result.seen == 1 and result.queued == 0
    assert world.cases.case(case_id) is None and world.cases.timeline(case_id) is None
    assert world.cases.cases_of(A) == [] and fake.notes_for(case_id) == []


def test_erasure_a_webhook_retry_and_a_message_that_waited_bring_nothing_back(world: World,
                                                                              fake: LocalDataverse) -> None:
    from dci.cases import case_message, incident_case, take
    from dci.dataverse import Incident

    world.browse(str(uuid.uuid4()), [10], contact=A)
    incident = Incident(str(uuid.uuid4()), CREATED_MS, "CAS-0001", "", A)
    take(world.cases, incident_case(incident, "webhook"), world.send, erasures=world.stores.erasures)
    waiting = list(world.queue)  # queued before the erasure, processed after it
    erase(world, CREATED_MS + 5 * M)
    assert take(world.cases, incident_case(incident, "webhook"), world.send,
                erasures=world.stores.erasures) == "erased"
    world.queue = waiting + [(case_message(incident_case(incident, "webhook")), 0)]
    assert world.assemble() == ["erased", "erased"]
    assert world.cases.case(incident.case_id) is None and fake.notes_for(incident.case_id) == []


def test_erasure_re_sent_events_from_before_it_are_dropped_and_new_activity_is_kept(store: Store) -> None:
    stores = stores_of(store)
    settings = Settings(AzureWebJobsStorage=STORAGE, PORTAL_ISSUERS="portal.example.com")
    laptop = str(uuid.uuid4())
    before = [queued_event(CREATED_MS - 5 * M, "search", query="vpn"), queued_event(CREATED_MS - 4 * M)]
    anonymous = queued_batch(before[:1], visitor=laptop)
    signed_in = queued_batch(before[1:], visitor=laptop, contact=A)
    for message in (anonymous, signed_in):
        link(stores.interactions, encoded(message), CaseFollowUp.of(settings, stores), stores.insights,
             erasures=stores.erasures)
    privacy.erase(stores.interactions, A, settings.stitch_window_ms, stores.cases, stores.insights, None,
                  stores.erasures, now_ms=CREATED_MS)
    assert stores.interactions.visitor_rows(laptop) == []
    # The beacon re-sends both (its answers were lost), a minute later: nothing comes back.
    for message in (anonymous, signed_in):
        late = message | {"received_at": iso(CREATED + timedelta(minutes=1))}
        assert link(stores.interactions, encoded(late), insights=stores.insights, erasures=stores.erasures) == 0
    assert stores.interactions.visitor_rows(laptop) == [] and stores.interactions.visitors_of(A) == []
    # The person comes back and signs in again: that is new, and kept.
    again = queued_batch([queued_event(CREATED_MS + 60 * M)], visitor=laptop, contact=A)
    assert link(stores.interactions, encoded(again), erasures=stores.erasures) == 1


def test_erasure_a_note_dataverse_cannot_delete_now_is_deleted_by_a_later_poll(world: World,
                                                                               fake: LocalDataverse) -> None:
    world.browse(str(uuid.uuid4()), [10], contact=A)
    case_id = world.open_case(A)
    assert world.assemble() == ["assembled"] and fake.notes_for(case_id)
    fake.fail(503, times=1, method="DELETE")  # Dataverse is down while the erasure runs
    quick = Dataverse(fake.url, TokenSource(fake.url, fixed="test-token"), session(retries=0))
    privacy.erase(world.interactions, A, world.settings.stitch_window_ms, world.cases, world.stores.insights, None,
                  world.stores.erasures, now_ms=CREATED_MS + 20 * M)
    assert world.stores.erasures is not None
    assert privacy.delete_pending_notes(world.stores.erasures, quick)["pending"] == 1
    assert fake.notes_for(case_id)
    from dci.cases import poll_configured

    settings = Settings(AzureWebJobsStorage=STORAGE, PORTAL_ISSUERS="portal.example.com", DATAVERSE_URL=fake.url,
                        DATAVERSE_TOKEN="test-token")
    poll_configured(settings, world.stores, CREATED_MS + 30 * M)  # the timer's next tick
    assert fake.notes_for(case_id) == []
    assert world.stores.erasures.all()[A].notes_pending == ()


def test_erasure_tombstones_are_seen_by_other_processes_within_their_reread_time(store: Store) -> None:
    now = [0.0]
    mine, theirs = Tombstones(store.tables), Tombstones(store.tables, clock=lambda: now[0])
    assert theirs.erased_at(A) is None
    mine.add(A, CREATED_MS, ["0" * 32], [])
    assert mine.forbids(A, CREATED_MS) and not mine.forbids(A, CREATED_MS + 1)
    assert theirs.erased_at(A) is None  # its copy is fresh
    now[0] += 11
    assert theirs.erased_at(A) == CREATED_MS and theirs.browser_erased_at("0" * 32) == CREATED_MS
    assert theirs.forget_before(CREATED_MS + 1) == 1 and Tombstones(store.tables).all() == {}


def test_erasure_an_erased_event_re_sent_with_another_clock_is_refused_by_its_id(store: Store) -> None:
    # The outside attack run on the fixes: the same events re-sent after the erasure with a time
    # after it (a changed device clock, a crafted client), from the browser and from a new one.
    stores = stores_of(store)
    settings = Settings(AzureWebJobsStorage=STORAGE, PORTAL_ISSUERS="portal.example.com")
    laptop, other = str(uuid.uuid4()), str(uuid.uuid4())
    anonymous = queued_batch([queued_event(CREATED_MS - 5 * M, "search", query="d3 secret")], visitor=laptop)
    signed_in = queued_batch([queued_event(CREATED_MS - 4 * M, "case_form")], visitor=laptop, contact=A)
    for message in (anonymous, signed_in):
        link(stores.interactions, encoded(message), insights=stores.insights, erasures=stores.erasures)
    privacy.erase(stores.interactions, A, settings.stitch_window_ms, stores.cases, stores.insights, None,
                  stores.erasures, now_ms=CREATED_MS)
    later = CREATED_MS + 10 * M
    for message, visitor in ((anonymous, laptop), (signed_in, other)):
        moved = message | {"visitor": visitor, "events": [{**e, "ts": later} for e in message["events"]]}
        assert link(stores.interactions, encoded(moved), insights=stores.insights, erasures=stores.erasures) == 0
    assert stores.interactions.visitor_rows(laptop) == stores.interactions.visitor_rows(other) == []
    assert stores.interactions.visitors_of(A) == []


def test_erasure_tombstones_keep_the_latest_erased_ids_within_an_entity(store: Store) -> None:
    from dci.storage.erasures import IDS_PER_COLUMN, MAX_ID_COLUMNS, event_id_hash

    stones = Tombstones(store.tables)
    ids = [event_id_hash(f"event-{n:08d}") for n in range(IDS_PER_COLUMN * MAX_ID_COLUMNS + 500)]
    stones.add(A, CREATED_MS, [], [], ids)
    kept = Tombstones(store.tables).erased_events()
    assert len(kept) == IDS_PER_COLUMN * MAX_ID_COLUMNS and ids[-1] in kept and ids[0] not in kept
    row = store.tables.get_table_client("state").get_entity("erased", A)
    texts = [value for value in row.values() if isinstance(value, str)]
    assert max(map(len, texts)) <= 32_768 and 2 * sum(map(len, texts)) < 1024 * 1024  # Table storage's limits
