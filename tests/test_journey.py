"""The agent's side, as a new user meets it: `python -m dci serve --demo` (the runner, the demo portal
and a local Dataverse), a customer's journey in Chromium, then the agent opening the case by its
ticket number — one row per thing the customer did — and the short note on the case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BROWSER_UA, ROOT, Store, eventually, free_ports
from tests.http import served
from tests.test_beacon import CHROMIUM, browser  # noqa: F401  (the module's Chromium fixture)

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
                                reason="Chromium is not installed (make test installs it)")


@pytest.fixture
def demo(store: Store) -> Iterator[tuple[str, str, dict[str, str]]]:
    """`serve --demo` on free ports: (the portal's base URL, the local Dataverse's URL, its environment)."""
    port, dataverse_port = free_ports(2)
    host = f"127.0.0.1:{port}"
    env = {**os.environ, "PORTAL_ISSUERS": host, "ALLOWED_ORIGINS": f"http://{host}", "CASE_SETTLE_SECONDS": "3",
           "LAKE_URL": f"az://lake/journey{uuid.uuid4().hex[:8]}", "LAKE_SCHEDULE": "*/2 * * * * *"}
    env.pop("PORTAL_PUBLIC_KEY")  # collect fetches the demo portal's key, as from Power Pages
    env.pop("CASE_SCHEDULE")  # the demo's own: every 5 s
    with served(env, "--demo", "--dataverse-port", str(dataverse_port), port=port):
        yield f"http://{host}", f"http://127.0.0.1:{dataverse_port}", env


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_journey_the_agent_opens_the_case_by_its_ticket_and_reads_what_the_customer_did(
        browser: Any, demo: tuple[str, str, dict[str, str]], tmp_path: Path) -> None:  # noqa: F811
    portal, dataverse, env = demo
    context = browser.new_context(user_agent=BROWSER_UA, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    # The customer: three articles, a search that finds "vpn" and a click on it, one that finds
    # nothing, sign-in, another article, a case.
    page.goto(portal + "/knowledgebase/article/KA-01023/en-us")
    page.goto(portal + "/knowledgebase/article/KA-01025")
    page.goto(portal + "/search/?q=vpn")
    page.click(".search-results a")
    page.wait_for_url("**/knowledgebase/article/KA-01024")
    page.goto(portal + "/search/?q=refund+policy")
    page.wait_for_selector(".search-results .none")
    page.goto(f"{portal}/signin?contact={uuid.uuid4()}")
    page.goto(portal + "/knowledgebase/article/KA-01023/en-us")
    page.goto(portal + "/support/create-case/")
    page.fill("input[name=title]", "VPN drops every hour")
    page.click("button[type=submit]")
    ticket = page.text_content("[data-ticket-number]")

    # The agent has the ticket number only.
    report = f"{portal}/api/cases/{ticket}/timeline?format=html"
    assert eventually(lambda: status_of(report) == 200, timeout=60), status_of(report)

    def complete() -> bool:  # the events sent as the pages were left may come a moment after the case
        with urllib.request.urlopen(report.replace("format=html", "format=json"), timeout=10) as response:
            document = json.loads(response.read())
        return len(document["summary"]["searches"]) == 2 and "case_form" in {i["type"] for i in document["items"]}

    assert eventually(complete, timeout=60)
    agent = context.new_page()
    agent.goto(report)
    agent.screenshot(path=str(tmp_path / "case-report.png"), full_page=True)
    assert (tmp_path / "case-report.png").stat().st_size > 20_000
    rows = agent.locator("table.steps tbody tr")
    kinds = [row.get_attribute("class").split()[0] for row in rows.all()]
    assert kinds[:10] == ["view", "view", "search", "click", "view", "search", "signin", "view", "view", "case_form"]
    # The confirmation page comes just after the case: in its second (`createdon` is whole seconds), or not.
    assert kinds[10:] in ([], ["case_submitted"])
    texts = agent.locator("table.steps tbody tr td:nth-child(3)").all_inner_texts()
    assert texts[:6] == ['Read "Reset your password" (KA-01023)', 'Read "Export your invoices" (KA-01025)',
                         'Searched "vpn" – 1 result', 'Opened search result #1: "Set up the VPN client" (KA-01024)',
                         'Read "Set up the VPN client" (KA-01024)',
                         'Searched "refund policy" – no results']
    assert agent.locator("tr.zero").count() == 1
    assert texts[6] == "Signed in here; the earlier activity on this browser is attributed to them"
    assert agent.inner_text("h1") == f"Case {ticket}: VPN drops every hour"
    assert "searched 2 times (1 found nothing)" in agent.inner_text(".summary")
    assert agent.locator("time[data-at]").first.inner_text() != ""  # shown in the browser's own zone

    # Case -> contact -> case.
    with agent.expect_navigation():
        agent.click(".meta a")
    assert agent.inner_text("h1") == "Contact Demo customer"
    with agent.expect_navigation():
        agent.click("ul.cases a")
    assert agent.inner_text("h1") == f"Case {ticket}: VPN drops every hour"

    # The note on the case: short, and the way to the report.
    with urllib.request.urlopen(f"{dataverse}/notes", timeout=10) as response:
        notes = response.read().decode()
    (block,) = [b for b in notes.split("=== Case ") if b.startswith(ticket)]
    block, _, wall = block.partition("\n--- On the case's timeline: ")
    note = block.splitlines()[1:]
    assert len(note) <= 15, block
    assert note[0].startswith("First seen on the portal") and 'searched 2 times (1 found nothing)' in note[0]
    assert '  - "refund policy" - NO RESULTS' in note
    assert '  - "Set up the VPN client" (KA-01024)' in note
    assert note[-1].startswith(f"Full timeline: {portal}/api/cases/") and note[-1].endswith("/timeline?format=html")
    # Beside it on the case's timeline, the visit as a Portal visit activity (the demo set its table up).
    assert any(line.startswith("First visit to case: ") and line.endswith("(on this timeline as a Portal visit)")
               for line in note), note
    visit = wall.splitlines()
    assert visit[0] == "1 Portal visit", wall
    assert visit[1].split(" (")[0] in ('* Portal visit: searched "vpn", "refund policy", read 3 articles, ' + ending
                                       for ending in ("opened the case form", "submitted the case")), visit[1]
    assert visit[2:6] == ["    " + text for text in texts[:4]]  # its steps, in the report's words
    # The report says so, and links it in Dynamics.
    agent.reload()
    assert agent.locator("#on-dynamics").count() == 1
    link = agent.locator("ul.wall a").get_attribute("href")
    assert link.startswith(f"{dataverse}/main.aspx?pagetype=entityrecord&etn=dci_portalvisit&id=")
    context.close()

    # The demo's lake (every 2 s here): the case and the events of its timeline, read with the CLI.
    def lake(sql: str) -> list[dict[str, Any]]:
        done = subprocess.run([sys.executable, "-m", "dci", "lake", "--settings", "none.json", "query", "--json",
                               sql], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
        return [json.loads(line) for line in done.stdout.splitlines()] if done.returncode == 0 else []

    cases = eventually(lambda: lake(f"SELECT * FROM cases WHERE ticket = '{ticket}' AND searches = 2"), timeout=60)
    assert [(c["zero_result_searches"], c["source"], c["case_form_seen"]) for c in cases] == [(1, "poll", True)]
    with urllib.request.urlopen(report.replace("format=html", "format=json"), timeout=10) as response:
        items = json.loads(response.read())["items"]
    in_case = f"SELECT event_id FROM interactions WHERE ticket = '{ticket}'"
    assert eventually(lambda: {row["event_id"] for row in lake(in_case)} == {item["id"] for item in items}, timeout=60)
