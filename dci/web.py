"""The bridge between the Functions HTTP types and the domain's plain replies."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import azure.functions as func

from dci.access import check_report_access, sign_in_path
from dci.problems import Problem
from dci.replies import Reply, json_reply, problem_reply
from dci.settings import settings_or_none
from dci.storage import stores

if TYPE_CHECKING:
    from dci.settings import Settings
    from dci.storage import Stores
    from dci.views import Asked


def respond(reply: Reply) -> func.HttpResponse:
    """A Functions HttpResponse for a Reply; for a shared one, the same response every time (neither
    the host nor the local runner changes a returned response: they read it)."""
    if reply.shared:
        made = _SHARED.get(id(reply))
        if made is not None and made[0] is reply:  # (the reply is held here, so its id is not reused)
            return made[1]
        if len(_SHARED) >= MAX_SHARED:
            _SHARED.clear()
        response = _response(reply)
        _SHARED[id(reply)] = (reply, response)
        return response
    return _response(reply)


MAX_SHARED = 512
_SHARED: dict[int, tuple[Reply, func.HttpResponse]] = {}


def _response(reply: Reply) -> func.HttpResponse:
    headers = dict(reply.headers)
    headers.setdefault("X-Content-Type-Options", "nosniff")  # every answer is exactly what it says it is
    if reply.content_type:
        headers["Content-Type"] = reply.content_type
    return func.HttpResponse(reply.body or None, status_code=reply.status, headers=headers)


def headers_of(req: func.HttpRequest) -> Mapping[str, str]:
    """A request's headers for `.get` with lower-case names: the plain dict the Functions type keeps
    them in (azure-functions 1.x and 2.x: `__http_headers__`, names lower-cased), else the type's
    own mapping. Collect reads four on every request, and the type's `get` is three Python calls."""
    plain = getattr(req.headers, "__http_headers__", None)
    return plain if isinstance(plain, dict) else req.headers


def misconfigured() -> func.HttpResponse:
    """503 while the app settings are bad; the log and /api/health name the settings."""
    return respond(problem_reply(Problem(503, "The service is not configured yet; see /api/health.", "misconfigured"),
                                 {"Retry-After": "60"}))


def answer(build: Callable[[Settings, Stores], Reply]) -> func.HttpResponse:
    """`build`'s reply, given the app settings and stores; 503 while the settings are missing or invalid."""
    settings = settings_or_none()
    return misconfigured() if settings is None else respond(build(settings, stores(settings)))


def asked(req: func.HttpRequest, key: str = "") -> Asked:
    """What a report request asks (dci.views.Asked): its `key` route value, parameters, Accept, now."""
    from dci.views import Asked

    return Asked(req.route_params.get(key, "") if key else "", req.params, req.headers.get("accept"),
                 datetime.now(timezone.utc), req.headers)


def json_response(document: object, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """A JSON HttpResponse."""
    return respond(json_reply(status, document, headers))


def answer_report(req: func.HttpRequest, build: Callable[[Settings, Stores], Reply]) -> func.HttpResponse:
    """As `answer`, for the report routes: refused unless `access.check_report_access` lets the
    request through (REPORTS_AUTH=app-service: App Service authentication on, and a real principal);
    a browser that is not signed in is sent to the sign-in and back (302), any other caller gets 401."""
    settings = settings_or_none()
    if settings is None:
        return misconfigured()
    try:
        check_report_access(settings, req.headers)
    except Problem as problem:
        if problem.kind == "sign-in-required" and _wants_html(req):
            return func.HttpResponse(status_code=302, headers={"Location": sign_in_path(req.url),
                                                               "Cache-Control": "no-store"})
        return respond(problem_reply(problem))
    return respond(build(settings, stores(settings)))


def _wants_html(req: func.HttpRequest) -> bool:
    from dci.views import wants_html

    try:
        return wants_html(req.params, req.headers.get("accept"))
    except Problem:  # another format: its own 400 comes after the sign-in
        return False
