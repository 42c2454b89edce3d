"""Telemetry: the app's OpenTelemetry traces, metrics and logs — or nothing at all.

`setup()` runs once, when `function_app` is imported, and picks the exporters from the environment:

* `APPLICATIONINSIGHTS_CONNECTION_STRING` → the Azure Monitor distro (with
  `APPLICATIONINSIGHTS_AUTHENTICATION_STRING`, Entra sign-in with the managed identity);
* `OTEL_EXPORTER_OTLP_ENDPOINT` → OTLP/HTTP exporters, for any OpenTelemetry collector;
* both → both; neither → nothing is imported, and every call below returns at once.

The rest of the app speaks only to the functions below. Attributes are counts, kinds, outcomes and
durations: never a visitor, session or contact id, a search term, a URL or a token.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

logger = logging.getLogger(__name__)

SERVICE_NAME = "portal-insights"
LOGGER_NAME = "dci"  # the app's own loggers; their `extra` fields become log attributes
TRACE_KEYS = ("traceparent", "tracestate")  # W3C trace context, carried inside queue messages
# Libraries the distro would instrument on its own: their spans carry URLs with contact ids in them.
UNINSTRUMENTED = ("azure_sdk", "django", "fastapi", "flask", "httpx", "psycopg2", "requests", "urllib", "urllib3")

# name: (kind, unit, what it measures). docs/OPERATIONS.md lists the same names with their KQL.
INSTRUMENTS: dict[str, tuple[str, str, str]] = {
    "dci.events.accepted": ("counter", "{event}", "Events accepted by collect, by dci.event.type"),
    "dci.events.rejected": ("counter", "{event}", "Events refused inside an accepted batch, by dci.reason"),
    "dci.batches.rejected": ("counter", "{batch}", "Batches refused whole by collect, by dci.reason"),
    "dci.batches.bots": ("counter", "{batch}", "Batches accepted from crawlers and dropped"),
    "dci.link.lag": ("histogram", "s", "Now minus the newest event time, when a batch is stored"),
    "dci.messages.failed": ("counter", "{message}", "Queue messages whose function raised, by queue and error.type"),
    "dci.queue.poison.depth": ("gauge", "{message}", "Messages waiting in each poison queue"),
    "dci.case.assembly.latency": ("histogram", "s", "Case created to its first timeline (and note) written"),
    "dci.dataverse.throttled": ("counter", "{response}", "Dataverse answers 429 (service protection limits)"),
    "dci.dataverse.retry.wait": ("histogram", "s", "Time slept before retrying a Dataverse call"),
    "dci.insights.rollup.duration": ("histogram", "s", "One run of the insight day rollups"),
    "dci.lake.export.lag": ("histogram", "s", "At each lake export: how long its oldest outbox entry has waited"),
    "dci.lake.rows": ("counter", "{row}", "Lake rows merged, by dci.lake.table and dci.lake.change"),
    "dci.lake.set_aside": ("counter", "{entry}", "Lake outbox entries set aside: the lake refused their rows alone"),
}

Attributes = Mapping[str, "str | bool | int | float"]


class Span:
    """The span a `with span(...)` block runs in; `set` adds attributes (nothing when off)."""

    def __init__(self, otel_span: Any = None) -> None:
        self._span = otel_span

    def set(self, attributes: Attributes) -> None:
        """Add attributes to the span."""
        if self._span is not None:
            self._span.set_attributes(dict(attributes))


_OFF = Span()
_live: _Live | None = None
_setup_lock = threading.Lock()


def setup(environ: Mapping[str, str] = os.environ) -> str:
    """Configure the exporters the environment asks for, once per process; returns the mode
    ("off", "azure-monitor", "otlp" or "azure-monitor+otlp")."""
    global _live
    with _setup_lock:
        if _live is not None:
            return _live.mode
        azure = bool(environ.get("APPLICATIONINSIGHTS_CONNECTION_STRING", "").strip())
        otlp = bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip())
        if not (azure or otlp):
            return "off"
        from dci import otel  # the SDKs load only here

        _live = otel.start(azure=azure, otlp=otlp, environ=environ)
        return _live.mode


def mode() -> str:
    """Which exporters this process uses ("off" when none)."""
    return "off" if _live is None else _live.mode


def on() -> bool:
    """True when telemetry is exported (to skip work whose only use is a metric)."""
    return _live is not None


@contextlib.contextmanager
def span(name: str, attributes: Attributes | None = None, *, parent: Mapping[str, Any] | None = None,
         consumer: bool = False) -> Iterator[Span]:
    """Run a block in a span. `parent`: a queue message carrying a trace context (`carrier()`),
    which this span continues; `consumer`: the span processes such a message. An exception marks
    the span failed with its type only (its text may quote stored data)."""
    if _live is None:
        yield _OFF
        return
    with _live.span(name, attributes or {}, parent, consumer) as otel_span:
        yield Span(otel_span)


def annotate(attributes: Attributes) -> None:
    """Add attributes to the current span."""
    if _live is not None:
        _live.annotate(attributes)


def carrier() -> dict[str, str]:
    """The current trace context as queue-message fields (`traceparent`, `tracestate`); {} when off."""
    return {} if _live is None else _live.carrier()


def without_trace(message: dict[str, Any]) -> dict[str, Any]:
    """The message without its trace context fields (they are not data)."""
    return {k: v for k, v in message.items() if k not in TRACE_KEYS}


def count(name: str, value: int = 1, attributes: Attributes | None = None) -> None:
    """Add to a counter of INSTRUMENTS."""
    if _live is not None:
        _live.instrument(name).add(value, attributes)


def record(name: str, value: float, attributes: Attributes | None = None) -> None:
    """Record a value in a histogram of INSTRUMENTS."""
    if _live is not None:
        _live.instrument(name).record(value, attributes)


def observe(name: str, read: Callable[[], Iterable[tuple[float, Attributes]]]) -> None:
    """Register a gauge of INSTRUMENTS, read (value, attributes) pairs at each export; once per name."""
    if _live is not None:
        _live.observe(name, read)


class _Live:
    """What `setup` started; made by `dci.otel`, which holds every SDK import."""

    mode: str

    def span(self, name: str, attributes: Attributes, parent: Mapping[str, Any] | None,
             consumer: bool) -> contextlib.AbstractContextManager[Any]: ...

    def annotate(self, attributes: Attributes) -> None: ...

    def carrier(self) -> dict[str, str]: ...

    def instrument(self, name: str) -> Any: ...

    def observe(self, name: str, read: Callable[[], Iterable[tuple[float, Attributes]]]) -> None: ...
