"""CSV exports open in a spreadsheet as text, never as formulas (pure, then through /api/insights)."""

from __future__ import annotations

import csv
import io
import json

import azure.functions as func
import pytest

import function_app
from dci.spreadsheet import BOM, cell, table
from tests.conftest import Store
from tests.test_insights import C1, Scene, at, search

HOSTILE = ['=HYPERLINK("http://evil.example","click")', "+1+1", "-2+3", "@SUM(A1:A2)", "\tindent", "\rreturn"]


@pytest.mark.parametrize("text", HOSTILE)
def test_spreadsheet_a_cell_a_spreadsheet_would_run_is_shown_as_typed(text: str) -> None:
    assert cell(text) == "'" + text


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
