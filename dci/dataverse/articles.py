"""The Dataverse client's knowledge-article calls: titles for the reports, the articles agents
attached to cases (`knowledgearticleincidents`), article versions, and the one keyword edit
(`python -m dci suggestions apply`). A part of `dci.dataverse.client.Dataverse`, kept apart to keep
each module one concern.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from dci.clock import epoch_ms
from dci.dataverse.odata import odata_filter, odata_text

if TYPE_CHECKING:
    import requests

TITLE_TTL_SECONDS = 3600  # how long a knowledge article's title is remembered in memory
TITLES_PER_CALL = 25  # article numbers asked for in one $filter (keeps the URL short)
MAX_TITLES_CACHED = 10_000


@dataclass(frozen=True)
class Attachment:
    """A knowledge article an agent attached to a case (`knowledgearticleincident`)."""

    attachment_id: str
    case_id: str
    article_id: str  # the article version's knowledgearticleid
    attached_ms: int


@dataclass(frozen=True)
class Article:
    """A knowledge article version as the suggestions read it."""

    article_id: str
    number: str  # articlepublicnumber, upper case: one number for every version
    title: str
    keywords: str
    modified_ms: int
    published: bool


class KnowledgeArticles:
    """The knowledge-article calls of `Dataverse` (which gives `_call`, `_base`, `_page_size`)."""

    _base: str
    _page_size: int
    _titles: dict[str, tuple[str | None, float]]

    def _call(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        raise NotImplementedError

    def article_titles(self, numbers: list[str]) -> dict[str, str]:
        """The titles of published knowledge articles by public number (`KA-01023`, as upper case);
        numbers Dataverse does not know are left out. Remembered for TITLE_TTL_SECONDS."""
        now = time.monotonic()
        wanted = sorted({n.upper() for n in numbers} - {n for n, (_, due) in self._titles.items() if due > now})
        if len(self._titles) + len(wanted) > MAX_TITLES_CACHED:
            self._titles.clear()
        for start in range(0, len(wanted), TITLES_PER_CALL):
            chunk = wanted[start:start + TITLES_PER_CALL]
            numbers_filter = " or ".join(f"articlepublicnumber eq {odata_text(n)}" for n in chunk)
            url = (f"{self._base}/knowledgearticles?$select=articlepublicnumber,title"  # (3: published)
                   f"&$filter={odata_filter(f'({numbers_filter}) and statecode eq 3')}")
            found: dict[str, str] = {}
            while url:
                document = self._call("GET", url, "read knowledge article titles").json()
                for row in document.get("value", []):
                    number = str(row.get("articlepublicnumber") or "").upper()
                    if number and row.get("title"):
                        found.setdefault(number, str(row["title"]))
                url = document.get("@odata.nextLink")
            for number in chunk:
                self._titles[number] = (found.get(number), now + TITLE_TTL_SECONDS)
        return {n.upper(): title for n in numbers if (title := self._titles.get(n.upper(), (None, 0))[0])}

    def attachments_since(self, since_ms: int) -> Iterator[list[Attachment]]:
        """Pages of the knowledge articles attached to cases at or after `since_ms`, oldest first
        (`knowledgearticleincidents`, following @odata.nextLink)."""
        since = datetime.fromtimestamp(since_ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        url = (f"{self._base}/knowledgearticleincidents?$select=knowledgearticleincidentid,_knowledgearticleid_value,"
               f"_incidentid_value,createdon&$filter=createdon ge {since}"
               "&$orderby=createdon asc,knowledgearticleincidentid asc")
        while url:
            document = self._call("GET", url, "list knowledge articles attached to cases",
                                  headers={"Prefer": f"odata.maxpagesize={self._page_size}"}).json()
            yield [Attachment(str(row["knowledgearticleincidentid"]).lower(), str(row["_incidentid_value"]).lower(),
                              str(row["_knowledgearticleid_value"]).lower(),
                              epoch_ms(row["createdon"], naive_is_utc=True))
                   for row in document.get("value", []) if row.get("_incidentid_value")
                   and row.get("_knowledgearticleid_value")]
            url = document.get("@odata.nextLink")

    def articles(self, article_ids: list[str]) -> dict[str, Article]:
        """Knowledge article versions by id (number, title, keywords, last change, published or not);
        ids Dataverse does not know are left out."""
        return self._article_versions([f"knowledgearticleid eq {a}" for a in sorted({a.lower() for a in article_ids})])

    def articles_numbered(self, numbers: list[str]) -> dict[str, Article]:
        """Every version of the knowledge articles with these public numbers, by id."""
        return self._article_versions([f"articlepublicnumber eq {odata_text(n)}" for n in sorted(set(numbers))])

    def _article_versions(self, conditions: list[str]) -> dict[str, Article]:
        found: dict[str, Article] = {}
        for start in range(0, len(conditions), TITLES_PER_CALL):
            either = " or ".join(conditions[start:start + TITLES_PER_CALL])
            url: str | None = (f"{self._base}/knowledgearticles?$select=knowledgearticleid,articlepublicnumber,"
                               f"title,keywords,modifiedon,statecode&$filter={odata_filter(either)}")
            while url:
                document = self._call("GET", url, "read knowledge articles").json()
                for row in document.get("value", []):
                    article = str(row["knowledgearticleid"]).lower()
                    found[article] = Article(article, str(row.get("articlepublicnumber") or "").upper(),
                                             str(row.get("title") or ""), str(row.get("keywords") or ""),
                                             epoch_ms(row["modifiedon"], naive_is_utc=True), row.get("statecode") == 3)
                url = document.get("@odata.nextLink")
        return found

    def set_keywords(self, article_id: str, keywords: str) -> None:
        """Replace an article version's keywords (`python -m dci suggestions apply`)."""
        self._call("PATCH", f"{self._base}/knowledgearticles({article_id})", "change an article's keywords",
                   json={"keywords": keywords}, headers={"If-Match": "*"})
