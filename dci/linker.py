"""The `portal-events` queue consumer: store a batch's events and its contact link.

A message that is not a version-1 batch raises BadMessage: the host retries it and then moves it
to `portal-events-poison`, where an operator can read it; nothing is dropped silently.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from dci.cases import case_message, claimed_case, take
from dci.ids import GUID_FULL_PATTERN
from dci.ingest.events import ID_PATTERN
from dci.insights import event_fact
from dci.storage.cases import CaseStore
from dci.storage.insights import InsightStore
from dci.storage.interactions import InteractionStore, event_entity

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


@dataclass(frozen=True)
class CaseFollowUp:
    """What the linker does about cases: where they live, how to queue one, and the timing rules."""

    cases: CaseStore
    enqueue: Callable[[str], None]
    portal_cases: bool  # no Dataverse: a `case_submitted` event is the case
    settle_ms: int
    lookback_ms: int


def link(store: InteractionStore, body: bytes, follow_up: CaseFollowUp | None = None,
         insights: InsightStore | None = None) -> int:
    """Process one queue message; returns the rows written. Raises BadMessage or storage errors."""
    message = parse_message(body)
    contact = message.get("contact")
    if contact:
        # The link first: if the events then fail, the retry rewrites both; a link without events
        # is harmless, events that the contact's export and erasure cannot find are not.
        store.link(contact, message["visitor"], message["site"], message["received_at"])
    written = store.write_events(message)
    logger.info("linked %d events%s", written, " (signed in)" if contact else "",  # no visitor id: it is personal
                extra={"events": written, "signed_in": bool(contact)})
    if insights is not None:
        insights.add_events(event_facts(message))
    if follow_up is not None:
        _follow_up_cases(message, follow_up)
    return written


def event_facts(message: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(day, row key, fact) of the message's searches and article reads, keyed as their interactions."""
    facts = []
    for event in message["events"]:
        row = event_entity(message, event)
        fact = event_fact(row)
        if fact is not None:
            facts.append((row["RowKey"][:10], row["RowKey"], fact))
    return facts


def _follow_up_cases(message: dict[str, Any], follow: CaseFollowUp) -> None:
    """Portal cases of a signed-in batch, and re-assembly after its late events. An anonymous
    batch changes no case (`cases.claimed_case`)."""
    contact = message.get("contact")
    if not contact:
        return
    for event in message["events"]:
        case = claimed_case(message, event, follow.portal_cases)
        if case is not None:
            take(follow.cases, case, follow.enqueue)
    received_ms = int(datetime.fromisoformat(message["received_at"].replace("Z", "+00:00")).timestamp() * 1000)
    late = [e["ts"] for e in message["events"] if received_ms - e["ts"] > follow.settle_ms]
    if not late:
        return
    first, last = min(late), max(late)
    for row in follow.cases.cases_of(contact):  # cases whose window these late events fall in
        if not first <= row["created_ms"] <= last + follow.lookback_ms:
            continue
        case = follow.cases.case(row["case_id"])
        if case and case.get("status") == "assembled":
            follow.enqueue(case_message({"case_id": row["case_id"], "created_ms": row["created_ms"],
                                         "ticket": case.get("ticket"), "title": case.get("title"),
                                         "contact": contact, "source": case.get("source")}))
            logger.info("late events for case %s: re-assembly queued", case.get("ticket") or row["case_id"],
                        extra={"case_id": row["case_id"]})
