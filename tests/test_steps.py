"""One step per thing the customer did (pure): the rules of dci/steps.py, each from a table."""

from __future__ import annotations

from typing import Any

import pytest

from dci.steps import describe, steps

S = 1_000
BASE = "https://portal.example.com"
KB = f"{BASE}/knowledgebase/article/KA-01024/en-us"
SEARCH = f"{BASE}/search/?q=vpn"


def item(second: float, kind: str, browser: str = "laptop", how: str = "verified", **fields: Any) -> dict[str, Any]:
    return {"id": f"{browser}-{kind}-{second}", "type": kind, "ms": int(second * S), "visitor": browser,
            "attribution": how, **fields}


def kinds_and_texts(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(step["kind"], step["text"]) for step in steps(items)]


CASES = {
    "a page view carries the time spent and the scroll of its page": (
        [item(0, "page_view", url=KB, title="Set up the VPN client", article_number="KA-01024"),
         item(40, "engagement", url=KB, engaged_ms=38_000, scroll=60),
         item(95, "engagement", url=KB, engaged_ms=20_000, scroll=100)],
        [("signin", "Signed in"),
         ("view", 'Read "Set up the VPN client" (KA-01024) (58 s on the page, scrolled 100 %)')]),
    "the results page reported before its search is the search": (
        [item(0, "page_view", url=SEARCH, title="Search: vpn"), item(3, "search", url=SEARCH, query="vpn", results=1)],
        [("signin", "Signed in"), ("search", 'Searched "vpn" – 1 result')]),
    "the results page reported after its search is the search": (
        [item(0, "search", url=SEARCH, query="vpn", results=0), item(2, "page_view", url=SEARCH)],
        [("signin", "Signed in"), ("search", 'Searched "vpn" – no results')]),
    "a results page an hour later is a visit of its own": (
        [item(0, "search", url=SEARCH, query="vpn", results=2), item(3600, "page_view", url=SEARCH, title="Search")],
        [("signin", "Signed in"), ("search", 'Searched "vpn" – 2 results'), ("view", 'Viewed "Search"')]),
    "reloads are one step, counted": (
        [item(0, "page_view", url=f"{BASE}/contact-us/", title="Contact us"),
         item(5, "page_view", url=f"{BASE}/contact-us/", title="Contact us"),
         item(9, "page_view", url=f"{BASE}/contact-us/", title="Contact us")],
        [("signin", "Signed in"), ("view", 'Viewed "Contact us" (3 times)')]),
    "a click names the page it opened, from the view of that address": (
        [item(0, "search", url=SEARCH, query="vpn", results=1),
         item(4, "search_click", query="vpn", position=1, target=KB),
         item(5, "page_view", url=KB, title="Set up the VPN client", article_number="KA-01024")],
        [("signin", "Signed in"), ("search", 'Searched "vpn" – 1 result'),
         ("click", 'Opened search result #1: "Set up the VPN client" (KA-01024)'),
         ("view", 'Read "Set up the VPN client" (KA-01024)')]),
    "a click whose page was not seen names the article its link names": (
        [item(4, "search_click", query="vpn", position=2, target=f"{BASE}/knowledgebase/article/KA-09999")],
        [("signin", "Signed in"), ("click", "Opened search result #2: KA-09999")]),
    "the case form's page and the confirmation page are the case steps": (
        [item(0, "page_view", url=f"{BASE}/support/create-case/", title="Create a case"),
         item(1, "case_form", url=f"{BASE}/support/create-case/"),
         item(60, "page_view", url=f"{BASE}/support/case-created/", title="Case created"),
         item(61, "case_submitted", url=f"{BASE}/support/case-created/", ticket="CAS-00001-ABCDEF")],
        [("signin", "Signed in"), ("case_form", "Opened the case form"),
         ("case_submitted", "Submitted case CAS-00001-ABCDEF")]),
    "signing in after anonymous browsing says the earlier activity is theirs": (
        [item(0, "page_view", how="stitched", url=KB, title="Set up the VPN client", article_number="KA-01024"),
         item(60, "page_view", url=f"{BASE}/", title="Home")],
        [("view", 'Read "Set up the VPN client" (KA-01024)'),
         ("signin", "Signed in here; the earlier activity on this browser is attributed to them"),
         ("view", 'Viewed "Home"')]),
    # Rule 6: navigation folds.
    "home page views in a row are one step, a language root among them": (
        [item(0, "page_view", url=f"{BASE}/", title="Home"), item(4, "page_view", url=f"{BASE}/en-US/", title="Home"),
         item(6, "page_view", url=f"{BASE}/", title="Home")],
        [("signin", "Signed in"), ("browse", "Visited the home page 3 times")]),
    "a mix of plain pages names each page once, its reloads counted as views": (
        [item(0, "page_view", url=f"{BASE}/", title="Home"), item(3, "page_view", url=f"{BASE}/products/",
                                                                     title="Products"),
         item(5, "page_view", url=f"{BASE}/", title="Home"), item(7, "page_view", url=f"{BASE}/contact-us/",
                                                                  title="Contact us")],
        [("signin", "Signed in"), ("browse", "Browsed 4 pages: Home, Products, Contact us")]),
    "more than three pages: three named and the rest counted; a page without a title by its path": (
        [item(s, "page_view", url=f"{BASE}/{name}/", title=name.title() if s else None)
         for s, name in enumerate(["about", "products", "pricing", "partners", "legal"])],
        [("signin", "Signed in"), ("browse", "Browsed 5 pages: /about/, Products, Pricing and 2 more")]),
    "a single plain view stays a view": (
        [item(0, "page_view", url=f"{BASE}/", title="Home"),
         item(5, "page_view", url=KB, title="Set up the VPN client", article_number="KA-01024")],
        [("signin", "Signed in"), ("view", 'Viewed "Home"'), ("view", 'Read "Set up the VPN client" (KA-01024)')]),
    "ten seconds on a page is reading it, not passing through: it ends the run": (
        [item(0, "page_view", url=f"{BASE}/", title="Home"), item(2, "page_view", url=f"{BASE}/products/",
                                                                     title="Products"),
         item(14, "engagement", url=f"{BASE}/products/", engaged_ms=10_000),
         item(15, "page_view", url=f"{BASE}/", title="Home"), item(17, "page_view", url=f"{BASE}/pricing/",
                                                                   title="Pricing")],
        [("signin", "Signed in"), ("view", 'Viewed "Home"'), ("view", 'Viewed "Products" (10 s on the page)'),
         ("browse", "Browsed 2 pages: Home, Pricing")]),
    "an article, a search or the case form between plain pages ends the run": (
        [item(0, "page_view", url=f"{BASE}/", title="Home"), item(2, "page_view", url=f"{BASE}/a/", title="A"),
         item(4, "page_view", url=KB, title="VPN", article_number="KA-01024"),
         item(6, "page_view", url=f"{BASE}/", title="Home"), item(8, "page_view", url=f"{BASE}/b/", title="B"),
         item(10, "search", url=SEARCH, query="vpn", results=2),
         item(12, "page_view", url=f"{BASE}/", title="Home"), item(14, "page_view", url=f"{BASE}/", title="Home"),
         item(16, "page_view", url=f"{BASE}/support/create-case/", title="Create a case"),
         item(17, "case_form", url=f"{BASE}/support/create-case/")],
        [("signin", "Signed in"), ("browse", "Browsed 2 pages: Home, A"), ("view", 'Read "VPN" (KA-01024)'),
         ("browse", "Browsed 2 pages: Home, B"), ("search", 'Searched "vpn" – 2 results'),
         ("view", 'Viewed "Home" (2 times)'), ("case_form", "Opened the case form")]),
    "a search or case-form page seen on its own is no navigation": (
        [item(0, "search", url=SEARCH, query="vpn", results=2), item(3600, "page_view", url=f"{BASE}/", title="Home"),
         item(3602, "page_view", url=f"{BASE}/search/?q=printer", title="Search"),
         item(3604, "page_view", url=f"{BASE}/support/create-case/", title="Create a case")],
        [("signin", "Signed in"), ("search", 'Searched "vpn" – 2 results'), ("view", 'Viewed "Home"'),
         ("view", 'Viewed "Search"'), ("view", 'Viewed "Create a case"')]),
    "views further apart than the visit gap never fold": (
        [item(0, "page_view", url=f"{BASE}/", title="Home"), item(31 * 60, "page_view", url=f"{BASE}/a/", title="A")],
        [("signin", "Signed in"), ("view", 'Viewed "Home"'), ("view", 'Viewed "A"')]),
}


@pytest.mark.parametrize(("items", "expected"), CASES.values(), ids=CASES.keys())
def test_steps_rule(items: list[dict[str, Any]], expected: list[tuple[str, str]]) -> None:
    assert kinds_and_texts(items) == expected


def test_steps_two_browsers_at_once_keep_their_own_pages() -> None:
    # A phone and a laptop used together: folding on one never touches the other's steps.
    items = [item(0, "page_view", "phone", url=SEARCH), item(1, "page_view", "laptop", url=KB, title="VPN"),
             item(2, "search", "phone", url=SEARCH, query="vpn", results=3),
             item(3, "engagement", "laptop", url=KB, engaged_ms=3_000),
             item(4, "page_view", "laptop", url=KB, title="VPN")]
    assert kinds_and_texts(items) == [("signin", "Signed in"), ("signin", "Signed in"),
                                      ("view", 'Viewed "VPN" (2 times, 3 s on the page)'),
                                      ("search", 'Searched "vpn" – 3 results')]


def test_steps_keep_every_event_id_and_mark_zero_result_searches() -> None:
    items = [item(0, "page_view", url=SEARCH), item(2, "search", url=SEARCH, query="refund", results=0),
             item(9, "engagement", url=SEARCH, engaged_ms=7_000)]
    (signin, search) = steps(items)
    assert search["zero"] and search["how"] == "signed in"
    assert signin["ids"] == [] and sorted(search["ids"]) == sorted(i["id"] for i in items)


# Data stored before collect made it one line (the attack run's forged note line after a break).
FORGED = "Full timeline: https://evil.example/"


@pytest.mark.parametrize("brk", ["\n", "\r\n", "\u2028", "\x85", "\u202e"])
def test_steps_texts_stored_with_line_breaks_are_shown_on_one_line(brk: str) -> None:
    from dci.timeline import _path  # the note's "path" is built from these steps

    page = f"{BASE}/profile/a%0A{FORGED.replace(' ', '%20')}"
    items = [item(0, "search", url=SEARCH, query=f"vpn{brk}{FORGED}", results=0),
             item(4, "search_click", query="vpn", position=1, target=KB),
             item(5, "page_view", url=KB, title=f"VPN{brk}{FORGED}", article_number="KA-01024"),
             item(9, "page_view", url=page),
             item(20, "page_view", url=f"{BASE}/other/", title=f"Other{brk}{FORGED}")]
    for step in steps(items):
        for text in (step["text"], step.get("query") or "", step.get("title") or "",
                     (step.get("article") or {}).get("title") or ""):
            assert text.splitlines() == [text] or text == "", (step["kind"], text)
    path = _path(items)
    assert path and all(label.splitlines() == [label] for label in path)
    assert all(text.splitlines() == [text] for text in (describe(step) for step in steps(items)))


def test_steps_a_folded_run_keeps_every_event_its_first_time_and_its_browser() -> None:
    items = [item(0, "page_view", url=f"{BASE}/", title="Home", before_case_ms=90_000),
             item(1, "page_view", "phone", url=SEARCH, title="Search"),  # another browser: its own steps
             item(2, "engagement", url=f"{BASE}/", engaged_ms=2_000, before_case_ms=88_000),
             item(3, "page_view", url=f"{BASE}/en-US/", title="Home", before_case_ms=87_000),
             item(4, "page_view", "phone", url=f"{BASE}/", title="Home"),
             item(5, "page_view", url=f"{BASE}/", title="Home", before_case_ms=85_000)]
    laptop_signin, browse, phone_signin, search_page, home = steps(items)
    assert (laptop_signin["kind"], phone_signin["kind"]) == ("signin", "signin")
    assert browse["kind"] == "browse" and browse["text"] == "Visited the home page 3 times"
    assert browse["ms"] == 0 and browse["before_case_ms"] == 90_000 and browse["how"] == "signed in"
    assert sorted(browse["ids"]) == sorted(i["id"] for i in items if i["visitor"] == "laptop")
    assert (browse["times"], browse["engaged_ms"], browse["home"], browse["pages"]) == (3, 2_000, True, ["Home"])
    assert (search_page["kind"], home["kind"]) == ("view", "view")  # one plain view on the phone: no run
    assert not any(key.startswith("_") for step in steps(items) for key in step)


def test_steps_fold_only_within_the_gap_given() -> None:
    items = [item(0, "page_view", url=f"{BASE}/", title="Home"), item(120, "page_view", url=f"{BASE}/a/", title="A")]
    assert [step["kind"] for step in steps(items)] == ["signin", "browse"]
    assert [step["kind"] for step in steps(items, gap_ms=60 * S)] == ["signin", "view", "view"]
