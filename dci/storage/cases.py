"""Cases and their timelines in Table storage.

| table | PartitionKey | RowKey | holds |
|---|---|---|---|
| `timelines` | `{case id}` | `case` | the case: contact, created, ticket, title, source, status |
| `timelines` | `{case id}` | `timeline` | the assembled timeline (JSON), version, digest, note id |
| `cases` | `c_{contact}` | `{created}_{case id}` | a contact's cases, for export and late-event re-assembly |
| `cases` | `t_{TICKET}` | `{case id}` | the cases a ticket number names (usually one), to open a case by it |
| `state` | `{name}` | `{key}` | the poller's watermark |
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any, TypedDict

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import EdmType, EntityProperty, UpdateMode

from dci.storage.keys import STATE_TABLE, contact_key, event_row_key
from dci.storage.tables import AutoTable

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient

    from dci.cases import Case

logger = logging.getLogger(__name__)

TIMELINES, CASES, STATE = "timelines", "cases", STATE_TABLE
CASE_FIELDS = ("created_ms", "ticket", "title", "contact", "source")


TICKET_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # Dataverse auto-numbers: CAS-01234-X1Y2Z3


def ticket_key(ticket: str | None) -> str | None:
    """The partition of a ticket number's index (case-insensitive), None for one that is not a ticket."""
    return f"t_{ticket.upper()}" if ticket and TICKET_PATTERN.fullmatch(ticket) else None


class StoredCase(TypedDict):
    """A case row: the case, and where it stands (new, queued, assembled, skipped)."""

    case: Case
    status: str
LEGACY_TICKETS = "tickets"  # written by builds before 0.2 (browser per ticket); the retention timer drops it
PENDING = ("new", "queued")


class CaseStore:
    """Case rows, timelines, ticket links and the poller's watermark."""

    def __init__(self, service: TableServiceClient) -> None:
        self._tables = {name: AutoTable(service, name) for name in (TIMELINES, CASES, STATE)}

    # --- cases ------------------------------------------------------------------------------------

    def remember(self, case: Case) -> bool:
        """Store a case seen for the first time; True when it still has to be queued.

        `case` has case_id, created_ms, contact (or visitor), ticket, title, source. A case already
        queued, assembled or skipped answers False: a re-run never queues it twice.
        """
        row = {"PartitionKey": case["case_id"], "RowKey": "case", "status": "new",
               **{k: v for k, v in case.items() if v is not None and k not in ("case_id", "created_ms")},
               "created_ms": EntityProperty(case["created_ms"], EdmType.INT64)}
        try:
            self._tables[TIMELINES].write(lambda client: client.create_entity(row))
        except ResourceExistsError:
            stored = self.case(case["case_id"]) or {}
            if stored.get("contact") != case.get("contact"):  # rule 4 of cases.claimed_case: never re-bound
                logger.warning("case %s is already bound to another contact; the new claim (%s) is ignored",
                               case["case_id"], case.get("source"), extra={"case_id": case["case_id"]})
                return False
            return stored.get("status") == "new"
        if ticket_key(case.get("ticket")):
            self._upsert(CASES, {"PartitionKey": ticket_key(case.get("ticket")), "RowKey": case["case_id"],
                                 "created_ms": EntityProperty(case["created_ms"], EdmType.INT64)})
        if case.get("contact"):
            self._upsert(CASES, {
                "PartitionKey": contact_key(case["contact"]),
                "RowKey": event_row_key(case["created_ms"], case["case_id"]),
                "case_id": case["case_id"], "ticket": case.get("ticket", ""), "title": case.get("title", ""),
                "created_ms": EntityProperty(case["created_ms"], EdmType.INT64)})
        return True

    def _upsert(self, table: str, row: dict[str, Any], mode: UpdateMode = UpdateMode.MERGE) -> None:
        self._tables[table].write(lambda client: client.upsert_entity(row, mode=mode))

    def mark(self, case_id: str, status: str, **fields: Any) -> None:
        """Set a case's status (queued, assembled, skipped) and any extra fields."""
        self._upsert(TIMELINES, {"PartitionKey": case_id, "RowKey": "case", "status": status, **fields})

    def case(self, case_id: str) -> dict[str, Any] | None:
        """The case row, or None."""
        return self._tables[TIMELINES].get(case_id, "case")

    def stored_case(self, case_id: str) -> StoredCase | None:
        """The case as it was stored, with its status, or None."""
        row = self.case(case_id)
        if row is None:
            return None
        case = {"case_id": case_id, **{k: row[k] for k in CASE_FIELDS if row.get(k) not in (None, "")}}
        return {"case": case, "status": row["status"]}  # type: ignore[typeddict-item]

    def cases_with_ticket(self, ticket: str) -> list[str]:
        """The ids of the cases stored with this ticket number (any case), oldest first."""
        key = ticket_key(ticket)
        rows = self._tables[CASES].partition(key) if key else []
        return [row["RowKey"] for row in sorted(rows, key=lambda row: row["created_ms"])]

    def cases_of(self, contact: str) -> list[dict[str, Any]]:
        """A contact's cases, oldest first."""
        return self._tables[CASES].partition(contact_key(contact))

    def assembled(self) -> list[str]:
        """The ids of every case with a stored timeline (reads only the keys)."""
        try:
            rows = self._tables[TIMELINES].client.query_entities("RowKey eq 'timeline'", select=["PartitionKey"])
            return sorted(row["PartitionKey"] for row in rows)
        except ResourceNotFoundError:
            return []

    def forget_contact(self, contact: str) -> int:
        """Delete a contact's case rows and timelines (erasure); returns how many cases."""
        cases = self.cases_of(contact)
        for case in cases:
            for row_key in ("case", "timeline"):
                self._tables[TIMELINES].delete(case["case_id"], row_key)
            if ticket_key(case.get("ticket")):
                self._tables[CASES].delete(ticket_key(case.get("ticket")), case["case_id"])
            self._tables[CASES].delete(case["PartitionKey"], case["RowKey"])
        return len(cases)

    # --- timelines --------------------------------------------------------------------------------

    def timeline(self, case_id: str) -> dict[str, Any] | None:
        """The stored timeline row (document parsed), or None."""
        row = self._tables[TIMELINES].get(case_id, "timeline")
        if row is not None:
            row["document"] = json.loads(row["document"])
        return row

    def save_timeline(self, case_id: str, document: dict[str, Any], version: int, digest: str,
                      note_id: str | None) -> None:
        """Replace the case's timeline (one row per case: re-assembly overwrites it)."""
        row = {"PartitionKey": case_id, "RowKey": "timeline", "document": json.dumps(document, ensure_ascii=False),
               "version": version, "digest": digest}
        if note_id:
            row["note_id"] = note_id
        self._upsert(TIMELINES, row, UpdateMode.REPLACE)

    # --- the poller's watermark -------------------------------------------------------------------

    def watermark(self, name: str = "incidents") -> int | None:
        """The poller's watermark (epoch ms of the newest stored case), or None before the first run."""
        row = self._tables[STATE].get("poller", name)
        return None if row is None else row["watermark_ms"]

    def set_watermark(self, ms: int, name: str = "incidents") -> None:
        """Move the watermark (only ever called after the cases up to `ms` are stored)."""
        self._upsert(STATE, {"PartitionKey": "poller", "RowKey": name,
                             "watermark_ms": EntityProperty(ms, EdmType.INT64)})
