"""Attribution rules, table-driven: each case is one visitor's events in time order."""

from __future__ import annotations

import random

import pytest

from dci.attribution import NOBODY, STITCHED, VERIFIED, Owner, attribute, signins

M = 60_000  # a minute in ms
H = 60 * M
WINDOW = 24 * H
A, B = "contact-a", "contact-b"


def owners(events: list[tuple[int, str | None]]) -> list[str | None]:
    return [o.contact for o in attribute(events, WINDOW)]


CASES = [
    # (case, events as (minute, verified contact), expected owner per event)
    ("anonymous only", [(0, None), (5, None)], [None, None]),
    ("browse then sign in", [(0, None), (5, None), (10, A), (12, A)], [A, A, A, A]),
    ("sign in then browse on", [(0, A), (5, A)], [A, A]),
    ("after sign-out belongs to nobody", [(0, A), (5, A), (20, None), (25, None)], [A, A, None, None]),
    ("too long before sign-in", [(0, None), (25 * 60, A)], [None, A]),
    ("just within the window", [(0, None), (24 * 60, A)], [A, A]),
    ("shared device: A, anonymous, B", [(0, A), (10, None), (20, B)], [A, None, B]),
    ("same person signs in again", [(0, A), (10, None), (20, A)], [A, A, A]),
    ("A long ago does not block B", [(0, A), (30 * 60, None), (30 * 60 + 5, B)], [A, B, B]),
    ("anonymous before A and B sessions", [(0, None), (5, A), (10, None), (15, B)], [A, A, None, B]),
    ("same millisecond as sign-in", [(5, None), (5, A)], [A, A]),
]


@pytest.mark.parametrize(("case", "events", "expected"), CASES, ids=[c[0] for c in CASES])
def test_attribution_rules(case: str, events: list[tuple[int, str | None]], expected: list[str | None]) -> None:
    assert owners([(minute * M, who) for minute, who in events]) == expected


def test_attribution_says_how() -> None:
    result = attribute([(0, None), (M, A), (2 * M, None)], WINDOW)
    assert result == [Owner(A, STITCHED), Owner(A, VERIFIED), NOBODY]


def test_attribution_does_not_depend_on_arrival_order() -> None:
    # Late and out-of-order deliveries: the same events in any order get the same owners.
    events = [(0, None), (3 * M, None), (10 * M, A), (40 * M, None), (50 * M, B), (55 * M, None)]
    expected = dict(zip(events, owners(events)))
    rng = random.Random(7)
    for _ in range(20):
        shuffled = events[:]
        rng.shuffle(shuffled)
        assert dict(zip(shuffled, owners(shuffled))) == expected


def test_attribution_two_devices_are_two_visitors() -> None:
    # Phone: anonymous, never signs in. Laptop: anonymous, then signs in. Only the laptop stitches.
    phone = [(0, None), (5 * M, None)]
    laptop = [(1 * M, None), (6 * M, A)]
    assert owners(phone) == [None, None]
    assert owners(laptop) == [A, A]


def test_attribution_corrected_clock_skew_decides_the_order() -> None:
    # A client clock 2 h slow: collect corrects ts, so the search is placed before the sign-in.
    skew = 2 * H
    search_client_ts, signin_ts = 10 * M - skew, 12 * M
    assert owners([(search_client_ts + skew, None), (signin_ts, A)]) == [A, A]


def test_signins_are_verified_runs_split_by_the_gap() -> None:
    events = [(0, A), (5 * M, A), (7 * M, None), (50 * M, A), (52 * M, B)]
    assert signins(events, A, 30 * M) == [(0, 5 * M), (50 * M, 50 * M)]
    assert signins(events, B, 30 * M) == [(52 * M, 52 * M)]


@pytest.mark.parametrize(("events", "erased_minute", "expected"), [
    # rule 4: A was erased at minute 10; anonymous browsing before it never becomes A's again
    ([(0, None), (5, None), (20, A)], 10, [None, None, A]),
    ([(0, None), (12, None), (20, A)], 10, [None, A, A]),  # after the erasure: new, and A's
    ([(0, None), (10.9, None), (20, A)], 10, [None, None, A]),  # within the minute an event may claim past
    # its arrival: it may have arrived before the erasure (the third outside run sent one 55 s "after")
    ([(0, None), (10, None), (20, A)], 10, [None, None, A]),  # at the erasure's very millisecond: before it
    ([(0, None), (5, B)], 10, [B, B]),  # another contact's stitching is untouched
])
def test_attribution_never_stitches_to_a_contact_erased_after_the_event(
        events: list[tuple[int, str | None]], erased_minute: int, expected: list[str | None]) -> None:
    timed = [(int(minute * M), who) for minute, who in events]
    assert [o.contact for o in attribute(timed, WINDOW, {A: erased_minute * M})] == expected
