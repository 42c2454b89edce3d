"""GET /api/health: the app is up and can reach the queues and tables it depends on."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from dci.access import closed_reason
from dci.problems import Problem
from dci.replies import Reply, json_reply, problem_reply
from dci.settings import SettingsError, get_settings
from dci.storage import clients
from dci.storage.clients import StorageTarget

logger = logging.getLogger(__name__)

# Health answers fast or not at all: no SDK retries, short socket timeouts.
_FAST = {"retry_total": 0, "connection_timeout": 3, "read_timeout": 3}


def check(connection: StorageTarget | str | None = None) -> Reply:
    """200 with each check's result, or 503 problem+json naming what is wrong.

    Without `connection`, the settings are checked first and give the storage connection. Report
    routes closed by their settings (dci/access.py) make the status `degraded`, with the reason.
    """
    closed = None
    if connection is None:
        try:
            settings = get_settings()
            connection, closed = settings.storage, closed_reason(settings)
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
        return json_reply(200, {"status": "degraded" if closed else "ok", "checks": checks},
                          {"Cache-Control": "no-store"})
    logger.warning("health: storage unreachable (%s)", failed, extra={"checks": checks})
    problem = Problem(503, f"Storage is unreachable: {failed}.", "storage-unavailable", extensions={"checks": checks})
    return problem_reply(problem, {"Cache-Control": "no-store", "Retry-After": "30"})


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

