"""Epoch milliseconds to and from datetimes, ISO-8601 text and UTC days."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dci.clock import day_of, epoch_ms, epoch_ms_each, iso_of, moment, ms_of

MS = 1_795_957_200_123  # 2026-11-29T13:00:00.123Z


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-29T13:00:00.123Z", MS),
    ("2026-11-29T14:00:00.123+01:00", MS),
    ("2026-11-29T08:00:00.123-05:00", MS),
    ("1970-01-01T00:00:00Z", 0),
    ("1969-12-31T23:59:59.999Z", -1),
])
def test_clock_epoch_ms_of_iso_text(text: str, expected: int) -> None:
    assert epoch_ms(text) == expected


def test_clock_text_without_a_zone_is_refused_unless_documented_utc() -> None:
    with pytest.raises(ValueError):
        epoch_ms("2026-11-29T13:00:00.123")
    assert epoch_ms("2026-11-29T13:00:00.123", naive_is_utc=True) == MS


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T00:00:00Z", "2026-11-29T25:00:00Z"])
def test_clock_what_is_no_instant_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        epoch_ms(text)


def test_clock_round_trips_exactly() -> None:
    when = datetime(2026, 11, 29, 13, 0, 0, 123_000, tzinfo=timezone.utc)
    assert moment(MS) == when and ms_of(when) == MS
    assert iso_of(MS) == "2026-11-29T13:00:00.123Z" and epoch_ms(iso_of(MS)) == MS
    assert ms_of(when.astimezone(timezone(timedelta(hours=-8)))) == MS


@pytest.mark.parametrize(("ms", "day"), [(0, "1970-01-01"), (MS, "2026-11-29"), (86_400_000 - 1, "1970-01-01"),
                                         (86_400_000, "1970-01-02")])
def test_clock_day_of(ms: int, day: str) -> None:
    assert day_of(ms) == day


def _epoch_ms_or_none(text: object) -> int | None:
    try:
        return epoch_ms(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


@settings(derandomize=True, max_examples=500, deadline=None)
@given(st.lists(st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()),
    st.datetimes().map(lambda moment: moment.isoformat()),  # no zone: None
    st.text(max_size=30), st.none(), st.integers())))
@example(["2026-13-01T00:00:00Z", "2026-12-06T07:35:60.000Z", "0001-01-01T00:00:00+00:00",
          "9999-12-31T23:59:59.999999Z"])
def test_clock_epoch_ms_each_is_epoch_ms_of_each(texts: list) -> None:
    # Collect's one call for a batch's timestamps (issue 27) must say what epoch_ms says of each.
    assert epoch_ms_each(texts) == [_epoch_ms_or_none(text) for text in texts]
