"""Collect's in-process cost per request against a bare parse, with fixed, spread and rotating
User-Agents; where the time goes; and function_app's import time.

Run: `make bench` (or `.venv/bin/python bench/collect_bench.py [--profile]`). Needs no storage.

* The function is the one the host would call: found with `app.get_functions()`, called with a
  real `func.HttpRequest` carrying a browser's `sendBeacon` headers and the runner's `func.Out`.
* 2,000 distinct realistic anonymous 10-event batches (`realistic_batches`: a portal of 400
  articles and 300 search terms, a visitor's mix of page views, searches, a click, engagement and
  the case form), made from a fixed seed.
* Baseline: the cheapest possible collect (parse the JSON, enqueue the body unchanged, answer 202).
  Two ways, both reported: with the requests made beforehand (what the handler alone costs) and
  with each request made inside the timing (the project's first measure, kept for comparison).
* User-Agents: fixed (one Chrome), spread (5,000 distinct strings drawn Zipf-like, as a portal's
  visitors are: a few browsers' current versions most of the time), rotating (every request a
  string never seen before: the bot check's cache never helps).
* The fastest of 7 interleaved repeats: every variant sees the same machine load.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from results import save  # noqa: E402  (bench/ is the script's own folder)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AzureWebJobsStorage", "UseDevelopmentStorage=true")
os.environ.setdefault("PORTAL_ISSUERS", "portal.example.com")
os.environ.setdefault("ALLOWED_ORIGINS", "https://portal.example.com")

PORTAL = "https://portal.example.com"
EVENTS_PER_BATCH = 10
REQUESTS = 2000
REPEATS = 7
SPREAD = 5000  # distinct User-Agents of the spread variant
SEED = 27
HEAVY = ("azure.identity", "jinja2", "requests", "azure.storage.queue", "azure.data.tables", "croniter", "deltalake",
         "pyarrow", "arro3", "jwt", "cryptography", "crawlerdetect")
FIXED_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36")
WORDS = ("vpn", "error", "809", "password", "reset", "outlook", "teams", "printer", "offline", "install", "license",
         "invoice", "refund", "login", "mfa", "sync", "onedrive", "backup", "restore", "update", "driver", "wifi",
         "slow", "crash", "export", "import", "api", "token", "expired", "certificate", "proxy", "firewall", "mobile",
         "app", "ios", "android", "mac", "windows", "linux", "account", "locked", "email", "calendar", "share")


def realistic_batches(count: int, seed: int = SEED) -> list[bytes]:
    """`count` distinct anonymous 10-event bodies, as the beacon sends them."""
    rng = random.Random(seed)
    articles = [f"KA-{rng.randint(1000, 99999):05d}" for _ in range(400)]
    terms = [" ".join(rng.sample(WORDS, rng.randint(1, 4))) for _ in range(300)]
    titles = {number: " ".join(rng.sample(WORDS, rng.randint(3, 7))).capitalize() for number in articles}
    pages = ["/", "/support/", "/knowledgebase/", "/support/my-cases/", "/profile/", "/forums/general/"]
    now = datetime.now(timezone.utc)
    bodies = []
    for _ in range(count):
        at = now - timedelta(seconds=rng.randint(5, 600))
        events: list[dict[str, Any]] = []

        def add(kind: str, into: list[dict[str, Any]] = events, **fields: Any) -> None:
            nonlocal at
            at += timedelta(milliseconds=rng.randint(400, 40_000))
            stamp = min(at, now).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            into.append({"id": f"{rng.getrandbits(96):024x}", "type": kind, "ts": stamp, **fields})

        term = rng.choice(terms)
        article = rng.choice(articles)
        search_url = f"{PORTAL}/search/?q={term.replace(' ', '+')}"
        article_url = f"{PORTAL}/knowledgebase/article/{article}/en-us"
        add("page_view", url=PORTAL + rng.choice(pages), title="Support", referrer="https://www.bing.com/")
        add("search", url=search_url, query=term, results=rng.choice([0, 0, 1, 3, 8, 20]))
        add("search_click", url=search_url, query=term, position=rng.randint(1, 5), target=article_url)
        add("page_view", url=article_url, title=titles[article], referrer=search_url,
            article={"number": article, "lang": "en-us"})
        add("engagement", url=article_url, engaged_ms=rng.randint(1000, 300_000), scroll=rng.randint(0, 100))
        second = rng.choice(terms)
        add("search", url=f"{PORTAL}/search/?q={second.replace(' ', '+')}", query=second, results=rng.randint(0, 9))
        other = rng.choice(articles)
        add("page_view", url=f"{PORTAL}/knowledgebase/article/{other}/en-us", title=titles[other],
            referrer=search_url, article={"number": other, "lang": "en-us"})
        add("engagement", url=f"{PORTAL}/knowledgebase/article/{other}/en-us", engaged_ms=rng.randint(500, 90_000))
        add("page_view", url=f"{PORTAL}/support/create-case/", title="Open a case", referrer=article_url)
        add("case_form", url=f"{PORTAL}/support/create-case/")
        sent = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        bodies.append(json.dumps({"v": 1, "site": "portal.example.com", "visitor": f"{rng.getrandbits(128):032x}",
                                  "session": f"{rng.getrandbits(96):024x}", "sent_at": sent,
                                  "events": events[:EVENTS_PER_BATCH]}).encode())
    return bodies


def browser_uas(count: int, rng: random.Random) -> list[str]:
    """`count` distinct, realistic browser User-Agents (versions, builds and devices vary)."""
    made: set[str] = set()
    while len(made) < count:
        chrome = f"{rng.randint(100, 133)}.0.{rng.randint(4000, 6999)}.{rng.randint(0, 250)}"
        kind = rng.random()
        if kind < 0.45:
            made.add(f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                     f"Chrome/{chrome} Safari/537.36" + (f" Edg/{chrome}" if rng.random() < 0.4 else ""))
        elif kind < 0.65:
            model = rng.choice(("SM-G973F", "SM-S918B", "Pixel 7", "Pixel 8 Pro", "M2101K6G", "CPH2437", "K"))
            made.add(f"Mozilla/5.0 (Linux; Android {rng.randint(9, 15)}; {model}) AppleWebKit/537.36 "
                     f"(KHTML, like Gecko) Chrome/{chrome} Mobile Safari/537.36")
        elif kind < 0.8:
            ios = f"{rng.randint(15, 18)}_{rng.randint(0, 7)}"
            device = rng.choice(("iPhone; CPU iPhone OS", "iPad; CPU OS"))
            made.add(f"Mozilla/5.0 ({device} {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                     f"Version/{ios.replace('_', '.')} Mobile/15E{rng.randint(100, 999)} Safari/604.1")
        elif kind < 0.92:
            version = f"{rng.randint(100, 134)}.{rng.randint(0, 3)}"
            made.add(f"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:{version}) Gecko/20100101 Firefox/{version}")
        else:
            made.add(f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_{rng.randint(0, 7)}) AppleWebKit/605.1.15 "
                     f"(KHTML, like Gecko) Version/{rng.randint(15, 18)}.{rng.randint(0, 6)} Safari/605.1.15")
    return sorted(made)


def headers(user_agent: str, length: int) -> dict[str, str]:
    """What Chrome sends with `navigator.sendBeacon` (what the host hands the function)."""
    return {"host": "pi-func.azurewebsites.net", "content-length": str(length),
            "content-type": "text/plain;charset=UTF-8", "origin": PORTAL, "referer": f"{PORTAL}/support/create-case/",
            "user-agent": user_agent, "accept": "*/*", "accept-encoding": "gzip, deflate, br, zstd",
            "accept-language": "en-GB,en;q=0.9,de;q=0.8", "sec-ch-ua": '"Chromium";v="131", "Not_A Brand";v="24"',
            "sec-ch-ua-mobile": "?0", "sec-ch-ua-platform": '"Windows"', "sec-fetch-dest": "empty",
            "sec-fetch-mode": "no-cors", "sec-fetch-site": "cross-site", "priority": "u=4, i",
            "x-forwarded-for": "203.0.113.7:51234", "x-forwarded-proto": "https"}


def requests(bodies: list[bytes], user_agents: list[str]) -> list[Any]:
    import azure.functions as func

    return [func.HttpRequest("POST", "https://pi-func.azurewebsites.net/api/collect", headers=headers(ua, len(raw)),
                             body=raw) for raw, ua in zip(bodies, user_agents, strict=True)]


def baseline(req: Any, out: Any) -> Any:
    """What the cheapest possible collect does: parse the JSON, enqueue the body unchanged."""
    import azure.functions as func

    body = req.get_body()
    json.loads(body)
    out.set(body.decode())
    return func.HttpResponse('{"accepted":10}', status_code=202, mimetype="application/json")


def collect_function() -> Any:
    """function_app's collect as the host finds it."""
    import function_app

    found = [f for f in function_app.app.get_functions() if f.get_function_name() == "collect"]
    return found[0].get_user_function()


def per_request(handler: Any, reqs: list[Any]) -> float:
    """µs per call of `handler` over the prepared requests."""
    from dci.runner.invoke import Out

    started = time.perf_counter()
    for req in reqs:
        response = handler(req, Out())
        if response.status_code != 202:
            raise AssertionError(response.get_body())
    return (time.perf_counter() - started) / len(reqs) * 1e6


def per_request_made(handler: Any, bodies: list[bytes], user_agents: list[str]) -> float:
    """µs per call, the request made inside the timing (the project's first measure)."""
    import azure.functions as func

    from dci.runner.invoke import Out

    started = time.perf_counter()
    for raw, ua in zip(bodies, user_agents, strict=True):
        handler(func.HttpRequest("POST", "https://pi-func.azurewebsites.net/api/collect",
                                 headers=headers(ua, len(raw)), body=raw), Out())
    return (time.perf_counter() - started) / len(bodies) * 1e6


def steps(bodies: list[bytes]) -> dict[str, float]:
    """µs per request of each step, on the same bodies (fastest of the repeats)."""
    from dci.ingest import collect
    from dci.ingest.events import CollectBatch
    from dci.ingest.policy import check_policy
    from dci.ingest.useragent import classify
    from dci.settings import load_settings

    settings = load_settings()
    now = datetime.now(timezone.utc)
    validate = CollectBatch.__pydantic_validator__.validate_json
    rng = random.Random(SEED + 1)
    fresh = iter(browser_uas(len(bodies) * REPEATS + 10, rng))

    def timed(work: Any, items: list[Any]) -> float:
        best = float("inf")
        for _ in range(REPEATS):
            started = time.perf_counter()
            for item in items:
                work(item)
            best = min(best, time.perf_counter() - started)
        return round(best / len(items) * 1e6, 1)

    batches = [validate(raw) for raw in bodies]

    def policy() -> float:  # on fresh copies each repeat: check_policy rewrites events in place
        best = float("inf")
        for _ in range(REPEATS):
            copies = [[dict(event) for event in batch.events] for batch in batches]
            started = time.perf_counter()
            for batch, events in zip(batches, copies, strict=True):
                check_policy(batch.site, batch.sent_at, events, now, settings.portal_issuers)
            best = min(best, time.perf_counter() - started)
        return round(best / len(batches) * 1e6, 1)

    checked = [collect.parse({"content-type": "text/plain"}, raw, settings, now) for raw in bodies]
    classify(FIXED_UA)
    return {
        "json.loads (the baseline's parse)": timed(json.loads, bodies),
        "schema: validate_json": timed(validate, bodies),
        "policy: check_policy": policy(),
        "message: enrich (fixed User-Agent)": timed(lambda c: collect.enrich(c[0], c[1], now, FIXED_UA), checked),
        "bot check: classify, a User-Agent seen before": timed(classify, [FIXED_UA] * len(bodies)),
        "bot check: classify, a new User-Agent": timed(lambda _: classify(next(fresh)), bodies),
    }


def profile(handler: Any, reqs: list[Any], top: int = 15) -> str:
    """The top frames of collect by own time (cProfile inflates small calls: read it for shape)."""
    from dci.runner.invoke import Out

    profiler = cProfile.Profile()
    profiler.enable()
    for req in reqs:
        handler(req, Out())
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def import_profile() -> dict[str, object]:
    """Cumulative import time of function_app (ms), its largest direct imports, and which heavy
    packages it loads (none should be: they load in the functions that need them)."""
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
    collect = collect_function()
    bodies = realistic_batches(REQUESTS)
    rng = random.Random(SEED)
    spread_pool = browser_uas(SPREAD, rng)
    weights = [1 / (rank + 1) for rank in range(SPREAD)]  # Zipf-like: a few strings most of the time
    rotating_pool = iter(browser_uas(REQUESTS * (REPEATS + 1), random.Random(SEED + 2)))
    fixed = requests(bodies, [FIXED_UA] * REQUESTS)
    spread = requests(bodies, rng.choices(spread_pool, weights, k=REQUESTS))
    per_request(collect, fixed[:300])  # warm caches (pydantic, regexes, memos)
    per_request(collect, spread)
    times: dict[str, list[float]] = {name: [] for name in ("baseline", "fixed", "spread", "rotating", "baseline_made",
                                                          "fixed_made")}
    for _ in range(REPEATS):  # interleaved, so every variant sees the same machine load
        rotating = requests(bodies, [next(rotating_pool) for _ in range(REQUESTS)])
        times["fixed"].append(per_request(collect, fixed))
        times["baseline"].append(per_request(baseline, fixed))
        times["spread"].append(per_request(collect, spread))
        times["rotating"].append(per_request(collect, rotating))
        times["fixed_made"].append(per_request_made(collect, bodies, [FIXED_UA] * REQUESTS))
        times["baseline_made"].append(per_request_made(baseline, bodies, [FIXED_UA] * REQUESTS))
    best = {name: min(values) for name, values in times.items()}  # the least disturbed repeat
    result = {
        "python": sys.version.split()[0],
        "events_per_batch": EVENTS_PER_BATCH,
        "requests_per_repeat": REQUESTS,
        "repeats": REPEATS,
        "body_bytes_median": int(statistics.median(len(b) for b in bodies)),
        "us_per_request": {name: round(value, 1) for name, value in best.items()},
        "ratio": {
            "fixed_user_agent": round(best["fixed"] / best["baseline"], 2),
            "spread_user_agents": round(best["spread"] / best["baseline"], 2),
            "rotating_user_agents": round(best["rotating"] / best["baseline"], 2),
            "fixed_user_agent_request_made_in_timing": round(best["fixed_made"] / best["baseline_made"], 2),
        },
        "steps_us_per_request": steps(bodies),
        **token_costs(),
        "imports": import_profile(),
    }
    save("collect", result)
    if "--profile" in sys.argv:
        print(profile(collect, fixed))


if __name__ == "__main__":
    main()
