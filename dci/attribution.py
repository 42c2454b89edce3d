"""Whose activity is it? The attribution rules, as pure functions over one visitor's events.

A visitor is one browser (its beacon id). Rules, for each event of a visitor:

1. an event that carries a verified contact belongs to that contact ("verified");
2. an anonymous event belongs to contact C ("stitched") when the visitor's next verified event is
   C's and comes within the stitch window — unless the visitor's previous verified event, within
   the window, is another contact's (shared-device guard);
3. every other anonymous event belongs to nobody: after a sign-out with no sign-in following,
   between two different people's sessions, or too long before a sign-in;
4. nor is an anonymous event stitched to a contact who was erased after it happened (`erased`:
   contact → epoch ms of the erasure, from the tombstones): an erased person who signs in again
   brings back nothing from before their erasure. "After it happened" allows for the minute an
   event may claim past its batch's arrival (`clock.AFTER_ARRIVAL_MS`): an event that arrived
   before the erasure can never pass for one after it.

Attribution is computed when activity is read, from all of the visitor's stored events, so late
and out-of-order deliveries change nothing: the answer depends on the events, not their arrival.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dci.clock import AFTER_ARRIVAL_MS

VERIFIED = "verified"
STITCHED = "stitched"


@dataclass(frozen=True)
class Owner:
    """Who an event belongs to, and how we know."""

    contact: str | None
    how: str = ""


NOBODY = Owner(None)


def attribute(events: Sequence[tuple[int, str | None]], window_ms: int,
              erased: Mapping[str, int] | None = None) -> list[Owner]:
    """One Owner per `(ts_ms, verified_contact)` of a single visitor, in the order given."""
    order = sorted(range(len(events)), key=lambda i: events[i][0])
    owners: list[Owner] = [NOBODY] * len(events)
    following: list[tuple[int, str] | None] = [None] * len(order)
    upcoming: tuple[int, str] | None = None
    for position in reversed(range(len(order))):
        ts, contact = events[order[position]]
        if contact:
            upcoming = (ts, contact)
        following[position] = upcoming
    previous: tuple[int, str] | None = None
    for position, index in enumerate(order):
        ts, contact = events[index]
        if contact:
            owners[index] = Owner(contact, VERIFIED)
            previous = (ts, contact)
            continue
        after = following[position]
        if after is None or after[0] - ts > window_ms:
            continue
        if previous is not None and ts - previous[0] <= window_ms and previous[1] != after[1]:
            continue  # another person used this browser just before: nobody can say whose this is
        erased_at = erased.get(after[1]) if erased else None
        if erased_at is not None and ts <= erased_at + AFTER_ARRIVAL_MS:
            continue  # rule 4
        owners[index] = Owner(after[1], STITCHED)
    return owners


def signins(events: Sequence[tuple[int, str | None]], contact: str, gap_ms: int) -> list[tuple[int, int]]:
    """The contact's signed-in intervals on one visitor: verified events no more than `gap_ms` apart."""
    times = sorted(ts for ts, who in events if who == contact)
    intervals: list[tuple[int, int]] = []
    for ts in times:
        if intervals and ts - intervals[-1][1] <= gap_ms:
            intervals[-1] = (intervals[-1][0], ts)
        else:
            intervals.append((ts, ts))
    return intervals
