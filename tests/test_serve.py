"""`python -m dci serve` as a user runs it: a real process, real sockets, Azurite, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dci.storage.interactions import InteractionStore
from tests.conftest import BROWSER_UA, PORTAL_ORIGIN, Store, free_ports
from tests.factories import batch, body, event
from tests.http import served, start_serve


@pytest.fixture
def served_app(store: Store) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    with served(os.environ) as running:
        yield running


def test_serve_collect_batch_is_queued_and_linked_on_azurite(served_app, store: Store) -> None:
    base, _ = served_app
    document = batch([event("search"), event("page_view")])
    request = urllib.request.Request(f"{base}/collect", data=body(document), method="POST", headers={
        "Content-Type": "text/plain;charset=UTF-8", "Origin": PORTAL_ORIGIN, "User-Agent": BROWSER_UA})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
        assert response.headers["Access-Control-Allow-Origin"] == PORTAL_ORIGIN
    # The served runner's own `link` trigger consumes the queue, racing any reader here: so the
    # batch is looked for where it ends, the interactions table (collect -> queue -> link).
    stored: list[dict] = []
    deadline = time.monotonic() + 20
    while len(stored) < 2 and time.monotonic() < deadline:
        stored = InteractionStore(store.tables).visitor_events(document["visitor"])
        time.sleep(0.2)
    assert sorted(r["id"] for r in stored) == sorted(e["id"] for e in document["events"])


def test_serve_health_and_openapi(served_app) -> None:
    base, _ = served_app
    with urllib.request.urlopen(f"{base}/health", timeout=10) as response:
        assert json.loads(response.read()) == {"status": "ok"}
    with urllib.request.urlopen(f"{base}/health/details", timeout=10) as response:  # no key needed locally
        document = json.loads(response.read())
        assert (document["status"], document["checks"]) == ("ok", {"queue": "ok", "table": "ok"})
        assert set(document["portals"]) == set(os.environ["PORTAL_ISSUERS"].split(","))
    with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as response:
        assert json.loads(response.read())["openapi"] == "3.1.0"


def test_serve_ctrl_c_stops_cleanly_and_logs_each_invocation(served_app) -> None:
    base, process = served_app
    urllib.request.urlopen(f"{base}/openapi.json", timeout=10).read()
    process.send_signal(signal.SIGINT)
    process.wait(timeout=20)
    process.reader.join(timeout=10)
    output = "".join(process.output)
    assert process.returncode == 0, output
    assert "GET /api/openapi.json -> 200" in output
    assert "stopped" in output


def test_serve_bad_settings_exit_with_the_setting_named(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PORTAL_ISSUERS"}
    process = start_serve(["--port", str(free_ports(1)[0]), "--settings", str(tmp_path / "none.json")], env)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "PORTAL_ISSUERS" in output
    assert "Traceback" not in output


def test_serve_reads_local_settings_but_the_environment_wins(tmp_path: Path, store: Store) -> None:
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": {
        "PORTAL_ISSUERS": "from-file.example", "CASE_SETTLE_SECONDS": "not-a-number"}}))
    env = {k: v for k, v in os.environ.items() if k != "CASE_SETTLE_SECONDS"}
    process = start_serve(["--port", str(free_ports(1)[0]), "--settings", str(settings)], env)
    output, _ = process.communicate(timeout=30)
    # The file's bad CASE_SETTLE_SECONDS was applied (so it was read) and is reported by name.
    assert process.returncode == 2 and "CASE_SETTLE_SECONDS" in output
    assert "PORTAL_ISSUERS" not in output  # the environment's value won over the file's


@pytest.mark.parametrize("demo", [False, True], ids=["runner", "demo's Dataverse"])
def test_serve_a_busy_port_is_one_line_and_a_non_zero_exit(tmp_path: Path, demo: bool) -> None:
    import socket

    port, dataverse_port = free_ports(2)
    held = dataverse_port if demo else port
    with socket.socket() as holder:  # something else holds the runner's port (or, with --demo, its Dataverse's)
        holder.bind(("127.0.0.1", held))
        holder.listen()
        process = start_serve(["--port", str(port), *(["--demo", "--dataverse-port", str(dataverse_port)]
                                                      if demo else []),
                               "--settings", str(tmp_path / "none.json")], dict(os.environ))
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines == [f"cannot start: port {held} on 127.0.0.1 is in use; stop what holds it, "
                     "or choose another port (PORT=8080 make dev, or --port)"]


def test_serve_on_another_port_its_demo_portal_is_an_allowed_origin(store: Store, tmp_path: Path) -> None:
    # `PORT=8080 make dev`: local.settings.sample.json names :7071; the demo portal's hosts follow the port.
    env = {k: v for k, v in os.environ.items() if k not in ("PORTAL_ISSUERS", "ALLOWED_ORIGINS", "REPORT_BASE_URL")}
    port = free_ports(1)[0]
    settings = json.loads(Path("local.settings.sample.json").read_text())
    (tmp_path / "local.settings.json").write_text(json.dumps(settings))
    process = start_serve(["--port", str(port), "--settings", str(tmp_path / "local.settings.json")], env)
    try:
        origin = f"http://127.0.0.1:{port}"
        request = urllib.request.Request(f"{origin}/api/collect", method="OPTIONS", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST", "User-Agent": BROWSER_UA})
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert response.headers["Access-Control-Allow-Origin"] == origin
                    break
            except urllib.error.HTTPError as error:  # (an answer: the origin was refused)
                raise AssertionError(f"the preflight was answered {error.code}") from None
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "the runner did not start"
                time.sleep(0.2)  # (a poll's interval: the loop ends when the runner answers)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)


def test_serve_the_demo_seed_follows_the_port_as_serve_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Found from outside: `PORT=8080 make demo` seeded its history under the sample's :7071 hosts.
    from dci.__main__ import _load_local_settings

    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": {
        "PORTAL_ISSUERS": "127.0.0.1:7071,localhost:7071", "ALLOWED_ORIGINS": "http://127.0.0.1:7071",
        "REPORT_BASE_URL": "http://127.0.0.1:7071/api"}}))
    for name in ("PORTAL_ISSUERS", "ALLOWED_ORIGINS", "REPORT_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALLOWED_ORIGINS", "http://127.0.0.1:7071")  # set by the environment: never rewritten
    _load_local_settings(settings, 8080)
    assert os.environ["PORTAL_ISSUERS"] == "127.0.0.1:8080,localhost:8080"
    assert os.environ["REPORT_BASE_URL"] == "http://127.0.0.1:8080/api"
    assert os.environ["ALLOWED_ORIGINS"] == "http://127.0.0.1:7071"
    assert 'python -m dci demo seed --port "$PORT"' in (Path(__file__).parents[1] / "scripts" / "dev.sh").read_text()
