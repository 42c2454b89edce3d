"""`python -m dci demo seed`: a realistic, deterministic history written the way real events go (the
queue message, the linker, the assembler, the rollups), that seeding again does not double and that
`--remove` takes out to the last row, leaving everything else as it was."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from dci import assembler, linker
from dci.clock import day_of, ms_of
from dci.insights import report
from dci.runner import demo, demo_history
from dci.settings import Settings
from tests.conftest import PORTAL, STORAGE, RecordingQueue, Store, stores_of
from tests.factories import encoded, queued_batch, queued_event

OTHER_PORTAL = "help.example.com"
NOW = datetime(2031, 3, 12, 17, 30, tzinfo=timezone.utc)  # a Wednesday: the test's days never move
FIRST, LAST = "2031-03-10", "2031-03-12"
SESSIONS = 30  # a weekday's: enough for every figure, quick to link
CONTACT = "0b9e3d51-7a2c-4f8e-8d10-3c6a2e9f4b71"  # someone real, not the demo's


def settings() -> Settings:
    return Settings(AzureWebJobsStorage=STORAGE, PORTAL_ISSUERS=f"{PORTAL},{OTHER_PORTAL}")


def rows(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table (without the service's Timestamp), by table; empty tables left out."""
    found = {}
    for table in store.tables.list_tables():
        entities = [{k: getattr(v, "value", v) for k, v in entity.items() if k != "Timestamp"}
                    for entity in store.tables.get_table_client(table.name).list_entities()]
        if entities:
            found[table.name] = sorted(entities, key=lambda row: (row["PartitionKey"], row["RowKey"]))
    return found


def counts(store: Store) -> Counter[str]:
    """How many rows each table holds, and each kind of partition in it (`e_`, `c_`, `d_`, `v_` …)."""
    return Counter(f"{table}/{row['PartitionKey'][:2]}" for table, found in rows(store).items() for row in found)


def insights_of(store: Store) -> dict[str, Any]:
    stores = stores_of(store)
    return report(FIRST, LAST, stores.insights.rollups(FIRST, LAST))


def someone_real(store: Store) -> None:
    """A customer of the store before the demo: searches, reads and opens a case on one of the demo's days."""
    queue = RecordingQueue()
    stores = stores_of(store, queue=queue)
    base = ms_of(datetime(2031, 3, 11, 10, tzinfo=timezone.utc))
    events = [queued_event(base, "search", url=f"https://{PORTAL}/search/?q=vpn+error+809", query="vpn error 809",
                           results=0),
              queued_event(base + 60_000, "page_view", url=f"https://{PORTAL}/knowledgebase/article/KA-01024/en-us",
                           title="Set up the VPN client · Contoso Support", article={"number": "KA-01024"}),
              queued_event(base + 300_000, "case_submitted", url=f"https://{PORTAL}/support/case-created/",
                           ticket="CAS-00001-REAL01")]
    linker.handle(encoded(queued_batch(events, visitor="real-visitor-0001", contact=CONTACT,
                                       received_at="2031-03-11T10:05:01.000Z")), settings(), stores)
    for text, _ in queue.sent:
        assert assembler.handle(text.encode(), stores, settings(), base + 3_600_000, None) == "assembled"
    stores.insights.refresh()


def test_demo_plan_is_realistic_and_deterministic() -> None:
    hosts = (PORTAL, OTHER_PORTAL)
    now_ms = ms_of(NOW)
    days = demo_history.plan(hosts, date(2031, 2, 24), NOW.date(), now_ms)
    assert demo_history.plan(hosts, date(2031, 2, 24), NOW.date(), now_ms) == days
    sessions = [s for day_sessions, later in days for s in day_sessions + later]
    messages = [json.loads(body) for s in sessions[:300] for body in demo_history.messages(s, settings())]
    events = [event for message in messages for event in message["events"]]
    searches = [event for event in events if event["type"] == "search"]
    positions = Counter(event["position"] for event in events if event["type"] == "search_click")
    per_day = Counter(date.fromisoformat(day_of(s.start_ms)) for s in sessions)
    weekdays = [n for day, n in per_day.items() if day.weekday() < 5 and day < NOW.date()]
    weekends = [n for day, n in per_day.items() if day.weekday() >= 5]

    assert all(message["visitor"].startswith("demo-") for message in messages)
    assert {message["contact"] for message in messages if "contact" in message} <= demo_history.DEMO_CONTACTS
    assert {message["site"] for message in messages} == set(hosts)
    assert min(weekdays) > 200 and max(weekdays) < 400 and max(weekends) < 0.6 * min(weekdays)
    assert 0.1 < sum(event.get("results") == 0 for event in searches) / len(searches) < 0.35
    assert positions[1] > positions[2] > positions[3] > positions[4] > 0 and max(positions) >= 6
    assert {"pasword reset", "vpn error 809", "vpn 809 error"} <= {event["query"] for event in searches}
    assert any(event.get("article", {}) and event["title"].endswith(" · Contoso Support") for event in events)
    assert any(s.key.endswith("/later") and s.ticket for s in sessions)  # a customer's second case, days later
    signed_in_later = [m for m in messages if "contact" in m and any(
        o["session"] == m["session"] and "contact" not in o for o in messages)]
    assert signed_in_later  # sessions that start anonymous and sign in


def test_demo_seed_fills_the_insights_once_and_remove_takes_out_only_it(store: Store) -> None:
    someone_real(store)
    before, report_before = rows(store), insights_of(store)
    stores = stores_of(store)

    first = demo.seed(settings(), stores, days=3, weekday_sessions=SESSIONS, now=NOW)
    seeded = insights_of(store)
    assert (first["from"], first["to"], first["skipped"]) == (FIRST, LAST, 0)
    demo_cases = len(stores.cases.assembled()) - 1  # (and the real customer's)
    assert demo_cases >= 3 and seeded["cases"] == demo_cases + 1
    site_search = seeded["site_search"]
    assert site_search["searches"] > 50 and site_search["zero"] > 5 and site_search["clicked"] > 10
    assert seeded["zero_result_searches"]
    assert {urlsplit(article["url"]).netloc for article in seeded["articles"] if article["url"]} == {
        PORTAL, OTHER_PORTAL}
    assert rows(store)["state"] == before["state"]  # no portal's last beacon is claimed by the demo

    seeded_counts = counts(store)
    again = demo.seed(settings(), stores, days=3, weekday_sessions=SESSIONS, now=NOW)  # what is there is skipped
    assert (again["skipped"], again["sessions"]) == (first["sessions"], 0)
    assert counts(store) == seeded_counts and insights_of(store) == seeded
    relinked = demo.seed(settings(), stores, days=3, weekday_sessions=SESSIONS, now=NOW, again=True)
    assert relinked["events"] == first["events"]  # every batch through the linker again: nothing doubles
    assert counts(store) == seeded_counts and insights_of(store) == seeded

    # What agents attached to the demo's cases (issue 29), its articles, and the one changed halfway.
    assert first["attachments"] > 0 and stores.answers.attached(FIRST, LAST)
    assert len(stores.answers.versions()) == len(demo_history.ARTICLES)
    (changed,) = stores.answers.suggestion_states().values()
    assert (changed["term"], changed["article"]) == (demo_history.CHANGED_TERM, "KA-01026")

    removed = demo.remove(settings(), stores)
    assert removed["events"] == first["events"] and removed["cases"] == demo_cases
    assert rows(store) == before and insights_of(store) == report_before


def test_demo_seed_with_one_portal_uses_it_alone(store: Store) -> None:
    one = Settings(AzureWebJobsStorage=STORAGE, PORTAL_ISSUERS=PORTAL)
    done = demo.seed(one, stores_of(store), days=1, weekday_sessions=10, now=NOW)
    assert done["portals"] == [PORTAL] and done["sessions"] > 0
    sites = {row["site"] for table, found in rows(store).items() if table.startswith("interactions") for row in found}
    assert sites == {PORTAL}


def test_demo_days_are_their_own() -> None:
    """A day's sessions do not depend on the range asked for: seeding more days adds, never rewrites."""
    one = demo_history.plan((PORTAL, OTHER_PORTAL), NOW.date(), NOW.date(), ms_of(NOW))
    three = demo_history.plan((PORTAL, OTHER_PORTAL), NOW.date() - timedelta(days=2), NOW.date(), ms_of(NOW))
    assert one[0][0] == three[-1][0]


def test_demo_command_says_what_it_did_in_counts_only(store: Store, capsys: Any) -> None:
    from dci.__main__ import main

    assert main(["demo", "seed", "--days", "2", "--sessions-per-day", "20", "--settings", "missing.json"]) == 0
    assert main(["demo", "seed", "--remove", "--settings", "missing.json"]) == 0
    out = capsys.readouterr().out
    assert "seeded" in out and "removed the demo history" in out
    assert "demo-" not in out and not any(contact in out for contact in demo_history.DEMO_CONTACTS)
    assert not any(query in out for query, *_ in demo_history.TERMS if len(query) > 5)
