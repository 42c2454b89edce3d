"""`python -m dci demo seed [--remove]`: a month of made-up portal history in the local store, so that
a first look at the insights dashboard shows rates, trends and content gaps instead of empty cards.

The history is dci/runner/demo_history.py's. It goes the way real events go from the queue on: each
batch is the `portal-events` message collect writes for it (at the batch's own arrival time: its
last event plus a second), handed to the linker with its case follow-up (portal cases); the `cases`
messages that queues are assembled once settled, and the seeded days' rollups recomputed. Seeding
twice writes nothing twice: the same day always gets the same sessions and event ids, and the
linker keeps the first copy of an id; what was seeded whole before is not even linked again.

`remove` takes out exactly it, found by its marks (`demo-` visitors, contacts under DEMO_NAMESPACE).
It is not an erasure: it leaves no tombstone. Left out on purpose: the lake outbox (rows exported to
Delta tables could only leave them by an erasure) and the portals' last-beacon marks (the install
check must not take the demo for a portal's beacon).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from dci import assembler, linker
from dci.cases import case_message, claimed_case
from dci.clock import ms_of
from dci.insights import days as days_between
from dci.privacy import delete_rows, forget_cases
from dci.runner import demo_answers
from dci.runner.demo_history import DEMO_CONTACTS, VISITOR_PREFIX, WEEKDAY_SESSIONS, edited_at, messages, plan
from dci.storage.keys import interactions_table

if TYPE_CHECKING:
    from dci.settings import Settings
    from dci.storage import Stores
    from dci.storage.interactions import InteractionStore


class _CasesKept:
    """The seed's `cases` queue: what the linker and the assembler queue, kept here and assembled by
    the seed itself (nothing is left on the real queue for a runner to take up later)."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, text: str, delay_seconds: int = 0) -> None:
        self.sent.append(text)  # (list.append is atomic: linker threads share it)


class _NoBeaconNotes:
    """The interactions store, but a seeded batch is no portal's beacon: the install check
    (/api/health/details, `state`/`beacons`) keeps the time a real beacon last arrived."""

    def __init__(self, store: InteractionStore) -> None:
        self._store = store

    def note_beacon(self, site: str, received_at: str) -> None:
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def seed(settings: Settings, stores: Stores, days: int = 30, weekday_sessions: int = WEEKDAY_SESSIONS,
         now: datetime | None = None, again: bool = False, workers: int = 8) -> dict[str, Any]:
    """Write the demo history of the `days` days up to `now` (UTC): link every batch, assemble the
    cases, recompute the days' rollups. What was seeded whole before is skipped (a day's sessions, a
    follow-up visit: its last batch is stored) unless `again`: linking it again would change nothing.
    Returns what it did (counts only)."""
    started = time.perf_counter()
    now = now or datetime.now(timezone.utc)
    hosts = settings.portal_issuers[:2]
    last = now.astimezone(timezone.utc).date()
    first = last - timedelta(days=days - 1)
    if settings.dataverse_configured:  # demo cases are portal cases: no Dataverse knows them
        settings = settings.model_copy(update={"dataverse_url": None})
    seeding = _Seeding(settings, dataclasses.replace(
        stores, interactions=_NoBeaconNotes(stores.interactions), cases_queue=_CasesKept(), outbox=None),
        ms_of(now), workers)
    done = {"sessions": 0, "batches": 0, "events": 0, "skipped": 0}
    with seeding:
        for sessions, later in plan(hosts, first, last, ms_of(now), weekday_sessions):
            # One unit a day's sessions, one each follow-up visit (they come into view as the days pass).
            for unit in (sessions, *([s] for s in later)):
                bodies = [body for s in unit for body in messages(s, settings)]
                if bodies and not again and _stored(stores.interactions, max(bodies, key=_arrival)):
                    seeding.note_cases(bodies)
                    done["skipped"] += len(unit)
                else:
                    done["events"] += seeding.link(bodies)
                    done["sessions"], done["batches"] = done["sessions"] + len(unit), done["batches"] + len(bodies)
        seeding.assemble()
    if stores.answers is not None:  # what agents attached to the demo's cases, and the article changed halfway
        facts = dict(stores.insights.case_facts(first.isoformat(), last.isoformat()))
        created = {case_id: (stores.cases.case(case_id) or {}).get("created_ms") for case_id in seeding.cases}
        done["attachments"] = demo_answers.seed(stores.answers, [
            (case_id, facts[case_id], ms) for case_id, ms in created.items() if ms and case_id in facts],
            first, edited_at(ms_of(now)))
    recomputed = stores.insights.refresh(days_between(first.isoformat(), last.isoformat()))
    return {"from": first.isoformat(), "to": last.isoformat(), "portals": list(hosts), **done,
            "cases": seeding.outcomes, "days_recomputed": len(recomputed),
            "seconds": round(time.perf_counter() - started, 1)}


def _arrival(body: bytes) -> str:
    return json.loads(body)["received_at"]


def _stored(interactions: InteractionStore, body: bytes) -> bool:
    """The batch's last event is stored (for its visitor, in the month of its time)."""
    message = json.loads(body)
    event = message["events"][-1]
    rows = interactions.visitor_rows(message["visitor"], [interactions_table(event["ts"])])
    return any(row["id"] == event["id"] for row in rows)


class _Seeding:
    """Links batches on a pool of threads; at the end assembles the cases they queued, once settled."""

    def __init__(self, settings: Settings, stores: Stores, now_ms: int, workers: int) -> None:
        self.settings, self.stores, self.now_ms = settings, stores, now_ms
        self.pool = ThreadPoolExecutor(workers)
        self.outcomes: dict[str, int] = {}
        self.cases: set[str] = set()  # the portal cases the batches seen claim

    def __enter__(self) -> _Seeding:
        return self

    def __exit__(self, *_: object) -> None:
        self.pool.shutdown(cancel_futures=True)  # (stopped with Ctrl-C: what has not started does not)

    def link(self, bodies: list[bytes]) -> int:
        """Link the batches as the `portal-events` trigger does, the last to arrive last (a day whose
        last batch is stored is all there); returns the events linked."""
        self.note_cases(bodies)
        last = max(bodies, key=_arrival, default=None)
        linked = sum(self.pool.map(lambda body: linker.handle(body, self.settings, self.stores),
                                   [body for body in bodies if body is not last]))
        return linked + (linker.handle(last, self.settings, self.stores) if last is not None else 0)

    def note_cases(self, bodies: list[bytes]) -> None:
        """Note the portal cases these batches claim (`cases.claimed_case`)."""
        for message in (json.loads(body) for body in bodies if b"case_submitted" in body):
            self.cases |= {case["case_id"] for event in message["events"]
                           if (case := claimed_case(message, event, portal_cases=True))}

    def assemble(self) -> None:
        """The queued cases, and those a seed stopped half-way queued and never assembled: a
        contact's cases in order, contacts side by side. What an assembly queues again (a case that
        comes before another) is assembled in the next round."""
        queue: list[str] = self.stores.cases_queue.sent  # type: ignore[attr-defined]
        queued = {json.loads(text)["case_id"] for text in queue}
        for stored in self.pool.map(self.stores.cases.stored_case, sorted(self.cases - queued)):
            if stored and stored["status"] == "queued":
                queue.append(case_message(stored["case"]))
        for _ in range(5):
            latest = {json.loads(text)["case_id"]: json.loads(text) for text in queue}  # (queued twice: once)
            queue.clear()
            by_contact: dict[str, list[dict[str, Any]]] = {}
            for case in latest.values():
                by_contact.setdefault(case.get("contact") or "", []).append(case)
            for outcomes in self.pool.map(self._assemble, by_contact.values()):
                for outcome in outcomes:
                    self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if not queue:
                return

    def _assemble(self, cases: list[dict[str, Any]]) -> list[str]:
        return [assembler.handle(json.dumps(case).encode(), self.stores, self.settings,
                                 max(self.now_ms, case["created_ms"] + self.settings.settle_ms + 1000), None)
                for case in sorted(cases, key=lambda case: case["created_ms"])]


def remove(settings: Settings, stores: Stores, workers: int = 8) -> dict[str, Any]:
    """Remove the demo history and nothing else: the `demo-` visitors' interactions and insight
    facts, the demo contacts' links, cases, timelines and case facts; then recompute the days they
    counted in (a day left with nothing has no rollup again, as before the seed). Not an erasure:
    no tombstone is written. Returns what it removed (counts only)."""
    started = time.perf_counter()
    interactions, insights = stores.interactions, stores.insights
    tables = interactions.interaction_tables()
    visitors = [visitor for visitor in interactions.visitors() if visitor.startswith(VISITOR_PREFIX)]

    def forget(contact: str) -> int:
        for link in interactions.visitors_of(contact):
            interactions.unlink(contact, link["visitor"])
        return forget_cases(stores.cases, insights, contact, stores.answers)

    def drop(visitor: str, rows: list[dict[str, Any]]) -> int:
        return delete_rows(interactions, insights, visitor, rows)

    pool = ThreadPoolExecutor(workers)
    try:
        rows = list(pool.map(lambda visitor: interactions.visitor_rows(visitor, tables), visitors))
        # The contacts first, found in the browsers' rows: a removal stopped half-way finds them again.
        contacts = {row["contact"] for found in rows for row in found if row.get("contact")} & DEMO_CONTACTS
        cases = sum(pool.map(forget, sorted(contacts)))
        events = sum(pool.map(drop, visitors, rows))
    finally:
        pool.shutdown(cancel_futures=True)
    if stores.answers is not None:  # (the demo cases' attachments went with them; its articles and suggestions)
        demo_answers.remove(stores.answers, ())
    recomputed = insights.refresh()  # the days marked dirty above (and any other dirty day)
    insights.drop_empty(recomputed)  # a day left with nothing: no rollup, as before the seed
    return {"visitors": len(visitors), "events": events, "cases": cases, "days_recomputed": len(recomputed),
            "seconds": round(time.perf_counter() - started, 1)}


def command(settings: Settings, stores: Stores, days: int = 30, weekday_sessions: int | None = None,
            removing: bool = False, again: bool = False) -> int:
    """`python -m dci demo seed [--remove]`: do it, and say what was done in a few lines (counts only)."""
    from azure.core.exceptions import AzureError

    try:
        if removing:
            done = remove(settings, stores)
            print(f"removed the demo history: {done['events']:,} events of {done['visitors']:,} browsers, "
                  f"{done['cases']:,} cases; {done['days_recomputed']} day rollups recomputed in {done['seconds']} s")
            return 0
        if days < 1:
            print("--days must be 1 or more", file=sys.stderr)
            return 2
        hosts = settings.portal_issuers[:2]
        print(f"seeding {days} days of demo history on {' and '.join(hosts)} (the first time takes a few minutes) …",
              flush=True)
        if len(hosts) == 1:
            print("only one portal is configured (PORTAL_ISSUERS): every session is on it")
        if settings.dataverse_configured:
            print("DATAVERSE_URL is set: the demo's cases are portal cases all the same (no Dataverse knows them)")
        done = seed(settings, stores, days, weekday_sessions or WEEKDAY_SESSIONS, again=again)
    except KeyboardInterrupt:
        print("stopped: what was done stays; run it again to finish", file=sys.stderr)
        return 130
    except AzureError as error:
        # (its type only: a storage error's text can quote a request's keys, which name visitors)
        print(f"storage error ({type(error).__name__}): is Azurite running? `make dev` starts it", file=sys.stderr)
        return 1
    cases = ", ".join(f"{n:,} {outcome}" for outcome, n in sorted(done["cases"].items())) or "none new"
    print(f"seeded {done['from']} – {done['to']}: {done['sessions']:,} sessions, {done['events']:,} events in "
          f"{done['batches']:,} batches, cases: {cases}; {done['days_recomputed']} day rollups recomputed in "
          f"{done['seconds']} s")
    if done["skipped"]:
        print(f"{done['skipped']:,} sessions were there already and were skipped (--again links them again)")
    return 0
