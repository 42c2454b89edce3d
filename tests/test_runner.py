"""The local runner in-process: routes, queue triggers with retry and poison, timers, outputs."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dci.runner import Runner
from dci.runner.config import ConfigError, HostConfig, QueueOptions, load_host_config, timespan_seconds
from dci.runner.http import compile_route
from dci.runner.index import UnsupportedFunction, index
from dci.runner.timers import next_occurrence
from tests.conftest import ROOT, Store, free_ports

HERE = Path(__file__).parent


@pytest.fixture
def runner(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runner]:
    from tests.apps.runner_app import app

    monkeypatch.setenv("TICK_SCHEDULE", "* * * * * *")
    (port,) = free_ports(1)
    r = Runner(app, load_host_config(HERE / "apps" / "host.json"), dict(os.environ), ("127.0.0.1", port))
    r.start()
    yield r
    r.stop(timeout=10)


def get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


# --- configuration ------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "seconds"),
    [("00:00:30", 30), ("00:10:00", 600), ("1.02:00:00", 93600), ("00:00:00.5", 0.5), (2000, 2.0)],
)
def test_timespan_seconds(value: object, seconds: float) -> None:
    assert timespan_seconds(value, "x") == seconds


def test_timespan_rejects_garbage() -> None:
    with pytest.raises(ConfigError, match="visibilityTimeout"):
        timespan_seconds("thirty seconds", "queues.visibilityTimeout")


def test_project_host_json_queue_settings_are_the_chosen_ones() -> None:
    host = load_host_config(ROOT / "host.json")
    assert host.route_prefix == "api"
    assert host.queues == QueueOptions(batch_size=16, max_dequeue_count=5, visibility_timeout=30.0,
                                       max_polling_interval=2.0, message_encoding="base64")
    document = json.loads((ROOT / "host.json").read_text())  # what the host alone reads
    assert document["functionTimeout"] == "00:10:00" and document["extensions"]["queues"]["newBatchThreshold"] == 8


def test_missing_host_json_gives_host_defaults(tmp_path: Path) -> None:
    assert load_host_config(tmp_path / "host.json") == HostConfig()


@pytest.mark.parametrize(
    ("template", "path", "params"),
    [
        ("collect", "/api/collect", {}),
        ("collect", "/api/COLLECT/", {}),
        ("cases/{case_id}/timeline", "/api/cases/abc-1/timeline", {"case_id": "abc-1"}),
        ("items/{id:int}", "/api/items/42", {"id": "42"}),
        ("items/{id}/parts/{part?}", "/api/items/7/parts", {"id": "7", "part": None}),
        ("files/{*rest}", "/api/files/a/b/c", {"rest": "a/b/c"}),
    ],
)
def test_route_templates_match(template: str, path: str, params: dict) -> None:
    match = compile_route(template, "api").match(path)
    assert match is not None
    assert match.groupdict() == params


@pytest.mark.parametrize(
    ("template", "path"),
    [("collect", "/api/collect/x"), ("cases/{id}/timeline", "/api/cases//timeline"), ("collect", "/collect")],
)
def test_route_templates_reject(template: str, path: str) -> None:
    assert compile_route(template, "api").match(path) is None


def test_index_resolves_setting_references_and_refuses_unknown_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.apps.runner_app import app

    monkeypatch.setenv("TICK_SCHEDULE", "*/5 * * * * *")
    tick = next(f for f in index(app) if f.name == "tick")
    assert tick.trigger.props["schedule"] == "*/5 * * * * *"
    monkeypatch.delenv("TICK_SCHEDULE")
    with pytest.raises(UnsupportedFunction, match="TICK_SCHEDULE"):
        index(app)


def test_index_refuses_bindings_it_cannot_serve() -> None:
    import azure.functions as func

    app = func.FunctionApp()

    @app.blob_trigger(arg_name="blob", path="uploads/{name}", connection="AzureWebJobsStorage")
    def on_blob(blob: func.InputStream) -> None: ...

    with pytest.raises(UnsupportedFunction, match="on_blob"):
        index(app)


@pytest.mark.parametrize("schedule", ["*/5 * * * *", "every minute", "0 */5 * * * * *"])
def test_timer_schedule_must_be_six_field_ncrontab(schedule: str) -> None:
    from datetime import datetime, timezone

    with pytest.raises(ValueError, match="NCRONTAB"):
        next_occurrence(schedule, datetime.now(timezone.utc))


def test_timer_next_occurrence_counts_seconds_first() -> None:
    from datetime import datetime, timezone

    after = datetime(2026, 11, 28, 15, 3, 7, tzinfo=timezone.utc)
    assert next_occurrence("0 */5 * * * *", after) == datetime(2026, 11, 28, 15, 5, 0, tzinfo=timezone.utc)
    assert next_occurrence("30 0 9 * * 1-5", after) == datetime(2026, 11, 30, 9, 0, 30, tzinfo=timezone.utc)


# --- running ------------------------------------------------------------------------------------

def test_runner_http_route_params_and_query(runner: Runner) -> None:
    status, headers, body = get(f"{runner.url}/items/42/parts/wheel?colour=red")
    assert status == 200
    assert json.loads(body) == {"route": {"item_id": "42", "part": "wheel"}, "params": {"colour": "red"}}
    assert headers["Content-Type"].startswith("application/json")


def test_runner_unknown_route_and_wrong_method_are_404_as_on_the_host(runner: Runner) -> None:
    assert get(f"{runner.url}/nothing-here")[0] == 404
    request = urllib.request.Request(f"{runner.url}/items/1/parts", method="DELETE")  # a GET route
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as error:
        assert error.code == 404
        assert error.headers["Content-Type"] == "application/problem+json"
    else:
        pytest.fail("DELETE was accepted")


def test_runner_function_exception_is_500_problem_without_stack_trace(runner: Runner) -> None:
    status, headers, body = get(f"{runner.url}/boom")
    assert status == 500
    assert headers["Content-Type"] == "application/problem+json"
    assert b"Traceback" not in body and b"unexpected failure" not in body


def test_runner_queue_trigger_decodes_base64_and_output_binding_encodes(runner: Runner, store: Store) -> None:
    store.send("runner-in", "héllo wörld")
    (message,) = store.wait_for("runner-out", 1)
    assert json.loads(message) == {"body": "héllo wörld", "dequeue_count": 1}
    assert store.raw_messages("runner-in") == []


def test_runner_failing_function_lands_in_poison_after_max_dequeue_count(runner: Runner, store: Store) -> None:
    store.send("runner-fail", '{"v": 1}')
    poisoned = store.wait_for("runner-fail-poison", 1, decode=False)
    assert [poisoned[0]] == [store_encoded('{"v": 1}')]  # copied unchanged
    assert store.raw_messages("runner-fail") == []


def test_runner_message_that_is_not_base64_is_poisoned_not_dropped(runner: Runner, store: Store) -> None:
    store.send_raw("runner-fail", "this is {not} base64!")
    assert store.wait_for("runner-fail-poison", 1, decode=False) == ["this is {not} base64!"]


def test_runner_retries_and_outputs_are_sent_only_for_the_successful_attempt(runner: Runner, store: Store) -> None:
    store.send("runner-flaky", "x")
    store.wait_drained("runner-flaky")  # the second attempt succeeded and its message was deleted
    assert store.messages("runner-out") == ["attempt 2"]
    assert store.raw_messages("runner-flaky-poison") == []


def test_runner_timer_fires_on_schedule_with_output_binding(runner: Runner, store: Store) -> None:
    ticks = store.wait_for("runner-ticks", 2, timeout=10)
    assert len(ticks) >= 2
    assert all(json.loads(t) == {"past_due": False} for t in ticks)


def test_runner_creates_trigger_output_and_poison_queues(runner: Runner, store: Store) -> None:
    names = {q.name for q in store.queues.list_queues()}
    assert {"runner-fail", "runner-fail-poison", "runner-in", "runner-out", "runner-ticks"} <= names


def store_encoded(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(("raw", "value"), [("abc", "abc"), ("a%0A", "a\n"), ("a%20b", "a b"), ("a%2Fb", "a%2Fb"),
                                            ("a%2fb%25", "a%2fb%")])
def test_runner_route_values_are_decoded_as_the_host_decodes_them(raw: str, value: str) -> None:
    from dci.runner.http import _route_value

    assert _route_value(raw) == value


def raw_exchange(runner: Runner, request: bytes, *, close_write: bool = False) -> bytes:
    """Send `request` as bytes on a fresh connection; everything the runner answers until it closes."""
    import socket

    host, port = runner.url.removeprefix("http://").split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        if close_write:
            connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "١٢"])  # (the last: Arabic-Indic digits)
def test_runner_bad_content_length_is_400_and_the_connection_closes(runner: Runner, length: str) -> None:
    # Found by the attack run: "abc" closed the connection without an answer, "-1" left it hanging.
    path = runner.url.split("/", 3)[3]
    answer = raw_exchange(runner, f"POST /{path}/echo HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\nhello"
                          .encode())
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]
    assert b"Content-Length" in answer.split(b"\r\n\r\n", 1)[1]


def test_runner_body_shorter_than_its_content_length_is_400_after_the_read_timeout(
        runner: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner.server, "read_timeout", 1.0)
    path = runner.url.split("/", 3)[3]
    answer = raw_exchange(runner, f"POST /{path}/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc".encode())
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]
    assert b"shorter than its Content-Length" in answer


def test_runner_body_cut_short_by_the_client_is_400(runner: Runner) -> None:
    path = runner.url.split("/", 3)[3]
    answer = raw_exchange(runner, f"POST /{path}/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc".encode(),
                          close_write=True)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]


def test_runner_reads_a_chunked_body_as_the_host_does(runner: Runner) -> None:
    path = runner.url.split("/", 3)[3]
    request = (f"POST /{path}/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
               "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n").encode()
    answer = raw_exchange(runner, request)
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"hello world"), answer
    bad = raw_exchange(runner, f"POST /{path}/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
                       .encode())
    assert bad.startswith(b"HTTP/1.1 400 ")


def test_runner_takes_an_identity_based_storage_connection() -> None:
    # The form the Bicep deploys: it used to stop the runner with "AzureWebJobsStorage … is not set".
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    import function_app

    base = {k: v for k, v in os.environ.items() if not k.startswith("AzureWebJobsStorage")}
    for extra, credential in (({"AzureWebJobsStorage__clientId": "11111111-2222-3333-4444-555555555555"},
                               ManagedIdentityCredential), ({}, DefaultAzureCredential)):
        env = {**base, "AzureWebJobsStorage__accountName": "stcontoso", **extra}
        runner = Runner(function_app.app, load_host_config(ROOT / "host.json"), env, ("127.0.0.1", free_ports(1)[0]))
        try:
            clients = [listener._client for listener in runner.listeners]
            assert {client.url for client in clients} == {"https://stcontoso.queue.core.windows.net/portal-events",
                                                          "https://stcontoso.queue.core.windows.net/cases"}
            assert all(isinstance(client.credential, credential) for client in clients)
            sender = runner._sender.client("AzureWebJobsStorage", "cases")
            assert sender.url == "https://stcontoso.queue.core.windows.net/cases"
        finally:
            runner.server.server_close()
    with pytest.raises(RuntimeError, match="AzureWebJobsStorage__accountName"):
        Runner(function_app.app, load_host_config(ROOT / "host.json"), base, ("127.0.0.1", free_ports(1)[0]))


def test_runner_access_log_names_the_route_template_not_the_path(store: Store,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    # The path holds a contact id and the query a function key: neither belongs in a log line
    # (with telemetry on, the runner's log lines are exported like the app's).
    import uuid

    from tests.conftest import running_app
    from tests.http import call

    contact = str(uuid.uuid4())
    with caplog.at_level("INFO", logger="dci.runner"), running_app() as base:
        status, _ = call("GET", f"{base}/api/contacts/{contact}/timeline?code=not-a-real-key")
    assert status == 200
    assert "GET /api/contacts/{contact_id}/timeline -> 200" in caplog.text
    assert contact not in caplog.text and "not-a-real-key" not in caplog.text
