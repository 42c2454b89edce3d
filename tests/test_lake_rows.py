"""The lake's rows (dci/lake/rows.py): pure, from stored rows and timelines; table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from dci.lake.rows import CASES, INTERACTIONS, case_row, interaction_rows, membership, pseudonym
from dci.storage.keys import event_row_key

A, B = "6f1c2a4e-0b7d-4c1e-9a55-2f4d8b1e7c30", "0b9e3d51-7a2c-4f8e-8d10-3c6a2e9f4b71"
HOUR = 3_600_000
T0 = 1_796_000_000_000  # 2026-11-30T…


def stored(ts: int, contact: str | None = None, kind: str = "page_view", row_ms: int | None = None,
           **fields: Any) -> dict[str, Any]:
    """An interactions row as the store gives it back."""
    event_id = f"e{ts}"
    row = {"RowKey": event_row_key(row_ms if row_ms is not None else ts, event_id), "id": event_id, "ts": ts,
           "type": kind, "session": "session-1", "site": "portal.example.com", **fields}
    if contact:
        row["contact"] = contact
    return row


@pytest.mark.parametrize(("events", "expected"), [
    # (ts offset in hours, verified contact) → (contact_id, attribution) of each row
    ([(0, None), (1, A)], [(A, "stitched"), (A, "verified")]),
    ([(0, None)], [(None, None)]),
    ([(0, A), (1, None)], [(A, "verified"), (None, None)]),  # after sign-out, no sign-in following
    ([(0, None), (30, A)], [(None, None), (A, "verified")]),  # beyond the 24 h stitch window
    ([(0, A), (1, None), (2, B)], [(A, "verified"), (None, None), (B, "verified")]),  # shared-device guard
])
def test_lake_rows_attribution_follows_the_rules(events: list[tuple[int, str | None]],
                                                 expected: list[tuple[str | None, str | None]]) -> None:
    rows = interaction_rows("visitor-1", [stored(T0 + h * HOUR, who) for h, who in events], 24 * HOUR, {})
    assert [(row["contact_id"], row["attribution"]) for row in rows] == expected


def test_lake_rows_carry_every_column_and_only_pseudonyms() -> None:
    (row,) = interaction_rows("visitor-1", [stored(T0, A, "search", query="vpn", results=0,
                                                   client_family="Edge", client_device="desktop")],
                              HOUR, {("visitor-1", f"e{T0}"): ("case-1", "CAS-1")})
    assert list(row) == [name for name, _, _ in INTERACTIONS]
    assert (row["search_query"], row["results"], row["case_id"], row["ticket"]) == ("vpn", 0, "case-1", "CAS-1")
    assert (row["visitor"], row["session"]) == (pseudonym("visitor-1"), pseudonym("session-1"))
    assert "visitor-1" not in str(row) and "session-1" not in str(row)


def test_lake_rows_day_is_the_stored_rows_not_the_latest_clock() -> None:
    # A re-sent event whose clock skew moved its time past midnight stays on its first day's row.
    midnight = 1_796_083_200_000  # 2026-12-01T00:00:00Z
    (row,) = interaction_rows("v", [stored(midnight + 500, row_ms=midnight - 500)], HOUR, {})
    assert (row["date"], row["timestamp"]) == ("2026-11-30", midnight + 500)


def test_lake_pseudonyms_are_stable_distinct_and_one_way() -> None:
    assert pseudonym("abc") == pseudonym("abc") != pseudonym("abd")
    assert len(pseudonym("abc")) == 32 and int(pseudonym("abc"), 16) >= 0
    assert pseudonym("abc") != __import__("hashlib").sha256(b"abc").hexdigest()[:32]  # domain-separated


def test_lake_membership_names_the_earliest_case_an_event_led_to() -> None:
    first = ({"case_id": "c1", "ticket": "T1", "created_ms": T0 + 2 * HOUR},
             {"items": [{"id": "e1", "visitor": "v"}, {"id": "e2", "visitor": "v"}]})
    later = ({"case_id": "c2", "ticket": "", "created_ms": T0 + 5 * HOUR},
             {"items": [{"id": "e2", "visitor": "v"}, {"id": "e3", "visitor": "v"}, {}]})
    assert membership([later, first]) == {("v", "e1"): ("c1", "T1"), ("v", "e2"): ("c1", "T1"),
                                          ("v", "e3"): ("c2", None)}


def test_lake_membership_keys_an_event_by_its_visitor_too() -> None:
    # Event ids are the beacon's, unique per browser only: another browser's "e1" is another event.
    mine = ({"case_id": "c1", "ticket": "T1", "created_ms": T0},
            {"items": [{"id": f"e{T0 - HOUR}", "visitor": "mine"}]})
    assert interaction_rows("other", [stored(T0 - HOUR)], HOUR, membership([mine]))[0]["case_id"] is None
    assert interaction_rows("mine", [stored(T0 - HOUR)], HOUR, membership([mine]))[0]["case_id"] == "c1"


@pytest.mark.parametrize(("first_touch", "minutes"), [(90_000, 1.5), (None, None), (0, 0.0)])
def test_lake_case_row_figures(first_touch: int | None, minutes: float | None) -> None:
    summary = {"searches": [{"query": "a", "results": 0}, {"query": "b", "results": 2}],
               "zero_result_searches": ["a"], "articles": [{"number": "KA-1"}], "sessions": 2,
               "first_touch_before_case_ms": first_touch, "case_form_seen": True}
    row = case_row({"case_id": "c1", "ticket": "T1", "contact": A, "created_ms": T0, "source": "poll"},
                   {"summary": summary})
    assert list(row) == [name for name, _, _ in CASES]
    assert (row["searches"], row["zero_result_searches"], row["articles_read"], row["sessions"]) == (2, 1, 1, 2)
    assert (row["minutes_first_visit_to_case"], row["visitor"], row["contact_id"]) == (minutes, None, A)
