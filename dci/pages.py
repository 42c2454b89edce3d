"""HTML report pages: the case timeline, a contact's timeline, the insights dashboard.

Server-rendered with Jinja2 (autoescaping on: every value from a visitor — search terms, titles,
URLs — is text, never markup), inline CSS and SVG, no external assets, so a page works offline,
prints, and passes a strict Content Security Policy.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup

from dci.clock import duration, epoch_ms, iso_of, moment
from dci.steps import steps

WIDTH, PAD, GAP_SLOT = 1000, 16, 56
LANES = {"search": 0, "click": 1, "view": 2, "browse": 2, "signin": 3, "case_form": 4, "case_submitted": 4}
LANE_NAMES = ["Searches", "Result clicks", "Pages", "Sign-in", "Case form"]
LANE_TOP, LANE_HEIGHT = 34, 22
CONTACT_DAYS_AROUND_A_CASE = 30
SOURCES = {"poll": "Opened in Dataverse", "webhook": "Opened in Dataverse", "portal": "Opened on the portal"}
KEY_STEPS = 12  # the latest key steps the case report's summary lists (the table below has them all)
# Times are written in UTC and shown in the reader's own time zone by this script (the only one;
# the Content Security Policy allows it by its hash, and nothing else).
LOCAL_TIME_SCRIPT = (
    "for(const e of document.querySelectorAll('[data-at]')){const d=new Date(e.dataset.at);"
    "if(isNaN(d))continue;const o=e.dataset.format==='time'?{timeStyle:'short'}:"
    "{dateStyle:'medium',timeStyle:'short'};e.textContent=new Intl.DateTimeFormat(undefined,o).format(d)}")
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(LOCAL_TIME_SCRIPT.encode()).digest()).decode()
CSP = (f"default-src 'none'; script-src 'sha256-{_SCRIPT_HASH}'; style-src 'unsafe-inline'; img-src data:; "
       "base-uri 'none'; form-action 'self'")


@functools.cache
def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
                      autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["duration"] = duration
    env.filters["when"] = when
    env.filters["at"] = at
    env.globals["rate"] = rate_text
    return env


def render(template: str, **context: Any) -> bytes:
    """A page from `dci/templates/{template}`."""
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
    return _environment().get_template(template).render(
        generated=generated, local_time_script=Markup(LOCAL_TIME_SCRIPT), **context).encode()


def rate_text(rate: float | None, interval: Sequence[float] | None, sample: int, unit: str, few: bool) -> str:
    """`42 % (35–50 %)` (`42 %` without an interval); a rate the report flags too few (`few`: under
    MIN_SAMPLE) as `too few: 3 of 4 reads`, never a bare percentage of a handful; `–` without a
    sample. `unit`: the sample's plural noun."""
    if rate is None or not sample:
        return "–"
    if few:
        return f"too few: {round(rate * sample)} of {count_text(sample, unit)}"
    if interval is None:
        return f"{rate * 100:.0f} %"
    return f"{rate * 100:.0f} % ({interval[0] * 100:.0f}–{interval[1] * 100:.0f} %)"


SINGULAR = {"searches": "search", "reads": "read", "visits": "visit", "cases": "case", "days": "day", "views": "view",
            "times": "time"}


def count_text(number: int, plural: str) -> str:
    """`1 search`, `3 searches`: a count with its noun, never `search(es)`."""
    return f"{number} {SINGULAR.get(plural, plural) if number == 1 else plural}"


def at(value: int | str, time_only: bool = False) -> Markup:
    """A `<time>` the reader's browser shows in their own zone; UTC text until it does (or without
    script)."""
    ms = value if isinstance(value, int) else epoch_ms(value)
    iso = iso_of(ms)
    text = moment(ms).strftime("%H:%M UTC" if time_only else "%d %b %Y, %H:%M UTC")
    fmt = ' data-format="time"' if time_only else ""
    return Markup('<time datetime="{0}" data-at="{0}"{1}>{2}</time>').format(iso, Markup(fmt), text)


def link(path: str, keep: Mapping[str, str]) -> str:
    """A link to another report page, relative to `…/api/{kind}/{id}/timeline`, asking for HTML and
    keeping the parameters that must travel with it (the function key, `code`)."""
    return "../../" + path + "?" + urlencode({"format": "html", **keep})


def case_link(case_id: str, keep: Mapping[str, str]) -> str:
    """The HTML report of a case, from another report page."""
    return link(f"cases/{quote(case_id)}/timeline", keep)


def contact_link(contact: str, keep: Mapping[str, str], until: str | None = None) -> str:
    """A contact's HTML timeline, from another report page; with `until` (a time), the 30 days up to
    that day (a case's creation, say) rather than up to today."""
    if until is None:
        return link(f"contacts/{quote(contact)}/timeline", keep)
    last = moment(epoch_ms(until)).date()
    first = last - timedelta(days=CONTACT_DAYS_AROUND_A_CASE)
    return link(f"contacts/{quote(contact)}/timeline", {"from": first.isoformat(), "to": last.isoformat(), **keep})


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
                                      "at": iso_of(start), "clock": moment(start).strftime("%H:%M UTC"),
                                      "title": f"Visit {number}: {when(start)}, {duration(end - start)}"})
        for point in visit:
            at = x + width / 2 if end == start else x + 4 + (width - 8) * (point["ms"] - start) / (end - start)
            if point["kind"] == "case":
                geometry["cases"].append({"x": round(at, 1), "label": point["label"]})
            else:
                lane = LANES.get(point["kind"], 2)
                geometry["marks"].append({"x": round(at, 1), "y": LANE_TOP + LANE_HEIGHT * lane + LANE_HEIGHT / 2,
                                          "kind": point["kind"], "label": point["label"],
                                          "zero": point.get("zero", False)})
        x += width
        if index < len(visits):
            geometry["breaks"].append({"x": round(x + GAP_SLOT / 2, 1),
                                       "label": duration(visits[index][0]["ms"] - end) + " later"})
            x += GAP_SLOT
    return geometry


def _visits(all_steps: list[dict[str, Any]], gap_ms: int) -> list[dict[str, Any]]:
    """Steps grouped into visits (no more than `gap_ms` apart), each with its start and end."""
    visits: list[dict[str, Any]] = []
    for step in all_steps:
        if visits and step["ms"] - visits[-1]["end"] <= gap_ms:
            visits[-1]["steps"].append(step)
            visits[-1]["end"] = step["ms"]
        else:
            visits.append({"start": step["ms"], "end": step["ms"], "steps": [step], "ended_in_case": False})
    return visits


def key_steps(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps the case report's summary lists, in time order, each with `n` (its row, `#step-n`):
    searches (`zero` when they found nothing), articles read, result clicks, the case form, the
    submission."""
    listed = []
    for n, step in enumerate(rows, start=1):
        kind = step["kind"]
        if kind == "search":  # (a search that found nothing is marked `zero` rather than told)
            text = step["text"].removesuffix(" – no results")
        elif kind in ("click", "case_form", "case_submitted") or (kind == "view" and step.get("article")):
            text = step["text"]
        else:
            continue
        listed.append({"n": n, "text": text, "zero": bool(step.get("zero")), "ms": step["ms"]})
    return listed


def relative(ms: int, created_ms: int) -> str:
    """When a step happened against the case: "3 min before", or "4 s after" (a case's own
    confirmation page comes seconds after Dataverse made it)."""
    return f"{duration(ms - created_ms)} after" if ms > created_ms else f"{duration(created_ms - ms)} before"


def case_page(document: dict[str, Any], gap_ms: int, keep: Mapping[str, str] | None = None,
              on_wall: Sequence[dict[str, Any]] = ()) -> bytes:
    """The report an agent opens from the case: the key steps, linked to their rows, then one row per
    thing the customer did (`id="step-n"`); the contact's previous case, when the document names one;
    the visits written to the case's Dynamics timeline (`on_wall`, dci/dataverse/visits.py), when there are."""
    case = document["case"]
    created_ms = epoch_ms(case["created"])
    rows = steps(document["items"], gap_ms)
    for n, step in enumerate(rows, start=1):
        step["n"] = n
    key = key_steps(rows)
    points = [{"ms": step["ms"], "kind": step["kind"], "zero": step.get("zero", False),
               "label": f"{relative(step['ms'], created_ms)} the case: {step['text']}"} for step in rows]
    points.append({"ms": created_ms, "kind": "case", "label": f"Case created {when(created_ms)}"})
    visits = _visits(rows, gap_ms)
    if visits:
        visits[-1]["ended_in_case"] = created_ms - visits[-1]["end"] <= gap_ms
    summary = document["summary"]
    source = SOURCES.get(case.get("source", ""), SOURCES["poll"])
    return render("case.html", title=f"Case {case.get('ticket') or case['case_id']}", document=document, case=case,
                  visits=visits, geometry=layout(points, gap_ms), source=source,
                  searches=len(summary["searches"]), zero=len(summary["zero_result_searches"]),
                  articles=len(summary["articles"]), keep=keep or {}, contact_link=contact_link,
                  case_link=case_link, key_steps=key[-KEY_STEPS:], earlier_key_steps=max(0, len(key) - KEY_STEPS),
                  previous=document.get("previous_case"), created_ms=created_ms, relative=relative,
                  on_wall=on_wall, report_only=max(0, len(document.get("sessions") or ()) - len(on_wall)))


def contact_page(report: dict[str, Any], gap_ms: int, keep: Mapping[str, str] | None = None) -> bytes:
    """A contact's activity over a range, with their cases on it and linked."""
    rows = [step for step in steps(report["interactions"], gap_ms)
            if not (report["types"] and step["kind"] == "signin")]  # a filtered page shows those types only
    points = [{"ms": step["ms"], "kind": step["kind"], "zero": step.get("zero", False),
               "label": f"{when(step['ms'])}: {step['text']}"} for step in rows]
    points += [{"ms": case["created_ms"], "kind": "case",
                "label": f"Case {case.get('ticket') or case['case_id']} created {when(case['created_ms'])}"}
               for case in report["cases"]]
    merged = sorted([{"ms": step["ms"], "step": step} for step in rows]
                    + [{"ms": c["created_ms"], "case": c} for c in report["cases"]], key=lambda r: r["ms"])
    name = report.get("name") or report["contact"]
    return render("contact.html", title=f"Contact {name}", name=name, report=report, rows=merged,
                  geometry=layout(points, gap_ms), keep=keep or {}, case_link=case_link)


def status_page(title: str, message: str, refresh_seconds: int | None = None) -> bytes:
    """A short page for a case that is pending, skipped or unknown, or a bad request; with
    `refresh_seconds`, the browser reloads it by itself then."""
    return render("status.html", title=title, message=message, refresh=refresh_seconds)
