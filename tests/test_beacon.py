"""The beacon in real headless Chromium (Debian's), against the runner and its demo portal."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dci.settings import get_settings
from dci.storage.interactions import InteractionStore
from tests.conftest import BROWSER_UA, ROOT, Store, free_ports, running_app
from tests.http import call

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# What every portal page loads (issue 5's budget), and what the search page loads on top of it.
BUDGET_GZIP_BYTES = {"beacon.js": 1500, "beacon-search.js": 500}
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM) and not os.environ.get("CI"),
                                reason="Chromium is not installed (make test installs it)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


@pytest.fixture
def portal(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (port,) = free_ports(1)
    host = f"127.0.0.1:{port}"
    monkeypatch.setenv("PORTAL_ISSUERS", f"portal.example.com,{host}")
    monkeypatch.setenv("ALLOWED_ORIGINS", f"https://portal.example.com,http://{host}")
    monkeypatch.delenv("PORTAL_PUBLIC_KEY")  # collect fetches the demo portal's key, as from Power Pages
    get_settings.cache_clear()
    try:
        with running_app(port, portal=True) as url:
            yield url
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(user_agent=BROWSER_UA)  # a headless UA would be filtered out as a bot
    tab = context.new_page()
    yield tab
    context.close()


def visitor_of(page: Any) -> str:
    return page.evaluate("JSON.parse(localStorage.getItem('pi')).v")


def stored(store: Store, visitor: str, count: int, kind: str | None = None,
           timeout: float = 20) -> list[dict[str, Any]]:
    """The visitor's stored events (of one `kind`, if given) once `count` of them arrived
    (collect -> queue -> linker), or whatever arrived by the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for r in InteractionStore(store.tables).visitor_events(visitor) if kind in (None, r["type"])]
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def leave(page: Any) -> None:
    """Hide the page, as switching tabs or navigating away does: the beacon flushes."""
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    page.evaluate("window.dispatchEvent(new Event('pagehide'))")


def test_beacon_page_views_carry_article_numbers_in_both_url_forms(page: Any, portal: str, store: Store) -> None:
    for path in ("/knowledgebase/article/KA-01023/en-us", "/en-US/knowledgebase/article/KA-01024",
                 "/knowledgebase/article/KA-01025"):
        page.goto(portal + path)
        page.evaluate("PortalInsights.flush()")
    views = stored(store, visitor_of(page), 3, "page_view")
    assert [(r.get("article_number"), r.get("article_lang")) for r in views] == [
        ("KA-01023", "en-us"), ("KA-01024", "en-us"), ("KA-01025", None)]
    assert views[0]["title"] == "Reset your password"


def test_beacon_search_counts_results_that_render_late_and_zero_results(page: Any, portal: str, store: Store) -> None:
    page.goto(portal + "/search/?q=password")
    page.wait_for_selector(".search-results a")
    page.goto(portal + "/search/?q=zzzz")
    page.wait_for_selector(".search-results p")
    page.goto(portal + "/search/?q=e")  # three articles, two on the page: the total counts
    page.wait_for_selector(".search-results a")
    page.evaluate("PortalInsights.flush()")
    searches = stored(store, visitor_of(page), 3, "search")
    assert [(r["query"], r.get("results")) for r in searches] == [("password", 1), ("zzzz", 0), ("e", 3)]
    assert searches[0]["url"].endswith("/search/?q=password")


def test_beacon_search_click_and_case_submission(page: Any, portal: str, store: Store) -> None:
    page.goto(portal + "/search/?q=vpn")
    page.click(".search-results a")
    page.wait_for_url("**/knowledgebase/article/KA-01024")
    page.goto(portal + "/support/create-case/")
    page.fill("input[name=title]", "VPN drops every hour")
    page.click("button[type=submit]")
    page.wait_for_selector("[data-ticket-number]")
    ticket = page.text_content("[data-ticket-number]")
    stored(store, visitor_of(page), 1, "case_submitted")
    rows = stored(store, visitor_of(page), 1, "search_click")
    rows = stored(store, visitor_of(page), 0)
    kinds = [r["type"] for r in rows]
    assert {"search", "search_click", "case_form", "case_submitted"} <= set(kinds)
    click = next(r for r in rows if r["type"] == "search_click")
    assert (click["position"], click["query"]) == (1, "vpn")
    assert click["target"].endswith("/en-US/knowledgebase/article/KA-01024")
    assert next(r for r in rows if r["type"] == "case_submitted")["ticket"] == ticket


def test_beacon_search_left_before_its_results_render_is_not_lost(page: Any, portal: str, store: Store) -> None:
    def never_render(route: Any) -> None:  # a slow search: the results would come after the visitor left
        response = route.fetch()
        route.fulfill(response=response, body=response.text().replace(".innerHTML =", ".dataset.never ="))

    page.route("**/search/?q=slow*", never_render)
    page.goto(portal + "/search/?q=slow+vpn")  # waits for load, and so for beacon-search.js
    page.goto(portal + "/")
    (search,) = stored(store, visitor_of(page), 1, "search")
    assert search["query"] == "slow vpn" and search.get("results") is None


def test_beacon_flushes_engagement_when_the_page_is_left(page: Any, portal: str, store: Store) -> None:
    page.goto(portal + "/knowledgebase/article/KA-01023/en-us")
    page.mouse.wheel(0, 3000)
    page.wait_for_function("performance.now() > 200")  # the page has been shown a while: engaged time
    page.goto(portal + "/")  # navigating away: pagehide flushes with keepalive
    engagement = stored(store, visitor_of(page), 1, "engagement")
    assert engagement and engagement[0]["engaged_ms"] > 0 and engagement[0]["scroll"] > 0


def test_beacon_events_sent_while_the_endpoint_was_down_arrive_later(page: Any, portal: str, store: Store) -> None:
    aborted: list[str] = []
    page.route("**/api/collect", lambda route: (aborted.append(route.request.post_data or ""), route.abort()))
    page.goto(portal + "/knowledgebase/article/KA-01023/en-us")
    page.goto(portal + "/search/?q=password")
    page.wait_for_selector(".search-results a")
    # Every send was refused by the network (the route aborts each one): the events wait in the outbox.
    page.wait_for_function("JSON.parse(localStorage.getItem('pi')).o.some(x => x.e.type === 'search')")
    page.wait_for_load_state("networkidle")
    assert aborted  # the beacon did try, and was refused
    visitor = visitor_of(page)
    assert InteractionStore(store.tables).visitor_events(visitor) == []
    assert page.evaluate("JSON.parse(localStorage.getItem('pi')).o.length") >= 2
    page.unroute("**/api/collect")
    page.goto(portal + "/")
    assert len(stored(store, visitor, 2, "page_view")) >= 2
    assert len(stored(store, visitor, 1, "search")) == 1


def test_beacon_sign_in_links_the_browsing_before_it(page: Any, portal: str, store: Store) -> None:
    contact = str(uuid.uuid4())
    page.goto(portal + "/search/?q=password")
    page.wait_for_selector(".search-results a")
    page.goto(portal + "/knowledgebase/article/KA-01023/en-us")
    page.goto(f"{portal}/signin?contact={contact}")
    page.goto(portal + "/support/create-case/")
    deadline = time.monotonic() + 20
    while True:
        status, document = call("GET", f"{portal}/api/contacts/{contact}/export")
        kinds = {(i["type"], i["attribution"]) for i in document["interactions"]}
        if ("case_form", "verified") in kinds and ("search", "stitched") in kinds or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert ("search", "stitched") in kinds and ("page_view", "stitched") in kinds
    assert ("case_form", "verified") in kinds
    assert page.evaluate("JSON.parse(localStorage.getItem('pi')).k") is not None  # the token is reused, not refetched


DNT = "window.PortalInsightsConfig = {respectDnt: true}; Object.defineProperty(navigator, '%s', {get: () => %s})"


@pytest.mark.parametrize("setup", [
    "window.PortalInsightsConfig = {consent: 'required'}",
    DNT % ("doNotTrack", "'1'"),
    DNT % ("globalPrivacyControl", "true"),
])
def test_beacon_sends_and_stores_nothing_without_consent_or_with_dnt(page: Any, portal: str, setup: str) -> None:
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url) if "/api/collect" in request.url else None)
    page.add_init_script(setup)
    page.goto(portal + "/search/?q=password")
    page.wait_for_selector(".search-results a")
    leave(page)
    # Nothing was kept to send (every send goes through the outbox in localStorage), and nothing is
    # in flight: so nothing can arrive later either.
    assert page.evaluate("localStorage.length") == 0
    page.wait_for_load_state("networkidle")
    assert sent == []


def test_beacon_consent_granted_later_starts_tracking(page: Any, portal: str, store: Store) -> None:
    page.add_init_script("window.PortalInsightsConfig = {consent: 'required'}")
    page.goto(portal + "/knowledgebase/article/KA-01023/en-us")
    page.evaluate("PortalInsights.consent(true)")
    page.evaluate("PortalInsights.flush()")
    assert [r["type"] for r in stored(store, visitor_of(page), 1, "page_view")] == ["page_view"]


@pytest.mark.parametrize("name", ["beacon.js", "beacon-search.js"])
def test_beacon_scripts_are_served_long_cached_with_an_etag(portal: str, name: str) -> None:
    import urllib.request

    with urllib.request.urlopen(f"{portal}/api/{name}", timeout=10) as response:
        etag, cache = response.headers["ETag"], response.headers["Cache-Control"]
        assert response.headers["Content-Type"].startswith("application/javascript")
        assert response.read() == (ROOT / "dci" / "static" / name).read_bytes()
    assert "max-age=86400" in cache
    request = urllib.request.Request(f"{portal}/api/{name}", headers={"If-None-Match": etag})
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as error:
        assert error.code == 304
    else:
        pytest.fail("a current ETag did not get 304")


def test_beacon_loads_its_search_part_only_on_the_search_page(page: Any, portal: str) -> None:
    scripts: list[str] = []
    page.on("request", lambda request: scripts.append(request.url.rsplit("/", 1)[-1])
            if request.resource_type == "script" else None)
    page.goto(portal + "/knowledgebase/article/KA-01023/en-us")
    page.goto(portal + "/search/")  # the search page without a query: nothing to watch
    page.goto(portal + "/search/?q=vpn")
    page.wait_for_selector(".search-results a")
    assert scripts == ["beacon.js", "beacon.js", "beacon.js", "beacon-search.js"]


def test_beacon_inline_install_under_a_nonce_only_csp(page: Any, portal: str, store: Store) -> None:
    """Section 4 of the install guide: both parts pasted inline with the page's nonce."""
    core = (ROOT / "dci" / "static" / "beacon.js").read_text()
    search = (ROOT / "dci" / "static" / "beacon-search.js").read_text()
    html = (f'<!doctype html><title>Inline</title><ul class="search-results"></ul>'
            f'<script nonce="n0nce">window.PortalInsightsConfig = {{endpoint: "{portal}/api/collect"}};</script>'
            f'<script nonce="n0nce">{core}</script><script nonce="n0nce">{search}</script>'
            '<script nonce="n0nce">setTimeout(() => document.querySelector(".search-results").innerHTML ='
            ' "<li><a href=/a>A</a></li><li><a href=/b>B</a></li>", 300)</script>')
    csp = f"default-src 'self'; script-src 'nonce-n0nce'; connect-src 'self' {portal}"
    page.route(portal + "/search/?q=inline", lambda route: route.fulfill(
        body=html, content_type="text/html", headers={"Content-Security-Policy": csp}))
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(portal + "/search/?q=inline")
    page.wait_for_selector(".search-results a")
    searches = stored(store, visitor_of(page), 1, "search")
    assert [(r["query"], r["results"]) for r in searches] == [("inline", 2)]
    assert errors == []


def test_beacon_build_matches_its_source(tmp_path: Any) -> None:
    subprocess.run(["node", "beacon/build.mjs", str(tmp_path)], cwd=ROOT, capture_output=True, check=True)
    for name in BUDGET_GZIP_BYTES:
        assert (tmp_path / name).read_bytes() == (ROOT / "dci" / "static" / name).read_bytes(), "run `make beacon`"


@pytest.mark.parametrize("name", BUDGET_GZIP_BYTES)
def test_beacon_scripts_keep_to_their_size_budget(name: str) -> None:
    size = len(gzip.compress((ROOT / "dci" / "static" / name).read_bytes(), 9))
    assert size <= BUDGET_GZIP_BYTES[name], f"{name} is {size} bytes gzipped; its budget is {BUDGET_GZIP_BYTES[name]}"


# --- Power Pages' default Content Security Policy (sites created after 10 November 2025) ----------

# The HTTP/Content-Security-Policy default the Power Pages docs give; the site serves 'nonce' as a
# fresh 'nonce-…' per response (and injects 'unsafe-eval' beside it unless turned off).
POWER_PAGES_DEFAULT_CSP = ("script-src 'self' content.powerapps.com content.powerapps.us content.appsplatform.us "
                           "content.powerapps.cn 'nonce';style-src 'unsafe-inline' https:;")


def served_policy(setting: str, nonce: str) -> str:
    return setting.replace("'nonce'", f"'nonce-{nonce}' 'unsafe-eval'")


@pytest.fixture
def power_pages(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """The runner as the Function App (http://127.0.0.1:port) and the portal at another origin of
    the same machine (http://localhost:port), so that Chromium's local-network rules stay out of it."""
    (port,) = free_ports(1)
    site = f"localhost:{port}"
    monkeypatch.setenv("PORTAL_ISSUERS", site)
    monkeypatch.setenv("ALLOWED_ORIGINS", f"http://{site}")
    get_settings.cache_clear()
    try:
        with running_app(port) as url:
            yield url, site
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def portal_page(app: str, form: str, nonce: str) -> str:
    """A Power Pages search page with the beacon installed in one of the documented forms."""
    results = ('<script nonce="%NONCE%">setTimeout(() => document.querySelector(".search-results").innerHTML ='
               ' "<p data-search-total>Results 1 – 1 of 7</p><li><a href=/kb/1>One</a></li>", 200)</script>')
    if form == "inline":
        core = (ROOT / "dci" / "static" / "beacon.js").read_text()
        part = (ROOT / "dci" / "static" / "beacon-search.js").read_text()
        install = (f'<script nonce="%NONCE%">window.PortalInsightsConfig = {{endpoint: "{app}/api/collect"}};'
                   f'</script><script nonce="%NONCE%">{core}</script><script nonce="%NONCE%">{part}</script>')
    else:
        install = f'<script src="{app}/api/beacon.js" data-endpoint="{app}/api/collect"></script>'
    page = (f'<!doctype html><title>Search</title><ul class="search-results"></ul>{install}'
            f'<script nonce="%NONCE%">window.portalScriptsRan = true</script>{results}')
    return page.replace("%NONCE%", nonce)


@pytest.mark.parametrize(("form", "setting", "arrives"), [
    ("script tag", POWER_PAGES_DEFAULT_CSP, False),  # blocked by script-src: the docs say why and what to add
    ("script tag, Function App in script-src", None, True),
    ("inline", POWER_PAGES_DEFAULT_CSP, True),  # no policy change needed
])
def test_beacon_installs_under_the_power_pages_default_csp(page: Any, power_pages: tuple[str, str], store: Store,
                                                           form: str, setting: str | None, arrives: bool) -> None:
    app, site = power_pages
    setting = setting or POWER_PAGES_DEFAULT_CSP.replace("content.powerapps.cn", f"content.powerapps.cn {app}")
    nonce = uuid.uuid4().hex
    url = f"http://{site}/search/?q=vpn"
    page.context.grant_permissions(["local-network-access"], origin=f"http://{site}")
    page.route(url, lambda route: route.fulfill(body=portal_page(app, form.split(",")[0], nonce),
                                                content_type="text/html",
                                                headers={"Content-Security-Policy": served_policy(setting, nonce)}))
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if "Content Security Policy" in message.text
            else None)
    page.goto(url)
    page.wait_for_function("window.portalScriptsRan === true")  # the page's own nonce'd scripts run
    if not arrives:
        page.wait_for_load_state("networkidle")
        assert any("beacon.js" in v for v in violations), violations  # the browser says what it blocked
        assert page.evaluate("typeof window.PortalInsights") == "undefined"
        return
    page.wait_for_selector(".search-results a")
    page.evaluate("PortalInsights.flush()")
    visitor = page.evaluate("JSON.parse(localStorage.getItem('pi')).v")
    views, searches = stored(store, visitor, 1, "page_view"), stored(store, visitor, 1, "search")
    assert views and [(s["query"], s.get("results")) for s in searches] == [("vpn", 7)]
    assert violations == []
