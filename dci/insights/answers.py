"""Close the loop (issue 29): pure. What answered the cases that followed a search — the knowledge
articles agents attached to them (`knowledgearticleincident`) —, the suggestions that follow
("add the term to that article's keywords"), and, once the article changed, whether it worked.

* `answered_by`: for one term, each article attached to the term's cases: the distinct cases of the
  term with it attached, and its share of the term's cases that have any article attached.
* `suggestions`: a (term, article) pair whose share is at least SHARE over at least MIN_ANSWERED
  cases, for a term customers mostly could not find anything for (zero-result rate at least
  ZERO_RATE) or rarely went from to that article (click-through to it below CLICK_RATE).
* `compare`: the term over two equal periods around the moment the article changed (or the
  suggestion was marked done): zero-result rate, click-through to the article, cases per 100
  searches, each with the 95 % interval of the difference (Newcombe's hybrid score interval, from
  the Wilson intervals the other figures use); the status `changed` (fewer than MIN_AFTER_DAYS days
  after), `worked`, `no change` or `too few` (the small-sample rule of every rate).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from dci.insights.bounds import rate, too_few, wilson

SHARE = 0.5  # an article answered at least half the term's answered cases
MIN_ANSWERED = 3  # over at least this many cases
ZERO_RATE = 0.5  # a term that found nothing at least half the time
CLICK_RATE = 0.2  # or from which customers opened the article less than this often
MAX_ANSWERED_BY = 5  # articles listed per term
MIN_AFTER_DAYS = 7  # an after-period shorter than this is still `changed`, not judged


def suggestion_id(term: str, article: str) -> str:
    """A suggestion's id: stable for a term and an article, whatever the range it was found in."""
    return hashlib.sha256(f"dci/suggestion\x00{term}\x00{article.upper()}".encode()).hexdigest()[:12]


def answered_by(cases: Iterable[str], attached: Mapping[str, Iterable[str]],
                titles: Mapping[str, str | None] | None = None) -> list[dict[str, Any]]:
    """The articles attached to a term's `cases` (case id -> article numbers, `attached`): each with
    the distinct cases it answered and its share of the term's cases that have any article
    attached; the MAX_ANSWERED_BY most attached, most first."""
    counts: dict[str, int] = {}
    answered = 0
    for case in set(cases):
        articles = {number.upper() for number in attached.get(case, ())}
        answered += bool(articles)
        for number in articles:
            counts[number] = counts.get(number, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_ANSWERED_BY]
    return [{"article": number, "title": (titles or {}).get(number), "cases": n, "share": rate(n, answered)}
            for number, n in ranked]


class TermFigures(NamedTuple):
    """A term's figures over a period: its searches, those that reported a result count and those
    of them that found nothing, the result clicks to one article after it, the cases after it."""

    searches: int
    with_result_count: int
    zero: int
    clicks_to_article: int
    cases: int


def suggestions(term: str, cases: int, answered: Iterable[Mapping[str, Any]], figures: TermFigures,
                clicks_to: Mapping[str, int], kept: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The suggestions for one term: each article of `answered` (`answered_by`'s) that answered at
    least SHARE of the term's answered cases over at least MIN_ANSWERED of them, when the term found
    nothing at least ZERO_RATE of the time or led to that article (`clicks_to`: result clicks from
    the term to each article) less than CLICK_RATE of its searches. `kept`: articles whose
    suggestion is followed whatever the rule says now (its article changed: it may have worked),
    with the reason it was made for."""
    zero_rate = rate(figures.zero, figures.with_result_count)
    found = []
    for row in answered:
        # (searches come from the bounded day rollups, clicks from the facts: never a rate above 1)
        click_rate = rate(min(clicks_to.get(row["article"], 0), figures.searches), figures.searches)
        nothing = zero_rate is not None and zero_rate >= ZERO_RATE
        missed = click_rate is not None and click_rate < CLICK_RATE
        because = (kept or {}).get(row["article"])
        if because is None:
            if row["cases"] < MIN_ANSWERED or (row["share"] or 0) < SHARE or not (nothing or missed):
                continue
            because = "zero results" if nothing else "not opened"
        found.append({"id": suggestion_id(term, row["article"]), "term": term, "article": row["article"],
                      "title": row.get("title"), "cases": cases, "answered": row["cases"], "share": row["share"],
                      "searches": figures.searches, "zero_result_rate": zero_rate,
                      "click_through_to_article": click_rate, "because": because,
                      "sentence": sentence(term, row, cases, "found nothing" if nothing else
                                           f"rarely opened {row['article']}" if missed else None)})
    return found


def sentence(term: str, row: Mapping[str, Any], cases: int, what: str | None) -> str:
    """The one sentence a knowledge manager reads (`what` the searches did: "found nothing", …)."""
    title = f' "{row["title"]}"' if row.get("title") else ""
    did = f"{what} and " if what else ""
    return (f'Customers who searched "{term}" {did}opened {cases} case{"s" if cases != 1 else ""}; '
            f'agents answered {row["cases"]} of them with {row["article"]}{title}. '
            f'Add "{term}" to that article\'s keywords.')


def compare(before: TermFigures, after: TermFigures, because: str, after_days: int) -> dict[str, Any]:
    """The term before and after the article changed, over equal periods: each figure of both, the
    95 % interval of each difference (after − before), and the status. A suggestion made because
    the term found nothing is judged by its zero-result rate (lower is better), one made because
    customers did not open the article by the click-through to it (higher is better)."""
    figures = {
        "zero_result_rate": ((before.zero, before.with_result_count), (after.zero, after.with_result_count)),
        "click_through_to_article": ((before.clicks_to_article, before.searches),
                                     (after.clicks_to_article, after.searches)),
        "cases_per_100_searches": ((before.cases, before.searches), (after.cases, after.searches)),
    }
    out: dict[str, Any] = {"before": {"searches": before.searches}, "after": {"searches": after.searches},
                           "difference": {}}
    for name, ((b_part, b_whole), (a_part, a_whole)) in figures.items():
        scale = 100 if name == "cases_per_100_searches" else 1
        b_rate, a_rate = rate(b_part, b_whole), rate(a_part, a_whole)
        out["before"][name] = None if b_rate is None else round(b_rate * scale, 4)
        out["after"][name] = None if a_rate is None else round(a_rate * scale, 4)
        low_high = difference(b_part, b_whole, a_part, a_whole)
        out["difference"][name] = None if a_rate is None or b_rate is None else {
            "value": round((a_part / a_whole - b_part / b_whole) * scale, 4),
            "interval": None if low_high is None else [round(low_high[0] * scale, 4), round(low_high[1] * scale, 4)]}
    judged, better = ("zero_result_rate", -1) if because == "zero results" else ("click_through_to_article", 1)
    whole = (before.with_result_count, after.with_result_count) if judged == "zero_result_rate" else (
        before.searches, after.searches)
    if after_days < MIN_AFTER_DAYS:
        status = "changed"
    elif too_few(whole[0]) or too_few(whole[1]):
        status = "too few"
    else:
        low, high = (out["difference"][judged] or {}).get("interval") or (-1.0, 1.0)
        status = "worked" if (high < 0 if better < 0 else low > 0) else "no change"
    return {**out, "judged_by": judged, "status": status}


def difference(b_part: int, b_whole: int, a_part: int, a_whole: int) -> tuple[float, float] | None:
    """The 95 % interval of `a_part/a_whole − b_part/b_whole` by Newcombe's method 10 (hybrid score,
    from each rate's Wilson interval); None without both samples, or when a part exceeds its whole
    (cases per 100 searches can: not a proportion then)."""
    if b_part > b_whole or a_part > a_whole:
        return None
    before, after = wilson(b_part, b_whole), wilson(a_part, a_whole)
    if before is None or after is None:
        return None
    p1, p2 = a_part / a_whole, b_part / b_whole
    (l1, u1), (l2, u2) = after, before
    low = (p1 - p2) - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = (p1 - p2) + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return max(-1.0, low), min(1.0, high)
