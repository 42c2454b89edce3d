"""Scrubbing personal data out of search terms and URLs."""

from __future__ import annotations

import pytest

from dci.scrub import scrub, scrub_url

CASES = [
    ("reset password jane.doe@example.com", "reset password [email]"),
    ("JANE+support@Contoso.co.uk vpn", "[email] vpn"),
    ("card 4111 1111 1111 1111 declined", "card [card] declined"),
    ("4111-1111-1111-1111", "[card]"),
    ("call me +44 20 7946 0958", "call me [phone]"),
    ("(425) 555-0100 ext", "[phone] ext"),
    ("ssn 123-45-6789", "ssn [phone]"),
    # left alone: article numbers, case numbers, dates, error codes, short numbers
    ("KA-01023 reset", "KA-01023 reset"),
    ("CAS-01234-X1Y2Z3", "CAS-01234-X1Y2Z3"),
    ("order 2026-11-28 failed", "order 2026-11-28 failed"),
    ("error 0x80070005", "error 0x80070005"),
    ("windows 11 update 24h2", "windows 11 update 24h2"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_scrub(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(("url", "expected"), [
    ("https://p.example/search/?q=jane%40example.com+vpn&page=2", "https://p.example/search/?q=%5Bemail%5D+vpn&page=2"),
    ("https://p.example/search/?q=reset+password", "https://p.example/search/?q=reset+password"),
    ("https://p.example/kb/article/KA-01023/en-us", "https://p.example/kb/article/KA-01023/en-us"),
    ("https://p.example/search/?q=4111111111111111", "https://p.example/search/?q=%5Bcard%5D"),
])
def test_scrub_url(url: str, expected: str) -> None:
    assert scrub_url(url) == expected
