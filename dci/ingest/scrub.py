"""Personal data people type into support search boxes, replaced before anything is stored.

E-mail addresses (Unicode ones too), IBANs, card-like digit runs (13–19 digits) and phone-like
runs (9–15 digits) become `[email]`, `[iban]`, `[card]` and `[phone]`: in search terms, page titles,
and URLs (each path segment and query value, decoded). What stays: identifiers
(digits glued to letters, `KB5034441`, `ORD-2026-001234`, `0x80070005`), dates, versions
(`10.0.19045.3803`) and short numbers.

Text is matched in its NFKC form, so a fullwidth `＠` or `４１１１` is the ASCII one; text with
something replaced comes back normalised, other text as it was. E-mail addresses are read from
each `@` only as far as their characters go; the number patterns start only where a token starts
(a look-behind) and never backtrack into what they consumed (possessive quantifiers). So the cost
is linear in the length of the text, whatever it holds (bench/scrub_bench.py).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from dci.text import INVISIBLE

# Total IBAN length per country, from the SWIFT IBAN registry (release 101).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29,
    "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
}

# local@domain.tld, found from each @: the domain (with a dot) read forwards, the local part read
# backwards (on the reversed text), each only as far as its characters go.
_AT_DOMAIN = re.compile(r"@([\w-]++(?:\.[\w-]++)++)")
_LOCAL_REVERSED = re.compile(r"[\w.%+-]++")
# Where an IBAN may start: two letters and two check digits, at the start of a token.
_IBAN_START = re.compile(r"(?<![^\W_])([A-Za-z]{2})\d{2}")
# A run of digits with the separators people type inside numbers (spaces, brackets, dots, dashes,
# slashes, bullets); it starts a token — not glued to a letter, digit, or an identifier's `-`, `.`,
# `/`, `#` — or follows an abbreviation's dot (`Tel.`, `Nr.`) or a `#`, and is counted, then judged.
_NUMBER_SEPARATORS = r"[\s()./\-\u2022\u00b7]"
_DIGIT_RUN = re.compile(rf"(?:(?<![\w.,/#-])|(?<=[A-Za-z]\.)|(?<=#))\+?\(?\d(?:{_NUMBER_SEPARATORS}*+\d)*+")
_DAY, _MONTH = r"(?:0?[1-9]|[12]\d|3[01])", r"(?:0?[1-9]|1[0-2])"
_YEAR = re.compile(r"(?<!\d)\d{4}(?!\d)")  # every date has one
_DATE = re.compile(rf"(?<!\d)(?:\d{{4}}-{_MONTH}-{_DAY}|{_DAY}[./-]{_MONTH}[./-]\d{{4}}|"
                   rf"{_MONTH}[./-]{_DAY}[./-]\d{{4}})(?!\d)")
# No number to scrub without four digits in a row, or digits broken by a separator. The URL form
# (with an @) is the check that lets most URLs through unparsed; it also knows %40, + and %20.
_QUICK_DIGITS = re.compile(rf"\d{{4}}|\d{_NUMBER_SEPARATORS}\d")
# (%C… to %F…: non-ASCII, fullwidth forms and invisible characters; %25: something encoded twice)
_QUICK_URL = re.compile(r"@|%40|%25|%[C-F]|\d{4}|\d(?:[+.()-]|%20)\d", re.IGNORECASE)
# The path is checked more strictly, so that an article's address (`/article/KA-01023/en-us`) stays
# unparsed: an e-mail address needs an @, a number to scrub nine digits (among separators, one of
# which a percent-escape may hide, as it may hide a digit; %C… to %F…: non-ASCII, fullwidth forms).
_QUICK_PATH = re.compile(r"@|%40|%25|%[C-F]|(?:\d|%(?:[23][0-9A-F]|0[9A-D])|[\s().+-]){9}", re.IGNORECASE)


def _emails(text: str) -> str:
    """`text` with every e-mail address replaced; each character is read at most twice."""
    out, done, reverse = [], 0, ""
    for candidate in _AT_DOMAIN.finditer(text):
        at, tld = candidate.start(), candidate.group(1).rpartition(".")[2]
        if at < done or len(tld) < 2 or not tld.isalpha():
            continue
        reverse = reverse or text[::-1]
        local = _LOCAL_REVERSED.match(reverse, len(text) - at)
        start = len(text) - local.end() if local else at
        if done <= start < at:
            out += [text[done:start], "[email]"]
            done = candidate.end()
    return "".join(out) + text[done:] if out else text


def _iban_valid(compact: str) -> bool:
    """ISO 13616: the right length for its country, and mod 97 of the rearranged number is 1."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    return int("".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])) % 97 == 1


def _ibans(text: str) -> str:
    """`text` with every valid IBAN replaced; each candidate start costs at most 70 characters."""
    out, done, position = [], 0, 0
    while (start := _IBAN_START.search(text, position)) is not None:
        end = _iban_end(text, start.start(), IBAN_LENGTHS.get(start.group(1).upper(), 0))
        if end is None:
            position = start.end()
            continue
        out += [text[done:start.start()], "[iban]"]
        done = position = end
    return "".join(out) + text[done:] if out else text


def _iban_end(text: str, start: int, length: int) -> int | None:
    """Where the IBAN of `length` letters and digits from `start` ends (single spaces or dashes may
    group them), if one is there and it is valid."""
    if not length:
        return None
    compact, index = [], start
    while len(compact) < length and index < len(text):
        ch = text[index]
        if ch.isascii() and ch.isalnum():
            compact.append(ch.upper())
        elif ch not in " -" or not compact or index + 1 >= len(text) or text[index + 1] in " -":
            return None
        index += 1
    if len(compact) < length or (index < len(text) and text[index].isalnum()):
        return None
    return index if _iban_valid("".join(compact)) else None


def _digits(match: re.Match[str]) -> str:
    text = match.group(0)
    if len(text) < 9 or not _YEAR.search(text) or not _DATE.search(text):  # (cheap checks first)
        return _number(text)
    out, start = [], 0  # dates stay; the digits around them are judged on their own
    for date in _DATE.finditer(text):
        out += [_DIGIT_RUN.sub(_number_of, text[start:date.start()]), date.group(0)]
        start = date.end()
    return "".join(out) + _DIGIT_RUN.sub(_number_of, text[start:])


def _number_of(match: re.Match[str]) -> str:
    return _number(match.group(0))


_NOT_DIGIT = re.compile(r"\D")


def _number(text: str) -> str:
    count = len(_NOT_DIGIT.sub("", text))
    if not 9 <= count <= 19:
        return text
    groups = text.split(".")
    if len(groups) > 1 and any(not 2 <= sum(ch.isdigit() for ch in group) <= 4 for group in groups):
        return text  # a version or an address (10.0.19045.3803, 192.168.1.10), not a dotted number
    if 13 <= count <= 19 and not text.startswith("+"):
        return "[card]"
    return "[phone]" if count <= 15 else text


def _digit_count(ascii_text: str) -> int:
    return len(ascii_text) - len(ascii_text.encode().translate(None, b"0123456789"))  # (the fastest count)


# What NFKC leaves that still splits or disguises an address or a number: invisible characters
# between its parts (removed), the ideographic full stop (a dot), the dashes and the minus sign.
_LOOKALIKES = str.maketrans({"\u3002": ".", **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-")})


def _folded(text: str) -> str:
    """Non-ASCII text as it is matched: NFKC (`＠` is `@`, `４` is `4`), invisible characters
    removed, look-alike dots and dashes as theirs."""
    return INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).translate(_LOOKALIKES)


def scrub(text: str) -> str:
    """`text` with e-mail addresses, IBANs, card numbers and phone numbers replaced."""
    if text.isascii() and "@" not in text and _digit_count(text) < 2:
        return text  # (most terms and titles: no @, and too few digits for any number to scrub)
    normal = text if text.isascii() else _folded(text)
    cleaned = _emails(normal) if "@" in normal else normal
    if _QUICK_DIGITS.search(cleaned):  # every IBAN, card or phone number has one of these
        cleaned = _DIGIT_RUN.sub(_digits, _ibans(cleaned))
    return text if cleaned == normal else cleaned


def scrub_url(url: str) -> str:
    """A URL whose path segments and query parameter values are scrubbed (search pages carry the
    query in `q`; profile or order pages may carry an address or a number in the path)."""
    address, _, query = url.partition("?")
    dirty_path = _path_may_hold(address)
    dirty_query = bool(query) and (not query.isascii() or _QUICK_URL.search(query) is not None)
    if not (dirty_path or dirty_query):
        return url
    parts = urlsplit(url)
    path, pairs = parts.path, parse_qsl(parts.query, keep_blank_values=True) if dirty_query else []
    if dirty_path:
        path = "/".join(_scrub_segment(segment) for segment in path.split("/"))
    cleaned = [(_scrub_decoded(name), _scrub_decoded(value)) for name, value in pairs]
    if path == parts.path and cleaned == pairs:
        return url
    return urlunsplit(parts._replace(path=path, query=urlencode(cleaned) if cleaned != pairs else parts.query))


def _path_may_hold(address: str) -> bool:
    """False when the URL up to its query surely holds nothing to scrub (so it is not parsed)."""
    if not address.isascii() or "@" in address:
        return True
    if "%" in address:
        return _QUICK_PATH.search(address) is not None
    return _digit_count(address) >= 9


MAX_DECODES = 8  # a value encoded more often than this is left as it is: 8 × 2 characters per `@` at least


def _decoded(text: str) -> str:
    """`text` percent-decoded until it no longer changes (`%252540` is an `@` encoded three times)."""
    for _ in range(MAX_DECODES):
        if "%" not in text or (again := unquote(text)) == text:
            break
        text = again
    return text


def _scrub_decoded(value: str) -> str:
    """A query parameter's name or value (decoded once already), scrubbed as the text it decodes to."""
    text = _decoded(value)
    cleaned = scrub(text)
    return value if cleaned == text else cleaned


def _scrub_segment(segment: str) -> str:
    """One path segment, scrubbed as the text it decodes to; re-encoded only when something changed."""
    text = _decoded(segment)
    cleaned = scrub(text)
    return segment if cleaned == text else quote(cleaned, safe="!$&'()*+,;=:@~")
