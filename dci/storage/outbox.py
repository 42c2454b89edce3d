"""What the lake export still has to do, in Table storage (written only when LAKE_URL is set).

| table | PartitionKey | RowKey | holds |
|---|---|---|---|
| `lakeoutbox` | `{yyyy-mm-ddTHH:MM}` (when noted, UTC) | `v_{visitor}` | a visitor whose events were stored |
| `lakeoutbox` | same | `k_{case id}` | a case whose timeline was (re-)assembled |
| `lakeoutbox` | `~erasures` | `{contact}` | an erasure for the lake: the contact's own browsers; when carried out |
| `lakeoutbox` | `~dead` | `v_{visitor}` / `k_{case id}` | an entry the lake refused alone, set aside: reason |

An entry is an upsert on a deterministic key (a re-delivered batch notes the same visitor again) and
is deleted only after the export merged it, on its ETag: an entry noted again meanwhile stays for
the next run. The minute partitions spread the writes; the export reads the oldest first. An
erasure's entry stays ERASURE_KEPT after the lake carried it out: an export that read the contact's
events just before the erasure, and merged them just after it, must find it and erase them again.
An entry whose rows the lake refuses even when merged alone is set aside (`~dead`), so that it
cannot stop the entries behind it; `python -m dci lake dead` lists them and `--retry` puts them back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import EdmType, EntityProperty, UpdateMode

from dci.storage.keys import visitor_key
from dci.storage.tables import AutoTable, list_columns, listed, plain

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient

OUTBOX_TABLE = "lakeoutbox"
ERASURES = "~erasures"  # sorts after every minute partition
DEAD = "~dead"  # so does this: pending() reads the minute partitions only (below "~")
CASE_PREFIX = "k_"
ERASURE_KEPT = timedelta(hours=1)
MINUTE = "%Y-%m-%dT%H:%M"  # the partition of the entries noted in one minute
ERASED_AT = "%Y-%m-%dT%H:%M:%SZ"
DELETERS = 8
MAX_VISITOR_COLUMNS = 16  # an erasure's own browsers: 14,544 (16 × 60 KB), the row below an entity's 1 MiB


@dataclass(frozen=True)
class Entry:
    """One outbox entry: what it names, its fields, and the ETag it was read with."""

    partition: str
    row: str
    etag: str
    fields: dict[str, Any]

    @property
    def visitor(self) -> str | None:
        return self.row.removeprefix("v_") if self.row.startswith("v_") else None

    @property
    def own_visitors(self) -> list[str]:
        """An erasure's browsers that were the contact's alone (pseudonyms)."""
        return listed(self.fields, "visitors")

    @property
    def erased_ms(self) -> int | None:
        """When an erasure happened (epoch ms; None for one noted by an earlier build)."""
        return self.fields.get("erased_ms")

    @property
    def erased(self) -> bool:
        """An erasure entry the lake has carried out."""
        return bool(self.fields.get("erased_at"))

    @property
    def case_id(self) -> str | None:
        return self.row.removeprefix(CASE_PREFIX) if self.row.startswith(CASE_PREFIX) else None


class LakeOutbox:
    """Notes what changed for the lake; hands the export what is pending and clears what it did."""

    def __init__(self, service: TableServiceClient, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self._table = AutoTable(service, OUTBOX_TABLE)
        self._clock = clock

    def note_visitor(self, visitor: str) -> None:
        """A batch of this visitor's events was stored."""
        self._note(visitor_key(visitor))

    def note_all(self, visitors: Iterable[str], case_ids: Iterable[str]) -> int:
        """Note many visitors and cases at once (a backfill): 100 upserts a transaction. Returns how many."""
        partition = self._clock().strftime(MINUTE)
        rows = [visitor_key(visitor) for visitor in visitors] + [f"{CASE_PREFIX}{case}" for case in case_ids]
        self._table.submit(("upsert", {"PartitionKey": partition, "RowKey": row}, {"mode": UpdateMode.REPLACE})
                           for row in rows)
        return len(rows)

    def note_case(self, case_id: str) -> None:
        """This case's timeline was stored."""
        self._note(f"{CASE_PREFIX}{case_id}")

    def _note(self, row: str) -> None:
        entity = {"PartitionKey": self._clock().strftime(MINUTE), "RowKey": row}
        self._table.write(lambda client: client.upsert_entity(entity, mode=UpdateMode.REPLACE))

    def note_erasure(self, contact: str, own_visitors: Iterable[str], erased_ms: int) -> None:
        """An erasure for the lake to carry out: the contact, the browsers that were theirs alone, and
        when it happened (what came after it is new activity, and stays)."""
        earlier = self._table.get(ERASURES, contact)  # a retried erasure finds fewer browsers: keep the first's
        visitors = set(own_visitors) | set(listed(earlier, "visitors") if earlier else [])
        entity = {"PartitionKey": ERASURES, "RowKey": contact, "erased_ms": EntityProperty(erased_ms, EdmType.INT64),
                  **list_columns("visitors", sorted(visitors), MAX_VISITOR_COLUMNS)}
        self._table.write(lambda client: client.upsert_entity(entity, mode=UpdateMode.REPLACE))

    def waited(self) -> float:
        """Seconds the oldest visitor or case entry has waited (to its minute), 0 with none."""
        oldest = self.pending(1)
        if not oldest:
            return 0.0
        noted = datetime.strptime(oldest[0].partition, MINUTE).replace(tzinfo=timezone.utc)
        return max(0.0, (self._clock() - noted).total_seconds())

    def pending(self, limit: int) -> list[Entry]:
        """The oldest `limit` visitor and case entries."""
        return self._entries("PartitionKey lt @end", {"end": "~"}, limit)

    def set_aside(self, entry: Entry, reason: str) -> None:
        """Move an entry the lake refused to `~dead` with the reason (then off the pending list)."""
        dead = {"PartitionKey": DEAD, "RowKey": entry.row, "reason": reason[:1000], "noted": entry.partition,
                "set_aside_at": self._clock().strftime(ERASED_AT)}
        self._table.write(lambda client: client.upsert_entity(dead, mode=UpdateMode.REPLACE))
        self.done([entry])

    def dead(self) -> list[Entry]:
        """The entries set aside, with their reasons."""
        return self._entries("PartitionKey eq @pk", {"pk": DEAD}, None)

    def retry_dead(self) -> int:
        """Put every entry set aside back on the pending list (after a fix); returns how many."""
        entries = self.dead()
        self.note_all((e.visitor for e in entries if e.visitor), (e.case_id for e in entries if e.case_id))
        self.done(entries)
        return len(entries)

    def erasures(self) -> list[Entry]:
        """The erasures noted: those still to carry out, and those carried out within ERASURE_KEPT."""
        return self._entries("PartitionKey eq @pk", {"pk": ERASURES}, None)

    def mark_erased(self, entry: Entry) -> None:
        """The lake carried this erasure out (unless it was noted again since it was read: a retried
        erasure, which the next export carries out once more)."""
        entity = {"PartitionKey": ERASURES, "RowKey": entry.row,
                  **list_columns("visitors", entry.own_visitors, MAX_VISITOR_COLUMNS),
                  **({"erased_ms": EntityProperty(entry.erased_ms, EdmType.INT64)} if entry.erased_ms else {}),
                  "erased_at": self._clock().strftime(ERASED_AT)}
        with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):
            self._table.client.update_entity(entity, mode=UpdateMode.REPLACE, etag=entry.etag,
                                             match_condition=MatchConditions.IfNotModified)

    def forget_erasures(self) -> int:
        """Delete the erasure entries carried out more than ERASURE_KEPT ago; returns how many."""
        cutoff = (self._clock() - ERASURE_KEPT).strftime(ERASED_AT)
        old = [entry for entry in self.erasures() if entry.erased and entry.fields["erased_at"] < cutoff]
        self.done(old)
        return len(old)

    def _entries(self, query: str, parameters: dict[str, str], limit: int | None) -> list[Entry]:
        out = []
        try:
            for row in self._table.client.query_entities(query, parameters=parameters):
                out.append(Entry(row["PartitionKey"], row["RowKey"], row.metadata["etag"],
                                 {k: v for k, v in plain(row).items() if k not in ("PartitionKey", "RowKey")}))
                if limit is not None and len(out) >= limit:
                    break
        except ResourceNotFoundError:
            return []
        return out

    def done(self, entries: Iterable[Entry]) -> None:
        """Delete entries the export carried out, unless noted again since they were read (one
        conditional delete each, DELETERS at once)."""
        def delete(entry: Entry) -> None:
            with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):
                self._table.client.delete_entity(entry.partition, entry.row, etag=entry.etag,
                                                 match_condition=MatchConditions.IfNotModified)

        with ThreadPoolExecutor(DELETERS) as pool:
            list(pool.map(delete, entries))
