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
