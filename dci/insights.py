"""Insights across cases: pure. Facts per event and per case, a rollup per day, sums over ranges.

Facts are written as events are linked (searches and knowledge-article reads) and as case
timelines are assembled (what the customer searched and read before the case, which portal
sessions led to it, how long before it they first came). A day's rollup is computed from that
day's facts alone, so it can be recomputed whenever one of them changes; the insights over a range
are the sums of its days' rollups (`combine`), never a scan of the interactions.

Days are UTC dates. A "session" here is one browser session (the beacon's session id) on one day,
known only by a hash of visitor and session id; a visitor (a browser) by a hash of its own.

Anonymous browsers write facts, so a day's rollup is bounded (docs/REPORTS.md): every text is
capped, every list keeps its top entries and sums the rest as `other`, one visitor adds at most
MAX_TERMS_PER_VISITOR terms and MAX_ARTICLES_PER_VISITOR articles to a day's lists, and each
stored column fits a Table string property (`stored_columns` measures it). An article's title
and link never come from the latest anonymous view: see `rollup`.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit

from dci.clock import DAY_MS, day_of
from dci.ingest.urls import article_of

MAX_TERM = 100  # characters of a search term kept for grouping
MAX_ARTICLE = 64  # characters of an article number (the beacon's schema allows no more)
MAX_KEYS_PER_DAY = 250  # distinct terms or articles a day's rollup keeps per list, the most frequent
MAX_PAGES_PER_DAY, MAX_TITLE, MAX_URL = 100, 100, 200  # article titles and addresses a day keeps (one column)
MAX_TERMS_PER_VISITOR = 20  # distinct search terms one visitor adds to a day's lists (more count as "other")
MAX_ARTICLES_PER_VISITOR = 20  # distinct articles one visitor adds to a day's lists (more count as "other")
MAX_LEADS_PER_DAY = 2000  # first-touch lead times a day keeps (evenly thinned above: the median stays close)
COLUMN_LIMIT = 32_768  # UTF-16 code units a Table string property holds (64 KiB)
COLUMN_BUDGET = 32_000  # what a rollup's list may fill of it: room for the braces and a rounding slip
ENTITY_LIMIT = 1024 * 1024  # bytes a Table entity holds, all properties together
VISITOR_DOMAIN = b"dci/insights/visitor/v1\x00"  # keeps the visitor hash apart from every other hash of the id
MIN_SAMPLE = 10  # below this many, a rate is "too few" on the dashboard (JSON: its interval says how unsure)
Z95 = 1.959964  # the 95 % normal quantile, for Wilson intervals


def days(first: str, last: str) -> list[str]:
    """Every date from `first` to `last`, inclusive."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def capped(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, a lone surrogate (which no UTF-8 request can carry) as "?"."""
    return text[:limit].encode("utf-8", "replace").decode("utf-8")


def term(query: str) -> str:
    """A search as grouped for insights: lower case, single spaces, at most 100 characters."""
    return capped(" ".join(query.lower().split()), MAX_TERM)


def session_hash(visitor: str, session: str) -> str:
    """A session's key in insight facts: links events to cases without naming the browser."""
    return hashlib.sha256(f"{visitor}:{session}".encode()).hexdigest()[:20]


def visitor_hash(visitor: str) -> str:
    """A visitor's key in insight facts (for the per-visitor bound): a domain-separated hash, never the id."""
    return hashlib.sha256(VISITOR_DOMAIN + visitor.encode("utf-8", "replace")).hexdigest()[:20]


def article_link(url: str, number: str, site: str | None = None) -> str | None:
    """The article's own address from a page view's `url`: only when its path is the knowledge-article
    path of `number` (either Power Pages form) on `site` (when given), over http(s); without query
    string or fragment. Anything else (a sign-in link naming another site, another article) is None."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    found = article_of(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or found is None \
            or found["number"].upper() != number.upper() or "@" in parts.netloc \
            or (site is not None and parts.netloc.lower() != site.lower()):
        return None
    link = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"
    return link if len(link) <= MAX_URL else None


def event_fact(row: Mapping[str, Any], visitor: str) -> dict[str, Any] | None:
    """The insight fact of an interaction (a search, or a read of a knowledge article) of `visitor`:
    with the event's time (`ts`), a hash of the visitor, and `signed_in` when the row names a contact."""
    session = session_hash(visitor, row.get("session", ""))
    ts = getattr(row.get("ts"), "value", row.get("ts"))  # (an Int64 column comes back wrapped)
    who = {"session": session, "visitor": visitor_hash(visitor), **({"ts": int(ts)} if ts is not None else {}),
           **({"signed_in": True} if row.get("contact") else {})}
    if row.get("type") == "search" and row.get("query"):
        fact = {"kind": "search", "term": term(row["query"]), **who}
        if row.get("results") is not None:
            fact["results"] = int(row["results"])
        return fact
    if row.get("type") == "search_click":  # for click-through, refinements and exits
        return {"kind": "click", "term": term(row.get("query") or ""), **who}
    if row.get("type") == "page_view" and row.get("article_number"):
        number = capped(str(row["article_number"]).upper(), MAX_ARTICLE)
        fact = {"kind": "read", "article": number, **who}
        if row.get("title"):  # the article's title as this view showed it (see `rollup` for which one wins)
            fact["title"] = capped(str(row["title"]), MAX_TITLE)
        link = article_link(str(row.get("url") or ""), number, row.get("site"))
        if link:
            fact["url"] = link
        return fact
    return None


def case_fact(case: Mapping[str, Any], events: Sequence[Mapping[str, Any]], follow_days: int) -> dict[str, Any]:
    """What a case contributes to insights, from the events its timeline was assembled from.

    `events` carry `visitor`, `session`, `ts`, `type` and the event's fields. Searches and reads
    count for the case once each (distinct terms, distinct articles); sessions are those with an
    event within `follow_days` before the case, with the days they were active.
    """
    created = case["created_ms"]
    horizon = created - follow_days * DAY_MS
    searches = sorted({term(e["query"]) for e in events if e.get("type") == "search" and e.get("query")})
    zero = sorted({term(e["query"]) for e in events
                   if e.get("type") == "search" and e.get("query") and e.get("results") == 0})
    articles = sorted({e["article_number"].upper() for e in events
                       if e.get("type") == "page_view" and e.get("article_number")})
    sessions: dict[str, set[str]] = {}
    for event in events:
        if horizon <= event["ts"] <= created and event.get("session"):
            key = session_hash(event["visitor"], event["session"])
            sessions.setdefault(key, set()).add(day_of(event["ts"]))
    first = min((e["ts"] for e in events), default=None)
    return {
        "day": day_of(created),
        "searches": searches,
        "zero": zero,
        "articles": articles,
        "sessions": {key: sorted(active) for key, active in sorted(sessions.items())},
        "lead_ms": None if first is None else created - first,
    }


def rollup(day: str, events: Iterable[Mapping[str, Any]], cases: Iterable[Mapping[str, Any]],
           followed: set[str]) -> dict[str, Any]:
    """One day's insights: from that day's event facts, the cases created that day, and the set
    of session hashes that a case followed (within the follow window) — for that day's sessions.

    Bounded whatever the facts (docs/REPORTS.md): facts are taken in time order; a visitor's terms
    beyond MAX_TERMS_PER_VISITOR and articles beyond MAX_ARTICLES_PER_VISITOR count in `other`;
    each list keeps its top MAX_KEYS_PER_DAY that fit a column and sums the rest in `other`.
    An article's title is the first a signed-in view showed, else the first any view showed; its
    link the first address that is the article's own (`article_link`)."""
    ordered = sorted(events, key=lambda fact: fact.get("ts") or 0)  # (stable: facts without `ts` keep row order)
    counts: dict[str, Counter[str]] = {name: Counter() for name in COUNTS}
    beyond: Counter[str] = Counter()  # what the per-visitor bound sent to "other", by list
    titles: dict[str, tuple[bool, str]] = {}  # article -> (from a signed-in view, title)
    links: dict[str, str] = {}
    own: dict[tuple[str, str], set[str]] = {}  # (visitor, "term" | "article") -> what they added today
    self_service: set[str] = set()
    facts_by_session: dict[str, list[Mapping[str, Any]]] = {}
    for fact in ordered:
        facts_by_session.setdefault(fact["session"], []).append(fact)
        if fact["kind"] == "click":
            continue  # (a click alone does not make a self-service session: it follows a search)
        self_service.add(fact["session"])
        is_followed = fact["session"] in followed
        if fact["kind"] == "search":
            named = _admitted(own, fact, "term", fact["term"], MAX_TERMS_PER_VISITOR)
            zero = fact.get("results") == 0
            for name, counted in (("searches", True), ("zero_result_searches", zero),
                                  ("zero_result_searches_followed", zero and is_followed)):
                if counted:
                    (counts[name] if named else beyond)[fact["term"] if named else name] += 1
        elif fact["kind"] == "read":
            article = fact["article"]
            named = _admitted(own, fact, "article", article, MAX_ARTICLES_PER_VISITOR)
            for name, counted in (("article_reads", True), ("article_reads_followed", is_followed)):
                if counted:
                    (counts[name] if named else beyond)[article if named else name] += 1
            signed_in = bool(fact.get("signed_in"))
            if named and fact.get("title") and (article not in titles or (signed_in and not titles[article][0])):
                titles[article] = (signed_in, fact["title"])
            if named and fact.get("url") and article not in links:
                links[article] = fact["url"]
    leads: list[int] = []
    count = 0
    for case in cases:
        count += 1
        counts["searches_before_cases"].update(case["searches"])
        counts["zero_result_searches_before_cases"].update(case["zero"])
        counts["articles_before_cases"].update(case["articles"])
        if case.get("lead_ms") is not None:
            leads.append(case["lead_ms"])
    lists, other = _bounded_lists(counts)
    other = {name: other[name] + beyond[name] for name in COUNTS}
    kept_leads = _thinned(sorted(leads), MAX_LEADS_PER_DAY)
    return {
        "day": day,
        "site_search": site_search(facts_by_session),
        "cases": count,
        "lead_ms": kept_leads,
        **lists,
        "article_pages": _pages(lists["article_reads"], titles, links),
        "sessions": len(self_service),
        "sessions_followed": len(self_service & followed),
        "other": {**other, "lead_ms": len(leads) - len(kept_leads)},
    }


def _admitted(own: dict[tuple[str, str], set[str]], fact: Mapping[str, Any], what: str, key: str,
              limit: int) -> bool:
    """Whether this fact's term or article may be named in the day's lists: its visitor (the session,
    for facts written before visitors were hashed) has added fewer than `limit` others."""
    added = own.setdefault((fact.get("visitor") or fact["session"], what), set())
    if key in added or len(added) < limit:
        added.add(key)
        return True
    return False


# The day's lists; a "followed" list (a subset of the searches or reads of its parent) names only the
# terms or articles its parent names, so that per term or article it never exceeds the parent.
COUNTS = ("searches", "zero_result_searches", "zero_result_searches_followed", "article_reads",
          "article_reads_followed", "searches_before_cases", "zero_result_searches_before_cases",
          "articles_before_cases")
PARENTS = {"zero_result_searches_followed": "zero_result_searches", "article_reads_followed": "article_reads"}


def _bounded_lists(counts: Mapping[str, Counter[str]]) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    lists: dict[str, dict[str, int]] = {}
    other: dict[str, int] = {}
    for name in COUNTS:
        counter = counts[name]
        if name in PARENTS:
            counter = Counter({key: n for key, n in counter.items() if key in lists[PARENTS[name]]})
        lists[name] = _top(counter)
        other[name] = sum(counts[name].values()) - sum(lists[name].values())
    return lists, other


def _top(counts: Counter[str]) -> dict[str, int]:
    """The most frequent keys (ties by key) up to MAX_KEYS_PER_DAY, as many as fit COLUMN_BUDGET."""
    kept: dict[str, int] = {}
    size = 2  # {}
    for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_KEYS_PER_DAY]:
        size += utf16_len(encode(key)) + len(str(n)) + 2  # "key":n,
        if size > COLUMN_BUDGET:
            break
        kept[key] = n
    return dict(sorted(kept.items()))


def _pages(reads: Mapping[str, int], titles: Mapping[str, tuple[bool, str]],
           links: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Titles and links of the day's most read articles, as many as fit a column."""
    pages: dict[str, dict[str, Any]] = {}
    size = 2
    for article in sorted((a for a in reads if a in titles or a in links), key=lambda a: (-reads[a], a)):
        page = {"title": titles[article][1] if article in titles else None, "url": links.get(article),
                "signed_in": article in titles and titles[article][0]}
        size += utf16_len(encode(article)) + utf16_len(encode(page)) + 2
        if len(pages) >= MAX_PAGES_PER_DAY or size > COLUMN_BUDGET:
            break
        pages[article] = page
    return dict(sorted(pages.items()))


def _thinned(values: list[int], limit: int) -> list[int]:
    """`values` (sorted) thinned evenly to at most `limit`, keeping both ends."""
    if len(values) <= limit:
        return values
    return [values[round(n * (len(values) - 1) / (limit - 1))] for n in range(limit)]


def encode(value: Any) -> str:
    """A rollup figure as stored: compact JSON, non-ASCII as itself (a CJK character is 1 unit, not 6)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def utf16_len(text: str) -> int:
    """The length of `text` in UTF-16 code units, as Table storage counts a string property."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


class RollupTooLarge(ValueError):
    """A rollup that Table storage would refuse; names the figure, never its content."""


def stored_columns(rollup_of_day: Mapping[str, Any]) -> dict[str, str]:
    """A rollup as its stored row, one JSON column per figure; RollupTooLarge when a column would
    exceed COLUMN_LIMIT or the entity ENTITY_LIMIT (Table storage's own limits)."""
    columns = {name: encode(value) for name, value in rollup_of_day.items()}
    size = 4 + 2 * len(f"d_{rollup_of_day['day']}rollup") + 8 + 2 * len("Timestamp") + 8  # keys and Timestamp
    for name, text in columns.items():
        units = utf16_len(text)
        if units > COLUMN_LIMIT:
            raise RollupTooLarge(f"the figure {name} would take {units} UTF-16 units (at most {COLUMN_LIMIT})")
        size += 8 + 2 * len(name) + 4 + 2 * units
    if size > ENTITY_LIMIT:
        raise RollupTooLarge(f"the rollup would take {size} bytes (at most {ENTITY_LIMIT})")
    return columns


SITE_SEARCH = ("searches", "with_result_count", "zero", "sessions", "clicked", "refinements", "exits")


def site_search(facts_by_session: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, int]:
    """A day's site-search counts, from each session's searches, result clicks and article reads in
    time order (docs/REPORTS.md defines each):

    * `searches`: search events; `with_result_count` of them reported how many results they found;
      `zero` found none; `sessions`: sessions with a search;
    * `clicked`: searches followed by a result click before the session's next search;
    * `refinements`: searches whose session's next step is another search;
    * `exits`: searches that were the session's last step of the day (no click, read or search after).
    """
    counts = dict.fromkeys(SITE_SEARCH, 0)
    for facts in facts_by_session.values():
        steps = [fact for fact in facts if fact["kind"] in ("search", "click", "read")]
        searched = False
        for index, fact in enumerate(steps):
            if fact["kind"] != "search":
                continue
            searched = True
            counts["searches"] += 1
            if fact.get("results") is not None:
                counts["with_result_count"] += 1
                counts["zero"] += fact["results"] == 0
            after = steps[index + 1:]
            until_next = next((n for n, later in enumerate(after) if later["kind"] == "search"), len(after))
            counts["clicked"] += any(later["kind"] == "click" for later in after[:until_next])
            counts["refinements"] += bool(after) and after[0]["kind"] == "search"
            counts["exits"] += not after
        counts["sessions"] += searched
    return counts


def site_search_report(counts: Mapping[str, int]) -> dict[str, Any]:
    """The site-search figures of a range: its counts, and the rates with their 95 % intervals."""
    searches = counts["searches"]
    rates = {"zero_result_rate": (counts["zero"], counts["with_result_count"]),
             "click_through_rate": (counts["clicked"], searches),
             "refinement_rate": (counts["refinements"], searches),
             "exit_rate": (counts["exits"], searches)}
    return {**counts,
            "searches_per_session": round(searches / counts["sessions"], 2) if counts["sessions"] else None,
            **{name: {"rate": _rate(part, whole), "of": whole, "interval": wilson(part, whole)}
               for name, (part, whole) in rates.items()}}


def total(rollups: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The sum of day rollups (in day order): counts added key by key and their `other`s, lead times
    pooled. An article's title is the earliest day's from a signed-in view, else the earliest day's;
    its link the earliest day's that is still the article's own address."""
    sums: dict[str, Any] = {name: Counter() for name in COUNTS}
    other: Counter[str] = Counter()
    result: dict[str, Any] = {"cases": 0, "sessions": 0, "sessions_followed": 0, "lead_ms": [], "article_pages": {},
                              "site_search": dict.fromkeys(SITE_SEARCH, 0)}
    for day in rollups:
        for name, value in day.get("site_search", {}).items():  # (rollups before 0.3 have none)
            result["site_search"][name] += value
        for name in COUNTS:
            sums[name].update(day.get(name, {}))  # (older rollups have no article_reads_followed)
        other.update(day.get("other", {}))
        for article, page in day.get("article_pages", {}).items():  # (rollups before 0.3 have none)
            _merge_page(result["article_pages"], article, page)
        for name in ("cases", "sessions", "sessions_followed"):
            result[name] += day[name]
        result["lead_ms"].extend(day["lead_ms"])
    result["lead_ms"].sort()
    return result | {name: dict(sorted(counter.items())) for name, counter in sums.items()} | {
        "other": {name: other.get(name, 0) for name in (*COUNTS, "lead_ms")}}


def _merge_page(pages: dict[str, dict[str, Any]], article: str, page: Mapping[str, Any]) -> None:
    """Add a later day's title and link of `article` to `pages`: a title from a signed-in view
    replaces an anonymous one, never the other way round; a link only fills a gap."""
    known = pages.setdefault(article, {"title": None, "url": None, "signed_in": False})
    link = article_link(page["url"], article) if page.get("url") else None  # (older rollups kept any address)
    if page.get("title") and (known["title"] is None or (page.get("signed_in") and not known["signed_in"])):
        known["title"], known["signed_in"] = page["title"], bool(page.get("signed_in"))
    if known["url"] is None and link:
        known["url"] = link


TREND = ("searches", "zero_result_rate", "click_through_rate", "cases", "deflection_rate")


def day_figures(rollup_of_day: Mapping[str, Any] | None) -> dict[str, Any]:
    """The trend's figures of one day (a day without a rollup recorded nothing)."""
    day = rollup_of_day or {}
    ss = day.get("site_search") or dict.fromkeys(SITE_SEARCH, 0)
    sessions, followed = day.get("sessions", 0), day.get("sessions_followed", 0)
    return {"searches": ss["searches"], "zero_result_rate": _rate(ss["zero"], ss["with_result_count"]),
            "click_through_rate": _rate(ss["clicked"], ss["searches"]), "cases": day.get("cases", 0),
            "deflection_rate": _rate(sessions - followed, sessions)}


def trend(first: str, last: str, rollups: Sequence[Mapping[str, Any]],
          previous: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
    """Each day's figures over the range and, given the rollups of the period of equal length just
    before it, that period's figures and the change."""
    by_day = {day["day"]: day for day in rollups}
    series = [{"day": day, **day_figures(by_day.get(day))} for day in days(first, last)]
    result: dict[str, Any] = {"days": series, "range": _period_figures(rollups)}
    if previous is not None:
        start = date.fromisoformat(first)
        length = (date.fromisoformat(last) - start).days + 1
        before = _period_figures(previous)
        result["previous"] = {"from": (start - timedelta(days=length)).isoformat(),
                              "to": (start - timedelta(days=1)).isoformat(), **before}
        result["change"] = {name: None if before[name] is None or result["range"][name] is None
                            else round(result["range"][name] - before[name], 4) for name in TREND}
    return result


def _period_figures(rollups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    sums = total(rollups)
    return day_figures({"site_search": sums["site_search"], "cases": sums["cases"], "sessions": sums["sessions"],
                        "sessions_followed": sums["sessions_followed"]})


def report(first: str, last: str, rollups: Sequence[Mapping[str, Any]], top: int = 20,
           previous: Sequence[Mapping[str, Any]] | None = None, missing: Sequence[str] = ()) -> dict[str, Any]:
    """What a support manager reads: the KPIs over the range, ranked lists, rates, the daily trend
    (and, given the previous period's rollups, the comparison with it). `missing`: the range's days
    whose rollups could not be built, left out of every figure and named (`missing_days`)."""
    sums = total(rollups)
    searches, before = sums["searches"], sums["searches_before_cases"]
    reads, read_before, read_followed = sums["article_reads"], sums["articles_before_cases"], sums[
        "article_reads_followed"]
    zero, zero_followed = sums["zero_result_searches"], sums["zero_result_searches_followed"]
    sessions, followed = sums["sessions"], sums["sessions_followed"]
    leads = sums["lead_ms"]
    return {
        "from": first,
        "to": last,
        "days": len(rollups),
        "missing_days": sorted(missing),
        "cases": sums["cases"],
        "top_searches_before_cases": [
            {"query": q, "cases": n, "searches": searches.get(q, 0)} for q, n in _ranked(before, top)],
        "zero_result_searches": [
            {"query": q, "searches": n, "followed_by_case": zero_followed.get(q, 0),
             "cases_after": sums["zero_result_searches_before_cases"].get(q, 0)} for q, n in _ranked(zero, top)],
        # The rate's part is a subset of its whole: reads of the article in sessions a case followed.
        "articles": [
            {"article": a, **_page(sums["article_pages"].get(a)), "reads": reads.get(a, 0), "cases_after": n,
             "reads_followed_by_case": read_followed.get(a, 0),
             "failed_to_deflect_rate": _rate(read_followed.get(a, 0), reads.get(a, 0)),
             "failed_to_deflect_interval": wilson(read_followed.get(a, 0), reads.get(a, 0))}
            for a, n in _ranked(read_before, top)],
        "deflection": {"self_service_sessions": sessions, "followed_by_case": followed,
                       "deflected": sessions - followed, "rate": _rate(sessions - followed, sessions),
                       "interval": wilson(sessions - followed, sessions)},
        "site_search": site_search_report(sums["site_search"]),
        "trend": trend(first, last, rollups, previous),
        "first_touch_to_case": {"cases": len(leads) + sums["other"]["lead_ms"],
                                "median_ms": int(statistics.median(leads)) if leads else None},
        "other": sums["other"],
    }


def with_titles(report_of_range: Mapping[str, Any], titles: Mapping[str, str]) -> dict[str, Any]:
    """The report with each listed article's title from `titles` (Dataverse's knowledge articles,
    by article number) where it has one: those win over any page view's."""
    return {**report_of_range, "articles": [
        {**row, "title": titles.get(row["article"]) or row["title"]} for row in report_of_range["articles"]]}


def _ranked(counts: Mapping[str, int], top: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _page(page: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"title": (page or {}).get("title"), "url": (page or {}).get("url")}


def wilson(part: int, whole: int) -> list[float] | None:
    """The 95 % Wilson score interval of the rate `part / whole` ([low, high]); None for no sample.
    Unlike ± a normal error it stays within 0..1 and is honest for small samples: 3 of 3 is
    [0.44, 1.0], not "100 %"."""
    if whole <= 0:
        return None
    p, z2 = part / whole, Z95 * Z95
    centre = (p + z2 / (2 * whole)) / (1 + z2 / whole)
    spread = Z95 * math.sqrt(p * (1 - p) / whole + z2 / (4 * whole * whole)) / (1 + z2 / whole)
    return [round(max(0.0, centre - spread), 4), round(min(1.0, centre + spread), 4)]
