"""Scrubbing's worst inputs against ordinary ones of the same size: the cost must stay linear.

Run: `make bench` (or `.venv/bin/python bench/scrub_bench.py`). Two levels:

* `scrub` / `scrub_url` alone, on 1,990-character strings built to make each pattern work hardest (long
  runs before a lone `@`, `@` after `@`, digit runs that end in separators, dates in a row, IBAN
  starts everywhere), against 2 KiB of ordinary search text and a URL with personal data in it;
* collect end to end (no storage): a 32 KiB batch whose URLs carry the attack run's
  `?q=` + 1,990 × `a` + `@`, and the other worst strings, against a 32 KiB batch of the same
  shape with ordinary queries (nothing to scrub) and one with personal data in every URL (what
  scrubbing normally does). Target: worst ÷ normal ≤ 2.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

from results import save  # noqa: E402  (bench/ is the script's own folder)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("AzureWebJobsStorage", "UseDevelopmentStorage=true")
os.environ.setdefault("PORTAL_ISSUERS", "portal.example.com")
os.environ.setdefault("ALLOWED_ORIGINS", "https://portal.example.com")

SIZE = 1990  # the attack run's query length
REPEATS = 31
WORST = {  # each 2,000 characters or so
    "run then @": "a" * (SIZE - 1) + "@",
    "@ after @": "a@" * (SIZE // 2),
    "dotted local part": "a." * (SIZE // 2 - 1) + "@b",
    "digits, separators": "1 " * (SIZE // 2),
    "digit then brackets": "1" + "(" * (SIZE - 1),
    "digits, dashes": "1-" * (SIZE // 2),
    "dates in a row": "2026-11-28 " * (SIZE // 11),
    "IBAN starts": "DE89 " * (SIZE // 5),
    "IBAN-long digits": "DE89" + " 1234" * (SIZE // 5 - 1),
    "fullwidth": "ａ＠" * (SIZE // 2),
    "e-mail shapes": "@a.bc" * (SIZE // 5),
    "e-mail addresses": "x@a.bc " * (SIZE // 7),
    "dotted numbers": "1.2." * (SIZE // 4),
}
NORMAL = ("how do I reset my password for the vpn client on windows 11 " * 40)[:SIZE]
WITH_DATA = ("refund to DE89 3704 0044 0532 0130 00, call +44 20 7946 0958 or carol@example.com ok " * 30)[:SIZE]


def per_call(function, text: str, calls: int = 200) -> float:
    """Median seconds per call over REPEATS rounds of `calls` calls."""
    rounds = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        for _ in range(calls):
            function(text)
        rounds.append((time.perf_counter() - started) / calls)
    return statistics.median(rounds)


def search_url(query_value: str) -> str:
    """A search page URL of at most 2,048 characters (collect's limit) carrying `query_value`."""
    value = quote(query_value, safe="@")[:1990]  # a raw @, as the attack run sent it
    if "%" in value[-2:]:  # do not cut an escape in half
        value = value[:value.rindex("%")]
    return "https://portal.example.com/search/?q=" + value


def collect_batch(query_value: str) -> bytes:
    """A ~32 KiB collect body: page views whose URLs carry `query_value` as `q`, padded to size."""
    from tests.factories import batch, body, event, iso

    url = search_url(query_value)
    events = [event("page_view", url=url, referrer=None, title="x") for _ in range(14)]
    return body(batch(events, sent_at=iso(datetime.now(timezone.utc))))


def collect_cost(raw: bytes) -> float:
    from dci.ingest import collect
    from dci.ingest.ratelimit import RateLimiter
    from dci.settings import get_settings

    settings = get_settings()
    headers = {"content-type": "text/plain", "origin": "https://portal.example.com",
               "user-agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/131.0.0.0 Safari/537.36"}

    def one(_: object) -> None:
        outcome = collect.handle("POST", headers, raw, settings, limiter=RateLimiter(limit=10**9, window=60))
        assert outcome.reply.status == 202, outcome.reply.body

    return per_call(one, "", calls=20)


def main() -> None:
    from dci.ingest.scrub import scrub, scrub_url

    normal = per_call(scrub, NORMAL)
    with_data = per_call(scrub, WITH_DATA)
    worst = {name: per_call(scrub, text) for name, text in WORST.items()}
    url_normal = per_call(scrub_url, search_url(WITH_DATA))
    url_worst = {name: per_call(scrub_url, search_url(text)) for name, text in WORST.items()}
    batch_normal = collect_cost(collect_batch(("reset my password " * 200)[:1990]))
    batch_with_data = collect_cost(collect_batch(WITH_DATA))
    batch_worst = {name: collect_cost(collect_batch(text)) for name, text in WORST.items()}
    slowest = max(worst, key=worst.get)
    slowest_url = max(url_worst, key=url_worst.get)
    slowest_batch = max(batch_worst, key=batch_worst.get)
    result = {
        "text_chars": SIZE,
        "scrub_us": {"normal text": round(normal * 1e6, 1), "text with personal data": round(with_data * 1e6, 1),
                     **{name: round(v * 1e6, 1) for name, v in worst.items()}},
        "scrub_worst_over_with_data": round(worst[slowest] / with_data, 2),
        "scrub_worst": slowest,
        "scrub_url_us": {"url with personal data": round(url_normal * 1e6, 1),
                         **{name: round(v * 1e6, 1) for name, v in url_worst.items()}},
        "scrub_url_worst_over_with_data": round(url_worst[slowest_url] / url_normal, 2),
        "collect_32k_batch_ms": {"normal": round(batch_normal * 1e3, 2),
                                 "with personal data": round(batch_with_data * 1e3, 2),
                                 **{name: round(v * 1e3, 2) for name, v in batch_worst.items()}},
        "collect_worst_over_with_data": round(batch_worst[slowest_batch] / batch_with_data, 2),
        "collect_worst_over_nothing_to_scrub": round(batch_worst[slowest_batch] / batch_normal, 2),
        "collect_attack_over_nothing_to_scrub": round(batch_worst["run then @"] / batch_normal, 2),
        "collect_worst": slowest_batch,
    }
    save("scrub", result)


if __name__ == "__main__":
    main()
