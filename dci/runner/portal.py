"""A demo Power Pages portal for `make dev` and the browser tests (never deployed).

Knowledge articles in both URL forms, a search page whose results render half a second after load,
a case form and its confirmation page, and a demo sign-in whose ID tokens look like Power Pages':
RS256, `sub` = contact id, `iss` = this host, from `/_services/auth/token`, key at
`/_services/auth/publickey`. The beacon is installed on every page as the install guide says.
"""

from __future__ import annotations

import html
import json
import re
import time
import uuid
from collections.abc import Callable
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

ARTICLES = {
    "KA-01023": ("Reset your password", "en-us", "suffix"),
    "KA-01024": ("Set up the VPN client", "en-US", "prefix"),
    "KA-01025": ("Export your invoices", "", "none"),
}
PAGE_SIZE = 2  # results per page: the total line ("Results 1 – 2 of 3") says how many there are
DEMO_CONTACT = "6f1c2a4e-0b7d-4c1e-9a55-2f4d8b1e7c30"
Response = tuple[int, dict[str, str], bytes]
# What a maker puts on the confirmation page in Power Pages (docs/INSTALL-POWER-PAGES.md): the demo
# fills the number in itself; the beacon reads it from the element `data-ticket` selects.
CONFIRMATION_SNIPPET = """
<!-- On Power Pages, show the new case's ticket number where the beacon reads it (data-ticket,
     default [data-ticket-number]): in the case form's success message or the confirmation page's
     copy, with Liquid:
       <p>Your case number is <span data-ticket-number>{{ case.ticketnumber }}</span>.</p>
     The beacon then reports `case_submitted` with it, and an agent opens the report by that number. -->
"""


def article_path(number: str) -> str:
    """The article's URL path, in the form the demo uses for it."""
    _, lang, form = ARTICLES[number]
    if form == "suffix":
        return f"/knowledgebase/article/{number}/{lang}"
    if form == "prefix":
        return f"/{lang}/knowledgebase/article/{number}"
    return f"/knowledgebase/article/{number}"


class DemoPortal:
    """Answers every non-API path of the local runner."""

    def __init__(self, search_delay_ms: int = 500,
                 on_case: Callable[[str, str, str], None] | None = None) -> None:
        """`on_case(contact, ticket, title)` is told of each case a signed-in visitor submits (the demo
        creates it in its local Dataverse, as the portal creates it in Dataverse)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        self.search_delay_ms = search_delay_ms
        self.on_case = on_case
        self._tickets = 0

    def handle(self, method: str, target: str, headers: dict[str, str]) -> Response | None:
        """The demo's answer, or None for a path it does not serve."""
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        host = headers.get("host", "127.0.0.1:7071")
        contact = self._contact(headers)
        if path == "/_services/auth/token":
            return self._token(host, contact)
        if path == "/_services/auth/publickey":
            return 200, {"Content-Type": "text/plain"}, self.public_pem.encode()
        if path == "/signin":
            who = query.get("contact", [DEMO_CONTACT])[0]
            return 302, {"Location": "/", "Set-Cookie": f"demo_contact={who}; Path=/; HttpOnly"}, b""
        if path == "/signout":
            return 302, {"Location": "/", "Set-Cookie": "demo_contact=; Path=/; Max-Age=0"}, b""
        for number in ARTICLES:
            if path.rstrip("/") == article_path(number):
                return self._page(host, contact, ARTICLES[number][0], f"<p>How to: {ARTICLES[number][0]}.</p>"
                                  + "<p>" + "Lorem ipsum dolor sit amet. " * 200 + "</p>")
        if path.rstrip("/") == "/search":
            return self._search(host, contact, query.get("q", [""])[0])
        if path.rstrip("/") == "/support/create-case":
            return self._page(host, contact, "Create a case", (
                '<form action="/support/case-created/" method="get"><label>Title <input name="title"></label>'
                '<button type="submit">Submit</button></form>'))
        if path.rstrip("/") == "/support/case-created":
            self._tickets += 1
            ticket = f"CAS-{self._tickets:05d}-{uuid.uuid4().hex[:6].upper()}"
            if contact and self.on_case:
                self.on_case(contact, ticket, query.get("title", [""])[0] or "Case from the demo portal")
            report = (f'<p>Support side: <a href="/api/cases/{ticket}/timeline?format=html">the agent\'s report '
                      "of this case</a> (until the case reaches the app, it says so and reloads itself)</p>"
                      if contact and self.on_case else "")
            return self._page(host, contact, "Case created", CONFIRMATION_SNIPPET
                              + f'<p>Your case number is <span data-ticket-number>{ticket}</span>.</p>{report}')
        if path in ("", "/"):
            links = "".join(f'<li><a href="{article_path(n)}">{html.escape(t)}</a></li>'
                            for n, (t, _, _) in ARTICLES.items())
            return self._page(host, contact, "Demo portal", (
                f'<ul>{links}</ul><form action="/search/"><input name="q"><button>Search</button></form>'
                '<p><a href="/support/create-case/">Create a case</a> · <a href="/signin">Sign in</a> · '
                '<a href="/signout">Sign out</a></p>'
                '<p>Support side: <a href="/api/insights?format=html">insights dashboard</a>'
                + (f' · <a href="/api/contacts/{html.escape(contact)}/timeline?format=html">'
                   "this contact's timeline</a>" if contact else '') + '</p>'))
        return None

    def _contact(self, headers: dict[str, str]) -> str | None:
        cookie = SimpleCookie(headers.get("cookie", ""))
        value = cookie["demo_contact"].value if "demo_contact" in cookie else ""
        return value or None

    def _token(self, host: str, contact: str | None) -> Response:
        import jwt

        if not contact:
            return 401, {"Content-Type": "text/plain"}, b"not signed in"
        now = int(time.time())
        token = jwt.encode({"sub": contact, "iss": host, "iat": now, "nbf": now, "exp": now + 900,
                            "nonce": uuid.uuid4().hex}, self._key, algorithm="RS256")
        return 200, {"Content-Type": "text/plain", "Cache-Control": "no-store"}, token.encode()

    def _search(self, host: str, contact: str | None, q: str) -> Response:
        words = [w for w in re.split(r"\W+", q.lower()) if w]
        found = [(n, t) for n, (t, _, _) in ARTICLES.items() if words and any(w in t.lower() for w in words)]
        items = [f'<a href="{article_path(n)}">{html.escape(t)}</a>' for n, t in found[:PAGE_SIZE]]
        total = f'<p data-search-total>Results 1 – {len(items)} of {len(found)}</p>' if found else ""
        render = json.dumps(total + "".join(f"<li>{i}</li>" for i in items) or '<p class="none">No results.</p>')
        body = (f'<form action="/search/"><input name="q" value="{html.escape(q)}"><button>Search</button></form>'
                '<ul class="search-results"></ul>'
                # Power Pages renders results client-side after load; so does the demo, a little late.
                f'<script>setTimeout(function () {{ document.querySelector(".search-results").innerHTML = {render}; }},'
                f' {self.search_delay_ms});</script>')
        return self._page(host, contact, f"Search: {q}", body)

    def _page(self, host: str, contact: str | None, title: str, content: str) -> Response:
        signed_in = "true" if contact else "false"
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>
<body><header><a href="/">Demo portal</a>{' · signed in' if contact else ''}</header>
<main><h1>{html.escape(title)}</h1>{content}</main>
<script src="/api/beacon.js" data-endpoint="http://{html.escape(host)}/api/collect" data-site="{html.escape(host)}"
        data-signed-in="{signed_in}"></script>
</body></html>"""
        return 200, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}, page.encode()

