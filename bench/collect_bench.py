"""Collect's in-process cost per event vs a baseline handler, and function_app's import time.

Run: `make bench` (or `.venv/bin/python bench/collect_bench.py`). Needs no storage: the queue
output binding is the runner's `Out`, exactly what the handler sees under the host.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from results import save  # noqa: E402  (bench/ is the script's own folder)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AzureWebJobsStorage", "UseDevelopmentStorage=true")
os.environ.setdefault("PORTAL_ISSUERS", "portal.example.com")
os.environ.setdefault("ALLOWED_ORIGINS", "https://portal.example.com")

EVENTS_PER_BATCH = 10
REQUESTS = 1000
REPEATS = 21
HEAVY = ("azure.identity", "jinja2", "requests", "azure.storage.queue", "azure.data.tables", "croniter")



def _bodies() -> list[bytes]:
    from tests.factories import batch, body, event

    kinds = ["page_view", "search", "search_click", "page_view", "engagement",
             "page_view", "search", "page_view", "case_form", "case_submitted"]
    return [body(batch([event(k) for k in kinds[:EVENTS_PER_BATCH]])) for _ in range(REQUESTS)]


def _time(handler, bodies: list[bytes]) -> list[float]:
    import azure.functions as func

    from dci.runner.invoke import Out

    headers = {"content-type": "text/plain;charset=UTF-8", "origin": "https://portal.example.com",
               "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                             "Chrome/131.0.0.0 Safari/537.36"}
    started = time.perf_counter()
    for raw in bodies:
        out: Out[str] = Out()
        response = handler(func.HttpRequest("POST", "http://localhost/api/collect", headers=headers, body=raw), out)
        assert response.status_code == 202, response.get_body()
    return [(time.perf_counter() - started) / len(bodies)]


def baseline(req, out):
    """What the cheapest possible collect does: parse the JSON, enqueue the body unchanged."""
    import azure.functions as func

    body = req.get_body()
    json.loads(body)
    out.set(body.decode())
    return func.HttpResponse('{"accepted":10}', status_code=202, mimetype="application/json")


def import_profile() -> dict[str, object]:
    """Cumulative import time of function_app (µs) and whether heavy packages were loaded."""
    code = "import function_app, sys; print(','.join(m for m in " + repr(HEAVY) + " if m in sys.modules))"
    run = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ}, check=True)
    rows = []
    for line in run.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        rows.append((int(cumulative_us), int(self_us), name.rstrip()))
    def depth(name: str) -> int:
        return len(name) - len(name.lstrip())

    at = next(i for i, r in enumerate(rows) if r[2].strip() == "function_app")
    app_row, start = rows[at], at
    while start > 0 and depth(rows[start - 1][2]) > depth(app_row[2]):
        start -= 1  # the rows printed before function_app, down to its first import, are its imports
    children = [r for r in rows[start:at] if depth(r[2]) == depth(app_row[2]) + 2]
    return {
        "function_app_cumulative_ms": round(app_row[0] / 1000, 1),
        "direct_imports_ms": [(n.strip(), round(c / 1000, 1)) for c, _, n in sorted(children, reverse=True)[:6]],
        "heavy_modules_loaded": run.stdout.strip().split(",") if run.stdout.strip() else [],
    }


def token_costs() -> dict[str, float]:
    """µs to verify a portal ID token the first time, and again (remembered until it expires)."""
    from dci.ingest.identity import PortalKeys, TokenVerifier
    from tests.tokens import Portal

    portal = Portal("portal.example.com")
    verifier = TokenVerifier(("portal.example.com",), PortalKeys(portal.public_pem))
    tokens = [portal.token() for _ in range(300)]
    started = time.perf_counter()
    for token in tokens:
        verifier.verify(token)
    first = (time.perf_counter() - started) / len(tokens)
    started = time.perf_counter()
    for _ in range(10):
        for token in tokens:
            verifier.verify(token)
    again = (time.perf_counter() - started) / (10 * len(tokens))
    return {"token_verify_first_us": round(first * 1e6, 1), "token_verify_cached_us": round(again * 1e6, 1)}


def main() -> None:
    import function_app

    bodies = _bodies()
    _time(function_app.collect, bodies[:200])  # warm caches (pydantic, regexes, LRU)
    ours, base = [], []
    for _ in range(REPEATS):  # interleaved, so both see the same machine load
        ours += _time(function_app.collect, bodies)
        base += _time(baseline, bodies)
    # The fastest repeat is the least disturbed by other work on the machine.
    ours_us, base_us = min(ours) * 1e6, min(base) * 1e6
    result = {
        "python": sys.version.split()[0],
        "events_per_batch": EVENTS_PER_BATCH,
        "requests_per_repeat": REQUESTS,
        "repeats": REPEATS,
        "collect_us_per_request": round(ours_us, 1),
        "collect_us_per_event": round(ours_us / EVENTS_PER_BATCH, 1),
        "baseline_us_per_request": round(base_us, 1),
        "baseline_us_per_event": round(base_us / EVENTS_PER_BATCH, 1),
        "ratio": round(ours_us / base_us, 2),
        "body_bytes_median": int(statistics.median(len(b) for b in bodies)),
        **token_costs(),
        "imports": import_profile(),
    }
    save("collect", result)


if __name__ == "__main__":
    main()
