"""Case timelines at scale, on Azurite with the local Dataverse server:

* assembly per case, and storage requests per case, with 10k and with 100k *other* interactions
  in the store: the cost must follow the contact's own activity, not the store's size;
* poller throughput for 5,000 cases over paged Web API responses.

Run: `make bench` (or `.venv/bin/python bench/cases_bench.py`). Takes a few minutes: filling
Azurite with 100k rows is most of it.
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from azure.data.tables import TableServiceClient  # noqa: E402
from results import Counter, azurite_tables, save  # noqa: E402  (bench/ is the script's own folder)

from dci.assembler import contact_events, journey  # noqa: E402
from dci.cases import poll  # noqa: E402
from dci.dataverse.client import Dataverse, TokenSource, session  # noqa: E402
from dci.linker import link  # noqa: E402
from dci.runner.dataverse import LocalDataverse  # noqa: E402
from dci.settings import Settings  # noqa: E402
from dci.storage.cases import CaseStore  # noqa: E402
from dci.storage.interactions import InteractionStore  # noqa: E402
from dci.timeline import assemble  # noqa: E402
from tests import azurite  # noqa: E402
from tests.factories import encoded, queued_batch, queued_event  # noqa: E402

CREATED = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
CREATED_MS = int(CREATED.timestamp() * 1000)
CONTACTS = 20  # measured cases, one per contact
OWN_EVENTS = 40  # each contact's events before the case, over two browsers
POLLED_CASES = 5000



def message(visitor: str, events: int, start_ms: int, contact: str | None = None) -> bytes:
    return encoded(queued_batch([queued_event(start_ms + i * 60_000, "page_view",
                                              article={"number": "KA-01023", "lang": "en-us"})
                                 for i in range(events)],
                                visitor=visitor, contact=contact, received_at="2026-11-28T12:00:00.000Z"))


def fill_others(store: InteractionStore, total: int) -> None:
    """`total` interactions of other visitors, 50 per message, spread over the case's month."""
    for index in range(total // 50):
        link(store, message(str(uuid.uuid4()), 50, CREATED_MS - (index % 500) * 3_600_000))


def measure_assembly(service: TableServiceClient, counter: Counter, settings: Settings,
                     cases_: list[dict]) -> dict[str, float]:
    store, cases = InteractionStore(service), CaseStore(service)
    times, requests, raw = [], [], []
    table = service.get_table_client(store.interaction_tables()[-1])
    for case in cases_:
        visitors = [link["visitor"] for link in store.visitors_of(case["contact"])]
        started = time.perf_counter()
        for visitor in visitors:  # the irreducible part: the storage reads of the contact's own partitions
            list(table.query_entities("PartitionKey eq @pk", parameters={"pk": f"v_{visitor}"}))
        raw.append(time.perf_counter() - started)
        before = counter.requests
        started = time.perf_counter()
        events = journey(case, contact_events(store, case["contact"], settings),  # as the assembler reads them
                         cases.cases_of(case["contact"]), settings)  # (its window)
        assemble(case, events, settings.session_gap_minutes * 60_000)
        times.append(time.perf_counter() - started)
        requests.append(counter.requests - before)
        assert len(events) == OWN_EVENTS, len(events)
    return {"ms_per_case_median": round(statistics.median(times) * 1000, 1),
            "storage_requests_per_case": statistics.median(requests),
            "bare_partition_reads_ms_median": round(statistics.median(raw) * 1000, 1)}


def created_to_note(connection: str, cases: int = 3) -> dict[str, object]:
    """Seconds from a case's creation to its note on the case, through the runner with the real
    host.json, the default settings (CASE_SETTLE_SECONDS) and the Dataverse webhook."""
    import json
    import os
    import urllib.request

    from dci.settings import get_settings
    from tests.test_cases import context

    fake = LocalDataverse()
    os.environ.update({"AzureWebJobsStorage": connection, "PORTAL_ISSUERS": "portal.example.com",
                       "DATAVERSE_URL": fake.url, "DATAVERSE_TOKEN": "test-token", "CASE_SCHEDULE": "0 0 0 1 1 *"})
    os.environ.pop("CASE_SETTLE_SECONDS", None)
    get_settings.cache_clear()
    import function_app
    from dci.runner import Runner
    from dci.runner.config import load_host_config

    runner = Runner(function_app.app, load_host_config(ROOT / "host.json"), dict(os.environ),
                    ("127.0.0.1", azurite.free_ports(1)[0]))
    runner.start()
    try:
        created: dict[str, float] = {}
        for _ in range(cases):
            now = time.time()
            case = fake.add_incident(datetime.fromtimestamp(now, timezone.utc), contact=str(uuid.uuid4()))
            document = context(created_ms=int(now * 1000), PrimaryEntityId=case)
            created[case] = now
            request = urllib.request.Request(f"{runner.url}/dataverse/incidents", method="POST",
                                             data=json.dumps(document).encode(),
                                             headers={"Content-Type": "application/json"})
            assert urllib.request.urlopen(request, timeout=10).status == 202
            time.sleep(1)
        noted: dict[str, float] = {}
        deadline = time.time() + get_settings().case_settle_seconds + 60
        while len(noted) < cases and time.time() < deadline:
            for case in created:
                if case not in noted and fake.notes_for(case):
                    noted[case] = time.time()
            time.sleep(0.05)
        seconds = sorted(noted[case] - created[case] for case in noted)
        return {"settle_seconds": get_settings().case_settle_seconds, "cases": cases, "noted": len(noted),
                "seconds_median": round(statistics.median(seconds), 1), "seconds_max": round(seconds[-1], 1)}
    finally:
        runner.stop(timeout=10)
        fake.close()


def main() -> None:
    result: dict = {"python": sys.version.split()[0]}
    with azurite_tables() as (connection, counter, service):
        store = InteractionStore(service)
        settings = Settings(AzureWebJobsStorage=connection, PORTAL_ISSUERS="portal.example.com")
        measured = []
        for _ in range(CONTACTS):
            contact = str(uuid.uuid4())
            for browser in range(2):
                link(store, message(str(uuid.uuid4()), OWN_EVENTS // 2,
                                    CREATED_MS - (browser + 1) * 30 * 60_000, contact))
            measured.append({"case_id": str(uuid.uuid4()), "created_ms": CREATED_MS, "contact": contact,
                             "ticket": f"CAS-{uuid.uuid4().hex[:6]}"})
        assembly = {}
        filled = 0
        for others in (10_000, 100_000):
            fill_others(store, others - filled)
            filled = others
            assembly[f"{others}_other_interactions"] = measure_assembly(service, counter, settings, measured)
        small, large = (assembly[k]["ms_per_case_median"] for k in assembly)
        raw_small, raw_large = (assembly[k]["bare_partition_reads_ms_median"] for k in assembly)
        result["assembly"] = assembly | {"ratio_100k_over_10k": round(large / small, 2),
                                         "bare_reads_ratio_100k_over_10k": round(raw_large / raw_small, 2)}

        fake = LocalDataverse()
        try:
            for i in range(POLLED_CASES):
                fake.add_incident(CREATED + timedelta(seconds=i), contact=str(uuid.uuid4()))
            dataverse = Dataverse(fake.url, TokenSource(fake.url, fixed="test-token"), session(), page_size=500)
            queue: list[str] = []
            poll_cases = CaseStore(TableServiceClient.from_connection_string(connection))
            started = time.perf_counter()
            outcome = poll(dataverse, poll_cases, queue.append, CREATED_MS + 86_400_000 - 1)
            elapsed = time.perf_counter() - started
            result["poller"] = {"cases": outcome.queued, "pages": outcome.pages, "seconds": round(elapsed, 1),
                                "cases_per_s": round(outcome.queued / elapsed, 1),
                                "dataverse_requests": dataverse.requests}
        finally:
            fake.close()
        result["created_to_note"] = created_to_note(connection)
    save("cases", result)


if __name__ == "__main__":
    main()
