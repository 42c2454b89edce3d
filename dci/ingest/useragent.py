"""What we keep of a User-Agent header: browser family and device class, and whether it is a bot.

A bot is what crawlerdetect (JayBizzle's maintained list of crawlers, previewers, monitors and HTTP
libraries) calls a crawler, with exactly its answer but not its cost. crawlerdetect cuts 52 exclusion
patterns out of the header, then searches the rest for any of 1,462 crawler patterns, both in `re`
with IGNORECASE: 80-290 µs for a header not seen before. Headers vary (versions, builds, device
models) and an attacker can send a new one with every request, so `classify`'s cache does not bound
that cost. Here an ASCII header (any other goes to crawlerdetect itself) costs a few µs:
- the exclusions are cut from the lowercased header by the lowercased patterns, case-sensitive and
  grouped by first character (~2 µs instead of 6-16);
- the rest is searched with RE2 (google-re2: one automaton, time linear in the header whatever it
  holds, ~1 µs), except the patterns RE2 cannot run (`Yandex(?!Search)`: a lookahead), which a
  small `re` searches beside it.
`classify` counts a header longer than 1,024 characters, or not ASCII, as a bot (MAX_USER_AGENT).
Both are built from crawlerdetect's own lists at the first call: importing this module imports
neither package.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

# The first family whose pattern is found. `X(?<!\wX)` is `\bX` written so that `re` looks for X
# (fast) rather than testing \b at every position (2 µs a pattern).
_FAMILIES = (
    ("Edge", re.compile(r"Edg(?<!\wEdg)(e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/(?<!\wOPR/)|Opera(?<!\wOpera)")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/")),
    ("Firefox", re.compile(r"Firefox/(?<!\wFirefox/)|FxiOS/(?<!\wFxiOS/)")),
    ("Chrome", re.compile(r"Chrome/(?<!\wChrome/)|CriOS/(?<!\wCriOS/)")),
    ("Safari", re.compile(r"Safari/(?<!\wSafari/)")),
)

# Syntax that means the same to `re` on ASCII text without a newline (case-insensitive, or lowercased
# on both sides) and to RE2: literals, escaped punctuation, \d \w \b and their negations, classes,
# groups (no `(?` but `(?:`), | and the quantifiers ? * + {m} {m,} {m,n}. `_LOWERABLE` also takes
# lookarounds, which `re` reads the same lowercased; anything else (a backreference, \s, an inline flag)
# stays case-insensitive in `re`.
_SYNTAX = (r"(?:\\[^0-9A-Za-z]|\\[dDwWbB]"  # escaped punctuation, \d \w \b and their negations
           r"|\[\^?\]?(?:\\[^0-9A-Za-z]|\\[dDwW]|[^\\\][])*\]"  # a class
           r"|\((?!\?)|\(\?GROUP"  # a group
           r"|\{[0-9]{1,3}(?:,[0-9]{0,3})?\}"  # a counted repeat
           r"|[^\\[({])*")
_PLAIN = _SYNTAX.replace("GROUP", ":")
_LOWERABLE = _SYNTAX.replace("GROUP", "(?::|=|!|<=|<!)")


def _plain(pattern: str, syntax: str = _PLAIN) -> bool:
    """Whether `pattern` is in `syntax` (above) and its classes, lowercased, still match the lowercase
    of what they matched case-insensitively (`[A-Z]` does, `[A-z]` would not)."""
    if not pattern.isascii() or not re.fullmatch(syntax, pattern):
        return False
    for found in re.finditer(r"\[\^?\]?(?:\\.|[^\\\]])*\]", pattern):
        try:
            anycase, lowered = re.compile(found[0], re.IGNORECASE), re.compile(_lower(found[0]))
        except re.error:
            return False
        if any(bool(anycase.match(c)) != bool(lowered.match(c.lower())) for c in map(chr, range(128))):
            return False
    return True


def _lower(pattern: str) -> str:
    """`pattern` lowercased but its escapes (`\\D` is not `\\d`)."""
    return re.sub(r"\\.|[A-Z]+", lambda m: m[0] if m[0][0] == "\\" else m[0].lower(), pattern)


def _by_first_character(patterns: list[str]) -> str | None:
    """`patterns` as one alternation grouped by first character (`s(?:afari…|uper…)|f(?:irefox…)`), which
    `re` tries in a few steps instead of one per pattern; None when one does not start with a literal.
    The same matches in the same order: two patterns that start with different characters never match
    at the same place, and within a group the patterns keep their order."""
    groups: dict[str, list[str]] = {}
    for pattern in patterns:
        starts = _first(pattern)
        if starts is None:
            return None
        for character, rest in starts:
            groups.setdefault(character, []).append(rest)
    return "|".join(re.escape(character) + (f"(?:{'|'.join(rests)})" if rests != [""] else "")
                    for character, rests in groups.items())


def _first(pattern: str) -> list[tuple[str, str]] | None:
    """`pattern` as (first character, rest) pairs tried in that order, or None: a leading literal,
    escaped punctuation or one-character class, or an optional literal group (`(like )?Gecko` is
    `like Gecko` then `Gecko`)."""
    if "|" in pattern or not pattern:  # (a top-level | would spill out of its group)
        return None
    if pattern[0] == "\\" and not pattern[1:2].isalnum():
        head, rest = pattern[1:2], pattern[2:]
    elif re.match(r"\[[^\\\]^]\]", pattern):
        head, rest = pattern[1], pattern[3:]
    elif optional := re.match(r"\(([^\\.^$*+?{}\[\]|()]+)\)\?", pattern):
        rest = pattern[optional.end():]
        taken, skipped = _first(optional[1] + rest), _first(rest)
        return None if taken is None or skipped is None else taken + skipped
    elif pattern[0] in "\\.^$*+?{}[]|()":
        return None
    else:
        head, rest = pattern[0], pattern[1:]
    if rest[:1] and rest[0] in "?*+{":  # the first character is quantified
        return None
    return [(head, rest)]


@functools.cache
def _is_bot() -> Callable[[str], bool]:
    """crawlerdetect's `is_crawler` for a stripped, non-empty header, fast for an ASCII one."""
    import re2  # google-re2
    from crawlerdetect import CrawlerDetect
    from crawlerdetect.providers.crawlers import data as crawlers
    from crawlerdetect.providers.exclusions import data as exclusions

    def lowered(patterns: list[str]) -> list[str]:
        return [_lower(p) if _plain(p, _LOWERABLE) else f"(?i:{p})" for p in patterns]

    def re2_reads(pattern: str) -> bool:
        try:
            re2.compile(pattern, options)
        except re2.error:
            return False
        return True

    slow = CrawlerDetect().is_crawler
    cuts = lowered(exclusions)
    cut = re.compile(_by_first_character(cuts) or "|".join(cuts)).sub
    options = re2.Options()
    options.case_sensitive, options.never_capture, options.log_errors = False, True, False
    options.max_mem = 32 << 20  # room for the automaton's states: with the default 8 MiB crafted headers cost 30 µs
    plain = [p for p in crawlers if _plain(p)]
    if not re2_reads("|".join(plain)):
        plain = [p for p in plain if re2_reads(p)]
    kept = set(plain)
    others = lowered([p for p in crawlers if p not in kept])  # for `re`: what RE2 cannot read
    search_others = re.compile("|".join(others)).search if others else lambda text: None
    search = re2.compile("|".join(plain), options).search

    def is_bot(ua: str) -> bool:
        # (Before a final newline `re`'s $ matches and RE2's does not; a header cannot hold one anyway.)
        if not ua.isascii() or "\n" in ua:
            return slow(ua)
        rest = cut("", ua.lower())
        if not rest:
            return False
        # No crawler pattern matches the empty string: crawlerdetect's answer is whether any matches.
        return search(rest) is not None or search_others(rest) is not None

    return is_bot


@dataclass(frozen=True)
class Client:
    """The browser family and device class of a request; never the full header."""

    family: str
    device: str
    bot: bool


_BOT = Client(family="bot", device="bot", bot=True)


@functools.cache
def _client(family: str, device: str) -> Client:
    return Client(family=family, device=device, bot=False)


def _family(ua: str) -> str:
    for name, pattern in _FAMILIES:
        if pattern.search(ua):
            return name
    return "Other"


# No browser sends a longer header (Chrome's is about 120 characters, an in-app browser's 400), nor
# one that is not ASCII: such a header counts as a bot. The bot check's cost grows with the length
# (about 50 ns a character), and crawlerdetect itself, which a non-ASCII header needs for its exact
# answer, takes milliseconds on a long one: neither is an attacker's to choose.
MAX_USER_AGENT = 1024


@functools.lru_cache(maxsize=4096)
def classify(user_agent: str | None) -> Client:
    """Classify a User-Agent header; an empty one counts as a bot. Cached per header: a portal's
    visitors send a few thousand distinct ones, most requests a few hundred of them (4,096 headers
    of at most 1,024 characters: 8 MiB at the very most). A new one costs a few µs (the module's
    docstring)."""
    ua = (user_agent or "").strip()
    if not ua or len(ua) > MAX_USER_AGENT or not ua.isascii() or _is_bot()(ua):
        return _BOT
    family = _family(ua)
    if "iPad" in ua or "Tablet" in ua:
        device = "tablet"
    elif "Mobi" in ua or "iPhone" in ua or "Android" in ua:
        device = "mobile"
    else:
        device = "desktop"
    return _client(family, device)
