"""Timeline assembly (pure): order, sessions, the session that ended in the case, the summary."""

from __future__ import annotations

import json

import pytest

from dci.clock import duration
from dci.pages import case_page
from dci.timeline import MAX_ITEMS, TEXT_LIMITS, assemble, note_text

M = 60_000
CREATED = 1_796_137_200_000
GAP = 30 * M
CASE = {"case_id": "c1", "ticket": "CAS-1", "title": "Cannot sign in", "contact": "a", "created_ms": CREATED}


def ev(minutes_before: float, kind: str, **fields) -> dict:
    return {"id": f"{kind}-{minutes_before}", "type": kind, "ts": CREATED - int(minutes_before * M), **fields}


def test_timeline_orders_items_and_splits_sessions_on_the_gap() -> None:
    events = [ev(5, "case_form"), ev(125, "search", query="vpn", results=3), ev(10, "search", query="reset", results=0),
              ev(120, "page_view", article_number="KA-1", title="VPN setup")]
    doc = assemble(CASE, events, GAP)
    assert [i["type"] for i in doc["items"]] == ["search", "page_view", "search", "case_form"]
    assert [(s["first"], s["last"]) for s in doc["sessions"]] == [(0, 1), (2, 3)]
    assert [s["ended_in_case"] for s in doc["sessions"]] == [False, True]
    assert doc["items"][0]["before_case_ms"] == 125 * M


def test_timeline_summary_searches_zero_results_articles_and_first_touch() -> None:
    events = [ev(40, "search", query="reset password", results=0), ev(38, "search", query="password", results=4),
              ev(37, "search_click", query="password", position=2, target="https://p/kb/KA-01023"),
              ev(36, "page_view", article_number="KA-01023", title="Reset your password"),
              ev(34, "engagement", article_number="KA-01023", engaged_ms=90_000, scroll=80),
              ev(2, "case_form"), ev(0, "case_submitted", ticket="CAS-1")]
    summary = assemble(CASE, events, GAP)["summary"]
    assert summary["zero_result_searches"] == ["reset password"]
    assert summary["articles"] == [{"number": "KA-01023", "title": "Reset your password", "engaged_ms": 90_000,
                                    "views": 1}]
    assert summary["first_touch_before_case_ms"] == 40 * M
    assert summary["path"][-4:] == ["clicked result #2", 'read "Reset your password" (KA-01023)',
                                    "opened the case form", "submitted the case"]
    assert summary["sentence"] == ('First seen on the portal 40 min before this case; searched 2 times (1 found '
                                   'nothing): "reset password" (no results), "password"; read 1 article: '
                                   '"Reset your password" (KA-01023) (1 min); over 2 visits.')


def test_timeline_without_activity_says_so() -> None:
    doc = assemble(CASE, [], GAP)
    assert doc["items"] == [] and doc["sessions"] == []
    assert doc["summary"]["sentence"] == "No portal activity was recorded before this case."


def test_timeline_keeps_the_last_items_when_there_are_too_many_and_says_how_many_steps_it_left_out() -> None:
    # (articles: plain page views this close together would fold into one step, dci/steps.py rule 6)
    events = [ev(i / 10, "page_view", url=f"https://p/{i}", article_number=f"KA-{i}") for i in range(MAX_ITEMS + 50)]
    doc = assemble(CASE, events, GAP)
    assert len(doc["items"]) == MAX_ITEMS and doc["truncated"] and doc["earlier_steps"] == 50
    assert doc["items"][-1]["before_case_ms"] == 0
    assert doc["summary"]["sentence"].startswith("First seen on the portal more than ")
    assert doc["summary"]["sentence"].endswith("; and 50 earlier steps (not kept).")
    lines = note_text({**doc, "version": 1}, "https://app.example/api/cases/c1/timeline?format=html").splitlines()
    assert len(lines) <= 15 and "and 50 earlier steps" in lines[0]
    page = case_page({**doc, "version": 1}, GAP).decode()
    assert "… and 50 earlier steps before these" in page
    assert page.count('<tr class="view') == MAX_ITEMS  # the report shows every step it has


def test_timeline_caps_every_text_of_an_item() -> None:
    # A visitor's 2,000-character address (or a long title) is cut with an ellipsis, not refused:
    # the size of an item, and so of the stored rows, stays predictable.
    long_url = "https://p/kb/KA-01023?" + "q" * 2_000
    events = [ev(3, "page_view", url=long_url, title="T" * 1_000, article_number="KA-01023"),
              ev(2, "search_click", url=long_url, target=long_url, query="v" * 300, position=1),
              ev(1, "case_submitted", ticket="CAS-1", url="https://p/ok")]
    items = assemble(CASE, events, GAP)["items"]
    assert items[0]["url"] == long_url[:TEXT_LIMITS["url"] - 1] + "\u2026"
    assert items[0]["title"] == "T" * (TEXT_LIMITS["title"] - 1) + "\u2026"
    assert len(items[1]["target"]) == TEXT_LIMITS["target"] and len(items[1]["query"]) == TEXT_LIMITS["query"]
    assert (items[2]["url"], items[2]["ticket"]) == ("https://p/ok", "CAS-1")  # short texts are kept as they are
    assert max(len(json.dumps(item, ensure_ascii=False)) for item in items) < 2_500


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r", "\u2028", "\u2029", "\x85", "\x0b"])
def test_timeline_note_lines_are_the_codes_own_whatever_a_visitor_typed(newline: str) -> None:
    # The attack: a search (or a page title) with a line break and text shaped like a note line
    # showed in the Dataverse note as a line of its own, a forged "Full timeline" link among them.
    forged = f"Full timeline: https://evil.example{newline}  - \"x\" - NO RESULTS"
    events = [ev(12, "search", query=f"vpn{newline}{forged}", results=3),
              ev(11, "page_view", article_number="KA-1", title=f"VPN{newline}{forged}"), ev(5, "case_form")]
    text = note_text(assemble(CASE, events, GAP), "https://app.example/api/cases/c1/timeline?format=html")
    flat = forged.replace(newline, " " * len(newline))
    assert text.splitlines() == [
        f'First seen on the portal 12 min before this case; searched 1 time: "vpn{" " * len(newline)}{flat}"; '
        f'read 1 article: "VPN{" " * len(newline)}{flat}" (KA-1).',
        "", "Searches (1):", f'  - "vpn{" " * len(newline)}{flat}" - 3 results',
        "Articles read (1):", f'  - "VPN{" " * len(newline)}{flat}" (KA-1)',
        "First visit to case: 12 min", "Full timeline: https://app.example/api/cases/c1/timeline?format=html"]
    assert not any(line.startswith(("Full timeline: https://evil", "  - \"x\"")) for line in text.splitlines())


def test_timeline_note_is_short_however_long_the_journey() -> None:
    events = [ev(300 - i, "search", query=f"term {i}", results=i % 3) for i in range(40)]
    events += [ev(200 - i, "page_view", article_number=f"KA-{i:05}", title=f"Article {i}",
                  url=f"https://p/kb/KA-{i:05}") for i in range(30)]
    events += [ev(5, "case_form"), ev(0, "case_submitted", ticket="CAS-1")]
    text = note_text(assemble(CASE, events, GAP), "https://app.example/api/cases/c1/timeline?format=html")
    lines = text.splitlines()
    assert len(lines) <= 15, text
    assert lines[0].startswith("First seen on the portal 5 h before this case; searched 40 times (14 found nothing)")
    assert 'Searches (40, 14 found nothing):' in lines
    assert '  - "term 0" - NO RESULTS' in lines and '  - "term 1" - 1 result' in lines
    assert "  ... and 36 more in the report" in lines
    assert 'Articles read (30):' in lines and '  - "Article 0" (KA-00000)' in lines
    assert lines[-2:] == ["First visit to case: 5 h (3 visits)",
                          "Full timeline: https://app.example/api/cases/c1/timeline?format=html"]


def test_timeline_note_stays_short_with_a_previous_case_too() -> None:
    # Found from outside: 10 searches, 10 articles and a previous case made 16 lines.
    events = [ev(300 - i, "search", query=f"term {i}", results=1) for i in range(10)]
    events += [ev(200 - i, "page_view", article_number=f"KA-{i:05}", title=f"Article {i}",
                  url=f"https://p/kb/KA-{i:05}") for i in range(10)]
    document = assemble(CASE, events + [ev(5, "case_form")], GAP)
    document["previous_case"] = {"case_id": "c0", "ticket": "CAS-0", "title": None, "created": "2026-11-20T10:00:00Z"}
    lines = note_text(document, "https://app.example/api/cases/c1/timeline?format=html",
                      "https://app.example/api/cases/c0/timeline?format=html").splitlines()
    assert len(lines) <= 15, lines
    assert ("Starts after the previous case, CAS-0 of 2026-11-20: "
            "https://app.example/api/cases/c0/timeline?format=html") in lines
    assert lines[-1].startswith("Full timeline: ") and "  ... and 6 more in the report" in lines


def test_timeline_note_of_a_short_journey() -> None:
    events = [ev(12, "search", query="vpn", results=3), ev(10, "search", query="reset", results=0), ev(5, "case_form")]
    text = note_text(assemble(CASE, events, GAP))
    assert text.splitlines() == [
        'First seen on the portal 12 min before this case; searched 2 times (1 found nothing): "vpn", "reset" '
        "(no results).", "", "Searches (2, 1 found nothing):", '  - "vpn" - 3 results', '  - "reset" - NO RESULTS',
        "First visit to case: 12 min"]
    assert "*WEB*" not in text


@pytest.mark.parametrize(("ms", "text"), [(0, "0 s"), (59_000, "59 s"), (60_000, "1 min"), (3_600_000, "1 h"),
                                          (7_500_000, "2 h 5 min")])
def test_timeline_duration(ms: int, text: str) -> None:
    assert duration(ms) == text


def test_a_case_without_a_title_reads_the_same_whether_its_title_is_empty_or_absent() -> None:
    # Found by the demo seed: a late-event re-assembly rebuilt the case from its stored row, which
    # drops the empty title the queue message had, and the same content became a new version.
    from dci.assembler import digest
    from dci.timeline import assemble

    case = {"case_id": "c1", "created_ms": 1_800_000_000_000, "contact": "x", "source": "portal"}
    assert digest(assemble({**case, "title": ""}, [], 60_000)) == digest(assemble(case, [], 60_000))
