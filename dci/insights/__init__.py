"""Insights across cases: facts per event and per case (`facts`), a rollup per day (`day`), and
the report over a range of days (`report`). All pure; the insight store (dci/storage/insights.py)
keeps them in Table storage.

Facts are written as events are linked (searches, result clicks and knowledge-article reads) and
as case timelines are assembled (what the customer searched and read before the case, which
portal sessions led to it, how long before it they first came). Days are UTC dates.
"""

from dci.insights.bounds import COLUMN_LIMIT, MAX_KEYS_PER_DAY, MIN_SAMPLE, encode, too_few, utf16_len, wilson
from dci.insights.day import (
    MAX_ARTICLES_PER_VISITOR,
    MAX_TERMS_PER_VISITOR,
    RollupTooLarge,
    day_rollup,
    followed_sessions,
    rollup,
    session_slices,
    site_search,
    slice_key,
    slices,
    stored_columns,
)
from dci.insights.facts import (
    article_link,
    case_fact,
    cases_behind,
    dated,
    event_fact,
    fact_days,
    session_hash,
    term,
    visitor_hash,
)
from dci.insights.report import (
    ARTICLE_LISTS,
    PERIOD_FIGURES,
    TREND_RATES,
    article_pages,
    days,
    report,
    total,
    trend,
    with_titles,
)
from dci.insights.search import gap_key

__all__ = ["ARTICLE_LISTS", "COLUMN_LIMIT", "MAX_ARTICLES_PER_VISITOR", "MAX_KEYS_PER_DAY", "MAX_TERMS_PER_VISITOR",
           "MIN_SAMPLE", "PERIOD_FIGURES", "TREND_RATES", "RollupTooLarge", "article_link", "article_pages",
           "case_fact", "cases_behind", "dated", "day_rollup", "days", "encode", "event_fact", "fact_days",
           "followed_sessions", "gap_key", "report", "rollup", "session_hash", "session_slices", "site_search",
           "slice_key", "slices", "stored_columns", "term", "too_few", "total", "trend", "utf16_len", "visitor_hash",
           "wilson", "with_titles"]
