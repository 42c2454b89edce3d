"""Knowledge-article numbers from both Power Pages URL forms."""

from __future__ import annotations

import pytest

from dci.ingest.urls import article_of

B = "https://contoso.powerappsportals.com"


@pytest.mark.parametrize(("url", "expected"), [
    (f"{B}/knowledgebase/article/KA-01023/en-us", {"number": "KA-01023", "lang": "en-us"}),
    (f"{B}/knowledgebase/article/KA-01023/en-us/", {"number": "KA-01023", "lang": "en-us"}),
    (f"{B}/en-US/knowledgebase/article/KA-01023", {"number": "KA-01023", "lang": "en-us"}),
    (f"{B}/fr/knowledgebase/article/KA-01024", {"number": "KA-01024", "lang": "fr"}),
    (f"{B}/knowledgebase/article/KA-01025", {"number": "KA-01025"}),
    (f"{B}/knowledgebase/article/KA-01025?preview=1", {"number": "KA-01025"}),
    (f"{B}/knowledgebase/", None),
    (f"{B}/search/?q=knowledgebase", None),
    (f"{B}/knowledgebase/article/KA-1/en-us/extra/path", None),
])
def test_article_of(url: str, expected: dict | None) -> None:
    assert article_of(url) == expected
