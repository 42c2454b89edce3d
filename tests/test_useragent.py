"""User-Agent classification: family and device kept, bots recognised."""

from __future__ import annotations

import pytest

from dci.ingest.useragent import classify

CASES = [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
     "Chrome", "desktop", False),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 "
     "Edg/131.0.0.0", "Edge", "desktop", False),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
     "Mobile/15E148 Safari/604.1", "Safari", "mobile", False),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox", "desktop", False),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 "
     "Chrome/121.0.0.0 Mobile Safari/537.36", "Samsung Internet", "mobile", False),
    ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
     "Mobile/15E148 Safari/604.1", "Safari", "tablet", False),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", "bot", True),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bot", "bot", True),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36",
     "bot", "bot", True),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "bot", "bot", True),
    ("python-requests/2.32.3", "bot", "bot", True),
    ("curl/8.5.0", "bot", "bot", True),
    # The attack run's misses with the hand-made list it replaced (crawlerdetect gets them right):
    ("WhatsApp/2.23.20.0", "bot", "bot", True),
    ("Mozilla/5.0 (compatible; Google-InspectionTool/1.0)", "bot", "bot", True),
    ("Mediapartners-Google", "bot", "bot", True),
    ("FeedFetcher-Google; (+http://www.google.com/feedfetcher.html)", "bot", "bot", True),
    ("Iframely/1.3.1 (+https://iframely.com/docs/about) Atlas", "bot", "bot", True),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.164 "
     "Safari/537.36 Teams/1.6.00.1381 Electron/13.6.9", "Chrome", "desktop", False),  # Teams desktop: a person
    ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "bot", "bot", True),
    ("Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", "bot", "bot", True),
    ("", "bot", "bot", True),
    (None, "bot", "bot", True),
]


@pytest.mark.parametrize(("ua", "family", "device", "bot"), CASES)
def test_classify(ua: str | None, family: str, device: str, bot: bool) -> None:
    client = classify(ua)
    assert (client.family, client.device, client.bot) == (family, device, bot)
