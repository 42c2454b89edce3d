"""A contact's activity across the browsers they used: the attribution rules applied per visitor."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dci.attribution import Owner, attribute
from dci.store import InteractionStore

TICKET = "ticket"


def owned(store: InteractionStore, contact: str, window_ms: int, extra_visitors: Iterable[str] = (),
          tickets: Iterable[str] = ()) -> list[tuple[str, list[dict[str, Any]], list[Owner]]]:
    """(visitor, its rows in time order, the owner of each row) for every browser of the contact.

    The browsers are those the contact signed in on plus `extra_visitors` (browsers that submitted
    one of the contact's `tickets`). A `case_submitted` row whose ticket is one of `tickets` counts
    as the contact's own, verified by the ticket (attribution rule 4), and anchors stitching.
    """
    visitors = [link["visitor"] for link in store.visitors_of(contact)]
    visitors += [v for v in extra_visitors if v not in visitors]
    known_tickets = set(tickets)
    out = []
    for visitor in visitors:
        rows = store.visitor_events(visitor)
        marks = []
        for row in rows:
            by_ticket = (not row.get("contact") and row.get("type") == "case_submitted"
                         and row.get("ticket") in known_tickets)
            marks.append(contact if by_ticket else row.get("contact"))
        owners = attribute([(row["ts"], mark) for row, mark in zip(rows, marks)], window_ms)
        owners = [Owner(o.contact, TICKET) if mark == contact and not row.get("contact") else o
                  for row, mark, o in zip(rows, marks, owners)]
        out.append((visitor, rows, owners))
    return out


INTERNAL = ("PartitionKey", "RowKey", "table", "Timestamp", "etag")


def attributed(store: InteractionStore, contact: str, window_ms: int) -> list[dict[str, Any]]:
    """Every interaction attributed to the contact, oldest first (see `items_of`)."""
    return items_of(owned(store, contact, window_ms), contact)


def items_of(browsers: Iterable[tuple[str, list[dict[str, Any]], list[Owner]]], contact: str) -> list[dict[str, Any]]:
    """The contact's interactions from `owned`'s answer, oldest first: the stored fields, `ms` (the
    event time), `ts` (the same as ISO-8601), the `visitor` and how it was attributed."""
    from dci.events import iso_ms
    from dci.keys import moment

    items = []
    for visitor, rows, owners in browsers:
        for row, owner in zip(rows, owners, strict=True):
            if owner.contact == contact:
                item = {key: value for key, value in row.items() if key not in INTERNAL}
                item.update(ms=row["ts"], ts=iso_ms(moment(row["ts"])), visitor=visitor, attribution=owner.how)
                items.append(item)
    items.sort(key=lambda item: (item["ms"], item["id"]))
    return items
