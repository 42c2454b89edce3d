"""Site search per term and per article: pure. The site-wide figures of `day.site_search`,
restricted to one term (so that per-term counts add up to the site-wide ones), per day and bounded;
their sums over a range; and the lists a knowledge manager reads (docs/REPORTS.md, *Search terms*).

Per day, from each session's searches, result clicks and article reads in time order:

* a term: its searches; the sessions that searched it; those that reported a result count and those
  that found nothing; those followed by a result click before the session's next search, and the
  position of that first click; those whose session's next step is another search (a refinement,
  and the pair `from` → `to` when the term changed); those that were the session's last step (exits);
* an article: its views; the sessions that read it, and of those the ones a case followed; the
  views whose previous step in the session is a result click (`from_search`);
* a content gap: the searches that found nothing grouped case-, space- and punctuation-insensitively
  (`gap_key`), with their sessions and the forms they took.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import add
from typing import Any

from dci.insights.bounds import encode, fitting, rated, utf16_len

TERM_FIELDS = ("searches", "sessions", "with_result_count", "zero", "clicked", "position_sum", "positions",
               "refinements", "exits")
ARTICLE_FIELDS = ("views", "sessions", "from_search", "sessions_followed")
GAP_FORMS = 5  # forms a gap keeps per day, the most frequent
TOP = 50  # rows of each list in the report
_PUNCTUATION = re.compile(r"[^\w\s]|_")


def gap_key(term: str) -> str:
    """A zero-result term as content gaps group it: "VPN error!" and "vpn  error" are one."""
    return " ".join(_PUNCTUATION.sub(" ", term.casefold()).split()) or term


def day_search(facts_by_session: Mapping[str, Sequence[Mapping[str, Any]]], followed: set[str],
               named: Callable[[Mapping[str, Any]], bool]) -> dict[str, Any]:
    """A day's per-term, per-article, refinement and content-gap figures (bounded). `named(fact)`:
    whether the day's lists may name this search's term or read's article (the per-visitor bound)."""
    terms: dict[str, list[int]] = {}
    term_sessions: dict[str, set[str]] = {}
    articles: dict[str, list[int]] = {}
    article_sessions: dict[str, set[str]] = {}
    refinements: Counter[tuple[str, str]] = Counter()
    gaps: dict[str, list[Any]] = {}
    gap_sessions: dict[str, set[str]] = {}
    for session, facts in facts_by_session.items():
        steps = [fact for fact in facts if fact["kind"] in ("search", "click", "read")]
        for index, fact in enumerate(steps):
            if fact["kind"] == "read" and named(fact):
                row = articles.setdefault(fact["article"], [0] * len(ARTICLE_FIELDS))
                row[0] += 1
                row[2] += index > 0 and steps[index - 1]["kind"] == "click"
                article_sessions.setdefault(fact["article"], set()).add(session)
            if fact["kind"] != "search" or not named(fact):
                continue
            row = terms.setdefault(fact["term"], [0] * len(TERM_FIELDS))
            term_sessions.setdefault(fact["term"], set()).add(session)
            after = steps[index + 1:]
            until = next((n for n, later in enumerate(after) if later["kind"] == "search"), len(after))
            click = next((later for later in after[:until] if later["kind"] == "click"), None)
            row[0] += 1
            if fact.get("results") is not None:
                row[2] += 1
                row[3] += fact["results"] == 0
            if click is not None:
                row[4] += 1
                if isinstance(click.get("position"), int):
                    row[5] += click["position"]
                    row[6] += 1
            if after and after[0]["kind"] == "search":
                row[7] += 1
                if after[0]["term"] != fact["term"] and named(after[0]):
                    refinements[(fact["term"], after[0]["term"])] += 1
            row[8] += not after
            if fact.get("results") == 0:
                key = gap_key(fact["term"])
                gap = gaps.setdefault(key, [0, 0, Counter()])
                gap[0] += 1
                gap[2][fact["term"]] += 1
                gap_sessions.setdefault(key, set()).add(session)
    for name, row in terms.items():
        row[1] = len(term_sessions[name])
    for number, row in articles.items():
        row[1] = len(article_sessions[number])
        row[3] = len(article_sessions[number] & followed)
    for key, gap in gaps.items():
        gap[1] = len(gap_sessions[key])
        gap[2] = dict(sorted(gap[2].items(), key=lambda kv: (-kv[1], kv[0]))[:GAP_FORMS])
    return {
        "terms": fitted(terms, lambda kv: (-kv[1][0], kv[0])),
        "article_views": fitted(articles, lambda kv: (-kv[1][0], kv[0])),
        "refinement_pairs": [[a, b, n] for (a, b), n in _fitted_pairs(refinements)],
        "gaps": fitted(gaps, lambda kv: (-kv[1][0], kv[0])),
    }


def gap_cases(cases: Iterable[Iterable[str]]) -> Counter[str]:
    """Cases per content gap, from each case's zero-result terms (a case counts once per gap)."""
    counts: Counter[str] = Counter()
    for terms in cases:
        counts.update({gap_key(term) for term in terms})
    return counts


def fitted(table: Mapping[str, Any], order: Callable[[tuple[str, Any]], Any]) -> dict[str, Any]:
    """The first MAX_KEYS_PER_DAY entries of `table` in `order` that fit one stored column."""
    return dict(fitting(sorted(table.items(), key=order),
                        lambda kv: utf16_len(encode(kv[0])) + utf16_len(encode(kv[1])) + 2))  # "key":value,


def _fitted_pairs(pairs: Counter[tuple[str, str]]) -> list[tuple[tuple[str, str], int]]:
    return fitting(sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])),
                   lambda kv: utf16_len(encode([*kv[0], kv[1]])) + 1)  # ["from","to",n],


# --- over a range -------------------------------------------------------------------------------------

def add_search(total: dict[str, Any], day: Mapping[str, Any]) -> None:
    """Add a day's figures (`day_search`'s, as stored) to a range's `total` (starts as `{}`)."""
    for name in ("terms", "article_views"):
        into = total.setdefault(name, {})
        for key, row in (day.get(name) or {}).items():
            known = into.get(key)
            into[key] = list(row) if known is None else list(map(add, known, row))
    pairs = total.setdefault("refinement_pairs", Counter())
    for a, b, n in day.get("refinement_pairs") or ():
        pairs[(a, b)] += n
    gaps = total.setdefault("gaps", {})
    for key, (zero, sessions, forms) in (day.get("gaps") or {}).items():
        known = gaps.setdefault(key, [0, 0, Counter()])
        known[0] += zero
        known[1] += sessions
        known[2].update(forms)
    total.setdefault("gap_cases", Counter()).update(day.get("gap_cases") or {})


def search_lists(total: Mapping[str, Any], cases_after: Mapping[str, int], articles_after: Mapping[str, int],
                 pages: Mapping[str, Mapping[str, Any]], top: int = TOP) -> dict[str, list[dict[str, Any]]]:
    """The report's `search_terms`, `top_articles`, `refinements` and `content_gaps` from a range's
    `add_search` total, the cases after each term and article, and the articles' titles and links."""
    terms = []
    for name, row in sorted((total.get("terms") or {}).items(), key=lambda kv: (-kv[1][0], kv[0]))[:top]:
        figures = dict(zip(TERM_FIELDS, row, strict=True))
        searches = figures["searches"]
        terms.append({
            "term": name, "searches": searches, "sessions": figures["sessions"],
            "with_result_count": figures["with_result_count"],
            **rated(figures["zero"], figures["with_result_count"], "zero_result_rate", of=False),
            **rated(figures["clicked"], searches, "click_through_rate", of=False),
            "mean_click_position": round(figures["position_sum"] / figures["positions"], 2)
            if figures["positions"] else None,
            **rated(figures["refinements"], searches, "refinement_rate", of=False),
            **rated(figures["exits"], searches, "exit_rate", of=False),
            "cases_after": cases_after.get(name, 0)})
    articles = []
    for number, row in sorted((total.get("article_views") or {}).items(), key=lambda kv: (-kv[1][0], kv[0]))[:top]:
        figures = dict(zip(ARTICLE_FIELDS, row, strict=True))
        page = pages.get(number) or {}
        articles.append({
            "article": number, "title": page.get("title"), "url": page.get("url"), "views": figures["views"],
            "sessions": figures["sessions"], "from_search": figures["from_search"],
            "cases_after": articles_after.get(number, 0), "sessions_followed": figures["sessions_followed"],
            **rated(figures["sessions_followed"], figures["sessions"], "failed_to_deflect_rate", of=False)})
    pairs = sorted((total.get("refinement_pairs") or Counter()).items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    gap_counts = total.get("gap_cases") or Counter()
    gaps = sorted(((key, zero, sessions, forms) for key, (zero, sessions, forms) in (total.get("gaps") or {}).items()),
                  key=lambda g: (-gap_counts.get(g[0], 0), -g[1], g[0]))[:top]
    return {
        "search_terms": terms,
        "top_articles": articles,
        "refinements": [{"from": a, "to": b, "count": n} for (a, b), n in pairs],
        "content_gaps": [{"term": (ranked or [key])[0], "forms": ranked, "searches": zero, "sessions": sessions,
                          "cases_after": gap_counts.get(key, 0)}
                         for key, zero, sessions, forms in gaps
                         for ranked in [[form for form, _ in sorted(forms.items(), key=lambda kv: (-kv[1], kv[0]))]]],
    }

