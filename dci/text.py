"""Text from visitors, made safe to show on one line: pure.

Search terms, page titles and addresses come from anyone on the portal. Wherever they are shown —
the note on a case, a report page, a CSV cell — each must stay one line of the text a reader sees:

* a line break (`\\n`, `\\r\\n`, U+0085, U+2028, U+2029), any other control character, or a
  bidirectional control (which reorders what follows it on screen) could make a typed search look
  like a line of the note itself: each becomes a space, and so does the blank Braille pattern;
* a character Unicode calls default-ignorable (format characters, variation selectors, tag
  characters that spell hidden text, interlinear annotations, zero-width spaces, soft hyphens,
  Hangul fillers …) shows nothing to the agent, yet copy-paste, search and any tool that
  summarises the case read it: each is removed. The zero-width joiner and non-joiner and the
  emoji and text presentation selectors stay only where scripts and emoji use them (`_joined`):
  a joiner between two letters of a joining script (Arabic, Indic, …) or two emoji, a selector
  after a symbol or a keycap's digit. Anywhere else (after a Latin letter, in a run) they could
  only carry something hidden, and go.
"""

from __future__ import annotations

import re
import unicodedata

# C0 and C1 controls (U+0085 among them), DEL, the line and paragraph separators, Unicode's
# Bidi_Control characters (marks, embeddings, overrides, isolates), and the blank Braille pattern.
_SPACE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\u2800]")
# Default_Ignorable_Code_Point (Unicode 15.1) and the other format characters (category Cf), but
# the joiners and presentation selectors kept below.
IGNORABLE = ("\u00ad\u034f\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5\u180b-\u180f"
             "\u200b\u2060-\u2065\u206a-\u206f\u3164\ufe00-\ufe0d\ufeff\ufff0-\ufffb\uffa0\U000110bd"
             "\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff")
JOINERS = "\u200c\u200d\ufe0e\ufe0f"
_DROP = re.compile(f"[{IGNORABLE}]")
_JOINER = re.compile(f"[{JOINERS}]")
INVISIBLE = re.compile(f"[{IGNORABLE}{JOINERS}]")  # all of them, joiners too (what the scrubber ignores)
# Scripts whose letters a zero-width (non-)joiner shapes: Arabic, Syriac, Thaana, NKo and the
# rest of the right-to-left block; the Indic scripts; Tibetan, Myanmar, Khmer, Mongolian; Arabic
# presentation forms.
_JOINING = re.compile("[\u0600-\u08ff\u0900-\u0dff\u0f00-\u109f\u1780-\u18af\ua800-\uabff"
                      "\ufb50-\ufdff\ufe70-\ufefc]")


def one_line(text: str) -> str:
    """`text` with every control, line or paragraph separator and bidirectional control as a space,
    and every default-ignorable character removed (a joiner or presentation selector only where a
    script or an emoji uses it stays)."""
    if text.isascii() and text.isprintable():  # (the common case: nothing to do)
        return text
    kept = _DROP.sub("", _SPACE.sub(" ", text))
    return _JOINER.sub(_joined, kept) if _JOINER.search(kept) else kept


def _joined(match: re.Match[str]) -> str:
    """A joiner or selector where a script or emoji uses it; "" anywhere else."""
    text, at, mark = match.string, match.start(), match.group(0)
    before = text[at - 1] if at > 0 else ""
    after = text[at + 1] if at + 1 < len(text) else ""
    if mark in "\ufe0e\ufe0f":  # after a symbol (❤️, ©️), or a keycap's digit (1️⃣)
        keep = _symbol(before) or (before in "0123456789#*" and after == "\u20e3")
        return mark if keep else ""
    if mark == "\u200d" and before in "\ufe0e\ufe0f" and at > 1:  # (❤️‍🔥: the joiner follows the selector)
        before = text[at - 2]
    if _JOINING.match(before or " ") and _JOINING.match(after or " "):
        return mark
    return mark if mark == "\u200d" and _symbol(before) and _symbol(after) else ""


def _symbol(ch: str) -> bool:
    """An emoji or other symbol (a skin tone modifier too)."""
    return bool(ch) and unicodedata.category(ch) in ("So", "Sk")


def printable_url(url: str) -> str:
    """`url` with each of the characters `one_line` replaces or removes percent-encoded: an address
    keeps what it names, and shows nothing it does not."""
    if url.isascii() and url.isprintable():
        return url
    return _IN_URL.sub(_encoded, url)


_IN_URL = re.compile(f"{_SPACE.pattern}|{INVISIBLE.pattern}")


def _encoded(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group(0).encode())


def units(text: str) -> int:
    """`text`'s length in UTF-16 code units: what Dataverse (and .NET, and SQL's nvarchar) counts
    against a column's maximum length — a character outside the BMP (most emoji) is two."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def fitted(text: str, limit: int) -> str:
    """`text`, or its longest start that leaves room for an ellipsis within `limit` UTF-16 code units,
    and the ellipsis; never cut inside a character."""
    if units(text) <= limit:
        return text
    kept, used = [], 0
    for ch in text:
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit - 1:
            break
        kept.append(ch)
    return "".join(kept) + "\u2026"
