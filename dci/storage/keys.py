"""Storage keys and table names: deterministic, so a re-delivered message writes the same rows."""

from __future__ import annotations

from dci.clock import iso_of, moment

INTERACTIONS_PREFIX = "interactions"  # one table per month: interactions202611
LINKS_TABLE = "links"  # PK c_{contact}, RK v_{visitor}
STATE_TABLE = "state"  # PK poller: the watermark; PK beacons, RK {site}: when a portal last sent a batch


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
    """`2026-11-28T15:00:00.120Z_{event id}`: sorts by time, unique by id."""
    return f"{iso_of(ts_ms)}_{event_id}"


def day_of_row_key(row_key: str) -> str:
    """The UTC day of an interaction row (its key starts with the event's ISO time)."""
    return row_key[:10]
