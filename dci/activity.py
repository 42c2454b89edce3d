"""A contact's activity across the browsers they used: the attribution rules applied per visitor."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dci.attribution import Owner, attribute
from dci.storage.interactions import InteractionStore


def owned(store: InteractionStore, contact: str, window_ms: int,
          erased: Mapping[str, int] | None = None) -> list[tuple[str, list[dict[str, Any]], list[Owner]]]:
    """(visitor, its rows in time order, the owner of each row) for every browser the contact
    signed in on. Only a verified sign-in brings a browser in: nothing an anonymous batch claims
    (a ticket number, say) does (see `cases.claimed_case`). `erased`: the erasures' times by
    contact (attribution rule 4)."""
    out = []
    for link in store.visitors_of(contact):
        rows = store.visitor_events(link["visitor"])
        out.append((link["visitor"], rows,
                    attribute([(row["ts"], row.get("contact")) for row in rows], window_ms, erased)))
    return out


INTERNAL = ("PartitionKey", "RowKey", "table", "Timestamp", "etag")


def attributed(store: InteractionStore, contact: str, window_ms: int,
               erased: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
    """Every interaction attributed to the contact, oldest first (see `items_of`)."""
    return items_of(owned(store, contact, window_ms, erased), contact)


def items_of(browsers: Iterable[tuple[str, list[dict[str, Any]], list[Owner]]], contact: str) -> list[dict[str, Any]]:
    """The contact's interactions from `owned`'s answer, oldest first: the stored fields, `ms` (the
    event time), `ts` (the same as ISO-8601), the `visitor` and how it was attributed."""
    from dci.clock import iso_of

    items = []
    for visitor, rows, owners in browsers:
        for row, owner in zip(rows, owners, strict=True):
            if owner.contact == contact:
                item = {key: value for key, value in row.items() if key not in INTERNAL}
                item.update(ms=row["ts"], ts=iso_of(row["ts"]), visitor=visitor, attribution=owner.how)
                items.append(item)
    items.sort(key=lambda item: (item["ms"], item["id"]))
    return items
