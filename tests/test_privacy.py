"""Through the runner: browsing, sign-in, a shared browser, export and erasure over HTTP."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from dci.runner import Runner
from dci.runner.config import load_host_config
from tests.conftest import ROOT, TEST_PORTAL, Store, free_ports
from tests.factories import batch, body, event, iso
from tests.http import call

A = "6f1c2a4e-0b7d-4c1e-9a55-2f4d8b1e7c30"
B = "0b9e3d51-7a2c-4f8e-8d10-3c6a2e9f4b71"


@pytest.fixture
def api(store: Store) -> Iterator[str]:
    import function_app

    runner = Runner(function_app.app, load_host_config(ROOT / "tests" / "apps" / "host.json"), dict(os.environ),
                    ("127.0.0.1", free_ports(1)[0]))
    runner.start()
    yield runner.url
    runner.stop(timeout=10)


def send(api: str, visitor: str, minutes_ago: list[float], token: str | None = None) -> list[str]:
    """Post one batch of page views at those times; returns their event ids."""
    now = datetime.now(timezone.utc)
    events = [event(at=now - timedelta(minutes=m)) for m in minutes_ago]
    document = batch(events, visitor=visitor, sent_at=iso(now))
    if token:
        document["token"] = token
    status, _ = call("POST", f"{api}/collect", body(document))
    assert status == 202
    return [e["id"] for e in events]


def export(api: str, contact: str) -> dict[str, Any]:
    status, document = call("GET", f"{api}/contacts/{contact}/export")
    assert status == 200
    return document


def wait_for_export(api: str, contact: str, count: int, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        document = export(api, contact)
        if len(document["interactions"]) >= count or time.monotonic() > deadline:
            return document
        time.sleep(0.2)


def test_privacy_browsing_before_sign_in_is_exported_under_the_contact(api: str) -> None:
    browser = str(uuid.uuid4())
    anonymous = send(api, browser, [30, 25, 20])
    signed_in = send(api, browser, [10, 5], token=TEST_PORTAL.token(A))
    document = wait_for_export(api, A, 5)
    by_id = {item["id"]: item for item in document["interactions"]}
    assert set(by_id) == set(anonymous + signed_in)
    assert {by_id[i]["attribution"] for i in anonymous} == {"stitched"}
    assert {by_id[i]["attribution"] for i in signed_in} == {"verified"}
    assert [v["visitor"] for v in document["visitors"]] == [browser]
    assert len(document["visitors"][0]["signins"]) == 1


def stored(store: Store, visitor: str, count: int, timeout: float = 20) -> None:
    """Wait until the linker has stored `count` events of the visitor."""
    from dci.storage.interactions import InteractionStore

    deadline = time.monotonic() + timeout
    while len(InteractionStore(store.tables).visitor_events(visitor)) < count:
        assert time.monotonic() < deadline, "the linker did not store the events in time"
        time.sleep(0.2)


def test_privacy_second_contact_on_the_same_browser_does_not_inherit(api: str, store: Store) -> None:
    browser = str(uuid.uuid4())
    a_ids = send(api, browser, [60, 55], token=TEST_PORTAL.token(A))
    between = send(api, browser, [40, 35])  # A signed out; someone browses anonymously
    b_ids = send(api, browser, [20, 15], token=TEST_PORTAL.token(B))
    stored(store, browser, 6)  # every batch has landed before we judge what is *not* attributed
    a_doc, b_doc = export(api, A), export(api, B)
    assert {i["id"] for i in a_doc["interactions"]} == set(a_ids)
    assert {i["id"] for i in b_doc["interactions"]} == set(b_ids)
    assert not set(between) & ({i["id"] for i in a_doc["interactions"]} | {i["id"] for i in b_doc["interactions"]})


def test_privacy_erase_then_export_is_empty_and_others_keep_theirs(api: str, store: Store) -> None:
    own_browser, shared = str(uuid.uuid4()), str(uuid.uuid4())
    send(api, own_browser, [50, 45])
    send(api, own_browser, [40], token=TEST_PORTAL.token(A))
    send(api, shared, [30], token=TEST_PORTAL.token(A))
    b_ids = send(api, shared, [10], token=TEST_PORTAL.token(B))
    wait_for_export(api, A, 4)
    wait_for_export(api, B, 1)

    status, erased = call("DELETE", f"{api}/contacts/{A}")
    assert status == 200
    assert erased == {"contact": A, "removed": {"interactions": 4, "visitors": 2, "cases": 0}}
    assert export(api, A) == {"contact": A, "visitors": [], "interactions": [], "cases": []}
    assert {i["id"] for i in export(api, B)["interactions"]} == set(b_ids)
    from dci.storage.interactions import InteractionStore

    assert InteractionStore(store.tables).visitor_events(own_browser) == []  # A's own browser: nothing left

    status, again = call("DELETE", f"{api}/contacts/{A}")
    assert (status, again["removed"]) == (200, {"interactions": 0, "visitors": 0, "cases": 0})  # idempotent


@pytest.mark.parametrize("method,path", [("GET", "/contacts/not-a-guid/export"), ("DELETE", "/contacts/42")])
def test_privacy_bad_contact_id_is_400_naming_it(api: str, method: str, path: str) -> None:
    status, problem = call(method, api + path)
    assert status == 400
    assert problem["errors"][0]["field"] == "contact_id"


def test_privacy_unknown_contact_exports_nothing(api: str) -> None:
    assert export(api, str(uuid.uuid4())) | {"contact": None} == {"contact": None, "visitors": [], "interactions": [],
                                                                   "cases": []}


def every_row(store: Store) -> list[tuple[str, str]]:
    """(table, the row as text) for every row of every table in the account."""
    import json

    return [(table.name, json.dumps({k: str(v) for k, v in row.items()}))
            for table in store.tables.list_tables()
            for row in store.tables.get_table_client(table.name).list_entities()]


def test_privacy_erasure_leaves_no_row_naming_the_contact_or_its_browsers(store: Store, monkeypatch) -> None:
    from azure.data.tables import TableServiceClient

    from dci.settings import get_settings
    from tests.conftest import running_app

    monkeypatch.setenv("CASE_SETTLE_SECONDS", "0")  # portal cases (no Dataverse here) assemble at once
    get_settings.cache_clear()
    laptop, phone, others = (str(uuid.uuid4()) for _ in range(3))
    # What an earlier build wrote for every ticket (the attack run found these left after erasure).
    legacy = TableServiceClient.from_connection_string(store.connection).create_table_if_not_exists("tickets")
    legacy.upsert_entity({"PartitionKey": "t_CAS-01234-X1Y2Z3", "RowKey": f"v_{laptop}", "visitor": laptop})
    try:
        with running_app() as url:
            api = f"{url}/api"
            now = datetime.now(timezone.utc)
            anonymous = [event("search", at=now - timedelta(minutes=30)), event(at=now - timedelta(minutes=29))]
            signed_in = [event("search", at=now - timedelta(minutes=5), query="vpn", results=0),
                         event("case_submitted", at=now - timedelta(minutes=1))]
            for visitor, events, token in ((laptop, anonymous, None), (laptop, signed_in, TEST_PORTAL.token(A)),
                                           (phone, [event(at=now - timedelta(minutes=3))], TEST_PORTAL.token(A)),
                                           (others, [event("search", at=now - timedelta(minutes=2))],
                                            TEST_PORTAL.token(B))):
                document = batch(events, visitor=visitor, sent_at=iso(now))
                if token:
                    document["token"] = token
                assert call("POST", f"{api}/collect", body(document))[0] == 202
            deadline = time.monotonic() + 30
            while not (cases := export(api, A).get("cases")) or cases[0]["timeline"] is None:
                assert time.monotonic() < deadline, "the portal case was not assembled in time"
                time.sleep(0.2)
            wait_for_export(api, B, 1)
            names = {A, laptop, phone}
            assert any(name in text for _, text in every_row(store) for name in names)  # the scan can see them

            status, erased = call("DELETE", f"{api}/contacts/{A}")
            assert status == 200 and erased["removed"]["cases"] == 1

            left = [(table, text) for table, text in every_row(store) if any(name in text for name in names)]
            # Only the tombstone that keeps the erasure erased names the contact (no browser, no activity).
            assert [(table, json.loads(text)["PartitionKey"]) for table, text in left] == [("state", "erased")]
            assert not any(browser in left[0][1] for browser in (laptop, phone))
            assert len(export(api, B)["interactions"]) == 1  # the other contact keeps theirs
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


@pytest.mark.parametrize("method,path", [("GET", f"/contacts/{A}%0A/export"), ("DELETE", f"/contacts/{A}%0A"),
                                         ("GET", f"/contacts/{A}%0A/timeline"), ("GET", f"/cases/{A}%0A/timeline")])
def test_privacy_an_id_followed_by_a_newline_is_not_an_id(api: str, method: str, path: str) -> None:
    # The attack: `$` matches before a final newline, so export answered 200 and erase 200 with
    # nothing removed, for a route value the host decodes to "{guid}\n".
    send(api, str(uuid.uuid4()), [5], token=TEST_PORTAL.token(A))
    wait_for_export(api, A, 1)
    status, problem = call(method, api + path)
    assert status == 400, problem
    assert problem["errors"][0]["field"] in ("contact_id", "case_id")
    assert len(export(api, A)["interactions"]) == 1  # nothing was erased


def test_privacy_no_visitor_contact_search_or_token_in_a_log_line(store: Store, caplog) -> None:
    """Collect, link, export and erase a signed-in batch: the app's own log lines name none of it."""
    import json as _json

    from dci.ingest import collect
    from dci.ingest.ratelimit import RateLimiter
    from dci.linker import link
    from dci.privacy import erase, export
    from dci.settings import load_settings
    from dci.storage.interactions import InteractionStore

    caplog.set_level("DEBUG", logger="dci")
    visitor, token = str(uuid.uuid4()), TEST_PORTAL.token(A)
    document = batch([event("search", query="my very private search", results=0)], visitor=visitor,
                     sent_at=iso(datetime.now(timezone.utc)))
    for with_token in (token, "not-a-token"):
        outcome = collect.handle("POST", {"content-type": "text/plain", "origin": "https://portal.example.com",
                                          "user-agent": "Mozilla/5.0 Chrome/131"},
                                 body({**document, "token": with_token}), load_settings(),
                                 limiter=RateLimiter(limit=100, window=60))
        assert outcome.reply.status == 202 and outcome.message
        link(InteractionStore(store.tables), outcome.message.encode())
    interactions = InteractionStore(store.tables)
    assert len(export(interactions, A, 86_400_000, 1_800_000)["interactions"]) == 1
    erase(interactions, A, 86_400_000)
    logged = "\n".join(r.getMessage() + " " + _json.dumps(getattr(r, "__dict__", {}), default=str)
                       for r in caplog.records if not r.name.startswith("dci.runner"))
    assert caplog.records  # the flow did log
    for secret in (A, visitor, "my very private search", token, "not-a-token"):
        assert secret not in logged, secret
