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
  emoji and text presentation selectors stay where scripts and emoji use them: one at a time,
  after a visible character; a run of them, which can only hide something, goes.
"""

from __future__ import annotations

import re

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
# A joiner or selector at the start, after a space, or next to another one: nothing it can join.
_LOOSE_JOINERS = re.compile(f"(?:^|(?<=\\s))[{JOINERS}]+|[{JOINERS}]{{2,}}")


def one_line(text: str) -> str:
    """`text` with every control, line or paragraph separator and bidirectional control as a space,
    and every default-ignorable character removed (a lone joiner or presentation selector after a
    visible character stays)."""
    if text.isascii() and text.isprintable():  # (the common case: nothing to do)
        return text
    return _LOOSE_JOINERS.sub("", _DROP.sub("", _SPACE.sub(" ", text)))


def printable_url(url: str) -> str:
    """`url` with each of the characters `one_line` replaces or removes percent-encoded: an address
    keeps what it names, and shows nothing it does not."""
    if url.isascii() and url.isprintable():
        return url
    return _INVISIBLE.sub(_encoded, url)


_INVISIBLE = re.compile(f"{_SPACE.pattern}|[{IGNORABLE}{JOINERS}]")


def _encoded(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group(0).encode())
