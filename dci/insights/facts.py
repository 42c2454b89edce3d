"""Insight facts: pure. What one event (a search, a result click, a knowledge-article read) and
one assembled case contribute to insights, written as events are linked and cases assembled.

A "session" is one browser session (the beacon's session id), known only by a hash of visitor and
session id; a visitor (a browser) by a domain-separated hash of its own, never by its id. Texts
are capped here; an article's link is only ever its own knowledge-article address.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from dci.clock import DAY_MS, day_of
from dci.ingest.urls import article_of

MAX_TERM = 100  # characters of a search term kept for grouping
MAX_ARTICLE = 64  # characters of an article number (the beacon's schema allows no more)
VISITOR_DOMAIN = b"dci/insights/visitor/v1\x00"  # keeps the visitor hash apart from every other hash of the id
MAX_TITLE, MAX_URL = 100, 200  # an article's title and address as a fact keeps them


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
