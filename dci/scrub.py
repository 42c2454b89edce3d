"""Personal data people type into support search boxes, replaced before anything is stored.

E-mail addresses, card-like digit runs (13–19 digits) and phone numbers (9–15 digits) become
`[email]`, `[card]` and `[phone]`. Shorter numbers — article numbers, dates, error codes — stay.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# A run of digits with the separators people type inside numbers; counted, then judged.
_DIGIT_RUN = re.compile(r"\+?\(?\d(?:[\d\s().-]*\d)?")
# Nothing to scrub without an @, four digits in a row, or digits broken by a separator: most
# text is let through after this one search. The URL form also knows %40 and + / %20 for spaces.
_QUICK = re.compile(r"@|\d{4}|\d[\s().-]\d")
_QUICK_URL = re.compile(r"@|%40|\d{4}|\d(?:[+.()-]|%20)\d", re.IGNORECASE)


def _digits(match: re.Match[str]) -> str:
    text = match.group(0)
    count = sum(ch.isdigit() for ch in text)
    if 13 <= count <= 19 and not text.startswith("+"):
        return "[card]"
    if 9 <= count <= 15:
        return "[phone]"
    return text


def scrub(text: str) -> str:
    """`text` with e-mail addresses, card numbers and phone numbers replaced."""
    if not _QUICK.search(text):
        return text
    return _DIGIT_RUN.sub(_digits, _EMAIL.sub("[email]", text))


def scrub_url(url: str) -> str:
    """A URL whose query parameter values are scrubbed (search pages carry the query in `q`)."""
    query = url.partition("?")[2]
    if not query or not _QUICK_URL.search(query):
        return url
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    cleaned = [(name, scrub(value)) for name, value in pairs]
    if cleaned == pairs:
        return url
    return urlunsplit(parts._replace(query=urlencode(cleaned)))
