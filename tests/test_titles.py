"""Page titles without the site's suffix (dci/titles.py): the rule from a table, the properties a
visitor cannot break, and the contact timeline and insights that show them."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import azure.functions as func
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import function_app
from dci.titles import MAX_SUFFIX, SEPARATORS, normal, strip, stripped_items, suffixes
from tests.conftest import Store
from tests.test_insights import C1, Scene, article, at, insights_api, kb

SITE = "portal.example.com"


# --- learning a suffix ---------------------------------------------------------------------------

@pytest.mark.parametrize(("pairs", "learnt"), [
    ([(SITE, "Reset your password · Contoso Support"), (SITE, "Search · Contoso Support")], {SITE: "Contoso Support"}),
    ([(SITE, "Products - Contoso"), (SITE, "Home - Contoso"), ("b.example", "Home | Site"),
      ("b.example", "Cases | Site")], {SITE: "Contoso", "b.example": "Site"}),
    # The home page, titled just the site's name, keeps its title and counts among the titles.
    ([(SITE, "Contoso Support"), (SITE, "Reset · Contoso Support"), (SITE, "Search · Contoso Support")],
     {SITE: "Contoso Support"}),
    ([(SITE, "Reset · Contoso Support")], {}),  # one title: nothing shared
    ([(SITE, "Reset · Contoso Support")] * 5, {}),  # one title seen five times: still one
    ([(SITE, "Reset · Contoso"), (SITE, "Search · Contoso"), (SITE, "Home"), (SITE, "Cases")], {}),  # half: no majority
    ([(SITE, "Reset · Contoso"), (SITE, "Search · Contoso"), (SITE, "Cases · Contoso"), (SITE, "Home")],
     {SITE: "Contoso"}),
    ([("Portal.Example.COM", "Reset · Contoso"), (SITE, "Search · Contoso")], {SITE: "Contoso"}),  # hosts: any case
    ([(SITE, "Reset · Contoso"), ("other.example", "Search · Contoso")], {}),  # hosts apart
    ([(SITE, "A · Help · Contoso"), (SITE, "B · Help · Contoso")], {SITE: "Help · Contoso"}),  # as many: the longest
    ([(SITE, "A · Help · Contoso"), (SITE, "B · Help · Contoso"), (SITE, "Careers · Contoso")],
     {SITE: "Contoso"}),  # the most titles first
    ([(SITE, "A  |  Site "), (SITE, "B | Site")], {SITE: "Site"}),  # whitespace normalised
    ([(SITE, "A :: Site"), (SITE, "B » Site"), (SITE, "C – Site"), (SITE, "D — Site")], {SITE: "Site"}),
    ([(SITE, "A·Site"), (SITE, "B·Site")], {}),  # no spaces around it: not a separator
    ([(SITE, "A · " + "x" * (MAX_SUFFIX + 1)), (SITE, "B · " + "x" * (MAX_SUFFIX + 1))], {}),  # a sentence, not a name
    ([(SITE, ""), (SITE, "   ")], {}),
])
def test_titles_suffixes_from_a_table(pairs: list[tuple[str, str]], learnt: dict[str, str]) -> None:
    assert suffixes(pairs) == learnt


# --- stripping -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("title", "suffix", "stripped"), [
    ("Reset your password · Contoso Support", "Contoso Support", "Reset your password"),
    ("Products - Contoso", "Contoso", "Products"),
    ("Home | Site", "Site", "Home"),
    ("Home – Contoso", "Contoso", "Home"),  # any of the separators
    ("Contoso Support", "Contoso Support", "Contoso Support"),  # nothing would be left
    ("Contoso · Contoso", "Contoso", "Contoso"),
    ("Home · Contoso · Contoso", "Contoso", "Home"),  # repeated: all of it (so stripping twice changes nothing)
    ("  Home  |   Site ", "Site", "Home"),
    ("Home · Contoso Support Team", "Contoso Support", "Home · Contoso Support Team"),  # only at the end
    ("Home · My Contoso Support", "Contoso Support", "Home · My Contoso Support"),  # a whole segment only
    ("Home·Contoso", "Contoso", "Home·Contoso"),
    ("Home · contoso", "Contoso", "Home · contoso"),  # exact
    ("Home · Contoso", None, "Home · Contoso"),
    ("Home · Contoso", "", "Home · Contoso"),
    ("Dash - · Contoso", "Contoso", "Dash -"),
    ("", "Contoso", ""),
    ("  untouched  ", "Contoso", "  untouched  "),  # nothing stripped: the title as it came
])
def test_titles_strip_from_a_table(title: str, suffix: str | None, stripped: str) -> None:
    assert strip(title, suffix) == stripped


def test_titles_stripped_items_learn_from_the_items_and_copy_only_titled_ones() -> None:
    items: list[dict[str, Any]] = [
        {"type": "page_view", "url": f"https://{SITE}/a", "title": "Reset your password · Contoso Support"},
        {"type": "page_view", "url": f"https://{SITE.upper()}/b", "title": "Search · Contoso Support"},
        {"type": "page_view", "url": f"https://{SITE}/", "title": "Contoso Support"},
        {"type": "page_view", "url": "https://other.example/x", "title": "Elsewhere · Contoso Support"},
        {"type": "page_view", "url": "http://[::1", "title": "Broken · Contoso Support"},  # (does not parse)
        {"type": "search", "url": f"https://{SITE}/search/?q=vpn", "query": "vpn"},
        {"type": "page_view", "title": None},
    ]
    before = json.loads(json.dumps(items))
    out = stripped_items(items)
    assert [item.get("title") for item in out] == [
        "Reset your password", "Search", "Contoso Support", "Elsewhere · Contoso Support", "Broken · Contoso Support",
        None, None]
    assert items == before  # new dicts: the input is left as it was
    assert out[5] is items[5] and out[6] is items[6] and out[0] is not items[0]
    assert stripped_items([]) == []


# --- what a visitor cannot do --------------------------------------------------------------------

PIECES = ["Contoso", "Support", "Home", "a", "é", "→", " ", "  ", "\t", "\u00a0", "·", "-", "–", "—", "|", ":", "»",
          *SEPARATORS, "\u202e", "\u2066", "\u200b", "\u0000", "🙂"]
titles = st.one_of(st.lists(st.sampled_from(PIECES), max_size=14).map("".join), st.text(max_size=30))
suffix_texts = st.one_of(st.none(), st.sampled_from(["Contoso", "Contoso Support", "Support", "-", "a · Contoso",
                                                     "Home", " Contoso ", "·"]), titles)
TRAILING = "(?:" + "|".join(re.escape(s) for s in SEPARATORS) + ")"


@settings(derandomize=True, max_examples=500, deadline=None)
@given(title=titles, suffix=suffix_texts)
@example(title="Contoso · Contoso · Contoso", suffix="Contoso")
@example(title=" · Contoso", suffix="Contoso")
@example(title="a - - Contoso", suffix="- Contoso")
def test_titles_strip_never_empties_only_removes_a_trailing_segment_and_is_idempotent(
        title: str, suffix: str | None) -> None:
    stripped = strip(title, suffix)
    if title.strip():
        assert stripped.strip()
    assert strip(stripped, suffix) == stripped
    if stripped != title:
        # The title (whitespace normalised) is what is left, then one or more separator-and-suffix.
        text, wanted = normal(title), normal(suffix or "")
        assert wanted and text.startswith(stripped)
        assert re.fullmatch(f"(?:{TRAILING}{re.escape(wanted)})+", text[len(stripped):]), (title, suffix, stripped)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(hostile=st.lists(titles, max_size=30), names=st.lists(st.text("abcdé →", min_size=1, max_size=12), max_size=8))
@example(hostile=["x · Contoso Support"] * 3, names=["Reset your password"])
@example(hostile=[f"{i} · Support" for i in range(9)], names=["Reset", "Search"])
@example(hostile=[f"{i} - password · Contoso Support" for i in range(9)], names=["Reset password"])
def test_titles_a_visitor_strips_nothing_from_titles_that_do_not_end_in_their_suffix(
        hostile: list[str], names: list[str]) -> None:
    # The site's own pages, named without separators, beside whatever a visitor titled their events.
    own = [{"url": f"https://{SITE}/{i}", "title": f"{name.strip() or 'x'} · Contoso Support"}
           for i, name in enumerate(names)]
    theirs = [{"url": f"https://{SITE}/v/{i}", "title": title} for i, title in enumerate(hostile)]
    out = stripped_items(own + theirs)
    learnt = suffixes((SITE, item["title"]) for item in own + theirs).get(SITE)
    for before, after in zip(own + theirs, out, strict=True):
        ends_in_it = learnt is not None and bool(re.search(f"{TRAILING}{re.escape(learnt)}$", normal(before["title"])))
        if not ends_in_it:
            assert after["title"] == before["title"]
    for before, after in zip(own, out[:len(own)], strict=True):  # the site's pages: as they came, or their names
        assert after["title"] in (before["title"], normal(before["title"].rsplit(" · ", 1)[0]))


@settings(derandomize=True, max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=st.lists(st.tuples(st.sampled_from([SITE, "PORTAL.example.com", "b.example", ""]), titles), max_size=40))
def test_titles_a_learnt_suffix_is_shared_by_two_titles_and_most_of_its_host(pairs: list[tuple[str, str]]) -> None:
    for host, suffix in suffixes(pairs).items():
        distinct = {normal(title) for h, title in pairs if h.lower() == host and normal(title)}
        ending = [t for t in distinct if strip(t, suffix) != t]
        assert len(ending) >= 2 and 2 * len(ending) > len(distinct)
        assert suffix and len(suffix) <= MAX_SUFFIX


def test_titles_hostile_sizes_stay_quick() -> None:
    many = [(SITE, " - ".join(f"{i}.{j}" for j in range(40)) + " · Contoso") for i in range(5_000)]  # ~300 each
    long = " - Contoso" * 100_000  # a million characters, all separators and suffix
    odd = ["\u202e · \u2066Contoso\u2069", " :: " * 50_000, "»" * 100_000]
    started = time.perf_counter()
    learnt = suffixes([*many, (SITE, long), *((SITE, t) for t in odd)])
    assert learnt == {SITE: "Contoso"}
    assert strip(long, "Contoso") == "- Contoso"
    assert strip("x" + long, "Contoso") == "x"
    stripped_items([{"url": f"https://{h}/", "title": t} for h, t in many] + [{"url": "https://x/", "title": long}])
    for title in odd:
        assert strip(title, "Contoso") or title == ""
    assert time.perf_counter() - started < 10  # (well under a second here; the bound only catches a quadratic)


# --- the reports ---------------------------------------------------------------------------------

def contact_api(params: dict[str, str]) -> dict[str, Any]:
    request = func.HttpRequest("GET", f"http://localhost/api/contacts/{C1}/timeline", body=b"", params=params,
                               route_params={"contact_id": C1}, headers={"accept": "application/json"})
    response = function_app.contact_timeline(request)
    assert response.status_code == 200, response.get_body()
    return json.loads(response.get_body())


def test_titles_the_contact_timeline_shows_titles_without_the_site_suffix(store: Store) -> None:
    scene = Scene(store)
    scene.browse("visitor-aaaa", [
        (at(0, 9), "page_view", {"url": f"https://{SITE}/", "title": "Contoso Support"}),
        (at(0, 9, 1), "page_view", article("KA-00001") | {"title": "Reset your password · Contoso Support"}),
        (at(0, 9, 2), "page_view", {"url": f"https://{SITE}/support/", "title": "Support  ·  Contoso Support"}),
        (at(0, 9, 3), "search", {"url": f"https://{SITE}/search/?q=vpn", "query": "vpn", "results": 2}),
    ], contact=C1)
    report = contact_api({"from": "2031-03-09", "to": "2031-03-11"})
    assert [item.get("title") for item in report["interactions"]] == [
        "Contoso Support", "Reset your password", "Support", None]


def test_titles_the_insights_show_article_titles_without_the_site_suffix(store: Store) -> None:
    scene = Scene(store)
    scene.browse("visitor-aaaa", [(at(0, 9), "page_view", article("KA-00001") | {"title": "Reset · Contoso Support"}),
                                  (at(0, 9, 1), "page_view", article("KA-00002") | {"title": "VPN · Contoso Support"}),
                                  (at(0, 9, 2), "page_view", article("KA-00003") | {"title": "Printers"})], contact=C1)
    scene.case(C1, at(0, 10), "CAS-1")  # (the articles listed are those read before cases)
    status, report = insights_api("from=2031-03-10&to=2031-03-10")
    assert status == 200, report
    assert {row["article"]: (row["title"], row["url"]) for row in report["articles"]} == {
        "KA-00001": ("Reset", kb("KA-00001")), "KA-00002": ("VPN", kb("KA-00002")),
        "KA-00003": ("Printers", kb("KA-00003"))}
