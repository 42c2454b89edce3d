"""Portal visits as Dynamics 365 activities (issue 28): pure. What each visit of a case's journey
becomes on the timeline wall: one `dci_portalvisit` per visit (a visit is a session of the
assembled timeline, the split the report shows), the latest MAX_VISITS of them.

Each has a one-line subject (what was searched and read, and the case form), its steps as the
description — in the report's words, one per line, no visitor id —, its first and last event's
times, its counts, and whether it was signed in (any event verified by a portal token) or stitched
from before the sign-in; texts fit their columns as Dataverse counts them (UTF-16 code units). Its
id is derived from the case, the browser and the visit's first event, so a re-assembly after late
events finds the same activity (dci/dataverse/wall.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from dci.attribution import VERIFIED
from dci.steps import FOLD_GAP_MS, steps
from dci.text import fitted, one_line, units

TABLE = "dci_portalvisit"  # the custom activity's logical name, as setup makes it (dci/dataverse/setup/plan.py)
ENTITY_SET = "dci_portalvisits"  # its entity set in the Web API
MAX_VISITS = 10  # per case, the latest: the note says how many earlier ones are left out
SUBJECT_LENGTH = 200  # the Subject column's length as `python -m dci dataverse setup` creates it (UTF-16 units)
DESCRIPTION_LENGTH = 2_000  # the smallest Description Dataverse gives an activity: whole lines, then "… and N more"
SUBJECT_PREFIX = "Portal visit: "
NAMESPACE = uuid.UUID("6b0c1f0e-2d7a-4f51-9a8e-3f1c27d0a927")  # (fixed: the ids must not change between builds)


def activity_id(case_id: str, visitor: str, first_event_id: str) -> str:
    """The activity of the visit that starts with `first_event_id` on browser `visitor`, on case
    `case_id` (event ids come from browsers: two browsers may send the same one)."""
    return str(uuid.uuid5(NAMESPACE, f"{case_id.lower()}\x00{visitor}\x00{first_event_id}"))


def visits(timeline: dict[str, Any], report_url: str | None = None,
           gap_ms: int = FOLD_GAP_MS) -> tuple[list[dict[str, Any]], int]:
    """The activities of a case's timeline (the latest MAX_VISITS visits, oldest first), and how
    many earlier visits are left out."""
    items, sessions = timeline.get("items") or [], timeline.get("sessions") or []
    case_id = timeline["case"]["case_id"]
    kept = sessions[-MAX_VISITS:]
    out = []
    for session in kept:
        visit = items[session["first"]:session["last"] + 1]
        out.append(_activity(case_id, visit, report_url, gap_ms))
    return out, len(sessions) - len(kept)


def _activity(case_id: str, visit: Sequence[dict[str, Any]], report_url: str | None, gap_ms: int) -> dict[str, Any]:
    searches = [item for item in visit if item["type"] == "search"]
    articles = {item["article_number"] for item in visit if item["type"] == "page_view" and item.get("article_number")}
    lines = [step["text"] for step in steps(visit, gap_ms)]  # (the report's words, each one line)
    activity = {
        "activityid": activity_id(case_id, str(visit[0].get("visitor") or ""), str(visit[0]["id"])),
        "subject": fitted(SUBJECT_PREFIX + headline(visit, len(articles)), SUBJECT_LENGTH),
        "description": described(lines),
        "actualstart": visit[0]["ts"],
        "actualend": visit[-1]["ts"],
        "dci_searches": len(searches),
        "dci_articles": len(articles),
        "dci_zeroresults": sum(1 for item in searches if item.get("results") == 0),
        "dci_signedin": any(item.get("attribution") == VERIFIED for item in visit),
    }
    if report_url:
        activity["dci_reporturl"] = report_url
    return activity


def on_wall(timeline: dict[str, Any], written: Mapping[str, str], organisation: str | None,
            gap_ms: int = FOLD_GAP_MS) -> list[dict[str, Any]]:
    """The visits the case's timeline row records as written to Dynamics (`written`: id ->
    fingerprint), as the report lists them: subject, first and last event, and a link that opens
    the activity in Dynamics 365 (`organisation`: DATAVERSE_URL)."""
    if not written:
        return []
    base = (organisation or "").rstrip("/")
    link = f"{base}/main.aspx?pagetype=entityrecord&etn={TABLE}&id=" if base else None
    return [{"subject": activity["subject"], "start": activity["actualstart"], "end": activity["actualend"],
             "link": link + activity["activityid"] if link else None}
            for activity in visits(timeline, None, gap_ms)[0] if written.get(activity["activityid"])]  # ("": unsure)


def described(lines: Sequence[str], limit: int = DESCRIPTION_LENGTH) -> str:
    """The visit's steps, one per line, within `limit` UTF-16 code units (as Dataverse counts): all
    of them when they fit, else the first lines whole and how many more the report has."""
    whole = "\n".join(lines)
    if units(whole) <= limit:
        return whole
    kept: list[str] = []
    for n, line in enumerate(lines):
        if units("\n".join([*kept, line, f"… and {len(lines) - n - 1} more steps in the report"])) > limit:
            return "\n".join([*kept, f"… and {len(lines) - n} more steps in the report"]) if kept \
                else fitted(line, limit)
        kept.append(line)
    raise AssertionError("unreachable: the whole did not fit")


def headline(visit: Sequence[dict[str, Any]], articles: int) -> str:
    """`searched "vpn error 809", read 2 articles, opened the case form`: one line, or
    `browsed 3 pages` when the visit did none of these."""
    queries = list(dict.fromkeys(one_line(item["query"]) for item in visit
                                 if item["type"] == "search" and item.get("query")))
    parts = []
    if queries:
        shown = ", ".join(f'"{query}"' for query in queries[:2])
        parts.append(f"searched {shown}" + (f" and {len(queries) - 2} more" if len(queries) > 2 else ""))
    if articles:
        parts.append(f"read {articles} article{'s' if articles != 1 else ''}")
    if any(item["type"] == "case_submitted" for item in visit):
        parts.append("submitted the case")
    elif any(item["type"] == "case_form" for item in visit):
        parts.append("opened the case form")
    if not parts:
        pages = sum(1 for item in visit if item["type"] == "page_view")
        parts.append(f"browsed {pages} page{'s' if pages != 1 else ''}" if pages else "on the portal")
    return ", ".join(parts)
