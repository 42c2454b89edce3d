"""Who may read the report routes (case and contact timelines, insights).

With `REPORTS_AUTH=function-key` (the default) the host checks the function key before any code
runs. With `REPORTS_AUTH=app-service` the routes are anonymous to the host and App Service
authentication (Entra ID) is the gate. Then two things are trusted, both set by the platform:

1. `WEBSITE_AUTH_ENABLED=True`, which App Service sets in the app's environment when its
   authentication is on. Without it nothing strips an `X-MS-CLIENT-PRINCIPAL` header that a caller
   made up, so the routes are closed (503) rather than open to anyone who sends one.
2. `X-MS-CLIENT-PRINCIPAL`, which App Service authentication sets on requests it authenticated
   (and removes from requests it did not): base64 of a JSON object with the identity provider
   (`auth_typ`) and the caller's `claims`. A header that does not decode to one is refused (401).

The platform lets unauthenticated requests through to the app (infra/entra.bicep: `AllowAnonymous`,
so the beacon, health and the key-protected routes stay open), and the app is the gate: a report
request without a principal is sent to the Entra sign-in when it asks for HTML (`sign_in_path`) and
answered 401 problem+json otherwise.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from dci.problems import Problem

if TYPE_CHECKING:
    from dci.settings import Settings

PRINCIPAL_HEADER = "x-ms-client-principal"
MAX_PRINCIPAL_CHARS = 16 * 1024
AUTH_OFF = ("REPORTS_AUTH is app-service, but App Service authentication is not enabled for this app "
            "(WEBSITE_AUTH_ENABLED is not True)")


def closed_reason(settings: Settings) -> str | None:
    """Why the report routes refuse every request under these settings, or None when they are open."""
    if settings.reports_auth == "app-service" and not settings.website_auth_enabled:
        return AUTH_OFF
    return None


def client_principal(header: str | None) -> dict[str, Any] | None:
    """The principal App Service authentication put in X-MS-CLIENT-PRINCIPAL, or None when the
    header is missing or is not one (not base64, not JSON, no `auth_typ`, claims not a list of
    `{typ, val}` strings)."""
    if not header or len(header) > MAX_PRINCIPAL_CHARS:
        return None
    try:
        document = json.loads(base64.b64decode(header.strip(), validate=True))
    except (binascii.Error, ValueError):  # not base64, not UTF-8, not JSON
        return None
    if not isinstance(document, dict):
        return None
    provider, claims = document.get("auth_typ"), document.get("claims")
    if not isinstance(provider, str) or not provider.strip() or not isinstance(claims, list) or not claims:
        return None
    for claim in claims:
        if not (isinstance(claim, dict) and isinstance(claim.get("typ"), str) and isinstance(claim.get("val"), str)):
            return None
    return document


def check_report_access(settings: Settings, headers: Mapping[str, str]) -> None:
    """Raise the Problem a report request gets under these settings; return when it may be served."""
    if settings.reports_auth != "app-service":
        return  # the host checked the function key
    if closed_reason(settings):
        raise Problem(503, AUTH_OFF + ": the reports stay closed until it is, or REPORTS_AUTH is function-key.",
                      "reports-auth-off", headers={"Retry-After": "300"})
    if client_principal(headers.get(PRINCIPAL_HEADER)) is None:
        raise Problem(401, "Sign in first: the reports are behind App Service authentication.", "sign-in-required")


SIGN_IN = "/.auth/login/aad"


def sign_in_path(url: str) -> str:
    """Where a browser without a sign-in is sent: App Service's Entra sign-in, back to `url`'s path
    and query afterwards (a relative address, which the platform accepts without configuration)."""
    parts = urlsplit(url)
    back = parts.path + (f"?{parts.query}" if parts.query else "")
    return f"{SIGN_IN}?post_login_redirect_uri={quote(back, safe='')}"
