"""Cases and their timelines in Table storage.

| table | PartitionKey | RowKey | holds |
|---|---|---|---|
| `timelines` | `{case id}` | `case` | the case: contact, created, ticket, title, source, status |
| `timelines` | `{case id}` | `timeline` | the timeline: version, digest, note id, `chunks`, its JSON's first piece |
| `timelines` | `{case id}` | `timeline-{version}-{n}` | piece n of a long timeline's JSON (see `save_timeline`) |
| `cases` | `c_{contact}` | `{created}_{case id}` | a contact's cases, for export and late-event re-assembly |
| `cases` | `t_{TICKET}` | `{case id}` | the cases a ticket number names (usually one), to open a case by it |
| `state` | `{name}` | `{key}` | the poller's watermark |
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import EdmType, EntityProperty, UpdateMode

from dci.storage.keys import STATE_TABLE, contact_key, event_row_key
from dci.storage.tables import MAX_TRANSACTION, AutoTable, plain

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient

    from dci.cases import Case

logger = logging.getLogger(__name__)

TIMELINES, CASES, STATE = "timelines", "cases", STATE_TABLE
CASE_FIELDS = ("created_ms", "ticket", "title", "contact", "source")


# A timeline's JSON is cut into pieces: a string property holds 32,768 UTF-16 code units, an
# entity 1 MiB, an entity-group transaction 100 entities and a 4 MiB request.
TIMELINE_ROW = "timeline"  # the head; the other pieces follow in `timeline-{version:06}-{n:04}`
PIECE_UNITS = 32_000  # UTF-16 code units of one piece
TRANSACTION_BYTES = 3_500_000  # what one transaction's entities may take in its request (JSON, \u-escaped)
_ASTRAL = re.compile("[\U00010000-\U0010FFFF]")  # two UTF-16 code units each


def pieces(text: str, units: int = PIECE_UNITS) -> list[str]:
    """`text` cut into pieces of at most `units` UTF-16 code units, never inside a surrogate pair."""
    out, start = [], 0
    while start < len(text):
        end = min(len(text), start + units)
        while (excess := end - start + len(_ASTRAL.findall(text, start, end)) - units) > 0:
            end -= (excess + 1) // 2  # (a code point is one or two units: this never cuts too far)
        out.append(text[start:end])
        start = end
    return out


def piece_key(version: int, number: int) -> str:
    """RowKey of piece `number` (from 1) of a timeline version: every version writes its own rows."""
    return f"{TIMELINE_ROW}-{version:06}-{number:04}"


def transactions(operations: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """`operations` of one partition, in order, grouped into entity-group transactions: ≤ 100 each,
    and ≤ TRANSACTION_BYTES of entity JSON as the SDK sends it."""
    groups: list[list[tuple[Any, ...]]] = [[]]
    size = 0
    for operation in operations:
        cost = len(json.dumps(operation[1], default=str)) + 512  # (the batch's per-operation headers)
        if groups[-1] and (len(groups[-1]) == MAX_TRANSACTION or size + cost > TRANSACTION_BYTES):
            groups.append([])
            size = 0
        groups[-1].append(operation)
        size += cost
    return [group for group in groups if group]


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

    def visits_unsure(self, case_id: str) -> list[str]:
        """The Portal visits an assembly set out to write and did not see through (dci/dataverse/wall.py)."""
        return json.loads((self.case(case_id) or {}).get("visits_unsure") or "[]")

    def note_visits_unsure(self, case_id: str, visits: list[str]) -> None:
        """Before writing visits: which may exist once it is done (at most MAX_VISITS twice over).
        The assembly's `mark` clears it, once their record is saved with the timeline."""
        self._upsert(TIMELINES, {"PartitionKey": case_id, "RowKey": "case", "visits_unsure": json.dumps(visits)})

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
            self._tables[TIMELINES].delete(case["case_id"], "case")
            self._tables[TIMELINES].submit(("delete", {"PartitionKey": case["case_id"], "RowKey": key})
                                           for key in self._timeline_keys(case["case_id"]))  # every piece
            if ticket_key(case.get("ticket")):
                self._tables[CASES].delete(ticket_key(case.get("ticket")), case["case_id"])
            self._tables[CASES].delete(case["PartitionKey"], case["RowKey"])
        return len(cases)

    # --- timelines --------------------------------------------------------------------------------

    def timeline(self, case_id: str) -> dict[str, Any] | None:
        """The stored timeline (`document` parsed, `version`, `digest`, `note_id`, `visits`: the
        portal visits on the Dynamics timeline, id -> fingerprint, dci/dataverse/wall.py), or None: one range
        read of its rows. A row written before pieces existed (no `chunks`) reads the same."""
        for _ in range(2):  # (a save between a read's pages may remove the pieces it was reading)
            rows = {row["RowKey"]: row for row in self._timeline_rows(case_id)}
            head = rows.get(TIMELINE_ROW)
            if head is None:
                return None
            keys = [piece_key(head["version"], n) for n in range(1, (head.pop("chunks", None) or 0) + 1)]
            if all(key in rows for key in keys):
                head["document"] = json.loads("".join([head["document"], *(rows[key]["document"] for key in keys)]))
                head["visits"] = json.loads(head.get("visits") or "{}")
                return head
        raise LookupError(f"the stored timeline of case {case_id} misses pieces")

    def save_timeline(self, case_id: str, document: dict[str, Any], version: int, digest: str,
                      note_id: str | None, visits: Mapping[str, str] | None = None) -> None:
        """Replace the case's timeline. Its JSON is cut into `pieces`: the first in the head row with
        version, digest and note id, the rest in rows of this version; written in as few transactions
        as the platform allows, the head last (readers see the old version or the new, whole), then
        the rows of any other version removed. A short timeline is one row, one transaction."""
        first, *rest = pieces(json.dumps(document, ensure_ascii=False))
        head = {"PartitionKey": case_id, "RowKey": TIMELINE_ROW, "document": first, "version": version,
                "digest": digest, "chunks": len(rest), **({"note_id": note_id} if note_id else {}),
                **({"visits": json.dumps(dict(visits))} if visits else {})}  # (at most MAX_VISITS: 600 characters)
        rows = [{"PartitionKey": case_id, "RowKey": piece_key(version, n), "document": piece}
                for n, piece in enumerate(rest, 1)]
        kept = {row["RowKey"] for row in rows} | {TIMELINE_ROW}
        stale = [key for key in self._timeline_keys(case_id) if key not in kept]
        replace = {"mode": UpdateMode.REPLACE}
        operations = [("upsert", row, replace) for row in [*rows, head]]
        operations += [("delete", {"PartitionKey": case_id, "RowKey": key}) for key in stale]
        for group in transactions(operations):
            self._tables[TIMELINES].submit(group)

    def _timeline_rows(self, case_id: str, select: list[str] | None = None) -> list[dict[str, Any]]:
        query = "PartitionKey eq @pk and RowKey ge @first and RowKey lt @after"
        bounds = {"pk": case_id, "first": TIMELINE_ROW, "after": TIMELINE_ROW + "."}  # ("." follows "-")
        try:
            return [plain(row) for row in self._tables[TIMELINES].client.query_entities(
                query, parameters=bounds, select=select)]
        except ResourceNotFoundError:
            return []

    def _timeline_keys(self, case_id: str) -> list[str]:
        return [row["RowKey"] for row in self._timeline_rows(case_id, ["RowKey"])]

    # --- the poller's watermark -------------------------------------------------------------------

    def watermark(self, name: str = "incidents") -> int | None:
        """The poller's watermark (epoch ms of the newest stored case), or None before the first run."""
        row = self._tables[STATE].get("poller", name)
        return None if row is None else row["watermark_ms"]

    def set_watermark(self, ms: int, name: str = "incidents") -> None:
        """Move the watermark (only ever called after the cases up to `ms` are stored)."""
        self._upsert(STATE, {"PartitionKey": "poller", "RowKey": name,
                             "watermark_ms": EntityProperty(ms, EdmType.INT64)})
