"""The lake export against Azurite's blob service: rows as the contact's export route gives them,
exactly once, erased with the contact, readable by Customer Insights – Data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from dci.lake.rows import pseudonym
from tests.conftest import ROOT, TEST_PORTAL, RecordingQueue, Store, eventually, running_app, stores_of
from tests.factories import batch, body, encoded, event, iso, queued_batch, queued_event
from tests.http import call

A = "6f1c2a4e-0b7d-4c1e-9a55-2f4d8b1e7c30"
B = "0b9e3d51-7a2c-4f8e-8d10-3c6a2e9f4b71"
NOW_MS = int(time.time() * 1000)


@pytest.fixture
def lake_url(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """LAKE_URL set to a prefix of this test's own (the container is shared), settings re-read."""
    from dci.settings import get_settings

    url = f"az://lake/t{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("LAKE_URL", url)
    monkeypatch.setenv("CASE_SETTLE_SECONDS", "0")  # portal cases (no Dataverse here) assemble at once
    get_settings.cache_clear()
    yield url
    monkeypatch.undo()
    get_settings.cache_clear()


def settings() -> Any:
    from dci.settings import get_settings

    return get_settings()


def lake_stores(store: Store, outbox: Any = None) -> Any:
    from dci.storage.outbox import LakeOutbox

    return replace(stores_of(store, queue=RecordingQueue()), outbox=outbox or LakeOutbox(store.tables))


def lake() -> Any:
    from dci.lake.export import lake_of

    return lake_of(settings().lake)


def link(stores: Any, message: dict[str, Any]) -> None:
    from dci import linker

    linker.handle(encoded(message), settings(), stores)


def run(stores: Any) -> dict[str, Any]:
    from dci.lake import export

    return export.run(settings(), stores)


def ms_of_iso(text: str) -> int:
    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


# --- the whole flow through the runner ------------------------------------------------------------


def post(api: str, visitor: str, events: list[dict[str, Any]], contact: str | None = None) -> None:
    document = batch(events, visitor=visitor, sent_at=iso(datetime.now(timezone.utc)))
    if contact:
        document["token"] = TEST_PORTAL.token(contact)
    assert call("POST", f"{api}/collect", body(document))[0] == 202


def journeys(api: str) -> dict[str, str]:
    """A's laptop (anonymous searches, then signed in, a case), A's phone, B's browser; waits until
    A's case is assembled and B's event stored. Returns the visitors."""
    laptop, phone, other = (str(uuid.uuid4()) for _ in range(3))
    now = datetime.now(timezone.utc)
    post(api, laptop, [event("search", at=now - timedelta(minutes=30), query="vpn drops", results=0),
                       event(at=now - timedelta(minutes=29))])
    post(api, laptop, [event("search", at=now - timedelta(minutes=5), query="vpn", results=2),
                       event("search_click", at=now - timedelta(minutes=4), query="vpn", position=1),
                       event("case_submitted", at=now - timedelta(minutes=1))], contact=A)
    post(api, phone, [event(at=now - timedelta(minutes=3))], contact=A)
    post(api, other, [event("search", at=now - timedelta(minutes=2))], contact=B)

    def assembled() -> bool:
        cases = call("GET", f"{api}/contacts/{A}/export")[1].get("cases")
        return bool(cases) and cases[0]["timeline"] is not None

    assert eventually(assembled), "the portal case was not assembled in time"
    assert eventually(lambda: len(call("GET", f"{api}/contacts/{B}/export")[1]["interactions"]) == 1)
    return {"laptop": laptop, "phone": phone, "other": other}


def test_lake_rows_match_the_contacts_export_row_by_row(store: Store, lake_url: str) -> None:
    from dci import storage

    with running_app() as url:
        api = f"{url}/api"
        visitors = journeys(api)
        exported = call("GET", f"{api}/contacts/{A}/export")[1]
        run(storage.stores(settings()))  # (the runner's own export timer may have done part of it: same rows)

    rows = {row["event_id"]: row for row in lake().rows("interactions")}
    assert len(rows) == 7
    mine = {event_id: row for event_id, row in rows.items() if row["contact_id"] == A}
    assert set(mine) == {item["id"] for item in exported["interactions"]}
    for item in exported["interactions"]:
        row = mine[item["id"]]
        assert (row["type"], row["attribution"], row["timestamp"], row["visitor"]) == (
            item["type"], item["attribution"], ms_of_iso(item["ts"]), pseudonym(item["visitor"]))
        assert (row["search_query"], row["results"], row["url"], row["position"]) == (
            item.get("query"), item.get("results"), item.get("url"), item.get("position"))
        assert row["date"] == item["ts"][:10]
    assert Counter(row["attribution"] for row in mine.values()) == {"stitched": 2, "verified": 4}
    assert [row["contact_id"] for row in rows.values() if row["visitor"] == pseudonym(visitors["other"])] == [B]

    case = exported["cases"][0]
    in_case = {item["id"] for item in case["timeline"]["items"]}
    assert {event_id for event_id, row in rows.items() if row["case_id"] == case["case_id"]} == in_case
    assert {row["ticket"] for row in rows.values() if row["case_id"]} == {case["ticket"]}
    (case_row,) = lake().rows("cases")
    summary = case["timeline"]["summary"]
    assert case_row == {
        "case_id": case["case_id"], "ticket": case["ticket"], "contact_id": A, "visitor": None,
        "created": ms_of_iso(case["created"]), "source": "portal", "searches": len(summary["searches"]),
        "zero_result_searches": 1, "articles_read": len(summary["articles"]), "sessions": summary["sessions"],
        "minutes_first_visit_to_case": round(summary["first_touch_before_case_ms"] / 60_000, 2),
        "case_form_seen": True}
    text = json.dumps(list(rows.values()))  # the beacon's ids never leave the store; only their pseudonyms
    assert not any(visitor in text for visitor in visitors.values())
    assert not any(item["session"] in text for item in exported["interactions"] if item.get("session"))


def test_lake_tables_are_readable_by_customer_insights(store: Store, lake_url: str) -> None:
    """Customer Insights – Data reads minReaderVersion ≤ 2 and none of: deletion vectors, liquid
    clustering, table features (writer 7), TimestampNTZ, type widening, variant (its docs' list)."""
    stores = lake_stores(store)
    link(stores, queued_batch([queued_event(NOW_MS - 60_000, "search", query="vpn", results=0)], contact=A))
    run(stores)
    stores.outbox.note_case("never-assembled")  # a case without a timeline is not exported
    run(stores)
    for name in ("interactions", "cases"):
        table = lake().ensure(name)
        protocol = table.protocol()
        assert protocol.min_reader_version <= 2 and protocol.min_writer_version < 7
        assert not protocol.reader_features and not protocol.writer_features
        config = table.metadata().configuration
        assert not any(key.startswith(("delta.enableDeletionVectors", "delta.feature.")) for key in config), config
        types = {field.name: str(field.type) for field in table.schema().fields}
        assert not any("timestamp_ntz" in kind for kind in types.values()), types
        assert not any("variant" in kind for kind in types.values()), types
        assert not table.metadata().partition_columns or table.metadata().partition_columns == ["date"]
    assert lake().rows("cases") == []


# --- exactly once ---------------------------------------------------------------------------------


def test_lake_export_twice_adds_nothing_and_commits_nothing(store: Store, lake_url: str) -> None:
    stores = lake_stores(store)
    for _ in range(3):
        link(stores, queued_batch([queued_event(NOW_MS - 90_000 + i) for i in range(4)]))
    first = run(stores)
    version = lake().table("interactions").version()
    assert (first["entries"], first["inserted"]) == (3, 12)
    assert run(stores)["entries"] == 0
    from dci.lake.export import backfill

    assert backfill(stores) == 3  # every visitor noted again, as after a crash before the clearing
    again = run(stores)
    assert (again["entries"], again["interactions"], again["inserted"], again["updated"]) == (3, 12, 0, 0)
    assert lake().table("interactions").version() == version
    assert len(lake().rows("interactions")) == 12


def test_lake_export_in_chunks_clears_each_chunk_after_its_merge(store: Store, lake_url: str) -> None:
    from dci.lake.export import export

    stores = lake_stores(store)
    for n in range(5):
        link(stores, queued_batch([queued_event(NOW_MS - 90_000 + n * 10 + i) for i in range(3)]))
    done = export(lake(), stores, settings().stitch_window_ms, limit=4, chunk=2)
    assert (done["entries"], done["interactions"], done["inserted"]) == (4, 12, 12)
    assert len(stores.outbox.pending(100)) == 1 and len(lake().rows("interactions")) == 12
    assert lake().table("interactions").version() == 2  # a commit a chunk (after the table's creation)
    assert export(lake(), stores, settings().stitch_window_ms)["inserted"] == 3


def test_lake_outbox_says_how_long_its_oldest_entry_has_waited(store: Store) -> None:
    from dci.storage.outbox import LakeOutbox

    noted_at = datetime(2026, 11, 29, 14, 5, 40, tzinfo=timezone.utc)
    LakeOutbox(store.tables, clock=lambda: noted_at).note_visitor("v1")
    LakeOutbox(store.tables, clock=lambda: noted_at + timedelta(minutes=3)).note_visitor("v2")
    later = LakeOutbox(store.tables, clock=lambda: noted_at + timedelta(minutes=10))
    assert later.waited() == 640  # from the oldest entry's minute, 14:05
    later.done(later.pending(10))
    assert later.waited() == 0


def test_lake_crash_between_merge_and_clearing_then_rerun_has_no_duplicates(store: Store, lake_url: str) -> None:
    from dci.storage.outbox import LakeOutbox

    class CrashesBeforeClearing(LakeOutbox):
        def done(self, entries: Any) -> None:
            raise RuntimeError("the process died here")

    stores = lake_stores(store)
    events = [queued_event(NOW_MS - 70_000 + i, "search", query=f"q{i}", results=i) for i in range(5)]
    link(stores, queued_batch(events, contact=A))
    with pytest.raises(RuntimeError):
        run(lake_stores(store, CrashesBeforeClearing(store.tables)))
    assert len(lake().rows("interactions")) == 5  # written, but the entry is still pending
    done = run(stores)
    assert (done["entries"], done["inserted"], done["updated"]) == (1, 0, 0)
    assert sorted(row["event_id"] for row in lake().rows("interactions")) == sorted(e["id"] for e in events)
    assert run(stores)["entries"] == 0


def test_lake_two_exports_at_once_write_each_row_once(store: Store, lake_url: str) -> None:
    stores = lake_stores(store)
    link(stores, queued_batch([queued_event(NOW_MS - 50_000)]))
    run(stores)  # the tables exist: the two runs race on merges, not on creating them
    for visitor in range(6):
        link(stores, queued_batch([queued_event(NOW_MS - 40_000 + visitor * 10 + i) for i in range(3)]))
    results: list[Any] = []
    start = threading.Barrier(2)

    def export() -> None:
        start.wait()
        try:
            results.append(run(stores))
        except Exception as error:  # noqa: BLE001 - the test reports it
            results.append(error)

    threads = [threading.Thread(target=export) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(isinstance(result, dict) for result in results), results
    ids = [row["event_id"] for row in lake().rows("interactions")]
    assert len(ids) == len(set(ids)) == 19
    assert sum(result["inserted"] for result in results) == 18


def test_lake_sign_in_after_anonymous_browsing_updates_the_earlier_rows(store: Store, lake_url: str) -> None:
    stores = lake_stores(store)
    visitor = str(uuid.uuid4())
    early = queued_event(NOW_MS - 600_000, "search", query="printer", results=0)
    link(stores, queued_batch([early], visitor=visitor))
    run(stores)
    assert [(r["contact_id"], r["attribution"]) for r in lake().rows("interactions")] == [(None, None)]
    link(stores, queued_batch([queued_event(NOW_MS - 300_000)], visitor=visitor, contact=A))
    done = run(stores)
    assert (done["inserted"], done["updated"]) == (1, 1)
    rows = {row["event_id"]: row for row in lake().rows("interactions")}
    assert (rows[early["id"]]["contact_id"], rows[early["id"]]["attribution"]) == (A, "stitched")


def test_lake_late_case_assembly_gives_the_events_their_case(store: Store, lake_url: str) -> None:
    from dci import assembler

    stores = lake_stores(store)
    visitor = str(uuid.uuid4())
    read = queued_event(NOW_MS - 120_000, article={"number": "KA-01023", "lang": "en-us"})
    link(stores, queued_batch([read], visitor=visitor, contact=A))
    run(stores)
    assert lake().rows("interactions")[0]["case_id"] is None
    link(stores, queued_batch([queued_event(NOW_MS - 60_000, "case_submitted", ticket="CAS-0042")],
                              visitor=visitor, contact=A))
    for text, _ in stores.cases_queue.sent:
        assert assembler.handle(text.encode(), stores, settings(), NOW_MS, None) == "assembled"
    done = run(stores)
    assert done["cases"] == 1
    rows = {row["event_id"]: row for row in lake().rows("interactions")}
    (case,) = lake().rows("cases")
    assert (rows[read["id"]]["case_id"], rows[read["id"]]["ticket"]) == (case["case_id"], "CAS-0042")
    assert case["articles_read"] == 1
    from dci.lake.export import backfill

    assert backfill(stores) == 2  # the visitor and the case, as `lake export --all` notes them
    again = run(stores)
    assert (again["entries"], again["cases"], again["inserted"], again["updated"]) == (2, 1, 0, 0)


# --- erasure and upkeep ---------------------------------------------------------------------------


def rows_naming(names: set[str]) -> list[dict[str, Any]]:
    return [row for name in ("interactions", "cases") for row in lake().rows(name)
            if {row.get("contact_id"), row.get("visitor")} & names]


def versions_naming(names: set[str]) -> list[int]:
    """The versions of either table, still readable, that hold a row naming any of `names`."""
    from deltalake import DeltaTable, QueryBuilder

    found = []
    for name in ("interactions", "cases"):
        table = lake().table(name)
        for version in range(table.version() + 1):
            try:
                old = DeltaTable(table.table_uri, version=version, storage_options=lake().options())
                result = QueryBuilder().register("t", old).execute("SELECT contact_id, visitor FROM t").read_all()
            except Exception as error:  # noqa: BLE001 - delta-rs raises a bare Exception for a missing file
                if "BlobNotFound" not in str(error):
                    raise
                continue  # its files were vacuumed: the version is gone
            values = set(result.column("contact_id").to_pylist()) | set(result.column("visitor").to_pylist())
            if values & names:
                found.append(version)
    return found


def log_texts(url: str) -> list[str]:
    """Every file of both tables' transaction logs, as text."""
    from azure.storage.blob import ContainerClient

    container = ContainerClient.from_connection_string(os.environ["AzureWebJobsStorage"], "lake")  # noqa: SIM112
    prefix = url.removeprefix("az://lake/")
    return [container.download_blob(blob.name).readall().decode("utf-8", "replace")
            for blob in container.list_blobs(name_starts_with=f"{prefix}/") if "/_delta_log/" in blob.name]


def test_lake_erasure_removes_the_contact_and_its_browsers_from_every_kept_version(
        store: Store, lake_url: str) -> None:
    from dci import storage
    from dci.lake.export import maintain

    with running_app() as url:
        api = f"{url}/api"
        visitors = journeys(api)
        run(storage.stores(settings()))
        names = {A, pseudonym(visitors["laptop"]), pseudonym(visitors["phone"])}
        assert len(rows_naming(names)) == 7
        status, erased = call("DELETE", f"{api}/contacts/{A}")
    assert status == 200 and erased["lake"] == "erased", erased
    assert rows_naming(names) == []
    assert [row["contact_id"] for row in lake().rows("interactions")] == [B]
    assert versions_naming(names)  # time travel still reads them: the old files are there until a vacuum
    maintain(lake(), datetime.now(timezone.utc), settings().retention_days, vacuum_hours=0)
    assert versions_naming(names) == []
    # The transaction logs, which a vacuum keeps (30 days), name none of them: no column statistics
    # of those columns, and the erasure's log entry holds no value.
    logs = log_texts(lake_url)
    assert logs and not [name for name in names if any(name in text for text in logs)]
    assert [row["contact_id"] for row in lake().rows("interactions")] == [B]
    # The erasure's entry is kept an hour after it was carried out (for `erase_again`), then forgotten.
    from dci.storage.outbox import LakeOutbox

    assert [entry.erased for entry in LakeOutbox(store.tables).erasures()] == [True]
    assert LakeOutbox(store.tables).forget_erasures() == 0
    later = LakeOutbox(store.tables, clock=lambda: datetime.now(timezone.utc) + timedelta(minutes=61))
    assert later.forget_erasures() == 1 and later.erasures() == []


def test_lake_unreachable_at_erasure_leaves_it_pending_for_the_next_export(
        store: Store, lake_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from dci import privacy
    from dci.settings import get_settings
    from tests.azurite import free_ports

    stores = lake_stores(store)
    own, shared = str(uuid.uuid4()), str(uuid.uuid4())
    link(stores, queued_batch([queued_event(NOW_MS - 90_000)], visitor=own, contact=A))
    link(stores, queued_batch([queued_event(NOW_MS - 80_000)], visitor=shared, contact=A))
    link(stores, queued_batch([queued_event(NOW_MS - 10_000)], visitor=shared, contact=B))
    link(stores, queued_batch([queued_event(NOW_MS - 5_000)], visitor=own))  # after sign-out: nobody's
    run(stores)
    reachable = os.environ["AzureWebJobsStorage"]  # noqa: SIM112 - the host's own name
    (closed,) = free_ports(1)
    blob = reachable.split("BlobEndpoint=")[1].split(";")[0]
    monkeypatch.setenv("AzureWebJobsStorage", reachable.replace(blob, f"http://127.0.0.1:{closed}/devstoreaccount1"))
    get_settings.cache_clear()
    reply = privacy.erase_reply(A, settings(), stores)
    assert reply.status == 200 and json.loads(reply.body)["lake"] == "pending"
    assert [entry.erased for entry in stores.outbox.erasures()] == [False]
    monkeypatch.setenv("AzureWebJobsStorage", reachable)
    get_settings.cache_clear()
    assert len(rows_naming({A, pseudonym(own)})) == 3  # not yet
    assert run(stores)["erasures"] == 1
    assert rows_naming({A, pseudonym(own)}) == []
    assert [row["contact_id"] for row in lake().rows("interactions")] == [B]  # the shared browser's other person
    assert [entry.erased for entry in stores.outbox.erasures()] == [True]
    assert run(stores)["erasures"] == 0  # carried out once


def test_lake_export_that_read_before_an_erasure_and_merged_after_it_erases_again(
        store: Store, lake_url: str) -> None:
    """The race: an export reads a contact's events, the erasure runs (store and lake), then the
    export merges what it read — rows that were new to the lake, so Delta sees no conflict."""
    from dci import privacy
    from dci.lake.export import _interactions, erase_again

    stores = lake_stores(store)
    visitor = str(uuid.uuid4())
    link(stores, queued_batch([queued_event(NOW_MS - 90_000)], visitor=visitor, contact=B))
    run(stores)  # the tables exist, with someone else's row
    link(stores, queued_batch([queued_event(NOW_MS - 60_000 + i) for i in range(3)], contact=A))
    stale = _interactions(stores, [entry.visitor for entry in stores.outbox.pending(10)], settings().stitch_window_ms)
    assert json.loads(privacy.erase_reply(A, settings(), stores).body)["lake"] == "erased"
    lake().merge("interactions", stale)
    assert len(rows_naming({A})) == 3  # put back
    assert erase_again(lake(), stores, {row["contact_id"] for row in stale}) == 1
    assert rows_naming({A}) == [] and [row["contact_id"] for row in lake().rows("interactions")] == [B]


def test_lake_upkeep_drops_old_days_and_compacts_each_day_to_one_file(store: Store, lake_url: str) -> None:
    from dci.lake.export import maintain

    stores = lake_stores(store)
    day = 86_400_000
    for n in range(4):  # four exports: four small files on each of the two days
        link(stores, queued_batch([queued_event(NOW_MS - 200 * day + n), queued_event(NOW_MS - day + n)]))
        run(stores)
    before = files_per_day()
    assert sorted(before.values()) == [4, 4]
    done = maintain(lake(), datetime.now(timezone.utc), retention_days=90, vacuum_hours=0)
    assert done["expired_interactions"] == 4
    after = files_per_day()
    assert list(after.values()) == [1] and len(lake().rows("interactions")) == 4
    assert done["vacuumed_files"] >= 8


def files_per_day() -> Counter[str]:
    """How many data files each day's partition holds now."""
    return Counter(uri.split("date=")[1].split("/")[0] for uri in lake().table("interactions").file_uris())


# --- with LAKE_URL unset, nothing changes ----------------------------------------------------------


def test_lake_unset_writes_no_outbox_and_loads_no_delta_rs(store: Store) -> None:
    script = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import function_app
from dci import linker, storage
from dci.lake import export
from dci.settings import get_settings
from tests.factories import encoded, queued_batch, queued_event
settings = get_settings()
stores = storage.stores(settings)
linker.handle(encoded(queued_batch([queued_event({NOW_MS})], contact={A!r})), settings, stores)
assert stores.outbox is None and export.run(settings, stores) is None
loaded = sorted(name for name in sys.modules if name.startswith(("deltalake", "arro3", "azure.storage.blob")))
print(",".join(loaded) or "none")
"""
    env = {key: value for key, value in os.environ.items() if key != "LAKE_URL"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"
    assert "lakeoutbox" not in [table.name for table in store.tables.list_tables()]
    assert any(table.name.startswith("interactions") for table in store.tables.list_tables())


def test_lake_set_still_loads_no_delta_rs_until_the_export_runs(lake_url: str) -> None:
    """The HTTP functions' cold start does not pay for delta-rs: only the export timer loads it."""
    script = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import function_app
from dci.settings import get_settings
assert get_settings().lake.root == {lake_url!r}
print(",".join(sorted(name for name in sys.modules if name.startswith(("deltalake", "arro3", "azure.storage.blob"))))
      or "none")
"""
    done = subprocess.run([sys.executable, "-c", script], env=dict(os.environ), capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "none"


# --- the command line -----------------------------------------------------------------------------


def test_lake_cli_exports_the_history_from_before_and_answers_sql(store: Store, lake_url: str) -> None:
    plain = stores_of(store)  # stored while there was no lake: no outbox entries
    for query, results in (("vpn", 0), ("vpn", 0), ("printer", 3)):
        link(plain, queued_batch([queued_event(NOW_MS - 30_000, "search", query=query, results=results)]))

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "dci", "lake", "--settings", "none.json", *args],
                              env=dict(os.environ), capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert json.loads(cli("export").splitlines()[-1])["entries"] == 0
    out = cli("export", "--all").splitlines()
    assert out[0] == "noted 3 visitors and cases" and json.loads(out[-1])["inserted"] == 3
    answer = cli("query", "--json", "SELECT search_query, count(*) AS n FROM interactions WHERE results = 0 "
                                    "GROUP BY search_query")
    assert [json.loads(line) for line in answer.splitlines()] == [{"search_query": "vpn", "n": 2}]
    assert "printer" in cli("query", "SELECT search_query FROM interactions ORDER BY search_query")
    bad = subprocess.run([sys.executable, "-m", "dci", "lake", "--settings", "none.json", "query", "SELEC 1"],
                         env=dict(os.environ), capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert bad.returncode == 1 and bad.stderr.startswith("error: SQL error") and "Traceback" not in bad.stderr


def test_lake_cli_without_lake_url_says_how_to_set_it(store: Store) -> None:
    env = {key: value for key, value in os.environ.items() if key != "LAKE_URL"}
    done = subprocess.run([sys.executable, "-m", "dci", "lake", "--settings", "none.json", "export"], env=env,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2 and "LAKE_URL is not set" in done.stderr


# --- one event key everywhere; what the lake refuses is set aside (issue 23, D2) -----------------


def test_lake_an_event_id_sent_at_three_client_times_is_one_row_and_the_export_goes_on(
        store: Store, lake_url: str) -> None:
    # The attack: one visitor sends one event id three times at three times. It used to leave three
    # store rows, a MERGE with two source rows for one key, and an export that failed on every run.
    stores = lake_stores(store)
    visitor = str(uuid.uuid4())
    repeated = queued_event(NOW_MS - 3_600_000, "search", query="vpn", results=0)
    for n, shift in enumerate((0, -3_600_000, -86_400_000)):
        link(stores, queued_batch([{**repeated, "ts": repeated["ts"] + shift}], visitor=visitor)
             | {"received_at": iso(datetime.now(timezone.utc) + timedelta(seconds=n))})
    other = str(uuid.uuid4())  # another browser that happens to send the same id: its own event
    link(stores, queued_batch([{**repeated, "query": "printer"}], visitor=other))
    done = run(stores)
    assert done["set_aside"] == 0 and stores.outbox.pending(10) == []
    rows = lake().rows("interactions")
    assert sorted((row["visitor"], row["search_query"], row["timestamp"]) for row in rows) == sorted([
        (pseudonym(visitor), "vpn", repeated["ts"]), (pseudonym(other), "printer", repeated["ts"])])
    later = queued_event(NOW_MS - 60_000)
    link(stores, queued_batch([later], visitor=visitor))
    run(stores)
    assert len(lake().rows("interactions")) == 3  # the export did not wedge


def test_lake_an_entry_the_lake_refuses_alone_is_set_aside_and_the_rest_go_on(store: Store,
                                                                                  lake_url: str) -> None:
    from azure.data.tables import EdmType, EntityProperty

    from dci.__main__ import main as cli
    from dci.storage.keys import interactions_table, visitor_key

    stores = lake_stores(store)
    good, bad = str(uuid.uuid4()), str(uuid.uuid4())
    link(stores, queued_batch([queued_event(NOW_MS - 60_000)], visitor=good))
    link(stores, queued_batch([queued_event(NOW_MS - 50_000)], visitor=bad))
    # A row no build of the app writes (a hand edit, say): its `results` cannot be an int64.
    table = store.tables.get_table_client(interactions_table(NOW_MS - 50_000))
    table.upsert_entity({"PartitionKey": visitor_key(bad), "RowKey": "hand-made-row", "id": "hand-made-row",
                         "ts": EntityProperty(NOW_MS - 40_000, EdmType.INT64), "type": "search", "results": "many",
                         "session": "s-12345678", "received_at": "2026-01-01T00:00:00.000Z"})
    done = run(stores)
    assert done["set_aside"] == 1
    assert [row["visitor"] for row in lake().rows("interactions")] == [pseudonym(good)]
    (dead,) = stores.outbox.dead()
    assert dead.visitor == bad and dead.fields["reason"]
    from dci import health

    assert json.loads(health.check().body)["lake"]["set_aside"] == 1  # what /api/health/details shows
    assert stores.outbox.pending(10) == []
    link(stores, queued_batch([queued_event(NOW_MS - 30_000)], visitor=good))  # later entries go on
    run(stores)
    assert len(lake().rows("interactions")) == 2
    table.delete_entity(visitor_key(bad), "hand-made-row")  # the fix; then the CLI puts it back
    settings_file = ROOT / "does-not-exist.json"
    assert cli(["lake", "--settings", str(settings_file), "dead", "--retry"]) == 0
    assert stores.outbox.dead() == []
    run(stores)
    assert pseudonym(bad) in {row["visitor"] for row in lake().rows("interactions")}


def test_lake_an_erasure_is_carried_out_whatever_the_interactions_chunks_do(store: Store, lake_url: str) -> None:
    from azure.data.tables import EdmType, EntityProperty

    from dci import privacy
    from dci.storage.keys import interactions_table, visitor_key

    stores = lake_stores(store)
    mine, bad = str(uuid.uuid4()), str(uuid.uuid4())
    link(stores, queued_batch([queued_event(NOW_MS - 90_000)], visitor=mine, contact=A))
    run(stores)
    link(stores, queued_batch([queued_event(NOW_MS - 50_000)], visitor=bad))
    store.tables.get_table_client(interactions_table(NOW_MS - 50_000)).upsert_entity({
        "PartitionKey": visitor_key(bad), "RowKey": "hand-made-row", "id": "hand-made-row",
        "ts": EntityProperty(NOW_MS - 40_000, EdmType.INT64), "type": "search", "results": "many",
        "session": "s-12345678", "received_at": "2026-01-01T00:00:00.000Z"})
    privacy.erase(stores.interactions, A, settings().stitch_window_ms, stores.cases, stores.insights, stores.outbox)
    done = run(stores)
    assert (done["erasures"], done["set_aside"]) == (1, 1)
    assert rows_naming({A, pseudonym(mine)}) == []


def test_lake_event_key_is_one_column_and_a_table_of_an_earlier_build_gains_it(store: Store, lake_url: str) -> None:
    # Customer Insights – Data takes one primary key column; event ids are unique per browser only
    # (another browser can send the same id), so the key is visitor + id as one value: event_key.
    from deltalake import DeltaTable

    from dci.lake.tables import PARTITIONS, schema
    from dci.storage.keys import event_key

    old_columns = [column for column in schema("interactions").names if column != "event_key"]
    lake()._ensure_container()
    DeltaTable.create(settings().lake.table_uri("interactions"), schema("interactions", old_columns),
                      partition_by=PARTITIONS["interactions"], storage_options=lake().options())
    stores = lake_stores(store)
    one, other = str(uuid.uuid4()), str(uuid.uuid4())
    shared_id = queued_event(NOW_MS - 60_000, "search", query="vpn")
    link(stores, queued_batch([shared_id], visitor=one))
    link(stores, queued_batch([{**shared_id, "query": "printer"}], visitor=other))
    run(stores)
    rows = lake().rows("interactions")
    assert sorted(row["event_key"] for row in rows) == sorted(event_key(v, shared_id["id"]) for v in (one, other))
    assert len({row["event_key"] for row in rows}) == 2 and {row["event_id"] for row in rows} == {shared_id["id"]}
    protocol = lake().table("interactions").protocol()
    assert protocol.min_writer_version < 7 and not protocol.writer_features


def test_lake_a_lake_that_refuses_everything_stops_the_run_instead_of_setting_all_aside(
        store: Store, lake_url: str) -> None:
    from arro3.core import DataType, Field, Schema
    from deltalake import DeltaTable

    from dci.lake.export import MAX_SET_ASIDE
    from dci.lake.tables import schema

    # A table someone gave a required column this app does not write: every insert fails.
    lake()._ensure_container()
    fields = [*schema("interactions"), Field("required_elsewhere", DataType.string(), nullable=False)]
    DeltaTable.create(settings().lake.table_uri("interactions"), Schema(fields), partition_by=["date"],
                      storage_options=lake().options())
    stores = lake_stores(store)
    for n in range(MAX_SET_ASIDE + 3):
        link(stores, queued_batch([queued_event(NOW_MS - 60_000 + n, "search", query="vpn", results=1)],
                                  visitor=str(uuid.uuid4())))
    with pytest.raises(Exception):  # noqa: B017 - what delta-rs raises: the run fails, the outbox keeps the rest
        run(stores)
    assert len(stores.outbox.dead()) == MAX_SET_ASIDE
    assert len(stores.outbox.pending(100)) == 3


def test_lake_a_contact_who_comes_back_after_an_erasure_is_exported_again(store: Store, lake_url: str) -> None:
    # The third outside run: within the hour an erasure is kept for `erase_again`, a returning
    # contact's new activity and new case were merged, then erased again, and never exported.
    from dci import privacy

    stores = lake_stores(store)
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    link(stores, queued_batch([queued_event(NOW_MS - 600_000, "search", query="before")], visitor=old, contact=A))
    run(stores)
    privacy.erase(stores.interactions, A, settings().stitch_window_ms, stores.cases, stores.insights, stores.outbox,
                  stores.erasures, now_ms=NOW_MS - 300_000)
    run(stores)
    assert rows_naming({A}) == []
    link(stores, queued_batch([queued_event(NOW_MS - 60_000, "search", query="after")], visitor=new, contact=A)
         | {"received_at": iso(datetime.now(timezone.utc))})
    run(stores)
    run(stores)  # (and the runs after it leave it there)
    assert [row["search_query"] for row in lake().rows("interactions") if row["contact_id"] == A] == ["after"]
