"""Insights across cases: pure. Facts per event and per case, a rollup per day, sums over ranges.

Facts are written as events are linked (searches and knowledge-article reads) and as case
timelines are assembled (what the customer searched and read before the case, which portal
sessions led to it, how long before it they first came). A day's rollup is computed from that
day's facts alone, so it can be recomputed whenever one of them changes; the insights over a range
are the sums of its days' rollups (`combine`), never a scan of the interactions.

Days are UTC dates. A "session" here is one browser session (the beacon's session id) on one day,
known only by a hash of visitor and session id.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from dci.clock import DAY_MS, day_of

MAX_TERM = 100  # characters of a search term kept for grouping
MAX_KEYS_PER_DAY = 250  # distinct terms or articles a day's rollup keeps, the most frequent (64 KiB columns)
MAX_PAGES_PER_DAY, MAX_TITLE, MAX_URL = 100, 100, 200  # article titles and addresses a day keeps (one column)
MIN_SAMPLE = 10  # below this many, a rate is "too few" on the dashboard (JSON: its interval says how unsure)
Z95 = 1.959964  # the 95 % normal quantile, for Wilson intervals


def days(first: str, last: str) -> list[str]:
    """Every date from `first` to `last`, inclusive."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def term(query: str) -> str:
    """A search as grouped for insights: lower case, single spaces, at most 100 characters."""
    return " ".join(query.lower().split())[:MAX_TERM]


def session_hash(visitor: str, session: str) -> str:
    """A session's key in insight facts: links events to cases without naming the browser."""
    return hashlib.sha256(f"{visitor}:{session}".encode()).hexdigest()[:20]


def event_fact(row: Mapping[str, Any], visitor: str) -> dict[str, Any] | None:
    """The insight fact of an interaction (a search, or a read of a knowledge article) of `visitor`."""
    session = session_hash(visitor, row.get("session", ""))
    if row.get("type") == "search" and row.get("query"):
        fact = {"kind": "search", "term": term(row["query"]), "session": session}
        if row.get("results") is not None:
            fact["results"] = int(row["results"])
        return fact
    if row.get("type") == "search_click":  # for click-through, refinements and exits
        return {"kind": "click", "term": term(row.get("query") or ""), "session": session}
    if row.get("type") == "page_view" and row.get("article_number"):
        fact = {"kind": "read", "article": row["article_number"].upper(), "session": session}
        if row.get("title"):  # the article's own title and address, for the dashboard's links
            fact["title"] = str(row["title"])[:MAX_TITLE]
        if row.get("url"):
            fact["url"] = str(row["url"])[:MAX_URL]
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
    of session hashes that a case followed (within the follow window) — for that day's sessions."""
    searches: Counter[str] = Counter()
    zero: Counter[str] = Counter()
    zero_followed: Counter[str] = Counter()
    reads: Counter[str] = Counter()
    pages: dict[str, dict[str, str | None]] = {}
    self_service: set[str] = set()
    facts_by_session: dict[str, list[Mapping[str, Any]]] = {}
    for fact in events:
        facts_by_session.setdefault(fact["session"], []).append(fact)
        if fact["kind"] == "click":
            continue  # (a click alone does not make a self-service session: it follows a search)
        self_service.add(fact["session"])
        if fact["kind"] == "search":
            searches[fact["term"]] += 1
            if fact.get("results") == 0:
                zero[fact["term"]] += 1
                if fact["session"] in followed:
                    zero_followed[fact["term"]] += 1
        elif fact["kind"] == "read":
            reads[fact["article"]] += 1
            if fact.get("title") or fact.get("url"):  # the day's last view of an article names it
                pages[fact["article"]] = {"title": fact.get("title"), "url": fact.get("url")}
    before: Counter[str] = Counter()
    zero_before: Counter[str] = Counter()
    read_before: Counter[str] = Counter()
    leads: list[int] = []
    count = 0
    for case in cases:
        count += 1
        before.update(case["searches"])
        zero_before.update(case["zero"])
        read_before.update(case["articles"])
        if case.get("lead_ms") is not None:
            leads.append(case["lead_ms"])
    return {
        "day": day,
        "site_search": site_search(facts_by_session),
        "cases": count,
        "lead_ms": sorted(leads),
        "searches": _top(searches),
        "zero_result_searches": _top(zero),
        "zero_result_searches_followed": _top(zero_followed),
        "article_reads": _top(reads),
        "article_pages": {a: pages[a] for a in sorted(
            a for a, _ in Counter({a: reads[a] for a in pages}).most_common(MAX_PAGES_PER_DAY))},
        "searches_before_cases": _top(before),
        "zero_result_searches_before_cases": _top(zero_before),
        "articles_before_cases": _top(read_before),
        "sessions": len(self_service),
        "sessions_followed": len(self_service & followed),
    }


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


def _top(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.most_common(MAX_KEYS_PER_DAY)))


COUNTS = ("searches", "zero_result_searches", "zero_result_searches_followed", "article_reads",
          "searches_before_cases", "zero_result_searches_before_cases", "articles_before_cases")


def total(rollups: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The sum of day rollups: counts added key by key, lead times pooled."""
    sums: dict[str, Any] = {name: Counter() for name in COUNTS}
    result: dict[str, Any] = {"cases": 0, "sessions": 0, "sessions_followed": 0, "lead_ms": [], "article_pages": {},
                              "site_search": dict.fromkeys(SITE_SEARCH, 0)}
    for day in rollups:  # (in day order: a later day's title of an article wins)
        for name, value in day.get("site_search", {}).items():  # (rollups before 0.3 have none)
            result["site_search"][name] += value
        for name in COUNTS:
            sums[name].update(day[name])
        result["article_pages"].update(day.get("article_pages", {}))  # (rollups before 0.3 have none)
        for name in ("cases", "sessions", "sessions_followed"):
            result[name] += day[name]
        result["lead_ms"].extend(day["lead_ms"])
    result["lead_ms"].sort()
    return result | {name: dict(sorted(counter.items())) for name, counter in sums.items()}


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
           previous: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """What a support manager reads: the KPIs over the range, ranked lists, rates, the daily trend
    (and, given the previous period's rollups, the comparison with it)."""
    sums = total(rollups)
    searches, before = sums["searches"], sums["searches_before_cases"]
    reads, read_before = sums["article_reads"], sums["articles_before_cases"]
    zero, zero_followed = sums["zero_result_searches"], sums["zero_result_searches_followed"]
    sessions, followed = sums["sessions"], sums["sessions_followed"]
    leads = sums["lead_ms"]
    return {
        "from": first,
        "to": last,
        "days": len(rollups),
        "cases": sums["cases"],
        "top_searches_before_cases": [
            {"query": q, "cases": n, "searches": searches.get(q, 0)} for q, n in _ranked(before, top)],
        "zero_result_searches": [
            {"query": q, "searches": n, "followed_by_case": zero_followed.get(q, 0),
             "cases_after": sums["zero_result_searches_before_cases"].get(q, 0)} for q, n in _ranked(zero, top)],
        "articles": [
            {"article": a, **_page(sums["article_pages"].get(a)), "reads": reads.get(a, 0), "cases_after": n,
             "failed_to_deflect_rate": _rate(n, reads.get(a, 0)),
             "failed_to_deflect_interval": wilson(min(n, reads.get(a, 0)), reads.get(a, 0))}
            for a, n in _ranked(read_before, top)],
        "deflection": {"self_service_sessions": sessions, "followed_by_case": followed,
                       "deflected": sessions - followed, "rate": _rate(sessions - followed, sessions),
                       "interval": wilson(sessions - followed, sessions)},
        "site_search": site_search_report(sums["site_search"]),
        "trend": trend(first, last, rollups, previous),
        "first_touch_to_case": {"cases": len(leads),
                                "median_ms": int(statistics.median(leads)) if leads else None},
    }


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
