"""Timeline assembly: pure. From the contact's events before a case to what an agent reads.

Items in time order, grouped into sessions (a gap of `SESSION_GAP_MINUTES` starts a new one), the
session that ended in the case marked, and a summary: searches (and which found nothing), articles
read and for how long, the search → click → case path, and the time from first touch to the case.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dci.clock import iso_of

MAX_ITEMS = 400  # a timeline row must stay well under Table storage's 64 KiB string limit
_ITEM_FIELDS = ("type", "url", "title", "query", "results", "position", "target", "engaged_ms", "scroll", "ticket",
                "article_number", "article_lang", "visitor", "attribution")


def assemble(case: dict[str, Any], events: Sequence[dict[str, Any]], gap_ms: int) -> dict[str, Any]:
    """The timeline document of a case from the events in its window (any order)."""
    created = case["created_ms"]
    ordered = sorted(events, key=lambda e: (e["ts"], e.get("id", "")))[-MAX_ITEMS:]
    items = []
    for event in ordered:
        item = {k: event[k] for k in _ITEM_FIELDS if event.get(k) is not None}
        item.update(id=event.get("id"), ts=iso_of(event["ts"]), ms=event["ts"],
                    before_case_ms=created - event["ts"])
        items.append(item)
    sessions = _sessions(items, gap_ms)
    if sessions:
        sessions[-1]["ended_in_case"] = created - items[sessions[-1]["last"]]["ms"] <= gap_ms
    return {
        "case": {k: case.get(k) for k in ("case_id", "ticket", "title", "contact", "visitor", "source")
                 if case.get(k) is not None} | {"created": iso_of(created)},
        "summary": summarize(items, sessions, created),
        "sessions": sessions,
        "items": items,
        "truncated": len(events) > MAX_ITEMS,
    }


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


def summarize(items: list[dict[str, Any]], sessions: list[dict[str, Any]], created_ms: int) -> dict[str, Any]:
    """What an agent reads in five seconds, as data and as one sentence."""
    searches = [{"query": i["query"], "results": i.get("results")} for i in items if i["type"] == "search"]
    zero = [s["query"] for s in searches if s["results"] == 0]
    reads: dict[str, dict[str, Any]] = {}
    for item in items:
        number = item.get("article_number")
        if not number:
            continue
        read = reads.setdefault(number, {"number": number, "title": item.get("title"), "engaged_ms": 0, "views": 0})
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
        "path": _path(items),
        "sessions": len(sessions),
        "first_touch_before_case_ms": first_touch,
        "case_form_seen": any(i["type"] in ("case_form", "case_submitted") for i in items),
    }
    summary["sentence"] = sentence(summary)
    return summary


def _path(items: list[dict[str, Any]]) -> list[str]:
    """The last search → click → read → case steps before the case, as short labels."""
    steps: list[str] = []
    for item in items:
        kind = item["type"]
        if kind == "search":
            found = item.get("results")
            steps.append(f'searched "{item["query"]}"' + (f" ({found} results)" if found is not None else ""))
        elif kind == "search_click":
            steps.append(f"clicked result #{item['position']}")
        elif kind == "page_view" and item.get("article_number"):
            steps.append(f"read {item['article_number']}")
        elif kind == "case_form":
            steps.append("opened the case form")
        elif kind == "case_submitted":
            steps.append("submitted the case")
    compact = [s for i, s in enumerate(steps) if i == 0 or s != steps[i - 1]]
    return compact[-8:]


def duration(ms: int) -> str:
    """`2 h 5 min`, `12 min`, `40 s`."""
    seconds = ms // 1000
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def sentence(summary: dict[str, Any]) -> str:
    """One sentence: how long before the case, what was searched (and not found), what was read."""
    if summary["first_touch_before_case_ms"] is None:
        return "No portal activity was recorded before this case."
    parts = [f"First seen on the portal {duration(summary['first_touch_before_case_ms'])} before this case"]
    searches = summary["searches"]
    if searches:
        quoted = ", ".join(f'"{s["query"]}"' + (" (no results)" if s["results"] == 0 else "") for s in searches[:4])
        more = f" and {len(searches) - 4} more" if len(searches) > 4 else ""
        parts.append(f"searched {len(searches)} time{'s' if len(searches) != 1 else ''}: {quoted}{more}")
    articles = summary["articles"]
    if articles:
        reads = ", ".join(a["number"] + (f" ({duration(a['engaged_ms'])})" if a["engaged_ms"] else "")
                          for a in articles[:4])
        parts.append(f"read {len(articles)} article{'s' if len(articles) != 1 else ''}: {reads}")
    if summary["sessions"] > 1:
        parts.append(f"over {summary['sessions']} visits")
    return "; ".join(parts) + "."


def note_text(document: dict[str, Any], report_url: str | None = None) -> str:
    """The plain-text note written on the case: the sentence, the report's address (when the app
    has one), then each visit line by line."""
    lines = [document["summary"]["sentence"], ""]
    if report_url:
        lines[1:1] = [f"Report: {report_url}", ""]
    items = document["items"]
    for number, session in enumerate(document["sessions"], start=1):
        lines.append(f"Visit {number}: {session['start'][:16].replace('T', ' ')} UTC"
                     + (" (ended in this case)" if session["ended_in_case"] else ""))
        for item in items[session["first"]:session["last"] + 1]:
            lines.append(f"  {duration(item['before_case_ms'])} before: {describe(item)}")
    if document.get("truncated"):
        lines.append(f"(only the last {MAX_ITEMS} events are shown)")
    return "\n".join(lines)


def describe(item: dict[str, Any]) -> str:
    kind = item["type"]
    if kind == "search":
        found = item.get("results")
        return f'searched "{item["query"]}"' + ("" if found is None else f" – {found} results")
    if kind == "search_click":
        return f"clicked result #{item['position']} {item.get('target', '')}".rstrip()
    if kind == "page_view":
        label = item.get("article_number") or item.get("title") or item.get("url", "")
        return f"viewed {label}" + (f" – {item['title']}" if item.get("article_number") and item.get("title") else "")
    if kind == "engagement":
        return f"spent {duration(item.get('engaged_ms', 0))} on the page, scrolled {item.get('scroll', 0)}%"
    if kind == "case_form":
        return "opened the case form"
    if kind == "case_submitted":
        return f"submitted case {item.get('ticket', '')}".rstrip()
    return kind
