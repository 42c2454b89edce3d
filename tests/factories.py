"""Builders for collect bodies: valid by default, any field overridable."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from tests.conftest import PORTAL

BASE = f"https://{PORTAL}"


def iso(moment: datetime) -> str:
    """The beacon's timestamp format (Date.prototype.toISOString)."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_id() -> str:
    return str(uuid.uuid4())


def event(kind: str = "page_view", *, at: datetime | None = None, **fields: Any) -> dict[str, Any]:
    """One valid event of `kind`; `fields` override or add."""
    at = at or datetime.now(timezone.utc) - timedelta(seconds=5)
    base: dict[str, Any] = {"id": new_id(), "type": kind, "ts": iso(at)}
    defaults: dict[str, dict[str, Any]] = {
        "page_view": {"url": f"{BASE}/knowledgebase/article/KA-01023/en-us", "title": "Reset your password",
                      "referrer": f"{BASE}/search/?q=reset", "article": {"number": "KA-01023", "lang": "en-us"}},
        "search": {"url": f"{BASE}/search/?q=reset+password", "query": "reset password", "results": 3},
        "search_click": {"query": "reset password", "position": 2,
                         "target": f"{BASE}/knowledgebase/article/KA-01023"},
        "engagement": {"url": f"{BASE}/knowledgebase/article/KA-01023/en-us", "engaged_ms": 5400, "scroll": 80},
        "case_form": {"url": f"{BASE}/support/create-case/"},
        "case_submitted": {"url": f"{BASE}/support/case-created/", "ticket": "CAS-01234-X1Y2Z3"},
    }
    return {**base, **defaults.get(kind, {}), **fields}


def batch(events: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    """A valid version-1 collect body."""
    return {
        "v": 1,
        "site": PORTAL,
        "visitor": new_id(),
        "session": new_id(),
        "sent_at": iso(datetime.now(timezone.utc)),
        "events": events if events is not None else [event()],
        **fields,
    }


def body(document: Any) -> bytes:
    """JSON bytes as the beacon sends them."""
    return json.dumps(document).encode()


# --- portal-events queue messages (what collect enqueues; the linker's input) ---------------------

def queued_event(ts_ms: int, kind: str = "page_view", **fields: Any) -> dict[str, Any]:
    """One event as a queue message carries it: its time already in epoch ms."""
    return {"id": new_id(), "type": kind, "ts": ts_ms, "url": f"{BASE}/kb/KA-01023", **fields}


def queued_batch(events: list[dict[str, Any]], *, visitor: str | None = None, session: str | None = None,
                 contact: str | None = None, received_at: str = "2026-11-28T15:00:03.480Z",
                 site: str = PORTAL) -> dict[str, Any]:
    """A `portal-events` message as collect writes it; `contact` only for a verified batch."""
    visitor = visitor or new_id()
    message = {"v": 1, "received_at": received_at, "site": site, "visitor": visitor,
               "session": session or f"s-{visitor}"[:64], "client": {"family": "Edge", "device": "desktop"},
               "skew_ms": 0, "events": events}
    if contact:
        message["contact"] = contact
    return message


def encoded(message: dict[str, Any]) -> bytes:
    """A queue message's body."""
    return json.dumps(message).encode()
