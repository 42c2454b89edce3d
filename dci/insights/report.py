"""The insights over a range of days: pure. The sums of its days' rollups (never a scan of the
interactions), the ranked lists, the rates with their intervals, the trend and the comparison with
the period before.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from dci.insights.bounds import rate, rated, too_few, wilson
from dci.insights.day import COUNTS, SITE_SEARCH
from dci.insights.facts import article_link
from dci.insights.search import TOP, add_search, search_lists


def days(first: str, last: str) -> list[str]:
    """Every date from `first` to `last`, inclusive."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def site_search_report(counts: Mapping[str, int]) -> dict[str, Any]:
    """The site-search figures of a range: its counts, and the rates with their 95 % intervals."""
    searches = counts["searches"]
    rates = {"zero_result_rate": (counts["zero"], counts["with_result_count"]),
             "click_through_rate": (counts["clicked"], searches),
             "refinement_rate": (counts["refinements"], searches),
             "exit_rate": (counts["exits"], searches)}
    return {**counts,
            "searches_per_session": round(searches / counts["sessions"], 2) if counts["sessions"] else None,
            **{name: rated(part, whole, interval=True) for name, (part, whole) in rates.items()}}


def total(rollups: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The sum of day rollups (in day order): counts added key by key and their `other`s, lead times
    pooled. An article's title is the earliest day's from a signed-in view, else the earliest day's;
    its link the earliest day's that is still the article's own address."""
    sums: dict[str, Any] = {name: Counter() for name in COUNTS}
    other: Counter[str] = Counter()
    result: dict[str, Any] = {"cases": 0, "sessions": 0, "sessions_followed": 0, "lead_ms": [], "article_pages": {},
                              "site_search": dict.fromkeys(SITE_SEARCH, 0), "search": {}}
    for day in rollups:
        for name, value in day.get("site_search", {}).items():  # (rollups before 0.3 have none)
            result["site_search"][name] += value
        for name in COUNTS:
            sums[name].update(day.get(name, {}))  # (older rollups have no article_reads_followed)
        other.update(day.get("other", {}))
        for article, page in day.get("article_pages", {}).items():  # (rollups before 0.3 have none)
            _merge_page(result["article_pages"], article, page)
        for name in ("cases", "sessions", "sessions_followed"):
            result[name] += day[name]
        result["lead_ms"].extend(day["lead_ms"])
        add_search(result["search"], day)  # (rollups before issue 25 have none of it)
    result["lead_ms"].sort()
    return result | {name: dict(sorted(counter.items())) for name, counter in sums.items()} | {
        "other": {name: other.get(name, 0) for name in (*COUNTS, "lead_ms")}}


def article_pages(rollups: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The articles' titles and links over days (in day order), by the rule of `total`."""
    pages: dict[str, dict[str, Any]] = {}
    for day in rollups:
        for article, page in day.get("article_pages", {}).items():
            _merge_page(pages, article, page)
    return pages


def _merge_page(pages: dict[str, dict[str, Any]], article: str, page: Mapping[str, Any]) -> None:
    """Add a day's title and link of `article` to `pages`: a title from a signed-in view replaces an
    anonymous one, never the other way round; among equals the one that arrived first (`since`; a
    day stored before arrival times were kept counts as arriving after every day that has one); a
    link only fills a gap."""
    known = pages.setdefault(article, {"title": None, "url": None, "signed_in": False, "since": None})
    link = article_link(page["url"], article) if page.get("url") else None  # (older rollups kept any address)
    if page.get("title") and (known["title"] is None or _before(page, known)):
        known.update(title=page["title"], signed_in=bool(page.get("signed_in")), since=page.get("since"))
    if known["url"] is None and link:
        known["url"] = link


def _before(page: Mapping[str, Any], known: Mapping[str, Any]) -> bool:
    signed, was_signed = bool(page.get("signed_in")), bool(known["signed_in"])
    if signed != was_signed:
        return signed
    return page.get("since") is not None and (known["since"] is None or page["since"] < known["since"])


TREND = ("searches", "zero_result_rate", "click_through_rate", "cases", "deflection_rate")
TREND_RATES = ("zero_result_rate", "click_through_rate", "deflection_rate")


def day_figures(rollup_of_day: Mapping[str, Any] | None) -> dict[str, Any]:
    """The trend's figures of one day (a day without a rollup recorded nothing): each rate with its
    denominator (`{rate}_of`) and the small-sample flag (`{rate}_too_few`)."""
    day = rollup_of_day or {}
    ss = day.get("site_search") or dict.fromkeys(SITE_SEARCH, 0)
    sessions, followed = day.get("sessions", 0), day.get("sessions_followed", 0)
    return {"searches": ss["searches"], **rated(ss["zero"], ss["with_result_count"], "zero_result_rate"),
            **rated(ss["clicked"], ss["searches"], "click_through_rate"), "cases": day.get("cases", 0),
            **rated(sessions - followed, sessions, "deflection_rate")}


def trend(first: str, last: str, rollups: Sequence[Mapping[str, Any]],
          previous: Sequence[Mapping[str, Any]] | None, previous_missing: Sequence[str],
          summed: Mapping[str, Any]) -> dict[str, Any]:
    """Each day's figures over the range and, given the rollups of the period of equal length just
    before it (and its days that could not be built, `previous_missing`), that period's figures and
    the change: a rate's change is null, and flagged `{rate}_too_few`, when either period's rate is
    too few. `summed`: the range's `total(rollups)` (its counts are not added up again)."""
    by_day = {day["day"]: day for day in rollups}
    series = [{"day": day, **day_figures(by_day.get(day))} for day in days(first, last)]
    result: dict[str, Any] = {"days": series, "range": day_figures(summed)}
    if previous is not None:
        start = date.fromisoformat(first)
        length = (date.fromisoformat(last) - start).days + 1
        now, before = result["range"], _period_figures(previous)
        result["previous"] = {"from": (start - timedelta(days=length)).isoformat(),
                              "to": (start - timedelta(days=1)).isoformat(), **before,
                              "missing_days": sorted(previous_missing)}
        change: dict[str, Any] = {}
        for name in TREND:
            few = name in TREND_RATES and (now[f"{name}_too_few"] or before[f"{name}_too_few"])
            change[name] = None if few or now[name] is None or before[name] is None else round(
                now[name] - before[name], 4)
            if name in TREND_RATES:
                change[f"{name}_too_few"] = few
        result["change"] = change
    return result


PERIOD_FIGURES = ("day", "site_search", "cases", "sessions", "sessions_followed")  # what a period's trend reads


def _period_figures(rollups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The trend's figures of a period: only the counts they need are added up (not the lists)."""
    sums: dict[str, Any] = {"site_search": dict.fromkeys(SITE_SEARCH, 0), "cases": 0, "sessions": 0,
                            "sessions_followed": 0}
    for day in rollups:
        for name, value in day.get("site_search", {}).items():  # (rollups before 0.3 have none)
            sums["site_search"][name] += value
        for name in ("cases", "sessions", "sessions_followed"):
            sums[name] += day[name]
    return day_figures(sums)


def report(first: str, last: str, rollups: Sequence[Mapping[str, Any]], top: int = 20,
           previous: Sequence[Mapping[str, Any]] | None = None, missing: Sequence[str] = (),
           previous_missing: Sequence[str] = ()) -> dict[str, Any]:
    """What a support manager reads: the KPIs over the range, ranked lists, rates, the daily trend
    (and, given the previous period's rollups, the comparison with it). `missing`, `previous_missing`:
    the days of the range, and of the previous period, whose rollups could not be built, left out of
    every figure and named (`missing_days`, `trend.previous.missing_days`)."""
    sums = total(rollups)
    searches, before = sums["searches"], sums["searches_before_cases"]
    reads, read_before, read_followed = sums["article_reads"], sums["articles_before_cases"], sums[
        "article_reads_followed"]
    zero, zero_followed = sums["zero_result_searches"], sums["zero_result_searches_followed"]
    sessions, followed = sums["sessions"], sums["sessions_followed"]
    leads = sums["lead_ms"]
    return {
        "from": first,
        "to": last,
        "days": len(rollups),
        "missing_days": sorted(missing),
        "cases": sums["cases"],
        "top_searches_before_cases": [
            {"query": q, "cases": n, "searches": searches.get(q, 0)} for q, n in _ranked(before, top)],
        "zero_result_searches": [
            {"query": q, "searches": n, "followed_by_case": zero_followed.get(q, 0),
             "cases_after": sums["zero_result_searches_before_cases"].get(q, 0)} for q, n in _ranked(zero, top)],
        # The rate's part is a subset of its whole: reads of the article in sessions a case followed.
        "articles": [
            {"article": a, **_page(sums["article_pages"].get(a)), "reads": reads.get(a, 0), "cases_after": n,
             "reads_followed_by_case": read_followed.get(a, 0),
             "failed_to_deflect_rate": rate(read_followed.get(a, 0), reads.get(a, 0)),
             "failed_to_deflect_interval": wilson(read_followed.get(a, 0), reads.get(a, 0)),
             "failed_to_deflect_too_few": too_few(reads.get(a, 0))}
            for a, n in _ranked(read_before, top)],
        "deflection": {"self_service_sessions": sessions, "followed_by_case": followed,
                       "deflected": sessions - followed,
                       **rated(sessions - followed, sessions, of=False, interval=True)},
        "site_search": site_search_report(sums["site_search"]),
        "trend": trend(first, last, rollups, previous, previous_missing, sums),
        "first_touch_to_case": {"cases": len(leads) + sums["other"]["lead_ms"],
                                "median_ms": int(statistics.median(leads)) if leads else None},
        "other": sums["other"],
        **search_lists(sums["search"], before, read_before, sums["article_pages"], max(top, TOP)),
    }


ARTICLE_LISTS = ("articles", "top_articles")  # the report's lists of articles, with a title each


def with_titles(report_of_range: Mapping[str, Any], titles: Mapping[str, str]) -> dict[str, Any]:
    """The report with each listed article's title from `titles` (Dataverse's knowledge articles,
    by article number) where it has one: those win over any page view's."""
    return {**report_of_range, **{name: [{**row, "title": titles.get(row["article"]) or row["title"]}
                                          for row in report_of_range[name]]
                                   for name in ARTICLE_LISTS if name in report_of_range}}


def _ranked(counts: Mapping[str, int], top: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def _page(page: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"title": (page or {}).get("title"), "url": (page or {}).get("url")}

