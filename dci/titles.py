"""Page titles without the site's suffix: pure.

Portal pages are titled "Reset your password · Contoso Support"; a report shows "Reset your
password". The suffix is learnt per portal host from the titles seen (`suffixes`), then removed
where a title ends in it (`strip`). The rule for learning, on a host's distinct titles (after
whitespace is normalised):

1. A candidate is a trailing segment of a title after one of `SEPARATORS`: one of the last
   `MAX_SEGMENTS` such segments, of at most `MAX_SUFFIX` characters, with text before its separator.
2. A candidate is the suffix when at least `MIN_TITLES` (2) distinct titles end in it and they are
   more than half of the host's distinct titles (titles without any separator count too).
3. Of several, the one the most titles end in wins; then the longest ("Help · Contoso" over
   "Contoso" when every title ends in both); then the first in code-point order.

A visitor writes the titles of their own events, so a journey can carry any suffix a visitor wants.
What keeps that harmless: `strip` removes only an exact trailing segment (separator and suffix),
never one that is not there, and never everything; a title that does not end in the suffix is
returned as it came. At worst a visitor's suffix outvotes the site's and the site's stays on. Work
is linear in the text given: each title offers a bounded number of candidates from its last
`MAX_SUFFIX` characters, and `strip` walks back over the title once.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

SEPARATORS = (" · ", " - ", " – ", " — ", " | ", " :: ", " » ")
MAX_SUFFIX = 80  # characters: a site's name, not a sentence
MAX_SEGMENTS = 3  # trailing segments a title offers ("Contoso", "Help · Contoso", "Docs · Help · Contoso")
MIN_TITLES = 2
# Every position a separator starts at, overlapping ones too (" - - " holds two).
_SEPARATOR = re.compile("(?=(" + "|".join(re.escape(s) for s in SEPARATORS) + "))")
_TAIL = MAX_SUFFIX + max(len(s) for s in SEPARATORS)


def normal(text: str) -> str:
    """`text` with each run of whitespace as one space, none at either end."""
    return " ".join(text.split())


def candidates(title: str) -> set[str]:
    """The trailing segments of a normalised title that could be its site's suffix (rule 1)."""
    offset = max(0, len(title) - _TAIL)
    found = []
    for match in _SEPARATOR.finditer(title, offset):
        start = match.start() + len(match.group(1))
        if match.start() > 0 and 0 < len(title) - start <= MAX_SUFFIX:  # (text before it; a normalised
            found.append(title[start:])                                  # title starts with no space)
    return set(found[-MAX_SEGMENTS:])


def suffixes(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The site suffix of each host (lower case) from (host, title) pairs, where one is learnt
    (rules in the module's docstring); hosts without one are left out."""
    titles: defaultdict[str, set[str]] = defaultdict(set)
    for host, title in pairs:
        text = normal(title)
        if text:
            titles[host.lower()].add(text)
    learnt = {}
    for host, distinct in titles.items():
        counts = Counter(candidate for title in distinct for candidate in candidates(title))
        qualified = [(count, len(suffix), suffix) for suffix, count in counts.items()
                     if count >= MIN_TITLES and 2 * count > len(distinct)]
        if qualified:
            learnt[host] = min(qualified, key=lambda q: (-q[0], -q[1], q[2]))[2]
    return learnt


def strip(title: str, suffix: str | None) -> str:
    """`title` without the trailing separators-and-`suffix` it ends in (whitespace normalised), as
    long as text is left; otherwise `title` as it came. Never returns an empty string for a
    non-blank title, and stripping again changes nothing."""
    wanted = normal(suffix) if suffix else ""
    if not wanted or not title:
        return title
    text = normal(title)
    end = len(text)
    while text.endswith(wanted, 0, end):  # ("Home · Contoso · Contoso" → "Home")
        before = end - len(wanted)
        separator = next((s for s in SEPARATORS if before - len(s) > 0 and text.startswith(s, before - len(s))), None)
        if separator is None:
            break
        end = before - len(separator)
    return title if end == len(text) else text[:end]


def host_of(url: object) -> str:
    """The lower-case host of an address; "" for none (or one that does not parse)."""
    if not isinstance(url, str):
        return ""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:  # ("http://[::1" and the like)
        return ""


def stripped_items(items: list[dict[str, Any]], seen: Iterable[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """Timeline items or interactions (dicts with optional `url` and `title`) with each title
    without its host's suffix, learnt from these items' own titles and those of `seen` (more of the
    same customer's activity: a journey of one article has one title to learn from): new dicts
    for items with a title, the others as they are."""
    titled = [(index, host_of(item.get("url")), item["title"]) for index, item in enumerate(items)
              if isinstance(item.get("title"), str) and item["title"]]
    more = [(host_of(row.get("url")), row["title"]) for row in seen
            if isinstance(row.get("title"), str) and row["title"]]
    learnt = suffixes([*((host, title) for _, host, title in titled), *more])
    out = list(items)
    for index, host, title in titled:
        out[index] = {**items[index], "title": strip(title, learnt.get(host))}
    return out
