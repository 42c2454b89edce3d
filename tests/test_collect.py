"""POST /api/collect through the real adapter, the real Functions types and Azurite."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import azure.functions as func
import pytest

import function_app
from dci.ingest import collect
from dci.ingest.ratelimit import RateLimiter
from dci.runner.config import load_host_config
from dci.runner.index import index
from dci.runner.invoke import Invoker, QueueSender
from dci.settings import load_settings
from tests.conftest import BROWSER_UA, PORTAL, PORTAL_ORIGIN, ROOT, TEST_PORTAL, Store
from tests.factories import BASE, batch, body, event, iso, new_id
from tests.tokens import Portal

QUEUE = "portal-events"
Post = Callable[..., func.HttpResponse]


@pytest.fixture
def post(store: Store) -> Post:
    invoker = Invoker(QueueSender(os.environ, load_host_config(ROOT / "host.json").queues))
    function = next(f for f in index(function_app.app) if f.name == "collect")

    def send(document: Any = None, *, raw: bytes | None = None, content_type: str | None = "application/json",
             origin: str | None = PORTAL_ORIGIN, ua: str | None = BROWSER_UA, method: str = "POST",
             headers: dict[str, str] | None = None) -> func.HttpResponse:
        h = {"user-agent": ua, "content-type": content_type, "origin": origin, **(headers or {})}
        request = func.HttpRequest(method, "http://127.0.0.1:7071/api/collect",
                                   headers={k: v for k, v in h.items() if v is not None},
                                   body=raw if raw is not None else body(document))
        return invoker.call(function, request)

    return send


def problem_of(response: func.HttpResponse) -> dict[str, Any]:
    assert response.headers["Content-Type"] == "application/problem+json"
    document = json.loads(response.get_body())
    assert {"type", "title", "status", "detail"} <= set(document)
    assert document["status"] == response.status_code
    return document


def fields_of(response: func.HttpResponse) -> set[str]:
    return {error["field"] for error in problem_of(response).get("errors", [])}


# --- valid batches ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["page_view", "search", "search_click", "engagement", "case_form", "case_submitted"])
def test_collect_each_event_type_lands_on_the_queue_once(post: Post, store: Store, kind: str) -> None:
    document = batch([event(kind)])
    response = post(document)
    assert response.status_code == 202
    assert json.loads(response.get_body()) == {"accepted": 1}
    messages = store.messages(QUEUE)
    assert len(messages) == 1
    message = json.loads(messages[0])
    assert message["visitor"] == document["visitor"] and message["session"] == document["session"]
    assert [e["id"] for e in message["events"]] == [document["events"][0]["id"]]
    assert message["events"][0]["type"] == kind


def test_collect_text_plain_body_from_send_beacon_is_accepted(post: Post, store: Store) -> None:
    response = post(batch([event("search"), event("page_view")]), content_type="text/plain;charset=UTF-8")
    assert response.status_code == 202
    assert len(json.loads(store.messages(QUEUE)[0])["events"]) == 2


def test_collect_corrects_client_clock_skew(post: Post, store: Store) -> None:
    # The client clock runs two hours behind: event times move forward by the same amount.
    now = datetime.now(timezone.utc)
    client_now = now - timedelta(hours=2)
    document = batch([event("search", at=client_now - timedelta(seconds=30))], sent_at=iso(client_now))
    assert post(document).status_code == 202
    message = json.loads(store.messages(QUEUE)[0])
    corrected = datetime.fromtimestamp(message["events"][0]["ts"] / 1000, timezone.utc)
    assert abs(corrected - (now - timedelta(seconds=30))) < timedelta(seconds=5)
    assert abs(message["skew_ms"] - 7_200_000) < 5_000
    client = datetime.fromisoformat(document["events"][0]["ts"])
    assert message["events"][0]["ts"] - message["skew_ms"] == int(client.timestamp() * 1000)


def test_collect_message_is_enriched_without_the_ip_or_raw_user_agent(post: Post, store: Store) -> None:
    post(batch([event()]), headers={"x-forwarded-for": "203.0.113.7"})
    raw = store.messages(QUEUE)[0]
    message = json.loads(raw)
    assert message["client"] == {"family": "Chrome", "device": "desktop"}
    assert message["site"] == PORTAL
    assert message["received_at"].endswith("Z") and len(message["received_at"]) == 24
    assert "203.0.113.7" not in raw and "Mozilla" not in raw and "token" not in message


def test_collect_keeps_only_the_origin_of_an_off_portal_referrer(post: Post, store: Store) -> None:
    on_portal = event(referrer=f"{BASE}/search/?q=vpn")
    off_portal = event(referrer="https://www.bing.com/search?q=contoso+reset+password+jane%40example.com")
    post(batch([on_portal, off_portal]))
    events = json.loads(store.messages(QUEUE)[0])["events"]
    assert events[0]["referrer"] == f"{BASE}/search/?q=vpn"
    assert events[1]["referrer"] == "https://www.bing.com/"


def test_collect_fifty_events_and_a_body_just_under_the_limit_fit_one_message(post: Post, store: Store) -> None:
    events = [event("search", query="q" * 220, url=f"{BASE}/search/?q=" + "q" * 220) for _ in range(50)]
    document = batch(events)
    assert collect.MAX_BODY_BYTES - 3000 < len(body(document)) <= collect.MAX_BODY_BYTES
    assert post(document).status_code == 202
    assert len(json.loads(store.messages(QUEUE)[0])["events"]) == 50


def test_collect_bot_gets_the_normal_answer_and_nothing_is_enqueued(post: Post, store: Store) -> None:
    ua = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    human, bot = post(batch()), post(batch(), ua=ua)
    assert (bot.status_code, bot.get_body()) == (human.status_code, human.get_body())
    assert len(store.messages(QUEUE)) == 1


def test_collect_allowed_origin_gets_cors_headers(post: Post) -> None:
    response = post(batch())
    assert response.headers["Access-Control-Allow-Origin"] == PORTAL_ORIGIN
    assert response.headers["Vary"] == "Origin"


def test_collect_without_origin_header_is_accepted_without_cors_headers(post: Post) -> None:
    response = post(batch(), origin=None)
    assert response.status_code == 202
    assert "Access-Control-Allow-Origin" not in response.headers


def test_collect_preflight_from_allowed_origin(post: Post) -> None:
    response = post(raw=b"", method="OPTIONS", content_type=None,
                    headers={"access-control-request-method": "POST"})
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == PORTAL_ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert int(response.headers["Access-Control-Max-Age"]) > 0


@pytest.mark.parametrize("method", ["POST", "OPTIONS"])
def test_collect_foreign_origin_is_refused_and_nothing_enqueued(post: Post, store: Store, method: str) -> None:
    response = post(batch(), origin="https://evil.example", method=method)
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "evil.example" in problem_of(response)["detail"]
    assert store.messages(QUEUE) == []


# --- invalid batches ----------------------------------------------------------------------------

def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        target: Any = document
        steps = path.replace("]", "").replace("[", ".").split(".")
        for step in steps[:-1]:
            target = target[int(step)] if step.isdigit() else target[step]
        last = steps[-1]
        if value is _DELETE:
            del target[last]
        elif last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value
    return mutate


_DELETE = object()
_YEARS_AGO = iso(datetime.now(timezone.utc) - timedelta(days=3 * 365))
_YEARS_AHEAD = iso(datetime.now(timezone.utc) + timedelta(days=3 * 365))

INVALID = [
    # (case, mutation, field named in errors)
    ("version is a string", _set("v", "1"), "v"),
    ("unsupported version", _set("v", 2), "v"),
    ("visitor missing", _set("visitor", _DELETE), "visitor"),
    ("visitor not key-safe", _set("visitor", "abc/def#ghi?jkl"), "visitor"),
    ("visitor a number", _set("visitor", 12345678), "visitor"),
    ("unknown top-level field", _set("ip", "203.0.113.7"), "ip"),
    ("unknown event field", _set("events[0].color", "red"), "events[0].color"),
    ("unknown event type", _set("events[0].type", "hover"), "events[0].type"),
    ("event type missing", _set("events[0].type", _DELETE), "events[0].type"),
    ("events empty", _set("events", []), "events"),
    ("events not a list", _set("events", {"0": {}}), "events"),
    ("foreign url host", _set("events[0].url", "https://evil.example/kb"), "events[0].url"),
    ("javascript url", _set("events[0].url", "javascript:alert(1)"), "events[0].url"),
    ("site not a portal", _set("site", "evil.example"), "site"),
    ("huge title", _set("events[0].title", "t" * 5000), "events[0].title"),
    ("url too long", _set("events[0].url", BASE + "/" + "a" * 3000), "events[0].url"),
    ("naive timestamp", _set("events[0].ts", "2026-11-28T15:00:00"), "events[0].ts"),
    ("timestamp not a date", _set("events[0].ts", "yesterday"), "events[0].ts"),
    ("timestamp years ago", _set("events[0].ts", _YEARS_AGO), "events[0].ts"),
    ("timestamp years ahead", _set("events[0].ts", _YEARS_AHEAD), "events[0].ts"),
    ("sent_at years off", _set("sent_at", _YEARS_AGO), "sent_at"),
    ("token not a string", _set("token", 42), "token"),
    ("version true", _set("v", True), "v"),  # true == 1 in Python: a Literal[1] took it
    ("version 1.0", _set("v", 1.0), "v"),
    ("version 2", _set("v", 2), "v"),
    ("article number unsafe", _set("events[0].article.number", "../../etc"), "events[0].article.number"),
]


@pytest.mark.parametrize(("case", "mutate", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_collect_invalid_batch_is_400_naming_the_field(post: Post, store: Store, case: str, mutate, field: str) -> None:
    document = batch([event("page_view")])
    mutate(document)
    response = post(document)
    assert response.status_code == 400, response.get_body()
    assert field in fields_of(response)
    assert store.messages(QUEUE) == []


INVALID_EVENTS = [
    ("search results negative", "search", {"results": -1}, "events[0].results"),
    ("search results a string", "search", {"results": "3"}, "events[0].results"),
    ("search query empty", "search", {"query": ""}, "events[0].query"),
    ("search query huge", "search", {"query": "x" * 10_000}, "events[0].query"),
    ("click position zero", "search_click", {"position": 0}, "events[0].position"),
    ("click target foreign", "search_click", {"target": "https://evil.example/"}, "events[0].target"),
    ("engagement scroll over 100", "engagement", {"scroll": 101}, "events[0].scroll"),
    ("case ticket missing", "case_submitted", {"ticket": None}, "events[0].ticket"),
]


@pytest.mark.parametrize(("case", "kind", "fields", "field"), INVALID_EVENTS, ids=[c[0] for c in INVALID_EVENTS])
def test_collect_invalid_event_fields_are_named(post: Post, case: str, kind: str, fields: dict, field: str) -> None:
    response = post(batch([event(kind, **fields)]))
    assert response.status_code == 400
    assert field in fields_of(response)


def test_collect_duplicate_event_id_rejects_the_second_and_keeps_the_rest(post: Post, store: Store) -> None:
    first = event()
    response = post(batch([first, event("search"), {**event("search"), "id": first["id"]}]))
    assert response.status_code == 202
    assert json.loads(response.get_body())["rejected"] == [{"index": 2, "errors": [
        {"field": "events[2].id", "pointer": "/events/2/id",
         "detail": f"duplicate event id {first['id']!r} in this batch"}]}]
    [message] = store.messages(QUEUE)
    ids = [e["id"] for e in json.loads(message)["events"]]
    assert len(ids) == 2 and ids[0] == first["id"] and ids[1] != first["id"]


def test_collect_keeps_the_valid_events_of_a_batch_and_names_the_rejected(post: Post, store: Store) -> None:
    good = [event("page_view"), event("search", query="vpn", results=2), event("case_form")]
    bad = [event("search", results=-1), event("page_view", url="https://evil.example/x"),
           {**event("engagement"), "engaged_ms": "long"}]
    response = post(batch([good[0], bad[0], good[1], bad[1], bad[2], good[2]]))
    assert response.status_code == 202
    body = json.loads(response.get_body())
    assert body["accepted"] == 3
    assert [(r["index"], [e["field"] for e in r["errors"]]) for r in body["rejected"]] == [
        (1, ["events[1].results"]), (3, ["events[3].url"]), (4, ["events[4].engaged_ms"])]
    [message] = store.messages(QUEUE)
    assert [e["id"] for e in json.loads(message)["events"]] == [e["id"] for e in good]


def test_collect_a_batch_with_no_valid_event_left_is_400(post: Post, store: Store) -> None:
    response = post(batch([event("search", results=-1), event("page_view", url="https://evil.example/x")]))
    assert response.status_code == 400
    assert fields_of(response) == {"events[0].results", "events[1].url"}
    assert store.messages(QUEUE) == []


def test_collect_a_bad_envelope_refuses_the_whole_batch_even_with_good_events(post: Post, store: Store) -> None:
    document = batch([event("page_view"), event("search", results=-1)])
    document["site"] = "evil.example"
    response = post(document)
    assert response.status_code == 400
    assert fields_of(response) == {"site", "events[1].results"}
    assert store.messages(QUEUE) == []


def test_collect_every_bad_field_is_reported_at_once(post: Post) -> None:
    document = batch([event("search", results=-1), event("page_view", url="https://evil.example/")])
    document["visitor"] = "no"
    assert {"visitor", "events[0].results", "events[1].url"} <= fields_of(post(document))


@pytest.mark.parametrize(
    ("raw", "field"),
    [(b"{not json", "body"), (b"[1,2,3]", "body"), (b"", "body"), (b"\xff\xfe\x00", "body"), (b"null", "body")],
)
def test_collect_unparseable_body_is_400(post: Post, raw: bytes, field: str) -> None:
    response = post(raw=raw)
    assert response.status_code == 400
    assert fields_of(response) == {field}


def test_collect_more_than_fifty_events_is_413(post: Post, store: Store) -> None:
    response = post(batch([event() for _ in range(51)]))
    assert response.status_code == 413
    assert "events" in fields_of(response)
    assert store.messages(QUEUE) == []


def test_collect_body_over_32_kib_is_413(post: Post) -> None:
    document = batch([event(title="t" * 500) for _ in range(40)])
    document["events"][0]["title"] = "x" * 20_000
    assert len(body(document)) > collect.MAX_BODY_BYTES
    response = post(document)
    assert response.status_code == 413
    assert fields_of(response) == {"body"}


def test_collect_declared_length_over_limit_is_413_before_parsing(post: Post) -> None:
    response = post(raw=b"{}", headers={"content-length": str(10 * 1024 * 1024)})
    assert response.status_code == 413


@pytest.mark.parametrize("content_type", ["application/xml", "multipart/form-data; boundary=x", None])
def test_collect_wrong_content_type_is_415(post: Post, content_type: str | None) -> None:
    response = post(batch(), content_type=content_type)
    assert response.status_code == 415
    problem_of(response)


def test_collect_other_methods_are_405_with_allow() -> None:
    outcome = collect.handle("PUT", {"origin": PORTAL_ORIGIN}, b"", load_settings())
    assert outcome.reply.status == 405
    assert outcome.reply.headers["Allow"] == "POST, OPTIONS"
    assert outcome.message is None


def test_collect_rate_limit_is_429_with_retry_after() -> None:
    limiter = RateLimiter(limit=2, window=60)
    document = batch()
    headers = {"content-type": "application/json", "user-agent": BROWSER_UA, "origin": PORTAL_ORIGIN}
    statuses = [collect.handle("POST", headers, body({**document, "events": [event()]}), load_settings(),
                               limiter=limiter) for _ in range(3)]
    assert [o.reply.status for o in statuses] == [202, 202, 429]
    assert int(statuses[2].reply.headers["Retry-After"]) >= 1
    assert statuses[2].message is None
    other_visitor = collect.handle("POST", headers, body(batch(visitor=new_id())), load_settings(), limiter=limiter)
    assert other_visitor.reply.status == 202


# --- identity and scrubbing ---------------------------------------------------------------------

def test_collect_verified_token_links_the_batch_to_its_contact(post: Post, store: Store) -> None:
    contact = new_id()[:8] + "-0000-4000-8000-000000000000"
    response = post(batch([event()], token=TEST_PORTAL.token(contact)))
    assert response.status_code == 202
    message = json.loads(store.messages(QUEUE)[0])
    assert message["contact"] == contact
    assert "token" not in message


def _padded(token: str) -> str:
    return ".".join(part + "=" * (-len(part) % 4) for part in token.split("."))


# Found by the attack run: the last four were answered 400 (and the beacon drops a refused batch),
# or, for the GUID followed by a newline, 202 and then poison in the linker.
BAD_TOKENS = {
    "forged": lambda: Portal(PORTAL).token(),  # right issuer, wrong key
    "expired": lambda: TEST_PORTAL.token(issued=time.time() - 7200),
    "other portal": lambda: Portal("evil.example").token(),
    "not a JWT": lambda: "not a token",
    "dots only": lambda: "..",
    "base64 padding": lambda: _padded(TEST_PORTAL.token(new_id())),
    "sub is a GUID and a newline": lambda: TEST_PORTAL.token(new_id() + "\n"),
    "longer than 8 KiB": lambda: "a." * 5000 + "a",
}


@pytest.mark.parametrize("kind", sorted(BAD_TOKENS))
def test_collect_bad_token_keeps_the_events_as_anonymous(post: Post, store: Store, kind: str, caplog) -> None:
    caplog.set_level("INFO", logger="dci")
    token = BAD_TOKENS[kind]()
    document = batch([event("search"), event()], token=token)
    assert post(document).status_code == 202
    message = json.loads(store.messages(QUEUE)[0])
    assert "contact" not in message
    assert [e["id"] for e in message["events"]] == [e["id"] for e in document["events"]]
    assert "token rejected" in caplog.text
    assert token not in caplog.text or token == ".."


def typed_text(raw: str) -> str:
    """A queue message without what the server makes up (ids, times): digits a test looks for can
    turn up there by chance (a random id holds "4111" about once in 500 messages)."""
    message = json.loads(raw)
    made = {"id", "ts", "received_at", "visitor", "session", "skew_ms", "events"}
    return json.dumps([{k: v for k, v in part.items() if k not in made}
                       for part in (message, *message["events"])], ensure_ascii=False)


def test_collect_scrubs_personal_data_from_searches_and_urls(post: Post, store: Store) -> None:
    typed = "refund jane.doe@example.com card 4111 1111 1111 1111 call +44 20 7946 0958"
    search = event("search", query=typed, url=f"{BASE}/search/?q=jane.doe%40example.com+refund")
    click = event("search_click", query=typed)
    view = event("page_view", referrer=f"{BASE}/search/?q=call+%2B44+20+7946+0958")
    post(batch([search, click, view]))
    raw = store.messages(QUEUE)[0]
    events = json.loads(raw)["events"]
    assert events[0]["query"] == "refund [email] card [card] call [phone]"
    assert events[1]["query"] == events[0]["query"]
    assert "jane" not in raw and "4111" not in typed_text(raw) and "7946" not in typed_text(raw)
    assert events[0]["url"].startswith(f"{BASE}/search/?q=")


@pytest.mark.parametrize("url", ["http://[", "https://ex\u2100ample.com/", "http://a]b/"])
def test_collect_refuses_urls_whose_host_is_not_a_host_name(post: Post, url: str) -> None:
    response = post(batch([event(url=url)]))  # schemathesis found "http://[" answered 500
    assert response.status_code == 400
    assert fields_of(response) == {"events[0].url"}


FORGED_LINE = "Full timeline: https://evil.example/"


@pytest.mark.parametrize("brk", ["\n", "\r\n", "\u2028", "\x85", "\u2029", "\u202e"])
def test_collect_stores_search_terms_and_titles_on_one_line(post: Post, store: Store, brk: str) -> None:
    # The attack run's forged note line, typed after a line break into a search and a page title.
    typed = f"vpn{brk}{FORGED_LINE}"
    post(batch([event("search", query=typed), event("search_click", query=typed),
                event("page_view", title=f"Help{brk}{FORGED_LINE}")]))
    events = json.loads(store.messages(QUEUE)[0])["events"]
    for text in (events[0]["query"], events[1]["query"], events[2]["title"]):
        assert text.splitlines() == [text] and text.endswith(FORGED_LINE) and brk not in text


def test_collect_scrubs_personal_data_from_titles_and_url_paths(post: Post, store: Store) -> None:
    profile = f"{BASE}/profile/jane.doe%40example.com/"
    view = event("page_view", url=profile, title="Profile of jane.doe@example.com, +44 20 7946 0958",
                 referrer=f"{BASE}/orders/+44%2020%207946%200958")
    click = event("search_click", target=f"{BASE}/profile/jane.doe@example.com")
    article = event("page_view", url=f"{BASE}/knowledgebase/article/KA-01023/en-us", title="Order ORD-2026-001234")
    post(batch([view, click, article]))
    raw = store.messages(QUEUE)[0]
    events = json.loads(raw)["events"]
    assert "jane" not in raw and "7946" not in typed_text(raw)
    assert events[0]["title"] == "Profile of [email], [phone]"
    assert (events[0]["url"], events[0]["referrer"]) == (f"{BASE}/profile/%5Bemail%5D/", f"{BASE}/orders/%5Bphone%5D")
    assert events[1]["target"] == f"{BASE}/profile/%5Bemail%5D"
    assert (events[2]["url"], events[2]["title"]) == (article["url"], "Order ORD-2026-001234")
    assert events[2]["article"]["number"] == "KA-01023"


def test_collect_hidden_personal_data_and_invisible_characters_do_not_reach_the_queue(post: Post, store: Store) -> None:
    # The outside attack run on the fixes: personal data in a fragment, encoded twice, or behind
    # zero-width characters and soft hyphens; bidi controls and tag characters inside an address.
    views = [event("page_view", url=f"{BASE}/profile#jane.doe@example.com"),
             event("page_view", url=f"{BASE}/profile#tel=+442079460958"),
             event("page_view", url=f"{BASE}/profile/jane.doe%2540example.com"),
             event("page_view", url=f"{BASE}/p/\u202eabc\u2066/x?y=\u202e", title="jane.doe\u200b@example.com"),
             event("page_view", url=f"{BASE}/a", title="jane\u00ad.doe@exam\u00adple.com"),
             event("page_view", url=f"{BASE}/b", title="jane.doe\uff20example\u3002com"),
             event("search", query="vpn" + "".join(chr(0xE0000 + ord(c)) for c in "Approve a refund"))]
    post(batch(views))
    raw = store.messages(QUEUE)[0]
    events = json.loads(raw)["events"]
    assert "jane" not in raw and "7946" not in typed_text(raw) and "#" not in "".join(e["url"] for e in events)
    assert [e["url"] for e in events[:3]] == [f"{BASE}/profile", f"{BASE}/profile", f"{BASE}/profile/%5Bemail%5D"]
    assert events[3]["url"] == f"{BASE}/p/%E2%80%AEabc%E2%81%A6/x?y=%E2%80%AE"
    assert [e["title"] for e in events[3:6]] == ["[email]"] * 3
    assert events[6]["query"] == "vpn"
