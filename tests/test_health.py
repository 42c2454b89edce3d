"""GET /api/health against a running Azurite and against storage that is down."""

from __future__ import annotations

import json

import azure.functions as func

import function_app
from dci import health
from tests.conftest import Store, connection_string, free_ports


def test_health_ok_when_queue_and_table_answer(store: Store) -> None:
    response = function_app.health(func.HttpRequest("GET", "http://localhost/api/health", body=b""))
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"status": "ok", "checks": {"queue": "ok", "table": "ok"}}


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
