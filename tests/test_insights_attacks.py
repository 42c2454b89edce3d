"""Issue 23 (D1, D4): anonymous beacon batches against the insights. Each test replays an attack
first — a day's rollup that outgrows its column, a bad day that broke every request, an anonymous
view that renamed an article or pointed its link off the portal, a rate above 1 — then checks the
defence: bounded lists with an explicit "other", a size check before the write, missing days named,
titles and links from trusted sources, rates from counts that keep them ≤ 1."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import jsonschema
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dci.dataverse.client import Dataverse, TokenSource, session
from dci.insights import (
    COLUMN_LIMIT,
    MAX_KEYS_PER_DAY,
    MAX_TERMS_PER_VISITOR,
    RollupTooLarge,
    article_link,
    encode,
    event_fact,
    report,
    rollup,
    stored_columns,
    total,
    utf16_len,
    visitor_hash,
)
from dci.openapi import document
from dci.runner.dataverse import LocalDataverse
from dci.settings import Settings
from dci.storage.insights import InsightStore
from dci.views import Asked, insights_reply
from tests.conftest import PORTAL, STORAGE, Store
from tests.test_insights import C1, C2, Scene, at, insights_api, kb

DAY = "2031-04-01"
CJK = "文字化けの検索語"  # json.dumps would write each as \uXXXX: 6 characters for 1


def fact_key(n: int) -> str:
    return f"{DAY}T09:00:00.000Z_{n:06d}"


def read_fact(n: int, visitor: str, title: str, url: str = "") -> dict[str, Any]:
    row = {"type": "page_view", "article_number": f"KA-{n:05d}", "title": title, "session": f"s-{visitor}",
           "site": PORTAL, "ts": at(22, 9) + n, "url": url or kb(f"KA-{n:05d}")}
    fact = event_fact(row, visitor)
    assert fact is not None
    return fact


def search_fact(n: int, visitor: str, query: str) -> dict[str, Any]:
    fact = event_fact({"type": "search", "query": query, "results": 0, "session": f"s-{visitor}", "site": PORTAL,
                       "ts": at(22, 9) + n}, visitor)
    assert fact is not None
    return fact


# --- D1: a day's rollup outgrows its column ---------------------------------------------------------

def test_insights_a_day_of_long_titles_and_cjk_terms_is_stored_and_served(store: Store) -> None:
    insights = InsightStore(store.tables, follow_days=7)
    # The attack: 100 distinct articles with 100-character titles, and long CJK terms; then many
    # visitors (a per-visitor bound alone is no defence: visitor ids are free) with 300 of each.
    facts = [read_fact(n, "visitor-attack", ("Ü" + CJK * 13)[:99] + str(n % 10), "https://" + PORTAL +
                       f"/knowledgebase/article/KA-{n:05d}/" + "x" * 150) for n in range(100)]
    facts += [search_fact(n, "visitor-attack", f"{CJK * 12}{n:04d}") for n in range(60)]
    facts += [read_fact(1000 + n, f"visitor-{n}", CJK * 12 + f"{n:04d}") for n in range(300)]
    facts += [search_fact(2000 + n, f"visitor-{n}", f"{n:04d}{CJK * 12}") for n in range(300)]
    insights.add_events([(DAY, fact_key(n), fact) for n, fact in enumerate(facts)])
    assert insights.refresh(only=[DAY]) == [DAY]  # stored (today's code: the upsert is refused)
    assert insights.dirty() == {}

    day = insights.rollups(DAY, DAY)[0]
    for name, value in day.items():
        assert utf16_len(encode(value)) <= COLUMN_LIMIT, name
    assert len(day["searches"]) <= MAX_KEYS_PER_DAY and len(day["article_reads"]) <= MAX_KEYS_PER_DAY
    # Totals still add up: what the lists do not name is counted in "other".
    assert sum(day["searches"].values()) + day["other"]["searches"] == day["site_search"]["searches"] == 360
    assert sum(day["zero_result_searches"].values()) + day["other"]["zero_result_searches"] == 360
    assert sum(day["article_reads"].values()) + day["other"]["article_reads"] == 400
    # One visitor named at most MAX_TERMS_PER_VISITOR of its 60 terms.
    assert sum(1 for t in day["searches"] if t.startswith(CJK)) <= MAX_TERMS_PER_VISITOR

    status, body = insights_api(f"from={DAY}&to={DAY}")
    assert status == 200 and body["missing_days"] == []
    jsonschema.validate(body, document()["components"]["schemas"]["Insights"])
    assert body["site_search"]["searches"] == 360 and body["other"]["searches"] == day["other"]["searches"]


def test_insights_a_maximal_rollup_at_the_column_limit_is_stored_and_read_back(store: Store) -> None:
    insights = InsightStore(store.tables, follow_days=7)
    # The costliest characters: astral (2 UTF-16 units), controls (escaped, 6 units), CJK.
    facts = [search_fact(n, f"v{n}", ("\U0001f600\x01" + CJK) * 25 + f"{n:04d}") for n in range(400)]
    facts += [read_fact(5000 + n, f"v{n}", "\U0001f600" * 99 + "\x02") for n in range(400)]
    insights.add_events([(DAY, fact_key(n), fact) for n, fact in enumerate(facts)])
    assert insights.refresh(only=[DAY]) == [DAY]
    day = insights.rollups(DAY, DAY)[0]
    assert max(utf16_len(text) for text in stored_columns(day).values()) > COLUMN_LIMIT * 0.9  # near the limit

    # Exactly at the limit: a column of 32,768 UTF-16 units is written and read back unchanged ...
    at_limit = dict(day, searches={"\U0001f600" * 100 + "a": 1})
    pad = COLUMN_LIMIT - utf16_len(encode(at_limit["searches"]))
    at_limit["searches"] = {"\U0001f600" * (100 + pad // 2) + "a" * (pad % 2 + 1): 1}
    columns = stored_columns(at_limit)
    assert utf16_len(columns["searches"]) == COLUMN_LIMIT
    insights._table.client.upsert_entity({"PartitionKey": f"d_{DAY}", "RowKey": "rollup", **columns})
    assert insights.read(DAY, DAY) == ([at_limit], [])
    # ... one unit more is refused before anything is written.
    over = dict(at_limit, searches={next(iter(at_limit["searches"])) + "a": 1})
    with pytest.raises(RollupTooLarge, match="searches"):
        stored_columns(over)


def test_insights_the_whole_days_list_of_its_slices_is_measured_before_any_write(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # The whole day's row names its slice rows (`slices`); that column escaped the size check (it was
    # added after it). A day whose slices' names would not fit a column is refused before any write.
    from dci.insights import slice_key
    from dci.storage.insights import ROLLUP

    insights = InsightStore(store.tables, follow_days=7)
    insights.add_events([(DAY, fact_key(0), search_fact(0, "visitor-a", "vpn"))])
    whole = insights.compute_all(DAY)[ROLLUP]
    many = {slice_key(None, f"{'h' * 240}{n:03d}.example"): whole for n in range(150)}  # ~40,000 units of names
    monkeypatch.setattr(insights, "compute_all", lambda day: {ROLLUP: whole, **many})
    assert insights.refresh(only=[DAY]) == []  # skipped: RollupTooLarge, and it stays dirty
    assert DAY in insights.dirty()
    assert insights._slice_keys(DAY) == [] and insights._rows(DAY, DAY, ROLLUP) == []  # nothing written
    monkeypatch.setattr(insights, "compute_all", lambda day: {ROLLUP: whole, **dict(list(many.items())[:2])})
    assert insights.refresh(only=[DAY]) == [DAY]
    assert json.loads(insights._rows(DAY, DAY, ROLLUP)[0]["slices"]) == sorted(many)[:2]


def test_insights_a_bad_day_is_named_missing_and_the_others_are_served(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    scene = Scene(store)
    scene.browse("visitor-aaaa", [(at(0, 9), "search", {"query": "secret term", "results": 0,
                                                         "url": "https://portal.example.com/search/?q=x"})])
    scene.browse("visitor-bbbb", [(at(1, 9), "search", {"query": "vpn", "results": 2,
                                                         "url": "https://portal.example.com/search/?q=vpn"})])
    bad = "2031-03-10"
    # A day that cannot be built (here: a case fact that is not JSON).
    scene.insights._table.client.upsert_entity({"PartitionKey": f"c_{bad}", "RowKey": "case-x", "fact": "{"})
    scene.insights.mark([bad])
    caplog.set_level(logging.INFO)
    for _ in range(2):
        status, body = insights_api("from=2031-03-10&to=2031-03-11")
        assert status == 200  # today's code: 500 on every request
        assert body["missing_days"] == [bad]
        assert body["site_search"]["searches"] == 1  # the good day's
    skipped = [r for r in caplog.records if r.levelno >= logging.WARNING and bad in r.getMessage()]
    assert len(skipped) == 1  # logged once (per process), tried on each request
    assert bad in scene.insights.dirty()  # stays dirty: the next run tries it again
    assert bad not in scene.insights.refresh()  # the timer skips it too
    assert not any("secret term" in r.getMessage() for r in caplog.records)
    status, page = html_insights("from=2031-03-10&to=2031-03-11")
    assert status == 200 and "could not be counted" in page and bad in page
    # Fixed, it is counted again.
    scene.insights._table.delete(f"c_{bad}", "case-x")
    status, body = insights_api("from=2031-03-10&to=2031-03-11")
    assert body["missing_days"] == [] and body["site_search"]["searches"] == 2


def html_insights(query: str) -> tuple[int, str]:
    import azure.functions as func

    import function_app

    params = dict(p.split("=") for p in query.split("&")) | {"format": "html"}
    response = function_app.insights(func.HttpRequest("GET", "http://localhost/api/insights", body=b"",
                                                      params=params))
    return response.status_code, response.get_body().decode()


# --- per visitor ------------------------------------------------------------------------------------

def test_insights_one_visitor_adds_a_bounded_number_of_terms_to_a_day() -> None:
    facts = [search_fact(n, "visitor-one", f"term {n}") for n in range(50)]
    facts += [search_fact(100, "visitor-two", "term 49")]  # another visitor's term is named
    day = rollup(DAY, facts, [], set())
    assert len(day["searches"]) == MAX_TERMS_PER_VISITOR + 1 and day["searches"]["term 49"] == 1
    assert day["other"]["searches"] == 50 - MAX_TERMS_PER_VISITOR
    assert sum(day["searches"].values()) + day["other"]["searches"] == day["site_search"]["searches"] == 51


def test_insights_facts_carry_a_domain_separated_visitor_hash_never_the_id() -> None:
    fact = search_fact(1, "visitor-0001", "vpn")
    assert fact["visitor"] == visitor_hash("visitor-0001") != hashlib.sha256(b"visitor-0001").hexdigest()[:20]
    assert "visitor-0001" not in json.dumps(fact)


# --- D4: who names an article -----------------------------------------------------------------------

def view(title: str, number: str = "KA-00001", url: str | None = None) -> dict[str, Any]:
    return {"article": {"number": number, "lang": "en-us"}, "title": title, "url": url or kb(number)}


def test_insights_an_anonymous_view_cannot_rename_an_article_seen_signed_in(store: Store) -> None:
    scene = Scene(store)
    scene.browse("visitor-aaaa", [(at(0, 9), "page_view", view("Reset your password"))], contact=C1)
    scene.browse("visitor-evil", [(at(0, 9, 30), "page_view", view("Call +1 555 0100 for help"))])
    scene.browse("visitor-evi2", [(at(1, 9), "page_view", view("Pay here: evil.example"))])
    scene.case(C1, at(1, 10), "CAS-1")
    status, body = insights_api("from=2031-03-10&to=2031-03-11")
    assert [(a["article"], a["title"]) for a in body["articles"]] == [("KA-00001", "Reset your password")]


def test_insights_the_first_title_wins_among_anonymous_views(store: Store) -> None:
    scene = Scene(store)
    scene.browse("visitor-aaaa", [(at(0, 9), "page_view", view("Reset your password"))])
    scene.browse("visitor-evil", [(at(0, 10), "page_view", view("Renamed later that day"))])
    scene.browse("visitor-evi2", [(at(1, 9), "page_view", view("Renamed the next day"))])
    scene.browse("visitor-cccc", [(at(1, 10), "page_view", view("Reset your password"))], contact=C1)
    scene.case(C1, at(1, 11), "CAS-1")
    assert insights_api("from=2031-03-10&to=2031-03-11")[1]["articles"][0]["title"] == "Reset your password"
    assert insights_api("from=2031-03-11&to=2031-03-11")[1]["articles"][0]["title"] == "Reset your password"


def test_insights_an_article_link_off_the_portal_is_dropped(store: Store) -> None:
    scene = Scene(store)
    evil = f"https://{PORTAL}/SignIn?ReturnUrl=https%3A%2F%2Fevil.example%2F"
    scene.browse("visitor-evil", [(at(0, 9), "page_view", view("Reset", url=evil))])
    scene.browse("visitor-aaaa", [(at(0, 10), "page_view", view("Reset", number="KA-00002",
                                                                 url=kb("KA-00002") + "?ReturnUrl=//evil.example#x"))],
                 contact=C1)
    scene.case(C1, at(0, 11), "CAS-1")
    scene.browse("visitor-cccc", [(at(0, 12), "page_view", view("Reset"))], contact=C1)
    rows = {a["article"]: a["url"] for a in insights_api("from=2031-03-10&to=2031-03-10")[1]["articles"]}
    assert rows == {"KA-00002": kb("KA-00002")}  # its own address, without the query string


@pytest.mark.parametrize(("url", "number", "link"), [
    (kb("KA-1"), "KA-1", kb("KA-1")),
    (kb("KA-1") + "?ReturnUrl=https://evil.example#top", "ka-1", kb("KA-1")),
    (f"https://{PORTAL}/en-US/knowledgebase/article/KA-1", "KA-1", f"https://{PORTAL}/en-US/knowledgebase/article/KA-1"),
    (f"https://{PORTAL}/SignIn?ReturnUrl=/knowledgebase/article/KA-1", "KA-1", None),  # not the article's path
    (kb("KA-2"), "KA-1", None),  # another article
    ("https://evil.example/knowledgebase/article/KA-1/en-us", "KA-1", None),  # another host
    (f"https://user@{PORTAL}/knowledgebase/article/KA-1", "KA-1", None),
    (f"javascript://{PORTAL}/knowledgebase/article/KA-1", "KA-1", None),
    ("", "KA-1", None),
])
def test_article_link_is_only_the_articles_own_address(url: str, number: str, link: str | None) -> None:
    assert article_link(url, number, PORTAL) == link


def test_rollups_before_this_version_lose_their_off_portal_links_and_later_titles() -> None:
    old = [{"day": "d1", "cases": 0, "sessions": 0, "sessions_followed": 0, "lead_ms": [],
            "article_pages": {"KA-1": {"title": "First", "url": kb("KA-1") + "?ReturnUrl=//evil.example"}}},
           {"day": "d2", "cases": 0, "sessions": 0, "sessions_followed": 0, "lead_ms": [],
            "article_pages": {"KA-1": {"title": "Later", "url": kb("KA-1")}}}]
    assert total(old)["article_pages"]["KA-1"] == {"title": "First", "url": kb("KA-1"), "signed_in": False,
                                                 "since": None}


# --- D4: titles from Dataverse's knowledge articles ---------------------------------------------------

@pytest.fixture
def dataverse(fake: LocalDataverse) -> LocalDataverse:
    return fake


def test_dataverse_article_titles_are_read_once_and_remembered(dataverse: LocalDataverse) -> None:
    dataverse.add_article("KA-00001", "Reset your password")
    dataverse.add_article("KA-00002", "Draft, not published", published=False)
    dataverse.add_article("KA-0'3", "A quote in the number")
    client = Dataverse(dataverse.url, TokenSource(dataverse.url, fixed="test-token"), session(backoff=0.05))
    assert client.article_titles(["ka-00001", "KA-00002", "KA-0'3", "KA-99999"]) == {
        "KA-00001": "Reset your password", "KA-0'3": "A quote in the number"}
    asked = len(dataverse.requests)
    assert client.article_titles(["KA-00001", "KA-99999"]) == {"KA-00001": "Reset your password"}
    assert len(dataverse.requests) == asked  # remembered, the unknown one too


def test_insights_titles_come_from_dataverse_where_configured(store: Store, dataverse: LocalDataverse) -> None:
    scene = Scene(store)
    dataverse.add_article("KA-00001", "Reset your password (Dataverse)")
    scene.browse("visitor-aaaa", [(at(0, 9), "page_view", view("Seen signed in"))], contact=C1)
    scene.case(C1, at(0, 10), "CAS-1")
    configured = Settings(AzureWebJobsStorage=STORAGE, PORTAL_ISSUERS=PORTAL, DATAVERSE_URL=dataverse.url,
                          DATAVERSE_TOKEN="test-token")
    asked = Asked("", {"from": "2031-03-10", "to": "2031-03-10"}, None, datetime(2031, 3, 20, tzinfo=timezone.utc))
    reply = insights_reply(asked, configured, scene.stores)
    body = json.loads(reply.body)
    assert [(a["title"], a["url"]) for a in body["articles"]] == [("Reset your password (Dataverse)", kb("KA-00001"))]
    dataverse.fail(500, times=20)  # Dataverse down: the page views' title, not an error
    configured_again = Settings(AzureWebJobsStorage=STORAGE, PORTAL_ISSUERS=PORTAL, DATAVERSE_URL=dataverse.url,
                                DATAVERSE_TOKEN="test-token-2")
    dataverse.tokens.add("test-token-2")
    reply = insights_reply(asked, configured_again, scene.stores)
    assert reply.status == 200 and json.loads(reply.body)["articles"][0]["title"] == "Seen signed in"


# --- rates are at most 1 ------------------------------------------------------------------------------

SESSIONS = st.sampled_from(["s1", "s2", "s3", "s4"])
FACT = st.fixed_dictionaries({"kind": st.sampled_from(["search", "read", "click"]), "session": SESSIONS,
                              "term": st.sampled_from(["vpn", "mfa"]), "article": st.sampled_from(["KA-1", "KA-2"]),
                              "results": st.sampled_from([None, 0, 3]), "ts": st.integers(0, 10)})
CASE = st.fixed_dictionaries({"searches": st.lists(st.sampled_from(["vpn", "mfa"]), unique=True),
                              "zero": st.lists(st.sampled_from(["vpn", "mfa"]), unique=True),
                              "articles": st.lists(st.sampled_from(["KA-1", "KA-2"]), unique=True),
                              "lead_ms": st.integers(0, 10**6), "sessions": st.just({})})
DAY_OF = st.tuples(st.lists(FACT, max_size=8), st.lists(CASE, max_size=4), st.sets(SESSIONS))


def _rates(node: Any) -> Iterator[tuple[float, list[float] | None]]:
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "rate" or name.endswith("_rate"):
                interval = node.get("interval", node.get(name.replace("_rate", "_interval")))
                if isinstance(value, dict):
                    yield value["rate"], value["interval"]
                else:
                    yield value, interval if isinstance(interval, list) else None
            else:
                yield from _rates(value)
    elif isinstance(node, list):
        for item in node:
            yield from _rates(item)


@settings(max_examples=60, deadline=None)
@given(st.lists(DAY_OF, min_size=1, max_size=3))
# Found first: an article in two cases' timelines but read once in the range (today: rate 2.0).
@example([([{"kind": "read", "session": "s1", "term": "vpn", "article": "KA-1", "results": None, "ts": 0}],
           [{"searches": [], "zero": [], "articles": ["KA-1"], "lead_ms": 1, "sessions": {}}] * 2, set())])
# ... and an article read only before the range (no reads: no rate, not infinity).
@example([([], [{"searches": [], "zero": [], "articles": ["KA-2"], "lead_ms": 1, "sessions": {}}], {"s1"})])
def test_insights_every_rate_is_at_most_one(generated: list) -> None:
    rollups = []
    for n, (facts, cases, followed) in enumerate(generated):
        facts = [{k: v for k, v in f.items() if v is not None and (k != "results" or f["kind"] == "search")}
                 for f in facts]
        day = f"2031-01-0{n + 1}"  # (the cases are that day's: their terms and articles count on it)
        rollups.append(rollup(day, facts, [{"day": day, **case} for case in cases], followed))
    whole = report("2031-01-01", f"2031-01-0{len(generated)}", rollups)
    rates = list(_rates(whole))
    assert rates  # (the walk finds them)
    for rate, interval in rates:
        if rate is not None:
            assert 0 <= rate <= 1
        if interval is not None:
            assert 0 <= interval[0] <= (rate if rate is not None else interval[0]) <= interval[1] <= 1
    for day in rollups:  # and each day's lists add up to its counts
        assert sum(day["searches"].values()) + day["other"]["searches"] == day["site_search"]["searches"]


def test_insights_a_backdated_view_cannot_rename_an_article_and_only_its_own_page_names_it(store: Store) -> None:
    # The outside attack run on the fixes: "first" went by the event's time, which a client can set
    # up to 7 days back; and a sign-in page's view claiming an article number named that article.
    from dci.linker import link
    from tests.factories import encoded, queued_batch, queued_event

    scene = Scene(store)

    def arrive(visitor: str, ts: int, received: str, fields: dict[str, Any], contact: str | None = None) -> None:
        message = queued_batch([queued_event(ts, "page_view", **fields)], visitor=visitor, contact=contact,
                               received_at=received)
        link(scene.interactions, encoded(message), insights=scene.insights)

    arrive("visitor-aaaa", at(1, 9), "2031-03-11T09:00:01.000Z", view("Set up the VPN client"))
    arrive("visitor-evil", at(0, 9), "2031-03-11T09:30:00.000Z", view("ATTACKER BACKDATED"))  # a day back
    arrive("visitor-evi2", at(1, 8), "2031-03-11T09:31:00.000Z", view("ATTACKER SAME DAY EARLIER"))
    arrive("visitor-bbbb", at(1, 10), "2031-03-11T10:00:00.000Z", view("Export your invoices", number="KA-00002"),
           contact=C1)
    arrive("visitor-evi3", at(0, 10), "2031-03-11T10:05:00.000Z", view("ATTACKER SIGNED", number="KA-00002"),
           contact=C2)
    sign_in = f"https://{PORTAL}/SignIn?ReturnUrl=%2Fknowledgebase%2Farticle%2FKA-00003"
    arrive("visitor-evi4", at(1, 7), "2031-03-11T07:00:00.000Z", view("ATTACKER CLAIMED", number="KA-00003",
                                                                        url=sign_in))
    arrive("visitor-cccc", at(1, 11), "2031-03-11T11:00:00.000Z", view("Reset your password", number="KA-00003"),
           contact=C1)
    arrive("visitor-cccc", at(1, 11, 30), "2031-03-11T11:30:00.000Z",  # (a read without a title, for the list)
           {"article": {"number": "KA-00001"}, "url": kb("KA-00001")}, contact=C1)
    scene.case(C1, at(1, 12), "CAS-1")
    for days in ("from=2031-03-10&to=2031-03-11", "from=2031-03-11&to=2031-03-11"):
        titles = {a["article"]: a["title"] for a in insights_api(days)[1]["articles"]}
        assert titles == {"KA-00001": "Set up the VPN client", "KA-00002": "Export your invoices",
                          "KA-00003": "Reset your password"}, days
    (page,) = [a for a in insights_api("from=2031-03-10&to=2031-03-11")[1]["articles"] if a["article"] == "KA-00003"]
    assert page["url"] == kb("KA-00003")


LONG_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=90, max_size=100)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), LONG_TEXT, st.booleans()), min_size=1, max_size=600))
@example([(n, "\U0001f525" * 100, n % 2 == 0) for n in range(600)])  # astral: two UTF-16 units a character
@example([(n % 3, "接続" * 50, True) for n in range(600)])
def test_insights_a_day_rollup_always_fits_what_table_storage_holds(facts: list) -> None:
    # The D1 bound as a property: whatever many visitors search and read, however long and wide the
    # text, the stored row keeps to a property's 32,768 UTF-16 units and an entity's 1 MiB.
    day = []
    for n, (visitor, text, is_read) in enumerate(facts):
        who = {"session": f"s{visitor}", "visitor": f"v{visitor}", "ts": n}
        if is_read:
            day.append({"kind": "read", "article": f"KA-{n:060d}", "title": text, "url": kb(f"KA-{n}"),
                        "received": n, **who})
        else:
            day.append({"kind": "search", "term": text, "results": 0, **who})
    stored_columns(rollup("2031-01-01", day, [], {f"s{v}" for v, _, _ in facts[::2]}))  # raises when too large


def test_insights_search_tables_and_every_slice_at_their_limits_are_stored_and_served(store: Store) -> None:
    # Issue 25's tables on the costliest day: 400 visitors on two portals, half signed in, each
    # refining one long costly term into another (every term distinct: terms, refinement pairs and
    # content gaps all full), clicking a long address; every slice's row is written and read back.
    from dci.insights import slice_key
    from dci.insights.bounds import ENTITY_LIMIT

    insights = InsightStore(store.tables, follow_days=7)
    facts = []
    for n in range(400):
        visitor, site = f"v{n}", ("portal.example.com", "help.example.com")[n % 2]
        for step, (kind, text) in enumerate((("search", "a"), ("search", "b"), ("search_click", "b"))):
            row = {"type": kind, "query": f"{text}{n:04d}" + ("\U0001f600\x01" + CJK) * 25, "results": 0,
                   "session": f"s-{visitor}", "site": site, "ts": at(22, 9) + 3 * n + step, "position": 9999,
                   "target": f"https://{site}/" + "\U0001f600" * 190, **({"contact": "c"} if n % 4 < 2 else {})}
            facts.append(event_fact(row, visitor))
    insights.add_events([(DAY, fact_key(n), fact) for n, fact in enumerate(facts)])
    assert insights.refresh(only=[DAY]) == [DAY]
    keys = [slice_key(signed, portal) for signed in (None, True, False)
            for portal in (None, "portal.example.com", "help.example.com") if (signed, portal) != (None, None)]
    for signed, portal in [(None, None), *((k.split("~")[1], k.split("~")[2]) for k in keys)]:
        signed_in = None if signed in (None, "*") else signed == "signed"
        rollups, missing = insights.read(DAY, DAY, signed_in, None if portal in (None, "*") else portal)
        assert missing == [] and len(rollups) == 1
        columns = stored_columns(rollups[0])  # (raises if a column or the entity would not fit)
        assert sum(2 * utf16_len(text) for text in columns.values()) < ENTITY_LIMIT
        assert rollups[0]["terms"] and rollups[0]["refinement_pairs"] and rollups[0]["gaps"]
    whole = insights.read(DAY, DAY)[0][0]
    assert max(utf16_len(encode(whole[name])) for name in ("terms", "refinement_pairs", "gaps")) > COLUMN_LIMIT * 0.8
    status, body = insights_api(f"from={DAY}&to={DAY}&signed_in=true&portal=help.example.com")
    assert status == 200 and body["missing_days"] == [] and body["search_terms"]
    jsonschema.validate(body, document()["components"]["schemas"]["Insights"])
