"""The collect body, version 1: the batch the beacon sends and every event type in it.

Models are strict (no type coercion) and closed (unknown fields are errors). Events validate into
plain dicts (TypedDicts), which collect enriches and enqueues without converting.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Literal, NotRequired
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints, WithJsonSchema
from typing_extensions import TypedDict

MAX_EVENTS = 50
MAX_URL = 2048


def host_of(url: str) -> str:
    """`https://Contoso.example:443/x` -> `contoso.example` (default ports dropped)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2].lower()
    default = {"http": ":80", "https": ":443"}.get(parts.scheme, "")
    return host.removesuffix(default) if default else host


@functools.lru_cache(maxsize=16)
def portal_url_pattern(hosts: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for "an http(s) URL on one of these hosts": far cheaper than urlsplit per URL."""
    alternatives = []
    for host in hosts:
        name, _, port = host.partition(":")
        ports = f":{port}" if port else "(?::80|:443)?"
        alternatives.append(re.escape(name) + ports)
    return re.compile(r"^https?://(?:" + "|".join(alternatives) + r")(?:[/?#]|$)", re.IGNORECASE)


# Shapes are checked in pydantic-core (no Python call per field: collect's cost stays close to a
# bare json.loads); what depends on configuration or the clock (portal hosts, time sanity) is
# checked by collect after validation. PATTERN_MESSAGES words the pattern errors for people.
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$"
# The host part is ASCII (browsers send IDN hosts punycoded): urlsplit refuses some others.
URL_PATTERN = r"^[hH][tT][tT][pP][sS]?://[A-Za-z0-9._~%!$&'()*+,;=:-]+([/?#]\S*)?$"
# URL_PATTERN as Python's `re` runs it with the meaning pydantic-core's (Rust) regex gives it: `\S`
# is what is not Unicode White_Space (Python's own `\s` also takes \x1c-\x1f), and the whole text.
# Collect checks it once per distinct URL (`dci.ingest.policy.portals`), not in the schema: a
# schema pattern runs for every URL of every batch, and a portal's URLs repeat.
NOT_WHITE_SPACE = "[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
URL = re.compile(URL_PATTERN.replace(r"\S", NOT_WHITE_SPACE))
ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
HOST_PATTERN = r"^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$"
PATTERN_MESSAGES = {
    TIMESTAMP_PATTERN: "must be an ISO-8601 timestamp with a time zone, like 2026-11-28T15:00:00.000Z",
    URL_PATTERN: "must be an absolute http(s) URL",
    ID_PATTERN: "must be 8 to 64 characters of A-Z, a-z, 0-9, '_' or '-'",
    HOST_PATTERN: "must be a host name like contoso.powerappsportals.com",
}

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=512)]
Query = Annotated[str, StringConstraints(min_length=1, max_length=256)]
# Any string: a token that is not a usable JWT leaves the batch anonymous (collect logs why), it
# never costs the batch its events.
Token = Annotated[str, WithJsonSchema({"type": "string", "description": "the portal's ID token (a JWT)"})]
Url = Annotated[str, StringConstraints(max_length=MAX_URL),
              WithJsonSchema({"type": "string", "maxLength": MAX_URL, "pattern": URL_PATTERN})]  # (pattern: see URL)
Timestamp = Annotated[
    str,
    StringConstraints(pattern=TIMESTAMP_PATTERN),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}),
]
Site = Annotated[str, StringConstraints(pattern=HOST_PATTERN)]
_CLOSED = ConfigDict(extra="forbid", strict=True)


# Events are TypedDicts: validated in pydantic-core, they come out as plain dicts, ready to enqueue.
class Article(TypedDict):
    """A knowledge-base article as the portal URL names it."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    number: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    lang: NotRequired[Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] | None]


class PageView(TypedDict):
    """A page was shown; knowledge articles carry their number and language."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    id: Id
    type: Literal["page_view"]
    ts: Timestamp
    url: Url
    title: NotRequired[Text | None]
    referrer: NotRequired[Url | None]
    article: NotRequired[Article | None]


class Search(TypedDict):
    """A portal search; `results` is absent when the count could not be read."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    id: Id
    type: Literal["search"]
    ts: Timestamp
    url: Url
    query: Query
    results: NotRequired[Annotated[int, Field(ge=0, le=1_000_000)] | None]


class SearchClick(TypedDict):
    """A click on a search result."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    id: Id
    type: Literal["search_click"]
    ts: Timestamp
    url: NotRequired[Url | None]
    query: NotRequired[Query | None]
    position: Annotated[int, Field(ge=1, le=10_000)]
    target: Url


class Engagement(TypedDict):
    """Time engaged with a page and how far it was scrolled, sent when the page is left."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    id: Id
    type: Literal["engagement"]
    ts: Timestamp
    url: Url
    engaged_ms: Annotated[int, Field(ge=0, le=86_400_000)]
    scroll: NotRequired[Annotated[int, Field(ge=0, le=100)] | None]


class CaseForm(TypedDict):
    """The create-case form was opened."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    id: Id
    type: Literal["case_form"]
    ts: Timestamp
    url: Url


class CaseSubmitted(TypedDict):
    """A case was submitted; the confirmation page shows its ticket number."""

    __pydantic_config__ = _CLOSED  # type: ignore[misc]
    id: Id
    type: Literal["case_submitted"]
    ts: Timestamp
    url: Url
    ticket: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,100}$")]


Event = Annotated[
    PageView | Search | SearchClick | Engagement | CaseForm | CaseSubmitted,
    Field(discriminator="type"),
]
EVENT_TYPES = ("page_view", "search", "search_click", "engagement", "case_form", "case_submitted")


class CollectBatch(BaseModel):
    """What the beacon POSTs to /api/collect."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    # Not Literal[1]: a literal compares with ==, and true == 1.0 == 1 in Python.
    v: Annotated[int, Strict(), Field(ge=1, le=1), WithJsonSchema({"type": "integer", "const": 1})]
    site: Site
    visitor: Id
    session: Id
    token: Token | None = None
    sent_at: Timestamp
    events: Annotated[list[Event], Field(min_length=1, max_length=MAX_EVENTS)]
