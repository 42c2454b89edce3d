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
from datetime import datetime, timezone
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError
from pydantic_core import to_json

from dci import telemetry
from dci.clock import iso_ms
from dci.ingest import cors
from dci.ingest.events import EVENT_TYPES, MAX_EVENTS, PATTERN_MESSAGES, CollectBatch
from dci.ingest.identity import TokenRejected, verifier_for
from dci.ingest.policy import Checked, check_policy, typed
from dci.ingest.ratelimit import RateLimiter
from dci.ingest.useragent import classify
from dci.problems import FieldError, Problem
from dci.replies import JSON, Reply, problem_reply
from dci.settings import Settings

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024
# A queue message holds 64 KiB after base64: 48 KiB of text.
MAX_MESSAGE_BYTES = 48 * 1024
ALLOWED_METHODS = "POST, OPTIONS"
CONTENT_TYPES = ("application/json", "text/plain")

_default_limiter = RateLimiter(limit=120, window=60)


class Outcome(NamedTuple):
    """What to answer, and the queue message to send (None: send nothing). (A tuple: made for every
    request, and a frozen dataclass costs a µs to make.)"""

    reply: Reply
    message: str | None = None


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
    if not telemetry.on():  # (no span to open: the hot path skips the context manager)
        return _answer(method, headers, body, settings, received_at, limiter)
    with telemetry.span("collect", {"http.request.method": method}):
        return _answer(method, headers, body, settings, received_at, limiter)


def _answer(method: str, headers: Mapping[str, str], body: bytes, settings: Settings, received_at: datetime | None,
            limiter: RateLimiter) -> Outcome:
    origin = headers.get("origin")
    try:
        if method == "OPTIONS":
            return Outcome(Reply(204, headers=cors.preflight(origin, settings.allowed_origins, ALLOWED_METHODS)))
        cors.check(origin, settings.allowed_origins)
    except Problem as problem:
        logger.info("collect refused: %s", problem.detail, extra={"origin": origin})
        _measure_refused(problem)
        return Outcome(problem_reply(problem))
    cors_headers = _answer_headers(origin)
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
    return Outcome(_accepted(len(batch.events), origin), message)


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


# Made once per origin, an allowed one (`cors.check` refused any other before): the caches are bounded.
@functools.lru_cache(maxsize=64)
def _answer_headers(origin: str | None) -> dict[str, str]:
    """The headers of every answer to a POST from `origin` (shared: never changed)."""
    return {**cors.allow(origin, (origin.rstrip("/").lower(),) if origin else ()), "Cache-Control": "no-store"}


@functools.lru_cache(maxsize=256)
def _accepted(count: int, origin: str | None) -> Reply:
    """The answer to a batch accepted whole: the same for every batch of its size from its origin."""
    return Reply(202, b'{"accepted":%d}' % count, JSON, _answer_headers(origin), shared=True)


Rejected = list[dict[str, Any]]  # [{"index": 2, "errors": [{"field", "pointer", "detail"}]}]


def parse(
    headers: Mapping[str, str], body: bytes, settings: Settings, received: datetime
) -> tuple[CollectBatch, Checked, Rejected]:
    """Content type, size, schema and policy checks.

    A batch whose only faults are in some of its events keeps the others: they are returned with
    the list of rejected events and what was wrong with each. Otherwise a Problem names every bad
    field.
    """
    media_type = _media_type(headers.get("content-type") or "")
    if media_type not in CONTENT_TYPES:
        raise Problem(415, f"Send the batch as application/json or text/plain, not {media_type or 'nothing'!r}.",
                      "unsupported-media-type")
    declared = headers.get("content-length")
    if len(body) > MAX_BODY_BYTES or (declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES):
        raise Problem(413, f"The body is larger than {MAX_BODY_BYTES} bytes; send fewer events per batch.",
                      "body-too-large", [FieldError("body", f"at most {MAX_BODY_BYTES} bytes")])
    try:
        batch = _validate(body)
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


_validate = CollectBatch.__pydantic_validator__.validate_json  # (model_validate_json, without its wrapper)


@functools.lru_cache(maxsize=64)
def _media_type(content_type: str) -> str:
    """`text/plain` of `text/plain;charset=UTF-8` (a beacon sends the same header every time)."""
    return content_type.split(";", 1)[0].strip().lower()


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


def _policy_errors_of_invalid(body: bytes, received: datetime, hosts: tuple[str, ...],
                              reported: set[str]) -> list[FieldError]:
    """Policy errors of a batch that also failed the schema, so one answer names every bad field."""
    try:
        document = json.loads(body)
        checked = check_policy(document.get("site"), document.get("sent_at"), typed(document.get("events")),
                               received, hosts)
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
    message = orjson.dumps(document)
    if len(message) > MAX_MESSAGE_BYTES:  # cannot happen within MAX_BODY_BYTES; guard the queue anyway
        raise Problem(413, "The enriched batch would not fit in one queue message; send fewer events.",
                      "body-too-large")
    return message.decode()
