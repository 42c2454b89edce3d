"""What the customer did, one step per action: the agent's reading of a timeline's events. Pure.

The beacon reports more than a person does: a page view and, when the page is left, the time spent
on it; the search results page as a page view and as a search; every reload. The rules, over a
timeline's (or a contact's) events in time order:

1. a page view carries its engaged time and scroll depth: the `engagement` events of that page
   (same browser, same URL, after the view) add to it;
2. a page whose own event says more is not a step of its own: the page view of the search results
   belongs to the search made on them, the case form's to opening the form, the confirmation
   page's to the submission (same browser, same URL, within a minute either way);
3. reloads collapse: consecutive views of the same URL on one browser are one step (`times`);
4. a result click names what it opened: the page viewed at that address, or the article its link
   names (number, and title from any view of that article);
5. where a browser first shows the contact signed in, a `signin` step says so, and whether earlier
   activity on that browser was attributed to them;
6. navigation folds: consecutive plain page views on one browser (not an article, not a page of
   rule 2's — the search, the case form —, under `BRIEF_MS` on the page, each within the visit gap
   of the one before) are one `browse` step: "Visited the home page 3 times" when every one was the
   home page (`/` or a language root like `/en-US/`), else "Browsed 4 pages: Home, Products,
   Contact us" (titles, `NAMED_PAGES` of them, "and N more"). A single such view stays a `view`.

Every text a step carries from a visitor (search term, title, the address it shows) and every
step's `text` is one line (dci/text.py): data stored before collect made it so must not forge a
line of the report or the note either.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from dci.attribution import STITCHED, VERIFIED
from dci.clock import duration
from dci.text import one_line

SAME_PAGE_WINDOW_MS = 60_000
PAGE_EVENTS = ("search", "case_form", "case_submitted")  # events that say what their page was for
HOW = {VERIFIED: "signed in", STITCHED: "before signing in, on this browser"}
BRIEF_MS = 10_000  # less time than this on a page is passing through it (rule 6)
NAMED_PAGES = 3  # pages a `browse` step names; the rest are "and N more"
FOLD_GAP_MS = 30 * 60_000  # views further apart than this never fold (the default visit gap)
FORM_PATHS = ("/search", "/support/create-case")  # the beacon's default search and case-form pages
_HOME = re.compile(r"/(?:[a-z]{2,3}(?:-[a-z0-9]{2,8})+/?)?", re.IGNORECASE)  # / or a language root


def steps(items: Sequence[dict[str, Any]], gap_ms: int = FOLD_GAP_MS) -> list[dict[str, Any]]:
    """The steps of `items` (timeline items or contact interactions: `type`, `ms`, fields), in order;
    `gap_ms`: the visit gap, which browsing never folds across (rule 6).

    Each step: `kind` (search, view, browse, click, case_form, case_submitted, signin, or the event
    type), `ms`, `ts`, `before_case_ms` when the items have it, `ids` (the events folded into it),
    `text` (plain words), `how` (how it is known to be the contact's), and per kind `query`,
    `results`, `zero`, `article` ({number, title}), `times` (views), `engaged_ms`, `scroll`; a
    `browse` step: `times`, `engaged_ms`, `home` (all of them the home page) and `pages` (the
    names of the pages, each once, in order).
    """
    titles = {i["article_number"]: one_line(i["title"]) for i in items if i.get("article_number") and i.get("title")}
    pages = {i["url"]: i for i in items if i["type"] == "page_view" and i.get("url")}  # what a click opened
    out: list[dict[str, Any]] = []
    last_of: dict[str, int] = {}  # browser -> index of its latest step
    view_of: dict[tuple[str, str], int] = {}  # (browser, url) -> the step its engagement adds to
    seen_signed_in: set[str] = set()
    anonymous_before: set[str] = set()
    for item in sorted(items, key=lambda i: (i["ms"], i.get("id", ""))):
        browser, kind, url = item.get("visitor", ""), item["type"], item.get("url") or ""
        if item.get("attribution") == STITCHED:
            anonymous_before.add(browser)
        elif item.get("attribution") == VERIFIED and browser not in seen_signed_in:
            seen_signed_in.add(browser)
            out.append(_step(item, "signin", ids=[], text=(
                "Signed in here; the earlier activity on this browser is attributed to them"
                if browser in anonymous_before else "Signed in")))
            last_of[browser] = len(out) - 1
        previous = out[last_of[browser]] if browser in last_of else None
        if kind == "engagement":
            target = view_of.get((browser, url))
            if target is not None:
                _engaged(out[target], item)
            continue
        if kind == "page_view":
            if previous and previous["kind"] in PAGE_EVENTS and previous.get("url") == url \
                    and item["ms"] - previous["ms"] <= SAME_PAGE_WINDOW_MS:
                previous["ids"].append(item.get("id"))  # the page of that search or case form (rule 2)
                view_of[(browser, url)] = last_of[browser]
                continue
            if previous and previous["kind"] == "view" and previous.get("url") == url:
                previous["times"] += 1  # a reload (rule 3)
                previous["ids"].append(item.get("id"))
                previous["_last_ms"] = item["ms"]
                continue
            step = _step(item, "view", url=url, title=_one_line(item.get("title")), times=1, engaged_ms=0, scroll=None,
                         article=_article(item, titles))
        elif kind == "search":
            step = _step(item, "search", url=url, query=one_line(item.get("query") or ""), results=item.get("results"),
                         zero=item.get("results") == 0)
        elif kind == "search_click":
            target = item.get("target") or ""
            opened = pages.get(target, {})
            number = opened.get("article_number") or _article_number(target)
            step = _step(item, "click", position=item.get("position"), target=target,
                         title=_one_line(opened.get("title")),
                         article={"number": number, "title": titles.get(number)} if number else None)
        else:
            step = _step(item, kind, url=url, ticket=item.get("ticket"))
        if kind in PAGE_EVENTS and previous and previous["kind"] == "view" and previous.get("url") == url \
                and previous["times"] == 1 and step["ms"] - previous["ms"] <= SAME_PAGE_WINDOW_MS:
            step["ids"] = previous["ids"] + step["ids"]  # its page was reported first (rule 2)
            previous["absorbed"] = True
        out.append(step)
        last_of[browser] = len(out) - 1
        if kind == "page_view" or kind in PAGE_EVENTS:
            view_of[(browser, url)] = last_of[browser]
    out = [step for step in out if not step.pop("absorbed", False)]
    forms = {_path_of(i["url"]) for i in items if i["type"] in PAGE_EVENTS and i.get("url")} | set(FORM_PATHS)
    out = _fold(out, forms, gap_ms)
    for step in out:
        step.pop("_browser")
        step.pop("_last_ms")
        step["text"] = one_line(step["text"]) if step.get("text") else describe(step)
    return out


def _fold(out: list[dict[str, Any]], forms: set[str], gap_ms: int) -> list[dict[str, Any]]:
    """Rule 6: each browser's runs of plain page views, as one `browse` step where the run began."""
    folded: list[dict[str, Any]] = []
    runs: dict[int, list[dict[str, Any]]] = {}  # index in `folded` -> the views of the run
    open_run: dict[str, int] = {}  # browser -> index of its run still open
    for step in out:
        browser = step["_browser"]
        if not _plain(step, forms):
            open_run.pop(browser, None)  # another step of this browser ends its run
            folded.append(step)
            continue
        at = open_run.get(browser)
        if at is not None and step["ms"] - runs[at][-1]["_last_ms"] <= gap_ms:
            runs[at].append(step)
            continue
        open_run[browser] = len(folded)
        runs[len(folded)] = [step]
        folded.append(step)
    for at, run in runs.items():
        if len(run) > 1:
            folded[at] = _browse(run)
    return folded


def _plain(step: dict[str, Any], forms: set[str]) -> bool:
    """A page view that is only navigation: no article, no search or case-form page, passed through."""
    return step["kind"] == "view" and not step.get("article") and (step.get("engaged_ms") or 0) < BRIEF_MS \
        and _path_of(step.get("url") or "") not in forms


def _browse(run: list[dict[str, Any]]) -> dict[str, Any]:
    first = run[0]
    step = {key: first[key] for key in ("kind", "ms", "ts", "before_case_ms", "how", "_browser") if key in first}
    return {**step, "kind": "browse", "ids": [i for view in run for i in view["ids"]],
            "times": sum(view["times"] for view in run), "engaged_ms": sum(view["engaged_ms"] for view in run),
            "home": all(_is_home(view.get("url") or "") for view in run),
            "pages": list(dict.fromkeys(_page_name(view) for view in run)), "_last_ms": run[-1]["_last_ms"]}


def _path_of(url: str) -> str:
    return urlsplit(url).path.rstrip("/").lower() or "/"


def _is_home(url: str) -> bool:
    return _HOME.fullmatch(urlsplit(url).path or "/") is not None


def _page_name(view: dict[str, Any]) -> str:
    """A page in a list of pages: its title, else "Home page" or its path."""
    if view.get("title"):
        return one_line(view["title"])
    return "Home page" if _is_home(view.get("url") or "") else unquote(urlsplit(view.get("url") or "").path)


def _one_line(text: str | None) -> str | None:
    return one_line(text) if text else text


def _step(item: dict[str, Any], kind: str, **fields: Any) -> dict[str, Any]:
    step = {"kind": kind, "ms": item["ms"], "ts": item.get("ts"), "ids": [item.get("id")],
            "how": HOW.get(item.get("attribution", ""), ""), **fields,  # (a sign-in step has no event of its own)
            "_browser": item.get("visitor", ""), "_last_ms": item["ms"]}  # (rule 6's, removed at the end)
    if "before_case_ms" in item:
        step["before_case_ms"] = item["before_case_ms"]
    return step


def _engaged(step: dict[str, Any], item: dict[str, Any]) -> None:
    step["ids"].append(item.get("id"))
    if step["kind"] != "view":
        return
    step["engaged_ms"] += item.get("engaged_ms") or 0
    if item.get("scroll") is not None:
        step["scroll"] = max(step["scroll"] or 0, item["scroll"])


def _article(item: dict[str, Any], titles: dict[str, str]) -> dict[str, Any] | None:
    number = item.get("article_number")
    return {"number": number, "title": _one_line(item.get("title")) or titles.get(number)} if number else None


def _article_number(url: str) -> str | None:
    from dci.ingest.urls import article_of

    found = article_of(url) if url else None
    return found["number"] if found else None


def _page(step: dict[str, Any]) -> str:
    """A page as a person names it: its title, else its path."""
    if step.get("title"):
        return f'"{step["title"]}"'
    parts = urlsplit(step.get("url") or step.get("target") or "")
    return unquote(parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def article_name(article: dict[str, Any]) -> str:
    """`"Reset your password" (KA-01023)`, or the number alone when no title was seen."""
    name = f'"{article["title"]}" ({article["number"]})' if article.get("title") else article["number"]
    return one_line(name)


def describe(step: dict[str, Any]) -> str:
    """The step in plain words, on one line."""
    return one_line(_words(step))


def _words(step: dict[str, Any]) -> str:
    kind = step["kind"]
    if kind == "search":
        found = step.get("results")
        outcome = "" if found is None else " – no results" if found == 0 else \
            f" – {found} result{'s' if found != 1 else ''}"
        return f'Searched "{step["query"]}"{outcome}'
    if kind == "view":
        article = step.get("article")
        what = f"Read {article_name(article)}" if article else f"Viewed {_page(step)}"
        extras = [f"{step['times']} times"] if step.get("times", 1) > 1 else []
        if (step.get("engaged_ms") or 0) >= 1000:  # under a second: passed through, nothing to say
            extras.append(duration(step["engaged_ms"]) + " on the page")
            if step.get("scroll") is not None:
                extras.append(f"scrolled {step['scroll']} %")
        return what + (f" ({', '.join(extras)})" if extras else "")
    if kind == "browse":
        if step.get("home"):
            return f"Visited the home page {step['times']} times"
        names = step.get("pages") or []
        more = f" and {len(names) - NAMED_PAGES} more" if len(names) > NAMED_PAGES else ""
        return f"Browsed {step['times']} pages: {', '.join(names[:NAMED_PAGES])}{more}"
    if kind == "click":
        opened = article_name(step["article"]) if step.get("article") else _page(step)
        return f"Opened search result #{step.get('position')}: {opened}"
    if kind == "case_form":
        return "Opened the case form"
    if kind == "case_submitted":
        return f"Submitted case {step.get('ticket') or ''}".rstrip()
    return kind.replace("_", " ").capitalize()
