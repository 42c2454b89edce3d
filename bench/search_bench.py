"""Search analytics at scale, on Azurite: a year of day rollups (whole days and every filter slice)
at ten times the demo's daily volume, and `GET /api/insights` over the whole year — JSON, and the
HTML page with a filter — as the route answers it (views.insights_reply).

The day rollups are computed by the app's own `day_rollup` from generated facts: SESSIONS_PER_DAY
sessions a day over two portal hosts, a long-tail vocabulary (a few common terms, thousands of rare
ones, so each day's bounded lists differ), typos, zero-result terms, clicks at varied positions,
article reads and cases. DISTINCT_DAYS of them are computed, then stored round-robin for the 365
days of the year (what a request costs depends on the rows' sizes and the terms' union, not on the
days being all different). Also reports the largest stored row.

Run: `.venv/bin/python bench/search_bench.py` (starts its own Azurite; a few minutes).
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from azure.data.tables import UpdateMode  # noqa: E402
from results import azurite_tables, save  # noqa: E402  (bench/ is the script's own folder)

from dci.insights import (  # noqa: E402
    MAX_KEYS_PER_DAY,
    day_rollup,
    followed_sessions,
    session_slices,
    slice_key,
    slices,
    stored_columns,
)
from dci.settings import Settings  # noqa: E402
from dci.storage import Stores  # noqa: E402
from dci.storage.cases import CaseStore  # noqa: E402
from dci.storage.insights import INSIGHTS, ROLLUP, InsightStore  # noqa: E402
from dci.storage.interactions import InteractionStore  # noqa: E402
from dci.views import Asked, insights_reply  # noqa: E402

DAYS, DISTINCT_DAYS = 365, 14  # the year asked for; the year before it is stored too (the comparison)
SESSIONS_PER_DAY = 4000  # ten times the demo's ~400
HOSTS = ("portal.example.com", "help.example.com")
COMMON = ["reset password", "vpn error 809", "invoice download", "printer offline", "mfa setup", "license key",
          "outlook sync", "wifi drops", "teams audio", "onedrive full"]
RARE = [f"rare question {n}" for n in range(5000)]
REQUESTS = 5


def facts_of(day: str, seed: int) -> tuple[list[dict], list[dict]]:
    """A day's event facts and case facts."""
    rng = random.Random(seed)
    events, cases = [], []
    ts = int(datetime.fromisoformat(day).replace(tzinfo=timezone.utc).timestamp() * 1000)
    for n in range(SESSIONS_PER_DAY):
        session, visitor, host = f"{day}-s{n}", f"v{seed}-{n}", HOSTS[n % 3 == 0]
        who = {"session": session, "visitor": visitor, "portal": host, **({"signed_in": True} if n % 4 == 0 else {})}
        at = ts + n * 20_000
        for step in range(rng.randint(1, 4)):
            term = rng.choice(COMMON) if rng.random() < 0.6 else rng.choice(RARE)
            if rng.random() < 0.05:
                term = term[:-1]  # a typo
            results = 0 if term.startswith("rare") and rng.random() < 0.5 else rng.randint(1, 30)
            events.append({"kind": "search", "term": term, "results": results, "ts": at + step * 1000, **who})
            if results and rng.random() < 0.5:
                events.append({"kind": "click", "term": term, "position": min(10, int(rng.expovariate(0.7)) + 1),
                               "article": f"KA-{rng.randint(1, 400):05d}", "ts": at + step * 1000 + 300, **who})
                events.append({"kind": "read", "article": f"KA-{rng.randint(1, 400):05d}", "ts": at + step * 1000 + 400,
                               "title": "An article title · Contoso Support", **who})
        if n % 4 == 0 and rng.random() < 0.1:
            cases.append({"day": day, "portal": host, "searches": {term: [day, session]},
                          "zero": {}, "articles": {}, "sessions": {session: [day]}, "lead_ms": 600_000})
    return events, cases


def main() -> None:
    result: dict = {"days": DAYS, "sessions_per_day": SESSIONS_PER_DAY, "distinct_days": DISTINCT_DAYS}
    first = date(2025, 1, 1)
    every = [(first + timedelta(days=n)).isoformat() for n in range(2 * DAYS)]
    with azurite_tables() as (connection, counter, service):
        insights = InsightStore(service, follow_days=7, clock=lambda: datetime(2027, 6, 1, tzinfo=timezone.utc))
        began = time.perf_counter()
        computed, biggest = [], 0
        for n in range(DISTINCT_DAYS):
            events, cases = facts_of(every[n], n)
            known = {"of_session": session_slices(events), "followed": followed_sessions(cases, every[n])}
            rows = {ROLLUP: day_rollup(every[n], events, cases, **known)}  # (as InsightStore.compute_all does)
            rows.update({slice_key(s, p): day_rollup(every[n], events, cases, s, p, **known)
                         for s, p in slices(events, cases, every[n], known["of_session"])})
            computed.append(rows)
        result["compute_s_per_day"] = round((time.perf_counter() - began) / DISTINCT_DAYS, 2)
        table = service.create_table_if_not_exists(INSIGHTS)
        for index, day in enumerate(every):
            rows = computed[index % DISTINCT_DAYS]
            keys = sorted(key for key in rows if key != ROLLUP)
            for key, rollup in rows.items():  # (the whole day's row names its slice rows, measured with it)
                columns = stored_columns({**rollup, "day": day, **({"slices": keys} if key == ROLLUP else {})})
                biggest = max(biggest, sum(len(v) for v in columns.values()))
                table.upsert_entity({"PartitionKey": f"d_{day}", "RowKey": key, **columns}, mode=UpdateMode.REPLACE)
        result["largest_row_chars"] = biggest
        stores = Stores(InteractionStore(service), CaseStore(service), insights, None)  # type: ignore[arg-type]
        settings = Settings(AzureWebJobsStorage=connection, PORTAL_ISSUERS=",".join(HOSTS))
        now = datetime(2027, 1, 1, 12, tzinfo=timezone.utc)
        result["max_keys_per_day"] = MAX_KEYS_PER_DAY
        year = {"from": every[DAYS], "to": every[-1]}
        for name, params, accept in (
                ("json", year, "application/json"),
                ("json_signed_in", {**year, "signed_in": "true"}, "application/json"),
                ("html_portal_filter", {**year, "portal": HOSTS[1], "format": "html"}, "text/html")):
            times, requests = [], []
            for _ in range(REQUESTS):
                counter.requests = 0
                began = time.perf_counter()
                reply = insights_reply(Asked("", params, accept, now), settings, stores)
                times.append((time.perf_counter() - began) * 1000)
                requests.append(counter.requests)
                assert reply.status == 200, reply.body[:300]
            result[f"year_{name}"] = {"median_ms": round(statistics.median(times), 1),
                                      "max_ms": round(max(times), 1), "storage_requests": requests[0],
                                      "body_kb": round(len(reply.body) / 1024, 1)}
    save("search", result)


if __name__ == "__main__":
    main()
