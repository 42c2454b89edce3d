"""POST /api/collect: check, validate and enrich a beacon batch into one queue message.

No storage I/O: the adapter hands in the method, headers and body, and puts the returned message
on the `portal-events` queue. The one call out is the token check's first fetch of a portal's
public key (then cached; none when PORTAL_PUBLIC_KEY is set). This is the ingest hot path:
per-event work stays in one loop.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from pydantic_core import to_json

from dci import telemetry
from dci.clock import AFTER_ARRIVAL_MS, DAY_MS, epoch_ms, iso_ms, ms_of
from dci.ingest import cors
from dci.ingest.events import EVENT_TYPES, MAX_EVENTS, PATTERN_MESSAGES, CollectBatch, host_of, portal_url_pattern
from dci.ingest.identity import TokenRejected, verifier_for
from dci.ingest.ratelimit import RateLimiter
from dci.ingest.scrub import scrub, scrub_url
from dci.ingest.urls import article_of
from dci.ingest.useragent import classify
from dci.problems import FieldError, Problem
from dci.replies import JSON, Reply, problem_reply
from dci.settings import Settings
from dci.text import one_line, printable_url

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024
# A queue message holds 64 KiB after base64: 48 KiB of text.
MAX_MESSAGE_BYTES = 48 * 1024
MAX_CLOCK_SKEW_MS = 7 * DAY_MS
MAX_EVENT_AGE_MS = 7 * DAY_MS  # the beacon's retry queue drops older events
EVENT_AFTER_SEND_TOLERANCE_MS = AFTER_ARRIVAL_MS
ALLOWED_METHODS = "POST, OPTIONS"
CONTENT_TYPES = ("application/json", "text/plain")
NOT_PORTAL = "host {!r} is not one of the configured portals (PORTAL_ISSUERS)"

_default_limiter = RateLimiter(limit=120, window=60)


@dataclass(frozen=True)
class Outcome:
    """What to answer, and the queue message to send (None: send nothing)."""

    reply: Reply
    message: str | None = None


@dataclass
class Checked:
    """A batch after the policy checks: what is wrong with it, and its events ready to enqueue."""

    errors: list[FieldError]
    events: list[dict[str, Any]]
    skew_ms: int


def handle(
    method: str,
    headers: Mapping[str, str],
    body: bytes,
    settings: Settings,
    *,
    received_at: datetime | None = None,
    limiter: RateLimiter = _default_limiter,
) -> Outcome:
    """Answer one request to the collect endpoint."""
    with telemetry.span("collect", {"http.request.method": method}):
        return _answer(method, headers, body, settings, received_at, limiter)


def _answer(method: str, headers: Mapping[str, str], body: bytes, settings: Settings, received_at: datetime | None,
            limiter: RateLimiter) -> Outcome:
    origin = headers.get("origin")
    try:
        if method == "OPTIONS":
            return Outcome(Reply(204, headers=cors.preflight(origin, settings.allowed_origins, ALLOWED_METHODS)))
        cors_headers = cors.allow(origin, settings.allowed_origins)
    except Problem as problem:
        logger.info("collect refused: %s", problem.detail, extra={"origin": origin})
        _measure_refused(problem)
        return Outcome(problem_reply(problem))
    cors_headers["Cache-Control"] = "no-store"
    try:
        if method != "POST":
            raise Problem(405, f"{method} is not supported here; use POST.", headers={"Allow": ALLOWED_METHODS})
        received = received_at or datetime.now(timezone.utc)
        batch, checked, rejected = parse(headers, body, settings, received)
        wait = limiter.retry_after(batch.visitor)
        if wait:
            raise Problem(429, "Too many batches from this visitor; retry later.", "rate-limited",
                          headers={"Retry-After": str(wait)})
        contact = identify(batch.token, settings) if batch.token else None
        message = enrich(batch, checked, received, headers.get("user-agent"), contact)
    except Problem as problem:
        logger.info("collect rejected (%s): %s", problem.status, problem.detail,
                    extra={"status": problem.status, "fields": [e.field for e in problem.errors]})
        _measure_refused(problem)
        return Outcome(problem_reply(problem, cors_headers))
    _measure_accepted(checked.events, rejected, bot=message is None, signed_in=contact is not None)
    if rejected:
        logger.info("collect accepted %d events and rejected %d", len(batch.events), len(rejected),
                    extra={"status": 202, "fields": [e["field"] for r in rejected for e in r["errors"]]})
        answer = to_json({"accepted": len(batch.events), "rejected": rejected})
        return Outcome(Reply(202, answer, JSON, cors_headers), message)
    return Outcome(Reply(202, _accepted(len(batch.events)), JSON, cors_headers), message)


def _measure_refused(problem: Problem) -> None:
    reason = problem.kind or str(problem.status)
    telemetry.count("dci.batches.rejected", 1, {"dci.reason": reason})
    telemetry.annotate({"dci.outcome": "refused", "dci.reason": reason, "http.response.status_code": problem.status})


def _measure_accepted(events: list[dict[str, Any]], rejected: Rejected, *, bot: bool, signed_in: bool) -> None:
    if not telemetry.on():  # the per-event count below is only for telemetry
        return
    if bot:
        telemetry.count("dci.batches.bots")
    else:
        for kind, count in Counter(event["type"] for event in events).items():
            telemetry.count("dci.events.accepted", count, {"dci.event.type": kind})
    if rejected:
        telemetry.count("dci.events.rejected", len(rejected), {"dci.reason": "invalid-event"})
    telemetry.annotate({"dci.outcome": "bot" if bot else "accepted", "http.response.status_code": 202,
                        "dci.events.accepted": len(events), "dci.events.rejected": len(rejected),
                        "dci.signed_in": signed_in})


@functools.lru_cache(maxsize=MAX_EVENTS + 1)
def _accepted(count: int) -> bytes:
    return b'{"accepted":%d}' % count


Rejected = list[dict[str, Any]]  # [{"index": 2, "errors": [{"field", "pointer", "detail"}]}]


def parse(
    headers: Mapping[str, str], body: bytes, settings: Settings, received: datetime
) -> tuple[CollectBatch, Checked, Rejected]:
    """Content type, size, schema and policy checks.

    A batch whose only faults are in some of its events keeps the others: they are returned with
    the list of rejected events and what was wrong with each. Otherwise a Problem names every bad
    field.
    """
    media_type = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media_type not in CONTENT_TYPES:
        raise Problem(415, f"Send the batch as application/json or text/plain, not {media_type or 'nothing'!r}.",
                      "unsupported-media-type")
    declared = headers.get("content-length")
    if len(body) > MAX_BODY_BYTES or (declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES):
        raise Problem(413, f"The body is larger than {MAX_BODY_BYTES} bytes; send fewer events per batch.",
                      "body-too-large", [FieldError("body", f"at most {MAX_BODY_BYTES} bytes")])
    try:
        batch = CollectBatch.model_validate_json(body)
    except ValidationError as error:
        errors = field_errors(error)
        if any(e.field == "events" and e.detail.startswith("at most") for e in errors):
            raise Problem(413, f"A batch holds at most {MAX_EVENTS} events.", "too-many-events", errors) from None
        errors += _policy_errors_of_invalid(body, received, settings.portal_issuers, {e.field for e in errors})
        return _without_bad_events(body, errors, settings, received)
    checked = check_policy(batch.site, batch.sent_at, batch.events, received, settings.portal_issuers)
    if checked.errors:
        return _without_bad_events(body, checked.errors, settings, received)
    return batch, checked, []


def _invalid(errors: list[FieldError]) -> Problem:
    return Problem(400, "The batch is not a valid version-1 collect body.", "invalid-body", errors)


def _without_bad_events(body: bytes, errors: list[FieldError], settings: Settings,
                        received: datetime) -> tuple[CollectBatch, Checked, Rejected]:
    """The batch without the events `errors` name, when nothing else is wrong and one is left;
    otherwise the 400 Problem naming every bad field. (Only bad batches come here.)"""
    bad: dict[int, list[FieldError]] = {}
    for error in errors:
        index = _event_index(error.field)
        if index is None:  # the envelope itself (site, visitor, sent_at, the events list …)
            raise _invalid(errors)
        bad.setdefault(index, []).append(error)
    document = json.loads(body)  # parsed before: a body that is not JSON has a `body` error
    kept = [event for index, event in enumerate(document["events"]) if index not in bad]
    if not kept:
        raise _invalid(errors)
    document["events"] = kept
    try:
        batch = CollectBatch.model_validate_json(to_json(document))
    except ValidationError:  # cannot happen for per-event faults; refuse rather than guess
        raise _invalid(errors) from None
    checked = check_policy(batch.site, batch.sent_at, batch.events, received, settings.portal_issuers)
    if checked.errors:
        raise _invalid(errors + checked.errors)
    return batch, checked, [{"index": index, "errors": [e.as_dict() for e in faults]}
                            for index, faults in sorted(bad.items())]


def _event_index(field: str) -> int | None:
    """3 for `events[3].url`; None for a field outside the events."""
    if not field.startswith("events["):
        return None
    number = field[len("events["):].partition("]")[0]
    return int(number) if number.isdigit() else None


def check_policy(site: object, sent_at: object, events: list[Any], received: datetime,
                 portal_hosts: tuple[str, ...]) -> Checked:
    """What the schema cannot say (portal hosts from settings, time sanity, unique event ids).

    Rewrites each event in place as it will be enqueued: its time in epoch ms corrected for the
    client's clock skew, an off-portal referrer cut to its origin, search terms and page titles
    made one line (dci/text.py), personal data in them and in URLs (path and query) scrubbed.

    Takes plain values so that it also runs on a body that failed the schema.
    """
    errors = []
    on_portal = portal_url_pattern(portal_hosts).match
    if isinstance(site, str) and site.lower() not in portal_hosts:
        errors.append(FieldError("site", f"{site!r} is not one of the configured portals (PORTAL_ISSUERS)"))
    received_ms = ms_of(received)
    sent_ms = _epoch_ms(sent_at)
    if sent_ms is None:
        errors.append(FieldError("sent_at", "is not a real date and time"))
        sent_ms = received_ms
    elif abs(received_ms - sent_ms) > MAX_CLOCK_SKEW_MS:
        errors.append(FieldError("sent_at", "more than 7 days from the server clock"))
    skew_ms = received_ms - sent_ms
    seen: set[object] = set()
    out = []
    urls: dict[str, str] = {}  # a batch repeats its URLs (a view, its engagement, a click): each scrubbed once
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            continue
        url, target, referrer = event.get("url"), event.get("target"), event.get("referrer")
        if isinstance(url, str) and not on_portal(url):
            errors.append(FieldError(f"events[{index}].url", NOT_PORTAL.format(host_of(url))))
        if isinstance(target, str) and not on_portal(target):
            errors.append(FieldError(f"events[{index}].target", NOT_PORTAL.format(host_of(target))))
        event_id = event.get("id")
        if event_id in seen:
            errors.append(FieldError(f"events[{index}].id", f"duplicate event id {event_id!r} in this batch"))
        seen.add(event_id)
        ts = _epoch_ms(event.get("ts"))
        if ts is None:
            errors.append(FieldError(f"events[{index}].ts", "is not a real date and time"))
            continue
        if sent_ms - ts > MAX_EVENT_AGE_MS:
            errors.append(FieldError(f"events[{index}].ts", "more than 7 days before sent_at"))
        elif ts - sent_ms > EVENT_AFTER_SEND_TOLERANCE_MS:
            errors.append(FieldError(f"events[{index}].ts", "later than sent_at"))
        event["ts"] = ts + skew_ms  # in place: the dicts are fresh from validation, and copies cost
        if isinstance(referrer, str):
            if on_portal(referrer):
                event["referrer"] = _address(referrer, urls)
            else:
                parts = urlsplit(referrer)
                event["referrer"] = f"{parts.scheme}://{parts.netloc}/"  # off-portal: the origin only
        if isinstance(url, str):
            event["url"] = _address(url, urls)
            if event.get("type") == "page_view" and not event.get("article"):
                event["article"] = article_of(url)
        if isinstance(target, str):
            event["target"] = _address(target, urls)
        query, title = event.get("query"), event.get("title")
        if isinstance(query, str):
            event["query"] = scrub(one_line(query))
        if isinstance(title, str):
            event["title"] = scrub(one_line(title))
        out.append(event)
    return Checked(errors, out, skew_ms)


def _address(url: str, done: dict[str, str]) -> str:
    """A URL as stored: without its fragment (the beacon sends none; a crafted one could carry
    anything), invisible characters percent-encoded, personal data in its path and query scrubbed.
    `done` remembers the batch's URLs (a view, its engagement and a click repeat them)."""
    found = done.get(url)
    if found is None:
        found = done[url] = scrub_url(printable_url(url.partition("#")[0] if "#" in url else url))
    return found


def _epoch_ms(timestamp: object) -> int | None:
    if not isinstance(timestamp, str):
        return None
    try:
        return epoch_ms(timestamp)
    except ValueError:  # matches the pattern but is no real instant (month 13, hour 25, …), or no zone
        return None


def _policy_errors_of_invalid(body: bytes, received: datetime, hosts: tuple[str, ...],
                              reported: set[str]) -> list[FieldError]:
    """Policy errors of a batch that also failed the schema, so one answer names every bad field."""
    try:
        document = json.loads(body)
        events = document.get("events")
        checked = check_policy(document.get("site"), document.get("sent_at"),
                               events if isinstance(events, list) else [], received, hosts)
    except Exception:  # noqa: BLE001 - best effort on a body already known to be bad
        return []
    return [error for error in checked.errors if error.field not in reported]


def field_errors(error: ValidationError) -> list[FieldError]:
    """Pydantic's errors as field paths (`events[2].query`) with readable messages."""
    out = []
    for item in error.errors(include_url=False, include_context=True):
        loc = list(item["loc"])
        if len(loc) >= 3 and loc[0] == "events" and loc[2] in EVENT_TYPES:
            del loc[2]  # the discriminator's own step in the path
        kind, message = item["type"], item["msg"]
        if kind == "json_invalid":
            loc, message = ["body"], f"not valid JSON ({item['ctx'].get('error', 'parse error')})"
        elif kind in ("model_type", "model_attributes_type") and not loc:
            loc, message = ["body"], "must be a JSON object"
        elif kind == "union_tag_invalid":
            loc.append("type")
            message = f"unknown event type {item['ctx']['tag']!r}; expected one of {', '.join(EVENT_TYPES)}"
        elif kind == "union_tag_not_found":
            loc.append("type")
            message = "required"
        elif kind == "extra_forbidden":
            message = f"unknown field {loc[-1]!r}"
        elif kind == "too_long" and loc == ["events"]:
            message = f"at most {MAX_EVENTS} events per batch"
        elif kind == "string_pattern_mismatch":
            message = PATTERN_MESSAGES.get(item["ctx"]["pattern"], message)
        elif kind == "missing":
            message = "required"
        elif loc == ["v"]:
            message = "unsupported version; this endpoint speaks version 1"
        out.append(FieldError(_path(loc), message.removeprefix("Value error, ")))
    return out


def _path(loc: list[object]) -> str:
    path = ""
    for step in loc:
        path += f"[{step}]" if isinstance(step, int) else (f".{step}" if path else str(step))
    return path or "body"


def identify(token: str, settings: Settings) -> str | None:
    """The contact id a portal ID token proves, or None (the batch stays anonymous; reason logged)."""
    verifier = verifier_for(settings.portal_issuers, settings.portal_public_key, settings.portal_client_id)
    try:
        return verifier.verify(token).contact
    except TokenRejected as rejected:
        logger.info("collect kept a batch anonymous: token rejected (%s)", rejected, extra={"reason": str(rejected)})
        return None


def enrich(batch: CollectBatch, checked: Checked, received: datetime, user_agent: str | None,
           contact: str | None = None) -> str | None:
    """The `portal-events` queue message for a checked batch; None for bots (accepted, then dropped).

    Event times in the message are epoch milliseconds, already corrected for the client's clock
    skew (`received_at - sent_at`, also given as `skew_ms`).
    """
    client = classify(user_agent)
    if client.bot:
        logger.info("collect dropped a bot batch of %d events", len(batch.events),
                    extra={"bot_events": len(batch.events), "site": batch.site})
        return None
    document: dict[str, Any] = {
        "v": 1,
        "received_at": iso_ms(received),
        "site": batch.site.lower(),
        "visitor": batch.visitor,
        "session": batch.session,
        "client": {"family": client.family, "device": client.device},
        "skew_ms": checked.skew_ms,
        "events": checked.events,
    }
    if contact:
        document["contact"] = contact
    document.update(telemetry.carrier())  # the link and case spans continue this trace
    message = to_json(document).decode()
    if len(message.encode()) > MAX_MESSAGE_BYTES:  # cannot happen within MAX_BODY_BYTES; guard the queue anyway
        raise Problem(413, "The enriched batch would not fit in one queue message; send fewer events.",
                      "body-too-large")
    return message
