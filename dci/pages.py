"""HTML report pages: the case timeline, a contact's timeline, the insights dashboard.

Server-rendered with Jinja2 (autoescaping on: every value from a visitor — search terms, titles,
URLs — is text, never markup), inline CSS and SVG, no external assets, so a page works offline,
prints, and passes a strict Content Security Policy.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dci.clock import epoch_ms, moment
from dci.timeline import describe, duration

WIDTH, PAD, GAP_SLOT = 1000, 16, 56
LANES = {"search": 0, "search_click": 1, "page_view": 2, "engagement": 3, "case_form": 4, "case_submitted": 4}
LANE_NAMES = ["Searches", "Result clicks", "Page views", "Time on page", "Case form"]
LANE_TOP, LANE_HEIGHT = 28, 22
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'self'"


@functools.cache
def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
                      autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["duration"] = duration
    env.filters["when"] = when
    env.filters["clock"] = lambda ms: moment(ms).strftime("%d %b %Y %H:%M")
    env.filters["percent"] = lambda rate: "–" if rate is None else f"{rate * 100:.0f} %"
    return env


def render(template: str, **context: Any) -> bytes:
    """A page from `dci/templates/{template}`."""
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
    return _environment().get_template(template).render(generated=generated, **context).encode()


def when(value: int | str) -> str:
    """`28 Nov 2026, 14:02 UTC` from epoch ms or an ISO timestamp."""
    at = moment(value if isinstance(value, int) else epoch_ms(value))
    return at.strftime("%d %b %Y, %H:%M UTC")


def layout(points: Sequence[dict[str, Any]], gap_ms: int) -> dict[str, Any]:
    """Places time points on a compressed axis: each visit (points no more than `gap_ms` apart) is a
    band whose width grows with its length; the time between visits is a fixed, labelled break.

    `points` carry `ms`, `kind` (an event type, or `case`) and `label`. Returns the SVG geometry:
    bands (x, w, label), marks (x, y, kind, label), cases (x, label), breaks (x, label), height.
    """
    ordered = sorted(points, key=lambda p: p["ms"])
    visits: list[list[dict[str, Any]]] = []
    for point in ordered:
        if visits and point["ms"] - visits[-1][-1]["ms"] <= gap_ms:
            visits[-1].append(point)
        else:
            visits.append([point])
    height = LANE_TOP + LANE_HEIGHT * len(LANE_NAMES) + 8
    geometry: dict[str, Any] = {"bands": [], "marks": [], "cases": [], "breaks": [], "height": height,
                                "width": WIDTH, "lanes": [{"y": LANE_TOP + LANE_HEIGHT * i + LANE_HEIGHT / 2,
                                                           "name": name} for i, name in enumerate(LANE_NAMES)]}
    if not visits:
        return geometry
    # A case alone (no visit within the gap before it) takes a narrow slot, not a visit's band.
    alone = [all(p["kind"] == "case" for p in visit) for visit in visits]
    weights = [0.0 if only_cases else math.sqrt(max(v[-1]["ms"] - v[0]["ms"], 60_000) / 60_000)
               for v, only_cases in zip(visits, alone, strict=True)]
    room = WIDTH - 2 * PAD - 110 - GAP_SLOT * (len(visits) - 1) - 24 * sum(alone)
    x = PAD + 110  # lane names on the left
    number = 0
    for index, (visit, weight) in enumerate(zip(visits, weights, strict=True), start=1):
        width = max(room * weight / (sum(weights) or 1), 12.0) if weight else 24.0
        start, end = visit[0]["ms"], visit[-1]["ms"]
        if weight:
            number += 1
            geometry["bands"].append({"x": round(x, 1), "w": round(width, 1), "label": f"Visit {number}",
                                      "title": f"Visit {number}: {when(start)}, {duration(end - start)}"})
        for point in visit:
            at = x + width / 2 if end == start else x + 4 + (width - 8) * (point["ms"] - start) / (end - start)
            if point["kind"] == "case":
                geometry["cases"].append({"x": round(at, 1), "label": point["label"]})
            else:
                lane = LANES.get(point["kind"], 2)
                geometry["marks"].append({"x": round(at, 1), "y": LANE_TOP + LANE_HEIGHT * lane + LANE_HEIGHT / 2,
                                          "kind": point["kind"], "label": point["label"]})
        x += width
        if index < len(visits):
            geometry["breaks"].append({"x": round(x + GAP_SLOT / 2, 1),
                                       "label": duration(visits[index][0]["ms"] - end) + " later"})
            x += GAP_SLOT
    return geometry


def case_page(document: dict[str, Any], gap_ms: int) -> bytes:
    """The report an agent opens from the case."""
    case = document["case"]
    created_ms = epoch_ms(case["created"])
    points = [{"ms": item["ms"], "kind": item["type"],
               "label": f"{duration(item['before_case_ms'])} before the case: {describe(item)}"}
              for item in document["items"]]
    points.append({"ms": created_ms, "kind": "case", "label": f"Case created {when(created_ms)}"})
    visits = [{**session, "items": document["items"][session["first"]:session["last"] + 1]}
              for session in document["sessions"]]
    return render("case.html", title=f"Case {case.get('ticket') or case['case_id']}", document=document,
                  case=case, visits=visits, geometry=layout(points, gap_ms), describe=describe)


def contact_page(report: dict[str, Any], gap_ms: int) -> bytes:
    """A contact's activity over a range, with their cases on it."""
    points = [{"ms": item["ms"], "kind": item["type"], "label": f"{when(item['ms'])}: {describe(item)}"}
              for item in report["interactions"]]
    points += [{"ms": case["created_ms"], "kind": "case",
                "label": f"Case {case.get('ticket') or case['case_id']} created {when(case['created_ms'])}"}
               for case in report["cases"]]
    rows = sorted([{"ms": i["ms"], "item": i} for i in report["interactions"]]
                  + [{"ms": c["created_ms"], "case": c} for c in report["cases"]], key=lambda r: r["ms"])
    return render("contact.html", title=f"Contact {report['contact']}", report=report, rows=rows,
                  geometry=layout(points, gap_ms), describe=describe)


def insights_page(report: dict[str, Any]) -> bytes:
    """The support manager's dashboard."""
    return render("insights.html", title=f"Portal insights {report['from']} to {report['to']}", report=report)


def status_page(title: str, message: str) -> bytes:
    """A short page for a case that is pending, skipped or unknown, or a bad request."""
    return render("status.html", title=title, message=message)
