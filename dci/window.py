"""A case's journey: pure. Which of a contact's events belong to which of their cases.

A contact's cases, in order (created; then ticket; then id), cut their activity into journeys, so
that a customer's second case holds what they did after the first and nothing of it:

1. a case's own confirmation is its own (claimed): a verified `case_submitted` event naming its
   ticket, within CLAIM_MS of its creation, with the page it was sent from — the page view next to
   it on that browser, of the same address within a minute, and the time spent on that page until
   the browser's next page view (`_its_page`); a later visit to the same address is not part of it;
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


def claims(order: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """Rule 1: the index of each event that is a case's own confirmation, and that case's id
    (`order`: the contact's cases in journey order, `ordered`)."""
    by_ticket: dict[str, Mapping[str, Any]] = {}
    for case in order:
        if case.get("ticket"):
            by_ticket.setdefault(str(case["ticket"]).upper(), case)
    claimed: dict[int, str] = {}
    for index, event in enumerate(events):
        case = by_ticket.get(str(event.get("ticket") or "").upper())
        if event.get("type") == "case_submitted" and case is not None and event.get("attribution") == VERIFIED \
                and abs(event["ts"] - case["created_ms"]) <= CLAIM_MS:
            claimed[index] = case["case_id"]
    if not claimed:
        return claimed
    browsers: dict[str, list[int]] = {}
    for index, event in enumerate(events):
        browsers.setdefault(event.get("visitor", ""), []).append(index)
    for indexes in browsers.values():
        indexes.sort(key=lambda i: (events[i]["ts"], str(events[i].get("id", ""))))
    for submission, case_id in list(claimed.items()):  # (each a case_submitted event)
        claimed.update(dict.fromkeys(_its_page(events, browsers[events[submission].get("visitor", "")], submission),
                                     case_id))
    return claimed


def _its_page(events: Sequence[Mapping[str, Any]], browser: list[int], submission: int) -> list[int]:
    """The confirmation page of a submission on its browser (`browser`: the indexes of its events in
    time order): the page view just before or just after it (no other page view between) of the
    same address within SAME_PAGE_MS, and the time spent on that page — its engagement events
    until the browser's next page view, within PAGE_TIME_MS. A later visit to the same address is
    another page: it stays with whatever journey it falls in."""
    sent = events[submission]
    url, at = sent.get("url") or "", browser.index(submission)
    if not url:
        return []
    own: list[int] = []
    for step in (-1, 1):  # the page view next to it on either side
        position = at + step
        while 0 <= position < len(browser) and events[browser[position]].get("type") != "page_view":
            position += step
        if 0 <= position < len(browser):
            view = events[browser[position]]
            if view.get("url") == url and abs(view["ts"] - sent["ts"]) <= SAME_PAGE_MS:
                own.append(browser[position])
    for index in browser[at + 1:]:  # the time on it, reported when it is left
        event = events[index]
        if event.get("type") == "page_view" and index not in own:
            break
        if event.get("type") == "engagement" and event.get("url") == url and event["ts"] - sent["ts"] <= PAGE_TIME_MS:
            own.append(index)
    return own


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


def among(case: Mapping[str, Any], cases: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The contact's cases with `case` among them (added when missing; its stored row replaced)."""
    return [c for c in cases if c["case_id"] != case["case_id"]] + [case]


def neighbours(case: Mapping[str, Any], cases: Sequence[Mapping[str, Any]]
               ) -> tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]:
    """The contact's cases just before and just after `case` in journey order (None for none)."""
    order = ordered(among(case, cases))
    at = [c["case_id"] for c in order].index(case["case_id"])
    return (order[at - 1] if at else None), (order[at + 1] if at + 1 < len(order) else None)
