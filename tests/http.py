"""HTTP calls to the runner as the portal's browser makes them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tests.conftest import BROWSER_UA, PORTAL_ORIGIN


def call(method: str, url: str, data: bytes | None = None) -> tuple[int, Any]:
    """Status and parsed JSON body (None when empty); HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "text/plain", "Origin": PORTAL_ORIGIN, "User-Agent": BROWSER_UA})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
