"""Case sources: the poller (paging, throttling, crash and restart), the webhook, portal events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from dci.cases import OVERLAP_MS, parse_webhook, poll
from dci.dataverse import Dataverse, DataverseError, TokenSource, session
from dci.problems import Problem
from dci.runner.dataverse import LocalDataverse
from dci.storage.cases import CaseStore
from tests.conftest import Store

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
NOW_MS = int((T0 + timedelta(hours=1)).timestamp() * 1000)


@pytest.fixture
def fake() -> Iterator[LocalDataverse]:
    server = LocalDataverse()
    yield server
    server.close()


@pytest.fixture
def cases(store: Store) -> CaseStore:
    return CaseStore(store.tables)


def dataverse(fake: LocalDataverse, retries: int = 5) -> Dataverse:
    return Dataverse(fake.url, TokenSource(fake.url, fixed="test-token"), session(retries=retries, backoff=0.05),
                     page_size=3)


class Queue(list):
    def __call__(self, text: str) -> None:
        self.append(json.loads(text))


def test_poller_queues_every_case_of_three_pages_once(fake: LocalDataverse, cases: CaseStore) -> None:
    ids = [fake.add_incident(T0 + timedelta(minutes=i), contact=str(uuid.uuid4())) for i in range(8)]
    queue = Queue()
    result = poll(dataverse(fake), cases, queue, NOW_MS)
    assert (result.pages, result.seen, result.queued) == (3, 8, 8)
    assert [m["case_id"] for m in queue] == ids
    assert cases.watermark() == int((T0 + timedelta(minutes=7)).timestamp() * 1000)
    again = poll(dataverse(fake), cases, queue, NOW_MS)  # a re-run re-reads the overlap, queues nothing
    assert again.queued == 0 and len(queue) == 8
    assert {cases.case(i)["status"] for i in ids} == {"queued"}


def test_poller_429_midway_is_waited_out(fake: LocalDataverse, cases: CaseStore) -> None:
    for i in range(8):
        fake.add_incident(T0 + timedelta(minutes=i), contact=str(uuid.uuid4()))
    fake.fail(429, retry_after=1, after=1)  # the second page is throttled once
    queue = Queue()
    assert poll(dataverse(fake), cases, queue, NOW_MS).queued == 8


def test_poller_crash_after_page_two_then_restart_loses_and_repeats_nothing(
        fake: LocalDataverse, cases: CaseStore) -> None:
    ids = [fake.add_incident(T0 + timedelta(minutes=i), contact=str(uuid.uuid4())) for i in range(8)]
    fake.fail(500, after=2)  # the third page fails for good this time
    queue = Queue()
    with pytest.raises(DataverseError):
        poll(dataverse(fake), cases, queue, NOW_MS)
    assert [m["case_id"] for m in queue] == ids[:6]
    assert cases.watermark() == int((T0 + timedelta(minutes=5)).timestamp() * 1000)  # past stored cases only
    poll(dataverse(fake), cases, queue, NOW_MS)
    assert [m["case_id"] for m in queue] == ids  # every case exactly once


def test_poller_throttled_beyond_retries_keeps_the_watermark(fake: LocalDataverse, cases: CaseStore) -> None:
    fake.add_incident(T0, contact=str(uuid.uuid4()))
    fake.fail(429, times=10, retry_after=0)
    with pytest.raises(DataverseError, match="429"):
        poll(dataverse(fake, retries=1), cases, Queue(), NOW_MS)
    assert cases.watermark() is None


def test_poller_skips_cases_without_a_contact_and_records_why(fake: LocalDataverse, cases: CaseStore) -> None:
    primary = str(uuid.uuid4())
    via_account = fake.add_incident(T0, account=str(uuid.uuid4()), primary_contact=primary)
    lonely_account = fake.add_incident(T0 + timedelta(seconds=1), account=str(uuid.uuid4()))
    nobody = fake.add_incident(T0 + timedelta(seconds=2))
    queue = Queue()
    result = poll(dataverse(fake), cases, queue, NOW_MS)
    assert (result.queued, result.skipped) == (1, 2)
    assert [(m["case_id"], m["contact"]) for m in queue] == [(via_account, primary)]
    assert cases.case(lonely_account)["status"] == "skipped"
    assert "account" in cases.case(lonely_account)["reason"]
    assert cases.case(nobody)["reason"] == "no customer contact"


def test_poller_first_run_looks_back_a_day_and_reads_with_an_overlap(fake: LocalDataverse, cases: CaseStore) -> None:
    fake.add_incident(T0 - timedelta(days=2), contact=str(uuid.uuid4()))
    recent = fake.add_incident(T0, contact=str(uuid.uuid4()))
    queue = Queue()
    poll(dataverse(fake), cases, queue, NOW_MS)
    assert [m["case_id"] for m in queue] == [recent]
    late_commit = fake.add_incident(T0 - timedelta(milliseconds=OVERLAP_MS // 2), contact=str(uuid.uuid4()))
    poll(dataverse(fake), cases, queue, NOW_MS)  # created before the watermark, committed after the last poll
    assert [m["case_id"] for m in queue] == [recent, late_commit]


# --- the webhook ----------------------------------------------------------------------------------

def context(created_ms: int = 1796130000000, **overrides) -> dict:
    """A RemoteExecutionContext as Dataverse posts it for Create of incident (DataContract JSON)."""
    case, contact = str(uuid.uuid4()), str(uuid.uuid4())
    attributes = [
        {"key": "customerid", "value": {"__type": "EntityReference:http://schemas.microsoft.com/xrm/2011/Contracts",
                                        "Id": contact, "KeyAttributes": [], "LogicalName": "contact", "Name": "Jane"}},
        {"key": "ticketnumber", "value": "CAS-01234-X1Y2Z3"},
        {"key": "title", "value": "Cannot reset my password"},
        {"key": "createdon", "value": f"/Date({created_ms})/"},
    ]
    document = {
        "BusinessUnitId": str(uuid.uuid4()), "CorrelationId": str(uuid.uuid4()), "Depth": 1,
        "InitiatingUserId": str(uuid.uuid4()), "MessageName": "Create", "Mode": 1,
        "OperationCreatedOn": "/Date(1796130000500+0000)/", "OrganizationName": "contoso",
        "PrimaryEntityId": case, "PrimaryEntityName": "incident", "Stage": 40,
        "InputParameters": [{"key": "Target", "value": {
            "__type": "Entity:http://schemas.microsoft.com/xrm/2011/Contracts", "Attributes": attributes,
            "Id": case, "LogicalName": "incident"}}],
        "PostEntityImages": [], "PreEntityImages": [], "SharedVariables": [],
    }
    document.update(overrides)
    return document


def test_webhook_create_of_incident_gives_the_case() -> None:
    document = context()
    case, skipped = parse_webhook(json.dumps(document).encode())
    assert skipped == ""
    assert case["case_id"] == document["PrimaryEntityId"]
    assert case["contact"] == document["InputParameters"][0]["value"]["Attributes"][0]["value"]["Id"]
    assert (case["created_ms"], case["ticket"], case["source"]) == (1796130000000, "CAS-01234-X1Y2Z3", "webhook")


def test_webhook_without_createdon_uses_the_operation_time() -> None:
    document = context()
    attributes = document["InputParameters"][0]["value"]["Attributes"]
    document["InputParameters"][0]["value"]["Attributes"] = [a for a in attributes if a["key"] != "createdon"]
    assert parse_webhook(json.dumps(document).encode())[0]["created_ms"] == 1796130000500


def test_webhook_account_customer_is_skipped_with_the_reason() -> None:
    document = context()
    document["InputParameters"][0]["value"]["Attributes"][0]["value"]["LogicalName"] = "account"
    case, skipped = parse_webhook(json.dumps(document).encode())
    assert case["contact"] is None and "account" in skipped


@pytest.mark.parametrize(("document", "field"), [
    (b"not json", "body"),
    (b"[]", "body"),
    (json.dumps(context(MessageName="Update")).encode(), "MessageName"),
    (json.dumps(context(PrimaryEntityName="contact")).encode(), "PrimaryEntityName"),
    (json.dumps(context(PrimaryEntityId="nope")).encode(), "PrimaryEntityId"),
    (json.dumps(context(InputParameters=[])).encode(), "InputParameters.Target"),
])
def test_webhook_anything_else_is_400_naming_the_field(document: bytes, field: str) -> None:
    with pytest.raises(Problem) as caught:
        parse_webhook(document)
    assert caught.value.status == 400
    assert field in {error.field for error in caught.value.errors}
