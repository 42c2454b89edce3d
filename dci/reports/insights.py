"""The insights a request asks for: its filters, the report of a range (whole days, or a slice of
them), and what lies behind one search term beyond its cases (trend, refinements, clicked results).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dci.insights import PERIOD_FIGURES, article_pages, days, report
from dci.problems import FieldError, Problem

if TYPE_CHECKING:
    from dci.storage.insights import InsightStore

HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?(?::[0-9]{1,5})?")


@dataclass(frozen=True)
class Filters:
    """Which sessions the figures count: signed in or not (None: both), on which portal (None: all)."""

    signed_in: bool | None = None
    portal: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"signed_in": self.signed_in, "portal": self.portal}


def filters_of(params: Mapping[str, str]) -> Filters:
    """`signed_in=true|false` and `portal=<host>` (either empty: no filter); a 400 naming the field."""
    raw = (params.get("signed_in") or "").strip().lower()
    if raw not in ("", "true", "false"):
        raise Problem(400, "signed_in is true or false.", "invalid-parameter",
                      [FieldError("signed_in", "must be true, false or empty")])
    portal = (params.get("portal") or "").strip().lower()
    if portal and (not HOST.fullmatch(portal) or int(portal.rpartition(":")[2] if ":" in portal else 0) > 65535):
        raise Problem(400, "portal is a portal's host name.", "invalid-parameter",
                      [FieldError("portal", "must be a host name like portal.example.com")])
    return Filters(None if not raw else raw == "true", portal or None)


def filtered_report(insights: InsightStore, first: str, last: str, previous: tuple[str, str] | None,
                    filters: Filters, top: int = 20) -> dict[str, Any]:
    """The report of `first`..`last` for `filters`, compared with the `previous` period's same slice
    (when given), with the filters it counts and the portals the range saw (for the filter controls)."""
    rollups, missing = insights.read(first, last, filters.signed_in, filters.portal)
    before, before_missing = insights.read(*previous, filters.signed_in, filters.portal, list(PERIOD_FIGURES)) \
        if previous else (None, [])
    return {**report(first, last, rollups, top=top, missing=missing, previous=before, previous_missing=before_missing),
            "filters": filters.as_json(), "portals": insights.portals(first, last)}


def term_details(insights: InsightStore, first: str, last: str, term: str,
                 rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Behind one search term over the range: its searches per day (`trend`), what it was refined to
    (`refined_to`) and the results opened after it (`clicked`: the article or address, its title
    where known, how often and at which mean position; `rows`: the term's events, when read already)."""
    rows = insights.term_events(first, last, term) if rows is None else rows
    per_day = Counter(row["PartitionKey"][2:] for row in rows if row["kind"] == "search")
    days_read = insights.read(first, last, figures=["day", "refinement_pairs", "article_pages"])[0]
    refined = Counter()
    for day in days_read:  # (only the two figures it needs: not the whole rollups)
        refined.update({to: n for source, to, n in day.get("refinement_pairs") or () if source == term})
    pages = article_pages(days_read)
    opened: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        if row["kind"] == "click" and (row.get("article") or row.get("target")):
            key = ("article", row["article"]) if row.get("article") else ("url", row["target"])
            counts = opened.setdefault(key, [0, 0, 0])
            counts[0] += 1
            if isinstance(row.get("position"), int):
                counts[1] += row["position"]
                counts[2] += 1
    clicked = [{kind: value, "title": (pages.get(value) or {}).get("title") if kind == "article" else None,
                "count": n, "mean_position": round(position / positioned, 2) if positioned else None}
               for (kind, value), (n, position, positioned) in sorted(opened.items(),
                                                                       key=lambda kv: (-kv[1][0], kv[0]))]
    return {"trend": [{"day": day, "searches": per_day.get(day, 0)} for day in days(first, last)],
            "refined_to": [{"to": to, "count": n} for to, n in sorted(refined.items(), key=lambda kv: (-kv[1], kv[0]))],
            "clicked": clicked[:50]}
