"""Text from visitors, made safe to show on one line: pure.

Search terms, page titles and addresses come from anyone on the portal. Wherever they are shown —
the note on a case, a report page, a CSV cell — each must stay one line of plain text: a line break
(`\\n`, `\\r\\n`, U+0085, U+2028, U+2029), any other control character, or a bidirectional override
(which reorders what follows it on screen) could make a typed search look like a line of the note
itself. Each becomes a space.
"""

from __future__ import annotations

import re

# C0 and C1 controls (U+0085 among them), DEL, the line and paragraph separators, and Unicode's
# Bidi_Control characters: the marks, embeddings, overrides and isolates.
_NOT_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def one_line(text: str) -> str:
    """`text` with every control, line or paragraph separator and bidirectional control as a space."""
    if text.isprintable():  # (the common case: nothing to replace; U+0020 is printable, the rest are not)
        return text
    return _NOT_ONE_LINE.sub(" ", text)
