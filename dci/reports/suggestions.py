"""The suggestions of a range (issue 29): the insight store's case facts and term facts, the answers
store's attachments and article versions, through the pure rules of dci/insights/answers.py.

For every term with cases after it in the range: the articles agents attached to those cases
(`answered_by`); for each (term, article) pair the rules keep, a suggestion, put on record the first
time it is found (when, why, the article's last change then) so that its status can follow the
article: `open` until the article changes or the suggestion is marked done, then the term before and
after that moment (`changed`, `worked`, `no change`, `too few`). A changed suggestion is followed
whatever the rule says in the range.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from dci.clock import day_of, iso_of
from dci.insights.answers import MIN_ANSWERED, TermFigures, answered_by, compare, suggestions
from dci.insights.facts import dated
from dci.insights.search import TERM_FIELDS, add_search

COMPARE_DAYS = 28  # the periods before and after a change: the days since it, at most this many

if TYPE_CHECKING:
    from dci.storage import Stores
    from dci.storage.answers import AnswerStore
    from dci.storage.insights import InsightStore


NO_DATAVERSE = ("Suggestions need Dynamics 365 Customer Service: they come from the knowledge articles agents attach "
                "to the cases they resolve, read from Dataverse (DATAVERSE_URL). Without it cases come from the "
                "portal alone, and there is nothing to learn from.")


def with_suggestions(report: Mapping[str, Any], stores: Stores, dataverse: bool, now_ms: int) -> dict[str, Any]:
    """The range's report with its `suggestions` (or, without Dataverse, none and why). They count
    whole days, whatever slice (signed in, portal) the report shows."""
    if not dataverse or stores.answers is None:
        return {**report, "suggestions": [], "suggestions_note": NO_DATAVERSE}
    found = range_suggestions(stores.insights, stores.answers, report["from"], report["to"], now_ms)
    links = {row["article"]: row["url"] for name in ("articles", "top_articles") for row in report.get(name) or ()
             if row.get("url")}  # (the article's own page on the portal, where the range saw it)
    return {**report, "suggestions": [{**s, "article_url": links.get(s["article"])} for s in found["suggestions"]]}


def answered_for(stores: Stores, cases: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """The articles agents attached to these (case id, day) cases: the drill-down of one term."""
    if stores.answers is None or not cases:
        return []
    attached, titles, _ = _answers(stores.answers, [day for _, day in cases])
    return answered_by((case for case, _ in cases), attached, titles)


class _Answers(NamedTuple):
    attached: dict[str, set[str]]  # case id -> article numbers attached to it
    titles: dict[str, str | None]  # article number -> its latest version's title
    latest: dict[str, Mapping[str, Any]]  # article number -> its latest version's columns


def _answers(answers: AnswerStore, case_days: Sequence[str]) -> _Answers:
    """What agents attached to the cases of these days, by article number, and the articles' titles."""
    numbers, latest = latest_versions(answers.versions())
    by_version = answers.attached(min(case_days), max(case_days)) if case_days else {}
    return _Answers({case: {numbers[v] for v in versions if v in numbers} for case, versions in by_version.items()},
                    {number: str(row.get("title") or "") or None for number, row in latest.items()}, latest)


def latest_versions(versions: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, str], dict[str, Mapping[str, Any]]]:
    """Article version id -> public number (any version: agents attach drafts too), and public
    number -> its latest published version's columns (a draft is no change a customer sees)."""
    numbers = {version_id: str(row["number"]).upper() for version_id, row in versions.items() if row.get("number")}
    latest: dict[str, Mapping[str, Any]] = {}
    for version_id, number in numbers.items():
        row = versions[version_id]
        if row.get("published") and (number not in latest or row["modified_ms"] > latest[number]["modified_ms"]):
            latest[number] = row
    return numbers, latest


def term_cases(facts: Sequence[tuple[str, Mapping[str, Any]]], first: str, last: str) -> dict[str, set[str]]:
    """Each term searched in `first`..`last` before a case, with those cases (the report's rule)."""
    out: dict[str, set[str]] = {}
    for case_id, fact in facts:
        for term, day in dated(fact, "searches").items():
            if first <= day <= last:
                out.setdefault(term, set()).add(case_id)
    return out


def term_totals(insights: InsightStore, first: str, last: str) -> dict[str, list[int]]:
    """The per-term figures (TERM_FIELDS rows) of `first`..`last`, from its days' rollups."""
    total: dict[str, Any] = {}
    for day in insights.read(first, last, figures=["day", "terms"])[0]:
        add_search(total, day)
    return total.get("terms") or {}


def searches_to(rows: Sequence[Mapping[str, Any]]) -> Counter[str]:
    """Of one term's searches and result clicks (`term_events`), per article: the searches followed
    by a click to it before the session's next search of the term (a search counts once per article,
    however often it was clicked: a rate of searches never exceeds 1)."""
    by_session: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_session.setdefault(str(row.get("session")), []).append(row)
    counts: Counter[str] = Counter()
    for events in by_session.values():
        opened: set[str] | None = None
        for event in sorted(events, key=lambda e: (e.get("ts") or 0, e.get("kind") != "search")):
            if event.get("kind") == "search":
                counts.update(opened or ())
                opened = set()
            elif event.get("kind") == "click" and event.get("article") and opened is not None:
                opened.add(event["article"])
        counts.update(opened or ())
    return counts


def period(insights: InsightStore, term: str, article: str, first: str, last: str) -> TermFigures:
    """One term over `first`..`last`: its searches (those with a result count, those that found
    nothing), its result clicks to `article`, the cases after it."""
    figures = dict(zip(TERM_FIELDS, term_totals(insights, first, last).get(term) or [0] * len(TERM_FIELDS),
                       strict=True))
    clicks = min(searches_to(insights.term_events(first, last, term))[article], figures["searches"])
    cases = term_cases(insights.case_facts(first, last), first, last).get(term, set())
    return TermFigures(figures["searches"], figures["with_result_count"], figures["zero"], clicks, len(cases))


def range_suggestions(insights: InsightStore, answers: AnswerStore, first: str, last: str, now_ms: int,
                      terms: Mapping[str, Sequence[int]] | None = None) -> dict[str, Any]:
    """The suggestions of the range (`{"suggestions": [...]}`), each with its status and, once the
    article changed, the term before and after (`compare`). `terms`: the range's per-term figures,
    when read already (`term_totals`)."""
    terms = term_totals(insights, first, last) if terms is None else terms
    facts = insights.case_facts(first, last)
    cases_of = term_cases(facts, first, last)
    attached, titles, latest = _answers(answers, [fact["day"] for _, fact in facts])
    states = answers.suggestion_states()
    changed_at = {sid: _changed_ms(answers, state, latest) for sid, state in states.items()}
    changed: dict[str, dict[str, str]] = {}  # term -> article -> why its suggestion was made: followed, whatever now
    for sid, state in states.items():
        if changed_at[sid] is not None:
            changed.setdefault(state["term"], {})[state["article"]] = state.get("because") or "zero results"
    found: list[dict[str, Any]] = []
    for term in sorted(cases_of.keys() | changed.keys()):
        cases = cases_of.get(term, set())
        rows = answered_by(cases, attached, titles)
        kept = changed.get(term, {})
        rows += [{"article": a, "title": titles.get(a), "cases": 0, "share": None}  # (nothing answered in the range)
                 for a in kept if a not in {row["article"] for row in rows}]
        if not kept and (not rows or rows[0]["cases"] < MIN_ANSWERED):
            continue
        figures = dict(zip(TERM_FIELDS, terms.get(term) or [0] * len(TERM_FIELDS), strict=True))
        clicks = searches_to(insights.term_events(first, last, term))
        # (the clicks to each article travel in `clicks`; TermFigures' own is for `compare`)
        for suggestion in suggestions(term, len(cases), rows, TermFigures(
                figures["searches"], figures["with_result_count"], figures["zero"], 0, len(cases)), clicks, kept):
            if suggestion["id"] not in states:
                state = answers.note_suggestion(suggestion, latest.get(suggestion["article"], {}).get("modified_ms"),
                                                now_ms)
                changed_at[suggestion["id"]] = _changed_ms(answers, state, latest)
            found.append({**suggestion, **_status(insights, suggestion, changed_at[suggestion["id"]], now_ms)})
    found.sort(key=lambda s: (-s["answered"], -s["cases"], s["term"], s["article"]))
    return {"suggestions": found}


def moment(state: Mapping[str, Any], modified_ms: int | None) -> int | None:
    """When a suggestion's article changed for it: its published `modifiedon` moved past the value it
    had when the suggestion was first made, or it was marked done (the earlier of the two); None: not
    yet."""
    then = state.get("modified_then_ms")
    moved = modified_ms if modified_ms is not None and then is not None and modified_ms > then else None
    return min((m for m in (moved, state.get("done_ms")) if m is not None), default=None)


def _changed_ms(answers: AnswerStore, state: Mapping[str, Any], latest: Mapping[str, Mapping[str, Any]]) -> int | None:
    """The moment a suggestion's article changed for it, fixed the first time it is seen: a later edit
    (a typo fixed a week after) does not restart its before and after."""
    if state.get("changed_ms") is not None:
        return int(state["changed_ms"])
    found = moment(state, latest.get(state["article"], {}).get("modified_ms"))
    if found is not None:
        answers.note_change(state["RowKey"], found)
    return found


def _status(insights: InsightStore, suggestion: Mapping[str, Any], changed_ms: int | None,
            now_ms: int) -> dict[str, Any]:
    """`open` until the article changes for it (`_changed_ms`); from that moment (`changed_on`), the
    term over the whole days after it up to yesterday (at most COMPARE_DAYS) against as many days
    before it — the day of the change in neither —, and the status `compare` gives."""
    if changed_ms is None:
        return {"status": "open", "changed_on": None, "before": None, "after": None}
    changed = day_of(changed_ms)
    length = min(COMPARE_DAYS, (date.fromisoformat(day_of(now_ms)) - date.fromisoformat(changed)).days - 1)
    if length < 1:
        return {"status": "changed", "changed_on": iso_of(changed_ms), "before": None, "after": None}
    start = date.fromisoformat(changed)
    after = (start + timedelta(days=1), start + timedelta(days=length))
    before = (start - timedelta(days=length), start - timedelta(days=1))
    term, article = suggestion["term"], suggestion["article"]
    judged = compare(period(insights, term, article, *(d.isoformat() for d in before)),
                     period(insights, term, article, *(d.isoformat() for d in after)), suggestion["because"], length)
    return {"status": judged["status"], "changed_on": iso_of(changed_ms),
            "before": {"from": before[0].isoformat(), "to": before[1].isoformat(), **judged["before"]},
            "after": {"from": after[0].isoformat(), "to": after[1].isoformat(), **judged["after"]},
            "difference": judged["difference"], "judged_by": judged["judged_by"]}
