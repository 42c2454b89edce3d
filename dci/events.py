"""The collect body, version 1: the batch the beacon sends and every event type in it.

Models are strict (no type coercion) and closed (unknown fields are errors). URL host checks
read the allowed portal hosts from the validation context, so one model serves every portal.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Literal, Union
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
)

MAX_EVENTS = 50
MAX_URL = 2048

# Ids become parts of storage keys: a closed alphabet keeps them safe there (no / \ # ?).
Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
Text = Annotated[str, StringConstraints(max_length=512)]
Query = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Token = Annotated[str, StringConstraints(max_length=8192, pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$")]


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value


def _portal_url(value: str, info: ValidationInfo) -> str:
    _http_url(value)
    hosts = (info.context or {}).get("portal_hosts")
    if hosts is not None:
        host = host_of(value)
        if host not in hosts:
            raise ValueError(f"host {host!r} is not one of the configured portals (PORTAL_ISSUERS)")
    return value


def _portal_host(value: str, info: ValidationInfo) -> str:
    hosts = (info.context or {}).get("portal_hosts")
    if hosts is not None and value.lower() not in hosts:
        raise ValueError(f"{value!r} is not one of the configured portals (PORTAL_ISSUERS)")
    return value.lower()


def host_of(url: str) -> str:
    """`https://Contoso.example:443/x` -> `contoso.example` (default ports dropped)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2].lower()
    default = {"http": ":80", "https": ":443"}.get(parts.scheme, "")
    return host.removesuffix(default) if default else host


Url = Annotated[str, StringConstraints(max_length=MAX_URL), AfterValidator(_http_url)]
PortalUrl = Annotated[str, StringConstraints(max_length=MAX_URL), AfterValidator(_portal_url)]
Site = Annotated[str, StringConstraints(min_length=1, max_length=260), AfterValidator(_portal_host)]


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Article(_Closed):
    """A knowledge-base article as the portal URL names it."""

    number: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
    lang: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")] | None = None


class _Event(_Closed):
    id: Id
    ts: AwareDatetime


class PageView(_Event):
    """A page was shown; knowledge articles carry their number and language."""

    type: Literal["page_view"]
    url: PortalUrl
    title: Text | None = None
    referrer: Url | None = None
    article: Article | None = None


class Search(_Event):
    """A portal search; `results` is absent when the count could not be read."""

    type: Literal["search"]
    url: PortalUrl
    query: Query
    results: Annotated[int, Field(ge=0, le=1_000_000)] | None = None


class SearchClick(_Event):
    """A click on a search result."""

    type: Literal["search_click"]
    url: PortalUrl | None = None
    query: Query | None = None
    position: Annotated[int, Field(ge=1, le=10_000)]
    target: PortalUrl


class Engagement(_Event):
    """Time engaged with a page and how far it was scrolled, sent when the page is left."""

    type: Literal["engagement"]
    url: PortalUrl
    engaged_ms: Annotated[int, Field(ge=0, le=86_400_000)]
    scroll: Annotated[int, Field(ge=0, le=100)] | None = None


class CaseForm(_Event):
    """The create-case form was opened."""

    type: Literal["case_form"]
    url: PortalUrl


class CaseSubmitted(_Event):
    """A case was submitted; the confirmation page shows its ticket number."""

    type: Literal["case_submitted"]
    url: PortalUrl
    ticket: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,100}$")]


Event = Annotated[
    Union[PageView, Search, SearchClick, Engagement, CaseForm, CaseSubmitted],
    Field(discriminator="type"),
]
EVENT_TYPES = ("page_view", "search", "search_click", "engagement", "case_form", "case_submitted")


class CollectBatch(_Closed):
    """What the beacon POSTs to /api/collect."""

    v: Literal[1]
    site: Site
    visitor: Id
    session: Id
    token: Token | None = None
    sent_at: AwareDatetime
    events: Annotated[list[Event], Field(min_length=1, max_length=MAX_EVENTS)]


def iso_ms(moment: datetime) -> str:
    """Fixed-width UTC timestamp with milliseconds: sorts as text, as storage keys need."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
