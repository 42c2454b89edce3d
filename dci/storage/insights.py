"""Insight facts and daily rollups in Table storage (table `insights`).

| PartitionKey | RowKey | holds |
|---|---|---|
| `e_{day}` | `b~{hash of its keys}` | a bundle: one batch's searches, result clicks and article reads of that day |
| `e_{day}` | the event's key | one such fact (rows of earlier builds; read alike) |
| `c_{day}` | `{case id}` | what a case created that day contributes (JSON) |
| `d_{day}` | `rollup` | the day's rollup (a JSON column per figure), what /api/insights reads |
| `d_{day}` | `rollup~{who}~{host}` | one filter's slice of the day (`slice_key`: who is signed, anonymous or *) |
| `dirty` | `{day}` | a day whose facts changed since its rollup was computed |

The whole day's row also names its slice rows (`slices`) and the portal hosts it saw (`portals`).

Facts are upserted on deterministic keys (re-delivered messages and re-assembled cases write the
same rows), then their days are marked dirty. A day's rollup is recomputed from its facts; the
dirty mark is removed only if nothing marked the day again meanwhile (ETag), so no change is lost.
A day whose rollup cannot be computed or written is skipped and stays dirty (the next run tries it
again); the days around it are done all the same, and a report names it among its missing days.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from dci import telemetry
from dci.insights import (
    COLUMN_LIMIT,
    RollupTooLarge,
    cases_behind,
    day_rollup,
    days,
    encode,
    fact_days,
    followed_sessions,
    session_slices,
    slice_key,
    slices,
    stored_columns,
    utf16_len,
)
from dci.insights.bundles import BUNDLE_PREFIX, bundles, marker, unbundle
from dci.storage.tables import AutoTable, plain

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient

logger = logging.getLogger(__name__)

INSIGHTS = "insights"
DIRTY = "dirty"
ROLLUP = "rollup"
MARK_REUSE_SECONDS = 60.0


class InsightStore:
    """Facts, dirty marks and day rollups; takes its TableServiceClient in the constructor."""

    def __init__(self, service: TableServiceClient, follow_days: int,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self._table = AutoTable(service, INSIGHTS)
        self.follow_days = follow_days
        self._clock = clock
        self._marked: dict[str, float] = {}  # live days this process marked, and when (monotonic)
        self._reported: set[str] = set()  # days whose failed rollup this process logged

    # --- facts --------------------------------------------------------------------------------------

    def add_events(self, facts: Iterable[tuple[str, str, Mapping[str, Any]]]) -> int:
        """Store (day, key, fact) event facts as bundles (dci/insights/bundles.py): for a queue
        message, one plain upsert per day (a transaction where one day needs several); mark their
        days dirty. Returns how many facts."""
        facts = list(facts)
        by_partition: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in bundles(facts):
            by_partition[row["PartitionKey"]].append(row)
        for rows in by_partition.values():
            if len(rows) == 1:
                self._table.write(lambda client, row=rows[0]: client.upsert_entity(row, mode=UpdateMode.REPLACE))
            else:
                self._table.submit(("upsert", row, {"mode": UpdateMode.REPLACE}) for row in rows)
        self.mark({day for day, _, _ in facts}, coalesce=True)
        return len(facts)

    def remove_events(self, keys: Iterable[tuple[str, str]], visitor: str) -> int:
        """Delete event facts by (day, key) (erasure): the single-fact rows of earlier builds, and,
        from the bundles of `visitor` (its `visitor_hash`) on those days, those facts (a bundle left
        with none goes). Marks the days dirty; returns how many days."""
        doomed: dict[str, set[str]] = defaultdict(set)
        for day, key in keys:
            doomed[day].add(key)
        for day, day_keys in doomed.items():
            for key in day_keys:
                self._table.delete(f"e_{day}", key)
            self._drop_from_bundles(day, day_keys, visitor)
        self.mark(doomed)
        return len(doomed)

    def _drop_from_bundles(self, day: str, keys: set[str], visitor: str) -> None:
        try:
            found = [plain(row) for row in self._table.client.query_entities(
                "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi and visitor eq @visitor",
                parameters={"pk": f"e_{day}", "lo": BUNDLE_PREFIX, "hi": BUNDLE_PREFIX + "~", "visitor": visitor})]
        except ResourceNotFoundError:
            return
        for row in found:
            facts = unbundle([row])
            kept = [fact for fact in facts if fact["RowKey"] not in keys]
            if len(kept) == len(facts):
                continue
            rest = bundles((day, fact.pop("RowKey"), {k: v for k, v in fact.items() if k != "PartitionKey"})
                           for fact in kept)
            for new in rest:  # first the rest, then the old row: stopped between, no fact is lost (nor counted twice)
                self._table.write(lambda client, new=new: client.upsert_entity(new, mode=UpdateMode.REPLACE))
            if all(new["RowKey"] != row["RowKey"] for new in rest):
                self._table.delete(row["PartitionKey"], row["RowKey"])

    def put_case(self, case_id: str, fact: Mapping[str, Any]) -> None:
        """Upsert a case's fact; marks dirty the case's day and the days of the sessions before it.
        RollupTooLarge, before any write, for a fact a string property cannot hold (`case_fact`
        bounds it; this is the check)."""
        text = encode(dict(sorted(fact.items())))
        if utf16_len(text) > COLUMN_LIMIT:
            raise RollupTooLarge(f"the case's fact would take {utf16_len(text)} UTF-16 units (at most {COLUMN_LIMIT})")
        row = {"PartitionKey": f"c_{fact['day']}", "RowKey": case_id, "fact": text}
        self._table.write(lambda client: client.upsert_entity(row, mode=UpdateMode.REPLACE))
        self.mark(fact_days(fact))

    def remove_case(self, case_id: str, day: str) -> None:
        """Delete a case's fact (erasure), marking the days it counted in."""
        row = self._table.get(f"c_{day}", case_id)
        if row is None:
            return
        fact = json.loads(row["fact"])
        self._table.delete(f"c_{day}", case_id)
        self.mark(fact_days(fact))

    def behind(self, first: str, last: str, *, search: str | None = None, article: str | None = None,
               term_rows: list[dict[str, Any]] | None = None) -> tuple[list[tuple[str, str]], int, int]:
        """What lies behind a search term or an article over the days `first`..`last`: the cases
        (id, day of the case) whose journeys searched or read it in the range (`cases_behind`); the
        sessions that searched or read it; and how many of those a case followed (within the follow
        window). Two range queries, one when a term's `term_rows` (`term_events`) were read already."""
        facts = self.case_facts(first, last)
        if search is not None:
            matching = [row for row in term_rows if row["kind"] == "search"] if term_rows is not None else \
                self._facts_of(first, last, ("search",), "term", search)
        else:
            matching = self._facts_of(first, last, ("read",), "article", article or "")
        cases = cases_behind(facts, first, last, search=search, article=article)
        followed = {session for _, fact in facts for session in fact["sessions"]}
        sessions = {row["session"] for row in matching}
        return cases, len(sessions), len(sessions & followed)

    def case_facts(self, first: str, last: str) -> list[tuple[str, dict[str, Any]]]:
        """(case id, case fact) of every case whose fact can count in `first`..`last`: created in it or
        within the follow window after it (one range query)."""
        try:
            rows = self._table.client.query_entities("PartitionKey ge @lo and PartitionKey le @hi", parameters={
                "lo": f"c_{first}", "hi": f"c_{self._followed_until(last)}"}, select=["RowKey", "fact"])
            return [(row["RowKey"], json.loads(row["fact"])) for row in rows]
        except ResourceNotFoundError:
            return []

    def term_events(self, first: str, last: str, term: str) -> list[dict[str, Any]]:
        """The searches and result clicks of one term over the days `first`..`last` (one range query)."""
        return self._facts_of(first, last, ("search", "click"), "term", term)

    def _facts_of(self, first: str, last: str, kinds: tuple[str, ...], field: str, value: str) -> list[dict[str, Any]]:
        """The event facts of `kinds` whose `field` (`term` or `article`) is `value`, over the days
        `first`..`last`, in one range query: the service returns the single-fact rows that match
        and the bundles holding one (their marker column), which are opened and filtered here."""
        kind = " or ".join(f"kind eq '{name}'" for name in kinds)
        column = marker("search" if field == "term" else "article", value)
        try:
            rows = [plain(row) for row in self._table.client.query_entities(
                f"PartitionKey ge @lo and PartitionKey le @hi and ((({kind}) and {field} eq @value ) "
                f"or {column} eq true)",
                parameters={"lo": f"e_{first}", "hi": f"e_{last}", "value": value})]
        except ResourceNotFoundError:
            return []
        return [row for row in unbundle(rows) if row.get("kind") in kinds and row.get(field) == value]

    def forget_before(self, day: str) -> int:
        """Delete the event and case facts of days before `day` (retention); returns how many.

        The day rollups stay: they hold counts and search terms, no visitor or session. The days
        are not marked dirty, so their rollups keep what they counted.
        """
        removed = 0
        for prefix in ("e_", "c_"):
            try:
                rows = list(self._table.client.query_entities(
                    "PartitionKey ge @lo and PartitionKey lt @hi", parameters={"lo": prefix, "hi": f"{prefix}{day}"},
                    select=["PartitionKey", "RowKey"]))
            except ResourceNotFoundError:
                return removed
            self._table.submit(("delete", {"PartitionKey": r["PartitionKey"], "RowKey": r["RowKey"]}) for r in rows)
            removed += len(rows)
        return removed

    def live_days(self) -> tuple[str, str]:
        """Yesterday and today (UTC): the days live traffic writes to, which `refresh` always redoes."""
        today = self._clock().date()
        return (today - timedelta(days=1)).isoformat(), today.isoformat()

    def mark(self, changed: Iterable[str], coalesce: bool = False) -> None:
        """Mark days dirty: their rollups are recomputed before they are next read.

        With `coalesce` (the linker's event facts), a live day this process marked in the last
        MARK_REUSE_SECONDS is not marked again: one write instead of one per message. A mark the
        rollup consumed meanwhile can then miss a fact for a while; the rollup timer recomputes
        the live days whatever their marks, so nothing stays out longer than its period.
        """
        live = self.live_days()
        now = time.monotonic()
        for day in sorted(changed):
            if coalesce and day in live and now - self._marked.get(day, -MARK_REUSE_SECONDS) < MARK_REUSE_SECONDS:
                continue
            self._table.write(lambda client, d=day: client.upsert_entity(
                {"PartitionKey": DIRTY, "RowKey": d}, mode=UpdateMode.REPLACE))
            if day in live:
                self._marked[day] = now

    # --- rollups ------------------------------------------------------------------------------------

    def dirty(self) -> dict[str, str]:
        """Dirty days and the ETag of each mark."""
        try:
            rows = self._table.client.query_entities("PartitionKey eq @pk", parameters={"pk": DIRTY})
            return {row["RowKey"]: row.metadata["etag"] for row in rows}
        except ResourceNotFoundError:
            return {}

    def run_rollups(self) -> list[str]:
        """The timer's run: every dirty day and the live days; timed (dci.insights.rollup.duration)."""
        started = time.perf_counter()
        with telemetry.span("rollup insights") as span:
            done = self.refresh()
            span.set({"dci.days": len(done)})
        telemetry.record("dci.insights.rollup.duration", time.perf_counter() - started)
        return done

    def refresh(self, only: Iterable[str] | None = None, limit: int = 1000) -> list[str]:
        """Recompute the rollups of dirty days (those in `only`, when given; all of them and the live
        days, for the timer); returns the days done (a day that failed is not among them)."""
        return self._refresh(only, limit)[0]

    def _refresh(self, only: Iterable[str] | None, limit: int) -> tuple[list[str], list[str]]:
        marks = self.dirty()
        wanted = sorted(set(marks) & set(only) if only is not None else set(marks) | set(self.live_days()))[:limit]
        done, failed = [], []
        for day in wanted:
            try:
                self._redo(day, marks.get(day))
                done.append(day)
            except Exception as error:  # noqa: BLE001 - one bad day must not block the others
                failed.append(day)
                self._failed(day, error, marked=day in marks)
        if wanted:
            logger.info("insights: recomputed %d day rollups (%s … %s), %d skipped", len(done), wanted[0],
                        wanted[-1], len(failed), extra={"days": len(done), "skipped": len(failed)})
        return done, failed

    def _redo(self, day: str, etag: str | None) -> None:
        computed = self.compute_all(day)
        whole = computed[ROLLUP]
        if etag is None and not (whole["cases"] or whole["sessions"]):
            return  # a live day with nothing recorded yet: no row
        kept = [key for key, rollup in computed.items() if key == ROLLUP or rollup["cases"] or rollup["sessions"]]
        named = sorted(key for key in kept if key != ROLLUP)  # the whole day's row names its slice rows (`slices`)
        rows = {key: stored_columns({**computed[key], "slices": named} if key == ROLLUP else computed[key])
                for key in kept}  # (RollupTooLarge, before any write, if storage would refuse one; `slices` included)
        stale = [key for key in self._slice_keys(day) if key not in rows]
        operations = [("upsert", {"PartitionKey": f"d_{day}", "RowKey": key, **row}, {"mode": UpdateMode.REPLACE})
                      for key, row in sorted(rows.items(), key=lambda kv: kv[0] == ROLLUP)]  # (the whole day last)
        operations += [("delete", {"PartitionKey": f"d_{day}", "RowKey": key}) for key in stale]
        for operation in operations:  # (one at a time: 9 rollups of up to 1 MiB outgrow one transaction)
            self._table.submit([operation])
        if etag is None:  # a live day the timer redid unmarked
            return
        with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):  # marked again: stays dirty
            self._table.client.delete_entity(DIRTY, day, etag=etag, match_condition=MatchConditions.IfNotModified)

    def drop_empty(self, days: Iterable[str]) -> int:
        """Delete the rollup rows (the whole day's and any slice's) of those of `days` that count
        nothing, as if they had never been rolled up; returns how many days. (The demo's removal.)"""
        wanted = set(days)
        if not wanted:
            return 0
        empty = [day["day"] for day in self.rollups(min(wanted), max(wanted))
                 if day["day"] in wanted and not (day["cases"] or day["sessions"])]
        for day in empty:
            for key in [*self._slice_keys(day), ROLLUP]:  # (the whole day's row last, as it is written)
                self._table.delete(f"d_{day}", key)
        return len(empty)

    def _slice_keys(self, day: str) -> list[str]:
        try:
            return [row["RowKey"] for row in self._table.client.query_entities(
                "PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi", select=["RowKey"],
                parameters={"pk": f"d_{day}", "lo": f"{ROLLUP}~", "hi": f"{ROLLUP}\x7f"})]
        except ResourceNotFoundError:
            return []

    def _failed(self, day: str, error: Exception, marked: bool) -> None:
        """Log a day that could not be rolled up (its error's kind only: messages may quote terms) once
        per process, and keep it dirty so that the next run tries it again."""
        if day not in self._reported:
            self._reported.add(day)
            logger.warning("insights: the rollup of %s was skipped (%s); it stays dirty and is tried again",
                           day, type(error).__name__)
        if not marked:  # (a live day the timer redoes anyway; marked, so requests try it too)
            with contextlib.suppress(Exception):
                self.mark([day])

    def _followed_until(self, day: str) -> str:
        """The last day whose cases can follow `day`'s sessions (no later than the calendar's last)."""
        start = date.fromisoformat(day)
        return (start + timedelta(days=min(self.follow_days, (date.max - start).days))).isoformat()

    def compute_all(self, day: str) -> dict[str, dict[str, Any]]:
        """A day's rollup (`rollup`) and the rollup of each of its slices (`slice_key`); each session's
        slice and the sessions a case followed are worked out once for all of them."""
        events = unbundle(self._table.partition(f"e_{day}"))
        facts = [json.loads(row["fact"]) for other in days(day, self._followed_until(day))
                 for row in self._table.partition(f"c_{other}")]
        of_session, followed = session_slices(events), followed_sessions(facts, day)
        return {ROLLUP: day_rollup(day, events, facts, of_session=of_session, followed=followed),
                **{slice_key(signed, portal): day_rollup(day, events, facts, signed, portal, of_session=of_session,
                                                         followed=followed)
                   for signed, portal in slices(events, facts, day, of_session)}}

    def rollups(self, first: str, last: str) -> list[dict[str, Any]]:
        """The rollups of the days from `first` to `last` (dirty ones recomputed first); days
        with nothing recorded, and days whose rollups could not be built, are left out."""
        return self.read(first, last)[0]

    def read(self, first: str, last: str, signed_in: bool | None = None, portal: str | None = None,
             figures: list[str] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
        """The rollups of the days from `first` to `last` (dirty ones recomputed first), of the slice
        `signed_in` / `portal` asks for (`slice_key`; both None: the whole days) — only the `figures`
        named, when given (the trend of the period before needs its counts, not its lists) —, and the days that
        are missing because their rollups could not be built or read — or, for a slice, because the
        day was rolled up before slices were kept and its facts are gone (retention)."""
        missing = set(self._refresh(days(first, last), 1000)[1])
        key = ROLLUP if signed_in is None and portal is None else slice_key(signed_in, portal)
        if key != ROLLUP:
            missing |= self._sliced(first, last, missing)
        found = []
        for row in self._rows(first, last, key, None if figures is None else ["PartitionKey", *figures]):
            day = row["PartitionKey"][2:]
            if day in missing:  # (its row, if any, is out of date)
                continue
            try:  # (a selected column the row lacks may come back as null: an older rollup, left out)
                found.append({name: json.loads(value) for name, value in plain(row).items()
                              if value is not None and name not in ("PartitionKey", "RowKey", "Timestamp", "slices")})
            except (TypeError, ValueError) as error:
                missing.add(day)
                self._failed(day, error, marked=False)
        return found, sorted(missing)

    def _rows(self, first: str, last: str, key: str, select: list[str] | None = None) -> list[Any]:
        try:
            return list(self._table.client.query_entities(
                "PartitionKey ge @lo and PartitionKey le @hi and RowKey eq @rk", select=select,
                parameters={"lo": f"d_{first}", "hi": f"d_{last}", "rk": key}))
        except ResourceNotFoundError:
            return []

    def _sliced(self, first: str, last: str, missing: set[str]) -> set[str]:
        """Days of the range rolled up before slices were kept: recomputed while their facts last; the
        days that cannot be (their facts are gone) are returned, to be named missing."""
        old = [row["PartitionKey"][2:] for row in self._rows(first, last, ROLLUP, ["PartitionKey", "slices"])
               if row.get("slices") is None and row["PartitionKey"][2:] not in missing]
        if not old:
            return set()
        kept = [day for day in old if next(iter(self._table.client.query_entities(
            "PartitionKey eq @pk", parameters={"pk": f"e_{day}"}, select=["RowKey"], results_per_page=1)), None)]
        self.mark(kept)
        return set(old) - set(self.refresh(kept))

    def portals(self, first: str, last: str) -> list[str]:
        """The portal hosts the days of the range saw (the `portals` of their whole-day rollups)."""
        hosts: set[str] = set()
        for row in self._rows(first, last, ROLLUP, ["PartitionKey", "portals"]):
            with contextlib.suppress(TypeError, ValueError):
                hosts.update(json.loads(row.get("portals") or "[]"))
        return sorted(hosts)

