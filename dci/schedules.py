"""How long a six-field NCRONTAB schedule (`second minute hour day month day-of-week`, UTC) can
leave between two firings: the longest wait for the next case poll, say. Pure.

Seconds, minutes and hours are read (`*`, `*/5`, `10-20`, `0-30/10`, `5/15`, lists of those); a
schedule that also restricts the day, the month or the weekday, or one this module cannot read, is
taken as waiting a week (no one polls for new cases less often).
"""

from __future__ import annotations

DAY_SECONDS = 86_400
WEEK_SECONDS = 7 * DAY_SECONDS


def longest_gap_seconds(schedule: str) -> int:
    """The longest time between two firings of `schedule`, in seconds; a week for a schedule that
    restricts days, or one this module cannot read."""
    fields = schedule.split()
    if len(fields) != 6 or any(field not in ("*", "?") for field in fields[3:]):
        return WEEK_SECONDS
    try:
        seconds, minutes, hours = (_values(field, top) for field, top in zip(fields[:3], (59, 59, 23), strict=True))
    except ValueError:
        return WEEK_SECONDS
    firings = sorted(h * 3600 + m * 60 + s for h in hours for m in minutes for s in seconds)
    if not firings:
        return WEEK_SECONDS
    gaps = [later - earlier for earlier, later in zip(firings, firings[1:], strict=False)]
    return max([*gaps, firings[0] + DAY_SECONDS - firings[-1]])  # (the last of a day to the first of the next)


def _values(field: str, top: int) -> set[int]:
    """The values one field allows, from 0 to `top`; ValueError for one it cannot read."""
    allowed: set[int] = set()
    for part in field.split(","):
        span, _, every = part.partition("/")
        step = int(every) if every else 1
        if step < 1:
            raise ValueError(part)
        if span == "*":
            first, last = 0, top
        elif "-" in span:
            low, high = span.split("-", 1)
            first, last = int(low), int(high)
        else:
            first = int(span)
            last = top if every else first  # `5/15`: from 5, every 15
        if not 0 <= first <= last <= top:
            raise ValueError(part)
        allowed.update(range(first, last + 1, step))
    return allowed
