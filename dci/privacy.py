"""Everything stored about a contact: export it, or erase it (right of access, right to erasure).

A contact's activity is what the attribution rules give them on every visitor (browser) they
signed in on: their verified events and the anonymous browsing stitched to them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dci.activity import items_of, owned
from dci.attribution import signins
from dci.clock import day_of, iso_of, ms_of
from dci.ids import contact_id
from dci.insights import event_fact, visitor_hash
from dci.lake.rows import pseudonym
from dci.problems import Problem
from dci.replies import Reply, json_reply, problem_reply
from dci.settings import Settings
from dci.storage.cases import LEGACY_TICKETS, CaseStore
from dci.storage.erasures import event_id_hash
from dci.storage.insights import InsightStore
from dci.storage.interactions import InteractionStore
from dci.storage.keys import fact_ref

if TYPE_CHECKING:
    from dci.dataverse.client import Dataverse
    from dci.storage import Stores
    from dci.storage.answers import AnswerStore
    from dci.storage.erasures import Tombstones
    from dci.storage.outbox import LakeOutbox

logger = logging.getLogger(__name__)

def export(store: InteractionStore, contact: str, stitch_window_ms: int, session_gap_ms: int,
           cases: CaseStore | None = None, erased: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Every interaction attributed to the contact, the visitors with their sign-in intervals, and
    the contact's cases with their timelines."""
    browsers = owned(store, contact, stitch_window_ms, erased)
    visitors = []
    for visitor, rows, _ in browsers:
        intervals = signins([(row["ts"], row.get("contact")) for row in rows], contact, session_gap_ms)
        visitors.append({"visitor": visitor, "signins": [
            {"from": iso_of(start), "to": iso_of(end)} for start, end in intervals]})
    interactions = [{k: v for k, v in item.items() if k != "ms"} for item in items_of(browsers, contact)]
    document = {"contact": contact, "visitors": visitors, "interactions": interactions}
    if cases is not None:
        document["cases"] = []
        for row in cases.cases_of(contact):
            timeline = cases.timeline(row["case_id"])
            document["cases"].append({"case_id": row["case_id"], "ticket": row.get("ticket", ""),
                                      "created": iso_of(row["created_ms"]),
                                      "timeline": timeline["document"] if timeline else None})
    return document


def erase(store: InteractionStore, contact: str, stitch_window_ms: int,
          cases: CaseStore | None = None, insights: InsightStore | None = None,
          outbox: LakeOutbox | None = None, erasures: Tombstones | None = None,
          now_ms: int | None = None, answers: AnswerStore | None = None) -> dict[str, int]:
    """Erase the contact's activity; idempotent. Returns how much was removed.

    A visitor no one else signed in on is the contact's own browser: all its rows go, anonymous
    ones included. On a shared browser only the rows attributed to the contact go. With them go
    the contact's links, cases, timelines and insight facts: no row the app wrote names the
    contact or one of its own browsers afterwards. First of all, a tombstone (`erasures`) keeps
    what happened before the erasure from coming back (a re-read case, a re-sent event), and
    lists the cases whose notes on Dataverse are still to be deleted (`delete_pending_notes`).
    """
    removed = {"interactions": 0, "visitors": 0, "cases": 0}
    browsers = [(visitor, rows, owners, _shared(rows, contact)) for visitor, rows, owners
                in owned(store, contact, stitch_window_ms)]
    own = [pseudonym(visitor) for visitor, _, _, shared in browsers if not shared]
    erased_ms = now_ms or ms_of(datetime.now(timezone.utc))
    if erasures is not None:
        earlier = erasures.all().get(contact)  # a retried erasure finds fewer browsers and cases: keep the first's
        noted = [row["case_id"] for row in cases.cases_of(contact)
                 if _maybe_in_dataverse(cases, row["case_id"])] if cases is not None else []
        ids = [event_id_hash(row["id"]) for visitor, rows, owners, shared in browsers
               for row, owner in zip(rows, owners, strict=True) if not shared or owner.contact == contact]
        erasures.add(contact, max(erased_ms, earlier.erased_ms if earlier else 0),
                     [*own, *(earlier.visitors if earlier else ())],
                     [*noted, *(earlier.notes_pending if earlier else ())],
                     [*(sorted(earlier.events) if earlier else ()), *ids])
    if outbox is not None:  # first: a retry after a failure here no longer finds the browsers' links
        outbox.note_erasure(contact, own, erased_ms)
    for visitor, rows, owners, shared in browsers:
        mine = {row["id"] for row, owner in zip(rows, owners, strict=True) if owner.contact == contact}
        # Every stored copy of a doomed event goes (readers see only the first: `first_copies`).
        doomed = [row for row in store.visitor_rows(visitor) if not shared or row["id"] in mine]
        removed["interactions"] += delete_rows(store, insights, visitor, doomed)
        store.unlink(contact, visitor)
        removed["visitors"] += 1
    if cases is not None:
        removed["cases"] = forget_cases(cases, insights, contact, answers)
    store.drop_table(LEGACY_TICKETS)  # earlier builds' browser-per-ticket rows: nothing reads them now
    logger.info("erased a contact: %d interactions on %d visitors, %d case timelines",
                removed["interactions"], removed["visitors"], removed["cases"], extra=removed)
    return removed


def delete_rows(store: InteractionStore, insights: InsightStore | None, visitor: str,
                rows: list[dict[str, Any]]) -> int:
    """Delete a browser's stored rows, their insight facts first (so a removal stopped half-way still
    finds the rows, and with them the facts, when it runs again). Returns the rows deleted."""
    if insights is not None:
        insights.remove_events((fact_ref(visitor, row) for row in rows if event_fact(row, visitor)),
                               visitor_hash(visitor))
    return store.delete_rows(rows)


def forget_cases(cases: CaseStore, insights: InsightStore | None, contact: str,
                 answers: AnswerStore | None = None) -> int:
    """Forget the contact's cases and timelines, their case facts and what was kept of the articles
    attached to them first. Returns the cases forgotten."""
    for row in cases.cases_of(contact):
        if insights is not None:
            insights.remove_case(row["case_id"], day_of(row["created_ms"]))
        if answers is not None:
            answers.forget_case(row["case_id"], day_of(row["created_ms"]))
    return cases.forget_contact(contact)


def _maybe_in_dataverse(cases: CaseStore, case_id: str) -> bool:
    """Whether the app may have written to the case in Dataverse: a case Dataverse has (the poller's
    or the webhook's: an assembly may have written some visits and failed before its record was
    saved, or ended in the poison queue), or one whose timeline names a note or visits."""
    if (cases.case(case_id) or {}).get("source") in ("poll", "webhook"):
        return True
    timeline = cases.timeline(case_id)
    return bool(timeline and (timeline.get("note_id") or timeline.get("visits")))


def delete_pending_notes(erasures: Tombstones, dataverse: Dataverse) -> dict[str, int]:
    """Delete what the app wrote about erased contacts in Dataverse: every Portal visit with the contact
    as its party (dci/dataverse/wall.py), and each of their cases' note and visits. A case Dataverse
    cannot clear now stays pending for the next try (the case poller's). Returns deleted (notes and
    visits) and pending (cases)."""
    from dci.dataverse.client import DataverseError
    from dci.dataverse.wall import delete_of_contact, delete_on_case

    counts = {"deleted": 0, "pending": 0}
    for stone in erasures.all().values():
        done = []
        try:
            if stone.notes_pending:  # every Portal visit with the contact as its party, then each case's
                counts["deleted"] += delete_of_contact(dataverse, stone.contact)
            for case_id in stone.notes_pending:
                counts["deleted"] += dataverse.delete_note(case_id) + delete_on_case(dataverse, case_id)
                done.append(case_id)
        except DataverseError as error:
            logger.warning("an erased contact's note or portal visits could not be deleted now (%s); "
                           "retried later", error.status, extra={"status": error.status})
        counts["pending"] += len(stone.notes_pending) - len(done)
        if done:
            erasures.notes_done(stone.contact, done)
        dataverse.forget_name(stone.contact)
    return counts


def _shared(rows: list[dict[str, Any]], contact: str) -> bool:
    """Another contact signed in on this browser too (otherwise it is the contact's own)."""
    return any(row.get("contact") not in (None, contact) for row in rows)


def export_reply(raw_contact: str, settings: Settings, stores: Stores) -> Reply:
    """GET /api/contacts/{contact_id}/export."""
    return _for_contact(raw_contact, lambda contact: json_reply(200, export(
        stores.interactions, contact, settings.stitch_window_ms, settings.session_gap_ms, stores.cases,
        stores.erased_times()), {"Cache-Control": "no-store"}))


def erase_reply(raw_contact: str, settings: Settings, stores: Stores) -> Reply:
    """DELETE /api/contacts/{contact_id}: the store at once; the lake (with LAKE_URL) at once too,
    or, when it cannot be reached, by the next lake export (the answer says "pending")."""
    def action(contact: str) -> Reply:
        document: dict[str, Any] = {"contact": contact, "removed": erase(
            stores.interactions, contact, settings.stitch_window_ms, stores.cases, stores.insights, stores.outbox,
            stores.erasures, answers=stores.answers)}
        if settings.dataverse_configured and stores.erasures is not None:
            from dci.dataverse.client import client_from

            client = client_from(settings)
            assert client is not None
            notes = delete_pending_notes(stores.erasures, client)
            document["notes"] = "pending" if notes["pending"] else "deleted"
        if settings.lake is not None:
            document["lake"] = _erase_from_lake(settings, stores, contact)
        return json_reply(200, document)

    return _for_contact(raw_contact, action)


def _erase_from_lake(settings: Settings, stores: Stores, contact: str) -> str:
    from dci.lake import export as lake
    from dci.lake.tables import LAKE_ERRORS

    assert settings.lake is not None
    try:
        lake.carry_out_erasures(lake.lake_of(settings.lake), stores, only=contact)
    except LAKE_ERRORS as error:  # the outbox keeps the erasure
        logger.warning("lake: an erasure could not be carried out now (%s); the next export retries it",
                       type(error).__name__)
        return "pending"
    return "erased"


def _for_contact(raw_contact: str, action: Callable[[str], Reply]) -> Reply:
    try:
        contact = contact_id(raw_contact)
    except Problem as problem:
        return problem_reply(problem)
    return action(contact)
