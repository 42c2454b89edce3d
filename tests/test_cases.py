"""Case sources: the poller (paging, throttling, crash and restart), the webhook, portal events."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from dci.cases import OVERLAP_MS, parse_webhook, poll
from dci.dataverse.client import Dataverse, DataverseError, TokenSource, session
from dci.problems import Problem
from dci.runner.dataverse import LocalDataverse
from dci.storage.cases import PIECE_UNITS, TRANSACTION_BYTES, CaseStore, pieces, transactions
from tests.conftest import Store

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
NOW_MS = int((T0 + timedelta(hours=1)).timestamp() * 1000)


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


# --- timelines in the case store: any length, old rows, erasure ----------------------------------------------------

def long_document(items: int, text: str = "x") -> dict:
    return {"case": {"case_id": "c"}, "summary": {"sentence": "s"}, "sessions": [],
            "items": [{"id": f"event-{i:06}", "url": "https://p/" + text * 2_000} for i in range(items)]}


def test_case_store_keeps_a_timeline_longer_than_a_property_holds(cases: CaseStore) -> None:
    # The attack: a journey whose JSON passes the 32,768 UTF-16 code units of one string property
    # (here with characters beyond the BMP, two units each) used to be refused (PropertyValueTooLarge),
    # and the case went back to its queue for good.
    case_id = str(uuid.uuid4())
    document = long_document(200, "\U0001F600")
    cases.save_timeline(case_id, document, 1, "d1", "note-1")
    stored = cases.timeline(case_id)
    assert stored["document"] == document
    assert (stored["version"], stored["digest"], stored["note_id"]) == (1, "d1", "note-1")
    shorter = long_document(20)
    cases.save_timeline(case_id, shorter, 2, "d2", "note-1")  # re-assembled shorter: no piece of v1 stays
    assert cases.timeline(case_id)["document"] == shorter
    assert cases._timeline_keys(case_id) == ["timeline", "timeline-000002-0001"]


def test_case_store_reads_a_timeline_of_the_one_row_format(cases: CaseStore) -> None:
    case_id = str(uuid.uuid4())
    cases._upsert("timelines", {"PartitionKey": case_id, "RowKey": "timeline", "version": 3, "digest": "d",
                                "document": json.dumps({"items": [{"id": "e1"}]})})
    assert cases.timeline(case_id)["document"] == {"items": [{"id": "e1"}]}
    assert cases.timeline(case_id)["version"] == 3
    cases.save_timeline(case_id, long_document(40), 4, "d4", None)
    assert cases.timeline(case_id)["document"] == long_document(40)


def test_case_store_erasure_deletes_every_row_of_a_long_timeline(cases: CaseStore) -> None:
    contact = str(uuid.uuid4())
    case_id = str(uuid.uuid4())
    cases.remember({"case_id": case_id, "created_ms": NOW_MS, "contact": contact, "ticket": "CAS-1",
                    "source": "poll"})  # type: ignore[typeddict-item]
    cases.save_timeline(case_id, long_document(300), 1, "d", None)
    assert len(cases._timeline_keys(case_id)) > 2
    assert cases.forget_contact(contact) == 1
    assert cases._timeline_keys(case_id) == [] and cases.timeline(case_id) is None and cases.case(case_id) is None


@pytest.mark.parametrize("text", ["", "abc", "a" * 70_000, "\U0001F600" * 40_000, "a" + "\U0001F600" * 16_000 + "b"])
def test_case_store_pieces_keep_to_the_property_limit_and_join_back(text: str) -> None:
    parts = pieces(text)
    assert "".join(parts) == text
    assert all(0 < len(part.encode("utf-16-le")) // 2 <= PIECE_UNITS for part in parts)


def test_case_store_transactions_keep_to_100_operations_and_the_request_limit() -> None:
    big = [("upsert", {"PartitionKey": "c", "RowKey": f"r{i}", "document": "\u00e9" * 16_000}) for i in range(150)]
    groups = transactions(big)
    assert [op for group in groups for op in group] == big
    assert all(len(group) <= 100 for group in groups)
    assert all(sum(len(json.dumps(op[1])) for op in group) <= TRANSACTION_BYTES for group in groups)
    small = [("upsert", {"PartitionKey": "c", "RowKey": f"r{i}"}) for i in range(150)]
    assert [len(group) for group in transactions(small)] == [100, 50]
