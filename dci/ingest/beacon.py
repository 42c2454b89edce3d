"""GET /api/beacon.js and /api/beacon-search.js: the minified beacon scripts, long-cached, with ETags.

beacon.js runs on every portal page; beacon-search.js only on the search page, where beacon.js
loads it from next to itself.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from dci.replies import Reply

STATIC = Path(__file__).resolve().parents[1] / "static"
CACHE = "public, max-age=86400, stale-while-revalidate=604800"


@functools.cache
def _script(name: str) -> tuple[bytes, str]:
    body = (STATIC / name).read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def reply(name: str, if_none_match: str | None) -> Reply:
    """200 with the script, or 304 when the browser's copy is current."""
    body, etag = _script(name)
    headers = {"ETag": etag, "Cache-Control": CACHE, "X-Content-Type-Options": "nosniff"}
    if if_none_match and etag in [tag.strip() for tag in if_none_match.split(",")]:
        return Reply(304, b"", None, headers)
    return Reply(200, body, "application/javascript; charset=utf-8", headers)
