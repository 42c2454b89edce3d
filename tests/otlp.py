"""A local OTLP/HTTP receiver: what an OpenTelemetry collector hears, decoded for assertions.

It speaks the protocol's protobuf encoding on `/v1/traces`, `/v1/metrics` and `/v1/logs` (gzip or
not), answers 200 with the empty export response, and keeps every request it decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.sink import PostSink

SIGNALS = {
    "/v1/traces": (ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/metrics": (ExportMetricsServiceRequest, ExportMetricsServiceResponse),
    "/v1/logs": (ExportLogsServiceRequest, ExportLogsServiceResponse),
}


def value_of(value: AnyValue) -> Any:
    """An OTLP AnyValue as a Python value."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def attributes_of(pairs: Any) -> dict[str, Any]:
    return {kv.key: value_of(kv.value) for kv in pairs}


@dataclass(frozen=True)
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    attributes: dict[str, Any]
    status: int


@dataclass(frozen=True)
class Point:
    """One data point: a sum's or gauge's value, or a histogram's count and sum."""

    metric: str
    attributes: dict[str, Any]
    value: float
    count: int = 0


class Receiver(PostSink):
    """The receiver; `url` is what OTEL_EXPORTER_OTLP_ENDPOINT takes."""

    content_type = "application/x-protobuf"

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any]] = []
        super().__init__()

    def receive(self, path: str, data: bytes) -> bytes | None:
        request_type, response_type = SIGNALS.get(path, (None, None))
        if request_type is None or response_type is None:
            return None
        self.requests.append((path, request_type.FromString(data)))
        return response_type().SerializeToString()

    def _of(self, path: str) -> list[Any]:
        with self._lock:
            return [request for where, request in self.requests if where == path]

    def spans(self) -> list[Span]:
        return [Span(span.name, span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(), span.kind,
                     attributes_of(span.attributes), span.status.code)
                for request in self._of("/v1/traces") for resource in request.resource_spans
                for scope in resource.scope_spans for span in scope.spans]

    def points(self, metric: str) -> list[Point]:
        """Every data point received for `metric` (cumulative: the last one per attribute set is the total)."""
        found = []
        for request in self._of("/v1/metrics"):
            for resource in request.resource_metrics:
                for scope in resource.scope_metrics:
                    for m in scope.metrics:
                        if m.name != metric:
                            continue
                        kind = m.WhichOneof("data")
                        for p in getattr(m, kind).data_points:
                            if kind == "histogram":
                                found.append(Point(metric, attributes_of(p.attributes), p.sum, p.count))
                            else:
                                value = p.as_int if p.WhichOneof("value") == "as_int" else p.as_double
                                found.append(Point(metric, attributes_of(p.attributes), value))
        return found

    def logs(self) -> list[tuple[str, dict[str, Any]]]:
        return [(value_of(record.body), attributes_of(record.attributes))
                for request in self._of("/v1/logs") for resource in request.resource_logs
                for scope in resource.scope_logs for record in scope.log_records]

    def resources(self) -> list[dict[str, Any]]:
        return [attributes_of(resource.resource.attributes)
                for request in self._of("/v1/traces") for resource in request.resource_spans]

    def everything(self) -> str:
        """All that arrived, as protobuf text: for checks that something never left the app."""
        with self._lock:
            return "\n".join(str(request) for _, request in self.requests)
