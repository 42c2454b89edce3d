"""GET /api/beacon.js: the minified beacon, long-cached, with an ETag."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from dci.replies import Reply

BEACON = Path(__file__).resolve().parent / "static" / "beacon.js"
CACHE = "public, max-age=86400, stale-while-revalidate=604800"


@functools.cache
def _script() -> tuple[bytes, str]:
    body = BEACON.read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


def reply(if_none_match: str | None) -> Reply:
    """200 with the script, or 304 when the browser's copy is current."""
    body, etag = _script()
    headers = {"ETag": etag, "Cache-Control": CACHE, "X-Content-Type-Options": "nosniff"}
    if if_none_match and etag in [tag.strip() for tag in if_none_match.split(",")]:
        return Reply(304, b"", None, headers)
    return Reply(200, body, "application/javascript; charset=utf-8", headers)
