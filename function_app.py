"""Portal Insights for Dataverse: every trigger of the app, each a thin adapter over `dci`.

Read top to bottom, this file lists the whole system. Logic lives in `dci/`.
"""

from __future__ import annotations

from datetime import datetime, timezone

import azure.functions as func

from dci import collect as collect_events
from dci import openapi, web
from dci.settings import get_settings, settings_or_none
from dci.storage import CONNECTION_SETTING, PORTAL_EVENTS_QUEUE

settings_or_none()  # at start-up, a bad or missing setting is logged by name (and health says so)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


# --- Ingest -------------------------------------------------------------------------------------

@app.route(route="collect", methods=["POST", "OPTIONS"], auth_level=func.AuthLevel.ANONYMOUS)
@app.queue_output(arg_name="batches", queue_name=PORTAL_EVENTS_QUEUE, connection=CONNECTION_SETTING)
def collect(req: func.HttpRequest, batches: func.Out[str]) -> func.HttpResponse:
    """Beacon batches: validate, verify the visitor's token, enrich, enqueue one message per batch."""
    settings = settings_or_none()
    if settings is None:
        return web.misconfigured()
    outcome = collect_events.handle(req.method, req.headers, req.get_body(), settings)
    if outcome.message is not None:
        batches.set(outcome.message)
    return web.respond(outcome.reply)


@app.queue_trigger(arg_name="msg", queue_name=PORTAL_EVENTS_QUEUE, connection=CONNECTION_SETTING)
def link(msg: func.QueueMessage) -> None:
    """Store a batch's interactions and its contact link (bad messages end in the poison queue)."""
    from dci import linker, storage

    settings = get_settings()  # bad settings: the message is retried, then kept in the poison queue
    linker.link(storage.interaction_store(settings.storage), msg.get_body())


# --- Privacy ------------------------------------------------------------------------------------

@app.route(route="contacts/{contact_id}/export", methods=["GET"])
def export_contact(req: func.HttpRequest) -> func.HttpResponse:
    """Everything stored about a contact (right of access)."""
    from dci import privacy

    settings = settings_or_none()
    if settings is None:
        return web.misconfigured()
    return web.respond(privacy.export_reply(req.route_params.get("contact_id", ""), settings))


@app.route(route="contacts/{contact_id}", methods=["DELETE"])
def erase_contact(req: func.HttpRequest) -> func.HttpResponse:
    """Erase a contact's activity (right to erasure); idempotent, answers what was removed."""
    from dci import privacy

    settings = settings_or_none()
    if settings is None:
        return web.misconfigured()
    return web.respond(privacy.erase_reply(req.route_params.get("contact_id", ""), settings))


@app.timer_trigger(arg_name="timer", schedule="0 30 3 * * *", use_monitor=True)
def retention(timer: func.TimerRequest) -> None:
    """Daily: drop the monthly interactions tables older than RETENTION_DAYS."""
    from dci import retention as policy
    from dci import storage

    settings = get_settings()
    policy.apply(storage.interaction_store(settings.storage), datetime.now(timezone.utc), settings.retention_days)


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
