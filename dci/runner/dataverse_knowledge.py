"""The local Dataverse's knowledge articles and the articles agents attached to cases
(`knowledgearticles`, `knowledgearticleincidents`), in the documented Web API shapes.

`knowledgearticles`: filtered by `articlepublicnumber eq '…'` or `knowledgearticleid eq <id>` terms
joined by `or`, optionally `and statecode eq N`; `$select`ed; each version its own row (one public
number, several ids), with `keywords` and `modifiedon`. `knowledgearticleincidents`: `createdon ge
<time>`, ordered by `createdon` then id, paged by `odata.maxpagesize` with `@odata.nextLink`.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

from dci.runner.odata_pages import asked, page

GUID = r"[0-9a-fA-F-]{36}"


def _at(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Knowledge:
    """The rows of both tables; `handle` answers a GET on either, or None."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.articles: list[dict[str, Any]] = []  # knowledgearticles rows
        self.attachments: list[dict[str, Any]] = []  # knowledgearticleincidents rows

    def add_article(self, number: str, title: str, published: bool = True, keywords: str = "",
                    modified: datetime | None = None) -> str:
        """Add a knowledge article version; returns its id."""
        article = str(uuid.uuid4())
        self.articles.append({"knowledgearticleid": article, "articlepublicnumber": number, "title": title,
                              "statecode": 3 if published else 0, "keywords": keywords,
                              "modifiedon": _at(modified or datetime.now(timezone.utc))})
        return article

    def change_article(self, article: str, modified: datetime, **columns: Any) -> None:
        """What an author's edit does: columns changed, `modifiedon` moved."""
        row = next(r for r in self.articles if r["knowledgearticleid"] == article)
        row.update(columns, modifiedon=_at(modified))

    def attach(self, case_id: str, article: str, when: datetime) -> str:
        """An agent attaches an article version to a case."""
        attachment = str(uuid.uuid4())
        self.attachments.append({"knowledgearticleincidentid": attachment, "_knowledgearticleid_value": article,
                                 "_incidentid_value": case_id, "createdon": _at(when)})
        return attachment

    def handle(self, method: str, path: str, query: str, prefer: str, body: dict[str, Any],
               denied: set[str]) -> tuple[int, dict[str, Any] | None] | None:
        if method == "GET" and path == "knowledgearticles":
            return 200, self._articles(query)
        if method == "GET" and path == "knowledgearticleincidents":
            return 200, self._attachments(query, prefer)
        one = re.fullmatch(rf"knowledgearticles\(({GUID})\)", path)
        if method == "PATCH" and one:
            return self._change(one.group(1).lower(), body, denied)
        return None

    def _change(self, article: str, body: dict[str, Any], denied: set[str]) -> tuple[int, dict[str, Any] | None]:
        if "prvWriteKnowledgeArticle" in denied:
            return 403, {"error": {"code": "0x80040220", "message": "Principal user is missing "
                                                                    "prvWriteKnowledgeArticle privilege."}}
        row = next((r for r in self.articles if r["knowledgearticleid"] == article), None)
        if row is None:
            return 404, {"error": {"code": "0x80040217", "message": f"knowledgearticle With Id = {article} "
                                                                    "Does Not Exist"}}
        if set(body) - {"keywords", "title"}:
            return 400, {"error": {"code": "0x80060888", "message": "Only keywords and title change here."}}
        self.change_article(article, datetime.now(timezone.utc), **body)
        return 204, None

    def _articles(self, query: str) -> dict[str, Any]:
        params = parse_qs(query)
        text = params.get("$filter", [""])[0]
        numbers = {m.replace("''", "'") for m in re.findall(r"articlepublicnumber eq '((?:[^']|'')*)'", text)}
        ids = {m.lower() for m in re.findall(rf"knowledgearticleid eq ({GUID})", text)}
        state = re.search(r"statecode eq (\d+)", text)
        select = [c for c in params.get("$select", [""])[0].split(",") if c]
        rows = [r for r in self.articles if (r["articlepublicnumber"] in numbers or r["knowledgearticleid"] in ids)
                and (state is None or r["statecode"] == int(state.group(1)))]
        value = [{"@odata.etag": 'W/"1"', **{k: v for k, v in r.items() if not select or k in select}} for r in rows]
        return {"@odata.context": f"{self.base}/$metadata#knowledgearticles({','.join(select)})", "value": value}

    def _attachments(self, query: str, prefer: str) -> dict[str, Any]:
        request = asked(query, prefer)
        found = re.search(r"createdon ge (\S+)", request.filter)
        since = found.group(1) if found else "0000"
        rows = sorted((r for r in self.attachments if r["createdon"] >= since),
                      key=lambda r: (r["createdon"], r["knowledgearticleincidentid"]))
        shown, more = page(rows, request, f"{self.base}/knowledgearticleincidents")
        return {"@odata.context": f"{self.base}/$metadata#knowledgearticleincidents",
                "value": [{"@odata.etag": 'W/"1"', **r} for r in shown], **more}
