"""Telemetry as an operator receives it: the runner in its own process, exporting OTLP/HTTP to a
receiver in the test (tests/otlp.py) — one trace from collect to the assembled case, the metrics
an operator alerts on, structured logs, and nothing personal in any of it."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from dci import telemetry
from dci.runner.dataverse import LocalDataverse
from tests.appinsights import Ingestion
from tests.conftest import ROOT, TEST_PORTAL, Store, eventually
from tests.factories import batch, body, event
from tests.http import call, served
from tests.otlp import Point, Receiver

CONTACT = "0b5e7d2c-4f3a-4e8b-9c61-7a2d5e8f1b94"
TERM = "printer jams on tray three"
TICKET = "CAS-07788-T3L3M3"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


def exporting(receiver: Receiver, **settings: str) -> dict[str, str]:
    """The test environment, exporting to `receiver` at once (not on the SDK's 5 s / 60 s schedule)."""
    return {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_BLRP_SCHEDULE_DELAY": "100", "OTEL_METRIC_EXPORT_INTERVAL": "300", **settings}


def total(points: list[Point], **attributes: object) -> float:
    """A cumulative metric's latest value over the points whose attributes include `attributes`."""
    latest: dict[tuple, float] = {}
    for point in points:
        if all(point.attributes.get(k) == v for k, v in attributes.items()):
            latest[tuple(sorted(point.attributes.items()))] = point.count or point.value
    return sum(latest.values())


def test_telemetry_one_trace_from_collect_to_the_assembled_case_with_metrics_and_logs(
        receiver: Receiver, store: Store) -> None:
    settings = exporting(receiver, CASE_SETTLE_SECONDS="0", INSIGHTS_SCHEDULE="*/1 * * * * *",
                         LAKE_URL=f"az://lake/telemetry{uuid.uuid4().hex[:8]}", LAKE_SCHEDULE="*/1 * * * * *")
    now = datetime.now(timezone.utc)
    signed_in = batch([event("search", at=now - timedelta(minutes=3), query=TERM, results=0),
                       event("page_view", at=now - timedelta(minutes=2)),
                       event("page_view", ts="yesterday"),  # refused alone; the others are kept
                       event("case_submitted", at=now - timedelta(minutes=1), ticket=TICKET)],
                      token=TEST_PORTAL.token(CONTACT))
    with served(settings, "--host-json", str(ROOT / "tests" / "apps" / "host.json"), "--no-portal") as (api, _):
        status, answer = call("POST", f"{api}/collect", body(signed_in))
        assert (status, answer["accepted"], len(answer["rejected"])) == (202, 3, 1)
        assert call("POST", f"{api}/collect", body(batch()), {"User-Agent": "Googlebot/2.1"})[0] == 202
        assert call("POST", f"{api}/collect", body(batch()), {"Content-Type": "text/html"})[0] == 415
        store.send_raw("portal-events", base64.b64encode(b"not a batch").decode())  # poisoned after 3 tries

        def case_spans() -> list:
            return [s for s in receiver.spans() if s.name == "process cases"
                    and s.attributes.get("dci.case.outcome") == "assembled"]

        (assembled,) = eventually(case_spans)
        spans = {s.span_id: s for s in receiver.spans() if s.trace_id == assembled.trace_id}
        link = spans[assembled.parent_id]
        collect = spans[link.parent_id]
        assert (link.name, collect.name) == ("process portal-events", "collect")
        assert collect.parent_id == ""  # the trace starts at collect (in Azure: at the host's request span)
        assert collect.attributes == {"http.request.method": "POST", "dci.outcome": "accepted",
                                      "http.response.status_code": 202, "dci.events.accepted": 3,
                                      "dci.events.rejected": 1, "dci.signed_in": True}
        assert link.attributes == {"messaging.destination.name": "portal-events", "dci.events.written": 3,
                                   "dci.signed_in": True}
        assert assembled.attributes["dci.case.source"] == "portal"
        assert assembled.attributes["dci.timeline.items"] >= 2
        assert {s.kind for s in (link, assembled)} == {5}  # SPAN_KIND_CONSUMER

        def metric(name: str, **attributes: object) -> float:
            return eventually(lambda: total(receiver.points(name), **attributes))

        assert metric("dci.events.accepted", **{"dci.event.type": "search"}) == 1
        assert metric("dci.events.accepted", **{"dci.event.type": "case_submitted"}) == 1
        assert metric("dci.events.rejected", **{"dci.reason": "invalid-event"}) == 1
        assert metric("dci.batches.rejected", **{"dci.reason": "unsupported-media-type"}) == 1
        assert metric("dci.batches.bots") == 1
        assert metric("dci.link.lag") >= 1  # a histogram: how many batches were measured
        assert metric("dci.case.assembly.latency", **{"dci.case.source": "portal"}) == 1
        assert metric("dci.insights.rollup.duration") >= 1
        assert metric("dci.lake.rows", **{"dci.lake.table": "interactions", "dci.lake.change": "inserted"}) >= 3
        assert metric("dci.lake.rows", **{"dci.lake.table": "cases", "dci.lake.change": "inserted"}) == 1
        assert metric("dci.lake.export.lag") >= 1
        failed = {"messaging.destination.name": "portal-events", "error.type": "BadMessage"}
        # A counter that grows attempt by attempt: wait for its final value, not its first.
        assert eventually(lambda: total(receiver.points("dci.messages.failed"), **failed) == 3), \
            total(receiver.points("dci.messages.failed"), **failed)
        assert eventually(lambda: [p for p in receiver.points("dci.queue.poison.depth") if p.attributes == {
            "messaging.destination.name": "portal-events-poison"} and p.value == 1])

        # Structured log fields arrive as attributes.
        linked = eventually(lambda: [attributes for text, attributes in receiver.logs()
                                            if text == "linked 3 events (signed in)"])
        assert (linked[0]["events"], linked[0]["signed_in"]) == (3, True)

    assert receiver.resources()[0]["service.name"] == "portal-insights"
    everything = receiver.everything()
    for personal in (CONTACT, signed_in["visitor"], signed_in["session"], TERM, signed_in["token"]):
        assert personal not in everything


def test_telemetry_counts_dataverse_throttling_and_the_wait_it_costs(receiver: Receiver, store: Store) -> None:
    dataverse = LocalDataverse()
    try:
        settings = exporting(receiver, DATAVERSE_URL=dataverse.url, DATAVERSE_TOKEN="test-token",
                             CASE_SETTLE_SECONDS="0")
        case = dataverse.add_incident(datetime.now(timezone.utc), contact=CONTACT)
        dataverse.fail(429, retry_after=1, method="PATCH")  # the note is throttled once
        with served(settings, "--host-json", str(ROOT / "tests" / "apps" / "host.json"), "--no-portal") as (api, _):
            assert eventually(lambda: dataverse.notes_for(case))
            assert eventually(lambda: total(receiver.points("dci.dataverse.throttled"))) == 1
            waits = eventually(lambda: receiver.points("dci.dataverse.retry.wait"))
            assert waits[-1].count == 1 and waits[-1].value >= 1  # slept the Retry-After second
            assert waits[-1].attributes == {"http.response.status_code": 429}
            latency = eventually(lambda: total(receiver.points("dci.case.assembly.latency"),
                                                      **{"dci.note.written": True}))
            assert latency == 1
            assert eventually(lambda: {"poll cases", "process cases", "Dataverse: write the timeline note"}
                                     <= {s.name for s in receiver.spans()})
        assert CONTACT not in receiver.everything() and case not in [
            value for s in receiver.spans() for value in s.attributes.values()]
    finally:
        dataverse.close()


def test_telemetry_to_application_insights_through_the_distro_records_only_the_apps_own_spans(
        store: Store) -> None:
    ingestion = Ingestion()
    settings = {**os.environ, "APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion.connection_string,
                "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true", "OTEL_BSP_SCHEDULE_DELAY": "100",
                "OTEL_BLRP_SCHEDULE_DELAY": "100", "OTEL_METRIC_EXPORT_INTERVAL": "300"}
    signed_in = batch([event("search", query=TERM, results=0)], token=TEST_PORTAL.token(CONTACT))
    try:
        with served(settings, "--host-json", str(ROOT / "tests" / "apps" / "host.json"), "--no-portal") as (api, _):
            status, health = call("GET", f"{api}/health/details")
            assert (status, health["telemetry"]) == (200, "azure-monitor")
            assert call("POST", f"{api}/collect", body(signed_in))[0] == 202
            assert eventually(lambda: {"collect", "process portal-events"} <= set(spans_of(ingestion)))
            spans = spans_of(ingestion)
            assert spans["collect"]["tags"]["ai.operation.id"] == spans["process portal-events"]["tags"][
                "ai.operation.id"]
            assert eventually(lambda: [m for m in ingestion.items("MetricData")
                                          if m["metrics"][0]["name"] == "dci.events.accepted"])
            logs = eventually(lambda: [m for m in ingestion.items("MessageData")
                                          if m["message"] == "linked 1 events (signed in)"])
            assert logs[0]["properties"]["events"] == "1"
        # The distro's own instrumentations are off: no Table storage or HTTP call is recorded
        # (their URLs carry contact and visitor ids), only the app's spans.
        names = set(spans_of(ingestion))
        assert names <= {"collect", "process portal-events", "rollup insights", "poll cases", "process cases"}, names
        assert CONTACT not in ingestion.everything() and signed_in["visitor"] not in ingestion.everything()
        assert TERM not in ingestion.everything()
    finally:
        ingestion.close()


def spans_of(ingestion: Ingestion) -> dict[str, dict]:
    """The spans Application Insights received (requests and dependencies), by name."""
    return {item["name"]: item for kind in ("RequestData", "RemoteDependencyData") for item in ingestion.items(kind)}


def test_telemetry_off_loads_no_sdk_and_every_call_is_a_no_op() -> None:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("APPLICATIONINSIGHTS_CONNECTION_STRING", "OTEL_EXPORTER_OTLP_ENDPOINT")}
    code = ("import sys, function_app; from dci import telemetry; "
            "print(telemetry.mode(), sorted({m.split('.')[0] for m in sys.modules if m.startswith(('opentelemetry', "
            "'azure.monitor'))}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "off []"
    assert telemetry.mode() == "off" and telemetry.carrier() == {}
    with telemetry.span("x", {"a": 1}) as span:
        span.set({"b": 2})
    telemetry.count("dci.batches.bots")  # no error: nothing is recorded


def test_telemetry_set_up_by_the_worker_is_used_not_repeated(receiver: Receiver) -> None:
    # PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY (or an older worker) configures the SDK before the
    # app is imported: a second set-up would export everything twice.
    code = ("from opentelemetry import trace; from opentelemetry.sdk.trace import TracerProvider; "
            "first = TracerProvider(); trace.set_tracer_provider(first); "
            "import function_app; from dci import telemetry; "
            "print(telemetry.mode(), trace.get_tracer_provider() is first)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=exporting(receiver), capture_output=True,
                            text=True, check=True)
    assert result.stdout.split() == ["otlp", "True"]
    assert "the Python worker configured OpenTelemetry itself" in result.stderr


def test_telemetry_trace_fields_are_not_data() -> None:
    message = {"v": 1, "case_id": "c", "traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01", "tracestate": "x=y"}
    assert telemetry.without_trace(message) == {"v": 1, "case_id": "c"}


def test_telemetry_every_instrument_is_in_the_operations_guide() -> None:
    guide = (ROOT / "docs" / "OPERATIONS.md").read_text()
    missing = [name for name in telemetry.INSTRUMENTS if f"`{name}`" not in guide]
    assert not missing, f"docs/OPERATIONS.md does not describe {missing}"
