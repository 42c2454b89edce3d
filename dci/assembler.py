"""The `cases` queue consumer: once a case has settled, assemble its timeline, store it, note it,
and put each of its visits on the case's Dynamics timeline (dci/dataverse/wall.py).

Idempotent: the timeline row is replaced, the note is an upsert on an id derived from the case,
the visits' ids derive from the case, the browser and each visit's first event, and a re-assembly that finds
nothing new changes nothing (same digest, same version, no call to Dataverse).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dci import telemetry
from dci.activity import owned
from dci.cases import case_message
from dci.clock import iso_of
from dci.dataverse import wall
from dci.dataverse.visits import visits
from dci.insights import RollupTooLarge, case_fact
from dci.storage.clients import CASES_QUEUE
from dci.timeline import assemble, note_text
from dci.window import among, journeys, neighbours

if TYPE_CHECKING:
    from dci.cases import Case
    from dci.dataverse.client import Dataverse
    from dci.settings import Settings
    from dci.storage import Stores
    from dci.storage.interactions import InteractionStore

logger = logging.getLogger(__name__)

NOTE_SUBJECT = "Portal activity before this case"


class BadCaseMessage(ValueError):
    """The `cases` message cannot be processed; the message says why."""


def parse(body: bytes) -> tuple[Case, dict[str, Any]]:
    """A `cases` message, checked: the case, and the message's trace context fields."""
    try:
        case = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadCaseMessage(f"not JSON: {error}") from None
    if not isinstance(case, dict) or case.get("v") != 1:
        raise BadCaseMessage("not a version-1 case message")
    if not isinstance(case.get("case_id"), str) or not isinstance(case.get("created_ms"), int):
        raise BadCaseMessage("case_id and created_ms are required")
    return telemetry.without_trace(case), case  # type: ignore[return-value]


def handle(body: bytes, stores: Stores, settings: Settings, now_ms: int, dataverse: Dataverse | None) -> str:
    """Process one `cases` message; returns what happened (deferred, assembled, unchanged, skipped)."""
    case, message = parse(body)
    with telemetry.span("process cases", {"messaging.destination.name": CASES_QUEUE,
                                          "dci.case.source": case.get("source", "")},
                        parent=message, consumer=True) as span:
        outcome = _handle(case, body, stores, settings, now_ms, dataverse)
        span.set({"dci.case.outcome": outcome})
    return outcome


def contact_events(store: InteractionStore, contact: str, settings: Settings,
                   erased: Mapping[str, int] | None = None) -> list[dict]:
    """Every event attributed to the contact, on every browser they signed in on, each with its
    visitor and attribution."""
    picked = []
    for visitor, rows, owners in owned(store, contact, settings.stitch_window_ms, erased):
        picked += [{**row, "visitor": visitor, "attribution": owner.how}
                   for row, owner in zip(rows, owners) if owner.contact == contact]
    return picked


def journey(case: Case, events: Sequence[dict], cases: Sequence[Mapping[str, Any]], settings: Settings) -> list[dict]:
    """Of the contact's events, those of the case's journey (dci/window.py): after their previous
    case (`cases`: the contact's cases; the case itself is added when missing), up to its creation
    and its own confirmation."""
    return [dict(event) for event in journeys(among(case, cases), events, settings.lookback_ms)[case["case_id"]]]


def previous_case(case: Case, cases: Sequence[Mapping[str, Any]], settings: Settings) -> dict[str, Any] | None:
    """The contact's case before this one, when it falls within the look-back (the journey starts
    after it): id, ticket, title and creation, for the report and the note to name and link."""
    before, _ = neighbours(case, cases)
    if before is None or before["created_ms"] < case["created_ms"] - settings.lookback_ms:
        return None
    return {"case_id": before["case_id"], "ticket": before.get("ticket") or None,
            "title": before.get("title") or None, "created": iso_of(before["created_ms"])}


def report_url(settings: Settings, case: dict[str, Any]) -> str | None:
    """The case's HTML report under REPORT_BASE_URL (the app's `…/api`), when that is set."""
    if settings.report_base_url is None:
        return None
    return f"{str(settings.report_base_url).rstrip('/')}/cases/{case['case_id']}/timeline?format=html"


def digest(document: dict[str, Any]) -> str:
    """What identifies a timeline's content (the case, its items, and the case before it: a case that
    arrives later can become the previous one without changing a single item)."""
    material = json.dumps({"case": document["case"], "items": document["items"],
                           "previous_case": document.get("previous_case")}, sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def _handle(case: Case, body: bytes, stores: Stores, settings: Settings, now_ms: int,
            dataverse: Dataverse | None) -> str:
    cases = stores.cases
    if stores.erasures is not None:
        if stores.erasures.forbids(case.get("contact"), case["created_ms"]):  # nothing of it is written again
            logger.info("case %s not assembled: its contact was erased", case["case_id"],
                        extra={"case_id": case["case_id"]})
            return "erased"
        if dataverse is not None:  # a name remembered from before an erasure is read again
            for contact in stores.erasures.all():
                dataverse.forget_name(contact)
    if not case.get("contact"):  # queued by an earlier build for an anonymous ticket: never assembled
        cases.mark(case["case_id"], "skipped", reason="no verified contact")
        logger.info("case %s skipped: no verified contact", case["case_id"], extra={"case_id": case["case_id"]})
        return "skipped"
    wait_ms = case["created_ms"] + settings.settle_ms - now_ms
    if wait_ms > 0:  # late events may still be on their way: come back when the case has settled
        stores.cases_queue.send(body.decode(), min(7 * 86_400, wait_ms // 1000 + 1))
        logger.info("case %s settles in %d s; deferred", case.get("ticket") or case["case_id"], wait_ms // 1000,
                    extra={"case_id": case["case_id"]})
        return "deferred"
    others = cases.cases_of(case["contact"])
    everything = contact_events(stores.interactions, case["contact"], settings, stores.erased_times())
    events = journey(case, everything, others, settings)
    document = assemble(case, events, settings.session_gap_ms, previous_case(case, others, settings), everything)
    if dataverse is not None and case.get("source") != "portal":
        name = _name_of(dataverse, case["contact"])
        if name:  # shown on the report; kept in the timeline row, which erasure deletes with the contact
            document["case"]["contact_name"] = name
    fingerprint = digest(document)
    try:  # idempotent: the same events give the same fact
        stores.insights.put_case(case["case_id"], case_fact(case, events, settings.insights_follow_days))
    except RollupTooLarge:  # (bounded by case_fact; should one not fit, the timeline and note still go)
        logger.warning("case %s: its insight fact is too large to store; the insights leave it out",
                       case["case_id"], extra={"case_id": case["case_id"]})
    stored = cases.timeline(case["case_id"])
    if stored and stored["digest"] == fingerprint:
        cases.mark(case["case_id"], "assembled")
        if stores.outbox is not None:  # a re-delivery after a crash between the save and this entry
            stores.outbox.note_case(case["case_id"])
        return "unchanged"
    version = (stored["version"] + 1) if stored else 1
    document["version"] = version
    note, written = None, (stored or {}).get("visits") or {}
    wall_counts = None
    if dataverse is not None and case.get("source") != "portal":
        if settings.visits_enabled:
            written, wall_counts = _write_visits(dataverse, stores, case, document, written, settings)
        else:  # (TIMELINE_ACTIVITIES=off: a warning about them is moot)
            wall.setup_works(stores.warnings)
        if settings.notes_enabled:
            earlier = document.get("previous_case")
            note = dataverse.write_note(case["case_id"], NOTE_SUBJECT, note_text(
                document, report_url(settings, case), report_url(settings, earlier) if earlier else None,
                wall_counts))
    cases.save_timeline(case["case_id"], document, version, fingerprint, note, written)
    cases.mark(case["case_id"], "assembled", version=version, visits_unsure="")  # (`written` holds them now)
    if stores.outbox is not None:
        stores.outbox.note_case(case["case_id"])
    telemetry.annotate({"dci.timeline.items": len(document["items"]), "dci.timeline.version": version,
                        "dci.note.written": note is not None})
    if version == 1:  # a re-assembly after late events is not the case's latency
        _follow_on(stores, case, others)
        telemetry.record("dci.case.assembly.latency", max(0, now_ms - case["created_ms"]) / 1000,
                         {"dci.case.source": case.get("source", ""), "dci.note.written": note is not None})
    logger.info("case %s: timeline v%d with %d events in %d visits%s%s", case.get("ticket") or case["case_id"],
                version, len(document["items"]), len(document["sessions"]), ", note written" if note else "",
                f", {wall_counts[0]} on the Dynamics timeline" if wall_counts else "",
                extra={"case_id": case["case_id"], "version": version, "events": len(document["items"])})
    return "assembled"


def _follow_on(stores: Stores, case: Case, others: Sequence[Mapping[str, Any]]) -> None:
    """A case assembled after the contact's next case (cases can arrive out of order) moves where
    that case's journey starts: its timeline is assembled again."""
    _, after = neighbours(case, others)
    if after is None:
        return
    following = stores.cases.stored_case(after["case_id"])
    if following is None or following["status"] != "assembled":
        return  # (still to be assembled: it will find this case)
    timeline = stores.cases.timeline(after["case_id"])
    named = ((timeline or {}).get("document") or {}).get("previous_case") or {}
    if named.get("case_id") != case["case_id"]:
        stores.cases_queue.send(case_message(following["case"]))
        logger.info("case %s comes before case %s: its re-assembly is queued", case["case_id"], after["case_id"],
                    extra={"case_id": after["case_id"]})


def _write_visits(dataverse: Dataverse, stores: Stores, case: Case, document: dict[str, Any],
                  written: dict[str, str], settings: Settings) -> tuple[dict[str, str], tuple[int, int] | None]:
    """Each visit of the journey as a Portal visit on the case's Dynamics timeline
    (dci/dataverse/wall.py): what is on the wall now, and (visits on it, earlier ones left out) for
    the note — None when the environment is not set up for them (said once in the log and on
    health; the note still goes)."""
    activities, earlier = visits(document, report_url(settings, case), settings.session_gap_ms)
    # Visits an attempt wrote before it failed are in no record: known as unsure, each is written
    # again if still wanted, else deleted. New ones are noted unsure before they are written.
    written = {**{visit: "" for visit in stores.cases.visits_unsure(case["case_id"])}, **written}
    new = {activity["activityid"] for activity in activities} - written.keys()
    if new:
        stores.cases.note_visits_unsure(case["case_id"], sorted(written.keys() | new))
    try:
        synced = wall.sync(dataverse, case["case_id"], str(case["contact"]), activities, written)
    except wall.SetupMissing as problem:  # (what it wrote before it stopped, if anything, stays unsure)
        wall.warn_setup_missing(stores.warnings, problem)
        return ({**{visit: "" for visit in new}, **written} if problem.changed else written), None
    if synced.changed:  # (Dataverse took writes: a missing set-up, if said, is fixed)
        wall.setup_works(stores.warnings)
    telemetry.annotate({"dci.visits.on_case": len(synced.record), "dci.visits.changed": synced.changed})
    return synced.record, (len(synced.record), earlier)


def _name_of(dataverse: Dataverse, contact: str) -> str | None:
    from dci.dataverse.client import DataverseError

    try:
        return dataverse.contact_name(contact)
    except DataverseError as error:  # the timeline is worth more than the name: assemble without it
        logger.warning("the contact's name could not be read (%s); the report shows none", error.status,
                       extra={"status": error.status})
        return None
