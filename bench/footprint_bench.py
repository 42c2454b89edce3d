"""A worker's cold start and memory: what the first request waits for, and what a long-lived worker holds.

Run: `make bench` (or `.venv/bin/python bench/footprint_bench.py`). Starts its own Azurite for the
linker part.

* Cold start, in fresh interpreters (9 runs, median): importing function_app, then answering the
  first collect (the function as the host finds it, a real `func.HttpRequest`); which modules the
  import loaded that only some functions need, and what the first collect loaded after it.
* Memory of one process (VmRSS and its peak VmHWM, from /proc): after the import, after 1,000
  collect requests (warm), every 2,000 of 10,000 more — every request a new visitor, batch and
  User-Agent, so the per-process memos and caches fill and turn over — then every 200 of 1,000
  linker messages written to Azurite with their insight facts. The benchmark's own data (11,000
  bodies, 2.5 KB each) is made before the first collect sample, and sampled on its own.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from results import azurite_tables, save  # noqa: E402  (bench/ is the script's own folder)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AzureWebJobsStorage", "UseDevelopmentStorage=true")
os.environ.setdefault("PORTAL_ISSUERS", "portal.example.com")
os.environ.setdefault("ALLOWED_ORIGINS", "https://portal.example.com")

RUNS = 9
GROUPS = {  # packages, and the functions that need them
    "HTML reports (jinja2)": ("jinja2",),
    "Dataverse (requests, azure-identity)": ("requests", "azure.identity", "msal", "urllib3"),
    "storage SDKs": ("azure.data.tables", "azure.storage.queue", "azure.storage.blob"),
    "lake (deltalake, arro3)": ("deltalake", "arro3", "pyarrow"),
    "portal tokens (PyJWT, cryptography)": ("jwt", "cryptography"),
    "bot check (crawlerdetect, RE2)": ("crawlerdetect", "re2"),
    "telemetry (OpenTelemetry)": ("opentelemetry", "azure.monitor"),
    "OpenAPI and insights views": ("dci.openapi", "dci.views", "dci.insights", "dci.reports"),
}

COLD = r"""
import json, sys, time
started = time.perf_counter()
before = set(sys.modules)
import function_app
imported = time.perf_counter()
after_import = set(sys.modules)
sys.path.insert(0, "bench")
import azure.functions as func
from collect_bench import FIXED_UA, headers, realistic_batches
from dci.runner.invoke import Out
body = realistic_batches(1)[0]
request = func.HttpRequest("POST", "https://pi-func.azurewebsites.net/api/collect",
                           headers=headers(FIXED_UA, len(body)), body=body)
collect = next(f for f in function_app.app.get_functions() if f.get_function_name() == "collect").get_user_function()
bench_modules = set(sys.modules)
ready = time.perf_counter()
response = collect(request, Out())
answered = time.perf_counter()
assert response.status_code == 202, response.get_body()
print(json.dumps({"import_ms": (imported - started) * 1e3, "first_collect_ms": (answered - ready) * 1e3,
                  "by_import": sorted(after_import - before),
                  "by_first_collect": sorted(set(sys.modules) - bench_modules)}))
"""


def cold_start() -> dict[str, Any]:
    runs = [json.loads(subprocess.run([sys.executable, "-c", COLD], cwd=ROOT, capture_output=True, text=True,
                                      check=True, env={**os.environ}).stdout) for _ in range(RUNS)]
    by_import, by_first = runs[0]["by_import"], runs[0]["by_first_collect"]

    def loaded(names: list[str], prefixes: tuple[str, ...]) -> bool:
        return any(name == p or name.startswith(p + ".") for name in names for p in prefixes)

    return {
        "import_function_app_ms_median": round(statistics.median(r["import_ms"] for r in runs), 1),
        "first_collect_ms_median": round(statistics.median(r["first_collect_ms"] for r in runs), 1),
        "import_and_first_collect_ms_median": round(statistics.median(r["import_ms"] + r["first_collect_ms"]
                                                                      for r in runs), 1),
        "runs": RUNS,
        "modules_loaded_by_import": len(by_import),
        "modules_loaded_by_first_collect": len(by_first),
        "loaded_at_import": {group: loaded(by_import, prefixes) for group, prefixes in GROUPS.items()},
        "loaded_by_first_collect": {group: loaded(by_first, prefixes) for group, prefixes in GROUPS.items()},
    }


def rss() -> dict[str, int]:
    """This process's resident set and its peak, in KiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {"rss_kib": int(fields["VmRSS"].split()[0]), "peak_kib": int(fields["VmHWM"].split()[0])}


def memory() -> dict[str, Any]:
    from collect_bench import browser_uas, collect_function, realistic_batches, requests

    import function_app  # noqa: F401  (what a worker loads first)
    from dci.linker import link
    from dci.runner.invoke import Out
    from dci.storage.insights import InsightStore
    from dci.storage.interactions import InteractionStore

    samples: list[dict[str, Any]] = [{"after": "import function_app", **rss()}]
    collect = collect_function()
    rng = random.Random(31)
    bodies = realistic_batches(11_000, seed=31)
    agents = browser_uas(11_000, rng)
    messages: list[str] = []
    samples.append({"after": "the benchmark's own 11,000 bodies and User-Agents made", **rss()})

    class Keep(Out):  # the queue output: keep a sample of the messages for the linker part
        def set(self, value: Any) -> None:
            if len(messages) < 1000:
                messages.append(value)

    for start in range(0, 11_000, 1000):
        for req in requests(bodies[start:start + 1000], agents[start:start + 1000]):
            collect(req, Keep() if start >= 1000 else Out())
        if start == 0 or (start + 1000) % 2000 == 1000:
            samples.append({"after": f"{start + 1000} collect requests", **rss()})
    with azurite_tables() as (_, _, service):
        store, insights = InteractionStore(service), InsightStore(service, follow_days=7)
        for n, message in enumerate(messages, 1):
            link(store, message.encode(), insights=insights)
            if n % 200 == 0:
                samples.append({"after": f"{n} linker messages", **rss()})
    collected = [s["rss_kib"] for s in samples if s["after"].endswith("collect requests")]
    linked = [s["rss_kib"] for s in samples if s["after"].endswith("linker messages")]
    return {"samples": samples, "collect_growth_after_first_1000_kib": max(collected) - collected[0],
            "linker_growth_after_first_200_kib": max(linked) - linked[0], "peak_kib": samples[-1]["peak_kib"]}


def main() -> None:
    save("footprint", {"python": sys.version.split()[0], "cold_start": cold_start(), "memory": memory()})


if __name__ == "__main__":
    main()
