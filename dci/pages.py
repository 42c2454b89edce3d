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
from dci.insights import MIN_SAMPLE
from dci.problems import Problem
from dci.steps import steps

WIDTH, PAD, GAP_SLOT = 1000, 16, 56
LANES = {"search": 0, "click": 1, "view": 2, "signin": 3, "case_form": 4, "case_submitted": 4}
LANE_NAMES = ["Searches", "Result clicks", "Pages", "Sign-in", "Case form"]
LANE_TOP, LANE_HEIGHT = 34, 22
CONTACT_DAYS_AROUND_A_CASE = 30
SOURCES = {"poll": "Dataverse", "webhook": "Dataverse", "portal": "the portal's case form"}
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


def rate_text(rate: float | None, interval: Sequence[float] | None, sample: int, unit: str) -> str:
    """`42 % (35–50 %)`, or `too few (3 reads)` under MIN_SAMPLE: no bare percentage of a handful."""
    if rate is None:
        return "–"
    if sample < MIN_SAMPLE:
        return f"too few ({sample} {unit if sample != 1 else unit.removesuffix('s')})"
    low, high = interval or (rate, rate)
    return f"{rate * 100:.0f} % ({low * 100:.0f}–{high * 100:.0f} %)"


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


def case_page(document: dict[str, Any], gap_ms: int, keep: Mapping[str, str] | None = None) -> bytes:
    """The report an agent opens from the case: one row per thing the customer did."""
    case = document["case"]
    created_ms = epoch_ms(case["created"])
    rows = steps(document["items"])
    points = [{"ms": step["ms"], "kind": step["kind"], "zero": step.get("zero", False),
               "label": f"{duration(step.get('before_case_ms', 0))} before the case: {step['text']}"} for step in rows]
    points.append({"ms": created_ms, "kind": "case", "label": f"Case created {when(created_ms)}"})
    visits = _visits(rows, gap_ms)
    if visits:
        visits[-1]["ended_in_case"] = created_ms - visits[-1]["end"] <= gap_ms
    summary = document["summary"]
    source = SOURCES.get(case.get("source", ""), "Dataverse")
    return render("case.html", title=f"Case {case.get('ticket') or case['case_id']}", document=document, case=case,
                  visits=visits, geometry=layout(points, gap_ms), source=source,
                  searches=len(summary["searches"]), zero=len(summary["zero_result_searches"]),
                  articles=len(summary["articles"]), keep=keep or {}, contact_link=contact_link)


def contact_page(report: dict[str, Any], gap_ms: int, keep: Mapping[str, str] | None = None) -> bytes:
    """A contact's activity over a range, with their cases on it and linked."""
    rows = [step for step in steps(report["interactions"])
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


def insights_page(report: dict[str, Any] | None, params: Mapping[str, str], problem: Problem | None = None) -> bytes:
    """The support manager's dashboard; without a report (a bad range), its form and the error.
    The form carries on every query parameter it does not set (the function key, `code`, among
    them), so "Show" works wherever the page did."""
    title = f"Portal insights {report['from']} to {report['to']}" if report else "Portal insights"
    errors = {error.field: error.detail for error in problem.errors} if problem else {}
    carried = {name: value for name, value in params.items() if name not in ("from", "to", "format")}
    csv = {table: "?" + urlencode({"from": report["from"], "to": report["to"], "format": "csv", **carried,
                                   "table": table}) for table in ("searches", "zero-results", "articles")
           } if report else {}

    def behind(name: str, value: str) -> str:  # the drill-down of a term or an article over the same days
        return "?" + urlencode({"from": report["from"], "to": report["to"], "format": "html", **carried,
                                name: value}) if report else ""

    charts = trend_charts(report["trend"]) if report else []
    return render("insights.html", title=title, report=report, asked=params, carried=carried, problem=problem,
                  errors=errors, csv=csv, behind=behind, charts=charts, chart={"w": CHART_W, "h": CHART_H})


TREND_NAMES = {"searches": "Searches", "zero_result_rate": "Found nothing", "click_through_rate": "Click-through",
               "cases": "Cases", "deflection_rate": "Sessions without a case"}
CHART_W, CHART_H, CHART_PAD = 320, 90, 6


def trend_charts(trend: dict[str, Any]) -> list[dict[str, Any]]:
    """One small chart per trend figure: a point per day (rates on 0–100 %, counts from 0 to the
    range's highest), with the range's and the previous period's values and the change."""
    charts = []
    series = trend["days"]
    for name, title in TREND_NAMES.items():
        is_rate = name.endswith("_rate")
        values = [day[name] for day in series]
        top = 1.0 if is_rate else float(max([v for v in values if v is not None] or [0]) or 1)
        step = (CHART_W - 2 * CHART_PAD) / max(len(series) - 1, 1)
        points = []
        for index, (day, value) in enumerate(zip(series, values, strict=True)):
            x = CHART_PAD + index * step if len(series) > 1 else CHART_W / 2
            y = None if value is None else CHART_H - CHART_PAD - (CHART_H - 2 * CHART_PAD) * value / top
            points.append({"x": round(x, 1), "y": None if y is None else round(y, 1), "day": day["day"],
                           "text": _figure(value, is_rate)})
        now, before = trend["range"][name], (trend.get("previous") or {}).get(name)
        change = (trend.get("change") or {}).get(name)
        charts.append({"name": name, "title": title, "points": points, "top": _figure(top, is_rate),
                       "line": " ".join(f"{p['x']},{p['y']}" for p in points if p["y"] is not None),
                       "now": _figure(now, is_rate), "before": _figure(before, is_rate),
                       "change": None if change is None else (
                           f"{change * 100:+.0f} points" if is_rate else f"{change:+.0f}")})
    return charts


def _figure(value: float | None, is_rate: bool) -> str:
    if value is None:
        return "–"
    return f"{value * 100:.0f} %" if is_rate else f"{value:.0f}"


def behind_page(document: dict[str, Any], keep: Mapping[str, str]) -> bytes:
    """The cases behind a search term or an article, each linked to its report."""
    what = f'search "{document["search"]}"' if "search" in document else f"article {document['article']}"
    back = "?" + urlencode({"from": document["from"], "to": document["to"], "format": "html", **keep})
    cases = [{**case, "href": "cases/" + quote(case["case_id"]) + "/timeline?" + urlencode({"format": "html", **keep})}
             for case in document["cases"]]
    return render("behind.html", title=f"Behind the {what}", what=what, document=document, cases=cases, back=back)


def status_page(title: str, message: str, refresh_seconds: int | None = None) -> bytes:
    """A short page for a case that is pending, skipped or unknown, or a bad request; with
    `refresh_seconds`, the browser reloads it by itself then."""
    return render("status.html", title=title, message=message, refresh=refresh_seconds)
