"""Portal Insights for Dataverse: every trigger of the app, each a thin adapter over `dci`.

Read top to bottom, this file lists the whole system. Logic lives in `dci/`.
"""

from __future__ import annotations

import azure.functions as func

from dci import collect as collect_events
from dci import openapi, web
from dci.settings import settings_or_none
from dci.storage import CONNECTION_SETTING, PORTAL_EVENTS_QUEUE

settings_or_none()  # at start-up, a bad or missing setting is logged by name (and health says so)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


# --- Ingest -------------------------------------------------------------------------------------

@app.route(route="collect", methods=["POST", "OPTIONS"], auth_level=func.AuthLevel.ANONYMOUS)
@app.queue_output(arg_name="batches", queue_name=PORTAL_EVENTS_QUEUE, connection=CONNECTION_SETTING)
def collect(req: func.HttpRequest, batches: func.Out[str]) -> func.HttpResponse:
    """Beacon batches: validate, enrich, enqueue one message per accepted batch."""
    settings = settings_or_none()
    if settings is None:
        return web.misconfigured()
    outcome = collect_events.handle(req.method, req.headers, req.get_body(), settings)
    if outcome.message is not None:
        batches.set(outcome.message)
    return web.respond(outcome.reply)


# --- Operations ---------------------------------------------------------------------------------

@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness plus queue and table reachability (503 when storage is down)."""
    from dci import health as checks  # the storage SDKs load here, not on the ingest path

    return web.respond(checks.check())


@app.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    """The OpenAPI 3.1 description of every route."""
    return web.json_response(openapi.document(), headers={"Cache-Control": "public, max-age=300"})
