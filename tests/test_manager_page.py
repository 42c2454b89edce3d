"""The support manager's insights page says what it means: one small-sample rule for every rate (the
JSON's `too_few` flags, the page's grey), the comparison's period and its missing days, and labels
read as a manager speaks (pure rollups rendered, then through /api/insights on Azurite)."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any

import azure.functions as func
import jsonschema
import pytest

import function_app
from dci.insights import MIN_SAMPLE, report, rollup
from dci.openapi import document
from dci.reports.dashboard import behind_page, insights_page
from dci.runner.dataverse import LocalDataverse
from dci.storage.insights import INSIGHTS, ROLLUP
from tests.conftest import Store

KB = "https://portal.example.com/knowledgebase/article/{}/en-us"


def day_of(day: str, searches: int, *, zero: int | None = None, clicked: int = 0, followed: int | None = None,
           article: str | None = "KA-01024") -> dict[str, Any]:
    """A day's rollup: `searches` searches, each in a session of its own that also reads `article`;
    the first `zero` found nothing (default half), the first `clicked` opened a result, the first
    `followed` sessions a case followed (default a third). Listed as read before a case."""
    zero = searches // 2 if zero is None else zero
    followed = searches // 3 if followed is None else followed
    events: list[dict[str, Any]] = []
    for n in range(searches):
        session = f"{day}-{n}"
        events.append({"kind": "search", "term": ("vpn", "reset password", "printer")[n % 3],
                       "results": 0 if n < zero else 4, "session": session, "ts": 10 * n})
        if n < clicked:
            events.append({"kind": "click", "term": "vpn", "session": session, "ts": 10 * n + 1})
        if article:
            events.append({"kind": "read", "article": article, "session": session, "ts": 10 * n + 2,
                           "title": "Set up the VPN client", "url": KB.format(article)})
    day = rollup(day, events, [], {f"{day}-{n}" for n in range(followed)})
    if article and searches:
        day["articles_before_cases"] = {article: 1}  # (as a case fact would list it)
    return day


def flags(node: Any, path: str = "") -> Iterator[tuple[str, Any, bool]]:
    """Every rate in a report with its small-sample flag: (where, the rate, the flag). A rate without
    a flag fails the walk."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from flags(item, f"{path}[{index}]")
        return
    if not isinstance(node, dict):
        return
    if "rate" in node:
        yield path, node["rate"], node["too_few"]
    for name, value in node.items():
        if name.endswith("_rate") and not isinstance(value, dict) and not path.endswith("change"):
            flag = node.get(f"{name}_too_few", node.get(f"{name.removesuffix('_rate')}_too_few"))
            assert isinstance(flag, bool), f"{path}.{name} has no too_few flag"
            yield f"{path}.{name}", value, flag
        yield from flags(value, f"{path}.{name}")


# --- the JSON: one rule, a flag on every rate -------------------------------------------------------

@pytest.mark.parametrize(("sample", "few"), [(0, True), (1, True), (MIN_SAMPLE - 1, True), (MIN_SAMPLE, False),
                                             (150, False)])
def test_every_rate_of_fewer_than_min_sample_is_flagged_too_few(sample: int, few: bool) -> None:
    assert MIN_SAMPLE == 20
    body = report("2031-03-10", "2031-03-10", [day_of("2031-03-10", sample)] if sample else [],
                  previous=[day_of("2031-03-09", sample)] if sample else [])
    found = list(flags(body))
    # site search (4), deflection, the article (when read), the day, the range and the period before (3 each)
    cards = [flag for flag in found if not flag[0].startswith((".search_terms", ".top_articles"))]
    assert len(cards) == 4 + 1 + (1 if sample else 0) + 3 * 3
    assert {where: flag for where, _, flag in cards} == {where: few for where, _, _ in cards}
    assert all(rate is None for _, rate, _ in found) == (sample == 0)
    # The trend carries each rate's denominator.
    for figures in (body["trend"]["days"][0], body["trend"]["range"], body["trend"]["previous"]):
        assert (figures["zero_result_rate_of"], figures["click_through_rate_of"],
                figures["deflection_rate_of"]) == (sample, sample, sample)
    assert body["site_search"]["zero_result_rate"]["of"] == sample
    jsonschema.validate(body, document()["components"]["schemas"]["Insights"])


@pytest.mark.parametrize(("now", "before", "compared"), [(20, 20, True), (40, 19, False), (19, 40, False),
                                                         (25, 0, False)])
def test_a_rates_change_is_null_and_too_few_when_either_period_is_under_the_rule(now: int, before: int,
                                                                                  compared: bool) -> None:
    body = report("2031-03-10", "2031-03-10", [day_of("2031-03-10", now, zero=now // 4)],
                  previous=[day_of("2031-03-09", before, zero=before // 2)] if before else [])
    change = body["trend"]["change"]
    for name in ("zero_result_rate", "click_through_rate", "deflection_rate"):
        assert change[f"{name}_too_few"] is not compared
        assert (change[name] is not None) is compared
    if compared:
        assert change["zero_result_rate"] == round(5 / 20 - 10 / 20, 4)
    assert change["searches"] == now - before  # counts are always compared


def test_the_period_before_names_its_days_that_could_not_be_counted() -> None:
    body = report("2031-03-10", "2031-03-12", [day_of("2031-03-10", 3)], previous=[day_of("2031-03-08", 2)],
                  missing=["2031-03-11"], previous_missing=["2031-03-09", "2031-03-07"])
    assert body["missing_days"] == ["2031-03-11"]
    assert {k: body["trend"]["previous"][k] for k in ("from", "to", "missing_days")} == {
        "from": "2031-03-07", "to": "2031-03-09", "missing_days": ["2031-03-07", "2031-03-09"]}


# --- the page ---------------------------------------------------------------------------------------

class Page(HTMLParser):
    """What a reader sees of a page: its text (tooltips and labels included), and its elements."""

    def __init__(self, html: bytes) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.elements: list[tuple[str, dict[str, str]]] = []
        self._skip = 0
        self.feed(html.decode())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = {k: v or "" for k, v in attrs}
        self.elements.append((tag, named))
        self._skip += tag in ("style", "script")
        self.parts += [named[a] for a in ("aria-label", "title") if a in named]
        if tag in ("br", "p", "div", "tr", "td", "th", "figcaption", "li", "h1", "h2", "title", "strong", "span"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        self._skip -= tag in ("style", "script")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)

    @property
    def text(self) -> str:
        return re.sub(r"[ \t]+", " ", "".join(self.parts))

    def classes(self, tag: str) -> list[str]:
        return [attrs.get("class", "") for name, attrs in self.elements if name == tag]


def figures(html: bytes) -> dict[str, str]:
    """Each trend chart's markup by its title."""
    return {re.search(r"<strong>(.*?)</strong>", f).group(1): f  # type: ignore[union-attr]
            for f in re.findall(r'(?s)<figure class="trend">.*?</figure>', html.decode())}


def test_the_comparison_states_its_period_and_the_days_it_leaves_out() -> None:
    rollups = [day_of(f"2026-11-{d:02d}", 30) for d in range(5, 31)] + [day_of("2026-12-01", 30)]
    body = report("2026-11-05", "2026-12-04", rollups, previous=[day_of("2026-10-20", 30)],
                  previous_missing=["2026-10-09"])
    text = Page(insights_page(body, {})).text
    assert "Against the 30 days before: 2026-10-06 – 2026-11-04. 2026-10-09 could not be counted and is left out " \
           "of it." in text
    assert (body["trend"]["previous"]["from"], body["trend"]["previous"]["to"]) == ("2026-10-06", "2026-11-04")
    one = report("2026-11-05", "2026-11-05", [], previous=[], previous_missing=["2026-11-03", "2026-11-04"])
    assert "Against the day before: 2026-11-04." in Page(insights_page(one, {})).text
    three = report("2026-11-05", "2026-11-07", [], previous=[], previous_missing=["2026-11-03", "2026-11-04"])
    assert ("Against the 3 days before: 2026-11-02 – 2026-11-04. 2 of those days could not be counted and are "
            "left out of it: 2026-11-03, 2026-11-04.") in Page(insights_page(three, {})).text


def test_the_page_greys_a_rate_of_too_few_shows_its_count_and_does_not_compare_it() -> None:
    # Day one: 30 searches (15 found nothing); day two: 4 (2 found nothing). Before: 5 searches.
    body = report("2031-03-10", "2031-03-11", [day_of("2031-03-10", 30, clicked=12), day_of("2031-03-11", 4)],
                  previous=[day_of("2031-03-09", 5)])
    html = insights_page(body, {}, follow_days=7)
    page = Page(html)
    # The range's 34 searches are enough: a percentage with its interval, not greyed.
    assert re.search(r"\n50 % \(\d+–\d+ %\)\nSearches that found nothing, of those that said how many they found "
                     r"\(17 of 34\)", page.text)
    # The article's 34 reads too; its 11 reads followed by a case are a rate with an interval.
    assert "\n32 % (19–49 %)\n" in page.text
    charts = figures(html)
    zero = charts["Searches that found nothing"]
    # The comparison: the period before had 5 searches, too few to compare; counts always compare.
    assert "· too few to compare" in zero and 'class="change few"' in zero
    assert "· up 29 from 5" in charts["Searches"]
    # Chart points: the day of 4 is hollow grey, the day of 30 is not; its value is its count.
    assert re.findall(r'<circle class="([^"]*)"', zero) == ["day", "day few"]
    assert "<title>2031-03-11: too few: 2 of 4 searches</title>" in zero
    assert '<td class="num few">too few: 2 of 4 searches</td>' in zero
    assert re.findall(r'<circle class="([^"]*)"', charts["Searches"]) == ["day", "day"]  # counts: no rule
    # The same rule on a card: a range of 3 searches.
    small = Page(insights_page(report("2031-03-11", "2031-03-11", [day_of("2031-03-11", 3)]), {}))
    assert "\ntoo few: 1 of 3 searches\nSearches that found nothing, of those that said how many they found\n" \
           in small.text
    assert small.classes("strong").count("few") == 5  # the four site-search rates and the visits'
    assert "\ntoo few: 1 of 3 reads" in small.text and "num rate few" in small.classes("td")


FORBIDDEN = [
    (r"\(s\)", "a (s) plural"),
    (r"found nothing found nothing|no results found nothing", "found nothing, twice"),
    (r"\b\w+_\w+\b", "an internal name"),
    (r"\b(None|null|nan|True|False)\b", "a value from the code"),
    (r"\b1 (searches|visits|reads|cases|days)\b", "one, plural"),
    (r"(?<![\d.])(?:0|[2-9]|\d{2,}) (search|visit|read|case|day)\b(?! that)", "many, singular"),
    (r"\bself-service\b|\bdeflection rate\b|\bclick-through\b|\bfollow window\b|\bzero-result\b", "jargon"),
]


def readable(text: str) -> None:
    for pattern, what in FORBIDDEN:
        found = re.search(pattern, text)
        assert found is None, f"{what}: {text[max(0, found.start() - 60):found.end() + 60]!r}"


@pytest.mark.parametrize("scale", [1, 3, 40])
def test_every_label_reads_as_a_manager_speaks(scale: int) -> None:
    days = [f"2031-03-{d:02d}" for d in range(1, 15)]
    rollups = [day_of(d, (n * 7 + 3) % (scale + 1) + (1 if n % 4 == 0 else 0), clicked=n % 3,
                      article=None if n % 5 == 4 else "KA-0102" + str(n % 3)) for n, d in enumerate(days)]
    body = report(days[0], days[-1], rollups, previous=rollups[:3], missing=["2031-03-05"],
                  previous_missing=["2031-02-20"])
    body["first_touch_to_case"] = {"cases": 1, "median_ms": 3_600_000}
    text = Page(insights_page(body, {"code": "k1"}, follow_days=1)).text
    readable(text)
    assert "within 1 day" in text and "UTC days, midnight to midnight" in text
    for cases, sessions, without in ((1, 1, 1), (3, 5, 4), (0, 0, 0)):
        for key in ({"search": "reset password"}, {"article": "KA-01024"}):
            document_ = {"from": days[0], "to": days[-1], **key, "case_count": cases, "sessions": sessions,
                         "sessions_followed_by_case": sessions - without, "sessions_without_case": without,
                         "cases": [{"case_id": f"c{n}", "ticket": f"CAS-0{n}", "title": "VPN down", "day": days[2]}
                                   for n in range(cases)]}
            behind = Page(behind_page(document_, {}, follow_days=7)).text
            readable(behind)
            verb = "searched it" if "search" in key else "read it"
            assert f"\n{sessions}\n{'visit' if sessions == 1 else 'visits'} that {verb}" in behind
            assert "from that customer within 7 days" in behind


# --- through the route ----------------------------------------------------------------------------

def insights(query: str) -> func.HttpResponse:
    params = dict(p.split("=") for p in query.split("&"))
    return function_app.insights(func.HttpRequest("GET", f"http://localhost/api/insights?{query}", body=b"",
                                                  params=params))


def test_the_route_names_the_previous_periods_days_whose_rollups_cannot_be_read(store: Store) -> None:
    table = store.tables.create_table_if_not_exists(INSIGHTS)

    def unreadable(day: str) -> None:  # (a day that fails is rebuilt by the next request: one day per request)
        table.upsert_entity({"PartitionKey": f"d_{day}", "RowKey": ROLLUP, "cases": "{not json"})

    unreadable("2031-03-08")
    response = insights("from=2031-03-10&to=2031-03-11")
    body = json.loads(response.get_body())
    assert response.status_code == 200
    jsonschema.validate(body, document()["components"]["schemas"]["Insights"])
    assert (body["missing_days"], body["trend"]["previous"]["missing_days"]) == ([], ["2031-03-08"])
    unreadable("2031-03-06")
    page = Page(insights("from=2031-03-08&to=2031-03-09&format=html").get_body()).text
    assert "Against the 2 days before: 2031-03-06 – 2031-03-07. 2031-03-06 could not be counted and is left out " \
           "of it." in page
    assert "could not be counted and is left out of every figure" not in page  # (03-08 was rebuilt)


# --- the local Dataverse's notes page ---------------------------------------------------------------

def test_the_local_dataverse_notes_say_how_often_each_was_written(fake: LocalDataverse) -> None:
    once = fake.add_incident(datetime(2031, 3, 10, tzinfo=timezone.utc), ticket="CAS-1")
    thrice = fake.add_incident(datetime(2031, 3, 11, tzinfo=timezone.utc), ticket="CAS-2")
    fake.upsert_annotation("n1", {"objectid_incident@odata.bind": f"/incidents({once})", "subject": "Portal"})
    for _ in range(3):
        fake.upsert_annotation("n2", {"objectid_incident@odata.bind": f"/incidents({thrice})", "subject": "Portal"})
    with urllib.request.urlopen(f"{fake.url}/notes", timeout=10) as response:
        text = response.read().decode()
    assert "=== Case CAS-1: Portal (written once)" in text
    assert "=== Case CAS-2: Portal (written 3 times)" in text
    assert "(s)" not in text
