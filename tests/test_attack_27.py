"""Issue 27 attack run: collect's memos and fact bundles against crafted and unlucky input. Each test
replays what the run found; it fails until the defect is fixed."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from dci.clock import day_of
from dci.ingest import collect
from dci.ingest.policy import portals
from dci.ingest.ratelimit import RateLimiter
from dci.insights.bundles import unbundle
from dci.linker import link
from dci.settings import load_settings
from dci.storage.insights import InsightStore
from dci.storage.interactions import InteractionStore
from dci.storage.keys import event_key
from tests.conftest import BROWSER_UA, PORTAL_ORIGIN, Store
from tests.factories import BASE, batch, body, encoded, event, iso, queued_batch, queued_event

TS = int(datetime(2026, 11, 28, 15, 0, tzinfo=timezone.utc).timestamp() * 1000)


def stored_facts(store: Store) -> list[dict[str, Any]]:
    return unbundle(dict(row) for row in store.tables.get_table_client("insights").list_entities()
                    if row["PartitionKey"].startswith("e_"))


def test_attack_27_a_repeat_in_the_same_millisecond_keeps_every_fact_of_the_first_batch(store: Store) -> None:
    # The beacon re-sends an event (its first send's answer was lost) in a batch that two collect
    # instances stamp with the same `received_at`: the store counts the shared event as both
    # messages' own (`_insert_rest`: same `received_at`, same message), so both bundles start at its
    # key, and the second message's bundle replaced the first's, taking `other` out of the insights.
    # One-row-per-fact storage kept all three. (Fix: a bundle's RowKey must differ for different
    # sets of facts, e.g. `b~` + a hash of all its keys, or the store must tell the messages apart.)
    visitor = "visitor-same-millisecond"
    ids = sorted((f"event-{n:06d}" for n in range(40)), key=lambda id_: event_key(visitor, id_))
    shared, other, resent_new = ids[0], ids[-1], ids[-2]  # `shared` has the smallest fact key

    def search(event_id: str, n: int) -> dict[str, Any]:
        return {**queued_event(TS + n, "search", url=f"{BASE}/search/?q=vpn", query=f"term {n}", results=1),
                "id": event_id}

    first = queued_batch([search(shared, 0), search(other, 1)], visitor=visitor)
    second = queued_batch([search(shared, 0), search(resent_new, 2)], visitor=visitor)
    assert first["received_at"] == second["received_at"]
    interactions, insights = InteractionStore(store.tables), InsightStore(store.tables, follow_days=7)
    link(interactions, encoded(first), insights=insights)
    link(interactions, encoded(second), insights=insights)
    assert sorted(fact["RowKey"] for fact in stored_facts(store)) == sorted(
        event_key(visitor, id_) for id_ in (shared, other, resent_new))


def test_attack_27_collect_remembers_no_address_it_does_not_store() -> None:
    # Of an off-portal referrer only its origin is stored, and an event whose address is off the
    # portal is refused: collect stores neither address as it came. Yet the URL memo kept both (a
    # referrer's search terms, with nothing the scrubber recognises, for the process's life), while
    # docs/SECURITY.md says a text is remembered only when it is stored exactly as it came.
    # (Fix: keep a URL only when it is on a portal, `found[0]`, as well as unchanged.)
    settings = load_settings()
    memo = portals(settings.portal_issuers)
    referrer = "https://www.bing.com/search?q=jane+doe+divorce+lawyer+attack27"
    off_portal = "https://intranet.example.org/hr/dismissal-of-jane-doe-attack27"
    now = datetime.now(timezone.utc)
    document = batch([event("page_view", referrer=referrer), event("case_form", url=off_portal)],
                     sent_at=iso(now))
    headers = {"content-type": "text/plain", "origin": PORTAL_ORIGIN, "user-agent": BROWSER_UA}
    outcome = collect.handle("POST", headers, body(document), settings, received_at=now,
                             limiter=RateLimiter(limit=10, window=60))
    assert outcome.reply.status == 202 and outcome.message is not None
    enqueued = json.loads(outcome.message)["events"]
    assert [e.get("referrer") for e in enqueued] == ["https://www.bing.com/"]  # what is stored
    assert json.loads(outcome.reply.body)["rejected"][0]["index"] == 1
    assert referrer not in memo.urls and referrer not in memo.referrers
    assert off_portal not in memo.urls


def test_attack_27_a_crafted_event_id_chooses_neither_the_day_nor_the_key_of_its_fact(store: Store) -> None:
    # An event id is any 8-64 of [A-Za-z0-9_-]; one with `Z_` at offsets 23-24 passed for the RowKey
    # of an earlier build (`is_legacy_row_key`), so `fact_ref` filed its fact under the day its first
    # ten characters name and under the id itself: facts planted on any past day (beyond the 7-day
    # age check), or on a "day" no rollup can read, which stays dirty for ever; ids sorting before
    # real dates ("0000000000…") fill the timer's first 1,000 days and push the live days out. Not a
    # change of issue 27, but its bundles rest on fact_ref ("fact keys are hex hashes or ISO-8601
    # times"). (Fix: `is_legacy_row_key` recognises only `iso_of`'s shape, `….mmmZ_`, which holds a
    # `:` and a `.` no event id can.)
    visitor = "visitor-crafted-ids"
    planted = ["2020-01-01T00-00-00-000Z_attack", "0000000000AAAAAAAAAAAAAZ_attack"]
    events = [{**queued_event(TS + n, "search", url=f"{BASE}/search/?q=x", query="buy pills", results=1), "id": id_}
              for n, id_ in enumerate(planted)]
    insights = InsightStore(store.tables, follow_days=7)
    link(InteractionStore(store.tables), encoded(queued_batch(events, visitor=visitor)), insights=insights)
    facts = stored_facts(store)
    assert {fact["PartitionKey"] for fact in facts} == {f"e_{day_of(TS)}"}
    assert sorted(fact["RowKey"] for fact in facts) == sorted(event_key(visitor, id_) for id_ in planted)
    assert set(insights.dirty()) <= {day_of(TS)}
