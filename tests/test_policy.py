"""Collect's policy memos (issue 27): bounded whatever arrives, and never a different answer than
working the text out afresh."""

from __future__ import annotations

import pytest

from dci import web
from dci.ingest import collect
from dci.ingest.policy import MEMO_ENTRIES, MEMO_LONGEST, TEXTS, Memo, portals
from dci.ingest.scrub import scrub, scrub_url
from dci.settings import load_settings
from tests.conftest import BROWSER_UA, PORTAL, PORTAL_ORIGIN
from tests.factories import batch, body


def test_policy_memo_holds_at_most_its_entries_and_no_long_text() -> None:
    made: list[str] = []
    memo = Memo(lambda text: made.append(text) or text.upper(), entries=100, longest=10)
    for n in range(250):
        assert memo[f"t{n}"] == f"T{n}"
        assert len(memo) <= 100
    assert memo["x" * 11] == "X" * 11 and "x" * 11 not in memo  # worked out, not kept
    made.clear()
    assert memo["t249"] == "T249" and made == []  # a recent one is remembered


def test_policy_memos_of_collect_are_bounded_at_their_limits() -> None:
    urls = portals((PORTAL,)).urls
    for n in range(MEMO_ENTRIES + 10):
        urls[f"https://{PORTAL}/page/{n}"]
    long_url = f"https://{PORTAL}/" + "a" * MEMO_LONGEST
    assert urls[long_url][1] == long_url
    assert len(urls) <= MEMO_ENTRIES and long_url not in urls
    for n in range(MEMO_ENTRIES + 10):
        TEXTS[f"term {n}"]
    assert len(TEXTS) <= MEMO_ENTRIES


@pytest.mark.parametrize("flood", [0, 10_000])
def test_policy_a_flood_of_new_texts_changes_no_answer(flood: int) -> None:
    urls = portals((PORTAL,)).urls
    personal = f"https://{PORTAL}/search/?q=jane.doe%40example.com+refund"
    query = "refund jane.doe@example.com card 4111 1111 1111 1111"
    for n in range(flood):  # what an attacker's distinct URLs and terms do to the memos
        urls[f"https://{PORTAL}/x/{n}"]
        TEXTS[f"q {n}"]
    assert urls[personal] == (True, scrub_url(personal), None)
    assert TEXTS[query] == scrub(query) == "refund [email] card [card]"
    assert urls["https://evil.example/kb"][0] is False and urls["javascript:alert(1)"] is None


def test_collect_shares_its_answers_per_origin_and_never_across_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    second = "https://second.example.com"
    monkeypatch.setenv("ALLOWED_ORIGINS", f"{PORTAL_ORIGIN},{second}")
    settings = load_settings()
    made: dict[str | None, list[object]] = {}
    for origin in (PORTAL_ORIGIN, second, None, PORTAL_ORIGIN, second, None):
        headers = {"content-type": "text/plain", "user-agent": BROWSER_UA, **({"origin": origin} if origin else {})}
        response = web.respond(collect.handle("POST", headers, body(batch()), settings).reply)
        assert response.status_code == 202
        assert response.headers.get("Access-Control-Allow-Origin") == origin
        assert response.headers["Cache-Control"] == "no-store"
        made.setdefault(origin, []).append(response)
    assert all(first is again for first, again in made.values())  # one answer per origin, made once
    assert len({id(first) for first, _ in made.values()}) == 3


def test_policy_memos_keep_no_text_in_which_something_was_scrubbed() -> None:
    # Personal data the scrubber found must not outlive its request in the process's memory.
    memo = portals((PORTAL,))
    personal_url = f"https://{PORTAL}/search/?q=jane.doe%40example.com"
    fragment = f"https://{PORTAL}/profile#jane.doe@example.com"
    off_portal = "https://www.google.com/search?q=jane+doe+%2B44+20+7946+0958"
    query = "refund jane.doe@example.com"
    clean_url, clean_query = f"https://{PORTAL}/search/?q=vpn+error", "vpn error 809"
    assert memo.urls[personal_url][1] != personal_url and memo.urls[fragment][1] == f"https://{PORTAL}/profile"
    assert memo.referrers[off_portal] == "https://www.google.com/"
    assert TEXTS[query] == "refund [email]"
    memo.urls[clean_url], memo.referrers[clean_url], TEXTS[clean_query]
    assert personal_url not in memo.urls and fragment not in memo.urls and off_portal not in memo.referrers
    assert query not in TEXTS
    assert clean_url in memo.urls and clean_url in memo.referrers and clean_query in TEXTS


@pytest.mark.parametrize("names", ["lower", "Title", "UPPER"])
def test_collect_reads_headers_whatever_their_case(names: str) -> None:
    # The adapter hands collect the Functions type's own dict of headers (lower-cased names).
    import azure.functions as func

    def named(name: str) -> str:
        return {"lower": name.lower(), "Title": name.title(), "UPPER": name.upper()}[names]

    request = func.HttpRequest("POST", "http://localhost/api/collect", body=b"{}", headers={
        named("Origin"): PORTAL_ORIGIN, named("Content-Type"): "text/plain", named("User-Agent"): BROWSER_UA,
        named("Content-Length"): "2"})
    headers = web.headers_of(request)
    assert isinstance(headers, dict)
    assert [headers.get(name) for name in ("origin", "content-type", "user-agent", "content-length")] == [
        PORTAL_ORIGIN, "text/plain", BROWSER_UA, "2"]
