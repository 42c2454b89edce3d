"""A day's insights: pure. The rollup of one UTC day, computed from that day's facts alone (and
the cases of the following days that say which of its sessions a case followed), so it can be
recomputed whenever one of them changes.

Anonymous browsers write facts, so a day's rollup is bounded (docs/REPORTS.md): every text is
capped, every list keeps its top entries and sums the rest as `other`, one visitor adds at most
MAX_TERMS_PER_VISITOR terms and MAX_ARTICLES_PER_VISITOR articles to a day's lists, and each
stored column fits a Table string property (`stored_columns` measures it). An article's title
and link never come from the latest anonymous view: see `rollup`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from dci.insights.bounds import COLUMN_LIMIT, ENTITY_LIMIT, encode, fitting, utf16_len
from dci.insights.facts import placed
from dci.insights.search import day_search, fitted, gap_cases

MAX_TERMS_PER_VISITOR = 20  # distinct search terms one visitor adds to a day's lists (more count as "other")
MAX_ARTICLES_PER_VISITOR = 20  # distinct articles one visitor adds to a day's lists (more count as "other")
MAX_LEADS_PER_DAY = 2000  # first-touch lead times a day keeps (evenly thinned above: the median stays close)
MAX_PAGES_PER_DAY = 100  # article titles and addresses a day keeps (one column)


def session_slices(events: Iterable[Mapping[str, Any]]) -> dict[str, tuple[bool, str]]:
    """Each session's slice of the day, (signed in, portal): signed in when any of its facts that day
    is; its portal the first fact's (facts written before portals were kept: "")."""
    signed: dict[str, bool] = {}
    portal: dict[str, str] = {}
    for fact in events:
        signed[fact["session"]] = signed.get(fact["session"], False) or bool(fact.get("signed_in"))
        portal.setdefault(fact["session"], str(fact.get("portal") or ""))
    return {session: (signed[session], portal[session]) for session in signed}


def followed_sessions(case_facts: Iterable[Mapping[str, Any]], day: str) -> set[str]:
    """The sessions of `day` that a case followed (within the follow window), from the case facts of
    that day and of the window's days after it."""
    return {key for fact in case_facts for key, active in fact["sessions"].items() if day in active}


def slices(events: Iterable[Mapping[str, Any]], case_facts: Iterable[Mapping[str, Any]], day: str,
           of_session: Mapping[str, tuple[bool, str]] | None = None) -> list[tuple[bool | None, str | None]]:
    """The filters a day's rollup is kept for besides the whole day (None: either): signed in or not,
    on any portal; and on each portal the day saw, either, signed in, or not. `of_session`: the
    events' `session_slices`, when the caller has them."""
    portals = {portal for _, portal in (session_slices(events) if of_session is None else of_session).values()}
    portals |= {str(fact.get("portal") or "") for fact in case_facts if fact["day"] == day}
    return [(True, None), (False, None), *((signed, portal) for portal in sorted(portals)
                                           for signed in (None, True, False))]


def slice_key(signed_in: bool | None, portal: str | None) -> str:
    """The row key of a slice's rollup: `rollup~signed~portal.example.com`, `*` for either."""
    signed = "*" if signed_in is None else "signed" if signed_in else "anonymous"
    return f"rollup~{signed}~{portal if portal is not None else '*'}"


def day_rollup(day: str, events: Iterable[Mapping[str, Any]], case_facts: Iterable[Mapping[str, Any]],
               signed_in: bool | None = None, portal: str | None = None, *,
               of_session: Mapping[str, tuple[bool, str]] | None = None,
               followed: set[str] | None = None) -> dict[str, Any]:
    """One day's insights from its event facts and the case facts of that day and of the follow
    window's days after it (which say which of its sessions a case followed); with `signed_in`
    and/or `portal`, of the sessions of that slice only (`session_slices`): their facts, the case
    terms and articles searched or read in them, and the cases whose journey ended on that portal
    (a case is a signed-in customer's). A term a case fact places in no session of the day counts
    in the case's slice. Signed-in plus anonymous slices add up to the whole day. `of_session` (the
    events' `session_slices`) and `followed` (`followed_sessions`): the same for every slice of the
    day, worked out once by a caller that rolls up several (computed here when not given)."""
    facts = list(case_facts)
    events = list(events)
    followed = followed_sessions(facts, day) if followed is None else followed
    of_session = session_slices(events) if of_session is None else of_session
    if signed_in is None and portal is None:
        return {**rollup(day, events, facts, followed),
                "portals": sorted({host for _, host in of_session.values()} - {""})}

    def wanted(where: tuple[bool, str]) -> bool:
        return (signed_in is None or where[0] == signed_in) and (portal is None or where[1] == portal)

    def case_slice(case: Mapping[str, Any]) -> tuple[bool, str]:
        return True, str(case.get("portal") or "")

    return rollup(day, [e for e in events if wanted(of_session[e["session"]])], facts, followed,
                  lambda session, case: wanted(of_session.get(session or "", case_slice(case))),
                  lambda case: wanted(case_slice(case)))


def rollup(day: str, events: Iterable[Mapping[str, Any]], cases: Iterable[Mapping[str, Any]],
           followed: set[str], counts_in: Callable[[str | None, Mapping[str, Any]], bool] = lambda _, __: True,
           own: Callable[[Mapping[str, Any]], bool] = lambda _: True) -> dict[str, Any]:
    """One day's insights: from that day's event facts, case facts (those created that day are
    the day's cases; a term, zero-result term or article of any of them counts on the day of its
    search or read: `facts.dated`), and the set of session hashes that a case followed (within
    the follow window) — for that day's sessions. `counts_in(session, case)`: whether a case's
    term or article searched or read in that session counts here; `own(case)`: whether a case
    of the day counts here (both: always, but for a slice of the day, see `day_rollup`).

    Bounded whatever the facts (docs/REPORTS.md): facts are taken in time order; a visitor's terms
    beyond MAX_TERMS_PER_VISITOR and articles beyond MAX_ARTICLES_PER_VISITOR count in `other`;
    each list keeps its top MAX_KEYS_PER_DAY that fit a column and sums the rest in `other`.
    An article's title is the first a signed-in view showed, else the first any view showed; its
    link the first address that is the article's own (`article_link`)."""
    ordered = sorted(events, key=lambda fact: fact.get("ts") or 0)  # (stable: facts without `ts` keep row order)
    counts: dict[str, Counter[str]] = {name: Counter() for name in COUNTS}
    beyond: Counter[str] = Counter()  # what the per-visitor bound sent to "other", by list
    titles: dict[str, tuple[bool, float, str]] = {}  # article -> (from a signed-in view, when it arrived, title)
    links: dict[str, str] = {}
    added: dict[tuple[str, str], set[str]] = {}  # (visitor, "term" | "article") -> what they added today
    named_facts: set[int] = set()  # (ids of) the facts whose term or article the day's lists name
    self_service: set[str] = set()
    facts_by_session: dict[str, list[Mapping[str, Any]]] = {}
    for fact in ordered:
        facts_by_session.setdefault(fact["session"], []).append(fact)
        if fact["kind"] == "click":
            continue  # (a click alone does not make a self-service session: it follows a search)
        self_service.add(fact["session"])
        is_followed = fact["session"] in followed
        if fact["kind"] == "search":
            named = _admitted(added, fact, "term", fact["term"], MAX_TERMS_PER_VISITOR)
            zero = fact.get("results") == 0
            for name, counted in (("searches", True), ("zero_result_searches", zero),
                                  ("zero_result_searches_followed", zero and is_followed)):
                if counted:
                    (counts[name] if named else beyond)[fact["term"] if named else name] += 1
            if named:
                named_facts.add(id(fact))
        elif fact["kind"] == "read":
            article = fact["article"]
            named = _admitted(added, fact, "article", article, MAX_ARTICLES_PER_VISITOR)
            for name, counted in (("article_reads", True), ("article_reads_followed", is_followed)):
                if counted:
                    (counts[name] if named else beyond)[article if named else name] += 1
            if named:
                named_facts.add(id(fact))
            if named and fact.get("title"):
                candidate = (bool(fact.get("signed_in")), _arrived(fact), fact["title"])
                if article not in titles or _better_title(candidate, titles[article]):
                    titles[article] = candidate
            if named and fact.get("url") and article not in links:
                links[article] = fact["url"]
    leads: list[int] = []
    count = 0
    zero_terms_of_cases: list[list[str]] = []
    for case in cases:
        for name, key in (("searches_before_cases", "searches"), ("zero_result_searches_before_cases", "zero"),
                          ("articles_before_cases", "articles")):
            here = [k for k, (on, session) in placed(case, key).items() if on == day and counts_in(session, case)]
            counts[name].update(here)
            if key == "zero":
                zero_terms_of_cases.append(here)
        if case["day"] != day or not own(case):
            continue
        count += 1
        if case.get("lead_ms") is not None:
            leads.append(case["lead_ms"])
    lists, other = _bounded_lists(counts)
    other = {name: other[name] + beyond[name] for name in COUNTS}
    kept_leads = _thinned(sorted(leads), MAX_LEADS_PER_DAY)
    return {
        "day": day,
        "site_search": site_search(facts_by_session),
        "cases": count,
        "lead_ms": kept_leads,
        **lists,
        "article_pages": _pages(lists["article_reads"], titles, links),
        "sessions": len(self_service),
        "sessions_followed": len(self_service & followed),
        "other": {**other, "lead_ms": len(leads) - len(kept_leads)},
        **day_search(facts_by_session, followed, lambda fact: id(fact) in named_facts),
        "gap_cases": fitted(gap_cases(zero_terms_of_cases), lambda kv: (-kv[1], kv[0])),
    }


def _admitted(own: dict[tuple[str, str], set[str]], fact: Mapping[str, Any], what: str, key: str,
              limit: int) -> bool:
    """Whether this fact's term or article may be named in the day's lists: its visitor (the session,
    for facts written before visitors were hashed) has added fewer than `limit` others."""
    added = own.setdefault((fact.get("visitor") or fact["session"], what), set())
    if key in added or len(added) < limit:
        added.add(key)
        return True
    return False


# The day's lists; a "followed" list (a subset of the searches or reads of its parent) names only the
# terms or articles its parent names, so that per term or article it never exceeds the parent.
COUNTS = ("searches", "zero_result_searches", "zero_result_searches_followed", "article_reads",
          "article_reads_followed", "searches_before_cases", "zero_result_searches_before_cases",
          "articles_before_cases")


PARENTS = {"zero_result_searches_followed": "zero_result_searches", "article_reads_followed": "article_reads"}


def _bounded_lists(counts: Mapping[str, Counter[str]]) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
    lists: dict[str, dict[str, int]] = {}
    other: dict[str, int] = {}
    for name in COUNTS:
        counter = counts[name]
        if name in PARENTS:
            counter = Counter({key: n for key, n in counter.items() if key in lists[PARENTS[name]]})
        lists[name] = _top(counter)
        other[name] = sum(counts[name].values()) - sum(lists[name].values())
    return lists, other


def _top(counts: Counter[str]) -> dict[str, int]:
    """The most frequent keys (ties by key) up to MAX_KEYS_PER_DAY, as many as fit COLUMN_BUDGET."""
    kept = fitting(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
                   lambda kv: utf16_len(encode(kv[0])) + len(str(kv[1])) + 2)  # "key":n,
    return dict(sorted(kept))


def _arrived(fact: Mapping[str, Any]) -> float:
    """When the server received a fact's event (epoch ms): its `received`, or for a fact written
    before arrival times were kept, its event time."""
    return float(fact.get("received") or fact.get("ts") or 0)


def _better_title(candidate: tuple[bool, float, str], known: tuple[bool, float, str]) -> bool:
    """A signed-in view's title beats an anonymous one; among equals, the one that arrived first.
    Never the event's claimed time: a client can set it days back."""
    return candidate[0] > known[0] or (candidate[0] == known[0] and candidate[1] < known[1])


def _pages(reads: Mapping[str, int], titles: Mapping[str, tuple[bool, float, str]],
           links: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Titles and links of the day's most read articles, at most MAX_PAGES_PER_DAY, as many as fit a column."""
    pages = ((article, {"title": titles[article][2] if article in titles else None, "url": links.get(article),
                        "signed_in": article in titles and titles[article][0],
                        **({"since": int(titles[article][1])} if article in titles else {})})
             for article in sorted((a for a in reads if a in titles or a in links), key=lambda a: (-reads[a], a)))
    kept = fitting(pages, lambda entry: utf16_len(encode(entry[0])) + utf16_len(encode(entry[1])) + 2,
                   MAX_PAGES_PER_DAY)
    return dict(sorted(kept))


def _thinned(values: list[int], limit: int) -> list[int]:
    """`values` (sorted) thinned evenly to at most `limit`, keeping both ends."""
    if len(values) <= limit:
        return values
    return [values[round(n * (len(values) - 1) / (limit - 1))] for n in range(limit)]


class RollupTooLarge(ValueError):
    """A rollup that Table storage would refuse; names the figure, never its content."""


def stored_columns(rollup_of_day: Mapping[str, Any]) -> dict[str, str]:
    """A rollup as its stored row, one JSON column per figure; RollupTooLarge when a column would
    exceed COLUMN_LIMIT or the entity ENTITY_LIMIT (Table storage's own limits)."""
    columns = {name: encode(value) for name, value in rollup_of_day.items()}
    size = 4 + 2 * len(f"d_{rollup_of_day['day']}rollup") + 8 + 2 * len("Timestamp") + 8  # keys and Timestamp
    for name, text in columns.items():
        units = utf16_len(text)
        if units > COLUMN_LIMIT:
            raise RollupTooLarge(f"the figure {name} would take {units} UTF-16 units (at most {COLUMN_LIMIT})")
        size += 8 + 2 * len(name) + 4 + 2 * units
    if size > ENTITY_LIMIT:
        raise RollupTooLarge(f"the rollup would take {size} bytes (at most {ENTITY_LIMIT})")
    return columns


SITE_SEARCH = ("searches", "with_result_count", "zero", "sessions", "clicked", "refinements", "exits")


def site_search(facts_by_session: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, int]:
    """A day's site-search counts, from each session's searches, result clicks and article reads in
    time order (docs/REPORTS.md defines each):

    * `searches`: search events; `with_result_count` of them reported how many results they found;
      `zero` found none; `sessions`: sessions with a search;
    * `clicked`: searches followed by a result click before the session's next search;
    * `refinements`: searches whose session's next step is another search;
    * `exits`: searches that were the session's last step of the day (no click, read or search after).
    """
    counts = dict.fromkeys(SITE_SEARCH, 0)
    for facts in facts_by_session.values():
        steps = [fact for fact in facts if fact["kind"] in ("search", "click", "read")]
        searched = False
        for index, fact in enumerate(steps):
            if fact["kind"] != "search":
                continue
            searched = True
            counts["searches"] += 1
            if fact.get("results") is not None:
                counts["with_result_count"] += 1
                counts["zero"] += fact["results"] == 0
            after = steps[index + 1:]
            until_next = next((n for n, later in enumerate(after) if later["kind"] == "search"), len(after))
            counts["clicked"] += any(later["kind"] == "click" for later in after[:until_next])
            counts["refinements"] += bool(after) and after[0]["kind"] == "search"
            counts["exits"] += not after
        counts["sessions"] += searched
    return counts
