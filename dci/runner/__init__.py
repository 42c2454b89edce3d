"""The local runner: `function_app.app` served without Core Tools, against Azurite or Azure.

Built from `app.get_functions()`, so it serves exactly what the host would index: HTTP routes,
queue triggers (host.json queue settings, poison queues), timers, and queue output bindings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

import azure.functions as func

from dci.runner.config import HostConfig
from dci.runner.http import HttpFrontEnd, build_routes
from dci.runner.index import IndexedFunction, index
from dci.runner.invoke import Invoker, QueueSender, connection_target
from dci.runner.queues import QueueListener
from dci.runner.timers import TimerScheduler
from dci.storage.clients import poison_queue

if TYPE_CHECKING:
    from dci.runner.portal import DemoPortal
    from dci.storage.clients import StorageTarget

logger = logging.getLogger(__name__)


class Runner:
    """Owns the HTTP server and the trigger threads of one app."""

    def __init__(self, app: func.FunctionApp, host: HostConfig, environ: Mapping[str, str],
                 address: tuple[str, int] = ("127.0.0.1", 7071), portal: bool | DemoPortal = False) -> None:
        self.functions = index(app, environ)
        self.host = host
        self._environ = environ
        self._sender = QueueSender(environ, host.queues)
        self.invoker = Invoker(self._sender)
        self.portal: DemoPortal | None = None
        if portal is True:
            from dci.runner.portal import DemoPortal

            self.portal = DemoPortal()
        elif portal:
            self.portal = portal
        self.listeners = [QueueListener(f, self._connection(f.trigger.props["connection"]), host.queues, self.invoker)
                          for f in self._of("queueTrigger")]  # (before the port is taken: a bad setting stops here)
        self.server = HttpFrontEnd(address, build_routes(self.functions, host.route_prefix), self.invoker,
                                   self.portal.handle if self.portal else None)
        self.timers = [TimerScheduler(f, self.invoker) for f in self._of("timerTrigger")]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """Base URL of the HTTP functions."""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/{self.host.route_prefix}".rstrip("/")

    def _of(self, trigger: str) -> list[IndexedFunction]:
        return [f for f in self.functions if f.trigger.type == trigger]

    def _connection(self, setting: str) -> StorageTarget:
        return connection_target(setting, self._environ)

    def create_queues(self) -> list[str]:
        """Create every queue a trigger or output binding uses, plus the poison queues."""
        from azure.core.exceptions import ResourceExistsError

        created = []
        for function in self.functions:
            bindings = list(function.queue_outputs)
            if function.trigger.type == "queueTrigger":
                bindings.append(function.trigger)
            for binding in bindings:
                names = [binding.props["queueName"]]
                if binding.type == "queueTrigger":
                    names.append(poison_queue(binding.props["queueName"]))
                for name in names:
                    try:
                        self._sender.client(binding.props["connection"], name).create_queue()
                        created.append(name)
                    except ResourceExistsError:
                        pass
        return created

    def start(self) -> None:
        """Create queues, then serve HTTP and run triggers in background threads."""
        for name in self.create_queues():
            logger.info("created queue %s", name)
        self._spawn("http", self.server.serve_forever)
        for listener in self.listeners:
            self._spawn(f"queue:{listener.queue}", listener.run, self._stop)
        for timer in self.timers:
            self._spawn(f"timer:{timer.function.name}", timer.run, self._stop)
        for function in self.functions:
            logger.info("%s: %s %s", function.name, function.trigger.type, _describe(function, self.url))

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting work, let running invocations finish, and return."""
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()
        for thread in self._threads:
            thread.join(timeout)

    def _spawn(self, name: str, target, *args) -> None:  # type: ignore[no-untyped-def]
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)


def _describe(function: IndexedFunction, base: str) -> str:
    props = function.trigger.props
    if function.trigger.type == "httpTrigger":
        methods = ",".join(getattr(m, "value", str(m)) for m in props.get("methods") or ["*"])
        return f"[{methods}] {base}/{props.get('route') or function.name}"
    if function.trigger.type == "queueTrigger":
        return f"queue {props['queueName']}"
    return f"schedule {props['schedule']}"
