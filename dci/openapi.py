"""GET /api/openapi.json: the OpenAPI 3.1 document of every route the app serves."""

from __future__ import annotations

import functools

from dci import __version__
from dci.ingest.events import CollectBatch
from dci.insights import MIN_SAMPLE, TREND_RATES
from dci.reports.schemas import (
    CSV_TABLE_NAMES,
    FILTER_PARAMETERS,
    RATE,
    SEARCH_PROPERTIES,
    SEARCH_REQUIRED,
    SORT_PARAMETERS,
    TERM_PROPERTIES,
)

REF = "#/components/schemas/{model}"


_SIGN_IN = {"description": "REPORTS_AUTH=app-service, not signed in, and HTML asked for (`format=html` or a "
                          "browser's Accept): to the Entra sign-in, and back to this address after it",
            "headers": {"Location": {"schema": {"type": "string"},
                                     "description": "/.auth/login/aad?post_login_redirect_uri=<this path and query>"}}}


def _problem(description: str) -> dict[str, object]:
    return {"description": description,
            "content": {"application/problem+json": {"schema": {"$ref": REF.format(model="Problem")}}}}


def _page_or_problem(description: str) -> dict[str, object]:
    """A report route's error: problem+json, or a page saying the same to a browser (format=html)."""
    problem = _problem(description)
    return problem | {"content": {**problem["content"], "text/html": {"schema": {"type": "string"}}}}  # type: ignore[dict-item]


_PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "pointer", "detail"],
                "properties": {name: {"type": "string"} for name in ("field", "pointer", "detail")},
            },
        },
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
        "portals": {"type": "object", "description": "per configured portal: when its beacons last arrived "
                                                    "(`last_beacon`), and `check` when none arrived in 24 hours",
                    "additionalProperties": {"type": "object"}},
    },
}

_CONTACT_PARAMETER = {"name": "contact_id", "in": "path", "required": True,
                      "schema": {"type": "string", "format": "uuid"}, "description": "Dataverse contact id"}
_EXPORT_SCHEMA = {
    "type": "object",
    "required": ["contact", "visitors", "interactions", "cases"],
    "properties": {
        "contact": {"type": "string"},
        "visitors": {"type": "array", "items": {
            "type": "object", "required": ["visitor", "signins"],
            "properties": {"visitor": {"type": "string"}, "signins": {"type": "array", "items": {
                "type": "object", "properties": {"from": {"type": "string"}, "to": {"type": "string"}}}}}}},
        "interactions": {"type": "array", "items": {
            "type": "object", "required": ["id", "type", "ts", "visitor", "attribution"],
            "properties": {"id": {"type": "string"}, "type": {"type": "string"},
                           "ts": {"type": "string", "format": "date-time"}, "visitor": {"type": "string"},
                           "attribution": {"enum": ["verified", "stitched"]}},
            "additionalProperties": True}},
        "cases": {"type": "array", "items": {"type": "object", "required": ["case_id", "ticket", "created"],
                                             "properties": {"case_id": {"type": "string"},
                                                            "ticket": {"type": "string"},
                                                            "created": {"type": "string"},
                                                            "timeline": {"type": ["object", "null"]}}}},
    },
}
_ERASE_SCHEMA = {
    "type": "object",
    "required": ["contact", "removed"],
    "properties": {"contact": {"type": "string"}, "removed": {
        "type": "object", "properties": {name: {"type": "integer"} for name in ("interactions", "visitors", "cases")}},
        "lake": {"enum": ["erased", "pending"], "description": "with LAKE_URL set: the contact's rows are gone from "
                 "the Delta tables, or the lake could not be reached and the next lake export removes them"},
        "notes": {"enum": ["deleted", "pending"], "description": "with DATAVERSE_URL set: the notes and Portal visits "
                  "written on the contact's cases are deleted, or Dataverse could not be reached and the case poller "
                  "deletes them"}},
}

_TIMELINE_SCHEMA = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"enum": ["assembled", "skipped"]},
        "reason": {"type": "string"},
        "version": {"type": "integer"},
        "case": {"type": "object", "properties": {
            "case_id": {"type": "string"}, "ticket": {"type": "string"}, "title": {"type": "string"},
            "contact": {"type": "string"}, "created": {"type": "string", "format": "date-time"},
            "source": {"enum": ["poll", "webhook", "portal"]},
            "contact_name": {"type": "string", "description": "the contact's fullname in Dataverse, when read"}}},
        "summary": {"type": "object", "properties": {
            "sentence": {"type": "string"}, "searches": {"type": "array"},
            "zero_result_searches": {"type": "array", "items": {"type": "string"}},
            "articles": {"type": "array"}, "path": {"type": "array", "items": {"type": "string"}},
            "sessions": {"type": "integer"}, "first_touch_before_case_ms": {"type": ["integer", "null"]}}},
        "sessions": {"type": "array"},
        "items": {"type": "array", "items": {"type": "object", "required": ["type", "ts"]}},
    },
}

_COUNTED = {"type": "object", "additionalProperties": False}
_INTERVAL = {"type": ["array", "null"], "items": {"type": "number", "minimum": 0, "maximum": 1}, "minItems": 2,
             "maxItems": 2, "description": "the rate's 95 % Wilson score interval: [low, high]"}
_TOO_FEW = {"type": "boolean", "description": f"the rate's sample (its denominator) is under {MIN_SAMPLE}: too few"}
_TREND_FIGURES = {"type": "object", "required": [
    "searches", "cases", *(f"{name}{end}" for name in TREND_RATES for end in ("", "_of", "_too_few"))], "properties": {
    "searches": {"type": "integer", "minimum": 0}, "cases": {"type": "integer", "minimum": 0},
    **{key: value for name in TREND_RATES for key, value in (
        (name, RATE), (f"{name}_of", {"type": "integer", "minimum": 0}), (f"{name}_too_few", _TOO_FEW))}}}
_DAYS = {"type": "array", "items": {"type": "string", "format": "date"}}
_INSIGHTS_SCHEMA = {
    "type": "object",
    "required": ["from", "to", "days", "missing_days", "cases", "top_searches_before_cases",
                 "zero_result_searches", "articles", "deflection", "first_touch_to_case", *SEARCH_REQUIRED],
    "properties": {
        "from": {"type": "string", "format": "date"},
        "to": {"type": "string", "format": "date"},
        "days": {"type": "integer", "minimum": 0, "description": "days in the range with anything recorded"},
        "missing_days": {"type": "array", "items": {"type": "string", "format": "date"},
                         "description": "days whose rollups could not be built: left out of every figure"},
        "cases": {"type": "integer", "minimum": 0},
        "top_searches_before_cases": {"type": "array", "items": _COUNTED | {
            "required": ["query", "cases", "searches"],
            "properties": {"query": {"type": "string"}, "cases": {"type": "integer", "minimum": 0},
                           "searches": {"type": "integer", "minimum": 0}}}},
        "zero_result_searches": {"type": "array", "items": _COUNTED | {
            "required": ["query", "searches", "followed_by_case", "cases_after"],
            "properties": {"query": {"type": "string"}, "searches": {"type": "integer", "minimum": 0},
                           "followed_by_case": {"type": "integer", "minimum": 0},
                           "cases_after": {"type": "integer", "minimum": 0}}}},
        "articles": {"type": "array", "items": _COUNTED | {
            "required": ["article", "title", "url", "reads", "cases_after", "reads_followed_by_case",
                         "failed_to_deflect_rate", "failed_to_deflect_interval", "failed_to_deflect_too_few"],
            "properties": {"article": {"type": "string"},
                           "title": {"type": ["string", "null"], "description": "Dataverse's title of the article "
                                     "where configured, else the first a signed-in view showed, else the first "
                                     "any view showed"},
                           "url": {"type": ["string", "null"], "description": "the article's own address on the "
                                   "portal (no query string)"},
                           "reads": {"type": "integer", "minimum": 0},
                           "cases_after": {"type": "integer", "minimum": 0},
                           "reads_followed_by_case": {"type": "integer", "minimum": 0,
                                                      "description": "reads in sessions a case then followed"},
                           "failed_to_deflect_rate": RATE | {"description": "reads_followed_by_case ÷ reads"},
                           "failed_to_deflect_interval": _INTERVAL, "failed_to_deflect_too_few": _TOO_FEW}}},
        "deflection": _COUNTED | {
            "required": ["self_service_sessions", "followed_by_case", "deflected", "rate", "too_few"],
            "properties": {"self_service_sessions": {"type": "integer", "minimum": 0},
                           "followed_by_case": {"type": "integer", "minimum": 0},
                           "deflected": {"type": "integer", "minimum": 0}, "rate": RATE, "interval": _INTERVAL,
                           "too_few": _TOO_FEW}},
        "trend": {"type": "object", "description": "each day's searches, zero-result rate, click-through, cases "
                                                   "and deflection rate (`days`), the range's (`range`), the period "
                                                   "of equal length before it (`previous`) and the `change`",
                  "required": ["days", "range"],
                  "properties": {"days": {"type": "array", "items": _TREND_FIGURES | {
                                     "required": ["day", *_TREND_FIGURES["required"]],
                                     "properties": {"day": {"type": "string", "format": "date"},
                                                    **_TREND_FIGURES["properties"]}}},
                                 "range": _TREND_FIGURES, "previous": _TREND_FIGURES | {
                                     "required": ["from", "to", "missing_days", *_TREND_FIGURES["required"]],
                                     "properties": {"from": {"type": "string", "format": "date"},
                                                    "to": {"type": "string", "format": "date"},
                                                    "missing_days": _DAYS, **_TREND_FIGURES["properties"]}},
                                 "change": {"type": "object", "description": "range − previous; a rate's is null "
                                            "and `{rate}_too_few` when either period's rate is too few",
                                            "properties": {"searches": {"type": "integer"},
                                                           "cases": {"type": "integer"},
                                                           **{key: value for name in TREND_RATES for key, value in (
                                                               (name, {"type": ["number", "null"]}),
                                                               (f"{name}_too_few", _TOO_FEW))}}}}},
        "site_search": {"type": "object", "description": "site-search figures (docs/REPORTS.md defines each)",
                        "properties": {
                            **{name: {"type": "integer", "minimum": 0} for name in (
                                "searches", "with_result_count", "zero", "sessions", "clicked", "refinements",
                                "exits")},
                            "searches_per_session": {"type": ["number", "null"]},
                            **{name: {"type": "object", "required": ["rate", "of", "interval", "too_few"],
                                      "properties": {"rate": RATE, "of": {"type": "integer"},
                                                     "interval": _INTERVAL, "too_few": _TOO_FEW}}
                               for name in ("zero_result_rate", "click_through_rate", "refinement_rate",
                                            "exit_rate")}}},
        "other": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0},
                  "description": "by list, the counts a day's bounded lists did not name (summed as other)"},
        "first_touch_to_case": _COUNTED | {
            "required": ["cases", "median_ms"],
            "properties": {"cases": {"type": "integer", "minimum": 0},
                           "median_ms": {"type": ["integer", "null"], "minimum": 0}}},
        **SEARCH_PROPERTIES,
    },
}
_CONTACT_TIMELINE_SCHEMA = {
    "type": "object",
    "required": ["contact", "from", "to", "types", "interactions", "cases"],
    "properties": {
        "contact": {"type": "string", "format": "uuid"},
        "name": {"type": "string", "description": "the contact's name, as their latest case's timeline has it"},
        "from": {"type": "string", "format": "date-time"},
        "to": {"type": "string", "format": "date-time"},
        "types": {"type": "array", "items": {"type": "string"}},
        "interactions": {"type": "array", "items": {
            "type": "object", "required": ["id", "type", "ts", "ms", "visitor", "attribution"],
            "properties": {"id": {"type": "string"}, "type": {"type": "string"},
                           "ts": {"type": "string", "format": "date-time"}, "ms": {"type": "integer"},
                           "visitor": {"type": "string"}, "attribution": {"enum": ["verified", "stitched", "ticket"]}},
            "additionalProperties": True}},
        "cases": {"type": "array", "items": {
            "type": "object", "required": ["case_id", "created", "created_ms"],
            "properties": {"case_id": {"type": "string"}, "ticket": {"type": ["string", "null"]},
                           "title": {"type": ["string", "null"]}, "created": {"type": "string", "format": "date-time"},
                           "created_ms": {"type": "integer"}}}},
    },
}
_FORMAT_PARAMETER = {"name": "format", "in": "query", "required": False, "schema": {"enum": ["json", "html"]},
                     "description": "html for the report page (also chosen by `Accept: text/html`)"}
_HTML = {"text/html": {"schema": {"type": "string"}}}


def _range_parameters(kind: str) -> list[dict[str, object]]:
    return [{"name": name, "in": "query", "required": False, "schema": {"type": "string", "format": kind},
             "description": description} for name, description in
            (("from", "first day (or moment) of the range"), ("to", "last day (or moment) of the range"))]


_BEHIND_SCHEMA = {
    "type": "object", "description": "The cases and sessions behind one search term or article over a range",
    "required": ["from", "to", "cases", "case_count", "sessions", "sessions_followed_by_case",
                 "sessions_without_case"],
    "properties": {
        "from": {"type": "string", "format": "date"}, "to": {"type": "string", "format": "date"},
        "search": {"type": "string"}, "article": {"type": "string"},
        "cases": {"type": "array", "items": {"type": "object", "required": ["case_id", "day"], "properties": {
            "case_id": {"type": "string"}, "ticket": {"type": ["string", "null"]},
            "title": {"type": ["string", "null"]}, "day": {"type": "string", "format": "date"}}}},
        **{name: {"type": "integer", "minimum": 0} for name in (
            "case_count", "sessions", "sessions_followed_by_case", "sessions_without_case")},
        **TERM_PROPERTIES,
    },
}

_HEALTH_STATUS_SCHEMA = {
    "type": "object",
    "required": ["status"],
    "additionalProperties": False,
    "properties": {"status": {"enum": ["ok", "degraded"]}},
}
_HEALTH_SCHEMA = {
    "type": "object",
    "required": ["status", "checks", "telemetry"],
    "properties": {
        "status": {"enum": ["ok", "degraded"]},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
        "telemetry": {"enum": ["off", "azure-monitor", "otlp", "azure-monitor+otlp"],
                      "description": "where the app's traces, metrics and logs go (docs/OPERATIONS.md)"},
        "portals": {"type": "object", "description": "per configured portal: when its beacons last arrived "
                                                    "(`last_beacon`), and `check` when none arrived in 24 hours",
                    "additionalProperties": {"type": "object"}},
        "warnings": {"type": "object", "additionalProperties": {"type": "string"},
                     "description": "what only an operator can fix, by name (`timeline_activities`: the Portal "
                                    "visits cannot be written to Dataverse, and why); makes the status degraded"},
    },
}


@functools.cache
def document() -> dict[str, object]:
    """The OpenAPI document (built once per process)."""
    batch = CollectBatch.model_json_schema(ref_template=REF)
    schemas = batch.pop("$defs", {})
    schemas.update({"CollectBatch": batch, "Problem": _PROBLEM_SCHEMA, "Health": _HEALTH_SCHEMA,
                    "Export": _EXPORT_SCHEMA, "Erased": _ERASE_SCHEMA, "Timeline": _TIMELINE_SCHEMA,
                    "ContactTimeline": _CONTACT_TIMELINE_SCHEMA, "Insights": _INSIGHTS_SCHEMA,
                    "Behind": _BEHIND_SCHEMA, "HealthStatus": _HEALTH_STATUS_SCHEMA})
    collect_body = {"schema": {"$ref": REF.format(model="CollectBatch")}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Portal Insights for Dataverse",
            "version": __version__,
            "description": "Portal activity before each support case. See docs/API.md.",
        },
        "servers": [{"url": "/api"}],
        "paths": {
            "/collect": {
                "post": {
                    "operationId": "collect",
                    "summary": "Accept a batch of beacon events",
                    "security": [],
                    "requestBody": {"required": True,
                                    "content": {"application/json": collect_body, "text/plain": collect_body}},
                    "responses": {
                        "202": {"description": "Accepted for processing: every event, or the valid ones with "
                                               "`rejected` naming the others (index in `events`, field errors)",
                                "content": {"application/json": {"schema": {
                                    "type": "object", "required": ["accepted"],
                                    "properties": {"accepted": {"type": "integer", "minimum": 1},
                                                   "rejected": {"type": "array", "items": {
                                                       "type": "object", "required": ["index", "errors"],
                                                       "properties": {
                                                           "index": {"type": "integer", "minimum": 0},
                                                           "errors": _PROBLEM_SCHEMA["properties"]["errors"]}}}}}}}},
                        "400": _problem("Nothing to accept: the envelope is invalid, or no event is; `errors` names "
                                        "each field"),
                        "403": _problem("The Origin is not an allowed portal"),
                        "413": _problem("Body over 32 KiB or more than 50 events"),
                        "415": _problem("Content type other than application/json or text/plain"),
                        "429": _problem("Too many batches from this visitor; see Retry-After"),
                    },
                },
                "options": {
                    "operationId": "collectPreflight",
                    "summary": "CORS preflight",
                    "security": [],
                    "responses": {"204": {"description": "Allowed origin"},
                                  "403": _problem("The Origin is not an allowed portal")},
                },
            },
            "/contacts/{contact_id}/export": {
                "get": {
                    "operationId": "exportContact",
                    "summary": "Everything stored about a contact (right of access)",
                    "parameters": [_CONTACT_PARAMETER],
                    "responses": {
                        "200": {"description": "The contact's interactions and visitors (empty when unknown)",
                                "content": {"application/json": {"schema": {"$ref": REF.format(model="Export")}}}},
                        "400": _problem("The contact id is not a GUID"),
                    },
                }
            },
            "/contacts/{contact_id}": {
                "delete": {
                    "operationId": "eraseContact",
                    "summary": "Erase a contact's activity (right to erasure); idempotent",
                    "parameters": [_CONTACT_PARAMETER],
                    "responses": {
                        "200": {"description": "What was removed",
                                "content": {"application/json": {"schema": {"$ref": REF.format(model="Erased")}}}},
                        "400": _problem("The contact id is not a GUID"),
                    },
                }
            },
            "/dataverse/incidents": {
                "post": {
                    "operationId": "dataverseIncident",
                    "summary": "Dataverse webhook (RemoteExecutionContext) for Create of incident",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                    "responses": {
                        "202": {"description": "The case is queued (or was known, or is skipped)",
                                "content": {"application/json": {"schema": {
                                    "type": "object", "required": ["case_id", "outcome"],
                                    "properties": {"case_id": {"type": "string"},
                                                   "outcome": {"enum": ["queued", "known", "skipped"]}}}}}},
                        "400": _problem("Not a webhook call for the creation of a case; `errors` says why"),
                    },
                }
            },
            "/cases/{case_id}/timeline": {
                "get": {
                    "operationId": "caseTimeline",
                    "summary": "The portal activity before a case",
                    "parameters": [{"name": "case_id", "in": "path", "required": True,
                                    "description": "The case's id (a GUID) or its ticket number (CAS-01234-X1Y2Z3)",
                                    "schema": {"type": "string"}}, _FORMAT_PARAMETER],
                    "responses": {
                        "200": {"description": "The timeline (status assembled), or why there is none (skipped)",
                                "content": {"application/json": {"schema": {"$ref": REF.format(model="Timeline")}},
                                            **_HTML}},
                        "202": {"description": "The case is settling, or (with Dataverse) its ticket number is "
                                               "one Dataverse just created; `Retry-After` (and `ready_in_seconds`) "
                                               "say when to ask again",
                                "content": {"application/json": {"schema": {
                                    "type": "object", "properties": {"status": {"const": "pending"},
                                                                     "ready_in_seconds": {"type": "integer"}}}},
                                            **_HTML}},
                        "400": _page_or_problem("The case is named by neither a GUID nor a ticket number, or "
                                                "`format` is neither json nor html"),
                        "409": _page_or_problem("Several cases carry this ticket number; `cases` lists their ids"),
                        "302": _SIGN_IN,
                        "401": _problem("REPORTS_AUTH=app-service and the request is not signed in"),
                        "503": _problem("REPORTS_AUTH=app-service but App Service authentication is not on, "
                                        "or the app settings are invalid"),
                        "404": _page_or_problem("No such case is known"),
                    },
                }
            },
            "/contacts/{contact_id}/timeline": {
                "get": {
                    "operationId": "contactTimeline",
                    "summary": "Everything attributed to a contact in a range, with their cases",
                    "parameters": [_CONTACT_PARAMETER, *_range_parameters("date-time"),
                                   {"name": "types", "in": "query", "required": False,
                                    "schema": {"type": "string"},
                                    "description": "comma-separated event types to keep, e.g. search,page_view"},
                                   _FORMAT_PARAMETER],
                    "responses": {
                        "200": {"description": "The contact's timeline (empty when nothing is known)",
                                "content": {"application/json": {"schema": {
                                    "$ref": REF.format(model="ContactTimeline")}}, **_HTML}},
                        "400": _page_or_problem("A bad contact id, range, type list or format; `errors` names it"),
                        "302": _SIGN_IN,
                        "401": _problem("REPORTS_AUTH=app-service and the request is not signed in"),
                        "503": _problem("REPORTS_AUTH=app-service but App Service authentication is not on, "
                                        "or the app settings are invalid"),
                    },
                }
            },
            "/insights": {
                "get": {
                    "operationId": "insights",
                    "summary": "KPIs across cases for a range of days (UTC); default the last 30",
                    "parameters": [*_range_parameters("date"), {
                        "name": "format", "in": "query", "required": False, "schema": {"enum": ["json", "html", "csv"]},
                        "description": "html for the dashboard (also chosen by `Accept: text/html`); csv for one "
                                       "table as a file (also `Accept: text/csv`)"}, {
                        "name": "table", "in": "query", "required": False,
                        "schema": {"enum": list(CSV_TABLE_NAMES), "default": "searches"},
                        "description": "with format=csv: which table"}, *({
                            "name": name, "in": "query", "required": False, "schema": {"type": "string"},
                            "description": f"what lies behind one {name} over the range (the `Behind` answer)"}
                        for name in ("search", "article")), *FILTER_PARAMETERS, *SORT_PARAMETERS],
                    "responses": {
                        "200": {"description": "The insights; with format=csv one table, UTF-8 with a BOM, formulas "
                                               "neutralised (a leading apostrophe)",
                                "content": {"application/json": {"schema": {"oneOf": [
                                    {"$ref": REF.format(model="Insights")}, {"$ref": REF.format(model="Behind")}]}},
                                            **_HTML, "text/csv": {"schema": {"type": "string"}}}},
                        "400": _page_or_problem("A bad range (at most 400 days) or format, a `signed_in` other than "
                                                "true or false, a `portal` that is no host name, a `sort_<table>` "
                                                "naming no table or no field of its table, with format=csv a `table` "
                                                "that is no CSV table, or both `search` and `article`; `errors` "
                                                "names it"),
                        "302": _SIGN_IN,
                        "401": _problem("REPORTS_AUTH=app-service and the request is not signed in"),
                        "503": _problem("REPORTS_AUTH=app-service but App Service authentication is not on, "
                                        "or the app settings are invalid"),
                    },
                }
            },
            **{
                f"/{name}": {
                    "get": {
                        "operationId": operation,
                        "summary": summary,
                        "security": [],
                        "responses": {"200": {"description": "The script",
                                              "content": {"application/javascript": {"schema": {"type": "string"}}}},
                                      "304": {"description": "Not modified (If-None-Match)"}},
                    }
                }
                for name, operation, summary in (
                    ("beacon.js", "beacon", "The portal beacon script (minified), long-cached with an ETag"),
                    ("beacon-search.js", "beaconSearch", "The beacon's search-page part, loaded by the beacon there"),
                )
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness and storage reachability: the overall status only",
                    "security": [],
                    "responses": {
                        "200": {"description": "Up (`degraded`: the report routes are closed by their settings)",
                                "content": {"application/json": {
                                    "schema": {"$ref": REF.format(model="HealthStatus")}}}},
                        "503": _problem("Not healthy; what is wrong is at /api/health/details"),
                    },
                }
            },
            "/health/details": {
                "get": {
                    "operationId": "healthDetails",
                    "summary": "What each health check found, the telemetry mode, each portal's last beacon "
                               "(the report routes' access)",
                    "responses": {
                        "200": {"description": "Up, with each check's result",
                                "content": {"application/json": {"schema": {"$ref": REF.format(model="Health")}}}},
                        "401": _problem("REPORTS_AUTH=app-service and the request is not signed in"),
                        "503": _problem("Storage is unreachable or the settings are invalid (`checks` says which), "
                                        "or REPORTS_AUTH=app-service but App Service authentication is not on"),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1 document",
                                          "content": {"application/json": {"schema": {"type": "object"}}}}},
                }
            },
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
            },
        },
        "security": [{"functionKey": []}],
    }
