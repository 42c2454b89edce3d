"""The OpenTelemetry SDK behind `dci.telemetry`; imported only when telemetry is on.

Application Insights goes through the Azure Monitor distro (`configure_azure_monitor`), with
only the app's own spans: the distro's library instrumentations are off, because the URLs of
Table storage and Dataverse calls carry contact and visitor ids. OTLP goes through the SDK's
OTLP/HTTP exporters, which read the standard `OTEL_EXPORTER_OTLP_*` settings themselves.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from opentelemetry import context, metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from dci.telemetry import INSTRUMENTS, LOGGER_NAME, SERVICE_NAME, TRACE_KEYS, UNINSTRUMENTED, Attributes, _Live

logger = logging.getLogger(__name__)

SCOPE = "dci"
# Seconds, 5 ms to an hour: link lag and case latency run to minutes, rollups to milliseconds.
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
_propagator = TraceContextTextMapPropagator()


def start(*, azure: bool, otlp: bool, environ: Mapping[str, str]) -> Live:
    """Configure the exporters and return the live telemetry."""
    resource = _resource(environ)
    views = [View(instrument_name=name, aggregation=ExplicitBucketHistogramAggregation(SECONDS_BUCKETS))
             for name, (kind, unit, _) in INSTRUMENTS.items() if kind == "histogram" and unit == "s"]
    extra = _otlp_pipeline() if otlp else {}
    if _configured_already():
        # The Python worker set up the distro before importing the app (PYTHON_APPLICATIONINSIGHTS_
        # ENABLE_TELEMETRY, or an older worker's reading of PYTHON_ENABLE_OPENTELEMETRY): use it, once.
        logger.warning("the Python worker configured OpenTelemetry itself, with instrumentations that record "
                       "Table storage and Dataverse URLs (they carry contact ids); unset "
                       "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY (PYTHON_ENABLE_OPENTELEMETRY=true is enough)")
    elif azure:
        from azure.monitor.opentelemetry import configure_azure_monitor

        # Sampling by trace id (the same decision for every span of a trace, across the queues), all
        # of them unless OTEL_TRACES_SAMPLER says otherwise; the distro's default rate limit decides
        # afresh after each queue hop and leaves traces with holes.
        sampling = {} if environ.get("OTEL_TRACES_SAMPLER") else {"sampling_ratio": 1.0}
        configure_azure_monitor(
            **sampling, logger_name=LOGGER_NAME, resource=resource, views=views,
            instrumentation_options={name: {"enabled": False} for name in UNINSTRUMENTED},
            span_processors=extra.get("spans", []), metric_readers=extra.get("metrics", []),
            log_record_processors=extra.get("logs", []))
    else:
        _start_otlp(resource, views, extra)
    return Live("+".join(name for name, used in (("azure-monitor", azure), ("otlp", otlp)) if used))


def _configured_already() -> bool:
    from opentelemetry.sdk.trace import TracerProvider

    return isinstance(trace.get_tracer_provider(), TracerProvider)


def _resource(environ: Mapping[str, str]) -> Resource:
    """OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES as set; in Azure, the distro names the app."""
    if environ.get("OTEL_SERVICE_NAME") or environ.get("WEBSITE_SITE_NAME"):
        return Resource.create()
    return Resource.create({"service.name": SERVICE_NAME})


def _otlp_pipeline() -> dict[str, list[Any]]:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    return {"spans": [BatchSpanProcessor(OTLPSpanExporter())],
            "metrics": [PeriodicExportingMetricReader(OTLPMetricExporter())],
            "logs": [BatchLogRecordProcessor(OTLPLogExporter())]}


def _start_otlp(resource: Resource, views: list[View], pipeline: dict[str, list[Any]]) -> None:
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    tracer_provider = TracerProvider(resource=resource)
    for processor in pipeline["spans"]:
        tracer_provider.add_span_processor(processor)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=pipeline["metrics"], views=views))
    logger_provider = LoggerProvider(resource=resource)
    for processor in pipeline["logs"]:
        logger_provider.add_log_record_processor(processor)
    set_logger_provider(logger_provider)
    logging.getLogger(LOGGER_NAME).addHandler(LoggingHandler(logger_provider=logger_provider))


class Live(_Live):
    """Spans, trace context and instruments on the global providers."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self._tracer = trace.get_tracer(SCOPE)
        self._meter = metrics.get_meter(SCOPE)
        self._instruments: dict[str, Any] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def span(self, name: str, attributes: Attributes, parent: Mapping[str, Any] | None,
             consumer: bool) -> Iterator[Any]:
        links = []
        ctx = None
        if parent is not None:
            ctx = _propagator.extract({k: v for k in TRACE_KEYS if isinstance(v := parent.get(k), str)})
            invocation = trace.get_current_span().get_span_context()
            if invocation.is_valid:  # the host's span of this invocation, when the worker passes it
                links.append(Link(invocation))
        kind = SpanKind.CONSUMER if consumer else SpanKind.INTERNAL
        with self._tracer.start_as_current_span(name, context=ctx, kind=kind, attributes=dict(attributes),
                                                links=links, record_exception=False,
                                                set_status_on_exception=False) as otel_span:
            try:
                yield otel_span
            except BaseException as error:
                otel_span.set_attribute("error.type", type(error).__qualname__)
                otel_span.set_status(Status(StatusCode.ERROR, type(error).__qualname__))
                raise

    def annotate(self, attributes: Attributes) -> None:
        trace.get_current_span().set_attributes(dict(attributes))

    def carrier(self) -> dict[str, str]:
        fields: dict[str, str] = {}
        _propagator.inject(fields, context.get_current())
        return fields

    def instrument(self, name: str) -> Any:
        found = self._instruments.get(name)
        if found is None:
            kind, unit, description = INSTRUMENTS[name]
            make = {"counter": self._meter.create_counter, "histogram": self._meter.create_histogram}[kind]
            with self._lock:
                found = self._instruments.setdefault(name, make(name, unit=unit, description=description))
        return found

    def observe(self, name: str, read: Callable[[], Iterable[tuple[float, Attributes]]]) -> None:
        with self._lock:
            if name in self._instruments:
                return
            kind, unit, description = INSTRUMENTS[name]
            assert kind == "gauge", name

            def callback(options: CallbackOptions) -> Iterable[Observation]:
                try:
                    return [Observation(value, dict(attributes)) for value, attributes in read()]
                except Exception as error:  # noqa: BLE001 - a gauge that cannot be read is skipped, not fatal
                    logger.warning("gauge %s not read: %s", name, type(error).__name__)
                    return []

            self._instruments[name] = self._meter.create_observable_gauge(
                name, callbacks=[callback], unit=unit, description=description)
