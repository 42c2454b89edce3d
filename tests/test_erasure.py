"""An erasure stays erased (issue 23, D3): what the poller re-reads, a webhook re-sends, a message
that waited or a beacon's re-send brings after the erasure is not stored again; the note already
on the case goes; the name cache and the ticket index forget the contact."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from dci import privacy
from dci.cases import CaseFollowUp, poll
from dci.dataverse.client import Dataverse, TokenSource, session
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
    from dci.dataverse.client import Incident

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
    from dci.storage.erasures import MAX_ID_COLUMNS, MAX_NOTE_COLUMNS, MAX_VISITOR_COLUMNS, event_id_hash
    from dci.storage.tables import LIST_COLUMN_CHARS

    per = {"events": LIST_COLUMN_CHARS // 17, "visitors": LIST_COLUMN_CHARS // 33, "notes": LIST_COLUMN_CHARS // 37}
    ids = [event_id_hash(f"event-{n:08d}") for n in range(per["events"] * MAX_ID_COLUMNS + 500)]
    browsers = [f"{n:032x}" for n in range(per["visitors"] * MAX_VISITOR_COLUMNS + 10)]
    notes = [str(uuid.UUID(int=n)) for n in range(per["notes"] * MAX_NOTE_COLUMNS + 10)]
    Tombstones(store.tables).add(A, CREATED_MS, browsers, notes, ids)  # every list past what a row holds
    stone = Tombstones(store.tables).all()[A]
    assert len(stone.events) == per["events"] * MAX_ID_COLUMNS
    assert ids[-1] in stone.events and ids[0] not in stone.events  # the latest are kept
    assert len(stone.visitors) == per["visitors"] * MAX_VISITOR_COLUMNS
    assert len(stone.notes_pending) == per["notes"] * MAX_NOTE_COLUMNS
    row = store.tables.get_table_client("state").get_entity("erased", A)
    texts = [value for value in row.values() if isinstance(value, str)]
    assert max(map(len, texts)) <= 32_768 and 2 * sum(map(len, texts)) < 1024 * 1024  # Table storage's limits


def test_erasure_anonymous_browsing_from_before_it_is_not_stitched_to_the_contact_signing_in_again(
        world: World, fake: LocalDataverse) -> None:
    # The second outside run: a browser the contact had not signed in on yet searched before the
    # erasure; when the contact signed in on it after, stitching gave them that search back (their
    # timeline, export, the new case's report and its note).
    laptop, tablet = str(uuid.uuid4()), str(uuid.uuid4())
    world.browse(laptop, [60], contact=A, kind="search", query="before, signed in")
    world.browse(tablet, [40], kind="search", query="beta secret")  # anonymous, before the erasure
    erase(world, CREATED_MS - 30 * M)
    world.browse(tablet, [10], contact=A, kind="search", query="after the erasure")
    case_id = world.open_case(A)
    assert world.assemble() == ["assembled"]
    queries = [item.get("query") for item in world.timeline(case_id)["items"]]
    assert queries == ["after the erasure"]
    assert "beta secret" not in fake.notes_for(case_id)[0]["notetext"]
    exported = privacy.export(world.interactions, A, world.settings.stitch_window_ms, 30 * M, world.cases,
                              world.stores.erasures.times())
    assert [item.get("query") for item in exported["interactions"]] == ["after the erasure"]



def test_erasure_of_a_contact_with_a_thousand_browsers_goes_through(store: Store) -> None:
    # The second outside run: 1,000 signed-in browsers made the tombstone's list of browsers larger
    # than a property; every erasure answered 500 and nothing was erased.
    from dci.storage.keys import LINKS_TABLE, contact_key, visitor_key
    from dci.storage.outbox import LakeOutbox
    from dci.storage.tables import AutoTable

    stores = stores_of(store)
    browsers = [str(uuid.uuid4()) for _ in range(1000)]  # (the links the linker writes, 100 a transaction)
    AutoTable(store.tables, LINKS_TABLE).submit(("upsert", {
        "PartitionKey": contact_key(A), "RowKey": visitor_key(browser), "visitor": browser}) for browser in browsers)
    outbox = LakeOutbox(store.tables)
    removed = privacy.erase(stores.interactions, A, 24 * 60 * M, stores.cases, stores.insights, outbox,
                            stores.erasures, now_ms=CREATED_MS)
    assert removed["visitors"] == 1000 and stores.interactions.visitors_of(A) == []
    assert len(stores.erasures.all()[A].visitors) == 1000
    (entry,) = outbox.erasures()
    assert len(entry.own_visitors) == 1000



def test_erasure_a_batch_that_arrived_before_it_is_dropped_whatever_time_its_events_claim(store: Store) -> None:
    # The third outside run: a batch received before the erasure whose events claim to be up to a
    # minute after it (collect's tolerance), processed after the erasure.
    stores = stores_of(store)
    visitor = str(uuid.uuid4())
    link(stores.interactions, encoded(queued_batch([queued_event(CREATED_MS - 10 * M)], visitor=visitor,
                                                   contact=A)), erasures=stores.erasures)
    privacy.erase(stores.interactions, A, 24 * 60 * M, stores.cases, stores.insights, None, stores.erasures,
                  now_ms=CREATED_MS)
    waited = queued_batch([queued_event(CREATED_MS + 55_000)], visitor=visitor, contact=A) | {
        "received_at": iso(CREATED - timedelta(seconds=4))}
    assert link(stores.interactions, encoded(waited), erasures=stores.erasures) == 0
    later = queued_batch([queued_event(CREATED_MS + 55_000)], visitor=visitor, contact=A) | {
        "received_at": iso(CREATED + timedelta(seconds=2))}
    assert link(stores.interactions, encoded(later), erasures=stores.erasures) == 1  # arrived after: new


def test_erasure_the_lakes_erasure_entry_keeps_to_the_table_limits_however_many_browsers(store: Store) -> None:
    from dci.storage.outbox import ERASURES, MAX_VISITOR_COLUMNS, LakeOutbox
    from dci.storage.tables import LIST_COLUMN_CHARS

    outbox = LakeOutbox(store.tables)
    browsers = [f"{n:032x}" for n in range(20_000)]  # more than a row holds
    outbox.note_erasure(A, browsers, CREATED_MS)
    (entry,) = outbox.erasures()
    assert len(entry.own_visitors) == LIST_COLUMN_CHARS // 33 * MAX_VISITOR_COLUMNS and entry.erased_ms == CREATED_MS
    row = store.tables.get_table_client("lakeoutbox").get_entity(ERASURES, A)
    texts = [value for value in row.values() if isinstance(value, str)]
    assert max(map(len, texts)) <= 32_768 and 2 * sum(map(len, texts)) < 1024 * 1024  # Table storage's limits
