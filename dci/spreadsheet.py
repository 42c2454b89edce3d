"""CSV that a spreadsheet opens as the text it is: pure.

UTF-8 with a byte-order mark (so Excel reads it as UTF-8, not the system code page), CRLF line
ends (RFC 4180), every text one line (dci/text.py), and no formulas: a cell whose first visible
character is `=`, `+`, `-` or `@` — the characters a spreadsheet reads as the start of a formula
(OWASP, "CSV injection") — gets a leading apostrophe, which shows the text as typed and is never
evaluated. "First visible" because an attack run got past a plain `startswith`: spaces, tabs,
NUL, zero-width characters (U+200B, U+FEFF) before the `=`, or its fullwidth form `＝`, which
NFKC folds to `=`. Search terms are typed by anyone on the portal: `=HYPERLINK("http://evil",
"click")` stays text.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Sequence

from dci.text import one_line

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MEDIA_TYPE = "text/csv; charset=utf-8"
# Skipped before the first visible character: controls, format characters (zero-width ones, BOM,
# bidirectional controls), spaces and separators, combining marks, and the Hangul fillers.
_INVISIBLE_CATEGORIES = frozenset(("Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me"))
_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")
_ASCII_INVISIBLE = "".join(map(chr, range(0x21))) + "\x7f"


def cell(value: object) -> str:
    """One cell's text: numbers as they are, text one line and neutralised when a spreadsheet would run it."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        text = one_line(str(value))
        return "'" + text if runs(text) else text
    return str(value)


def runs(text: str) -> bool:
    """True when a spreadsheet would read `text` as a formula: its first visible character, in
    NFKC form, starts one."""
    if text.isascii():
        return text.lstrip(_ASCII_INVISIBLE)[:1] in FORMULA_STARTS[:4]
    for ch in unicodedata.normalize("NFKC", text):
        if not (ch.isspace() or ch in _FILLERS or unicodedata.category(ch) in _INVISIBLE_CATEGORIES):
            return ch in FORMULA_STARTS
    return False


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """The CSV file of a table: header, then one line per row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return (BOM + out.getvalue()).encode()
