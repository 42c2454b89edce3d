"""GET /api/health against a running Azurite and against storage that is down."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import azure.functions as func

import function_app
from dci import health
from tests.conftest import Store, connection_string, free_ports


def health_document() -> dict:
    response = function_app.health_details(func.HttpRequest("GET", "http://localhost/api/health/details", body=b""))
    assert response.status_code == 200
    return json.loads(response.get_body())


def test_health_ok_when_queue_and_table_answer(store: Store) -> None:
    document = health_document()
    assert (document["status"], document["checks"]) == ("ok", {"queue": "ok", "table": "ok"})


def test_health_anonymous_answer_is_the_overall_status_only(store: Store) -> None:
    # The attack run read the checks, telemetry mode, portals and their last beacons anonymously.
    response = function_app.health(func.HttpRequest("GET", "http://localhost/api/health", body=b""))
    assert (response.status_code, json.loads(response.get_body())) == (200, {"status": "ok"})
    assert response.headers["Cache-Control"] == "no-store"


def test_health_anonymous_503_says_nothing_of_what_is_down() -> None:
    down = connection_string(*free_ports(3))
    reply = health.status(down)
    document = json.loads(reply.body)
    assert (reply.status, document["type"], reply.headers["Retry-After"]) == (503, "urn:dci:problem:unhealthy", "30")
    assert set(document) == {"type", "title", "status", "detail"}
    assert "queue" not in reply.body.decode() and "unreachable" not in reply.body.decode()
    assert "/api/health/details" in document["detail"]


def test_health_details_take_the_report_routes_access(store: Store, monkeypatch) -> None:
    from dci.settings import get_settings
    from tests.test_access import PRINCIPAL

    monkeypatch.setenv("REPORTS_AUTH", "app-service")
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)
    get_settings.cache_clear()
    try:
        def details(headers: dict[str, str]) -> tuple[int, dict]:
            reply = health.details(headers)
            return reply.status, json.loads(reply.body)

        status, problem = details({"x-ms-client-principal": PRINCIPAL})  # authentication is not on: closed
        assert (status, problem["type"]) == (503, "urn:dci:problem:reports-auth-off") and "checks" not in problem
        monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
        get_settings.cache_clear()
        for forged in ({}, {"x-ms-client-principal": "x"}):
            status, problem = details(forged)
            assert (status, problem["type"]) == (401, "urn:dci:problem:sign-in-required") and "checks" not in problem
        status, document = details({"x-ms-client-principal": PRINCIPAL})
        assert (status, document["checks"]) == (200, {"queue": "ok", "table": "ok"}) and "portals" in document
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_health_says_when_each_portal_last_sent_beacons_and_what_to_check(store: Store) -> None:
    from dci.linker import link
    from dci.storage.interactions import InteractionStore
    from tests.conftest import PORTAL
    from tests.factories import encoded, queued_batch, queued_event

    (quiet,) = health_document()["portals"].values()  # nothing has arrived yet
    assert quiet["last_beacon"] is None and "Content Security Policy" in quiet["check"]
    InteractionStore(store.tables).note_beacon(PORTAL, "2026-01-01T00:00:00.000Z")  # long ago
    assert health_document()["portals"][PORTAL] == {"last_beacon": "2026-01-01T00:00:00.000Z", "check": quiet["check"]}
    received = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    linker_store = InteractionStore(store.tables)
    link(linker_store, encoded(queued_batch([queued_event(1_796_000_000_000)], received_at=received)))
    assert health_document()["portals"] == {PORTAL: {"last_beacon": received}}
    link(linker_store, encoded(queued_batch([queued_event(1_796_000_000_000)], received_at="2026-11-28T00:00:00.000Z")))
    assert health_document()["portals"][PORTAL]["last_beacon"] == received  # within the minute: not written again


def test_health_503_problem_naming_what_is_down() -> None:
    down = connection_string(*free_ports(3))  # nothing listens there
    reply = health.check(down)
    assert reply.status == 503
    assert reply.content_type == "application/problem+json"
    document = json.loads(reply.body)
    assert document["checks"]["queue"].startswith("unreachable")
    assert document["checks"]["table"].startswith("unreachable")
    assert "queue" in document["detail"] and "table" in document["detail"]
    assert reply.headers["Retry-After"] == "30"
