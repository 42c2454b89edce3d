"""Where cases come from: the Dataverse poller, the Dataverse webhook, and portal events.

Each new case is stored once (status `new`), then one `cases` message is queued for it (status
`queued`); the assembler takes it from there. The poller's watermark only moves past cases that
were stored, so a crash or a throttled page never skips a case, and a re-run never queues one twice.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Required, TypedDict

from dci import telemetry
from dci.clock import HOUR_MS, MINUTE_MS, epoch_ms, iso_of
from dci.ids import is_guid
from dci.problems import FieldError, Problem
from dci.replies import Reply, json_reply, problem_reply
from dci.storage.cases import CaseStore

if TYPE_CHECKING:  # (not at run time: requests stays off the linker's imports)
    from dci.dataverse.client import Dataverse, Incident
    from dci.settings import Settings
    from dci.storage import Stores
    from dci.storage.erasures import Tombstones
    from dci.storage.interactions import InteractionStore

logger = logging.getLogger(__name__)

OVERLAP_MS = 5 * MINUTE_MS  # re-read this much before the watermark: Dataverse commits are not instant
FIRST_RUN_LOOKBACK_MS = 24 * HOUR_MS  # the first poll picks up the last day's cases
PORTAL_CASE_NAMESPACE = uuid.UUID("0c9f5a52-3b7e-4d2a-8f6e-1a2b3c4d5e6f")


@dataclass
class PollResult:
    """What one poll did."""

    pages: int = 0
    seen: int = 0
    queued: int = 0
    skipped: int = 0
    watermark_ms: int | None = None


class Case(TypedDict, total=False):
    """A support case as the poller, the webhook, portal events, the late-event follow-up and the
    assembler pass it (and as the `cases` queue message carries it, with `v`)."""

    case_id: Required[str]
    created_ms: Required[int]
    ticket: str
    title: str
    contact: str | None  # the customer contact; None only for a case skipped for having none
    source: str  # poll, webhook, portal


def case_message(case: Case) -> str:
    """The `cases` queue message for a case (with the trace context its assembly continues)."""
    return json.dumps({"v": 1, **{k: v for k, v in case.items() if v is not None}, **telemetry.carrier()})


def incident_case(incident: Incident, source: str) -> Case:
    """The stored shape of a Dataverse case."""
    return {"case_id": incident.case_id, "created_ms": incident.created_ms, "ticket": incident.ticket,
            "title": incident.title, "contact": incident.contact, "source": source}


def take(cases: CaseStore, case: Case, enqueue: Callable[[str], None], skipped: str = "",
         erasures: Tombstones | None = None) -> str:
    """Store a case and queue it once; returns "queued", "skipped", "known" or "erased" (a case of
    an erased contact from before the erasure, re-read or re-sent: nothing of it is stored)."""
    if erasures is not None and erasures.forbids(case.get("contact"), case["created_ms"]):
        logger.info("case %s not taken: its contact was erased", case["case_id"], extra={"case_id": case["case_id"]})
        return "erased"
    if not cases.remember(case):
        return "known"
    if skipped:
        cases.mark(case["case_id"], "skipped", reason=skipped)
        logger.info("case %s skipped: %s", case.get("ticket") or case["case_id"], skipped,
                    extra={"case_id": case["case_id"], "reason": skipped})
        return "skipped"
    enqueue(case_message(case))
    cases.mark(case["case_id"], "queued")
    return "queued"


def poll_configured(settings: Settings, stores: Stores, now_ms: int) -> PollResult | None:
    """The timer's poll, when Dataverse is configured (None when cases come from portal events)."""
    from dci.dataverse.client import client_from

    client = client_from(settings)
    if client is None:
        return None
    with telemetry.span("poll cases") as span:
        result = poll(client, stores.cases, stores.cases_queue.send, now_ms, stores.erasures)
        if stores.erasures is not None:
            from dci.privacy import delete_pending_notes

            delete_pending_notes(stores.erasures, client)
        if stores.answers is not None:
            from dci.dataverse.knowledge import read_attachments_now

            read_attachments_now(client, stores, now_ms)
        span.set({"dci.pages": result.pages, "dci.cases.seen": result.seen, "dci.cases.queued": result.queued,
                  "dci.cases.skipped": result.skipped})
    return result


def poll(dataverse: Dataverse, cases: CaseStore, enqueue: Callable[[str], None], now_ms: int,
         erasures: Tombstones | None = None) -> PollResult:
    """Read incidents created since the watermark (minus an overlap), page by page."""
    result = PollResult()
    watermark = cases.watermark()
    since = (watermark if watermark is not None else now_ms - FIRST_RUN_LOOKBACK_MS) - OVERLAP_MS
    for page in dataverse.incidents_since(since):
        result.pages += 1
        for incident in page:
            result.seen += 1
            outcome = take(cases, incident_case(incident, "poll"), enqueue, incident.skipped, erasures)
            result.queued += outcome == "queued"
            result.skipped += outcome == "skipped"
        if page:
            newest = max(incident.created_ms for incident in page)
            if watermark is None or newest > watermark:
                watermark = newest
                cases.set_watermark(newest)  # this page is stored: never re-skip it
    result.watermark_ms = watermark
    logger.info("case poll: %d pages, %d cases seen, %d queued, %d skipped; watermark %s", result.pages,
                result.seen, result.queued, result.skipped, iso_of(watermark) if watermark is not None else "none",
                extra={"pages": result.pages, "queued": result.queued, "watermark_ms": watermark})
    return result


def claimed_case(message: dict[str, Any], event: dict[str, Any], portal_cases: bool) -> Case | None:
    """The case a `case_submitted` event may create, or None. The one rule of who owns a case:

    1. a ticket number from an anonymous batch never creates, binds or adds events to a case
       (anyone can type one; a visitor id proves nothing);
    2. with Dataverse configured, a case and its customer come from Dataverse only (poller,
       webhook): a portal event creates nothing;
    3. without Dataverse, a verified contact's ticket is that contact's portal case, keyed by
       site, ticket and contact: another contact sending the same number gets a case of their
       own, holding only their own activity;
    4. a case stored for one contact is never re-bound to another (`CaseStore.remember`).
    """
    contact, ticket = message.get("contact"), event.get("ticket")
    if event.get("type") != "case_submitted" or not ticket or not contact or not portal_cases:
        return None
    case_id = str(uuid.uuid5(PORTAL_CASE_NAMESPACE, f"{message['site']}/{ticket}/{contact}"))
    return {"case_id": case_id, "created_ms": event["ts"], "ticket": ticket, "title": "", "contact": contact,
            "source": "portal"}


@dataclass(frozen=True)
class CaseFollowUp:
    """What a linked batch means for cases: portal cases of a signed-in batch, and re-assembly of
    the cases whose window late events fall in — the batch's contact's, or, for an anonymous batch,
    those of the contacts who signed in on that browser (its events may be stitched to them). An
    anonymous batch creates no case."""

    cases: CaseStore
    enqueue: Callable[[str], None]
    portal_cases: bool  # no Dataverse: a `case_submitted` event of a signed-in batch is the case
    settle_ms: int
    lookback_ms: int
    interactions: InteractionStore | None = None  # to find who signed in on a browser
    erasures: Tombstones | None = None

    @classmethod
    def of(cls, settings: Settings, stores: Stores) -> CaseFollowUp:
        """The follow-up these settings ask for."""
        return cls(stores.cases, stores.cases_queue.send, settings.portal_cases, settings.settle_ms,
                   settings.lookback_ms, stores.interactions, stores.erasures)

    def after_batch(self, message: dict[str, Any]) -> None:
        """Act on one stored `portal-events` message."""
        contact = message.get("contact")
        if contact:
            for event in message["events"]:
                case = claimed_case(message, event, self.portal_cases)
                if case is not None:
                    take(self.cases, case, self.enqueue, erasures=self.erasures)
        received_ms = epoch_ms(message["received_at"])
        late = [e["ts"] for e in message["events"] if received_ms - e["ts"] > self.settle_ms]
        if not late:
            return
        if contact:
            owners = {contact}
        elif self.interactions is not None:  # read only for late anonymous events, which are rare
            owners = {row["contact"] for row in self.interactions.visitor_events(message["visitor"])
                      if row.get("contact")}
        else:
            owners = set()
        for owner in sorted(owners):
            self._reassemble(owner, min(late), max(late))

    def _reassemble(self, contact: str, first: int, last: int) -> None:
        for row in self.cases.cases_of(contact):  # cases whose window these late events fall in
            if not first <= row["created_ms"] <= last + self.lookback_ms:
                continue
            case = self.cases.stored_case(row["case_id"])
            if case is not None and case["status"] == "assembled":
                self.enqueue(case_message(case["case"]))
                logger.info("late events for case %s: re-assembly queued", case["case"].get("ticket") or row["case_id"],
                            extra={"case_id": row["case_id"]})


# --- the Dataverse webhook (RemoteExecutionContext) -------------------------------------------------

_WCF_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")


def parse_webhook(body: bytes) -> tuple[Case, str]:
    """The case in a Dataverse webhook call for `Create` of `incident`, and why it is skipped ("" if not).

    Problem(400) names what is wrong with anything else.
    """
    try:
        context = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Problem(400, "The body is not JSON; expected a Dataverse RemoteExecutionContext.", "invalid-webhook",
                      [FieldError("body", "not JSON")]) from None
    if not isinstance(context, dict):
        raise Problem(400, "Expected a Dataverse RemoteExecutionContext object.", "invalid-webhook",
                      [FieldError("body", "must be a JSON object")])
    errors = []
    if context.get("MessageName") != "Create":
        errors.append(FieldError("MessageName", f"must be Create, not {context.get('MessageName')!r}"))
    if context.get("PrimaryEntityName") != "incident":
        errors.append(FieldError("PrimaryEntityName", f"must be incident, not {context.get('PrimaryEntityName')!r}"))
    case_id = str(context.get("PrimaryEntityId") or "")
    if not is_guid(case_id):
        errors.append(FieldError("PrimaryEntityId", "must be the case's GUID"))
    target = _pairs(context.get("InputParameters")).get("Target")
    attributes = _pairs(target.get("Attributes")) if isinstance(target, dict) else None
    if attributes is None:
        errors.append(FieldError("InputParameters.Target", "must hold the created case's attributes"))
    if errors:
        raise Problem(400, "Not a Dataverse webhook call for the creation of a case.", "invalid-webhook", errors)
    assert attributes is not None
    created = _wcf_ms(attributes.get("createdon")) or _wcf_ms(context.get("OperationCreatedOn"))
    if created is None:
        raise Problem(400, "The case's creation time is missing.", "invalid-webhook",
                      [FieldError("InputParameters.Target.createdon", "required (or OperationCreatedOn)")])
    customer = attributes.get("customerid") if isinstance(attributes.get("customerid"), dict) else {}
    primary = attributes.get("primarycontactid") if isinstance(attributes.get("primarycontactid"), dict) else {}
    contact = customer.get("Id") if customer.get("LogicalName") == "contact" else primary.get("Id")
    skipped = "" if contact else ("the customer is an account without a primary contact"
                                  if customer.get("LogicalName") == "account" else "no customer contact")
    case: Case = {"case_id": case_id.lower(), "created_ms": created,
                  "ticket": str(attributes.get("ticketnumber") or ""), "title": str(attributes.get("title") or ""),
                  "contact": str(contact).lower() if contact else None, "source": "webhook"}
    return case, skipped


def webhook_reply(body: bytes, stores: Stores) -> Reply:
    """POST /api/dataverse/incidents: 202 with what happened to the case, or 400 naming the problem."""
    try:
        case, skipped = parse_webhook(body)
    except Problem as problem:
        return problem_reply(problem)
    return json_reply(202, {"case_id": case["case_id"],
                            "outcome": take(stores.cases, case, stores.cases_queue.send, skipped, stores.erasures)})


def _pairs(value: Any) -> dict[str, Any]:
    """DataContract key/value lists (`[{"key": …, "value": …}]`) as a dict; dicts pass through."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {item.get("key"): item.get("value") for item in value if isinstance(item, dict)}
    return {}


def _wcf_ms(value: Any) -> int | None:
    """`/Date(1796130000000)/` (the WCF form webhooks send), or ISO-8601 (UTC when no zone is given)."""
    if not isinstance(value, str):
        return None
    match = _WCF_DATE.match(value)
    if match:
        return int(match.group(1))
    try:
        return epoch_ms(value, naive_is_utc=True)
    except ValueError:
        return None
