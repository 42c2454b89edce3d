"""Interactions and identity links in Azure Table storage.

Tables: `interactions{yyyymm}` (PK `v_{visitor}`, RK `{event id}`; the month of the event's
server-corrected time) and `links` (PK `c_{contact}`, RK `v_{visitor}`). Every write is keyed
deterministically: an event is inserted once per visitor (a repeat, or a retried or re-delivered
message, finds its row), a link is upserted. Which contacts signed in on a
visitor is read from the visitor's own rows (verified events carry their contact), so no reverse
index has to be kept in step.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import EdmType, EntityProperty, TableTransactionError, UpdateMode

from dci.storage.keys import (
    INTERACTIONS_PREFIX,
    LINKS_TABLE,
    STATE_TABLE,
    contact_key,
    interaction_row_key,
    interactions_table,
    visitor_key,
)
from dci.storage.tables import MAX_TRANSACTION, AutoTable

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableServiceClient

logger = logging.getLogger(__name__)

T = TypeVar("T")
Rows = list[dict[str, Any]]

BEACONS_PARTITION = "beacons"
BEACON_NOTE_SECONDS = 60

# Event fields stored as columns; nested `article` is flattened.
_EVENT_FIELDS = ("type", "url", "title", "referrer", "query", "results", "position", "target", "engaged_ms",
                 "scroll", "ticket")


def event_entity(message: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """The interactions row of one event of a `portal-events` message: keyed by visitor and event id,
    filed under the event's server-corrected time (`ts`, which collect bounds around the time the
    batch arrived), never under a time the client claims."""
    entity: dict[str, Any] = {
        "PartitionKey": visitor_key(message["visitor"]),
        "RowKey": interaction_row_key(event["id"]),
        "id": event["id"],
        "ts": EntityProperty(event["ts"], EdmType.INT64),
        "session": message["session"],
        "site": message["site"],
        "received_at": message["received_at"],
        "client_family": message.get("client", {}).get("family"),
        "client_device": message.get("client", {}).get("device"),
        "contact": message.get("contact"),
    }
    for name in _EVENT_FIELDS:
        entity[name] = event.get(name)
    article = event.get("article") or {}
    entity["article_number"] = article.get("number")
    entity["article_lang"] = article.get("lang")
    return {key: value for key, value in entity.items() if value is not None}


def first_copies(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per event id, the first stored (earliest `received_at`): a visitor's rows as every
    reader sees them, whatever copies an older build or a month boundary left (`visitor_events`)."""
    first: dict[str, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (r.get("received_at", ""), r["RowKey"])):
        first.setdefault(row["id"], row)
    return sorted(first.values(), key=lambda row: (row["ts"], row["id"]))


class InteractionStore:
    """Reads and writes interactions and links; takes its TableServiceClient in the constructor."""

    def __init__(self, service: TableServiceClient, clock: Callable[[], float] = time.monotonic) -> None:
        self._service = service
        self.transactions = 0  # storage round trips made by writes; for the benchmark and logs
        self._clock = clock
        self._sites_noted: dict[str, float] = {}

    # --- which portals send beacons (for the install check in /api/health) -----------------------

    def note_beacon(self, site: str, received_at: str) -> None:
        """Remember that `site` sent a batch; written at most once a minute per site and process."""
        now = self._clock()
        if now - self._sites_noted.get(site, float("-inf")) < BEACON_NOTE_SECONDS:
            return
        self._sites_noted[site] = now
        row = {"PartitionKey": BEACONS_PARTITION, "RowKey": site, "received_at": received_at}
        AutoTable(self._service, STATE_TABLE).write(lambda client: client.upsert_entity(row, mode=UpdateMode.MERGE))

    def beacons(self) -> dict[str, str]:
        """The newest `received_at` noted per site."""
        return {row["RowKey"]: row["received_at"] for row in AutoTable(self._service, STATE_TABLE).partition(
            BEACONS_PARTITION)}

    # --- writing ----------------------------------------------------------------------------------

    def write_events(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """Store each event of a message once per visitor: the first copy wins, whatever time a
        repeat claims. Returns the rows that are this message's (new, or stored by an earlier
        delivery of the same message): what the insight facts are made of.

        The happy path is one entity-group transaction of inserts per table (≤ 100 each; a single
        event, a plain insert). When an
        event is there already, the visitor's rows are read once: only the new events are
        inserted, and a verified copy gives its contact to a stored anonymous copy (a re-send whose
        token had expired must not strip it, and a re-send with a token may add it) — nothing else
        of the stored row changes.
        """
        by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in message["events"]:
            by_table[interactions_table(event["ts"])].append(event_entity(message, event))
        ours = []
        for table, rows in by_table.items():
            ours += self._insert_once(AutoTable(self._service, table), rows, message)
        return ours

    def _insert_once(self, table: AutoTable, rows: Rows, message: dict[str, Any]) -> Rows:
        unique = list({row["RowKey"]: row for row in rows}.values())  # (collect refuses repeats in a batch)
        for start in range(0, len(unique), MAX_TRANSACTION):
            chunk = unique[start:start + MAX_TRANSACTION]
            try:
                self.transactions += 1
                if len(chunk) == 1:  # a plain insert: half the client-side cost of a one-entity transaction
                    table.write(lambda client, row=chunk[0]: client.create_entity(row))
                else:
                    table.write(lambda client, ops=[("create", row) for row in chunk]: client.submit_transaction(ops))
            except ResourceExistsError:  # (a plain insert's 409: the entity is there)
                return unique[:start] + self._insert_rest(table, unique[start:], message)
            except TableTransactionError as error:
                if error.error_code != "EntityAlreadyExists":
                    raise
                return unique[:start] + self._insert_rest(table, unique[start:], message)
        return unique

    def _insert_rest(self, table: AutoTable, rows: Rows, message: dict[str, Any]) -> Rows:
        """The slow path: some of `rows` are stored already (a repeat, or a re-delivered message)."""
        partition = rows[0]["PartitionKey"]
        for _attempt in range(3):  # another writer may insert between the read and the write
            self.transactions += 1
            stored = {row["RowKey"]: row for row in table.client.query_entities(
                "PartitionKey eq @pk", parameters={"pk": partition}, select=["RowKey", "received_at", "contact"])}
            new = [row for row in rows if row["RowKey"] not in stored]
            operations: list[tuple[Any, ...]] = [("create", row) for row in new]
            if message.get("contact"):  # a verified copy names the contact of an anonymous first copy
                operations += [("upsert", {"PartitionKey": partition, "RowKey": row["RowKey"],
                                           "contact": message["contact"]}, {"mode": UpdateMode.MERGE})
                               for row in rows if row["RowKey"] in stored and not stored[row["RowKey"]].get("contact")]
            try:
                self.transactions += table.submit(operations)
            except TableTransactionError as error:
                if error.error_code != "EntityAlreadyExists":
                    raise
                continue
            again = [row for row in rows if row["RowKey"] in stored
                     and stored[row["RowKey"]].get("received_at") == message["received_at"]]
            return new + again
        raise RuntimeError("events kept being inserted by another writer; the message is retried")

    def link(self, contact: str, visitor: str, site: str, seen_at: str) -> None:
        """Record that `contact` signed in on `visitor`; idempotent (one upsert)."""
        link = {"PartitionKey": contact_key(contact), "RowKey": visitor_key(visitor), "visitor": visitor,
                "site": site, "seen_at": seen_at}
        self._write(LINKS_TABLE, lambda client: client.upsert_entity(link, mode=UpdateMode.MERGE))

    # --- reading ----------------------------------------------------------------------------------

    def interaction_tables(self) -> list[str]:
        """Every monthly interactions table, oldest first."""
        query = f"TableName ge '{INTERACTIONS_PREFIX}' and TableName lt '{INTERACTIONS_PREFIX}~'"
        return sorted(table.name for table in self._service.query_tables(query))

    def visitor_events(self, visitor: str, tables: list[str] | None = None) -> list[dict[str, Any]]:
        """Every event of a visitor, once each (`first_copies`), across the monthly tables
        (`interaction_tables()` unless given: a caller reading many visitors lists them once), in
        time order."""
        return first_copies(self.visitor_rows(visitor, tables))

    def visitor_rows(self, visitor: str, tables: list[str] | None = None) -> list[dict[str, Any]]:
        """Every stored row of a visitor, copies included (what an erasure deletes), each with its `table`."""
        rows = []
        for table in self.interaction_tables() if tables is None else tables:
            rows += [row | {"table": table} for row in AutoTable(self._service, table).partition(visitor_key(visitor))]
        return rows

    def visitors(self) -> list[str]:
        """Every visitor with stored events (reads only the keys of every monthly table)."""
        found: set[str] = set()
        for table in self.interaction_tables():
            rows = AutoTable(self._service, table).client.list_entities(select=["PartitionKey"])
            found |= {row["PartitionKey"].removeprefix("v_") for row in rows if row["PartitionKey"].startswith("v_")}
        return sorted(found)

    def visitors_of(self, contact: str) -> list[dict[str, Any]]:
        """The link rows of a contact: one per visitor (browser) the contact signed in on."""
        return AutoTable(self._service, LINKS_TABLE).partition(contact_key(contact))

    # --- erasing ----------------------------------------------------------------------------------

    def delete_rows(self, rows: Iterable[dict[str, Any]]) -> int:
        """Delete the given rows (each with `table`, PartitionKey, RowKey); ≤ 100 per transaction."""
        by_table: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for row in rows:
            by_table[row["table"]].append(("delete", {"PartitionKey": row["PartitionKey"], "RowKey": row["RowKey"]}))
        return self._submit(by_table)

    def unlink(self, contact: str, visitor: str) -> None:
        """Remove the link row (a missing row or table is not an error)."""
        AutoTable(self._service, LINKS_TABLE).delete(contact_key(contact), visitor_key(visitor))

    def drop_table(self, name: str) -> None:
        """Delete a whole table (retention drops a month at a time)."""
        self._service.delete_table(name)

    # --- plumbing ---------------------------------------------------------------------------------

    def _submit(self, by_table: dict[str, list[tuple[Any, ...]]]) -> int:
        """Each table's operations as transactions (counted); returns how many rows they touched."""
        for table, operations in by_table.items():
            self.transactions += AutoTable(self._service, table).submit(operations)
        return sum(len(operations) for operations in by_table.values())

    def _write(self, table: str, operation: Callable[[TableClient], T]) -> T:
        self.transactions += 1
        return AutoTable(self._service, table).write(operation)
