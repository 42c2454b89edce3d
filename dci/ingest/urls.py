"""What a portal URL says: the knowledge-base article a page shows."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Both Power Pages forms: /knowledgebase/article/KA-01023/en-us and /en-US/knowledgebase/article/KA-01023
_ARTICLE = re.compile(
    r"^(?:/(?P<prefix>[a-z]{2,3}(?:-[a-z0-9]{2,8})?))?/knowledgebase/article/(?P<number>[A-Za-z0-9_.-]{1,64})"
    r"(?:/(?P<suffix>[a-z]{2,3}(?:-[a-z0-9]{2,8})?))?/?$",
    re.IGNORECASE,
)


def article_of(url: str) -> dict[str, str] | None:
    """`{"number": "KA-01023", "lang": "en-us"}` for a knowledge-article URL, else None."""
    if "knowledgebase" not in url.lower():
        return None
    match = _ARTICLE.match(urlsplit(url).path)
    if not match:
        return None
    lang = match.group("suffix") or match.group("prefix")
    return {"number": match.group("number"), **({"lang": lang.lower()} if lang else {})}
