"""What we keep of a User-Agent header: browser family and device class, and whether it is a bot."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

# Crawlers, link previewers, monitors, HTTP libraries and headless/automated browsers.
_BOT = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|archiver|headless|phantomjs|electron/|lighthouse|pagespeed|"
    r"facebookexternalhit|embedly|preview|python-|curl/|wget/|httpclient|go-http-client|okhttp|"
    r"java/|libwww|scrapy|axios/|node-fetch|undici|selenium|puppeteer|playwright|pingdom|"
    r"uptimerobot|statuscake|datadog|newrelic|site24x7",
    re.IGNORECASE,
)
_FAMILIES = (
    ("Edge", re.compile(r"\bEdg(e|A|iOS)?/")),
    ("Opera", re.compile(r"\bOPR/|\bOpera")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/")),
    ("Firefox", re.compile(r"\bFirefox/|\bFxiOS/")),
    ("Chrome", re.compile(r"\bChrome/|\bCriOS/")),
    ("Safari", re.compile(r"\bSafari/")),
)


@dataclass(frozen=True)
class Client:
    """The browser family and device class of a request; never the full header."""

    family: str
    device: str
    bot: bool


@functools.lru_cache(maxsize=1024)
def classify(user_agent: str | None) -> Client:
    """Classify a User-Agent header; an empty one counts as a bot."""
    ua = (user_agent or "").strip()
    if not ua or _BOT.search(ua):
        return Client(family="bot", device="bot", bot=True)
    family = next((name for name, pattern in _FAMILIES if pattern.search(ua)), "Other")
    if re.search(r"iPad|Tablet", ua):
        device = "tablet"
    elif re.search(r"Mobi|iPhone|Android", ua):
        device = "mobile"
    else:
        device = "desktop"
    return Client(family=family, device=device, bot=False)
