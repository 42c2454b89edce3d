"""CSV exports open in a spreadsheet as text, never as formulas (pure, then through /api/insights)."""

from __future__ import annotations

import csv
import io
import json
import unicodedata

import azure.functions as func
import pytest

import function_app
from dci.spreadsheet import BOM, cell, table
from tests.conftest import Store
from tests.test_insights import C1, Scene, at, kb, search

HOSTILE = ['=HYPERLINK("http://evil.example","click")', "+1+1", "-2+3", "@SUM(A1:A2)", "\tindent", "\rreturn"]


@pytest.mark.parametrize("text", HOSTILE)
def test_spreadsheet_a_cell_a_spreadsheet_would_run_is_shown_as_typed(text: str) -> None:
    # A tab or carriage return first is a space now (one line), which starts no formula.
    assert cell(text) == ("'" + text if text[0] not in "\t\r" else " " + text[1:])


@pytest.mark.parametrize(("value", "shown"), [("vpn", "vpn"), ("a=b", "a=b"), (12, "12"), (-3, "-3"), (0.25, "0.25"),
                                              (None, ""), (True, "True"), ("", "")])
def test_spreadsheet_everything_else_is_itself(value: object, shown: str) -> None:
    assert cell(value) == shown


def test_spreadsheet_table_is_utf8_with_a_bom_and_crlf_lines() -> None:
    body = table(("search", "times"), [('café "au lait"', 2), ("=1+2", 1)])
    assert body.startswith(BOM.encode())
    text = body.decode("utf-8")
    assert text[1:].split("\r\n") == ["search,times", '"café ""au lait""",2', "'=1+2,1", ""]


def insights_csv(query: str, accept: str | None = None) -> func.HttpResponse:
    params = dict(p.split("=", 1) for p in query.split("&") if p)
    return function_app.insights(func.HttpRequest("GET", f"http://localhost/api/insights?{query}", body=b"",
                                                  params=params, headers={"accept": accept} if accept else {}))


def test_spreadsheet_insights_export_keeps_hostile_terms_as_text(store: Store) -> None:
    scene = Scene(store)
    scene.browse("visitor-hhhh", [(at(0, 9), "search", search(HOSTILE[0], 0)), (at(0, 9, 1), "search",
                                                                                  search("vpn", 0))], contact=C1)
    scene.case(C1, at(0, 10), "CAS-1")
    response = insights_csv("from=2031-03-10&to=2031-03-10&format=csv&table=zero-results")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == \
        'attachment; filename="insights-zero-results-2031-03-10-to-2031-03-10.csv"'
    rows = list(csv.reader(io.StringIO(response.get_body().decode("utf-8-sig"))))
    assert rows[0] == ["search", "times", "then a case", "cases after"]
    assert sorted(rows[1:]) == [["'" + HOSTILE[0].lower(), "1", "1", "1"], ["vpn", "1", "1", "1"]]
    # Asked for by its media type; the other tables; a table that does not exist.
    assert insights_csv("from=2031-03-10&to=2031-03-10", "text/csv").get_body().decode("utf-8-sig").startswith(
        "search,cases after,all searches\r\n")
    articles = insights_csv("from=2031-03-10&to=2031-03-10&format=csv&table=articles").get_body()
    assert articles.decode("utf-8-sig").startswith(
        "article,title,address,cases after,reads,failed to deflect,interval low,interval high\r\n")
    bad = insights_csv("format=csv&table=everything")
    assert bad.status_code == 400 and json.loads(bad.get_body())["errors"][0]["field"] == "table"


# Found by the attack run: a formula behind something a plain `startswith` does not see.
BYPASSES = ["\x00=1+1", "\u200b=HYPERLINK(\"http://evil.example\")", "\ufeff+1+1", "  -2+3", "\t=1", " \t@SUM(A1)",
            "\uff1d1+1", "\uff0b1", "\uff0d1", "\uff20SUM(A1)", "\u3000=1", "\u00a0=1", "\u200b \uff1dX", "\u202e=1",
            "\r\n=1", "\ufe66cmd", "\u2060=1"]


def _shown_as_text(text: str) -> bool:
    """An independent reading: an apostrophe first, or a first visible character that starts no formula."""
    if text.startswith("'"):
        return True
    visible = unicodedata.normalize("NFKC", text).lstrip(" \t\r\n\x00\u200b\ufeff\u2060\u202e\u3000\xa0")
    return visible[:1] not in ("=", "+", "-", "@")


@pytest.mark.parametrize("text", BYPASSES)
def test_spreadsheet_a_formula_behind_invisible_space_or_fullwidth_characters_is_text(text: str) -> None:
    shown = cell(text)
    assert shown.startswith("'") and _shown_as_text(shown)
    assert shown.splitlines() == [shown[1:]] or shown.splitlines() == [shown]  # one line, the rest as it was


@pytest.mark.parametrize("text", ["vpn", "a=b", "e-mail", "ｖｐｎ", "\u00a0vpn", "  reset", "KA-01023", "日本語"])
def test_spreadsheet_text_that_starts_no_formula_is_kept(text: str) -> None:
    assert cell(text) == text


@pytest.mark.parametrize("brk", ["\n", "\r\n", "\u2028", "\x85"])
def test_spreadsheet_a_cell_is_one_line(brk: str) -> None:
    assert cell(f"vpn{brk}=1+1") == "vpn" + " " * len(brk) + "=1+1"


def test_spreadsheet_every_insights_export_keeps_the_bypasses_as_text(store: Store) -> None:
    scene = Scene(store)
    events = []
    for index, text in enumerate(BYPASSES):
        events += [(at(0, 9, index), "search", search(text, 0)), (at(0, 9, index), "search", search(text, 2))]
        events.append((at(0, 9, index), "page_view", {"article": {"number": f"KA-{index:05d}", "lang": "en-us"},
                                                       "title": text, "url": kb(f"KA-{index:05d}")}))
    scene.browse("visitor-hhhh", events, contact=C1)
    scene.case(C1, at(0, 10), "CAS-1")
    for name in ("searches", "zero-results", "articles"):
        response = insights_csv(f"from=2031-03-10&to=2031-03-10&format=csv&table={name}")
        assert response.status_code == 200, name
        text = response.get_body().decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text)))
        assert len(rows) > len(BYPASSES) // 2, (name, len(rows))  # (terms that differ only in spaces are one)
        assert len(text.split("\r\n")) == len(rows) + 1  # no line break inside a cell
        for row in rows[1:]:
            first = row[0] if name != "articles" else row[1]  # the term, or the article's title
            assert first.startswith("'") and _shown_as_text(first), (name, first)
            assert all(_shown_as_text(value) for value in row), (name, row)
