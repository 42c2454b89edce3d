"""Where benchmarks leave their figures: printed, and kept in bench/results/<name>.json."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def save(name: str, result: dict) -> None:
    """Print `result` and keep it as bench/results/<name>.json (git-ignored)."""
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(result, indent=2)
    (RESULTS / f"{name}.json").write_text(text)
    print(text)


class Counter:
    """Counts storage requests: pass it as an azure-core `raw_request_hook`."""

    def __init__(self) -> None:
        self.requests = 0

    def __call__(self, request: object) -> None:
        self.requests += 1


@contextmanager
def azurite_tables() -> Iterator[tuple[str, Counter, Any]]:
    """An Azurite of the bench's own (free ports, a temporary data folder), stopped after: its
    connection string, a request Counter, and a TableServiceClient that counts into it."""
    from azure.data.tables import TableServiceClient

    from tests import azurite

    ports = tuple(azurite.free_ports(3))
    with tempfile.TemporaryDirectory() as data:
        process = azurite.start(ports, Path(data))  # type: ignore[arg-type]
        try:
            connection = azurite.connection_string(*ports)
            counter = Counter()
            yield connection, counter, TableServiceClient.from_connection_string(connection, raw_request_hook=counter)
        finally:
            azurite.stop(process)
