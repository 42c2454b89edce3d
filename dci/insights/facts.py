"""Insight facts: pure. What one event (a search, a result click, a knowledge-article read) and
one assembled case contribute to insights, written as events are linked and cases assembled.

A "session" is one browser session (the beacon's session id), known only by a hash of visitor and
session id; a visitor (a browser) by a domain-separated hash of its own, never by its id. Texts
are capped here; an article's link is only ever its own knowledge-article address.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from dci.clock import DAY_MS, day_of, epoch_ms
from dci.ingest.urls import article_of

MAX_TERM = 100  # characters of a search term kept for grouping
MAX_ARTICLE = 64  # characters of an article number (the beacon's schema allows no more)
# What one case's fact keeps, as one stored property (32,768 UTF-16 units): with these, about 28,750 units at
# most (measured, `[day, session]` pairs included) while JSON keeps every character as itself; terms of control
# characters (escaped, 6 units each) can exceed it, and `InsightStore.put_case` refuses such a fact unwritten.
MAX_CASE_TERMS, MAX_CASE_ARTICLES, MAX_CASE_SESSIONS, MAX_CASE_SESSION_DAYS = 40, 50, 50, 200
VISITOR_DOMAIN = b"dci/insights/visitor/v1\x00"  # keeps the visitor hash apart from every other hash of the id
MAX_TITLE, MAX_URL = 100, 200  # an article's title and address as a fact keeps them
MAX_HOST = 253  # a portal host (the batch's `site`, one of PORTAL_ISSUERS)


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
    """The insight fact of an interaction (a search, a result click, or a read of a knowledge
    article) of `visitor`: with the event's time (`ts`), a hash of the visitor, `signed_in` when the
    row names a contact, and the portal host (`portal`); a click with its position and what it
    opened (`article`, else `target`: its address)."""
    session = session_hash(visitor, row.get("session", ""))
    ts = row.get("ts")
    who = {"session": session, "visitor": visitor_hash(visitor), **({"ts": int(ts)} if ts is not None else {}),
           **({"signed_in": True} if row.get("contact") else {}),
           **({"portal": capped(str(row["site"]).lower(), MAX_HOST)} if row.get("site") else {})}
    if row.get("type") == "search" and row.get("query"):
        fact = {"kind": "search", "term": term(row["query"]), **who}
        if row.get("results") is not None:
            fact["results"] = int(row["results"])
        return fact
    if row.get("type") == "search_click":  # for click-through, click positions, refinements and exits
        fact = {"kind": "click", "term": term(row.get("query") or ""), **who}
        if isinstance(row.get("position"), int):
            fact["position"] = row["position"]
        target = str(row.get("target") or "")
        found = article_of(target) if target else None
        if found:
            fact["article"] = capped(found["number"].upper(), MAX_ARTICLE)
        elif target:
            fact["target"] = capped(target.split("#")[0], MAX_URL)
        return fact
    if row.get("type") == "page_view" and row.get("article_number"):
        number = capped(str(row["article_number"]).upper(), MAX_ARTICLE)
        fact = {"kind": "read", "article": number, **who}
        link = article_link(str(row.get("url") or ""), number, row.get("site"))
        if link:  # only the article's own page names it: its title (see `rollup` for which wins) and link
            fact["url"] = link
            if row.get("title"):
                fact["title"] = capped(str(row["title"]), MAX_TITLE)
                fact["received"] = _received_ms(row.get("received_at"))
        return fact
    return None


def _received_ms(received_at: object) -> int | None:
    """When the server received the event's batch (epoch ms), from the row's `received_at`."""
    try:
        return epoch_ms(received_at) if isinstance(received_at, str) else None
    except ValueError:
        return None


def case_fact(case: Mapping[str, Any], events: Sequence[Mapping[str, Any]], follow_days: int) -> dict[str, Any]:
    """What a case contributes to insights, from the events of its journey (dci/window.py).

    `events` carry `visitor`, `session`, `ts`, `type` and the event's fields. Of the searches and
    reads within `follow_days` before the case, each distinct term (and each that found nothing)
    and article counts for the case once, on the day of its last search or read before the case
    (`searches`, `zero`, `articles`: key → day): a figure of a range counts a case for a term only
    when that search was made in the range, so per term it never exceeds the searches. Sessions
    are those with an event within `follow_days` before the case, with the days they were active.
    Bounded however long the journey (it is one stored property): the MAX_CASE_TERMS latest
    distinct terms (and as many that found nothing), MAX_CASE_ARTICLES articles, MAX_CASE_SESSIONS
    sessions and MAX_CASE_SESSION_DAYS days of them.
    """
    created = case["created_ms"]
    horizon = created - follow_days * DAY_MS
    latest_first = sorted((e for e in events if horizon <= e["ts"] <= created), key=lambda e: e["ts"], reverse=True)
    searched = [e for e in latest_first if e.get("type") == "search" and e.get("query")]
    searches = _dated(((term(e["query"]), e) for e in searched), MAX_CASE_TERMS)
    zero = _dated(((term(e["query"]), e) for e in searched if e.get("results") == 0), MAX_CASE_TERMS)
    articles = _dated(((capped(str(e["article_number"]).upper(), MAX_ARTICLE), e) for e in latest_first
                       if e.get("type") == "page_view" and e.get("article_number")), MAX_CASE_ARTICLES)
    sessions: dict[str, set[str]] = {}
    pairs = 0  # (session, day) pairs kept: a session id can be re-used for many days
    for event in latest_first:
        if event.get("session"):
            key, day = session_hash(event["visitor"], event["session"]), day_of(event["ts"])
            if (key not in sessions and len(sessions) >= MAX_CASE_SESSIONS) or (
                    day not in sessions.get(key, ()) and pairs >= MAX_CASE_SESSION_DAYS):
                continue
            pairs += day not in sessions.setdefault(key, set())
            sessions[key].add(day)
    first = min((e["ts"] for e in events), default=None)
    last = max(events, key=lambda e: e["ts"], default=None)
    return {
        "day": day_of(created),
        **({"portal": capped(str(last["site"]).lower(), MAX_HOST)} if last and last.get("site") else {}),
        "searches": searches,
        "zero": zero,
        "articles": articles,
        "sessions": {key: sorted(active) for key, active in sorted(sessions.items())},
        "lead_ms": None if first is None or first > created else created - first,
    }


def _dated(latest_first: Iterable[tuple[str, Mapping[str, Any]]], limit: int) -> dict[str, list[str]]:
    """Of (key, event) pairs, latest first: the `limit` keys seen last, each with the day it was last
    seen and the hash of that event's session ([day, session])."""
    out: dict[str, list[str]] = {}
    for key, event in latest_first:
        if key not in out:
            if len(out) >= limit:
                break
            out[key] = [day_of(event["ts"]), session_hash(event["visitor"], event.get("session") or "")]
    return dict(sorted(out.items()))


def dated(fact: Mapping[str, Any], name: str) -> dict[str, str]:
    """A case fact's terms or articles (`searches`, `zero`, `articles`) with the day each counts on:
    a fact written before issue 24 lists them, all on the case's own day."""
    return {key: day for key, (day, _) in placed(fact, name).items()}


def placed(fact: Mapping[str, Any], name: str) -> dict[str, tuple[str, str | None]]:
    """A case fact's terms or articles with the day each counts on and the session of that search or
    read (None for facts written before sessions were kept with them)."""
    value = fact.get(name) or {}
    if not isinstance(value, Mapping):
        return {key: (fact["day"], None) for key in value}
    return {key: (on, None) if isinstance(on, str) else (on[0], on[1]) for key, on in value.items()}


def fact_days(fact: Mapping[str, Any]) -> set[str]:
    """The days whose rollups a case fact counts in: its own, its sessions' and its terms' and articles'."""
    return {fact["day"], *(d for active in fact["sessions"].values() for d in active),
            *(d for name in ("searches", "zero", "articles") for d in dated(fact, name).values())}


def cases_behind(facts: Iterable[tuple[str, Mapping[str, Any]]], first: str, last: str, *, search: str | None = None,
                 article: str | None = None) -> list[tuple[str, str]]:
    """Of (case id, case fact) pairs, the cases (id, day of the case) that count for the search term
    or article in `first`..`last` — its search or read fell in the range — newest first: the cases
    behind the figure the report gives for it."""
    name, key = ("searches", search) if search is not None else ("articles", article)
    return sorted(((case_id, fact["day"]) for case_id, fact in facts
                   if first <= dated(fact, name).get(key or "", "") <= last), key=lambda c: (c[1], c[0]), reverse=True)
