"""What the schema cannot check of a collect batch, and each event rewritten as it will be stored.

The checks depend on the settings and the clock: the portal hosts, time sanity, unique event ids.
The rewriting: times in epoch ms corrected for the client's clock skew, an off-portal referrer cut
to its origin, search terms and titles made one line (dci/text.py), personal data in them and in
URLs (path and query) scrubbed (dci/ingest/scrub.py).

This is collect's hot path (docs/PERFORMANCE.md). What holds for the whole batch (the hosts'
pattern, the skew, the time bounds) is worked out once per batch. What a text alone decides (a
URL's stored form and article, a term's cleaned form) is remembered for the process's life in a
bounded `Memo`, because a portal's pages and its visitors' searches repeat; a flood of new texts
costs what it would without the memo, never more memory. Only texts stored as they came are
remembered: one in which something was scrubbed (or cut, or encoded) is worked out every time, so
no personal data the scrubber found stays in the process after its request.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from dci.clock import AFTER_ARRIVAL_MS, DAY_MS, epoch_ms_each, ms_of
from dci.ingest.events import PATTERN_MESSAGES, URL, URL_PATTERN, host_of, portal_url_pattern
from dci.ingest.scrub import scrub, scrub_url
from dci.ingest.urls import article_of
from dci.problems import FieldError
from dci.text import one_line, printable_url

MAX_CLOCK_SKEW_MS = 7 * DAY_MS
MAX_EVENT_AGE_MS = 7 * DAY_MS  # the beacon's retry queue drops older events
EVENT_AFTER_SEND_TOLERANCE_MS = AFTER_ARRIVAL_MS
NOT_PORTAL = "host {!r} is not one of the configured portals (PORTAL_ISSUERS)"
NOT_A_URL = PATTERN_MESSAGES[URL_PATTERN]
# A memo holds at most this many texts, each at most this long (a longer one is worked out every
# time): at most about 4,096 × 512 characters of keys and as much again of values per memo.
MEMO_ENTRIES, MEMO_LONGEST = 4096, 512


class Checked(NamedTuple):
    """A batch after the policy checks: what is wrong with it, and its events ready to enqueue."""

    errors: list[FieldError]
    events: list[dict[str, Any]]
    skew_ms: int


class Memo(dict[str, Any]):
    """`memo[text]` is `make(text)`, remembered while `text` is at most `longest` characters and
    `keep(text, value)` says so. When `entries` are held, all are forgotten: cheaper than
    least-recently-used bookkeeping on every hit (a hit is one dict lookup), and a flood of new
    texts then costs what no memo would."""

    def __init__(self, make: Callable[[str], Any], entries: int = MEMO_ENTRIES, longest: int = MEMO_LONGEST,
                 keep: Callable[[str, Any], bool] | None = None) -> None:
        super().__init__()
        self._make, self._entries, self._longest, self._keep = make, entries, longest, keep

    def __missing__(self, text: str) -> Any:
        value = self._make(text)
        if len(text) <= self._longest and (self._keep is None or self._keep(text, value)):
            if len(self) >= self._entries:
                self.clear()
            self[text] = value
        return value


@dataclass(frozen=True)
class Portals:
    """The URL memos of one set of portal hosts (PORTAL_ISSUERS).

    `urls[url]` is (on one of the portals?, the URL as stored, the knowledge article it shows or
    None), or None for what is no absolute http(s) URL (`events.URL`). As stored: without its
    fragment (the beacon sends none; a crafted one could carry anything), invisible characters
    percent-encoded, personal data in its path and query scrubbed. The article dict is shared by
    every event of that URL: enqueue it, never change it. `referrers[url]` is a portal page as
    stored, any other page as its origin only (None: no URL).
    """

    urls: Memo
    referrers: Memo


@functools.lru_cache(maxsize=16)
def portals(hosts: tuple[str, ...]) -> Portals:
    """The memos of `hosts` (one set for the process's life)."""
    on_portal = portal_url_pattern(hosts).match

    def url(text: str) -> tuple[bool, str, dict[str, str] | None] | None:
        if URL.fullmatch(text) is None:
            return None
        stored = scrub_url(printable_url(text.partition("#")[0] if "#" in text else text))
        return on_portal(text) is not None, stored, article_of(text)

    def referrer(text: str) -> str | None:
        if on_portal(text) is not None:
            found = urls[text]
            return None if found is None else found[1]
        if URL.fullmatch(text) is None:
            return None
        parts = urlsplit(text)  # (another site's page: its origin only, nothing of it scrubbed for nothing)
        return f"{parts.scheme}://{parts.netloc}/"

    # (Kept only when on a portal and stored as it came: an off-portal address is never stored whole.)
    urls = Memo(url, keep=lambda text, found: found is not None and found[0] and found[1] == text)
    return Portals(urls, Memo(referrer, keep=lambda text, stored: stored == text))


# A search term or page title as stored.
TEXTS = Memo(lambda text: scrub(one_line(text)), keep=lambda text, stored: stored == text)


def check_policy(site: object, sent_at: object, events: list[dict[str, Any] | None], received: datetime,
                 portal_hosts: tuple[str, ...]) -> Checked:
    """The policy errors of a batch, and its events rewritten in place as they will be enqueued.

    `events` are the schema's (or, for a body that failed it, `typed`'s: None for what is no
    object): dicts whose fields read here are strings when present. `site` and `sent_at` may be
    anything.
    """
    errors = []
    if isinstance(site, str) and site.lower() not in portal_hosts:
        errors.append(FieldError("site", f"{site!r} is not one of the configured portals (PORTAL_ISSUERS)"))
    received_ms = ms_of(received)
    # The batch's times in one call: `sent_at` first, then each event's (None: none, or no real instant).
    sent_ms, *times = epoch_ms_each([sent_at, *(event.get("ts") if event is not None else None for event in events)])
    if sent_ms is None:
        errors.append(FieldError("sent_at", "is not a real date and time"))
        sent_ms = received_ms
    elif abs(received_ms - sent_ms) > MAX_CLOCK_SKEW_MS:
        errors.append(FieldError("sent_at", "more than 7 days from the server clock"))
    skew_ms = received_ms - sent_ms
    oldest, latest = sent_ms - MAX_EVENT_AGE_MS, sent_ms + EVENT_AFTER_SEND_TOLERANCE_MS
    memo = portals(portal_hosts)
    urls, referrers, texts = memo.urls, memo.referrers, TEXTS
    dropped = []  # indices of events without a real time (None: not an object)
    seen: set[str | None] = set()
    for index, event in enumerate(events):
        if event is None:
            dropped.append(index)
            continue
        url, target, query, title = event.get("url"), event.get("target"), event.get("query"), event.get("title")
        if url is not None and ((found_url := urls[url]) is None or not found_url[0]):
            errors.append(_off_portal(index, "url", url, found_url))
        if target is not None and ((found_target := urls[target]) is None or not found_target[0]):
            errors.append(_off_portal(index, "target", target, found_target))
        referrer = event.get("referrer")
        if referrer is not None:
            stored_referrer = referrers[referrer]
            if stored_referrer is None:
                errors.append(FieldError(f"events[{index}].referrer", NOT_A_URL))
        event_id = event.get("id")
        if event_id in seen:
            errors.append(FieldError(f"events[{index}].id", f"duplicate event id {event_id!r} in this batch"))
        seen.add(event_id)
        ts = times[index]  # (None: missing, no real instant — month 13, hour 25, … — or no zone)
        if ts is None:
            errors.append(FieldError(f"events[{index}].ts", "is not a real date and time"))
            dropped.append(index)
            continue
        if not oldest <= ts <= latest:
            errors.append(FieldError(f"events[{index}].ts",
                                     "more than 7 days before sent_at" if ts < oldest else "later than sent_at"))
        event["ts"] = ts + skew_ms  # in place: the dicts are fresh from validation, and copies cost
        if errors:  # (this batch goes back to collect, which refuses it or takes it without the bad events)
            continue
        # (A memo hands back the text itself when there was nothing to change: most are left alone.)
        if referrer is not None and stored_referrer is not referrer:
            event["referrer"] = stored_referrer
        if url is not None:
            _, stored_url, article = found_url
            if stored_url is not url:
                event["url"] = stored_url
            if article is not None and event.get("type") == "page_view" and not event.get("article"):
                event["article"] = article
        if target is not None and (stored_target := found_target[1]) is not target:
            event["target"] = stored_target
        if query is not None and (cleaned := texts[query]) is not query:
            event["query"] = cleaned
        if title is not None and (cleaned := texts[title]) is not title:
            event["title"] = cleaned
    out = [event for index, event in enumerate(events) if index not in dropped] if dropped else events
    return Checked(errors, out, skew_ms)  # type: ignore[arg-type]  (no None is left in `out`)


def _off_portal(index: int, field: str, url: str, found: tuple[bool, str, Any] | None) -> FieldError:
    """The error of an event's URL that is none (`found` None) or not on a portal."""
    return FieldError(f"events[{index}].{field}", NOT_A_URL if found is None else NOT_PORTAL.format(host_of(url)))


def typed(events: object) -> list[dict[str, Any] | None]:
    """The events of a body that failed the schema as `check_policy` takes them: of the fields it
    reads only those that are strings (any other is among the schema's errors); None in the place
    of what is no object."""
    if not isinstance(events, list):
        return []
    return [{name: value for name, value in event.items() if name not in _READ or isinstance(value, str)}
            if isinstance(event, dict) else None for event in events]


_READ = frozenset({"id", "type", "ts", "url", "target", "referrer", "query", "title"})

