"""POST /api/collect: check, validate and enrich a beacon batch into one queue message.

Pure: no I/O. The adapter hands in the method, headers and body, and puts the returned message
on the `portal-events` queue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

from pydantic import ValidationError

from dci import cors
from dci.events import EVENT_TYPES, MAX_EVENTS, CollectBatch, host_of, iso_ms
from dci.problems import FieldError, Problem
from dci.ratelimit import RateLimiter
from dci.replies import Reply, json_reply, problem_reply
from dci.settings import Settings
from dci.useragent import classify

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024
# A queue message holds 64 KiB after base64: 48 KiB of text.
MAX_MESSAGE_BYTES = 48 * 1024
MAX_CLOCK_SKEW = timedelta(days=7)
MAX_EVENT_AGE = timedelta(days=7)  # the beacon's retry queue drops older events
EVENT_AFTER_SEND_TOLERANCE = timedelta(seconds=60)
ALLOWED_METHODS = "POST, OPTIONS"
CONTENT_TYPES = ("application/json", "text/plain")

_default_limiter = RateLimiter(limit=120, window=60)


@dataclass(frozen=True)
class Outcome:
    """What to answer, and the queue message to send (None: send nothing)."""

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
    origin = headers.get("origin")
    try:
        if method == "OPTIONS":
            return Outcome(Reply(204, headers=cors.preflight(origin, settings.allowed_origins, ALLOWED_METHODS)))
        cors_headers = cors.allow(origin, settings.allowed_origins)
    except Problem as problem:
        logger.info("collect refused: %s", problem.detail, extra={"origin": origin})
        return Outcome(problem_reply(problem))
    try:
        if method != "POST":
            raise Problem(405, f"{method} is not supported here; use POST.", headers={"Allow": ALLOWED_METHODS})
        received = received_at or datetime.now(timezone.utc)
        batch = parse(headers, body, settings, received)
        message = enrich(batch, received, headers.get("user-agent"))
        wait = limiter.retry_after(batch.visitor)
        if wait:
            raise Problem(429, "Too many batches from this visitor; retry later.", "rate-limited",
                          headers={"Retry-After": str(wait)})
    except Problem as problem:
        logger.info("collect rejected (%s): %s", problem.status, problem.detail,
                    extra={"status": problem.status, "fields": [e.field for e in problem.errors]})
        return Outcome(problem_reply(problem, {**cors_headers, "Cache-Control": "no-store"}))
    reply = json_reply(202, {"accepted": len(batch.events)}, {**cors_headers, "Cache-Control": "no-store"})
    if message is None:
        return Outcome(reply)
    return Outcome(reply, message)


def parse(headers: Mapping[str, str], body: bytes, settings: Settings, received: datetime) -> CollectBatch:
    """Content type, size and schema checks; Problem naming the field on any failure."""
    media_type = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if media_type not in CONTENT_TYPES:
        raise Problem(415, f"Send the batch as application/json or text/plain, not {media_type or 'nothing'!r}.",
                      "unsupported-media-type")
    declared = headers.get("content-length")
    if len(body) > MAX_BODY_BYTES or (declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES):
        raise Problem(413, f"The body is larger than {MAX_BODY_BYTES} bytes; send fewer events per batch.",
                      "body-too-large", [FieldError("body", f"at most {MAX_BODY_BYTES} bytes")])
    try:
        batch = CollectBatch.model_validate_json(body, context={"portal_hosts": settings.portal_issuers})
    except ValidationError as error:
        errors = field_errors(error)
        if any(e.field == "events" and e.detail.startswith("at most") for e in errors):
            raise Problem(413, f"A batch holds at most {MAX_EVENTS} events.", "too-many-events", errors) from None
        raise Problem(400, "The batch is not a valid version-1 collect body.", "invalid-body", errors) from None
    errors = _check_consistency(batch, received)
    if errors:
        raise Problem(400, "The batch is not a valid version-1 collect body.", "invalid-body", errors)
    return batch


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
        elif kind == "model_type" and not loc:
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
        elif kind == "missing":
            message = "required"
        elif kind == "literal_error" and loc == ["v"]:
            message = "unsupported version; this endpoint speaks version 1"
        out.append(FieldError(_path(loc), message.removeprefix("Value error, ")))
    return out


def _path(loc: list[object]) -> str:
    path = ""
    for step in loc:
        path += f"[{step}]" if isinstance(step, int) else (f".{step}" if path else str(step))
    return path or "body"


def _check_consistency(batch: CollectBatch, received: datetime) -> list[FieldError]:
    errors = []
    if abs(received - batch.sent_at) > MAX_CLOCK_SKEW:
        errors.append(FieldError("sent_at", "more than 7 days from the server clock"))
    seen: set[str] = set()
    for index, event in enumerate(batch.events):
        if event.id in seen:
            errors.append(FieldError(f"events[{index}].id", f"duplicate event id {event.id!r} in this batch"))
        seen.add(event.id)
        age = batch.sent_at - event.ts
        if age > MAX_EVENT_AGE:
            errors.append(FieldError(f"events[{index}].ts", "more than 7 days before sent_at"))
        elif age < -EVENT_AFTER_SEND_TOLERANCE:
            errors.append(FieldError(f"events[{index}].ts", "later than sent_at"))
    return errors


def enrich(batch: CollectBatch, received: datetime, user_agent: str | None) -> str | None:
    """The `portal-events` queue message for a batch; None for bots (accepted, then dropped)."""
    skew = received - batch.sent_at
    client = classify(user_agent)
    if client.bot:
        logger.info("collect dropped a bot batch of %d events", len(batch.events),
                    extra={"bot_events": len(batch.events), "site": batch.site})
        return None
    events = []
    for event in batch.events:
        item = event.model_dump(mode="json", exclude_none=True)
        item["client_ts"] = iso_ms(event.ts)
        item["ts"] = iso_ms(event.ts + skew)
        referrer = item.get("referrer")
        if referrer and host_of(referrer) != batch.site:
            parts = urlsplit(referrer)
            item["referrer"] = f"{parts.scheme}://{parts.netloc}/"  # off-portal: the origin only
        events.append(item)
    message = json.dumps(
        {
            "v": 1,
            "received_at": iso_ms(received),
            "site": batch.site,
            "visitor": batch.visitor,
            "session": batch.session,
            "client": {"family": client.family, "device": client.device},
            "skew_ms": round(skew.total_seconds() * 1000),
            "events": events,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    if len(message.encode()) > MAX_MESSAGE_BYTES:  # cannot happen within MAX_BODY_BYTES; guard the queue anyway
        raise Problem(413, "The enriched batch would not fit in one queue message; send fewer events.",
                      "body-too-large")
    return message
