"""Linker throughput on Azurite vs raw `submit_transaction` of the same rows, and storage
round trips per queue message — without and with the insight facts the app also writes (the
messages hold searches, so every one writes facts).

Run: `make bench` (or `.venv/bin/python bench/linker_bench.py`). Starts its own Azurite.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from azure.data.tables import TableServiceClient, UpdateMode  # noqa: E402
from results import Counter, save  # noqa: E402  (bench/ is the script's own folder)

from dci.linker import link  # noqa: E402
from dci.storage.erasures import Tombstones  # noqa: E402
from dci.storage.insights import InsightStore  # noqa: E402
from dci.storage.interactions import InteractionStore, event_entity  # noqa: E402
from tests import azurite  # noqa: E402
from tests.factories import queued_batch, queued_event  # noqa: E402

SIZES = {1: 300, 10: 150, 50: 60}  # events per message: messages per run
REPEATS = 3
CONTACT = "6f1c2a4e-0b7d-4c1e-9a55-2f4d8b1e7c30"
START_MS = 1_796_137_200_000  # 2026-12-01, one month table for every run


def LIVE() -> datetime:  # noqa: N802 - a clock for InsightStore: the messages' day is "today", as live traffic's is
    return datetime(2026, 12, 1, 12, tzinfo=timezone.utc)



def message(events: int, contact: str | None = None) -> dict:
    """Every event a search: every one writes a fact (the most facts a message can carry)."""
    return queued_batch([queued_event(START_MS + i, "search", url="https://portal.example.com/search/?q=vpn",
                                      query="vpn", results=2) for i in range(events)],
                        contact=contact, received_at="2026-12-01T00:00:00.000Z")


MIX = ("page_view", "search", "search_click", "article", "engagement", "search", "article", "engagement",
       "page_view", "case_form")


def mixed(events: int, contact: str | None = None) -> dict:
    """A visitor's batch as collect makes it (bench/collect_bench.py's mix): 5 of 10 events write a fact."""
    out = []
    for i in range(events):
        kind = MIX[i % len(MIX)]
        if kind == "article":
            out.append(queued_event(START_MS + i, "page_view", url="https://portal.example.com/knowledgebase/article/"
                                    "KA-01023/en-us", title="Allow IKEv2 through your router",
                                    article={"number": "KA-01023", "lang": "en-us"}))
        elif kind == "search":
            out.append(queued_event(START_MS + i, "search", url="https://portal.example.com/search/?q=vpn+error+809",
                                    query="vpn error 809", results=i % 3))
        elif kind == "search_click":
            out.append(queued_event(START_MS + i, "search_click", query="vpn error 809", position=2,
                                    target="https://portal.example.com/knowledgebase/article/KA-01023"))
        else:
            out.append(queued_event(START_MS + i, kind))
    return queued_batch(out, contact=contact, received_at="2026-12-01T00:00:00.000Z")


def run(service: TableServiceClient, counted: TableServiceClient, counter: Counter) -> dict:
    store = InteractionStore(service)
    insights = InsightStore(service, follow_days=7, clock=LIVE)
    erasures = Tombstones(service)  # (read every 10 s: the cost of honouring erasures)
    link(store, json.dumps(message(1)).encode(), insights=insights)  # create the tables outside the timings
    raw_table = service.create_table_if_not_exists("rawbench")
    results = {}
    for size, count in SIZES.items():
        ours, raw, with_facts, with_mixed_facts = [], [], [], []
        for _ in range(REPEATS):  # interleaved: every variant sees the same machine load
            bodies = [json.dumps(message(size)).encode() for _ in range(count)]
            started = time.perf_counter()
            for body in bodies:
                link(store, body)
            ours.append(size * count / (time.perf_counter() - started))
            for made, into in ((message, with_facts), (mixed, with_mixed_facts)):
                bodies = [json.dumps(made(size)).encode() for _ in range(count)]
                started = time.perf_counter()
                for body in bodies:
                    link(store, body, insights=insights, erasures=erasures)  # as the app links
                into.append(size * count / (time.perf_counter() - started))
            batches = [[("upsert", event_entity(m, e), {"mode": UpdateMode.REPLACE}) for e in m["events"]]
                       for m in (message(size) for _ in range(count))]
            started = time.perf_counter()
            for operations in batches:
                raw_table.submit_transaction(operations)
            raw.append(size * count / (time.perf_counter() - started))
        results[size] = {"linker_events_per_s": round(max(ours)), "raw_events_per_s": round(max(raw)),
                         "ratio_raw_over_linker": round(max(raw) / max(ours), 2),
                         "spread_linker": [round(x) for x in ours],
                         "linker_with_insight_facts_events_per_s": round(max(with_facts)),
                         "with_facts_share_of_raw": round(max(with_facts) / max(raw), 2),
                         "linker_with_mixed_facts_events_per_s": round(max(with_mixed_facts)),
                         "mixed_share_of_raw": round(max(with_mixed_facts) / max(raw), 2)}
    round_trips = {}
    counted_store, counted_insights = InteractionStore(counted), InsightStore(counted, follow_days=7, clock=LIVE)
    for label, contact in (("anonymous", None), ("signed_in", CONTACT)):
        link(store, json.dumps(message(10, contact)).encode())  # `links` table exists from here on
        before = store.transactions
        for _ in range(20):
            link(store, json.dumps(message(10, contact)).encode())
        round_trips[label] = (store.transactions - before) / 20
        counter.requests = 0
        for _ in range(20):
            link(counted_store, json.dumps(message(10, contact)).encode(), insights=counted_insights)
        round_trips[f"{label}_with_insight_facts"] = counter.requests / 20
    # A beacon re-send of a stored batch (its answer was lost): the insert finds the rows, one read, no write.
    resent = [json.dumps(message(10)).encode() for _ in range(20)]
    for raw in resent:
        link(counted_store, raw, insights=counted_insights)
    counter.requests = 0
    for raw in resent:
        link(counted_store, raw, insights=counted_insights)
    round_trips["anonymous_resent_with_insight_facts"] = counter.requests / 20
    return {"throughput": results, "storage_round_trips_per_message_10_events": round_trips}


def main() -> None:
    ports = tuple(azurite.free_ports(3))
    with tempfile.TemporaryDirectory() as data:
        process = azurite.start(ports, Path(data))  # type: ignore[arg-type]
        try:
            service = TableServiceClient.from_connection_string(azurite.connection_string(*ports))
            counter = Counter()
            counted = TableServiceClient.from_connection_string(azurite.connection_string(*ports),
                                                                raw_request_hook=counter)
            result = {"python": sys.version.split()[0], "repeats": REPEATS, **run(service, counted, counter)}
        finally:
            azurite.stop(process)
    save("linker", result)


if __name__ == "__main__":
    main()
