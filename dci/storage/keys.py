"""Storage keys and table names: deterministic, so a re-delivered message writes the same rows."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from dci.clock import day_of, iso_of, moment

INTERACTIONS_PREFIX = "interactions"  # one table per month: interactions202611
LINKS_TABLE = "links"  # PK c_{contact}, RK v_{visitor}
STATE_TABLE = "state"  # PK poller: the watermark; PK beacons, RK {site}: a portal's last batch; PK warnings, erased


def interactions_table(ms: int) -> str:
    """The monthly interactions table an event time falls in."""
    return f"{INTERACTIONS_PREFIX}{moment(ms):%Y%m}"


def month_of_table(name: str) -> tuple[int, int] | None:
    """(year, month) of an interactions table name, None for any other table."""
    suffix = name.removeprefix(INTERACTIONS_PREFIX)
    if suffix == name or len(suffix) != 6 or not suffix.isdigit():
        return None
    return int(suffix[:4]), int(suffix[4:])


def visitor_key(visitor: str) -> str:
    """PartitionKey of a visitor (ids are validated to a key-safe alphabet at collect)."""
    return f"v_{visitor}"


def contact_key(contact: str) -> str:
    """PartitionKey of a contact (a GUID)."""
    return f"c_{contact}"


def event_row_key(ts_ms: int, event_id: str) -> str:
    """`2026-11-28T15:00:00.120Z_{id}`: sorts by time, unique by id (a contact's cases; and the
    interaction rows of earlier builds, which keyed an event by its client's time)."""
    return f"{iso_of(ts_ms)}_{event_id}"


def interaction_row_key(event_id: str) -> str:
    """RowKey of an event in its visitor's partition: the event id alone, so that a repeat of the
    event, at whatever time it claims, finds the row the first copy made (first wins)."""
    return event_id


def is_legacy_row_key(row_key: str) -> bool:
    """An interaction row keyed by its client's time (earlier builds): `2026-11-28T15:00:00.120Z_{id}`,
    exactly `iso_of`'s shape — which holds a `:` and a `.`, so no event id (of `[A-Za-z0-9_-]`)
    passes for one and chooses its fact's day or key."""
    return _LEGACY_ROW_KEY.match(row_key) is not None


_LEGACY_ROW_KEY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z_")


def event_day(row: dict[str, Any]) -> str:
    """The UTC day an interaction row is filed under: its server-corrected time's (a legacy row:
    its key's, as it was filed then)."""
    return row["RowKey"][:10] if is_legacy_row_key(row["RowKey"]) else day_of(row["ts"])


def event_key(visitor: str, event_id: str) -> str:
    """One event everywhere: the visitor and its event id (ids are the beacon's, unique per browser
    only). As a key outside the visitor's own rows (insight facts), a one-way hash of the two."""
    return hashlib.sha256(f"dci-event\x00{visitor}\x00{event_id}".encode()).hexdigest()[:32]


def fact_ref(visitor: str, row: dict[str, Any]) -> tuple[str, str]:
    """(day, row key) of the insight fact of a stored interaction row (plain values): the day the
    row is filed under, and the event's key — or, for a row of an earlier build, its RowKey."""
    key = row["RowKey"] if is_legacy_row_key(row["RowKey"]) else event_key(visitor, row["id"])
    return event_day(row), key
