"""What the Portal visits cost in Dataverse (issue 28): visits per case and bytes per visit, on the
demo's month of made-up history (dci/runner/demo_history.py) assembled by the real pipeline.

Run: `make bench` (or `.venv/bin/python bench/visits_bench.py`). Starts its own Azurite, seeds the
demo's 30 days (`python -m dci demo seed`: every batch linked, every case assembled), then, for each
assembled case, takes its visits as the assembler writes them (dci/dataverse/visits.py, with a report URL) and
measures the body of each create request (`dci.dataverse.client.visit_body`: the columns, the regarding
case, the contact as its party) as UTF-8 JSON. Reports visits per case (median, p90, max, and how
many cases reach the cap of ten), bytes per visit (median, p90, max) and what the payload of
10,000 cases comes to. Dataverse stores more than the payload (an activity is an activitypointer
row, the table's row, an activity party per party and per owner, and their indexes): this measures
what the app sends, not the database's own overhead, which only a real environment shows
(Power Platform admin center → Capacity → Dataverse, per table).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from results import azurite_tables, save  # noqa: E402  (bench/ is the script's own folder)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
NOW = datetime(2026, 12, 4, 18, 0, tzinfo=timezone.utc)  # a fixed month: the same history every run
REPORT = "https://func-contoso.azurewebsites.net/api/cases/{case}/timeline?format=html"


def percentile(values: list[int], share: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    from dci.dataverse.client import visit_body
    from dci.dataverse.visits import MAX_VISITS, visits
    from dci.runner import demo
    from dci.settings import Settings
    from dci.storage import Stores
    from dci.storage.cases import CaseStore
    from dci.storage.erasures import Tombstones
    from dci.storage.insights import InsightStore
    from dci.storage.interactions import InteractionStore

    with azurite_tables() as (connection, _, service):
        settings = Settings(AzureWebJobsStorage=connection,
                            PORTAL_ISSUERS="contoso.powerappsportals.com,fabrikam.powerappsportals.com")
        stores = Stores(InteractionStore(service), CaseStore(service), InsightStore(service, 7), None,  # type: ignore[arg-type]
                        erasures=Tombstones(service))
        started = time.perf_counter()
        seeded = demo.seed(settings, stores, days=30, now=NOW)
        seconds = time.perf_counter() - started
        per_case, sizes, capped = [], [], 0
        for case_id in stores.cases.assembled():
            timeline = stores.cases.timeline(case_id)
            document = timeline["document"]
            activities, earlier = visits(document, REPORT.format(case=case_id))
            per_case.append(len(activities))
            capped += earlier > 0 or len(activities) == MAX_VISITS
            contact = document["case"].get("contact") or "00000000-0000-0000-0000-000000000000"
            sizes += [len(json.dumps(visit_body(a, case_id, contact, True), ensure_ascii=False).encode())
                      for a in activities]
    with_visits = [n for n in per_case if n]
    median_visits, mean_bytes = statistics.median(per_case), statistics.fmean(sizes)
    result = {
        "history": {"days": 30, "sessions": seeded["sessions"], "events": seeded["events"],
                    "cases": len(per_case), "seed_seconds": round(seconds, 1)},
        "visits_per_case": {"median": median_visits, "mean": round(statistics.fmean(per_case), 2),
                            "p90": percentile(per_case, 0.9), "max": max(per_case),
                            "cases_without_any": len(per_case) - len(with_visits), "cases_at_the_cap": capped},
        "bytes_per_visit": {"median": int(statistics.median(sizes)), "mean": round(mean_bytes),
                            "p90": percentile(sizes, 0.9), "max": max(sizes)},
        "payload_per_10000_cases_MB": {
            "median_case": round(median_visits * mean_bytes * 10_000 / 1e6, 1),
            "mean_case": round(statistics.fmean(per_case) * mean_bytes * 10_000 / 1e6, 1),
            "every_case_at_the_cap": round(MAX_VISITS * max(sizes) * 10_000 / 1e6, 1)},
    }
    save("visits", result)


if __name__ == "__main__":
    main()
