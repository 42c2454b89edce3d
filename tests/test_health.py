"""GET /api/health against a running Azurite and against storage that is down."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import azure.functions as func

import function_app
from dci import health
from tests.conftest import Store, connection_string, free_ports


def health_document() -> dict:
    response = function_app.health(func.HttpRequest("GET", "http://localhost/api/health", body=b""))
    assert response.status_code == 200
    return json.loads(response.get_body())


def test_health_ok_when_queue_and_table_answer(store: Store) -> None:
    document = health_document()
    assert (document["status"], document["checks"]) == ("ok", {"queue": "ok", "table": "ok"})


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
