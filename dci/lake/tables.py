"""The Delta tables: the only code that talks to delta-rs (`deltalake`) and Arrow (`arro3`).

Every write is a merge on the row's key that changes a row only when a value differs: running an
export twice, or again after a crash before its outbox entries were cleared, adds nothing and
commits nothing. Two writers at once are serialised by Delta's optimistic concurrency: the one that
loses re-reads the table and merges again. The protocol stays at reader 1 / writer 2 with no table
features (no deletion vectors), which Customer Insights – Data, Fabric and Spark all read.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from arro3.core import Array, DataType, Field, Schema, Table
from azure.core.exceptions import AzureError
from deltalake import DeltaTable, QueryBuilder
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from dci.clock import ms_of
from dci.lake.rows import CASES, CASES_KEY, INTERACTIONS, INTERACTIONS_KEY, INTERACTIONS_PARTITION

if TYPE_CHECKING:
    from dci.lake.target import LakeLocation

logger = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMAS = {"interactions": INTERACTIONS, "cases": CASES}
# Column statistics go into the transaction log, which a vacuum does not clean and which keeps a
# file's add action for 30 days: collected only for columns that name nobody.
STATS_COLUMNS = {"interactions": "timestamp,type", "cases": "created"}
KEYS = {"interactions": INTERACTIONS_KEY, "cases": CASES_KEY}
PARTITIONS = {"interactions": [INTERACTIONS_PARTITION], "cases": []}
# What a lake that cannot be reached, or refuses the identity, raises (delta-rs's object store, the Blob SDK).
LAKE_ERRORS = (DeltaError, OSError, AzureError)
COMMIT_ATTEMPTS = 5
MERGE_CHUNK = 50_000  # rows per merge: bounds the memory of one commit
EPOCH = date(1970, 1, 1)
_TYPES: dict[str, Callable[[], DataType]] = {
    "string": DataType.string, "int64": DataType.int64, "float64": DataType.float64, "bool": DataType.bool,
    "timestamp": lambda: DataType.timestamp("us", tz="UTC"), "date": DataType.date32,
}


_DELTA_TYPES = {"string": "string", "int64": "long", "float64": "double", "bool": "boolean",
                "timestamp": "timestamp", "date": "date"}


def schema(name: str, only: Sequence[str] | None = None) -> Schema:
    """The Arrow schema of a lake table (or of some of its columns)."""
    return Schema([Field(column, _TYPES[kind](), nullable=nullable) for column, kind, nullable in SCHEMAS[name]
                   if only is None or column in only])


def arrow(name: str, rows: Sequence[Mapping[str, Any]], only: Sequence[str] | None = None) -> Table:
    """Rows (dicts; timestamps as epoch ms, dates as ISO days) as an Arrow table of the lake's schema
    (or of the columns in `only`).

    arro3 builds strings and numbers from Python values; timestamps and dates are built as integers
    and cast (its constructor takes neither directly)."""
    arrays = []
    for column, kind, _ in SCHEMAS[name]:
        if only is not None and column not in only:
            continue
        values = [row.get(column) for row in rows]
        if kind == "timestamp":
            arrays.append(Array([None if v is None else v * 1000 for v in values], DataType.int64())
                          .cast(_TYPES[kind]()))
        elif kind == "date":
            arrays.append(Array([None if v is None else (date.fromisoformat(v) - EPOCH).days for v in values],
                                DataType.int32()).cast(DataType.date32()))
        else:
            arrays.append(Array(values, _TYPES[kind]()))
    return Table.from_arrays(arrays, schema=schema(name, only))


class Lake:
    """The `interactions` and `cases` Delta tables under one root."""

    def __init__(self, where: LakeLocation) -> None:
        self.where = where
        self._options: dict[str, str] | None = None
        self._options_at = 0.0

    # --- plumbing ---------------------------------------------------------------------------------

    def options(self) -> dict[str, str]:
        """Storage options, a token renewed every 30 minutes (they last an hour or more)."""
        if self._options is None or time.monotonic() - self._options_at > 1800:
            self._options, self._options_at = self.where.storage_options(), time.monotonic()
        return self._options

    def table(self, name: str) -> DeltaTable | None:
        """The table at its latest version, or None before the first export created it."""
        try:
            return DeltaTable(self.where.table_uri(name), storage_options=self.options())
        except TableNotFoundError:
            return None
        except OSError as error:
            if "ContainerNotFound" in str(error):
                return None
            raise

    def ensure(self, name: str) -> DeltaTable:
        """The table, created (with its container) when missing."""
        table = self.table(name)
        if table is None:
            self._ensure_container()
            with contextlib.suppress(CommitFailedError):  # created meanwhile by another export
                DeltaTable.create(self.where.table_uri(name), schema(name), mode="ignore",
                                  partition_by=PARTITIONS[name] or None, storage_options=self.options(),
                                  name=name, description=f"Portal Insights for Dataverse: {name}",
                                  configuration={"delta.dataSkippingStatsColumns": STATS_COLUMNS[name]})
            logger.info("lake: created table %s", name)
            table = self.table(name)
            assert table is not None
        return self._with_new_columns(name, table)

    def _with_new_columns(self, name: str, table: DeltaTable) -> DeltaTable:
        """The table with the columns added to its schema since an earlier build created it (nullable:
        its older rows gain their values when next merged). No table feature is needed for this."""
        from deltalake.schema import Field as DeltaField
        from deltalake.schema import PrimitiveType

        have = {field.name for field in table.schema().fields}
        missing = [DeltaField(column, PrimitiveType(_DELTA_TYPES[kind]), nullable=True)
                   for column, kind, _ in SCHEMAS[name] if column not in have]
        if not missing:
            return table
        with contextlib.suppress(CommitFailedError):  # added meanwhile by another export
            table.alter.add_columns(missing)
            logger.info("lake: added %d columns to %s", len(missing), name)
        fresh = self.table(name)
        assert fresh is not None
        return fresh

    def _ensure_container(self) -> None:
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import ContainerClient

        client = ContainerClient(self.where.account_url, self.where.container, credential=self.where.credential())
        with contextlib.suppress(ResourceExistsError):
            client.create_container()
            logger.info("lake: created container %s", self.where.container)

    def _committed(self, name: str, write: Callable[[DeltaTable], T], create: bool = True) -> T | None:
        """`write(table)`, re-read and run again when another writer committed first. A missing
        table is created (`create`), or there is nothing to write to: None."""
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            table = self.ensure(name) if create else self.table(name)
            if table is None:
                return None
            try:
                return write(table)
            except CommitFailedError:
                if attempt == COMMIT_ATTEMPTS:
                    raise
                logger.warning("lake: %s changed under this write; trying again (%d)", name, attempt)
                time.sleep(0.2 * attempt)
        raise AssertionError("unreachable")

    # --- writing ----------------------------------------------------------------------------------

    @staticmethod
    def _on(name: str, rows: Sequence[Mapping[str, Any]]) -> str:
        """The merge condition: the key, and only the source's days (the files of others are not read)."""
        on = " AND ".join(f"t.{c} = s.{c}" for c in KEYS[name])
        if PARTITIONS[name]:
            days = sorted({row[INTERACTIONS_PARTITION] for row in rows})
            on += f" AND t.{INTERACTIONS_PARTITION} IN (" + ", ".join(f"DATE '{day}'" for day in days) + ")"
        return on

    def merge(self, name: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        """Insert new rows, update changed ones (matched on the table's key); returns the counts.
        Source rows that repeat a key are dropped but the first: a MERGE refuses two source rows
        for one target row, and one bad input must not stop the export."""
        totals = {"inserted": 0, "updated": 0, "files_added": 0, "files_removed": 0}
        key, columns = KEYS[name], [column for column, _, _ in SCHEMAS[name]]
        rows = unique(rows, key)
        changed = " OR ".join(f"(t.{c} IS DISTINCT FROM s.{c})" for c in columns if c not in key)
        on = self._on(name, rows)
        for start in range(0, len(rows), MERGE_CHUNK):
            source = arrow(name, rows[start:start + MERGE_CHUNK])

            def write(table: DeltaTable, source: Table = source) -> dict[str, Any]:
                return (table.merge(source, on, source_alias="s", target_alias="t")
                        .when_matched_update_all(predicate=changed).when_not_matched_insert_all().execute())

            metrics = self._committed(name, write)
            assert metrics is not None  # (created when missing)
            totals["inserted"] += metrics["num_target_rows_inserted"]
            totals["updated"] += metrics["num_target_rows_updated"]
            totals["files_added"] += metrics["num_target_files_added"]
            totals["files_removed"] += metrics["num_target_files_removed"]
        return totals

    def delete(self, name: str, predicate: str) -> int:
        """Delete the rows a SQL predicate matches (their files are rewritten; no deletion vectors).
        The predicate is kept in the transaction log: only for predicates that name nobody."""
        metrics = self._committed(name, lambda table: table.delete(predicate), create=False)
        return 0 if metrics is None else int(metrics["num_deleted_rows"])

    def delete_where(self, name: str, where: str) -> int:
        """Delete the rows a SQL condition selects without writing the condition down: their keys are
        read, then deleted by a merge on the keys, whose log entry holds no value of them."""
        if self.table(name) is None:
            return 0
        columns = (*KEYS[name], *PARTITIONS[name])  # (the partition column prunes the merge)
        keys = plain(self.query(f"SELECT {', '.join(columns)} FROM {name} WHERE {where}"))
        if not keys:
            return 0
        source, on = arrow(name, keys, columns), self._on(name, keys)
        metrics = self._committed(name, lambda table: table.merge(source, on, source_alias="s", target_alias="t")
                                  .when_matched_delete().execute(), create=False)
        return 0 if metrics is None else int(metrics["num_target_rows_deleted"])

    def compact(self, name: str) -> dict[str, Any]:
        """Rewrite each partition's small files into few large ones."""
        return self._committed(name, lambda table: table.optimize.compact(), create=False) or {}

    def vacuum(self, name: str, retention_hours: int) -> int:
        """Remove the files no version younger than `retention_hours` uses; returns how many."""
        table = self.table(name)
        if table is None:
            return 0
        return len(table.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False))

    # --- reading ----------------------------------------------------------------------------------

    def query(self, sql: str) -> Table:
        """Run SQL over the tables (named `interactions` and `cases`) with delta-rs's engine."""
        builder = QueryBuilder()
        for name in SCHEMAS:
            table = self.table(name)
            if table is not None:
                builder.register(name, table)
        return builder.execute(sql).read_all()

    def rows(self, name: str, where: str | None = None) -> list[dict[str, Any]]:
        """A table's rows as plain values (timestamps as epoch ms, dates as ISO days)."""
        if self.table(name) is None:
            return []
        return plain(self.query(f"SELECT * FROM {name}" + (f" WHERE {where}" if where else "")))


def unique(rows: Sequence[Mapping[str, Any]], key: Sequence[str]) -> list[Mapping[str, Any]]:
    """`rows` with each key once: the first row of it."""
    first: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for row in rows:
        first.setdefault(tuple(row[column] for column in key), row)
    return list(first.values())


def plain(result: Table) -> list[dict[str, Any]]:
    """An Arrow table's rows as plain values (timestamps as epoch ms, dates as ISO days)."""
    columns = {column: result.column(column).to_pylist() for column in result.schema.names}
    return [{column: _plain(values[index]) for column, values in columns.items()} for index in range(result.num_rows)]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return ms_of(value)
    if isinstance(value, date):
        return value.isoformat()
    return value
