"""Who may read the reports: with REPORTS_AUTH=app-service, only what App Service authentication
itself vouches for (WEBSITE_AUTH_ENABLED, and a principal header that decodes to a principal)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from dci.access import client_principal
from dci.settings import get_settings
from tests.conftest import Store, running_app
from tests.test_insights import C1, Scene, at, search


def encoded(document: object) -> str:
    return base64.b64encode(json.dumps(document).encode()).decode()


PRINCIPAL = encoded({"auth_typ": "aad", "name_typ": "name", "role_typ": "roles",
                     "claims": [{"typ": "name", "val": "Manager"}, {"typ": "roles", "val": "support"}]})


@pytest.mark.parametrize(("header", "valid"), [
    (PRINCIPAL, True),
    (None, False),
    ("", False),
    ("x", False),  # the attack: any value at all
    ("eA==", False),  # base64 of "x"
    (encoded([]), False),
    (encoded({"claims": [{"typ": "name", "val": "x"}]}), False),  # no auth_typ
    (encoded({"auth_typ": "", "claims": [{"typ": "name", "val": "x"}]}), False),
    (encoded({"auth_typ": "aad", "claims": []}), False),
    (encoded({"auth_typ": "aad", "claims": "admin"}), False),
    (encoded({"auth_typ": "aad", "claims": [{"typ": "name"}]}), False),
    (encoded({"auth_typ": "aad", "claims": [{"typ": "name", "val": 1}]}), False),
    (base64.b64encode(b"\xff\xfe").decode(), False),  # not UTF-8
    ("A" * 20_000, False),
])
def test_access_client_principal_accepts_only_a_decoded_principal(header: str | None, valid: bool) -> None:
    assert (client_principal(header) is not None) is valid


@pytest.fixture
def reports_behind_app_service(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    Scene(store).browse("visitor-aaaa", [(at(0, 9), "search", search("my secret search", 2))], contact=C1)
    monkeypatch.setenv("REPORTS_AUTH", "app-service")
    monkeypatch.delenv("WEBSITE_AUTH_ENABLED", raising=False)
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


REPORT_PATHS = [f"/api/contacts/{C1}/timeline?from=2031-01-01&to=2031-12-31", f"/api/cases/{C1}/timeline",
                "/api/insights"]


def test_access_forged_principal_without_app_service_authentication_is_refused(reports_behind_app_service) -> None:
    # The attack: REPORTS_AUTH=app-service on a deployment whose authentication is not actually on,
    # and a made-up header. It used to answer 200 with the contact's activity.
    with running_app() as url:
        for path in REPORT_PATHS:
            for header in ("x", PRINCIPAL):
                status, headers, body = get(url + path, {"X-MS-CLIENT-PRINCIPAL": header})
                assert status == 503, (path, status)
                problem = json.loads(body)
                assert "WEBSITE_AUTH_ENABLED" in problem["detail"] and "REPORTS_AUTH" in problem["detail"]
                assert b"my secret search" not in body
        status, _, body = get(url + "/api/health", {})
        assert (status, json.loads(body)) == (200, {"status": "degraded"})  # anonymous: the status only
        status, _, body = get(url + "/api/health/details", {"X-MS-CLIENT-PRINCIPAL": PRINCIPAL})
        assert status == 503 and "WEBSITE_AUTH_ENABLED" in json.loads(body)["detail"]


def test_access_with_app_service_authentication_needs_a_real_principal(
        reports_behind_app_service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    get_settings.cache_clear()
    with running_app() as url:
        timeline = url + REPORT_PATHS[0]
        for forged in ({}, {"X-MS-CLIENT-PRINCIPAL": "x"}, {"X-MS-CLIENT-PRINCIPAL": encoded({"auth_typ": "aad"})}):
            status, _, body = get(timeline, forged)
            assert status == 401 and b"my secret search" not in body
        status, headers, body = get(timeline, {"X-MS-CLIENT-PRINCIPAL": PRINCIPAL})
        assert status == 200 and "my secret search" in body.decode()
        assert headers["X-Content-Type-Options"] == "nosniff"
        status, _, body = get(url + "/api/health", {})
        assert json.loads(body)["status"] == "ok"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - urllib's signature
        return None


def test_access_a_browser_without_a_sign_in_is_sent_to_it_and_back_a_script_gets_401(
        reports_behind_app_service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    get_settings.cache_clear()
    opener = urllib.request.build_opener(_NoRedirect)
    with running_app() as url:
        for path in REPORT_PATHS:
            for ask in ({"Accept": "text/html,application/xhtml+xml"}, {"Accept": "application/json", "_html": "1"}):
                target = url + path + (("&" if "?" in path else "?") + "format=html" if ask.pop("_html", None) else "")
                try:
                    opener.open(urllib.request.Request(target, headers=ask), timeout=10)
                    raise AssertionError("not redirected")
                except urllib.error.HTTPError as answer:
                    assert answer.code == 302, (path, answer.code)
                    back = target.removeprefix(url)
                    assert answer.headers["Location"] == ("/.auth/login/aad?post_login_redirect_uri="
                                                          + urllib.parse.quote(back, safe=""))
                    assert b"my secret search" not in answer.read()
            status, headers, body = get(url + path, {"Accept": "application/json"})
            assert status == 401 and json.loads(body)["type"].endswith("sign-in-required"), path
        status, _, _ = get(url + "/api/health/details", {"Accept": "text/html"})  # JSON only: 401, no redirect
        assert status == 401


def test_access_every_report_answer_carries_nosniff(store: Store) -> None:
    with running_app() as url:
        for path in [*REPORT_PATHS, f"/api/contacts/{C1}/timeline?to=x"]:
            status, headers, _ = get(url + path, {"Accept": "application/json"})
            assert status in (200, 400, 404), path
            assert headers.get("X-Content-Type-Options") == "nosniff", path
