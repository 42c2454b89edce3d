"""A local Application Insights ingestion endpoint: what the Azure Monitor exporter sends, decoded.

The exporter posts JSON arrays of telemetry envelopes (gzip or not) to `{IngestionEndpoint}/v2.1/track`;
this server answers as the service does (`itemsReceived`/`itemsAccepted`) and keeps the envelopes.
Live metrics calls get an empty 200.
"""

from __future__ import annotations

import json
from typing import Any

from tests.sink import PostSink


class Ingestion(PostSink):
    """The endpoint; `connection_string` points an app at it."""

    def __init__(self) -> None:
        self.envelopes: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        super().__init__()
        self.connection_string = (f"InstrumentationKey=00000000-0000-4000-8000-000000000000;"
                                  f"IngestionEndpoint={self.url}/;LiveEndpoint={self.url}/")

    def receive(self, path: str, data: bytes) -> bytes | None:
        if not path.startswith("/v2.1/track"):
            return b""  # live metrics
        items = json.loads(data)
        self.envelopes.extend(items)
        self.raw.append(data)
        return json.dumps({"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}).encode()

    def items(self, base_type: str) -> list[dict[str, Any]]:
        """The envelopes of one kind (RequestData, RemoteDependencyData, MetricData, MessageData …),
        each as {"name", "properties", "tags", …} of its baseData plus the envelope's tags."""
        with self._lock:
            return [{**envelope["data"]["baseData"], "tags": envelope.get("tags", {})}
                    for envelope in self.envelopes if envelope.get("data", {}).get("baseType") == base_type]

    def everything(self) -> str:
        with self._lock:
            return "\n".join(part.decode() for part in self.raw)
