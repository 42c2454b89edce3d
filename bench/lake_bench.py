"""The lake export on Azurite's blob service: its throughput, what one outbox entry costs the linker,
the merge on keys against an append (why the export merges), files per day before and after
compaction, the "top searches before cases over a year" query on a year of synthetic rows, and the
package size and import time of delta-rs.

Run: `make bench` (or `.venv/bin/python bench/lake_bench.py`). Starts its own Azurite.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results import save  # noqa: E402  (bench/ is the script's own folder)

from tests import azurite  # noqa: E402
from tests.factories import encoded, queued_batch, queued_event  # noqa: E402

DAY_MS = 86_400_000
NOW_MS = int(time.time() * 1000)
VISITORS, EVENTS_PER_VISITOR = 1000, 10
YEAR_EVENTS_PER_DAY, YEAR_CASES_PER_DAY = 4000, 40
TERMS = [f"term {n}" for n in range(400)]


def settings_for(connection: str, url: str) -> object:
    os.environ.update(AzureWebJobsStorage=connection, PORTAL_ISSUERS="portal.example.com", LAKE_URL=url)
    from dci.settings import get_settings

    get_settings.cache_clear()
    return get_settings()


def stores_for(connection: str) -> object:
    from azure.data.tables import TableServiceClient

    from dci.storage import Stores
    from dci.storage.cases import CaseStore
    from dci.storage.insights import InsightStore
    from dci.storage.interactions import InteractionStore
    from dci.storage.outbox import LakeOutbox

    class Dropped:
        def send(self, text: str, delay_seconds: int = 0) -> None: ...

    tables = TableServiceClient.from_connection_string(connection)
    return Stores(InteractionStore(tables), CaseStore(tables), InsightStore(tables, 7), Dropped(),  # type: ignore[arg-type]
                  LakeOutbox(tables))


def throughput(connection: str) -> dict:
    """Link VISITORS × EVENTS_PER_VISITOR events with the outbox, then time one export of them all."""
    from dci import linker
    from dci.lake import export

    settings = settings_for(connection, f"az://lake/bench{uuid.uuid4().hex[:8]}")
    stores = stores_for(connection)
    without = replace(stores, outbox=None)
    messages = [encoded(queued_batch([queued_event(NOW_MS - 3_600_000 + i * 1000, "search", query="vpn", results=i)
                                      for i in range(EVENTS_PER_VISITOR)])) for _ in range(VISITORS)]
    linker.handle(messages[0], settings, stores)  # tables created outside the timings
    timings = {}
    for name, chosen in (("without_outbox", without), ("with_outbox", stores)):
        started = time.perf_counter()
        for body in messages[1:201]:
            linker.handle(body, settings, chosen)
        timings[name] = (time.perf_counter() - started) / 200 * 1000
    for body in messages[201:]:
        linker.handle(body, settings, stores)
    started = time.perf_counter()
    first = export.run(settings, stores)
    seconds = time.perf_counter() - started
    export.backfill(stores)
    started = time.perf_counter()
    again = export.run(settings, stores)  # every visitor again: nothing changes
    unchanged_seconds = time.perf_counter() - started
    return {"visitors": VISITORS, "events": first["interactions"], "export_seconds": round(seconds, 2),
            "events_per_second": round(first["interactions"] / seconds),
            "reexport_unchanged_seconds": round(unchanged_seconds, 2), "reexport_changed_rows": again["updated"],
            "linker_ms_per_message": {k: round(v, 2) for k, v in timings.items()}}


def synthetic_year(days: int) -> tuple[list[dict], list[dict]]:
    """A year of interactions (searches, article views, some before cases) and cases, deterministic."""
    import random

    rng = random.Random(7)
    rows, cases = [], []
    first_day = NOW_MS - days * DAY_MS
    for day in range(days):
        base = first_day + day * DAY_MS
        date = time.strftime("%Y-%m-%d", time.gmtime(base / 1000))
        for n in range(YEAR_EVENTS_PER_DAY):
            case = f"case-{day}-{n % YEAR_CASES_PER_DAY}" if n % 10 == 0 else None
            kind = "search" if n % 3 == 0 else "page_view"
            rows.append({"event_id": f"{day}-{n}", "date": date, "timestamp": base + n * 20_000, "type": kind,
                         "contact_id": None, "visitor": f"{rng.getrandbits(64):032x}", "session": f"{day}-{n // 8}",
                         "search_query": TERMS[int(rng.paretovariate(1.2)) % len(TERMS)] if kind == "search" else None,
                         "results": rng.choice([0, 0, 2, 5, 9]) if kind == "search" else None,
                         "case_id": case})
        cases += [{"case_id": f"case-{day}-{c}", "created": base + 80_000_000, "searches": 2, "zero_result_searches": 1,
                   "articles_read": 1, "sessions": 1, "case_form_seen": True} for c in range(YEAR_CASES_PER_DAY)]
    return rows, cases


def year(connection: str) -> dict:
    """A year written day by day, the top-searches-before-cases query, and one visitor's merge into it."""
    from deltalake import write_deltalake

    from dci.lake.export import lake_of
    from dci.lake.tables import PARTITIONS, arrow, plain

    settings = settings_for(connection, f"az://lake/year{uuid.uuid4().hex[:8]}")
    lake = lake_of(settings.lake)
    rows, cases = synthetic_year(365)
    started = time.perf_counter()
    for name, data in (("interactions", rows), ("cases", cases)):
        lake.ensure(name)
        for start in range(0, len(data), 200_000):
            write_deltalake(lake.where.table_uri(name), arrow(name, data[start:start + 200_000]), mode="append",
                            partition_by=PARTITIONS[name] or None, storage_options=lake.options())
    written = time.perf_counter() - started
    lake.compact("interactions")
    sql = ("SELECT search_query, count(*) AS searches, sum(CASE WHEN results = 0 THEN 1 ELSE 0 END) AS zero "
           "FROM interactions WHERE type = 'search' AND case_id IS NOT NULL "
           "GROUP BY search_query ORDER BY searches DESC LIMIT 10")
    times = []
    for _ in range(5):
        started = time.perf_counter()
        top = lake.query(sql)
        times.append(time.perf_counter() - started)
    week_sql = ("SELECT date_trunc('week', timestamp) AS week, search_query, count(*) AS n FROM interactions "
                "WHERE type = 'search' AND results = 0 GROUP BY 1, 2 ORDER BY n DESC LIMIT 10")
    started = time.perf_counter()
    lake.query(week_sql)
    week = time.perf_counter() - started
    # One visitor's ten new rows on two days, into the year: merged on keys (what the export does) vs appended.
    visitor = [dict(rows[-1], event_id=f"new-{i}", date=rows[-1 - (i % 2) * YEAR_EVENTS_PER_DAY]["date"])
               for i in range(10)]
    merge_times, append_times = [], []
    for i in range(3):
        batch = [dict(row, event_id=f"{row['event_id']}-{i}") for row in visitor]
        started = time.perf_counter()
        lake.merge("interactions", batch)
        merge_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        write_deltalake(lake.where.table_uri("interactions"), arrow("interactions", batch), mode="append",
                        partition_by=["date"], storage_options=lake.options())
        append_times.append(time.perf_counter() - started)
    started = time.perf_counter()
    lake.merge("interactions", visitor[:2])  # unchanged rows: read, nothing written
    unchanged = time.perf_counter() - started
    # Ten rows of the last day updated (a sign-in attributes them): what the export does most.
    updates, updated_bytes = [], []
    for i in range(3):
        batch = [dict(row, contact_id=f"c{i}") for row in rows[-10:]]
        started = time.perf_counter()
        metrics = lake.merge("interactions", batch)
        updates.append(time.perf_counter() - started)
        updated_bytes.append(metrics["files_removed"])
    by_month = monthly(lake, rows, visitor, sql)
    return {"by_day": {"files": len(lake.table("interactions").file_uris())},
            "by_month": by_month,"rows": len(rows), "cases": len(cases), "write_seconds": round(written, 1),
            "top_searches_before_cases_ms": round(statistics.median(times) * 1000),
            "zero_result_terms_by_week_ms": round(week * 1000),
            "top_terms": [row["search_query"] for row in plain(top)][:3],
            "merge_10_rows_into_the_year_ms": round(statistics.median(merge_times) * 1000),
            "append_10_rows_ms": round(statistics.median(append_times) * 1000),
            "merge_unchanged_rows_ms": round(unchanged * 1000),
            "update_10_rows_of_the_last_day_ms": round(statistics.median(updates) * 1000),
            "update_files_rewritten": updated_bytes[-1], "update_rows_copied": copied(lake.table("interactions"))}


def copied(table: object) -> int:
    """Rows the table's last commit copied unchanged into new files (its write amplification)."""
    import json

    history = table.history(1)[0]
    metrics = history.get("operationMetrics") or {}
    if isinstance(metrics, str):
        metrics = json.loads(metrics)
    return int(metrics.get("num_target_rows_copied", 0))


def monthly(lake: object, rows: list[dict], visitor: list[dict], sql: str) -> dict:
    """The same year partitioned by month instead of by day: files, the query, a ten-row merge."""
    from arro3.core import Array, DataType, Field
    from deltalake import DeltaTable, QueryBuilder, write_deltalake

    from dci.lake.tables import arrow

    uri = lake.where.table_uri("by_month")

    def with_month(batch: list[dict]) -> object:
        table = arrow("interactions", batch)
        return table.append_column(Field("month", DataType.string(), nullable=False),
                                   Array([row["date"][:7] for row in batch], DataType.string()))

    for start in range(0, len(rows), 200_000):
        write_deltalake(uri, with_month(rows[start:start + 200_000]), mode="append", partition_by=["month"],
                        storage_options=lake.options())
    table = DeltaTable(uri, storage_options=lake.options())
    table.optimize.compact()
    table = DeltaTable(uri, storage_options=lake.options())
    times = []
    for _ in range(5):
        started = time.perf_counter()
        QueryBuilder().register("interactions", table).execute(sql).read_all()
        times.append(time.perf_counter() - started)
    months = sorted({row["date"][:7] for row in visitor})
    on = ("t.event_id = s.event_id AND t.month = s.month AND t.month IN ("
          + ", ".join(f"'{m}'" for m in months) + ")")
    merges = []
    for i in range(3):
        batch = [dict(row, event_id=f"{row['event_id']}-m{i}") for row in visitor]
        started = time.perf_counter()
        DeltaTable(uri, storage_options=lake.options()).merge(with_month(batch), on, source_alias="s", target_alias="t"
                                                              ).when_not_matched_insert_all().execute()
        merges.append(time.perf_counter() - started)
    updates = []
    last_month = rows[-1]["date"][:7]
    update_on = f"t.event_id = s.event_id AND t.month = s.month AND t.month IN ('{last_month}')"
    for i in range(3):
        batch = [dict(row, contact_id=f"c{i}") for row in rows[-10:]]
        started = time.perf_counter()
        DeltaTable(uri, storage_options=lake.options()).merge(with_month(batch), update_on, source_alias="s",
                                                              target_alias="t").when_matched_update_all().execute()
        updates.append(time.perf_counter() - started)
    return {"files": len(table.file_uris()), "top_searches_before_cases_ms": round(statistics.median(times) * 1000),
            "merge_10_rows_into_the_year_ms": round(statistics.median(merges) * 1000),
            "update_10_rows_of_the_last_day_ms": round(statistics.median(updates) * 1000),
            "update_rows_copied": copied(DeltaTable(uri, storage_options=lake.options()))}


def files_per_day(connection: str) -> dict:
    """96 exports in a day (every 15 minutes' worth), then the daily compaction."""
    from datetime import datetime, timezone

    from dci import linker
    from dci.lake import export

    settings = settings_for(connection, f"az://lake/files{uuid.uuid4().hex[:8]}")
    stores = stores_for(connection)
    day_start = (NOW_MS // DAY_MS - 1) * DAY_MS
    for n in range(96):
        linker.handle(encoded(queued_batch([queued_event(day_start + n * 900_000 + i) for i in range(20)])),
                      settings, stores)
        export.run(settings, stores)
    lake = export.lake_of(settings.lake)

    def counts() -> Counter:
        return Counter(uri.split("date=")[1].split("/")[0] for uri in lake.table("interactions").file_uris())

    before = max(counts().values())
    started = time.perf_counter()
    done = export.maintain(lake, datetime.now(timezone.utc), 90, 0)
    return {"exports": 96, "files_per_day_before": before, "files_per_day_after": max(counts().values()),
            "upkeep_seconds": round(time.perf_counter() - started, 2), "vacuumed_files": done["vacuumed_files"]}


def package() -> dict:
    """Installed size of the lake's packages and their import time in fresh interpreters."""
    import importlib.util

    sizes = {}
    for module in ("deltalake", "arro3", "azure.storage.blob"):
        spec = importlib.util.find_spec(module)
        folder = Path(list(spec.submodule_search_locations)[0])
        sizes[module] = round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20, 1)
    imports = []
    for _ in range(7):
        out = subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter(); import deltalake, "
                              "arro3.core, azure.storage.blob; print(time.perf_counter() - t)"],
                             capture_output=True, text=True, check=True)
        imports.append(float(out.stdout))
    return {"installed_mb": sizes, "import_ms_median": round(statistics.median(imports) * 1000)}


def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        ports = azurite.free_ports(3)
        process = azurite.start(tuple(ports), Path(data))
        try:
            connection = azurite.connection_string(*ports)
            result = {"package": package()}
            for name, measure in (("throughput", throughput), ("files", files_per_day), ("year", year)):
                result[name] = measure(connection)
                print(name, result[name], flush=True)
        finally:
            azurite.stop(process)
    save("lake", result)


if __name__ == "__main__":
    main()
