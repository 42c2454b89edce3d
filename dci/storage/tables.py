"""One table in Azure Table storage, as every store uses it: created on first write, read as plain
values, written in entity-group transactions that keep to the platform's rules."""

from __future__ import annotations

import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import EntityProperty, TableTransactionError

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableServiceClient

logger = logging.getLogger(__name__)

MAX_TRANSACTION = 100  # entity-group transaction limit (the SDK does not enforce it)
T = TypeVar("T")


LIST_COLUMN_CHARS = 30_000  # what one list column holds: a string property takes 32,768 UTF-16 units


def list_columns(name: str, values: Sequence[str], max_columns: int) -> dict[str, str]:
    """`values` (ASCII ids of one length, no commas; the latest last) as comma-joined columns
    `{name}_0`, `{name}_1`, … of at most LIST_COLUMN_CHARS each: however many there are, a row
    stays within Table storage's limits, keeping the latest `max_columns` columns' worth."""
    if not values:
        return {}
    per_column = LIST_COLUMN_CHARS // (len(values[0]) + 1)
    kept = list(values)[-per_column * max_columns:]
    return {f"{name}_{n // per_column}": ",".join(kept[n:n + per_column]) for n in range(0, len(kept), per_column)}


def listed(row: Mapping[str, Any], name: str) -> list[str]:
    """The values `list_columns` wrote under `name` (and a JSON list in `name` itself, as earlier
    builds wrote it)."""
    columns = sorted((int(key.rpartition("_")[2]), value) for key, value in row.items()
                     if key.startswith(f"{name}_") and key.rpartition("_")[2].isdigit())
    values = [value for _, text in columns for value in text.split(",") if value]
    return values + (json.loads(row[name]) if isinstance(row.get(name), str) else [])


def plain(entity: dict[str, Any]) -> dict[str, Any]:
    """A stored row as plain values (Int64 columns come back wrapped)."""
    return {key: value.value if isinstance(value, EntityProperty) else value for key, value in entity.items()}


def _table_missing(error: Exception) -> bool:
    return "TableNotFound" in f"{getattr(error, 'error_code', '')} {error}"


class AutoTable:
    """One table: writes create it the first time it is missing; reads of a missing table find nothing."""

    def __init__(self, service: TableServiceClient, name: str) -> None:
        self._service = service
        self.name = name

    @property
    def client(self) -> TableClient:
        return self._service.get_table_client(self.name)

    def write(self, operation: Callable[[TableClient], T]) -> T:
        """Run a write; on a missing table, create it and run the write once more."""
        try:
            return operation(self.client)
        except (ResourceNotFoundError, TableTransactionError) as error:
            if not _table_missing(error):
                raise
        with contextlib.suppress(ResourceExistsError):  # created meanwhile by another invocation
            self._service.create_table(self.name)
            logger.info("created table %s", self.name)
        return operation(self.client)

    def submit(self, operations: Iterable[tuple[Any, ...]]) -> int:
        """Run `("upsert" | "delete", entity, …)` operations as entity-group transactions: grouped by
        partition, at most 100 each (the SDK splits neither). Returns how many transactions."""
        by_partition: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        for operation in operations:
            by_partition[operation[1]["PartitionKey"]].append(operation)
        transactions = 0
        for members in by_partition.values():
            for start in range(0, len(members), MAX_TRANSACTION):
                chunk = members[start:start + MAX_TRANSACTION]
                self.write(lambda client, ops=chunk: client.submit_transaction(ops))
                transactions += 1
        return transactions

    def get(self, partition: str, row: str) -> dict[str, Any] | None:
        """One row as plain values, or None."""
        try:
            return plain(self.client.get_entity(partition, row))
        except ResourceNotFoundError:
            return None

    def partition(self, partition: str) -> list[dict[str, Any]]:
        """Every row of a partition, as plain values."""
        try:
            rows = self.client.query_entities("PartitionKey eq @pk", parameters={"pk": partition})
            return [plain(row) for row in rows]
        except ResourceNotFoundError:
            return []

    def delete(self, partition: str, row: str) -> None:
        """Delete a row; a missing row or table is not an error."""
        with contextlib.suppress(ResourceNotFoundError):
            self.client.delete_entity(partition, row)
