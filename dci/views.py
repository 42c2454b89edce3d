"""The read side's HTTP answers: a case's timeline, a contact's timeline, the insights; JSON or HTML.

HTML when the request asks for it (`?format=html`, or `Accept: text/html` without a `format`),
JSON otherwise. Query parameters are checked; a bad one is a 400 problem naming it (as HTML for a
browser, so an agent following a link sees what is wrong).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING, Any

from dci import spreadsheet
from dci.access import check_report_access
from dci.activity import attributed
from dci.clock import duration, iso_ms, iso_of, ms_of
from dci.dataverse.visits import on_wall
from dci.ids import contact_id, is_guid
from dci.ingest.events import EVENT_TYPES
from dci.insights import ARTICLE_LISTS, term, with_titles
from dci.pages import CSP, case_page, contact_page, status_page
from dci.problems import FieldError, Problem
from dci.replies import Reply, json_reply, problem_reply
from dci.reports.dashboard import behind_page, insights_page, sort_of
from dci.reports.insights import filtered_report, filters_of, term_details
from dci.reports.suggestions import answered_for, with_suggestions
from dci.settings import Settings
from dci.storage.cases import PENDING, ticket_key
from dci.tickets import TicketPending, unknown_ticket
from dci.titles import stripped_items

if TYPE_CHECKING:
    from dci.storage import Stores
    from dci.storage.cases import CaseStore

logger = logging.getLogger(__name__)

HTML = "text/html; charset=utf-8"
MAX_INSIGHT_DAYS = 400  # a year and then some
DEFAULT_CONTACT_DAYS, DEFAULT_INSIGHT_DAYS = 30, 30
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True)
class Asked:
    """What a report request asks: the route's id (case or contact; "" for none), the query
    parameters, the Accept header, and when it was asked."""

    key: str
    params: Mapping[str, str]
    accept: str | None
    now: datetime
    headers: Mapping[str, str] = field(default_factory=dict)


def wants_html(params: Mapping[str, str], accept: str | None) -> bool:
    """True for `?format=html`, or no `format` and a browser's Accept; Problem for another format."""
    chosen = (params.get("format") or "").lower()
    if chosen not in ("", "json", "html"):
        raise Problem(400, "format is json or html (csv, for the insights).", "invalid-parameter",
                      [FieldError("format", "must be json or html (or csv on /api/insights)")])
    return chosen == "html" or (not chosen and "text/html" in (accept or ""))


def _html(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, body, HTML, {**NO_STORE, "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                                      **(headers or {})})


def negotiated(params: Mapping[str, str], accept: str | None, build: Callable[[bool], Reply]) -> Reply:
    """`build(html)`'s reply; a Problem raised on the way is answered in the format asked for."""
    try:
        html = wants_html(params, accept)
    except Problem as problem:
        return problem_reply(problem)
    try:
        return build(html)
    except Problem as problem:
        if not html:
            return problem_reply(problem)
        detail = problem.detail + "".join(f" {e.field}: {e.detail}." for e in problem.errors)
        return _html(problem.status, status_page(problem.title, detail))


# --- GET /api/cases/{case_id}/timeline -----------------------------------------------------------

def may_list_cases(settings: Settings, asked: Asked) -> bool:
    """Whether a 409 may name the cases that share a ticket number: only to a caller the report
    gate let in (dci/access.py) — with `REPORTS_AUTH=function-key`, one who sent a function key,
    which the host checked in Azure (locally, where nothing checks keys, a request without one)."""
    try:
        check_report_access(settings, asked.headers)
    except Problem:
        return False
    if settings.reports_auth == "app-service":
        return True
    return bool(asked.params.get("code") or asked.headers.get("x-functions-key"))


def case_of(cases: CaseStore, key: str, list_cases: bool, settings: Settings, now: datetime) -> str:
    """The case id a route names: the id itself (a GUID), or the one case with that ticket number.

    Several cases with that number are a 409 that names them when `list_cases`, and only says how
    many otherwise. A number no case here carries is looked up in Dataverse when `settings`
    configure it (dci/tickets.py: a 404 saying why, or TicketPending while the case is on its way)."""
    if is_guid(key):
        return key.lower()
    if ticket_key(key) is None:
        raise Problem(400, "Name a case by its id (a GUID) or its ticket number (like CAS-01234-X1Y2Z3).",
                      "invalid-case-id", [FieldError("case_id", "must be a GUID or a ticket number")])
    found = cases.cases_with_ticket(key)
    if not found:
        unknown_ticket(key, settings, ms_of(now))
    if len(found) > 1 and not list_cases:
        raise Problem(409, f"{len(found)} cases carry ticket number {key}; open one by its id.", "ambiguous-ticket")
    if len(found) > 1:
        raise Problem(409, f"{len(found)} cases carry ticket number {key}; open one by its id: {', '.join(found)}.",
                      "ambiguous-ticket", extensions={"cases": found})
    return found[0]


def case_timeline(cases: CaseStore, key: str, html: bool, settings: Settings, now: datetime | None = None,
                  keep: Mapping[str, str] | None = None, list_cases: bool = True) -> Reply:
    """200 with the timeline, 202 while pending (or, with Dataverse, while a new case's ticket is on its
    way here), 200 with the reason when skipped, 404 when unknown."""
    now = now or datetime.now(timezone.utc)
    try:
        case_id = case_of(cases, key, list_cases, settings, now)
    except TicketPending as pending:
        headers = {"Retry-After": str(pending.wait_seconds)}
        if html:
            return _html(202, status_page("Case on its way", pending.detail, refresh_seconds=pending.wait_seconds),
                         headers)
        return json_reply(202, {"ticket": pending.ticket, "status": "pending", "created": iso_of(pending.created_ms),
                                "ready_in_seconds": pending.wait_seconds, "detail": pending.detail}, headers)
    case = cases.case(case_id)
    if case is None:
        raise Problem(404, f"No case {case_id} is known here (yet).", "unknown-case")
    timeline = cases.timeline(case_id)
    if case["status"] == "skipped":
        reason = case.get("reason", "")
        if html:
            return _html(200, status_page("No timeline for this case", f"This case has no portal timeline: {reason}"))
        return json_reply(200, {"case_id": case_id, "status": "skipped", "reason": reason})
    if case["status"] in PENDING or timeline is None:
        wait = ready_in(case, settings, now)
        headers = {"Retry-After": str(wait)}
        if html:
            return _html(202, status_page("Timeline on its way", (
                f"Portal activity sent just before the case may still be arriving: the timeline is assembled "
                f"{duration(settings.settle_ms)} after the case was created, about {duration(wait * 1000)} from now. "
                "This page reloads itself."), refresh_seconds=wait), headers)
        return json_reply(202, {"case_id": case_id, "status": "pending", "ready_in_seconds": wait}, headers)
    if html:
        wall = on_wall(timeline["document"], timeline.get("visits") or {},
                       str(settings.dataverse_url) if settings.dataverse_url else None, settings.session_gap_ms)
        return _html(200, case_page(timeline["document"], settings.session_gap_ms, keep, wall))
    return json_reply(200, {"status": "assembled", **timeline["document"]}, NO_STORE)


MIN_WAIT_SECONDS = 5  # once settled, the assembler runs within seconds of its queue message


def ready_in(case: dict[str, Any], settings: Settings, now: datetime) -> int:
    """Seconds until a pending case's timeline should exist: the rest of its settle time."""
    remaining_ms = min(case["created_ms"] + settings.settle_ms - ms_of(now), settings.settle_ms)  # clock skew
    return max(MIN_WAIT_SECONDS, -(-remaining_ms // 1000))


# --- GET /api/contacts/{contact_id}/timeline -----------------------------------------------------

FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9999, 12, 31)  # what a range may name (UTC)
OUT_OF_RANGE = f"must lie between {FIRST_DAY} and {LAST_DAY} (UTC)"


def _moment(params: Mapping[str, str], name: str, default: datetime, end_of_day: bool) -> datetime:
    raw = params.get(name)
    if not raw:
        return default
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            value = datetime.combine(day, time.max if end_of_day else time.min, timezone.utc)
        else:
            value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Problem(400, f"{name} is not a date.", "invalid-parameter",
                      [FieldError(name, "must be a date (2026-11-28) or an ISO-8601 time with a zone")]) from None
    if value.tzinfo is None:
        raise Problem(400, f"{name} has no time zone.", "invalid-parameter",
                      [FieldError(name, "must carry a time zone, like 2026-11-28T15:00:00Z")])
    try:
        value = value.astimezone(timezone.utc)  # 0001-01-01T00:00+01:00 is no instant Python can hold
    except OverflowError:
        value = None
    if value is None or not FIRST_DAY <= value.date() <= LAST_DAY:
        raise Problem(400, f"{name} is out of range.", "invalid-parameter", [FieldError(name, OUT_OF_RANGE)])
    return value


def _range_of(params: Mapping[str, str], now: datetime, default_days: int) -> tuple[datetime, datetime]:
    last = _moment(params, "to", now, end_of_day=True)
    first = _moment(params, "from", last - timedelta(days=default_days), end_of_day=False)
    if first > last:
        raise Problem(400, "from is after to.", "invalid-parameter", [FieldError("from", "must not be after to")])
    return first, last


def contact_timeline(stores: Stores, raw_contact: str, params: Mapping[str, str], settings: Settings,
                     now: datetime) -> dict[str, Any]:
    """Every interaction attributed to the contact in the range (of the types asked for), and the
    contact's cases created in it."""
    contact = contact_id(raw_contact)
    first, last = _range_of(params, now, DEFAULT_CONTACT_DAYS)
    types = [t.strip() for t in (params.get("types") or "").split(",") if t.strip()]
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise Problem(400, f"Unknown event types: {', '.join(unknown)}.", "invalid-parameter",
                      [FieldError("types", "a comma-separated list of " + ", ".join(EVENT_TYPES))])
    lo, hi = ms_of(first), ms_of(last)
    items = [item for item in attributed(stores.interactions, contact, settings.stitch_window_ms, stores.erased_times())
             if lo <= item["ms"] <= hi and (not types or item["type"] in types)]
    items = stripped_items(items)  # page titles without the site's suffix (dci/titles.py)
    all_cases = stores.cases.cases_of(contact)
    own_cases = [{"case_id": row["case_id"], "ticket": row.get("ticket") or None, "title": row.get("title") or None,
                  "created": iso_of(row["created_ms"]), "created_ms": row["created_ms"]}
                 for row in all_cases if lo <= row["created_ms"] <= hi]
    report = {"contact": contact, "from": iso_ms(first), "to": iso_ms(last), "types": types,
              "interactions": items, "cases": own_cases}
    name = _name_from_cases(stores.cases, all_cases)
    if name:
        report["name"] = name
    return report


def _name_from_cases(cases: CaseStore, rows: list[dict[str, Any]]) -> str | None:
    """The contact's name as their latest case's timeline has it (read from Dataverse at assembly)."""
    for row in sorted(rows, key=lambda r: r["created_ms"], reverse=True)[:1]:
        timeline = cases.timeline(row["case_id"])
        if timeline is not None:
            return timeline["document"]["case"].get("contact_name")
    return None


def contact_timeline_reply(asked: Asked, settings: Settings, stores: Stores) -> Reply:
    """GET /api/contacts/{contact_id}/timeline."""
    def build(html: bool) -> Reply:
        report = contact_timeline(stores, asked.key, asked.params, settings, asked.now)
        if html:
            return _html(200, contact_page(report, settings.session_gap_ms, kept(asked.params)))
        return json_reply(200, report, NO_STORE)

    return negotiated(asked.params, asked.accept, build)


# --- GET /api/insights ---------------------------------------------------------------------------

def insight_range(params: Mapping[str, str], today: date) -> tuple[str, str]:
    """The days asked for: `from` and `to` as dates, at most 400 days; default the last 30."""
    def day(name: str, default: date) -> date:
        raw = params.get(name)
        if not raw:
            return default
        try:
            value = date.fromisoformat(raw)
        except ValueError:
            raise Problem(400, f"{name} is not a date.", "invalid-parameter",
                          [FieldError(name, "must be a date like 2026-11-28")]) from None
        if not FIRST_DAY <= value <= LAST_DAY:
            raise Problem(400, f"{name} is out of range.", "invalid-parameter", [FieldError(name, OUT_OF_RANGE)])
        return value

    last = day("to", today)
    first = day("from", last - timedelta(days=DEFAULT_INSIGHT_DAYS - 1))
    if first > last:
        raise Problem(400, "from is after to.", "invalid-parameter", [FieldError("from", "must not be after to")])
    if (last - first).days >= MAX_INSIGHT_DAYS:
        raise Problem(400, f"Ask for at most {MAX_INSIGHT_DAYS} days.", "invalid-parameter",
                      [FieldError("from", f"must be less than {MAX_INSIGHT_DAYS} days before to")])
    return first.isoformat(), last.isoformat()


CsvTable = tuple[str, tuple[str, ...], Callable[[dict[str, Any]], tuple[object, ...]]]


def json_fields(key: str, *names: str) -> CsvTable:
    """A CSV table of the report's list `key` whose header is the JSON's own field names: a list (a
    gap's forms) joined with "; ", true and false written as the JSON writes them."""
    def value(item: dict[str, Any], name: str) -> object:
        found = item[name]
        if isinstance(found, bool):
            return "true" if found else "false"
        return "; ".join(found) if isinstance(found, list) else found

    return key, names, lambda item: tuple(value(item, name) for name in names)


CSV_TABLES: dict[str, CsvTable] = {
    # ?table= : (the report's list, the header, one row)
    "searches": ("top_searches_before_cases", ("search", "cases after", "all searches"),
                 lambda r: (r["query"], r["cases"], r["searches"])),
    "zero-results": ("zero_result_searches", ("search", "times", "then a case", "cases after"),
                     lambda r: (r["query"], r["searches"], r["followed_by_case"], r["cases_after"])),
    "articles": ("articles", ("article", "title", "address", "cases after", "reads", "failed to deflect",
                              "interval low", "interval high"),
                 lambda r: (r["article"], r["title"], r["url"], r["cases_after"], r["reads"],
                            r["failed_to_deflect_rate"], *(r["failed_to_deflect_interval"] or (None, None)))),
    "search-terms": json_fields("search_terms", "term", "searches", "sessions", "with_result_count",
                                "zero_result_rate", "zero_result_rate_too_few", "click_through_rate",
                                "click_through_rate_too_few", "mean_click_position", "refinement_rate",
                                "refinement_rate_too_few", "exit_rate", "exit_rate_too_few", "cases_after"),
    "top-articles": json_fields("top_articles", "article", "title", "url", "views", "sessions", "from_search",
                                "cases_after", "sessions_followed", "failed_to_deflect_rate",
                                "failed_to_deflect_rate_too_few"),
    "refinements": json_fields("refinements", "from", "to", "count"),
    "content-gaps": json_fields("content_gaps", "term", "forms", "searches", "sessions", "cases_after"),
    "suggestions": json_fields("suggestions", "id", "term", "article", "title", "cases", "answered", "share",
                               "searches", "zero_result_rate", "status", "changed_on", "sentence"),
}


def previous_period(first: str, last: str) -> tuple[str, str]:
    """The days of equal number just before `first`..`last`."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    length = (end - start).days + 1
    return (start - timedelta(days=length)).isoformat(), (start - timedelta(days=1)).isoformat()


def wants_csv(params: Mapping[str, str], accept: str | None) -> bool:
    """`?format=csv`, or no `format` and an Accept that asks for CSV first."""
    chosen = (params.get("format") or "").lower()
    return chosen == "csv" or (not chosen and (accept or "").split(",")[0].strip().startswith("text/csv"))


def insights_csv(asked: Asked, stores: Stores, settings: Settings) -> Reply:
    """One table of the insights as a CSV file (`table`: one of CSV_TABLES, default searches)."""
    try:
        name = asked.params.get("table") or "searches"
        if name not in CSV_TABLES:
            raise Problem(400, f"table is one of {', '.join(CSV_TABLES)}.", "invalid-parameter",
                          [FieldError("table", "must be one of " + ", ".join(CSV_TABLES))])
        first, last = insight_range(asked.params, asked.now.date())
        filters = filters_of(asked.params)
    except Problem as problem:
        return problem_reply(problem)
    key, header, row = CSV_TABLES[name]
    report = article_titles(filtered_report(stores.insights, first, last, None, filters, top=MAX_CSV_ROWS), settings)
    if key == "suggestions":
        report = with_suggestions(report, stores, settings.dataverse_configured, ms_of(asked.now))
    body = spreadsheet.table(header, (row(item) for item in report[key]))
    return Reply(200, body, spreadsheet.MEDIA_TYPE, {
        **NO_STORE, "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'attachment; filename="insights-{name}-{first}-to-{last}.csv"'})


MAX_CSV_ROWS = 1000


def article_titles(report: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The report with its articles' titles from Dataverse's knowledge articles, when Dataverse is
    configured and answers; otherwise as the page views gave them (see dci.insights.rollup), without
    the site's suffix learnt from this report's titles (dci/titles.py)."""
    report = {**report, **{name: stripped_items(report[name]) for name in ARTICLE_LISTS if name in report}}
    if settings.dataverse_url is None or not any(report.get(name) for name in ARTICLE_LISTS):
        return report
    from dci.dataverse.client import DataverseError, client_from  # (only the Dataverse paths load requests)

    client = client_from(settings)
    try:
        numbers = sorted({row["article"] for name in ARTICLE_LISTS for row in report.get(name, [])})
        titles = client.article_titles(numbers) if client else {}
    except DataverseError as error:
        logger.warning("insights: no article titles from Dataverse (HTTP %s); showing those of page views",
                       error.status)
        return report
    return with_titles(report, titles)


MAX_CASES_BEHIND = 100


def insights_behind(asked: Asked, stores: Stores, html: bool) -> Reply:
    """What lies behind one search term (`search`) or article (`article`) over the range: the cases
    whose timelines hold it, and the sessions that searched or read it without a case after."""
    first, last = insight_range(asked.params, asked.now.date())
    search, article = asked.params.get("search"), asked.params.get("article")
    if bool(search) == bool(article):
        raise Problem(400, "Ask for one search term (search) or one article (article).", "invalid-parameter",
                      [FieldError("search" if search else "article", "give exactly one of search and article")])
    key = {"search": term(search)} if search else {"article": (article or "").upper()}
    filters = filters_of(asked.params)  # (checked, and kept in the page's links: they do not apply here)
    term_rows = stores.insights.term_events(first, last, key["search"]) if "search" in key else None  # read once
    cases, sessions, followed = stores.insights.behind(first, last, **key, term_rows=term_rows)
    listed = []
    for case_id, day in cases[:MAX_CASES_BEHIND]:
        row = stores.cases.case(case_id) or {}
        listed.append({"case_id": case_id, "ticket": row.get("ticket") or None, "title": row.get("title") or None,
                       "day": day})
    document = {"from": first, "to": last, **key, "cases": listed, "case_count": len(cases),
                "sessions": sessions, "sessions_followed_by_case": followed,
                "sessions_without_case": sessions - followed, "filters": filters.as_json(), "filtered": False,
                **(term_details(stores.insights, first, last, key["search"], term_rows) if "search" in key else {}),
                **({"answered_by": answered_for(stores, cases)} if "search" in key else {})}
    if html:
        return _html(200, behind_page(document, kept(asked.params), stores.insights.follow_days))
    return json_reply(200, document, NO_STORE)


def insights_reply(asked: Asked, settings: Settings, stores: Stores) -> Reply:
    """GET /api/insights."""
    if wants_csv(asked.params, asked.accept):
        return insights_csv(asked, stores, settings)
    if asked.params.get("search") or asked.params.get("article"):
        return negotiated(asked.params, asked.accept, lambda html: insights_behind(asked, stores, html))

    def build(html: bool) -> Reply:
        try:
            first, last = insight_range(asked.params, asked.now.date())
            filters = filters_of(asked.params)
            sort_of(asked.params)  # (a bad sort is the form again, naming it)
        except Problem as problem:
            if not html:
                raise
            # The dashboard's form again, with what was asked and what is wrong with it.
            return _html(problem.status, insights_page(None, asked.params, problem))
        report = with_suggestions(article_titles(filtered_report(
            stores.insights, first, last, previous_period(first, last), filters), settings), stores,
            settings.dataverse_configured, ms_of(asked.now))
        if html:
            return _html(200, insights_page(report, asked.params, follow_days=stores.insights.follow_days))
        return json_reply(200, report, NO_STORE)

    return negotiated(asked.params, asked.accept, build)



def kept(params: Mapping[str, str]) -> dict[str, str]:
    """The query parameters a link to another report page must carry: the function key (`code`)."""
    return {"code": params["code"]} if params.get("code") else {}


def case_timeline_reply(asked: Asked, settings: Settings, stores: Stores) -> Reply:
    """GET /api/cases/{case_id}/timeline."""
    return negotiated(asked.params, asked.accept, lambda html: case_timeline(
        stores.cases, asked.key, html, settings, asked.now, kept(asked.params), may_list_cases(settings, asked)))
