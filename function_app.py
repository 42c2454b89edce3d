"""Portal Insights for Dataverse: every trigger of the app, each a thin adapter over `dci`.

Read top to bottom, this file lists the whole system. Logic lives in `dci/`.
"""

from __future__ import annotations

from datetime import datetime, timezone

import azure.functions as func

from dci import storage, telemetry, web
from dci.clock import ms_of
from dci.ingest import collect as collect_events
from dci.settings import case_schedule, insights_schedule, lake_schedule, reports_auth, settings_or_none
from dci.storage import CASES_QUEUE, CONNECTION_SETTING, PORTAL_EVENTS_QUEUE

telemetry.setup()  # OpenTelemetry when APPLICATIONINSIGHTS_CONNECTION_STRING or OTEL_EXPORTER_OTLP_ENDPOINT is set
settings_or_none()  # at start-up, a bad or missing setting is logged by name (and health says so)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
# The report routes take a function key, or, with REPORTS_AUTH=app-service, App Service authentication's sign-in.
READ_AUTH = func.AuthLevel.ANONYMOUS if reports_auth() == "app-service" else func.AuthLevel.FUNCTION


# --- Ingest -------------------------------------------------------------------------------------

@app.route(route="collect", methods=["POST", "OPTIONS"], auth_level=func.AuthLevel.ANONYMOUS)
@app.queue_output(arg_name="batches", queue_name=PORTAL_EVENTS_QUEUE, connection=CONNECTION_SETTING)
def collect(req: func.HttpRequest, batches: func.Out[str]) -> func.HttpResponse:
    """Beacon batches: validate, verify the visitor's token, enrich, enqueue one message per batch."""
    settings = settings_or_none()
    if settings is None:
        return web.misconfigured()
    outcome = collect_events.handle(req.method, web.headers_of(req), req.get_body(), settings)
    if outcome.message is not None:
        batches.set(outcome.message)
    return web.respond(outcome.reply)


@app.route(route="beacon.js", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def beacon_script(req: func.HttpRequest) -> func.HttpResponse:
    """The portal beacon, minified; long-cached, with an ETag."""
    from dci.ingest import beacon

    return web.respond(beacon.reply("beacon.js", req.headers.get("if-none-match")))


@app.route(route="beacon-search.js", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def beacon_search_script(req: func.HttpRequest) -> func.HttpResponse:
    """The beacon's search-page part (result counts, clicks), loaded by the beacon on that page only."""
    from dci.ingest import beacon

    return web.respond(beacon.reply("beacon-search.js", req.headers.get("if-none-match")))


@app.queue_trigger(arg_name="msg", queue_name=PORTAL_EVENTS_QUEUE, connection=CONNECTION_SETTING)
def link(msg: func.QueueMessage) -> None:
    """Store a batch's interactions and contact link; then its portal cases and late events."""
    from dci import linker

    storage.run(lambda settings, stores: linker.handle(msg.get_body(), settings, stores), PORTAL_EVENTS_QUEUE)


# --- Cases and timelines ------------------------------------------------------------------------

@app.timer_trigger(arg_name="timer", schedule=case_schedule(), use_monitor=True)
def poll_cases(timer: func.TimerRequest) -> None:
    """Every few minutes (CASE_SCHEDULE): new Dataverse cases since the watermark, queued once each."""
    from dci import cases

    storage.run(lambda settings, stores: cases.poll_configured(settings, stores, _now_ms()))


@app.route(route="dataverse/incidents", methods=["POST"])
def dataverse_incident(req: func.HttpRequest) -> func.HttpResponse:
    """Dataverse webhook for Create of incident: the case is queued at once."""
    from dci import cases

    return web.answer(lambda settings, stores: cases.webhook_reply(req.get_body(), stores))


@app.queue_trigger(arg_name="msg", queue_name=CASES_QUEUE, connection=CONNECTION_SETTING)
def assemble_case(msg: func.QueueMessage) -> None:
    """Once a case has settled: assemble its timeline, store it, write its visits and note on the case."""
    from dci import assembler
    from dci.dataverse.client import client_from

    storage.run(lambda settings, stores: assembler.handle(
        msg.get_body(), stores, settings, _now_ms(), client_from(settings)), CASES_QUEUE)


@app.route(route="cases/{case_id}/timeline", methods=["GET"], auth_level=READ_AUTH)
def case_timeline(req: func.HttpRequest) -> func.HttpResponse:
    """The case's timeline, JSON or the HTML report (202 while the case settles, 404 when unknown)."""
    from dci import views

    return web.answer_report(req, lambda settings, stores: views.case_timeline_reply(
        web.asked(req, "case_id"), settings, stores))


@app.route(route="contacts/{contact_id}/timeline", methods=["GET"], auth_level=READ_AUTH)
def contact_timeline(req: func.HttpRequest) -> func.HttpResponse:
    """Everything attributed to a contact in a range (`from`, `to`, `types`), with their cases; JSON or HTML."""
    from dci import views

    return web.answer_report(req, lambda settings, stores: views.contact_timeline_reply(
        web.asked(req, "contact_id"), settings, stores))


@app.route(route="insights", methods=["GET"], auth_level=READ_AUTH)
def insights(req: func.HttpRequest) -> func.HttpResponse:
    """KPIs across cases for a range of days (`from`, `to`); JSON or the HTML dashboard."""
    from dci import views

    return web.answer_report(req, lambda settings, stores: views.insights_reply(
        web.asked(req), settings, stores))


@app.timer_trigger(arg_name="timer", schedule=insights_schedule(), use_monitor=True)
def rollup_insights(timer: func.TimerRequest) -> None:
    """Every few minutes (INSIGHTS_SCHEDULE): recompute the day rollups whose facts changed."""
    storage.run(lambda settings, stores: stores.insights.run_rollups())


# --- The lake ----------------------------------------------------------------------------------

@app.timer_trigger(arg_name="timer", schedule=lake_schedule(), use_monitor=True)
def export_lake(timer: func.TimerRequest) -> None:
    """Every few minutes (LAKE_SCHEDULE), with LAKE_URL set: the interactions and cases stored since
    the last run, merged into the Delta tables; pending erasures carried out. Without it: nothing."""
    from dci.lake import export

    storage.run(export.run)


# --- Privacy ------------------------------------------------------------------------------------

@app.route(route="contacts/{contact_id}/export", methods=["GET"])
def export_contact(req: func.HttpRequest) -> func.HttpResponse:
    """Everything stored about a contact (right of access)."""
    from dci import privacy

    return web.answer(lambda settings, stores: privacy.export_reply(
        req.route_params.get("contact_id", ""), settings, stores))


@app.route(route="contacts/{contact_id}", methods=["DELETE"])
def erase_contact(req: func.HttpRequest) -> func.HttpResponse:
    """Erase a contact's activity (right to erasure); idempotent, answers what was removed."""
    from dci import privacy

    return web.answer(lambda settings, stores: privacy.erase_reply(
        req.route_params.get("contact_id", ""), settings, stores))


@app.timer_trigger(arg_name="timer", schedule="0 30 3 * * *", use_monitor=True)
def retention(timer: func.TimerRequest) -> None:
    """Daily: drop the monthly interactions tables, and the insight facts, older than RETENTION_DAYS; with
    LAKE_URL, the lake's old days too, then compact its small files and vacuum the old ones."""
    from dci import retention as policy

    storage.run(lambda settings, stores: policy.run(settings, stores, datetime.now(timezone.utc)))


# --- Operations ---------------------------------------------------------------------------------

@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Liveness plus queue and table reachability: the overall status only (503 when storage is down)."""
    from dci import health as checks  # the storage SDKs load here, not on the ingest path

    return web.respond(checks.status())


@app.route(route="health/details", methods=["GET"], auth_level=READ_AUTH)
def health_details(req: func.HttpRequest) -> func.HttpResponse:
    """What each health check found, bad settings, telemetry, portals' last beacons: for report readers."""
    from dci import health as checks

    return web.respond(checks.details(req.headers))


def _now_ms() -> int:
    return ms_of(datetime.now(timezone.utc))


@app.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    """The OpenAPI 3.1 description of every route."""
    from dci import openapi  # the insights' modules load here, not on every cold start (collect's included)

    return web.json_response(openapi.document(), headers={"Cache-Control": "public, max-age=300"})
