"""The bridge between the Functions HTTP types and the domain's plain replies."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import azure.functions as func

from dci.problems import Problem
from dci.replies import Reply, json_reply, problem_reply
from dci.settings import settings_or_none

if TYPE_CHECKING:
    from dci.settings import Settings


def respond(reply: Reply) -> func.HttpResponse:
    """A Functions HttpResponse for a Reply."""
    headers = dict(reply.headers)
    if reply.content_type:
        headers["Content-Type"] = reply.content_type
    return func.HttpResponse(reply.body or None, status_code=reply.status, headers=headers)


def misconfigured() -> func.HttpResponse:
    """503 while the app settings are bad; the log and /api/health name the settings."""
    return respond(problem_reply(Problem(503, "The service is not configured yet; see /api/health.", "misconfigured"),
                                 {"Retry-After": "60"}))


def answer(build: Callable[[Settings], Reply]) -> func.HttpResponse:
    """`build`'s reply, given the app settings; 503 while they are missing or invalid."""
    settings = settings_or_none()
    return misconfigured() if settings is None else respond(build(settings))


def json_response(document: object, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    """A JSON HttpResponse."""
    return respond(json_reply(status, document, headers))


def answer_report(headers: Mapping[str, str], build: Callable[[Settings], Reply]) -> func.HttpResponse:
    """As `answer`, for the report routes. With REPORTS_AUTH=app-service they carry no function key
    and App Service authentication signs people in; a request it did not authenticate (no
    X-MS-CLIENT-PRINCIPAL, which it sets and strips from callers) is refused with 401."""
    settings = settings_or_none()
    if settings is None:
        return misconfigured()
    if settings.reports_auth == "app-service" and not headers.get("x-ms-client-principal"):
        return respond(problem_reply(Problem(401, "Sign in first: the reports are behind App Service authentication.",
                                             "sign-in-required")))
    return respond(build(settings))
