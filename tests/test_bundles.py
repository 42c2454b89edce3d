"""Fact bundles (issue 27): one row per batch and day instead of one per fact. Stored at their limits
in Azurite, read back as the single-fact rows they replace, found by a term's and an article's
drill-down, and taken apart by an erasure — beside the single-fact rows of earlier builds."""

from __future__ import annotations

from typing import Any

from azure.data.tables import EdmType, EntityProperty
from hypothesis import given, settings
from hypothesis import strategies as st

from dci.insights import COLUMN_LIMIT, encode, event_fact, utf16_len, visitor_hash
from dci.insights.bundles import BUNDLE_PREFIX, MAX_MARKERS, bundles, unbundle
from dci.storage.insights import InsightStore
from dci.storage.keys import event_key
from tests.conftest import PORTAL, Store

DAY = "2031-04-01"
TS = 1_932_800_000_000  # 2031-04-01T…


def search(visitor: str, n: int, query: str, results: int = 1) -> tuple[str, str, dict[str, Any]]:
    row = {"type": "search", "query": query, "results": results, "session": f"s-{visitor}", "site": PORTAL,
           "ts": TS + n, "id": f"event-{n:06d}"}
    fact = event_fact(row, visitor)
    assert fact is not None
    return DAY, event_key(visitor, row["id"]), fact


def click(visitor: str, n: int, query: str, article: str) -> tuple[str, str, dict[str, Any]]:
    row = {"type": "search_click", "query": query, "position": 1, "session": f"s-{visitor}", "site": PORTAL,
           "ts": TS + n, "id": f"event-{n:06d}",
           "target": f"https://{PORTAL}/knowledgebase/article/{article}/en-us"}
    fact = event_fact(row, visitor)
    assert fact is not None
    return DAY, event_key(visitor, row["id"]), fact


def single(day: str, key: str, fact: dict[str, Any]) -> dict[str, Any]:
    """A fact row as earlier builds wrote it."""
    return {"PartitionKey": f"e_{day}", "RowKey": key,
            **{name: EntityProperty(value, EdmType.INT64) if name == "ts" else value for name, value in fact.items()}}


def stored(store: Store) -> list[dict[str, Any]]:
    return [dict(row) for row in store.tables.get_table_client("insights").list_entities()
            if row["PartitionKey"].startswith("e_")]


def as_rows(facts: list[tuple[str, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return sorted(({"PartitionKey": f"e_{day}", "RowKey": key, **fact} for day, key, fact in facts),
                  key=lambda row: (row["PartitionKey"], row["RowKey"]))


def test_bundles_of_the_largest_message_fit_table_storage_and_read_back_whole(store: Store) -> None:
    # The linker takes up to 1,000 events a message; each term is 100 control characters (six
    # UTF-16 units each in JSON) or CJK, all distinct, half of them clicks that also name an article.
    visitor = "v" * 32
    facts = []
    for n in range(1000):
        query = (chr(1 + n % 30) * 99 + chr(0x4E00 + n)) if n % 2 else f"{'検索語' * 33}{n}"
        facts.append(click(visitor, n, query, f"KA-{n:05d}") if n % 4 == 1 else search(visitor, n, query))
    rows = bundles(facts)
    assert len(rows) > 1  # split: no one property holds them all
    for row in rows:
        assert utf16_len(row["facts"]) <= COLUMN_LIMIT
        assert sum(name.startswith(("t_", "a_")) for name in row) <= MAX_MARKERS
    insights = InsightStore(store.tables, follow_days=7)
    assert insights.add_events(facts) == 1000  # Azurite enforces the string and entity limits
    assert unbundle(stored(store)) == as_rows(facts)
    assert all(row["RowKey"].startswith(BUNDLE_PREFIX) for row in stored(store))


def test_bundles_a_message_stored_twice_is_one_bundle(store: Store) -> None:
    insights = InsightStore(store.tables, follow_days=7)
    facts = [search("visitor-a", n, "vpn error 809") for n in range(10)]
    insights.add_events(facts)
    insights.add_events(facts)
    assert len(stored(store)) == 1 and len(unbundle(stored(store))) == 10


def test_bundles_drill_downs_and_rollups_read_bundles_and_earlier_single_fact_rows_alike(store: Store) -> None:
    insights = InsightStore(store.tables, follow_days=7)
    table = store.tables.create_table_if_not_exists("insights")
    old_day, old_key, old_fact = search("visitor-old", 900, "vpn error 809", results=0)
    table.upsert_entity(single(old_day, old_key, old_fact))  # an earlier build's row
    insights.add_events([search("visitor-a", 1, "vpn error 809"), click("visitor-a", 2, "vpn error 809", "KA-01023"),
                         search("visitor-a", 3, "printer offline")])
    insights.add_events([search("visitor-b", 4, "VPN error 809")])  # the same term, another bundle
    term_rows = insights.term_events(DAY, DAY, "vpn error 809")
    assert sorted(row["kind"] for row in term_rows) == ["click", "search", "search", "search"]
    assert {row["term"] for row in term_rows} == {"vpn error 809"}
    assert all(row["PartitionKey"] == f"e_{DAY}" for row in term_rows)
    cases, sessions, followed = insights.behind(DAY, DAY, search="vpn error 809")
    assert (cases, sessions, followed) == ([], 3, 0)
    _, read_sessions, _ = insights.behind(DAY, DAY, article="KA-01023")
    assert read_sessions == 0  # a click names the article; only reads count behind an article
    day = insights.compute_all(DAY)["rollup"]
    assert day["searches"] == {"vpn error 809": 3, "printer offline": 1}
    assert day["zero_result_searches"] == {"vpn error 809": 1}


def test_bundles_an_erasure_takes_its_facts_out_of_a_bundle_and_keeps_the_rest(store: Store) -> None:
    # A shared browser: the erased contact's events are some of one batch's (its first among them).
    insights = InsightStore(store.tables, follow_days=7)
    facts = [search("shared-browser", n, f"term {n}") for n in range(6)]
    insights.add_events(facts)
    insights.add_events([search("other-visitor", 50, "term 0")])
    ordered = sorted(facts, key=lambda fact: fact[1])
    doomed, kept = ordered[:2], ordered[2:]
    insights.remove_events([(day, key) for day, key, _ in doomed], visitor_hash("shared-browser"))
    left = unbundle(stored(store))
    other = search("other-visitor", 50, "term 0")[1]
    assert [row["RowKey"] for row in left] == sorted([key for _, key, _ in kept] + [other])
    assert len(stored(store)) == 2  # the rest re-bundled under a new key, the old row gone
    insights.remove_events([(day, key) for day, key, _ in kept], visitor_hash("shared-browser"))
    assert [row["RowKey"] for row in unbundle(stored(store))] == [other]


def test_bundles_an_erasure_removes_single_fact_rows_of_earlier_builds(store: Store) -> None:
    insights = InsightStore(store.tables, follow_days=7)
    table = store.tables.create_table_if_not_exists("insights")
    day, key, fact = search("visitor-old", 1, "vpn")
    table.upsert_entity(single(day, key, fact))
    insights.remove_events([(day, key)], visitor_hash("visitor-old"))
    assert stored(store) == []


fact_texts = st.text(st.characters(codec="utf-8"), max_size=120)


@settings(derandomize=True, max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["v1", "v2", "v3"]), st.sampled_from([DAY, "2031-04-02"]),
                          st.integers(0, 10**6), fact_texts, st.booleans()), max_size=60, unique_by=lambda t: t[2]))
def test_bundles_open_to_exactly_the_facts_they_were_made_of(spec: list) -> None:
    facts = []
    for visitor, day, n, text, is_click in spec:
        _, key, fact = click(visitor, n, text or "x", "KA-1") if is_click else search(visitor, n, text or "x")
        facts.append((day, key, fact))
    rows = bundles(facts)
    assert all(utf16_len(row["facts"]) <= COLUMN_LIMIT for row in rows)
    assert len({(row["PartitionKey"], row["RowKey"]) for row in rows}) == len(rows)
    assert unbundle(rows) == as_rows(facts)
    assert encode(unbundle(bundles(facts))) == encode(as_rows(facts))
