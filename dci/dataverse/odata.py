"""OData text for the Web API's query strings: a string literal, a `$filter` percent-encoded."""

from __future__ import annotations

from urllib.parse import quote

SAFE_IN_QUERY = "'(),"  # left as they are in an OData $filter; everything else percent-encoded


def odata_text(value: str) -> str:
    """An OData string literal: in single quotes, a quote doubled."""
    return "'{}'".format(value.replace("'", "''"))


def odata_filter(condition: str) -> str:
    """A `$filter` condition percent-encoded for the query string (quotes, parentheses, commas kept)."""
    return quote(condition, safe=SAFE_IN_QUERY)
