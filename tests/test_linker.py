"""The linker on Azurite: idempotent writes, transactions of ≤ 100, poison, outages."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest
from azure.core.exceptions import AzureError
from azure.data.tables import TableServiceClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dci.linker import BadMessage, link
from dci.storage.interactions import InteractionStore
from dci.storage.keys import interactions_table
from tests.conftest import TABLE_PORT, Store, connection_string
from tests.factories import encoded, queued_batch, queued_event
from tests.proxy import Proxy

NOW_MS = int(datetime(2026, 11, 28, 15, 0, tzinfo=timezone.utc).timestamp() * 1000)
CONTACT = "6f1c2a4e-0b7d-4c1e-9a55-2f4d8b1e7c30"


def queued(events: int | list[dict[str, Any]] = 3, *, visitor: str | None = None, contact: str | None = None,
           start_ms: int = NOW_MS) -> dict[str, Any]:
    """A `portal-events` message as collect writes it."""
    if isinstance(events, int):
        events = [queued_event(start_ms + i * 1000, "search", url="https://portal.example.com/search/?q=vpn",
                               query="vpn", results=i % 3) for i in range(events)]
    return queued_batch(events, visitor=visitor, contact=contact)


body = encoded


@pytest.fixture
def tables(store: Store) -> InteractionStore:
    return InteractionStore(store.tables)


def rows(store: Store, visitor: str) -> list[dict[str, Any]]:
    return InteractionStore(store.tables).visitor_events(visitor)


def test_linker_writes_one_row_per_event_with_deterministic_keys(tables: InteractionStore, store: Store) -> None:
    message = queued(3)
    assert link(tables, body(message)) == 3
    stored = rows(store, message["visitor"])
    assert [r["id"] for r in stored] == [e["id"] for e in message["events"]]
    first = stored[0]
    assert first["PartitionKey"] == f"v_{message['visitor']}"
    assert first["RowKey"] == message["events"][0]["id"]  # the visitor's partition, the event's id
    assert first["table"] == "interactions202611"
    assert (first["ts"], first["query"], first["results"], first["client_family"]) == (NOW_MS, "vpn", 0, "Edge")
    assert "contact" not in first


def test_linker_one_transaction_for_an_anonymous_batch_two_when_signed_in(tables: InteractionStore) -> None:
    before = tables.transactions
    link(tables, body(queued(10)))  # the table is created on first use: not counted below
    before = tables.transactions
    link(tables, body(queued(10)))
    assert tables.transactions - before == 1
    before = tables.transactions
    link(tables, body(queued(10, contact=CONTACT)))
    assert tables.transactions - before in (2, 3)  # link + events (+1 the first time `links` is created)


def test_linker_duplicate_delivery_writes_the_same_rows(tables: InteractionStore, store: Store) -> None:
    message = queued(5, contact=CONTACT)
    link(tables, body(message))
    first = rows(store, message["visitor"])
    link(tables, body(message))
    again = rows(store, message["visitor"])
    assert [r["RowKey"] for r in again] == [r["RowKey"] for r in first]
    assert len(tables.visitors_of(CONTACT)) == 1


def test_linker_a_resend_without_its_token_keeps_the_verified_contact(tables: InteractionStore, store: Store) -> None:
    verified = queued(2, contact=CONTACT)
    anonymous = {key: value for key, value in verified.items() if key != "contact"}  # the token had expired
    link(tables, body(verified))
    link(tables, body(anonymous))
    assert [r.get("contact") for r in rows(store, verified["visitor"])] == [CONTACT, CONTACT]


def test_linker_same_event_in_two_batches_is_one_row(tables: InteractionStore, store: Store) -> None:
    one = queued(2)
    two = queued(one["events"][1:] + queued(1)["events"], visitor=one["visitor"])
    link(tables, body(one))
    link(tables, body(two))
    assert len(rows(store, one["visitor"])) == 3


def test_linker_250_events_for_one_visitor_take_3_transactions(tables: InteractionStore, store: Store) -> None:
    link(tables, body(queued(1)))  # create the month's table first
    message = queued(250)
    before = tables.transactions
    assert link(tables, body(message)) == 250
    assert tables.transactions - before == 3
    assert len(rows(store, message["visitor"])) == 250


def test_linker_mixed_visitors_stay_in_their_own_partitions(tables: InteractionStore, store: Store) -> None:
    messages = [queued(4) for _ in range(3)]
    for message in messages:
        link(tables, body(message))
    for message in messages:
        assert {r["id"] for r in rows(store, message["visitor"])} == {e["id"] for e in message["events"]}


def test_linker_events_across_a_month_boundary_go_to_both_tables(tables: InteractionStore, store: Store) -> None:
    end_of_october = int(datetime(2026, 10, 31, 23, 59, 59, tzinfo=timezone.utc).timestamp() * 1000)
    message = queued(3, start_ms=end_of_october)
    link(tables, body(message))
    assert {r["table"] for r in rows(store, message["visitor"])} == {"interactions202610", "interactions202611"}


def test_linker_signed_in_batch_records_the_link(tables: InteractionStore) -> None:
    message = queued(2, contact=CONTACT)
    link(tables, body(message))
    (record,) = tables.visitors_of(CONTACT)
    assert (record["visitor"], record["site"]) == (message["visitor"], "portal.example.com")


@pytest.mark.parametrize(("raw", "reason"), [
    (b"not json", "not JSON"),
    (b'{"v": 2}', "not a version-1 batch"),
    (json.dumps({**queued(1), "visitor": "a/b#c?d"}).encode(), "visitor"),
    (json.dumps({**queued(1), "events": [{"id": "x"}]}).encode(), "events"),
    (json.dumps({**queued(1), "contact": "not-a-guid"}).encode(), "contact"),
])
def test_linker_bad_message_raises_saying_why(tables: InteractionStore, raw: bytes, reason: str) -> None:
    with pytest.raises(BadMessage, match=reason):
        link(tables, raw)


@pytest.fixture
def proxy(azurite: str) -> Iterator[Proxy]:
    p = Proxy(TABLE_PORT)
    yield p
    p.close()


def _store_through(proxy: Proxy) -> InteractionStore:
    blob, queue = 1, 1  # only the table endpoint is used
    service = TableServiceClient.from_connection_string(
        connection_string(blob, queue, proxy.port), retry_total=0, connection_timeout=2, read_timeout=5)
    return InteractionStore(service)


def test_linker_storage_outage_then_back_loses_nothing_and_duplicates_nothing(
        store: Store, proxy: Proxy) -> None:
    through = _store_through(proxy)
    message = queued(250, contact=CONTACT)
    # An earlier attempt wrote the first transaction, then crashed:
    link(through, body({**message, "events": message["events"][:100]}))
    proxy.down()
    with pytest.raises(AzureError):
        link(through, body(message))  # the host would retry this message later
    proxy.restore()
    assert link(through, body(message)) == 250
    stored = rows(store, message["visitor"])
    assert len(stored) == 250 and len({r["RowKey"] for r in stored}) == 250


def test_linker_through_the_runner_bad_messages_end_in_the_poison_queue(store: Store) -> None:
    import function_app
    from dci.runner import Runner
    from dci.runner.config import load_host_config
    from tests.conftest import ROOT, free_ports

    runner = Runner(function_app.app, load_host_config(ROOT / "tests" / "apps" / "host.json"), dict(os.environ),
                    ("127.0.0.1", free_ports(1)[0]))
    runner.start()
    try:
        good = queued(2)
        store.send("portal-events", json.dumps(good))
        store.send("portal-events", '{"v": 9, "events": []}')
        (poisoned,) = store.wait_for("portal-events-poison", 1, timeout=20)
        assert json.loads(poisoned)["v"] == 9
        assert len(rows(store, good["visitor"])) == 2
    finally:
        runner.stop(timeout=10)


def test_interactions_table_name_follows_the_event_month() -> None:
    assert interactions_table(NOW_MS) == "interactions202611"


def test_linker_a_resent_event_with_another_clock_skew_is_the_same_row(tables: InteractionStore, store: Store) -> None:
    # The beacon re-sends what it could not confirm; each send measures the client's skew anew.
    first = queued(2)
    again = {**first, "skew_ms": 250, "events": [{**e, "ts": e["ts"] + 250} for e in first["events"]]}
    link(tables, body(first))
    link(tables, body(again))
    stored = rows(store, first["visitor"])
    assert len(stored) == 2
    assert [r["ts"] for r in stored] == [e["ts"] for e in first["events"]]  # the first copy wins


def _facts(store: Store) -> list[dict[str, Any]]:
    """Every stored event fact, one row each (bundles opened)."""
    from azure.core.exceptions import ResourceNotFoundError

    from dci.insights.bundles import unbundle

    table = store.tables.get_table_client("insights")
    try:
        return unbundle(row for row in table.list_entities() if row["PartitionKey"].startswith("e_"))
    except ResourceNotFoundError:  # (nothing wrote a fact yet)
        return []


def test_linker_one_event_id_sent_at_three_client_times_is_stored_once_first_wins(store: Store) -> None:
    # The attack that wedged the lake: one visitor re-uses an event id at three times (days apart,
    # across a month boundary): three rows, then two source rows for one key in the lake's MERGE.
    from dci.storage.insights import InsightStore

    tables, insights = InteractionStore(store.tables), InsightStore(store.tables, follow_days=7)
    first = queued(1)
    event = first["events"][0]
    visitor = first["visitor"]
    for n, shift_ms in enumerate((0, -3 * 86_400_000, -5 * 86_400_000 - 3_600_000)):
        repeat = {**event, "ts": event["ts"] + shift_ms, "query": f"changed {n}", "results": 7}
        message = queued([repeat], visitor=visitor) | {"received_at": f"2026-11-28T15:0{n}:00.000Z"}
        link(tables, body(message), insights=insights)
    assert len(InteractionStore(store.tables).visitor_rows(visitor)) == 1
    (kept,) = rows(store, visitor)
    assert (kept["ts"], kept["query"], kept["results"]) == (event["ts"], "changed 0", 7)  # the first copy's
    assert [fact["term"] for fact in _facts(store)] == ["changed 0"]


def test_linker_a_repeat_filed_in_another_month_is_read_as_the_first_copy(store: Store) -> None:
    # A repeat whose time falls in the month before the first copy's lands in that month's table
    # (the one case the insert cannot see); every reader still sees the first copy only.
    tables = InteractionStore(store.tables)
    december = int(datetime(2026, 12, 1, 0, 0, 30, tzinfo=timezone.utc).timestamp() * 1000)
    first = queued([queued_event(december, "search", query="first", results=1)]) | {
        "received_at": "2026-12-01T00:00:31.000Z"}
    repeat = {**first, "events": [{**first["events"][0], "ts": december - 60_000, "query": "repeat"}],
              "received_at": "2026-12-01T00:01:00.000Z"}
    link(tables, body(first))
    link(tables, body(repeat))
    assert {row["table"] for row in tables.visitor_rows(first["visitor"])} == {"interactions202611",
                                                                                 "interactions202612"}
    (kept,) = rows(store, first["visitor"])
    assert (kept["query"], kept["table"]) == ("first", "interactions202612")


def test_linker_two_visitors_with_the_same_event_id_keep_both_and_both_facts(store: Store) -> None:
    from dci.storage.insights import InsightStore

    tables, insights = InteractionStore(store.tables), InsightStore(store.tables, follow_days=7)
    one = queued(1)
    other = queued([{**one["events"][0], "query": "printer"}])  # another browser, the same id
    link(tables, body(one), insights=insights)
    link(tables, body(other), insights=insights)
    assert rows(store, one["visitor"])[0]["query"] == "vpn"
    assert rows(store, other["visitor"])[0]["query"] == "printer"
    assert sorted(fact["term"] for fact in _facts(store)) == ["printer", "vpn"]


def test_linker_an_anonymous_first_copy_gains_the_contact_of_a_verified_repeat(store: Store) -> None:
    tables = InteractionStore(store.tables)
    anonymous = queued(2)
    link(tables, body(anonymous))
    link(tables, body({**anonymous, "contact": CONTACT, "received_at": "2026-11-28T15:05:00.000Z"}))
    assert [row.get("contact") for row in rows(store, anonymous["visitor"])] == [CONTACT, CONTACT]


def test_linker_a_redelivered_message_writes_its_facts_even_when_its_events_are_stored(store: Store) -> None:
    # A crash between the events and their facts: the retry finds every event there already.
    from dci.storage.insights import InsightStore

    tables, insights = InteractionStore(store.tables), InsightStore(store.tables, follow_days=7)
    message = queued(3)
    link(tables, body(message))  # (no facts: the "crash")
    assert link(tables, body(message), insights=insights) == 3
    assert len(_facts(store)) == 3


def test_linker_a_fault_between_the_events_and_their_facts_loses_no_fact_and_counts_none_twice(store: Store) -> None:
    # The facts' write fails after the events' transaction succeeded (a storage outage, a killed
    # worker): the invocation fails, the host delivers the message again, and the retry writes
    # the facts of the events the first delivery stored. Injected at the HTTP layer of the real client.
    from azure.core.exceptions import ServiceRequestError
    from azure.data.tables import TableServiceClient

    from dci.insights import day_rollup
    from dci.storage.insights import InsightStore

    def fail_facts(request: Any) -> None:
        if "/insights(" in request.http_request.url and "e_" in request.http_request.url:
            raise ServiceRequestError("injected: the connection dropped before the facts were written")

    failing = TableServiceClient.from_connection_string(store.connection, raw_request_hook=fail_facts)
    message = queued(3)
    with pytest.raises(ServiceRequestError):
        link(InteractionStore(failing), body(message), insights=InsightStore(failing, follow_days=7))
    assert len(rows(store, message["visitor"])) == 3 and _facts(store) == []  # the events are in, no fact
    insights = InsightStore(store.tables, follow_days=7)
    assert link(InteractionStore(store.tables), body(message), insights=insights) == 3  # the redelivery
    link(InteractionStore(store.tables), body(message), insights=insights)  # and once more: nothing doubles
    facts = _facts(store)
    assert sorted(fact["RowKey"] for fact in facts) == sorted({fact["RowKey"] for fact in facts}) and len(facts) == 3
    day = facts[0]["PartitionKey"][2:]
    assert day_rollup(day, facts, [])["searches"] == {"vpn": 3}


def test_linker_a_client_clock_days_off_files_events_on_the_day_they_arrived(store: Store) -> None:
    # A lying (or wrong) client clock six days ahead: collect corrects the times by the skew it
    # measured; the event used to be filed, and its insight fact counted, six days from now.
    from dci.storage.insights import InsightStore
    from dci.storage.keys import event_day

    six_days = 6 * 86_400_000
    message = queued(1) | {"skew_ms": -six_days}  # ts is already the corrected time, as collect enqueues it
    link(InteractionStore(store.tables), body(message), insights=InsightStore(store.tables, follow_days=7))
    (row,) = rows(store, message["visitor"])
    assert (event_day(row), row["table"]) == ("2026-11-28", "interactions202611")
    assert [fact["PartitionKey"] for fact in _facts(store)] == ["e_2026-11-28"]


SENDS = st.lists(st.tuples(st.integers(-7 * 86_400_000, 60_000), st.booleans(), st.integers(0, 3)),
                 min_size=1, max_size=6)


# (each example uses a fresh visitor and event id: the store need not be emptied between them)
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(SENDS)
@example([(0, False, 0), (-3_600_000, False, 0), (-86_400_000, False, 0)])  # the attack: one id, three times
@example([(0, False, 0), (0, True, 0)])  # an anonymous first copy, then the verified one
@example([(-5 * 86_400_000, True, 1), (0, False, 2), (60_000, True, 3)])
def test_linker_the_event_key_is_visitor_and_id_and_the_first_copy_wins(store: Store, sends: list) -> None:
    # One visitor sends one event id any number of times, at any time collect allows (7 days back
    # to a minute ahead of arrival), signed in or not, in any of four sessions: one row, the first.
    tables = InteractionStore(store.tables)
    visitor, event_id = str(uuid.uuid4()), str(uuid.uuid4())
    for n, (shift, signed_in, session) in enumerate(sends):
        event = queued_event(NOW_MS + shift, "search", query=f"send {n}", results=n)
        message = queued_batch([{**event, "id": event_id}], visitor=visitor, session=f"session-{session:04d}",
                               contact=CONTACT if signed_in else None) | {
            "received_at": f"2026-11-28T15:{n:02d}:00.000Z"}
        link(tables, body(message))
    (kept,) = rows(store, visitor)
    assert (kept["id"], kept["query"], kept["ts"]) == (event_id, "send 0", NOW_MS + sends[0][0])
    assert (kept.get("contact") == CONTACT) == any(signed_in for _, signed_in, _ in sends)
    assert len(tables.visitor_rows(visitor)) == 1  # (all the times allowed here fall in one month)
