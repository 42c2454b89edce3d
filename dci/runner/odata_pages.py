"""Server-driven paging as the local Dataverse answers it: the first page sized by `Prefer:
odata.maxpagesize` (5,000 without it), the next ones named by an opaque `$skiptoken` in
`@odata.nextLink` that carries the first request's `$filter` (a client follows the link verbatim)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from typing import Any, NamedTuple, TypeVar
from urllib.parse import parse_qs

T = TypeVar("T")
DEFAULT_SIZE = 5000


class Asked(NamedTuple):
    """What a request asks for: its `$filter` (the first request's, on a later page), where the page
    starts and how many rows it holds."""

    filter: str
    offset: int
    size: int


def asked(query: str, prefer: str) -> Asked:
    """The page a request's query string and Prefer header ask for."""
    params = parse_qs(query)
    if "$skiptoken" in params:
        state = json.loads(base64.urlsafe_b64decode(params["$skiptoken"][0]))
        return Asked(state["filter"], state["offset"], state["size"])
    found = re.search(r"odata\.maxpagesize=(\d+)", prefer)
    return Asked(params.get("$filter", [""])[0], 0, int(found.group(1)) if found else DEFAULT_SIZE)


def page(rows: Sequence[T], request: Asked, url: str) -> tuple[list[T], dict[str, Any]]:
    """The rows of the asked page, and `{"@odata.nextLink": …}` (to `url`) when more follow."""
    end = request.offset + request.size
    if end >= len(rows):
        return list(rows[request.offset:end]), {}
    token = base64.urlsafe_b64encode(json.dumps({"filter": request.filter, "offset": end,
                                                 "size": request.size}).encode()).decode()
    return list(rows[request.offset:end]), {"@odata.nextLink": f"{url}?$skiptoken={token}"}
