"""What answered the cases (issue 29): the knowledge articles agents attached to them, the article
versions' columns, and the suggestions' state (table `answers`).

| PartitionKey | RowKey | holds |
|---|---|---|
| `k_{day of the case}` | `{case id}_{attachment id}` | an article version attached to the case: its id, when |
| `v` | `{article id}` | an article version: public number, title, keywords, `modified_ms`, published |
| `s` | `{suggestion id}` | a suggestion: term, article, when first made, the article's change then, done |

Attachments are read from Dataverse incrementally (dci/dataverse/knowledge.py) and written by an
idempotent upsert each; a range reads the `k_` partitions of its days. No contact, visitor or
search of a visitor is stored here; the suggestion's term is an aggregate's (the insights').
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import EdmType, EntityProperty, UpdateMode

from dci.storage.tables import AutoTable

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient

    from dci.dataverse.articles import Article, Attachment

ANSWERS = "answers"
VERSIONS, STATES = "v", "s"


def _ms(value: int) -> EntityProperty:
    return EntityProperty(value, EdmType.INT64)


class AnswerStore:
    """The `answers` table."""

    def __init__(self, service: TableServiceClient) -> None:
        self._table = AutoTable(service, ANSWERS)

    def attach(self, day: str, attachment: Attachment) -> None:
        """Keep one attachment of an article to a case created on `day` (again: the same row)."""
        row = {"PartitionKey": f"k_{day}", "RowKey": f"{attachment.case_id}_{attachment.attachment_id}",
               "case_id": attachment.case_id, "article_id": attachment.article_id,
               "attached_ms": _ms(attachment.attached_ms)}
        self._table.write(lambda client: client.upsert_entity(row, mode=UpdateMode.REPLACE))

    def attached(self, first: str, last: str) -> dict[str, set[str]]:
        """Of the cases created in `first`..`last`: case id -> the article versions attached to it
        (one range query)."""
        out: dict[str, set[str]] = {}
        try:
            rows = self._table.client.query_entities("PartitionKey ge @lo and PartitionKey le @hi", parameters={
                "lo": f"k_{first}", "hi": f"k_{last}"}, select=["case_id", "article_id"])
            for row in rows:
                out.setdefault(row["case_id"], set()).add(row["article_id"])
        except ResourceNotFoundError:
            pass
        return out

    def forget_case(self, case_id: str, day: str) -> int:
        """Delete what was kept of the articles attached to a case (an erasure); returns how many."""
        try:
            rows = [row["RowKey"] for row in self._table.client.query_entities(
                "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi", select=["RowKey"],
                parameters={"pk": f"k_{day}", "lo": f"{case_id}_", "hi": f"{case_id}`"})]  # ("`" follows "_")
        except ResourceNotFoundError:
            return 0
        for key in rows:
            self._table.delete(f"k_{day}", key)
        return len(rows)

    def forget_before(self, day: str, before_ms: int) -> int:
        """Retention: delete the attachments kept of cases created before `day` (with the case facts
        they answer), and the suggestions on record first made before `before_ms` whose article did
        not change since then (one still found is put on record again). Returns how many rows."""
        try:
            rows = list(self._table.client.query_entities(
                "PartitionKey ge @lo and PartitionKey lt @hi", parameters={"lo": "k_", "hi": f"k_{day}"},
                select=["PartitionKey", "RowKey"]))
        except ResourceNotFoundError:
            return 0
        rows += [state for state in self.suggestion_states().values() if state["first_ms"] < before_ms
                 and (state.get("changed_ms") is None or state["changed_ms"] < before_ms)]
        self._table.submit(("delete", {"PartitionKey": r["PartitionKey"], "RowKey": r["RowKey"]}) for r in rows)
        return len(rows)

    def forget_versions(self, version_ids: Iterable[str]) -> None:
        """Delete what was kept of these article versions (the demo's, when it is removed)."""
        for version in version_ids:
            self._table.delete(VERSIONS, version)

    def forget_suggestions(self, suggestion_ids: Iterable[str]) -> None:
        """Take these suggestions off the record."""
        for suggestion in suggestion_ids:
            self._table.delete(STATES, suggestion)

    def put_versions(self, versions: Iterable[Article]) -> None:
        """Keep article versions' columns (replacing what was kept of each)."""
        for version in versions:
            row = {"PartitionKey": VERSIONS, "RowKey": version.article_id, "number": version.number,
                   "title": version.title, "keywords": version.keywords, "modified_ms": _ms(version.modified_ms),
                   "published": version.published}
            self._table.write(lambda client, row=row: client.upsert_entity(row, mode=UpdateMode.REPLACE))

    def versions(self) -> dict[str, dict[str, Any]]:
        """Every kept article version by id."""
        return {row["RowKey"]: row for row in self._table.partition(VERSIONS)}

    def suggestion_states(self) -> dict[str, dict[str, Any]]:
        """Every suggestion's state by id."""
        return {row["RowKey"]: row for row in self._table.partition(STATES)}

    def note_suggestion(self, suggestion: Mapping[str, Any], modified_ms: int | None,
                        now_ms: int) -> dict[str, Any]:
        """A suggestion made for the first time: when, and the article's last change then (kept as
        first written should another writer have been first). Returns its state."""
        row = {"PartitionKey": STATES, "RowKey": suggestion["id"], "term": suggestion["term"],
               "article": suggestion["article"], "because": suggestion.get("because") or "zero results",
               "first_ms": _ms(now_ms),
               **({"modified_then_ms": _ms(modified_ms)} if modified_ms is not None else {})}
        with contextlib.suppress(ResourceExistsError):  # (made before: its first moment stays)
            self._table.write(lambda client: client.create_entity(row))
        return self._table.get(STATES, suggestion["id"]) or {**row}

    def note_change(self, suggestion_id: str, changed_ms: int) -> None:
        """The moment the suggestion's article changed for it, fixed once seen."""
        row = {"PartitionKey": STATES, "RowKey": suggestion_id, "changed_ms": _ms(changed_ms)}
        self._table.write(lambda client: client.upsert_entity(row, mode=UpdateMode.MERGE))

    def mark_done(self, suggestion_id: str, now_ms: int) -> bool:
        """`python -m dci suggestions done ID`: the article was changed for it now. False when unknown."""
        if not self._exists(suggestion_id):
            return False
        row = {"PartitionKey": STATES, "RowKey": suggestion_id, "done_ms": _ms(now_ms)}
        self._table.write(lambda client: client.upsert_entity(row, mode=UpdateMode.MERGE))
        return True

    def _exists(self, suggestion_id: str) -> bool:
        return self._table.get(STATES, suggestion_id) is not None
