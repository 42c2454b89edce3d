"""Insights over a year of data, on Azurite: the cost of a request never grows with the interactions.

Fills a year of insight facts (SEARCHES_PER_DAY searches and article reads, CASES_PER_DAY case
facts per day), then measures:

* recomputing every day's rollup once (what the rollup timer does as the facts arrive);
* `GET /api/insights` for the whole year with nothing dirty (the usual request), and with today
  dirty (what a request right after new activity pays): wall time and storage requests.

Run: `make bench` (or `.venv/bin/python bench/insights_bench.py`). Takes a few minutes: filling
Azurite is most of it.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from azure.data.tables import TableServiceClient  # noqa: E402
from results import Counter, save  # noqa: E402  (bench/ is the script's own folder)

from dci.insights import report  # noqa: E402
from dci.storage.insights import InsightStore  # noqa: E402
from dci.views import previous_period  # noqa: E402
from tests import azurite  # noqa: E402

DAYS = 365
SEARCHES_PER_DAY = 200  # searches and article reads
CASES_PER_DAY = 20
TERMS = [f"term {n}" for n in range(300)]
REQUESTS = 10



def fill(insights: InsightStore, first: date) -> None:
    for offset in range(DAYS):
        day = (first + timedelta(days=offset)).isoformat()
        facts = []
        for n in range(SEARCHES_PER_DAY):
            session = f"s{offset}-{n // 4}"  # four steps a session: search, click, read, search again
            if n % 4 == 1:
                fact = {"kind": "click", "term": TERMS[((n - 1) * 7 + offset) % len(TERMS)], "session": session}
            elif n % 4 == 2:
                fact = {"kind": "read", "article": f"KA-{n % 40:05d}", "session": session}
            else:
                fact = {"kind": "search", "term": TERMS[(n * 7 + offset) % len(TERMS)], "session": session,
                        "results": n % 5}
            facts.append((day, f"{day}T00:00:00.000Z_{n:05d}", fact))
        insights.add_events(facts)
        for n in range(CASES_PER_DAY):
            insights.put_case(f"case-{offset}-{n}", {
                "day": day, "searches": [TERMS[(n * 11 + offset) % len(TERMS)]], "zero": [], "articles": [
                    f"KA-{n % 40:05d}"], "sessions": {f"s{offset}-{n}": [day]}, "lead_ms": 60_000 * (n + 1)})


def main() -> None:
    ports = tuple(azurite.free_ports(3))
    result: dict = {"days": DAYS, "searches_and_reads_per_day": SEARCHES_PER_DAY, "cases_per_day": CASES_PER_DAY}
    with tempfile.TemporaryDirectory() as data:
        process = azurite.start(ports, Path(data))  # type: ignore[arg-type]
        try:
            connection = azurite.connection_string(*ports)
            counter = Counter()
            insights = InsightStore(TableServiceClient.from_connection_string(connection, raw_request_hook=counter),
                                    follow_days=7)
            first = date(2026, 1, 1)
            last = first + timedelta(days=DAYS - 1)
            started = time.perf_counter()
            fill(insights, first)
            result["fill_s"] = round(time.perf_counter() - started, 1)

            counter.requests = 0
            started = time.perf_counter()
            done = insights.refresh()
            result["refresh_all"] = {"days": len(done), "s": round(time.perf_counter() - started, 2),
                                     "requests": counter.requests}

            def year() -> tuple[float, int]:
                """What GET /api/insights does for a year: its rollups, the year before's (for the
                trend's comparison), the report with its daily trend and site-search figures."""
                counter.requests = 0
                began = time.perf_counter()
                before = previous_period(first.isoformat(), last.isoformat())
                body = report(first.isoformat(), last.isoformat(), insights.rollups(first.isoformat(),
                                                                                     last.isoformat()),
                              previous=insights.rollups(*before))
                assert body["days"] == DAYS and body["cases"] == DAYS * CASES_PER_DAY, body["cases"]
                assert len(body["trend"]["days"]) == DAYS and body["site_search"]["clicked"] > 0
                return (time.perf_counter() - began) * 1000, counter.requests

            clean = [year() for _ in range(REQUESTS)]
            result["year_request_clean"] = {"median_ms": round(statistics.median(c[0] for c in clean), 1),
                                            "max_ms": round(max(c[0] for c in clean), 1), "requests": clean[0][1]}
            dirty = []
            for _ in range(REQUESTS):
                insights.mark([last.isoformat()])
                dirty.append(year())
            result["year_request_today_dirty"] = {"median_ms": round(statistics.median(c[0] for c in dirty), 1),
                                                  "max_ms": round(max(c[0] for c in dirty), 1),
                                                  "requests": dirty[0][1]}
            behind = []
            for _ in range(REQUESTS):  # what lies behind one term over the year (the drill-down)
                counter.requests = 0
                began = time.perf_counter()
                cases, sessions, _ = insights.behind(first.isoformat(), last.isoformat(), search=TERMS[0])
                behind.append(((time.perf_counter() - began) * 1000, counter.requests))
            assert cases and sessions
            result["year_behind_one_term"] = {"median_ms": round(statistics.median(b[0] for b in behind), 1),
                                              "max_ms": round(max(b[0] for b in behind), 1),
                                              "requests": behind[0][1], "cases": len(cases)}
        finally:
            azurite.stop(process)
    save("insights", result)


if __name__ == "__main__":
    main()
