"""What telemetry costs: cold start (import of function_app with its set-up), collect's time per
request with spans and metrics on, and the installed size of the telemetry packages.

Run: `make bench` (or `.venv/bin/python bench/telemetry_bench.py`). Needs no storage and no
network: the OTLP exporter sends to a receiver in this process (tests/otlp.py), the Azure Monitor
exporter to an ingestion endpoint in this process (tests/appinsights.py).
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from results import save  # noqa: E402  (bench/ is the script's own folder)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BASE_ENV = {**{k: v for k, v in os.environ.items()
               if k not in ("APPLICATIONINSIGHTS_CONNECTION_STRING", "OTEL_EXPORTER_OTLP_ENDPOINT")},
            "AzureWebJobsStorage": "UseDevelopmentStorage=true", "PORTAL_ISSUERS": "portal.example.com",
            "ALLOWED_ORIGINS": "https://portal.example.com", "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true"}
STARTS = 9
TELEMETRY_PACKAGES = ("azure-monitor-opentelemetry", "opentelemetry-api", "opentelemetry-sdk",
                      "opentelemetry-exporter-otlp-proto-http")  # as requirements.txt pins them

# Printed by a fresh interpreter: seconds to import function_app (telemetry.setup() included).
COLD = ("import time; t = time.perf_counter(); import function_app; from dci import telemetry; "
        "print(time.perf_counter() - t, telemetry.mode()); import os; os._exit(0)")
# Printed by a fresh interpreter: µs per collect request, fastest of 7 repeats of 500.
HOT = """
import os, sys, time
sys.path.insert(0, 'bench')
import function_app
from collect_bench import _bodies, _time
bodies = _bodies()[:500]
_time(function_app.collect, bodies[:100])
print(min(min(_time(function_app.collect, bodies)) for _ in range(7)) * 1e6)
os._exit(0)
"""


def _run(code: str, env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def _requirements(name: str, seen: set[str]) -> set[str]:
    """`name` and everything it requires, transitively (installed distributions, normalised names)."""
    key = re.sub(r"[-_.]+", "-", name).lower()
    if key in seen:
        return seen
    try:
        dist = metadata.distribution(key)
    except metadata.PackageNotFoundError:
        return seen
    seen.add(key)
    for requirement in dist.requires or []:
        if "extra ==" in requirement:
            continue
        _requirements(re.split(r"[ ;<>=!~\[(]", requirement, maxsplit=1)[0], seen)
    return seen


def _size_mb(names: set[str]) -> float:
    total = 0
    for name in names:
        for file in metadata.distribution(name).files or []:
            path = Path(str(file.locate()))
            if path.is_file():
                total += path.stat().st_size
    return round(total / 1e6, 1)


def package_size() -> dict[str, object]:
    """MB the telemetry packages add to the deployment: their closure minus what the app needs anyway."""
    others = set()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        name = line.split("#")[0].split("==")[0].split("[")[0].strip()
        if name and name not in TELEMETRY_PACKAGES:
            _requirements(name, others)
    added = set()
    for name in TELEMETRY_PACKAGES:
        _requirements(name, added)
    added -= others
    return {"telemetry_packages_mb": _size_mb(added), "telemetry_distributions": len(added),
            "app_without_telemetry_mb": _size_mb(others)}


def main() -> None:
    from tests.appinsights import Ingestion
    from tests.otlp import Receiver

    receiver, ingestion = Receiver(), Ingestion()
    modes = {
        "off": BASE_ENV,
        "otlp": {**BASE_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url},
        "azure-monitor": {**BASE_ENV, "APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion.connection_string},
    }
    cold: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(STARTS):  # interleaved, so every mode sees the same machine load
        for mode, env in modes.items():
            seconds, shown = _run(COLD, env).split()
            assert shown == mode, (mode, shown)
            cold[mode].append(float(seconds))
    medians = {mode: statistics.median(values) * 1000 for mode, values in cold.items()}
    hot = {mode: float(_run(HOT, env)) for mode, env in modes.items()}
    result = {
        "python": sys.version.split()[0],
        "cold_starts_per_mode": STARTS,
        "import_function_app_ms_median": {mode: round(ms, 1) for mode, ms in medians.items()},
        "telemetry_adds_ms": {mode: round(medians[mode] - medians["off"], 1) for mode in ("otlp", "azure-monitor")},
        "collect_us_per_request": {mode: round(us, 1) for mode, us in hot.items()},
        **package_size(),
    }
    receiver.close()
    ingestion.close()
    save("telemetry", result)


if __name__ == "__main__":
    main()
