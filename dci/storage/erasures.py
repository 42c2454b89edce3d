"""Tombstones of erased contacts (table `state`, PartitionKey `erased`), so an erasure stays erased.

| PartitionKey | RowKey | holds |
|---|---|---|
| `erased` | `{contact}` | when (`erased_ms`); own browsers' pseudonyms; erased events' id hashes; notes to go |

An erasure removes what is stored; what is re-read or re-sent afterwards must not bring it back:
the case poller re-reads its last minutes, Dataverse retries a webhook, a message waits on a queue,
the beacon re-sends what it could not confirm for up to 7 days. So for KEPT_DAYS after an erasure
nothing that happened before it is stored or written again for that contact, or for one of their
own browsers: no event, no case, no timeline, no note. An erased event is known by its id too (a
one-way hash of it), so a re-send is refused whatever time its client now claims. What happens
after the erasure (the person comes back and signs in again) is new activity and is kept. A
tombstone holds the contact id, the browsers' pseudonyms, the events' id hashes and case ids, no
other personal data; retention deletes it after KEPT_DAYS. Readers cache them for REREAD_SECONDS.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from azure.data.tables import EdmType, EntityProperty, UpdateMode

from dci.storage.keys import STATE_TABLE
from dci.storage.tables import AutoTable, list_columns, listed

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient

ERASED = "erased"
KEPT_DAYS = 30  # longer than any re-read: the beacon's 7-day re-sends, a queue message's 7 days, the poller's day
REREAD_SECONDS = 10.0
# List columns of 30,000 characters, 60 KB each (storage/tables.py); 16 of them stay below an entity's
# 1 MiB: the latest 15,876 erased events (16-digit hashes), 4,545 own browsers, 1,620 cases with notes.
MAX_ID_COLUMNS, MAX_VISITOR_COLUMNS, MAX_NOTE_COLUMNS = 9, 5, 2


def event_id_hash(event_id: str) -> str:
    """An erased event's id as its tombstone keeps it: one-way, domain-separated."""
    return hashlib.sha256(f"dci-erased\x00{event_id}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Tombstone:
    """One erased contact: when, their own browsers (pseudonyms), the cases whose notes are to go."""

    contact: str
    erased_ms: int
    visitors: frozenset[str]
    notes_pending: tuple[str, ...] = ()
    events: frozenset[str] = frozenset()  # `event_id_hash` of each erased event


class Tombstones:
    """Writes tombstones and answers, from a copy at most REREAD_SECONDS old, what they forbid."""

    def __init__(self, service: TableServiceClient, clock: Callable[[], float] = time.monotonic) -> None:
        self._table = AutoTable(service, STATE_TABLE)
        self._clock = clock
        self._cache: tuple[float, dict[str, Tombstone], dict[str, int], frozenset[str]] | None = None

    def add(self, contact: str, erased_ms: int, visitors: Iterable[str], notes_pending: Iterable[str],
            events: Iterable[str] = ()) -> None:
        """Write (or renew) a contact's tombstone (`events`: `event_id_hash`es, the latest last);
        this process sees it at once."""
        row = {"PartitionKey": ERASED, "RowKey": contact, "erased_ms": EntityProperty(erased_ms, EdmType.INT64),
               **list_columns("visitors", sorted(set(visitors)), MAX_VISITOR_COLUMNS),
               **list_columns("notes", sorted(set(notes_pending)), MAX_NOTE_COLUMNS),
               **list_columns("events", list(dict.fromkeys(events)), MAX_ID_COLUMNS)}
        self._table.write(lambda client: client.upsert_entity(row, mode=UpdateMode.REPLACE))
        self._cache = None

    def notes_done(self, contact: str, case_ids: Iterable[str]) -> None:
        """These cases' notes are deleted: no longer pending."""
        stone = self.all().get(contact)
        if stone is not None:
            left = set(stone.notes_pending) - set(case_ids)
            self.add(contact, stone.erased_ms, stone.visitors, left, sorted(stone.events))

    def all(self) -> dict[str, Tombstone]:
        """Every tombstone by contact (read again once the copy is REREAD_SECONDS old)."""
        return self._current()[1]

    def _current(self) -> tuple[float, dict[str, Tombstone], dict[str, int], frozenset[str]]:
        if self._cache is None or self._clock() - self._cache[0] > REREAD_SECONDS:
            stones = {row["RowKey"]: Tombstone(row["RowKey"], row["erased_ms"], frozenset(listed(row, "visitors")),
                                               tuple(listed(row, "notes")), frozenset(listed(row, "events")))
                      for row in self._table.partition(ERASED)}
            visitors: dict[str, int] = {}
            for stone in stones.values():
                for visitor in stone.visitors:
                    visitors[visitor] = max(visitors.get(visitor, 0), stone.erased_ms)
            events = frozenset().union(*(stone.events for stone in stones.values()))
            self._cache = (self._clock(), stones, visitors, events)
        return self._cache

    def times(self) -> dict[str, int]:
        """When each erased contact was erased (epoch ms), for attribution rule 4."""
        return {contact: stone.erased_ms for contact, stone in self.all().items()}

    def erased_events(self) -> frozenset[str]:
        """The `event_id_hash` of every erased event (empty, and so free to test, without erasures)."""
        return self._current()[3]

    def erased_at(self, contact: str | None) -> int | None:
        """When this contact was erased (epoch ms), or None."""
        stone = self.all().get(contact or "")
        return None if stone is None else stone.erased_ms

    def forbids(self, contact: str | None, at_ms: int) -> bool:
        """True when something of `contact` that happened at `at_ms` was erased and must not come back."""
        erased = self.erased_at(contact)
        return erased is not None and at_ms <= erased

    def browser_erased_at(self, visitor_pseudonym: str) -> int | None:
        """When the contact whose own browser this was was erased (epoch ms), or None."""
        return self._current()[2].get(visitor_pseudonym)

    def forget_before(self, ms: int) -> int:
        """Delete the tombstones of erasures before `ms` whose notes are all deleted; returns how many."""
        old = [stone for stone in self.all().values() if stone.erased_ms < ms and not stone.notes_pending]
        for stone in old:
            self._table.delete(ERASED, stone.contact)
        self._cache = None
        return len(old)
