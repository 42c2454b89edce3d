"""The manager's insights pages: the dashboard (its cards, trend charts and the search-analytics
tables, sortable without script, with their filters) and what lies behind a term or an article.
Rendered with the report pages' Jinja2 environment (dci/pages.py: autoescaping, the strict CSP)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from dci.insights import MAX_KEYS_PER_DAY, MIN_SAMPLE
from dci.pages import count_text, rate_text, render
from dci.problems import FieldError, Problem


def insights_page(report: dict[str, Any] | None, params: Mapping[str, str], problem: Problem | None = None,
                  follow_days: int | None = None) -> bytes:
    """The support manager's dashboard; without a report (a bad range, filter or sort), its form and
    the error. The form carries on every query parameter it does not set (the function key, `code`,
    and the tables' sorts among them), so "Show" works wherever the page did; links keep the range,
    the filters and `code`. `follow_days`: INSIGHTS_FOLLOW_DAYS, said in words."""
    errors = {error.field: error.detail for error in problem.errors} if problem else {}
    carried = {name: value for name, value in params.items()
               if name not in ("from", "to", "format", *FILTERS) and name not in errors}
    filters = (report.get("filters") if report else None) or {  # (on the error form, only what was not refused)
        "signed_in": None if "signed_in" in errors else {"true": True, "false": False}.get(params.get("signed_in", "")),
        "portal": None if "portal" in errors else params.get("portal")}
    within_range = {"from": report["from"], "to": report["to"]} if report else {}
    unsorted = {name: value for name, value in carried.items() if not name.startswith("sort_")}

    def ask(extra: Mapping[str, str], *, sorted_as_now: bool = False, html: bool = True) -> str:
        """This page (or its CSV) over the same days and filters, with `extra` asked."""
        return "?" + urlencode({**within_range, **({"format": "html"} if html else {}), **filter_params(filters),
                                **(carried if sorted_as_now else unsorted), **extra})

    def behind(name: str, value: str) -> str:  # the drill-down of a term or an article over the same days
        return ask({name: value}) if report else ""

    csv = {table: ask({"format": "csv", "table": table}, html=False)
           for table in ("searches", "zero-results", "articles")} if report else {}
    charts = trend_charts(report["trend"]) if report else []
    within = f"within {count_text(follow_days, 'days')}" if follow_days else "soon after"
    shown = scope(filters)
    portals = list((report or {}).get("portals") or [])
    portals += [filters["portal"]] if filters.get("portal") and filters["portal"] not in portals else []
    title = f"Portal insights {report['from']} to {report['to']}" if report else "Portal insights"
    return render("insights.html", title=f"{title} · {shown}" if shown else title, report=report, asked=params,
                  carried=carried, problem=problem, errors=errors, csv=csv, behind=behind, charts=charts,
                  chart={"w": CHART_W, "h": CHART_H}, comparison=comparison(report["trend"]) if report else None,
                  count=count_text, min_sample=MIN_SAMPLE, max_keys=MAX_KEYS_PER_DAY, within=within, scope=shown,
                  filters=filters, portals=portals,
                  tables=search_tables(report, sort_of(params), ask) if report else [],
                  csv_suggestions=ask({"format": "csv", "table": "suggestions"}, html=False) if report else "",
                  since_change=since_change,
                  rates=TABLE_RATES, web_link=web_link)


def since_change(suggestion: Mapping[str, Any]) -> str:
    """What changed for a suggestion's term since its article changed, in one line."""
    day = str(suggestion.get("changed_on") or "")[:10]
    before, after, judged = suggestion.get("before"), suggestion.get("after"), suggestion.get("judged_by")
    if not (before and after and judged):
        return f"The article changed on {day}: too early to tell."
    words = {"zero_result_rate": "searches that found nothing", "click_through_to_article": "searches that opened it"}

    def percent(value: float | None) -> str:
        return "–" if value is None else f"{round(value * 100)} %"

    return (f"Since the article changed on {day}: {words[judged]} {percent(before[judged])} in the "
            f"{before['searches']} searches before, {percent(after[judged])} in the {after['searches']} after "
            f"({suggestion['status']}).")


# --- the search analytics on the insights page: four tables, sorted by links, and the filters -------

FILTERS = ("signed_in", "portal")


@dataclass(frozen=True)
class SearchTable:
    """One table of the search analytics: the report's list, its CSV `table=`, its heading, its
    columns ((field, heading) — a column sorts by its field), the field of the report's own order,
    and the other fields of its items it may be sorted by."""

    key: str
    csv: str
    title: str
    columns: tuple[tuple[str, str], ...]
    default: str
    also: tuple[str, ...] = ()

    @property
    def fields(self) -> tuple[str, ...]:
        """What `sort_<table>=` may name."""
        return (*(field for field, _ in self.columns), *self.also)


SEARCH_TABLES = {  # sort_<table>=
    "terms": SearchTable("search_terms", "search-terms", "Top searches", (
        ("term", "Search"), ("searches", "Times searched"), ("sessions", "Visits"),
        ("with_result_count", "Said how many they found"), ("zero_result_rate", "Found nothing"),
        ("click_through_rate", "Result opened"), ("mean_click_position", "Position opened (mean)"),
        ("refinement_rate", "Searched again straight away"), ("exit_rate", "Left after it"),
        ("cases_after", "Cases after it")), "searches"),
    "articles": SearchTable("top_articles", "top-articles", "Top articles", (
        ("title", "Article"), ("views", "Views"), ("sessions", "Visits"), ("from_search", "From a search"),
        ("cases_after", "Cases after it"), ("sessions_followed", "Visits followed by a case"),
        ("failed_to_deflect_rate", "Share of visits followed by a case")), "views", ("article", "url")),
    "refinements": SearchTable("refinements", "refinements", "Refinements", (
        ("from", "Searched"), ("to", "Then searched"), ("count", "Times")), "count"),
    "gaps": SearchTable("content_gaps", "content-gaps", "Content gaps", (
        ("term", "Search"), ("forms", "As typed"), ("searches", "Times searched"), ("sessions", "Visits"),
        ("cases_after", "Cases after it")), "cases_after"),
}
TEXT_FIELDS = frozenset(("term", "title", "article", "url", "from", "to", "forms"))  # sorted A–Z; the rest 9–0
# Each rate of the tables: the field that is its denominator, and that denominator's plural noun.
TABLE_RATES = {"zero_result_rate": ("with_result_count", "searches"), "click_through_rate": ("searches", "searches"),
               "refinement_rate": ("searches", "searches"), "exit_rate": ("searches", "searches"),
               "failed_to_deflect_rate": ("sessions", "visits")}


def sort_of(params: Mapping[str, str]) -> dict[str, str]:
    """The order each table of the insights page is asked for: `sort_terms=term` is
    `{"terms": "term"}` (empty: the report's own order). A 400 Problem naming each `sort_…` parameter
    that names no table, or a field its table has not."""
    sorts, errors = {}, []
    for name, value in params.items():
        if not name.startswith("sort_") or not value:
            continue
        table = SEARCH_TABLES.get(name.removeprefix("sort_"))
        if table is None:
            errors.append(FieldError(name, "names no table: sort_" + ", sort_".join(SEARCH_TABLES)))
        elif value not in table.fields:
            errors.append(FieldError(name, "must be one of " + ", ".join(table.fields)))
        else:
            sorts[name.removeprefix("sort_")] = value
    if errors:
        raise Problem(400, f"The page cannot be sorted as asked: {', '.join(e.field for e in errors)}.",
                      "invalid-parameter", errors)
    return sorts


def ordered(rows: Sequence[Mapping[str, Any]], field: str) -> list[Mapping[str, Any]]:
    """`rows` by `field`: text A–Z (case ignored), numbers highest first, empty ones last; ties keep
    the report's order."""
    present = [row for row in rows if row.get(field) is not None]
    if field in TEXT_FIELDS:
        present.sort(key=lambda row: "; ".join(row[field]).casefold() if isinstance(row[field], list)
                     else str(row[field]).casefold())
    else:
        present.sort(key=lambda row: row[field], reverse=True)  # (stable: ties keep their order)
    return present + [row for row in rows if row.get(field) is None]


def search_tables(report: Mapping[str, Any], sorts: Mapping[str, str],
                  ask: Callable[..., str]) -> list[dict[str, Any]]:
    """The search analytics' tables as the page shows them: rows in the order asked for, each
    column's heading a link that sorts by it (`sort` on the column sorted by: `ascending` or
    `descending`), and the table's CSV. A report without a table's list (older) shows no table."""
    tables = []
    for name, table in SEARCH_TABLES.items():
        if table.key not in report:
            continue
        now = sorts.get(name, table.default)
        columns = [{"field": field, "heading": heading, "num": field not in TEXT_FIELDS,
                    "href": ask({f"sort_{name}": field}, sorted_as_now=True) + f"#{table.csv}",
                    "sort": (None if now != field and not (field == "title" and now in table.also)
                             else "ascending" if now in TEXT_FIELDS else "descending")}
                   for field, heading in table.columns]
        rows = ordered(report[table.key], sorts[name]) if name in sorts else report[table.key]
        tables.append({"name": name, "id": table.csv, "title": table.title, "columns": columns, "rows": rows,
                       "csv": ask({"format": "csv", "table": table.csv}, html=False)})
    return tables


def filter_params(filters: Mapping[str, Any]) -> dict[str, str]:
    """The query parameters that ask for `filters` (the report's `filters`): `signed_in=true|false`,
    `portal=<host>`; nothing for a filter not set."""
    asked = {} if filters.get("signed_in") is None else {"signed_in": "true" if filters["signed_in"] else "false"}
    return asked | ({"portal": filters["portal"]} if filters.get("portal") else {})


def scope(filters: Mapping[str, Any]) -> str | None:
    """The filters in words for the heading (`Signed-in visitors on portal.example.com`); None when
    the page shows everyone on every portal."""
    who = {True: "Signed-in visitors", False: "Anonymous visitors"}.get(filters.get("signed_in"), "All visitors")
    if filters.get("portal"):
        return f"{who} on {filters['portal']}"
    return None if filters.get("signed_in") is None else who


def web_link(url: str | None) -> str | None:
    """`url` when it is a web address (http or https) to link to; None otherwise (no `javascript:`)."""
    return url if url and urlsplit(url).scheme.lower() in ("http", "https") else None


def comparison(trend: Mapping[str, Any]) -> str | None:
    """`Against the 30 days before: 2026-10-06 – 2026-11-04.`, naming that period's days that could
    not be counted; None without a previous period."""
    previous = trend.get("previous")
    if not previous:
        return None
    length = len(trend["days"])
    if length == 1:
        text = f"Against the day before: {previous['from']}."
    else:
        text = f"Against the {length} days before: {previous['from']} – {previous['to']}."
    missing = previous.get("missing_days") or []
    if len(missing) == 1:
        text += f" {missing[0]} could not be counted and is left out of it."
    elif missing:
        text += f" {len(missing)} of those days could not be counted and are left out of it: {', '.join(missing)}."
    return text


TREND_NAMES = {"searches": "Searches", "zero_result_rate": "Searches that found nothing",
               "click_through_rate": "Searches with a result opened", "cases": "Cases created",
               "deflection_rate": "Visits not followed by a case"}
RATE_UNITS = {"zero_result_rate": "searches", "click_through_rate": "searches", "deflection_rate": "visits"}
CHART_W, CHART_H, CHART_PAD = 320, 90, 6


def trend_charts(trend: dict[str, Any]) -> list[dict[str, Any]]:
    """One small chart per trend figure: a point per day (rates on 0–100 %, counts from 0 to the
    range's highest; a day whose rate is too few a hollow grey point), with the range's value and
    the change against the period before."""
    charts = []
    series = trend["days"]
    for name, title in TREND_NAMES.items():
        is_rate = name in RATE_UNITS
        if is_rate:
            points = [{"x": x, "y": y, "day": day["day"], "text": _figure(day, name), "few": day[f"{name}_too_few"]}
                      for (x, y), day in zip(_plot([day[name] for day in series], 1.0), series, strict=True)]
            drawn = {"points": points, "top": "100 %", "line": _line(points)}
        else:
            drawn = {key: value for key, value in count_chart(series, name).items() if key != "total"}
        charts.append({"name": name, "title": title, **drawn, "now": _figure(trend["range"], name),
                       "now_few": is_rate and trend["range"][f"{name}_too_few"], "change": _change(trend, name)})
    return charts


def count_chart(series: Sequence[Mapping[str, Any]], name: str) -> dict[str, Any]:
    """A small chart of a count per day (`series`: `{"day", name}`), from 0 to its highest, drawn as
    the dashboard's trend charts draw counts; with the range's `total`."""
    top = float(max([day[name] for day in series] or [0]) or 1)
    points = [{"x": x, "y": y, "day": day["day"], "text": f"{day[name]:.0f}", "few": False}
              for (x, y), day in zip(_plot([day[name] for day in series], top), series, strict=True)]
    return {"points": points, "top": f"{top:.0f}", "line": _line(points), "total": sum(day[name] for day in series)}


def _plot(values: Sequence[float | None], top: float) -> list[tuple[float, float | None]]:
    """Where each day's value sits on a small chart: days left to right, 0 to `top` bottom to top
    (None: no point)."""
    step = (CHART_W - 2 * CHART_PAD) / max(len(values) - 1, 1)
    return [(round(CHART_PAD + index * step if len(values) > 1 else CHART_W / 2, 1),
             None if value is None else round(CHART_H - CHART_PAD - (CHART_H - 2 * CHART_PAD) * value / top, 1))
            for index, value in enumerate(values)]


def _line(points: Sequence[Mapping[str, Any]]) -> str:
    """An SVG polyline through the points that have a value."""
    return " ".join(f"{p['x']},{p['y']}" for p in points if p["y"] is not None)


def _figure(figures: Mapping[str, Any], name: str) -> str:
    """A trend figure as the page shows it: a count, or a rate under the small-sample rule."""
    unit = RATE_UNITS.get(name)
    if unit is None:
        return f"{figures[name]:.0f}"
    return rate_text(figures[name], None, figures[f"{name}_of"], unit, figures[f"{name}_too_few"])


def _change(trend: Mapping[str, Any], name: str) -> str | None:
    """`up 4 points from 38 %`, `down 6 from 9`, `no change from 40 %`, or `too few to compare` (a
    rate either period has too few of); None without a previous period. Points between the shown
    (rounded) percentages, so the words agree with the figures beside them."""
    change, before = trend.get("change"), trend.get("previous")
    if not change or not before:
        return None
    if change.get(f"{name}_too_few"):
        return "too few to compare"
    if change[name] is None:
        return None
    if name in RATE_UNITS:
        difference = round(trend["range"][name] * 100) - round(before[name] * 100)
        was, unit = f"{before[name] * 100:.0f} %", (" point" if abs(difference) == 1 else " points")
    else:
        difference, was, unit = round(change[name]), f"{before[name]:.0f}", ""
    if difference == 0:
        return f"no change from {was}"
    return f"{'up' if difference > 0 else 'down'} {abs(difference)}{unit} from {was}"


def behind_page(document: dict[str, Any], keep: Mapping[str, str], follow_days: int | None = None) -> bytes:
    """The cases behind a search term or an article, each linked to its report; for a term, its
    searches per day, what it was refined to and which results were opened, each term and article
    linked to its own drill-down. `follow_days`: INSIGHTS_FOLLOW_DAYS, said in words."""
    searched = "search" in document
    what = f'search "{document["search"]}"' if searched else f"article {document['article']}"
    same = {"from": document["from"], "to": document["to"], "format": "html",
            **filter_params(document.get("filters") or {}), **keep}
    back = "?" + urlencode(same)
    cases = [{**case, "href": "cases/" + quote(case["case_id"]) + "/timeline?" + urlencode({"format": "html", **keep})}
             for case in document["cases"]]
    refined = [{**row, "href": "?" + urlencode({**same, "search": row["to"]})}
               for row in document["refined_to"]] if "refined_to" in document else None
    clicked = [{**row, "href": "?" + urlencode({**same, "article": row["article"]}) if row.get("article")
                else web_link(row.get("url")), "number": row.get("article"),
                "text": row.get("title") or row.get("article") or row.get("url")}
               for row in document["clicked"]] if "clicked" in document else None
    trend = document.get("trend")
    within = f"within {count_text(follow_days, 'days')}" if follow_days else "soon after"
    return render("behind.html", title=f"Behind the {what}", what=what, document=document, cases=cases, back=back,
                  done="searched it" if searched else "read it", within=within, refined=refined, clicked=clicked,
                  chart=count_chart(trend, "searches") if trend is not None else None,
                  size={"w": CHART_W, "h": CHART_H}, count=count_text,
                  scoped=scope(document.get("filters") or {}))
