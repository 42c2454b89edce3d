"""End to end through the runner: beacon batches via collect, a case in Dataverse, the timer,
the assembled timeline over HTTP, and exactly one note on the case."""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from dci.runner import Runner
from dci.runner.config import load_host_config
from dci.runner.dataverse import LocalDataverse
from dci.settings import get_settings
from dci.storage.interactions import InteractionStore
from tests.conftest import ROOT, TEST_PORTAL, Store, eventually, free_ports
from tests.factories import batch, body, event, iso
from tests.http import call

CONTACT = "6f1c2a4e-0b7d-4c1e-9a55-2f4d8b1e7c30"


@pytest.fixture
def system(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, LocalDataverse]]:
    import function_app

    fake = LocalDataverse()
    monkeypatch.setenv("DATAVERSE_URL", fake.url)
    monkeypatch.setenv("DATAVERSE_TOKEN", "test-token")
    monkeypatch.setenv("CASE_SETTLE_SECONDS", "0")
    get_settings.cache_clear()
    runner = Runner(function_app.app, load_host_config(ROOT / "tests" / "apps" / "host.json"), dict(os.environ),
                    ("127.0.0.1", free_ports(1)[0]))
    runner.start()
    try:
        yield runner.url, fake
    finally:
        runner.stop(timeout=10)
        fake.close()
        monkeypatch.undo()
        get_settings.cache_clear()


def test_end_to_end_portal_activity_becomes_the_case_timeline_and_one_note(system, store: Store) -> None:
    api, fake = system
    now = datetime.now(timezone.utc)
    browser = str(uuid.uuid4())
    anonymous = [event("search", at=now - timedelta(minutes=9), query="reset password", results=0),
                 event("page_view", at=now - timedelta(minutes=8))]
    signed_in = [event("case_form", at=now - timedelta(minutes=2))]
    for events, token in ((anonymous, None), (signed_in, TEST_PORTAL.token(CONTACT))):
        document = batch(events, visitor=browser, sent_at=iso(now))
        if token:
            document["token"] = token
        assert call("POST", f"{api}/collect", body(document))[0] == 202
    # The customer browsed minutes before the case: the batches are linked before it exists (with
    # CASE_SETTLE_SECONDS=0 and a busy machine, a case polled first would be assembled before them).
    tables = InteractionStore(store.tables)
    assert eventually(lambda: len(tables.visitor_events(browser)) >= 3 and tables.visitors_of(CONTACT)), \
        "the linker did not store the batches"
    case = fake.add_incident(now - timedelta(minutes=1), contact=CONTACT)

    deadline = time.monotonic() + 30
    while True:  # the timer polls every 2 s; the assembler runs once the case is queued
        status, timeline = call("GET", f"{api}/cases/{case}/timeline")
        if status == 200 or time.monotonic() > deadline:
            break
        assert status in (404, 202)
        time.sleep(0.3)
    assert status == 200, timeline
    assert [item["id"] for item in timeline["items"]] == [e["id"] for e in anonymous + signed_in]
    assert timeline["summary"]["zero_result_searches"] == ["reset password"]
    assert timeline["case"]["case_id"] == case
    polls = sum("/incidents" in path for _, path in fake.requests)
    deadline = time.monotonic() + 30
    while sum("/incidents" in path for _, path in fake.requests) < polls + 2:  # two more polls: still one note
        assert time.monotonic() < deadline, "the poller stopped polling"
        time.sleep(0.2)
    (note,) = fake.notes_for(case)
    assert re.match(r"First seen on the portal [78] min before this case", note["notetext"])
    assert 'searched 1 time (1 found nothing): "reset password" (no results)' in note["notetext"]
    assert '  - "reset password" - NO RESULTS' in note["notetext"].splitlines()


def test_end_to_end_webhook_queues_the_case_at_once(system) -> None:
    api, fake = system
    case = fake.add_incident(datetime.now(timezone.utc), contact=CONTACT)
    from tests.test_cases import context

    document = context(PrimaryEntityId=case)
    status, answer = call("POST", f"{api}/dataverse/incidents", json.dumps(document).encode())
    assert (status, answer) == (202, {"case_id": case, "outcome": "queued"})
    status, again = call("POST", f"{api}/dataverse/incidents", json.dumps(document).encode())
    assert again["outcome"] == "known"
    status, problem = call("POST", f"{api}/dataverse/incidents", b'{"MessageName": "Delete"}')
    assert status == 400 and problem["type"] == "urn:dci:problem:invalid-webhook"


def test_end_to_end_unknown_case_is_404_and_a_bad_id_400(system) -> None:
    api, _ = system
    assert call("GET", f"{api}/cases/{uuid.uuid4()}/timeline")[0] == 404
    status, problem = call("GET", f"{api}/cases/not%20a%20case/timeline")
    assert status == 400 and problem["errors"][0]["field"] == "case_id"
    status, problem = call("GET", f"{api}/cases/CAS-99999-NOPE/timeline")  # a ticket number no case has
    assert (status, problem["type"]) == (404, "urn:dci:problem:unknown-case")
    assert "ticket number CAS-99999-NOPE" in problem["detail"]
