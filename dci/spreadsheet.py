"""CSV that a spreadsheet opens as the text it is: pure.

UTF-8 with a byte-order mark (so Excel reads it as UTF-8, not the system code page), CRLF line
ends (RFC 4180), and no formulas: a cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage
return — the characters a spreadsheet reads as the start of a formula (OWASP, "CSV injection") —
gets a leading apostrophe, which shows the text as typed and is never evaluated. Search terms
are typed by anyone on the portal: `=HYPERLINK("http://evil", "click")` stays text.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MEDIA_TYPE = "text/csv; charset=utf-8"


def cell(value: object) -> str:
    """One cell's text: numbers as they are, text neutralised when a spreadsheet would run it."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        text = str(value)
        return "'" + text if text.startswith(FORMULA_STARTS) else text
    return str(value)


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """The CSV file of a table: header, then one line per row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return (BOM + out.getvalue()).encode()
