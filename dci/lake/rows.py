"""The lake's rows: pure functions from what the app stores to one row per interaction and per case.

Rules:

1. One `interactions` row per event, keyed as the store keys it: its visitor (as a pseudonym) and
   its event id — ids are the beacon's, unique per browser only. `event_key` is the two as one
   column (the store's `event_key`, a one-way hash), the primary key a reader that takes a single
   column (Customer Insights – Data) is given. `date` is the UTC day the stored
   row is filed under (its server-corrected time's; it never moves: a repeat finds the first
   copy's row); `timestamp` is the event time.
2. `contact_id` and `attribution` follow the attribution rules (`dci.attribution`) over all of the
   visitor's stored events — so a sign-in after anonymous browsing updates the earlier rows.
3. Visitors and sessions appear only as pseudonyms: a one-way hash of the beacon's random id, the
   same in both tables and in every export, never the cookie's value.
4. `case_id` and `ticket` name the case whose timeline holds the event (visitor and id): one case,
   as journeys are cut (dci/window.py); timelines assembled before journeys were cut may share an
   event, and then the earliest case is the one it led to.
5. A `cases` row holds the case and its timeline's figures; a case without a timeline is not
   exported (it has not settled yet, or was skipped).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dci.attribution import attribute
from dci.storage.keys import event_day, event_key

# (name, type, nullable): the tables' schemas, in column order. Types: string, int64, float64, bool,
# timestamp (UTC, microseconds; never without a time zone: Customer Insights cannot read TimestampNTZ), date.
INTERACTIONS: tuple[tuple[str, str, bool], ...] = (
    ("event_id", "string", False),
    ("event_key", "string", True),  # (nullable: tables exported before it gain it row by row; rule 1)
    ("date", "date", False),
    ("timestamp", "timestamp", False),
    ("type", "string", False),
    ("contact_id", "string", True),
    ("attribution", "string", True),
    ("visitor", "string", False),
    ("session", "string", False),
    ("site", "string", True),
    ("url", "string", True),
    ("title", "string", True),
    ("article_number", "string", True),
    ("article_lang", "string", True),
    ("search_query", "string", True),
    ("results", "int64", True),
    ("position", "int64", True),
    ("target", "string", True),
    ("engaged_ms", "int64", True),
    ("scroll", "int64", True),
    ("client_family", "string", True),
    ("client_device", "string", True),
    ("case_id", "string", True),
    ("ticket", "string", True),
)
CASES: tuple[tuple[str, str, bool], ...] = (
    ("case_id", "string", False),
    ("ticket", "string", True),
    ("contact_id", "string", True),
    ("visitor", "string", True),
    ("created", "timestamp", False),
    ("source", "string", True),
    ("searches", "int64", False),
    ("zero_result_searches", "int64", False),
    ("articles_read", "int64", False),
    ("sessions", "int64", False),
    ("minutes_first_visit_to_case", "float64", True),
    ("case_form_seen", "bool", False),
)
INTERACTIONS_KEY, CASES_KEY = ("visitor", "event_id"), ("case_id",)
INTERACTIONS_PARTITION = "date"
PSEUDONYM_PATTERN = r"[0-9a-f]{32}"


def pseudonym(value: str) -> str:
    """A visitor's or session's id in the lake (rule 3): 128 bits of SHA-256, domain-separated."""
    return hashlib.sha256(f"dci-lake\x00{value}".encode()).hexdigest()[:32]


Membership = dict[tuple[str, str], tuple[str, str | None]]


def membership(timelines: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> Membership:
    """(visitor, event id) → (case id, ticket) from (case row, timeline document) pairs, the
    earliest case first (rule 4)."""
    out: Membership = {}
    for case, document in sorted(timelines, key=lambda pair: pair[0]["created_ms"]):
        for item in document.get("items", []):
            if item.get("id") and item.get("visitor"):
                out.setdefault((item["visitor"], item["id"]), (case["case_id"], case.get("ticket") or None))
    return out


def interaction_rows(visitor: str, events: Sequence[Mapping[str, Any]], window_ms: int,
                     cases: Membership, erased: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """The rows of one visitor's stored events (rules 1-4); `cases` as `membership` gives it;
    `erased`: the erasures' times by contact (attribution rule 4)."""
    owners = attribute([(event["ts"], event.get("contact")) for event in events], window_ms, erased)
    who = pseudonym(visitor)
    rows = []
    for event, owner in zip(events, owners, strict=True):
        case_id, ticket = cases.get((visitor, event["id"]), (None, None))
        rows.append({
            "event_id": event["id"], "event_key": event_key(visitor, event["id"]), "date": event_day(event),
            "timestamp": event["ts"],
            "type": event["type"], "contact_id": owner.contact, "attribution": owner.how or None,
            "visitor": who, "session": pseudonym(event["session"]), "site": event.get("site"),
            "url": event.get("url"), "title": event.get("title"), "article_number": event.get("article_number"),
            "article_lang": event.get("article_lang"), "search_query": event.get("query"),
            "results": event.get("results"), "position": event.get("position"), "target": event.get("target"),
            "engaged_ms": event.get("engaged_ms"), "scroll": event.get("scroll"),
            "client_family": event.get("client_family"), "client_device": event.get("client_device"),
            "case_id": case_id, "ticket": ticket,
        })
    return rows


def case_row(case: Mapping[str, Any], document: Mapping[str, Any]) -> dict[str, Any]:
    """The `cases` row of a case (its stored row, with case_id) and its timeline document (rule 5)."""
    summary = document["summary"]
    first = summary.get("first_touch_before_case_ms")
    return {
        "case_id": case["case_id"], "ticket": case.get("ticket") or None, "contact_id": case.get("contact") or None,
        "visitor": pseudonym(case["visitor"]) if case.get("visitor") else None, "created": case["created_ms"],
        "source": case.get("source"), "searches": len(summary["searches"]),
        "zero_result_searches": len(summary["zero_result_searches"]), "articles_read": len(summary["articles"]),
        "sessions": summary["sessions"],
        "minutes_first_visit_to_case": None if first is None else round(first / 60_000, 2),
        "case_form_seen": bool(summary["case_form_seen"]),
    }
