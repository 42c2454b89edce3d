"""The OpenAPI schema of the search analytics in /api/insights (dci/openapi.py merges it)."""

from __future__ import annotations

_COUNT = {"type": "integer", "minimum": 0}
RATE = {"type": ["number", "null"], "minimum": 0, "maximum": 1}  # a rate (dci/openapi.py uses it too)


def _rated(*names: str) -> dict[str, object]:
    flag = {"type": "boolean"}
    return {field: schema for name in names for field, schema in ((name, RATE), (f"{name}_too_few", flag))}


def _rows(required: list[str], properties: dict[str, object]) -> dict[str, object]:
    return {"type": "array", "maxItems": 1000, "items": {"type": "object", "required": required,
                                                         "properties": properties}}


_TERM_RATES = ("zero_result_rate", "click_through_rate", "refinement_rate", "exit_rate")
SEARCH_PROPERTIES: dict[str, object] = {
    "search_terms": _rows(["term", "searches", "sessions", "with_result_count", *_TERM_RATES, "mean_click_position",
                           "cases_after"], {
        "term": {"type": "string"}, **{name: _COUNT for name in ("searches", "sessions", "with_result_count",
                                                                  "cases_after")},
        **_rated(*_TERM_RATES), "mean_click_position": {"type": ["number", "null"], "minimum": 1}}),
    "top_articles": _rows(["article", "title", "url", "views", "sessions", "from_search", "cases_after",
                           "sessions_followed", "failed_to_deflect_rate"], {
        "article": {"type": "string"}, "title": {"type": ["string", "null"]}, "url": {"type": ["string", "null"]},
        **{name: _COUNT for name in ("views", "sessions", "from_search", "cases_after", "sessions_followed")},
        **_rated("failed_to_deflect_rate")}),
    "refinements": _rows(["from", "to", "count"], {"from": {"type": "string"}, "to": {"type": "string"},
                                                   "count": _COUNT}),
    "content_gaps": _rows(["term", "forms", "searches", "sessions", "cases_after"], {
        "term": {"type": "string"}, "forms": {"type": "array", "items": {"type": "string"}},
        **{name: _COUNT for name in ("searches", "sessions", "cases_after")}}),
    "filters": {"type": "object", "required": ["signed_in", "portal"], "properties": {
        "signed_in": {"type": ["boolean", "null"]}, "portal": {"type": ["string", "null"]}}},
    "portals": {"type": "array", "items": {"type": "string"}},
    "suggestions": _rows(["id", "term", "article", "title", "cases", "answered", "share", "searches",
                          "zero_result_rate", "status", "changed_on", "before", "after", "sentence"], {
        "id": {"type": "string"}, "term": {"type": "string"}, "article": {"type": "string"},
        "title": {"type": ["string", "null"]}, "cases": _COUNT, "answered": _COUNT, "share": RATE,
        "searches": _COUNT, "zero_result_rate": RATE, "click_through_to_article": RATE,
        "status": {"enum": ["open", "changed", "worked", "no change", "too few"]},
        "changed_on": {"type": ["string", "null"]}, "sentence": {"type": "string"},
        "article_url": {"type": ["string", "null"]},
        "before": {"type": ["object", "null"]}, "after": {"type": ["object", "null"]}}),
    "suggestions_note": {"type": "string", "description": "why there are none: Dataverse is not configured"},
}
SEARCH_REQUIRED = ["search_terms", "top_articles", "refinements", "content_gaps"]  # (the route adds filters, portals)

ANSWERED_BY = _rows(["article", "title", "cases", "share"], {
    "article": {"type": "string"}, "title": {"type": ["string", "null"]}, "cases": _COUNT, "share": RATE})
TERM_PROPERTIES: dict[str, object] = {  # the drill-down of one search term
    "answered_by": ANSWERED_BY,
    "trend": _rows(["day", "searches"], {"day": {"type": "string", "format": "date"}, "searches": _COUNT}),
    "refined_to": _rows(["to", "count"], {"to": {"type": "string"}, "count": _COUNT}),
    "clicked": _rows(["count", "mean_position"], {
        "article": {"type": "string"}, "url": {"type": "string"}, "title": {"type": ["string", "null"]},
        "count": _COUNT, "mean_position": {"type": ["number", "null"], "minimum": 1}}),
}

FILTER_PARAMETERS: list[dict[str, object]] = [
    {"name": "signed_in", "in": "query", "required": False, "schema": {"enum": ["", "true", "false"]},
     "description": "only sessions with (true) or without (false) a verified contact"},
    {"name": "portal", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 259},
     "description": "only sessions on this portal host"},
]

CSV_TABLE_NAMES = ("searches", "zero-results", "articles", "search-terms", "top-articles", "refinements",
                   "content-gaps", "suggestions")  # ?format=csv&table= (views.CSV_TABLES; a test holds them equal)
SORT_PARAMETERS: list[dict[str, object]] = [
    {"name": f"sort_{table}", "in": "query", "required": False, "schema": {"type": "string", "maxLength": 64},
     "description": f"with format=html: order the {table} table by this field (one of its JSON field names)"}
    for table in ("terms", "articles", "refinements", "gaps")]
