"""Where benchmarks leave their figures: printed, and kept in bench/results/<name>.json."""

from __future__ import annotations

import json
from pathlib import Path

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
