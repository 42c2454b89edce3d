"""Timeline assembly: pure. From the contact's events before a case to what an agent reads.

Items in time order, grouped into sessions (a gap of `SESSION_GAP_MINUTES` starts a new one), the
session that ended in the case marked, and a summary: searches (and which found nothing), articles
read and for how long, the search → click → case path, and the time from first touch to the case.
A timeline keeps the latest `MAX_ITEMS` events, each text capped (`TEXT_LIMITS`); every visitor
text in the sentence and the note is made one line (`dci.text.one_line`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dci.clock import duration, iso_of
from dci.steps import FOLD_GAP_MS, article_name, steps
from dci.text import one_line
from dci.titles import stripped_items

# The latest events of the window a timeline keeps: a heavy reader's day is a few hundred, and the
# report page lists every step. Storage takes any length (it splits the document across rows).
MAX_ITEMS = 2_000
_ITEM_FIELDS = ("type", "url", "title", "query", "results", "position", "target", "engaged_ms", "scroll", "ticket",
                "article_number", "article_lang", "visitor", "attribution")
# The longest text an item keeps per field, in characters (longer is cut, ending in "…"), so that
# an item stays under ~2,500 characters of JSON whatever a visitor sent. Other text fields (ids,
# ticket, article number and language, which collect already bounds) keep at most TEXT_LIMIT.
TEXT_LIMITS = {"url": 500, "target": 500, "referrer": 500, "title": 200, "query": 256}
TEXT_LIMIT = 100
ELLIPSIS = "\u2026"


def capped(text: str, limit: int) -> str:
    """`text`, or its first `limit` - 1 characters and an ellipsis when it is longer than `limit`."""
    return text if len(text) <= limit else text[:limit - 1] + ELLIPSIS


def _item(event: dict[str, Any], created_ms: int) -> dict[str, Any]:
    item = {k: capped(v, TEXT_LIMITS.get(k, TEXT_LIMIT)) if isinstance(v, str) else v
            for k in _ITEM_FIELDS if (v := event.get(k)) is not None}
    event_id = event.get("id")
    item.update(id=capped(event_id, TEXT_LIMIT) if isinstance(event_id, str) else event_id, ts=iso_of(event["ts"]),
                ms=event["ts"], before_case_ms=max(0, created_ms - event["ts"]))  # (`createdon` is whole seconds)
    return item


def assemble(case: dict[str, Any], events: Sequence[dict[str, Any]], gap_ms: int,
             previous_case: dict[str, Any] | None = None, seen: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The timeline document of a case from the events of its journey (any order): the latest
    `MAX_ITEMS` of them, each text capped (`TEXT_LIMITS`); `earlier_steps` counts the steps left out.
    `previous_case` (id, ticket, title, created): the contact's case this journey starts after;
    `seen`: more of the contact's events, to learn the site's title suffix from (dci/titles.py)."""
    created = case["created_ms"]
    ordered = sorted(events, key=lambda e: (e["ts"], e.get("id", "")))
    kept, left_out = ordered[-MAX_ITEMS:], ordered[:-MAX_ITEMS]
    items = stripped_items([_item(event, created) for event in kept], seen)  # titles without the site's suffix
    sessions = _sessions(items, gap_ms)
    if sessions:
        sessions[-1]["ended_in_case"] = created - items[sessions[-1]["last"]]["ms"] <= gap_ms
    earlier = len(steps([_item(event, created) for event in left_out], gap_ms)) if left_out else 0
    document = {
        "case": {k: case.get(k) for k in ("case_id", "ticket", "title", "contact", "visitor", "source")
                 if case.get(k) not in (None, "")} | {"created": iso_of(created)},
        "summary": summarize(items, sessions, created, earlier, gap_ms),
        "sessions": sessions,
        "items": items,
        "truncated": bool(left_out),
        "earlier_steps": earlier,
    }
    if previous_case:
        document["previous_case"] = {k: (capped(v, TEXT_LIMITS["title"]) if k == "title" and v else v)
                                     for k, v in previous_case.items()}
        if not items:
            document["summary"]["sentence"] = "No portal activity was recorded between the previous case and this one."
    return document


def _sessions(items: list[dict[str, Any]], gap_ms: int) -> list[dict[str, Any]]:
    sessions: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if sessions and item["ms"] - items[sessions[-1]["last"]]["ms"] <= gap_ms:
            sessions[-1]["last"] = index
        else:
            sessions.append({"first": index, "last": index, "ended_in_case": False})
    for session in sessions:
        session["start"] = items[session["first"]]["ts"]
        session["end"] = items[session["last"]]["ts"]
    return sessions


def summarize(items: list[dict[str, Any]], sessions: list[dict[str, Any]], created_ms: int,
              earlier_steps: int = 0, gap_ms: int = FOLD_GAP_MS) -> dict[str, Any]:
    """What an agent reads in five seconds, as data and as one sentence (`earlier_steps`: the steps
    before the first item that the timeline left out; `gap_ms`: the visit gap, as steps fold)."""
    searches = [{"query": i["query"], "results": i.get("results")} for i in items if i["type"] == "search"]
    zero = [s["query"] for s in searches if s["results"] == 0]
    reads: dict[str, dict[str, Any]] = {}
    for item in items:
        number = item.get("article_number")
        if not number:
            continue
        read = reads.setdefault(number, {"number": number, "title": item.get("title"), "engaged_ms": 0, "views": 0})
        read["title"] = read["title"] or item.get("title")
        if item["type"] == "page_view":
            read["views"] += 1
        elif item["type"] == "engagement":
            read["engaged_ms"] += item.get("engaged_ms", 0)
    for item in items:  # engagement events carry a URL, not always the article number
        if item["type"] == "engagement" and not item.get("article_number"):
            for read in reads.values():
                if read["number"] in (item.get("url") or ""):
                    read["engaged_ms"] += item.get("engaged_ms", 0)
    first_touch = created_ms - items[0]["ms"] if items else None
    summary = {
        "searches": searches,
        "zero_result_searches": zero,
        "articles": list(reads.values()),
        "path": _path(items, gap_ms),
        "sessions": len(sessions),
        "first_touch_before_case_ms": first_touch,
        "case_form_seen": any(i["type"] in ("case_form", "case_submitted") for i in items),
        "earlier_steps": earlier_steps,
    }
    summary["sentence"] = sentence(summary)
    return summary


def _path(items: list[dict[str, Any]], gap_ms: int = FOLD_GAP_MS) -> list[str]:
    """The last search → click → read → case steps before the case, as short labels."""
    labels: list[str] = []
    for step in steps(items, gap_ms):
        kind = step["kind"]
        if kind == "search":
            found = step.get("results")
            labels.append("searched " + _quoted(step["query"]) + ("" if found is None else " (no results)"
                                                                  if found == 0 else f" ({found} results)"))
        elif kind == "click":
            labels.append(f"clicked result #{step['position']}")
        elif kind == "view" and step.get("article"):
            labels.append(f"read {_named(step['article'])}")
        elif kind == "case_form":
            labels.append("opened the case form")
        elif kind == "case_submitted":
            labels.append("submitted the case")
    compact = [s for i, s in enumerate(labels) if i == 0 or s != labels[i - 1]]
    return compact[-8:]


def sentence(summary: dict[str, Any]) -> str:
    """One sentence: how long before the case, what was searched (and not found), what was read.
    Every visitor text in it is made one line (`one_line`): the sentence is the note's first line."""
    if summary["first_touch_before_case_ms"] is None:
        return "No portal activity was recorded before this case."
    earlier = summary.get("earlier_steps", 0)  # (the journey began before the first step kept)
    parts = [f"First seen on the portal {'more than ' if earlier else ''}"
             f"{duration(summary['first_touch_before_case_ms'])} before this case"]
    searches = summary["searches"]
    if searches:
        zero = len(summary["zero_result_searches"])
        found_nothing = f" ({zero} found nothing)" if zero else ""
        quoted = ", ".join(_quoted(s["query"]) + (" (no results)" if s["results"] == 0 else "") for s in searches[:4])
        more = f" and {len(searches) - 4} more" if len(searches) > 4 else ""
        parts.append(f"searched {len(searches)} time{'s' if len(searches) != 1 else ''}{found_nothing}: {quoted}{more}")
    articles = summary["articles"]
    if articles:
        reads = ", ".join(_named(a) + (f" ({duration(a['engaged_ms'])})" if a["engaged_ms"] >= 1000 else "")
                          for a in articles[:4])
        parts.append(f"read {len(articles)} article{'s' if len(articles) != 1 else ''}: {reads}")
    if summary["sessions"] > 1:
        parts.append(f"over {summary['sessions']} visits")
    if earlier:
        parts.append(f"and {earlier} earlier step{'s' if earlier != 1 else ''} (not kept)")
    return "; ".join(parts) + "."


def _quoted(query: str) -> str:
    return f'"{one_line(query)}"'


def _named(article: dict[str, Any]) -> str:
    return one_line(article_name(article))


NOTE_SEARCHES, NOTE_ARTICLES = 4, 3  # lines of each in the note; the report has them all
NOTE_LINES = 15  # at most, however long the journey


def _visits_said(visits: int, wall_counts: tuple[int, int] | None) -> str:
    if not wall_counts or not wall_counts[0]:
        return f" ({visits} visits)" if visits > 1 else ""
    shown, earlier = wall_counts
    if not earlier:
        return f" ({visits} visits, each on this timeline as a Portal visit)" if visits > 1 else \
            " (on this timeline as a Portal visit)"
    return (f" ({visits} visits: the latest {shown} on this timeline as Portal visits, "
            f"and {earlier} earlier visit{'s' if earlier != 1 else ''} in the report)")


def note_text(document: dict[str, Any], report_url: str | None = None, previous_url: str | None = None,
              wall_counts: tuple[int, int] | None = None) -> str:
    """The note written on the case, short enough to read on the case's timeline wall (≤ NOTE_LINES
    however long the journey): the sentence, the searches (those that found nothing marked), the
    articles read, first visit to case, and the report's address; the report has the rest. Each
    visitor text is made one line (`one_line`), so none can pass for a line of the note.
    `wall_counts`: the visits on the case's timeline as activities, and the earlier ones left out."""
    summary = document["summary"]
    lines = [one_line(summary["sentence"]), ""]
    searches = summary["searches"]
    if searches:
        zero = len(summary["zero_result_searches"])
        lines += [f"Searches ({len(searches)}" + (f", {zero} found nothing" if zero else "") + "):"]
        lines += ["  - " + _quoted(s["query"]) + ("" if s["results"] is None else " - NO RESULTS" if s["results"] == 0
                                                  else f" - {s['results']} result{'s' if s['results'] != 1 else ''}")
                  for s in searches[:NOTE_SEARCHES]]
        if len(searches) > NOTE_SEARCHES:
            lines.append(f"  ... and {len(searches) - NOTE_SEARCHES} more in the report")
    articles = summary["articles"]
    if articles:
        lines += [f"Articles read ({len(articles)}):"]
        lines += ["  - " + _named(a) + (f", {duration(a['engaged_ms'])}" if a["engaged_ms"] >= 1000 else "")
                  for a in articles[:NOTE_ARTICLES]]
        if len(articles) > NOTE_ARTICLES:
            lines.append(f"  ... and {len(articles) - NOTE_ARTICLES} more in the report")
    if summary["first_touch_before_case_ms"] is not None:
        visits = summary["sessions"]
        lines += [f"First visit to case: {'more than ' if summary.get('earlier_steps') else ''}"
                  f"{duration(summary['first_touch_before_case_ms'])}" + _visits_said(visits, wall_counts)]
    earlier = document.get("previous_case")
    if earlier:
        name = one_line(earlier.get("ticket") or earlier["case_id"])
        lines.append(f"Starts after the previous case, {name} of {earlier['created'][:10]}"
                     + (f": {previous_url}" if previous_url else ""))
    if report_url:
        lines.append(f"Full timeline: {report_url}")
    if len(lines) > NOTE_LINES:  # every part present: the blank line after the sentence gives way
        del lines[1]
    return "\n".join(lines)
