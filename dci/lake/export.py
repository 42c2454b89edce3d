"""The lake export: the outbox's pending visitors and cases merged into the Delta tables, the
pending erasures carried out, and the daily upkeep (retention, compaction, vacuum).

A run reads the oldest entries of the outbox, rebuilds the rows of each visitor named (all of its
stored events: a sign-in changes the attribution of the browsing before it) and of each case (with
the visitors of its contact: the case's events gain its id), merges them, and only then clears the
entries. A crash before the clearing leaves them for the next run, whose merge changes nothing
that is already there: exactly once, without a watermark to keep in step with the tables.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from dci import telemetry
from dci.clock import AFTER_ARRIVAL_MS, iso_of
from dci.ids import GUID_FULL_PATTERN
from dci.lake.rows import PSEUDONYM_PATTERN, Membership, case_row, interaction_rows, membership

if TYPE_CHECKING:
    from dci.lake.tables import Lake
    from dci.lake.target import LakeLocation
    from dci.settings import Settings
    from dci.storage import Stores
    from dci.storage.outbox import Entry

logger = logging.getLogger(__name__)

MAX_ENTRIES = 5000  # outbox entries per run: bounds one run's time and memory; the rest wait for the next
MAX_SET_ASIDE = 10  # entries one run sets aside; more refused alone means the lake, not the entries, is wrong
CHUNK = 1000  # entries whose rows are built and merged together
READERS = 8  # storage reads at once (the SDK clients are thread-safe; each read is a round trip)
_lakes: dict[tuple[str, str], Lake] = {}


def lake_of(where: LakeLocation) -> Lake:
    """The process's Lake for a location (delta-rs loads here, on the first export)."""
    from dci.lake.tables import Lake

    key = (where.root, where.account_url)
    if key not in _lakes:
        _lakes[key] = Lake(where)
    return _lakes[key]


def run(settings: Settings, stores: Stores) -> dict[str, Any] | None:
    """The timer's run (LAKE_SCHEDULE): export what is pending, then carry out pending erasures.
    Returns what it did, None when no lake is configured (nothing is imported then)."""
    if settings.lake is None or stores.outbox is None:
        return None
    lake = lake_of(settings.lake)
    started = time.perf_counter()
    if telemetry.on():  # before the work: a lake that keeps failing shows as a growing lag
        telemetry.record("dci.lake.export.lag", stores.outbox.waited())
    with telemetry.span("export lake") as span:
        erasures = carry_out_erasures(lake, stores)  # first, and whatever the interactions' chunks do
        done = export(lake, stores, settings.stitch_window_ms)
        done["erasures"] = erasures
        stores.outbox.forget_erasures()
        span.set({f"dci.lake.{name}": value for name, value in done.items()})
    logger.log(logging.INFO if done["entries"] or done["erasures"] else logging.DEBUG,
               "lake: %d interactions and %d cases merged (%d inserted, %d updated) from %d outbox entries in "
               "%.1f s; %d erasures", done["interactions"], done["cases"], done["inserted"], done["updated"],
               done["entries"], time.perf_counter() - started, done["erasures"], extra=done)
    return done


def export(lake: Lake, stores: Stores, window_ms: int, limit: int = MAX_ENTRIES, chunk: int = CHUNK) -> dict[str, int]:
    """Merge the rows of the pending visitors and cases, `chunk` entries at a time (each chunk's
    entries cleared after its merge: memory stays bounded however long the visitors' histories).
    Returns counts."""
    assert stores.outbox is not None
    entries = stores.outbox.pending(limit)
    done = {"entries": len(entries), "interactions": 0, "cases": 0, "inserted": 0, "updated": 0, "set_aside": 0}
    named: set[str] = set()
    for start in range(0, len(entries), chunk):
        for name, count in _export_or_set_aside(lake, stores, window_ms, entries[start:start + chunk], named,
                                                done).items():
            done[name] += count
    done["erased_again"] = erase_again(lake, stores, named)
    return done


def _export_or_set_aside(lake: Lake, stores: Stores, window_ms: int, entries: list[Entry],
                         named: set[str], so_far: dict[str, int]) -> dict[str, int]:
    """Merge the entries' rows and clear them. When the lake refuses the chunk but is reachable,
    its halves are tried alone, down to single entries: an entry refused on its own is set aside
    with the reason, and the others go on. An unreachable lake or store raises (the next run
    retries), and so does a run that would set aside more than MAX_SET_ASIDE: then the lake refuses
    everything (its schema, its permissions), not a few entries, and the entries wait."""
    assert stores.outbox is not None
    try:
        merged = _export(lake, stores, window_ms, entries, named)
    except Exception as error:  # noqa: BLE001 - whatever one entry's rows break, the probe below tells lake from entry
        lake.table("interactions")  # each of these two raises when it cannot be reached
        stores.outbox.pending(1)
        if len(entries) == 1 and so_far["set_aside"] >= MAX_SET_ASIDE:
            raise
        if len(entries) == 1:
            logger.error("lake: an outbox entry was set aside: its rows were refused (%s)", type(error).__name__)
            telemetry.count("dci.lake.set_aside")
            stores.outbox.set_aside(entries[0], f"{type(error).__name__}: {_first_line(error)}")
            so_far["set_aside"] += 1
            return {}
        half = len(entries) // 2
        totals: dict[str, int] = {}
        for part in (entries[:half], entries[half:]):
            for name, count in _export_or_set_aside(lake, stores, window_ms, part, named, so_far).items():
                totals[name] = totals.get(name, 0) + count
        return totals
    stores.outbox.done(entries)
    return merged


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [""])[0][:300]


def erase_again(lake: Lake, stores: Stores, named: set[str]) -> int:
    """Carry out again the erasures already carried out whose contact, or one of whose browsers,
    the rows just merged name: those rows were read before the erasure and merged after it."""
    assert stores.outbox is not None
    again = 0
    for entry in stores.outbox.erasures():
        if entry.erased and ({entry.row, *entry.own_visitors} & named):
            _erase_entry(lake, entry)
            again += 1
    return again


def _export(lake: Lake, stores: Stores, window_ms: int, entries: list[Entry], named: set[str]) -> dict[str, int]:
    visitors = {entry.visitor for entry in entries if entry.visitor}
    cases = []
    for case_id in sorted({entry.case_id for entry in entries if entry.case_id}):
        stored, timeline = stores.cases.case(case_id), stores.cases.timeline(case_id)
        if stored is None or timeline is None:
            continue  # erased, or not assembled
        cases.append(case_row({"case_id": case_id, **stored}, timeline["document"]))
        if stored.get("contact"):
            visitors |= {link["visitor"] for link in stores.interactions.visitors_of(stored["contact"])}
    rows = _interactions(stores, sorted(visitors), window_ms)
    named |= {row[column] for row in rows + cases for column in ("contact_id", "visitor") if row[column]}
    merged = {"interactions": len(rows), "cases": len(cases), "inserted": 0, "updated": 0}
    for name, batch in (("interactions", rows), ("cases", cases)):
        if batch:
            counts = lake.merge(name, batch)
            for change in ("inserted", "updated"):
                merged[change] += counts[change]
                telemetry.count("dci.lake.rows", counts[change], {"dci.lake.table": name, "dci.lake.change": change})
    return merged


def _interactions(stores: Stores, visitors: list[str], window_ms: int) -> list[dict[str, Any]]:
    """The rows of these visitors' stored events, each with the case it led to. The reads are many
    small round trips: READERS run at once."""
    tables = stores.interactions.interaction_tables()
    erased = stores.erased_times()
    with ThreadPoolExecutor(READERS) as pool:
        events_of = dict(zip(visitors, pool.map(lambda v: stores.interactions.visitor_events(v, tables), visitors),
                             strict=True))
        contacts = sorted({event["contact"] for events in events_of.values() for event in events
                           if event.get("contact")})
        cases_of = dict(zip(contacts, pool.map(lambda c: membership(_timelines(stores, c)), contacts), strict=True))
    rows = []
    for visitor, events in events_of.items():
        led_to: Membership = {}
        for contact in sorted({event["contact"] for event in events if event.get("contact")}):
            led_to |= cases_of[contact]
        rows += interaction_rows(visitor, events, window_ms, led_to, erased)
    return rows


def _timelines(stores: Stores, contact: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    out = []
    for case in stores.cases.cases_of(contact):
        timeline = stores.cases.timeline(case["case_id"])
        if timeline is not None:
            out.append((case, timeline["document"]))
    return out


def backfill(stores: Stores) -> int:
    """Note every stored visitor and assembled case for the next export (the history from before
    LAKE_URL was set); returns how many entries."""
    assert stores.outbox is not None
    return stores.outbox.note_all(stores.interactions.visitors(), stores.cases.assembled())


# --- erasure ------------------------------------------------------------------------------------


def erase(lake: Lake, contact: str, own_visitors: Iterable[str], erased_ms: int | None = None) -> dict[str, int]:
    """Delete the contact's rows, and every row of the browsers that were theirs alone, from both
    tables (files rewritten; the old files go at the next vacuum; the log names none of them) —
    those from before the erasure (`erased_ms`, with the minute an event may claim past its
    arrival): what the person did after it is new activity, and stays. Returns the rows deleted."""
    if not re.fullmatch(GUID_FULL_PATTERN, contact):
        raise ValueError("not a contact id")
    pseudonyms = sorted(own_visitors)
    if not all(re.fullmatch(PSEUDONYM_PATTERN, value) for value in pseudonyms):
        raise ValueError("not a visitor pseudonym")
    whose = f"contact_id = '{contact}'"
    if pseudonyms:
        whose += " OR visitor IN (" + ", ".join(f"'{value}'" for value in pseudonyms) + ")"
    removed = {}
    for name, time_column in (("interactions", "timestamp"), ("cases", "created")):
        predicate = f"({whose})"
        if erased_ms is not None:
            predicate += f" AND {time_column} <= TIMESTAMP '{iso_of(erased_ms + AFTER_ARRIVAL_MS)}'"
        removed[name] = lake.delete_where(name, predicate)
    return removed


def carry_out_erasures(lake: Lake, stores: Stores, only: str | None = None) -> int:
    """Carry out the pending erasures (or the one of contact `only`); returns how many were done.
    One that fails stays pending for the next run; one carried out stays ERASURE_KEPT for
    `erase_again`."""
    from dci.lake.tables import LAKE_ERRORS

    assert stores.outbox is not None
    done = 0
    for entry in stores.outbox.erasures():
        if entry.erased or (only is not None and entry.row != only):
            continue
        try:
            _erase_entry(lake, entry)
        except LAKE_ERRORS as error:  # stays pending; the others go on
            if only is not None:
                raise
            logger.warning("lake: an erasure failed (%s); the next run retries it", type(error).__name__)
            continue
        stores.outbox.mark_erased(entry)
        done += 1
    return done


def _erase_entry(lake: Lake, entry: Entry) -> None:
    removed = erase(lake, entry.row, entry.own_visitors, entry.erased_ms)
    logger.info("lake: erased a contact's rows (%d interactions, %d cases)", removed["interactions"],
                removed["cases"], extra={f"lake_{name}": count for name, count in removed.items()})


# --- upkeep -------------------------------------------------------------------------------------


def maintain(lake: Lake, now: datetime, retention_days: int, vacuum_hours: int) -> dict[str, int]:
    """The daily upkeep: drop the interactions of the days older than the retention period (whole
    partitions, as the store drops whole months; cases stay, as their timelines do), compact each
    day's small files, and vacuum the files no version younger than `vacuum_hours` uses — erased
    rows are gone from storage after at most that long and a day."""
    cutoff = (now - timedelta(days=retention_days)).date().isoformat()
    dropped = lake.delete("interactions", f"date < DATE '{cutoff}'")
    compacted = sum(lake.compact(name).get("numFilesRemoved", 0) for name in ("interactions", "cases"))
    vacuumed = sum(lake.vacuum(name, vacuum_hours) for name in ("interactions", "cases"))
    done = {"expired_interactions": dropped, "compacted_files": compacted, "vacuumed_files": vacuumed}
    logger.info("lake upkeep: %d interactions past retention, %d small files compacted, %d old files vacuumed",
                dropped, compacted, vacuumed, extra=done)
    return done
