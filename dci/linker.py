"""The `portal-events` queue consumer: store a batch's events and its contact link.

A message that is not a version-1 batch raises BadMessage: the host retries it and then moves it
to `portal-events-poison`, where an operator can read it; nothing is dropped silently.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from dci import telemetry
from dci.cases import CaseFollowUp
from dci.clock import epoch_ms, ms_of
from dci.ids import GUID_FULL_PATTERN
from dci.ingest.events import ID_PATTERN
from dci.insights import event_fact
from dci.lake.rows import pseudonym
from dci.storage.clients import PORTAL_EVENTS_QUEUE
from dci.storage.erasures import Tombstones, event_id_hash
from dci.storage.insights import InsightStore
from dci.storage.interactions import InteractionStore
from dci.storage.keys import fact_ref
from dci.storage.tables import plain

if TYPE_CHECKING:
    from dci.settings import Settings
    from dci.storage import Stores
    from dci.storage.outbox import LakeOutbox

logger = logging.getLogger(__name__)

MAX_EVENTS_PER_MESSAGE = 1000


class BadMessage(ValueError):
    """The queue message is not a version-1 batch; the message says what is wrong."""


class _QueuedEvent(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: Annotated[str, StringConstraints(pattern=ID_PATTERN)]
    type: str
    ts: Annotated[int, Field(ge=0)]


class _QueuedBatch(BaseModel):
    model_config = ConfigDict(extra="allow")
    v: Literal[1]
    received_at: str
    site: str
    visitor: Annotated[str, StringConstraints(pattern=ID_PATTERN)]
    session: Annotated[str, StringConstraints(pattern=ID_PATTERN)]
    contact: Annotated[str, StringConstraints(pattern=GUID_FULL_PATTERN)] | None = None
    events: Annotated[list[_QueuedEvent], Field(max_length=MAX_EVENTS_PER_MESSAGE)]


def parse_message(body: bytes) -> dict[str, Any]:
    """The message as a dict, or BadMessage saying why it cannot be processed."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadMessage(f"not JSON: {error}") from None
    try:
        _QueuedBatch.model_validate(document)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(step) for step in first["loc"]) or "message"
        raise BadMessage(f"not a version-1 batch: {where}: {first['msg']}") from None
    return document


def handle(body: bytes, settings: Settings, stores: Stores) -> int:
    """The `portal-events` trigger: link one message with the follow-up the settings ask for."""
    return link(stores.interactions, body, CaseFollowUp.of(settings, stores), stores.insights, stores.outbox,
                stores.erasures)


def link(store: InteractionStore, body: bytes, follow_up: CaseFollowUp | None = None,
         insights: InsightStore | None = None, outbox: LakeOutbox | None = None,
         erasures: Tombstones | None = None) -> int:
    """Process one queue message; returns the rows written. Raises BadMessage or storage errors."""
    message = parse_message(body)
    if erasures is not None:
        message = without_erased(message, erasures)
        if not message["events"]:
            return 0
    with telemetry.span("process portal-events", {"messaging.destination.name": PORTAL_EVENTS_QUEUE},
                        parent=message, consumer=True) as span:
        written = _link(store, message, follow_up, insights, outbox)
        span.set({"dci.events.written": written, "dci.signed_in": bool(message.get("contact"))})
    if telemetry.on() and message["events"]:
        newest = max(event["ts"] for event in message["events"])
        telemetry.record("dci.link.lag", max(0, ms_of(datetime.now(timezone.utc)) - newest) / 1000)
    return written


def _link(store: InteractionStore, message: dict[str, Any], follow_up: CaseFollowUp | None,
          insights: InsightStore | None, outbox: LakeOutbox | None) -> int:
    contact = message.get("contact")
    if contact:
        # The link first: if the events then fail, the retry rewrites both; a link without events
        # is harmless, events that the contact's export and erasure cannot find are not.
        store.link(contact, message["visitor"], message["site"], message["received_at"])
    stored = store.write_events(message)
    written = len(stored)
    if outbox is not None:  # after the events: an entry names rows that are there to read
        outbox.note_visitor(message["visitor"])
    store.note_beacon(message["site"], message["received_at"])
    logger.info("linked %d events%s", written, " (signed in)" if contact else "",  # no visitor id: it is personal
                extra={"events": written, "signed_in": bool(contact)})
    if insights is not None:
        insights.add_events(event_facts(message["visitor"], stored))
    if follow_up is not None:
        follow_up.after_batch(message)
    return written


def without_erased(message: dict[str, Any], erasures: Tombstones) -> dict[str, Any]:
    """The message without the events an erasure forbids to come back: an erased event (by its id,
    whatever time it now claims), and anything of an erased contact, or of one of their own
    browsers, from before the erasure (a re-send, a message that waited)."""
    cut = max(erasures.erased_at(message.get("contact")) or -1,
              erasures.browser_erased_at(pseudonym(message["visitor"])) or -1)
    erased = erasures.erased_events()
    if cut < 0 and not erased:
        return message
    before = cut >= 0 and epoch_ms(message["received_at"]) <= cut  # arrived before the erasure: all goes,
    kept = [] if before else [event for event in message["events"]  # whatever its events claim
                              if event["ts"] > cut and not (erased and event_id_hash(event["id"]) in erased)]
    if len(kept) < len(message["events"]):
        logger.info("linker dropped %d events of an erased contact", len(message["events"]) - len(kept),
                    extra={"events": len(message["events"]) - len(kept)})
    return {**message, "events": kept}


def event_facts(visitor: str, rows: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(day, key, fact) of the searches and article reads among a visitor's stored rows (`fact_ref`)."""
    facts = []
    for row in map(plain, rows):
        fact = event_fact(row, visitor)
        if fact is not None:
            facts.append((*fact_ref(visitor, row), fact))
    return facts
