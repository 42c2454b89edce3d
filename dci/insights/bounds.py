"""What Table storage holds, as the insight rollups measure it: pure."""

from __future__ import annotations

import json
from typing import Any

MAX_KEYS_PER_DAY = 100  # distinct terms or articles a day's rollup keeps per list, the most frequent
COLUMN_LIMIT = 32_768  # UTF-16 code units a Table string property holds (64 KiB)
COLUMN_BUDGET = 32_000  # what a rollup's list may fill of it: room for the braces and a rounding slip
ENTITY_LIMIT = 1024 * 1024  # bytes a Table entity holds, all properties together


def encode(value: Any) -> str:
    """A rollup figure as stored: compact JSON, non-ASCII as itself (a CJK character is 1 unit, not 6)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def utf16_len(text: str) -> int:
    """The length of `text` in UTF-16 code units, as Table storage counts a string property."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2
