"""Time as the app carries it: epoch milliseconds (UTC). The one place that converts them to and
from datetimes, ISO-8601 text and UTC days."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MS = timedelta(milliseconds=1)
HOUR_MS, MINUTE_MS, DAY_MS = 3_600_000, 60_000, 86_400_000
# The latest an event's (corrected) time may be after its batch arrived: collect refuses an event
# more than this after the batch's `sent_at`, and corrects times by the batch's clock skew.
AFTER_ARRIVAL_MS = 60_000


def moment(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime (exact: no float rounding)."""
    return EPOCH + timedelta(milliseconds=ms)


def ms_of(when: datetime) -> int:
    """An aware datetime as epoch milliseconds (exact)."""
    return (when - EPOCH) // MS


def iso_ms(when: datetime) -> str:
    """Fixed-width UTC timestamp with milliseconds: sorts as text, as storage keys need."""
    utc = when if when.tzinfo is timezone.utc else when.astimezone(timezone.utc)
    return utc.isoformat(timespec="milliseconds")[:23] + "Z"


def iso_of(ms: int) -> str:
    """Epoch milliseconds as `iso_ms` text."""
    return iso_ms(moment(ms))


def epoch_ms(text: str, naive_is_utc: bool = False) -> int:
    """ISO-8601 text (`Z` or an offset) as epoch milliseconds; ValueError when it is none, or has no
    zone (unless `naive_is_utc`, for sources documented to send UTC without saying so)."""
    when = datetime.fromisoformat(text)  # (reads `Z` itself since Python 3.11)
    if when.tzinfo is None:
        if not naive_is_utc:
            raise ValueError(f"{text!r} has no time zone")
        when = when.replace(tzinfo=timezone.utc)
    return ms_of(when)


def epoch_ms_each(texts: list[object]) -> list[int | None]:
    """`epoch_ms` of each text, None for any that is none (not a string, no real instant, no zone).
    One call for a batch's timestamps, with the arithmetic spelled out: collect's hot path."""
    out: list[int | None] = []
    for text in texts:
        try:
            delta = datetime.fromisoformat(text) - EPOCH  # type: ignore[arg-type]  (TypeError: no zone, or no string)
            out.append((delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000)
        except (TypeError, ValueError):
            out.append(None)
    return out


def day_of(ms: int) -> str:
    """The UTC day (`2026-11-28`) an instant falls on."""
    return moment(ms).date().isoformat()


def duration(ms: int) -> str:
    """`2 h 5 min`, `12 min`, `40 s`: a length of time as a person says it."""
    seconds = ms // 1000
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
