"""The beacon's cost to a page: its size, and the main-thread time it adds to a page load in
Chromium (Chrome DevTools Protocol Performance metrics), median of 20 loads with and without it.

Run: `make bench` (or `.venv/bin/python bench/beacon_bench.py`). Starts its own Azurite and the
runner with the demo portal; needs Debian's Chromium (`make test` installs it).

`--baseline FILE` also loads the article page with FILE served as beacon.js, interleaved with the
current build, so two builds are compared in one run (figures between runs move by milliseconds
here): `git show <rev>:dci/static/beacon.js > /tmp/old.js; .venv/bin/python bench/beacon_bench.py
--baseline /tmp/old.js`.
"""

from __future__ import annotations

import gzip
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from results import save  # noqa: E402  (bench/ is the script's own folder)

from tests import azurite  # noqa: E402

LOADS = 20
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"


def page_metrics(browser, url: str, with_beacon: bool, script: bytes | None = None) -> dict[str, float]:
    """Metrics of one load; without the beacon its scripts are answered empty, `script` replaces beacon.js."""
    context = browser.new_context(user_agent=UA)
    page = context.new_page()
    if not with_beacon:
        page.route("**/api/beacon*.js", lambda route: route.fulfill(body="", content_type="application/javascript"))
    elif script is not None:
        page.route("**/api/beacon.js", lambda route: route.fulfill(body=script, content_type="application/javascript"))
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.goto(url, wait_until="load")
    page.wait_for_timeout(1500)  # the beacon's first flush happens a second after the page view
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    context.close()
    return {"task_ms": metrics["TaskDuration"] * 1000, "script_ms": metrics["ScriptDuration"] * 1000}


def main() -> None:
    import argparse

    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another beacon.js build to compare on the article page")
    args = parser.parse_args()
    baseline = args.baseline.read_bytes() if args.baseline else None
    current = (ROOT / "dci" / "static" / "beacon.js").read_bytes()

    result: dict = {}
    for name in ("beacon.js", "beacon-search.js"):
        script = (ROOT / "dci" / "static" / name).read_bytes()
        result[name] = {"bytes": len(script), "gzip_bytes": len(gzip.compress(script, 9))}
    ports = azurite.free_ports(4)
    with tempfile.TemporaryDirectory() as data:
        process = azurite.start(tuple(ports[:3]), Path(data))  # type: ignore[arg-type]
        host = f"127.0.0.1:{ports[3]}"
        os.environ.update({"AzureWebJobsStorage": azurite.connection_string(*ports[:3]), "PORTAL_ISSUERS": host,
                           "ALLOWED_ORIGINS": f"http://{host}"})
        import function_app
        from dci.runner import Runner
        from dci.runner.config import load_host_config

        runner = Runner(function_app.app, load_host_config(ROOT / "host.json"), dict(os.environ),
                        ("127.0.0.1", ports[3]), portal=True)
        runner.start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=[
                    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
                pages = {"article": f"http://{host}/knowledgebase/article/KA-01023/en-us",
                         "search": f"http://{host}/search/?q=password"}  # the search page loads both parts
                runs: dict = {}
                for kind, url in pages.items():
                    page_metrics(browser, url, True)  # warm the server and the browser's caches
                    compare = baseline is not None and kind == "article"
                    runs[kind] = {"with": [], "without": [], **({"baseline": [], "current": []} if compare else {})}
                    for _ in range(LOADS):
                        runs[kind]["with"].append(page_metrics(browser, url, True))
                        runs[kind]["without"].append(page_metrics(browser, url, False))
                        if compare:  # both builds served the same way (by the browser's router), interleaved
                            runs[kind]["baseline"].append(page_metrics(browser, url, True, baseline))
                            runs[kind]["current"].append(page_metrics(browser, url, True, current))
                browser.close()
        finally:
            runner.stop(timeout=5)
            azurite.stop(process)
            time.sleep(0.1)
    for kind, run in runs.items():
        for name in ("task_ms", "script_ms"):
            with_b = statistics.median(r[name] for r in run["with"])
            without = statistics.median(r[name] for r in run["without"])
            result[f"{kind}_{name}"] = {"with_beacon_median": round(with_b, 2), "without_median": round(without, 2),
                                        "added_median": round(with_b - without, 2)}
            for series in ("baseline", "current"):
                if series in run:
                    median = statistics.median(r[name] for r in run[series])
                    result[f"{kind}_{name}"][f"{series}_median"] = round(median, 2)
    result["loads"] = LOADS
    save("beacon", result)


if __name__ == "__main__":
    main()
