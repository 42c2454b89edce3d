"""The suggestions of a range (issue 29): the insight store's case facts and term facts, the answers
store's attachments and article versions, through the pure rules of dci/insights/answers.py.

For every term with cases after it in the range: the articles agents attached to those cases
(`answered_by`); for each (term, article) pair the rules keep, a suggestion, whose state (when it was
first made, the article's last change then, marked done) is kept so that its status can follow the
article: `open` until the article changes or the suggestion is marked done, `changed` after.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dci.insights.answers import MIN_ANSWERED, TermFigures, answered_by, suggestions
from dci.insights.facts import dated
from dci.insights.search import TERM_FIELDS

if TYPE_CHECKING:
    from dci.storage.answers import AnswerStore
    from dci.storage.insights import InsightStore


def latest_versions(versions: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, str], dict[str, Mapping[str, Any]]]:
    """Article version id -> public number, and public number -> its latest version's columns."""
    numbers = {version_id: str(row["number"]).upper() for version_id, row in versions.items() if row.get("number")}
    latest: dict[str, Mapping[str, Any]] = {}
    for version_id, number in numbers.items():
        row = versions[version_id]
        if number not in latest or row["modified_ms"] > latest[number]["modified_ms"]:
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


def range_suggestions(insights: InsightStore, answers: AnswerStore, first: str, last: str,
                      terms: Mapping[str, Sequence[int]], now_ms: int) -> dict[str, Any]:
    """`answered_by` per term and the suggestions of the range. `terms`: the range's per-term figures
    (TERM_FIELDS rows, the insights' `total(...)["search"]["terms"]`)."""
    facts = insights.case_facts(first, last)
    cases_of = term_cases(facts, first, last)
    days = sorted(fact["day"] for _, fact in facts)
    by_version = answers.attached(days[0], days[-1]) if days else {}
    numbers, latest = latest_versions(answers.versions())
    attached = {case: {numbers[v] for v in versions if v in numbers} for case, versions in by_version.items()}
    titles = {number: str(row.get("title") or "") or None for number, row in latest.items()}
    states = answers.suggestion_states()
    answered: dict[str, list[dict[str, Any]]] = {}
    found: list[dict[str, Any]] = []
    for term, cases in sorted(cases_of.items()):
        rows = answered_by(cases, attached, titles)  # type: ignore[arg-type]
        if not rows:
            continue
        answered[term] = rows
        if rows[0]["cases"] < MIN_ANSWERED:
            continue
        figures = dict(zip(TERM_FIELDS, terms.get(term) or [0] * len(TERM_FIELDS), strict=True))
        clicks = {}
        for event in insights.term_events(first, last, term):
            if event.get("kind") == "click" and event.get("article"):
                clicks[event["article"]] = clicks.get(event["article"], 0) + 1
        for suggestion in suggestions(term, len(cases), rows, TermFigures(
                figures["searches"], figures["with_result_count"], figures["zero"], 0, len(cases)), clicks):
            modified = latest.get(suggestion["article"], {}).get("modified_ms")
            state = states.get(suggestion["id"])
            if state is None:
                answers.note_suggestion(suggestion, modified, now_ms)
                state = {"first_ms": now_ms, "modified_then_ms": modified}
            found.append({**suggestion, **_status(state, modified)})
    found.sort(key=lambda s: (-s["answered"], -s["cases"], s["term"], s["article"]))
    return {"answered_by": answered, "suggestions": found}


def _status(state: Mapping[str, Any], modified_ms: int | None) -> dict[str, Any]:
    """`open`, or `changed` since the article's `modifiedon` moved past its value when the suggestion
    was first made (or it was marked done): the moment, as `changed_ms`."""
    then = state.get("modified_then_ms")
    moved = modified_ms if modified_ms is not None and then is not None and modified_ms > then else None
    moment = min((m for m in (moved, state.get("done_ms")) if m is not None), default=None)
    return {"status": "open" if moment is None else "changed", "changed_ms": moment}
