"""What Table storage holds, as the insight rollups measure it, and the one small-sample rule of
every rate the insights give: pure."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any, TypeVar

MAX_KEYS_PER_DAY = 100  # distinct terms or articles a day's rollup keeps per list, the most frequent
COLUMN_LIMIT = 32_768  # UTF-16 code units a Table string property holds (64 KiB)
COLUMN_BUDGET = 32_000  # what a rollup's list may fill of it: room for the braces and a rounding slip
ENTITY_LIMIT = 1024 * 1024  # bytes a Table entity holds, all properties together
MIN_SAMPLE = 20  # the one small-sample rule: a rate of fewer than this many is "too few" (JSON and page alike)
Z95 = 1.959964  # the 95 % normal quantile, for Wilson intervals

T = TypeVar("T")


def encode(value: Any) -> str:
    """A rollup figure as stored: compact JSON, non-ASCII as itself (a CJK character is 1 unit, not 6)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def utf16_len(text: str) -> int:
    """The length of `text` in UTF-16 code units, as Table storage counts a string property."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def fitting(entries: Iterable[T], units: Callable[[T], int], limit: int = MAX_KEYS_PER_DAY) -> list[T]:
    """The first `limit` of `entries` (in their order) that fit one stored column: each takes
    `units(entry)` UTF-16 units (its separator included) besides the column's brackets, and the
    column at most COLUMN_BUDGET; the first entry that would overflow it ends the list."""
    kept: list[T] = []
    size = 2  # {} or []
    for entry in islice(entries, limit):
        size += units(entry)
        if size > COLUMN_BUDGET:
            break
        kept.append(entry)
    return kept


def too_few(whole: int) -> bool:
    """The small-sample rule of every rate in the insights: its denominator (`of`, the reads, the
    sessions) is under MIN_SAMPLE — no denominator at all included. Such a rate is flagged, greyed on
    the page, and never compared."""
    return whole < MIN_SAMPLE


def rate(part: int, whole: int) -> float | None:
    """`part / whole` to 4 places; None when there is nothing to divide by."""
    return round(part / whole, 4) if whole else None


def rated(part: int, whole: int, name: str | None = None, *, of: bool = True,
          interval: bool = False) -> dict[str, Any]:
    """A rate with its small-sample flag, as the JSON carries it. Without `name`: `rate`, its sample
    `of`, its 95 % Wilson `interval` (when asked) and `too_few` (a site-search rate); with it, the
    same keys named after the rate: `{name}`, `{name}_of` (unless `of` is False), `{name}_interval`
    (when asked) and `{name}_too_few` (the trend's rates, the search lists')."""
    def key(suffix: str) -> str:
        return suffix if name is None else f"{name}_{suffix}"

    return {name or "rate": rate(part, whole), **({key("of"): whole} if of else {}),
            **({key("interval"): wilson(part, whole)} if interval else {}), key("too_few"): too_few(whole)}


def wilson(part: int, whole: int) -> list[float] | None:
    """The 95 % Wilson score interval of the rate `part / whole` ([low, high]); None for no sample.
    Unlike ± a normal error it stays within 0..1 and is honest for small samples: 3 of 3 is
    [0.44, 1.0], not "100 %"."""
    if whole <= 0:
        return None
    p, z2 = part / whole, Z95 * Z95
    centre = (p + z2 / (2 * whole)) / (1 + z2 / whole)
    spread = Z95 * math.sqrt(p * (1 - p) / whole + z2 / (4 * whole * whole)) / (1 + z2 / whole)
    return [round(max(0.0, centre - spread), 4), round(min(1.0, centre + spread), 4)]
