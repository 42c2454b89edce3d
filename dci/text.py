"""Text from visitors, made safe to show on one line: pure.

Search terms, page titles and addresses come from anyone on the portal. Wherever they are shown —
the note on a case, a report page, a CSV cell — each must stay one line of the text a reader sees:

* a line break (`\\n`, `\\r\\n`, U+0085, U+2028, U+2029), any other control character, or a
  bidirectional control (which reorders what follows it on screen) could make a typed search look
  like a line of the note itself: each becomes a space;
* an invisible format character (Unicode's category Cf: tag characters that spell hidden text,
  interlinear annotations, zero-width spaces, soft hyphens …) shows nothing to the agent yet is
  read by copy-paste, search and any tool that summarises the case: each is removed. The zero-width
  joiner and non-joiner stay (scripts and emoji need them).
"""

from __future__ import annotations

import re

# C0 and C1 controls (U+0085 among them), DEL, the line and paragraph separators, and Unicode's
# Bidi_Control characters: the marks, embeddings, overrides and isolates.
_SPACE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# The other format characters (category Cf, Unicode 15.1), but U+200C and U+200D.
_DROP = re.compile("[\u00ad\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b\u2060-\u2064\u206a-\u206f"
                   "\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
                   "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f]")


def one_line(text: str) -> str:
    """`text` with every control, line or paragraph separator and bidirectional control as a space,
    and every other invisible format character (but the zero-width joiner and non-joiner) removed."""
    if text.isprintable():  # (the common case: nothing to do; every character touched here is unprintable)
        return text
    return _DROP.sub("", _SPACE.sub(" ", text))


def printable_url(url: str) -> str:
    """`url` with each of the characters `one_line` replaces or removes percent-encoded: an address
    keeps what it names, and shows nothing it does not."""
    if url.isprintable():
        return url
    return _DROP.sub(_encoded, _SPACE.sub(_encoded, url))


def _encoded(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group(0).encode())
