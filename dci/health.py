"""GET /api/health: the app is up and can reach the queues and tables it depends on.

Two routes. `/api/health` is anonymous (platform health checks, availability tests, uptime
monitors) and answers the overall status only: `{"status": "ok"}` (or `"degraded"`) with 200, or a
503 problem that says where to look and nothing more. What each check found, which settings are
bad, the telemetry mode and each portal's last beacon are details an attacker could use; they are
at `/api/health/details`, which takes the report routes' access (dci/access.py: a function key, or
App Service authentication with `REPORTS_AUTH=app-service`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from dci import telemetry
from dci.access import check_report_access, closed_reason
from dci.clock import HOUR_MS, epoch_ms, ms_of
from dci.problems import Problem
from dci.replies import Reply, json_reply, problem_reply
from dci.settings import SettingsError, get_settings, reports_auth
from dci.storage import clients
from dci.storage.clients import StorageTarget
from dci.storage.warnings import TIMELINE_ACTIVITIES

logger = logging.getLogger(__name__)

# Health answers fast or not at all: no SDK retries, short socket timeouts.
_FAST = {"retry_total": 0, "connection_timeout": 3, "read_timeout": 3}


UNHEALTHY = ("Not healthy: what is wrong is at /api/health/details (with a function key, or signed in "
             "when REPORTS_AUTH is app-service) and in the app's log.")


def status(connection: StorageTarget | str | None = None) -> Reply:
    """GET /api/health: the overall status alone — 200 `{"status": "ok" | "degraded"}`, or 503."""
    return overall(check(connection, beacons=False))


def overall(reply: Reply) -> Reply:
    """`reply` (from `check`) without its details."""
    if reply.status == 200:
        return json_reply(200, {"status": json.loads(reply.body)["status"]}, {"Cache-Control": "no-store"})
    retry = {"Retry-After": reply.headers["Retry-After"]} if "Retry-After" in reply.headers else {}
    return problem_reply(Problem(503, UNHEALTHY, "unhealthy"), {"Cache-Control": "no-store", **retry})


def details(headers: Mapping[str, str]) -> Reply:
    """GET /api/health/details: `check`'s whole answer, to a caller who may read the reports.

    With bad settings the access rule cannot be read from them: the bad settings are named when
    the host checked a function key (`REPORTS_AUTH` is not app-service), never otherwise.
    """
    try:
        settings = get_settings()
    except SettingsError:
        if reports_auth() == "app-service":
            problem = Problem(503, "App settings are missing or invalid; the app's log names them.", "misconfigured")
            return problem_reply(problem, {"Cache-Control": "no-store", "Retry-After": "60"})
        return check()
    try:
        check_report_access(settings, headers)
    except Problem as problem:
        return problem_reply(problem, {"Cache-Control": "no-store"})
    return check()


def check(connection: StorageTarget | str | None = None, *, beacons: bool = True) -> Reply:
    """200 with each check's result, or 503 problem+json naming what is wrong (the details).

    Without `connection`, the settings are checked first and give the storage connection. Report
    routes closed by their settings (dci/access.py) make the status `degraded`, with the reason.
    `beacons=False` leaves out the portals' last beacons and the lake outbox's counts (reads fewer).
    """
    closed, portals, lake, moot = None, (), False, set()
    if connection is None:
        try:
            settings = get_settings()
            connection, closed, portals = settings.storage, closed_reason(settings), settings.portal_issuers
            lake = settings.lake_url is not None
            moot = set() if settings.visits_enabled else {TIMELINE_ACTIVITIES}  # (a warning from before `off`)
        except SettingsError as error:
            checks = {"settings": "invalid: " + ", ".join(error.names)}
            problem = Problem(503, "App settings are missing or invalid: " + ", ".join(error.names) + ".",
                              "misconfigured", extensions={"checks": checks})
            return problem_reply(problem, {"Cache-Control": "no-store", "Retry-After": "60"})
    with ThreadPoolExecutor(max_workers=2) as pool:
        queue = pool.submit(_check_queue, connection)
        table = pool.submit(_check_table, connection)
        checks = {"queue": queue.result(), "table": table.result()}
    failed = ", ".join(name for name, result in checks.items() if result != "ok")
    if closed:
        checks["reports"] = "closed: " + closed
    if not failed:
        warnings = {name: text for name, text in standing_warnings(connection).items() if name not in moot}
        document = {"status": "degraded" if closed or warnings else "ok", "checks": checks,
                    "telemetry": telemetry.mode(), **({"warnings": warnings} if warnings else {})}
        if portals and beacons:
            document["portals"] = beacon_report(connection, portals, datetime.now(timezone.utc))
        if lake and beacons:
            document["lake"] = lake_report(connection)
        return json_reply(200, document, {"Cache-Control": "no-store"})
    logger.warning("health: storage unreachable (%s)", failed,
                   extra={"queue_check": checks["queue"], "table_check": checks["table"]})
    problem = Problem(503, f"Storage is unreachable: {failed}.", "storage-unavailable", extensions={"checks": checks})
    return problem_reply(problem, {"Cache-Control": "no-store", "Retry-After": "30"})


QUIET_HOURS = 24
WHY_QUIET = ("No beacon from this portal in the last 24 hours. Check, in this order: the snippet is on the "
             "site's pages; the site's Content Security Policy lets it load (sites created after 10 November "
             "2025 block it until script-src allows this app: docs/INSTALL-POWER-PAGES.md section 4); "
             "ALLOWED_ORIGINS holds the site's origin (the browser console then shows a 403 on /api/collect); "
             "with data-consent=required or data-respect-dnt=true, visitors who decline send nothing.")


def beacon_report(connection: StorageTarget | str, portals: tuple[str, ...], now: datetime) -> dict[str, object]:
    """For each configured portal: when its beacons last arrived, and what to check when they did not."""
    from dci.storage.interactions import InteractionStore

    try:
        seen = InteractionStore(clients.table_service(connection, **_FAST)).beacons()
    except Exception as error:  # noqa: BLE001 - the install check is advice; it never fails health
        return {"error": _reason(error)}
    report: dict[str, object] = {}
    for portal in portals:
        last = seen.get(portal)
        quiet = last is None or ms_of(now) - epoch_ms(last) > QUIET_HOURS * HOUR_MS
        report[portal] = {"last_beacon": last, **({"check": WHY_QUIET} if quiet else {})}
    return report


def standing_warnings(connection: StorageTarget | str) -> dict[str, str]:
    """What the functions found wrong and only an operator can fix (e.g. `timeline_activities`: the
    portal visits' table not set up in Dataverse), by name; they make the status `degraded`."""
    from dci.storage.warnings import Warnings

    try:
        return Warnings(clients.table_service(connection, **_FAST)).all()
    except Exception as error:  # noqa: BLE001 - advice, as the install check; it never fails health
        return {"warnings": f"could not be read: {_reason(error)}"}


def lake_report(connection: StorageTarget | str) -> dict[str, object]:
    """With LAKE_URL set: how many outbox entries wait, up to 1,000, and how many the lake refused
    and were set aside (`python -m dci lake dead` lists them with the reason)."""
    from dci.storage.outbox import LakeOutbox

    try:
        outbox = LakeOutbox(clients.table_service(connection, **_FAST))
        report: dict[str, object] = {"pending": len(outbox.pending(1000)), "set_aside": len(outbox.dead())}
    except Exception as error:  # noqa: BLE001 - advice, as the install check; it never fails health
        return {"error": _reason(error)}
    if report["set_aside"]:
        report["check"] = "The lake refused some entries' rows: `python -m dci lake dead` says why; fix, then --retry."
    return report


def _check_queue(connection: StorageTarget | str) -> str:
    try:
        service = clients.queue_service(connection, **_FAST)
        next(iter(service.list_queues(results_per_page=1).by_page()), None)
        return "ok"
    except Exception as error:  # noqa: BLE001 - any failure means unreachable; the reason is reported
        return _reason(error)


def _check_table(connection: StorageTarget | str) -> str:
    try:
        service = clients.table_service(connection, **_FAST)
        next(iter(service.list_tables(results_per_page=1).by_page()), None)
        return "ok"
    except Exception as error:  # noqa: BLE001
        return _reason(error)


def _reason(error: Exception) -> str:
    return f"unreachable: {type(error).__name__}"

