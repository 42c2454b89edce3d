"""A case's journey: pure. Which of a contact's events belong to which of their cases.

A contact's cases, in order (created; then ticket; then id), cut their activity into journeys, so
that a customer's second case holds what they did after the first and nothing of it:

1. a case's own confirmation is its own (claimed): a verified `case_submitted` event naming its
   ticket, within CLAIM_MS of its creation, with the page it was sent from (a view of the same
   address on the same browser within a minute either way, and the time spent on that page);
2. a case ends at its creation (plus the second `createdon` rounds off) or at its last claimed
   event, whichever is later;
3. every other event belongs to the first case, in order, that it does not come after the end
   of: a journey starts after the previous case's end; at most `lookback` before its case.

Two cases of one contact created in the same second split by ticket (their own confirmations,
rule 1), else by time (rule 3, the earlier ticket first). Only a verified event claims: a ticket
number an anonymous batch names moves nothing (see `cases.claimed_case`).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from typing import Any

from dci.attribution import VERIFIED
from dci.clock import MINUTE_MS

CREATED_PRECISION_MS = 1000  # Dataverse keeps `createdon` to the second
CLAIM_MS = 10 * MINUTE_MS  # how far from its case's creation a confirmation may be (either way)
SAME_PAGE_MS = MINUTE_MS  # the confirmation page's view, reported beside its `case_submitted`
PAGE_TIME_MS = 30 * MINUTE_MS  # the time spent on it, reported when the page is left


def ordered(cases: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """A contact's cases (`case_id`, `created_ms`, `ticket`) in journey order."""
    return sorted(cases, key=lambda c: (c["created_ms"], (c.get("ticket") or "").upper(), c["case_id"]))


def claims(cases: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """Rule 1: the index of each event that is a case's own confirmation, and that case's id."""
    by_ticket: dict[str, Mapping[str, Any]] = {}
    for case in ordered(cases):
        if case.get("ticket"):
            by_ticket.setdefault(str(case["ticket"]).upper(), case)
    claimed: dict[int, str] = {}
    pages: list[tuple[str, str, int, str]] = []  # (browser, address, time, case id) of each confirmation
    for index, event in enumerate(events):
        case = by_ticket.get(str(event.get("ticket") or "").upper())
        if event.get("type") == "case_submitted" and case is not None and event.get("attribution") == VERIFIED \
                and abs(event["ts"] - case["created_ms"]) <= CLAIM_MS:
            claimed[index] = case["case_id"]
            pages.append((event.get("visitor", ""), event.get("url") or "", event["ts"], case["case_id"]))
    if not pages:
        return claimed
    for index, event in enumerate(events):
        if index in claimed or event.get("type") not in ("page_view", "engagement"):
            continue
        for browser, url, ts, case_id in pages:
            if event.get("visitor", "") != browser or (event.get("url") or "") != url or not url:
                continue
            if (event["type"] == "page_view" and abs(event["ts"] - ts) <= SAME_PAGE_MS) or (
                    event["type"] == "engagement" and 0 <= event["ts"] - ts <= PAGE_TIME_MS):
                claimed[index] = case_id
                break
    return claimed


def journeys(cases: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]],
             lookback_ms: int) -> dict[str, list[Mapping[str, Any]]]:
    """Each case's events (by case id, in the order given), by the rules above. `events` carry
    `ts`, `type`, and for claims `ticket`, `url`, `visitor` and `attribution`."""
    order = ordered(cases)
    claimed = claims(order, events)
    end = {case["case_id"]: case["created_ms"] + CREATED_PRECISION_MS for case in order}
    for index, case_id in claimed.items():
        end[case_id] = max(end[case_id], events[index]["ts"])
    reach: list[int] = []  # the latest end so far, in case order: the first case an event fits is a bisection
    for case in order:
        reach.append(max(reach[-1], end[case["case_id"]]) if reach else end[case["case_id"]])
    out: dict[str, list[Mapping[str, Any]]] = {case["case_id"]: [] for case in order}
    created = {case["case_id"]: case["created_ms"] for case in order}
    for index, event in enumerate(events):
        if index in claimed:
            owner = claimed[index]
        else:
            position = bisect.bisect_left(reach, event["ts"])
            if position == len(order):
                continue  # after every case: no case's journey (yet)
            owner = order[position]["case_id"]
        if event["ts"] >= created[owner] - lookback_ms:
            out[owner].append(event)
    return out


def previous(case: Mapping[str, Any], cases: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The contact's case just before `case` in journey order, or None."""
    order = ordered(cases)
    ids = [c["case_id"] for c in order]
    if case["case_id"] not in ids:
        return None
    at = ids.index(case["case_id"])
    return order[at - 1] if at else None
