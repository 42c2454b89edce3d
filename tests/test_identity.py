"""Portal ID token verification: only a genuine, current token from a configured portal links."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dci.ingest.identity import PortalKeys, TokenRejected, TokenVerifier, key_url
from tests.tokens import Portal

ISSUER = "contoso.powerappsportals.com"


@pytest.fixture(scope="module")
def portal() -> Portal:
    return Portal(ISSUER)


@pytest.fixture(scope="module")
def other_portal() -> Portal:
    return Portal("evil.example")


def verifier(portal: Portal, client_id: str | None = None) -> TokenVerifier:
    return TokenVerifier((ISSUER,), PortalKeys(portal.public_pem), client_id)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims: dict, alg: str = "none") -> str:
    return f"{_b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}.{_b64(json.dumps(claims).encode())}."


def test_identity_valid_token_gives_the_contact(portal: Portal) -> None:
    contact = str(uuid.uuid4())
    identity = verifier(portal).verify(portal.token(contact))
    assert (identity.contact, identity.issuer) == (contact, ISSUER)


def _claims(portal: Portal, **overrides) -> dict:
    now = int(time.time())
    return {"sub": str(uuid.uuid4()), "iss": portal.issuer, "iat": now, "nbf": now, "exp": now + 900, **overrides}


BAD = {
    "expired": lambda p: p.token(issued=time.time() - 3600),
    "not yet valid": lambda p: p.token(nbf=int(time.time()) + 600),
    "wrong issuer": lambda p: Portal.token(p, iss="evil.example"),
    "alg none": lambda p: _unsigned(_claims(p)),
    "garbage": lambda p: "not.a.token",
    "sub not a contact id": lambda p: p.token(contact="admin"),
    "sub a contact id and a newline": lambda p: p.token(contact=str(uuid.uuid4()) + "\n"),
    "no exp": lambda p: p.token(exp=None),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_identity_rejects(portal: Portal, case: str) -> None:
    with pytest.raises(TokenRejected):
        verifier(portal).verify(BAD[case](portal))


def test_identity_rejects_a_token_signed_by_another_key(portal: Portal, other_portal: Portal) -> None:
    forged = Portal.token(other_portal, iss=ISSUER)  # right issuer, wrong key
    with pytest.raises(TokenRejected, match="signature"):
        verifier(portal).verify(forged)


def test_identity_rejects_hs256_signed_with_the_public_key(portal: Portal) -> None:
    # Key confusion: an attacker signs HMAC with the (public) PEM as the secret.
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(_claims(portal)).encode())
    signature = hmac.new(portal.public_pem.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(TokenRejected, match="RS256"):
        verifier(portal).verify(f"{header}.{body}.{_b64(signature)}")


def test_identity_audience_checked_when_a_client_id_is_configured() -> None:
    registered = Portal(ISSUER, client_id="portal-client")
    assert verifier(registered, "portal-client").verify(registered.token()).contact
    with pytest.raises(TokenRejected, match="audience"):
        verifier(registered, "another-client").verify(registered.token())


def test_identity_leeway_accepts_a_token_just_expired(portal: Portal) -> None:
    token = portal.token(issued=time.time() - 930)  # expired 30 s ago, within the 60 s leeway
    assert verifier(portal).verify(token).contact


def test_identity_remembers_verified_tokens_until_they_expire(portal: Portal) -> None:
    now = [time.time()]
    v = TokenVerifier((ISSUER,), PortalKeys(portal.public_pem), clock=lambda: now[0])
    token = portal.token(lifetime=900)
    assert v.verify(token).contact == v.verify(token).contact
    now[0] += 900 + 61
    with pytest.raises(TokenRejected, match="expired"):
        v.verify(token)


@pytest.mark.parametrize(("issuer", "url"), [
    ("contoso.powerappsportals.com", "https://contoso.powerappsportals.com/_services/auth/publickey"),
    ("127.0.0.1:7071", "http://127.0.0.1:7071/_services/auth/publickey"),
    ("localhost:7071", "http://localhost:7071/_services/auth/publickey"),
])
def test_identity_key_url(issuer: str, url: str) -> None:
    assert key_url(issuer) == url


class _KeyServer:
    """A portal publishing its key over HTTP, counting fetches."""

    def __init__(self, pem: str) -> None:
        self.pem, self.fetches = pem, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = outer.pem.encode() if self.path == "/_services/auth/publickey" else b""
                self.send_response(200 if body else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None: ...

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def key_server(portal: Portal) -> Iterator[_KeyServer]:
    server = _KeyServer(portal.public_pem)
    yield server
    server.server.shutdown()


def test_identity_fetches_the_portal_key_once_and_refetches_after_rotation(key_server: _KeyServer) -> None:
    now = [1000.0]
    old = Portal(key_server.issuer)
    key_server.pem = old.public_pem
    keys = PortalKeys(None, clock=lambda: now[0])
    v = TokenVerifier((key_server.issuer,), keys)
    assert v.verify(old.token()).contact and v.verify(old.token()).contact
    assert key_server.fetches == 1  # cached
    rotated = Portal(key_server.issuer)
    key_server.pem = rotated.public_pem
    now[0] += 61
    assert v.verify(rotated.token()).contact  # bad signature -> one refetch -> verified
    assert key_server.fetches == 2
    with pytest.raises(TokenRejected):
        v.verify(Portal(key_server.issuer).token())  # another unknown key within the minute: no refetch
    assert key_server.fetches == 2


def test_identity_never_fetches_from_a_host_outside_the_issuers(key_server: _KeyServer) -> None:
    stranger = Portal(key_server.issuer)
    v = TokenVerifier(("contoso.powerappsportals.com",), PortalKeys(None))
    with pytest.raises(TokenRejected, match="PORTAL_ISSUERS"):
        v.verify(stranger.token())
    assert key_server.fetches == 0


def test_identity_unreachable_portal_rejects_without_raising() -> None:
    v = TokenVerifier(("127.0.0.1:9",), PortalKeys(None))
    with pytest.raises(TokenRejected, match="no usable key"):
        v.verify(Portal("127.0.0.1:9").token())


@pytest.mark.parametrize("token", ["", "..", "a.b", "a..", "a.b.c.d", "a=.b.c", "a.b.c=", "a" * 9000 + ".b.c"])
def test_identity_rejects_what_is_not_a_compact_jwt_before_decoding(portal: Portal, token: str) -> None:
    with pytest.raises(TokenRejected):
        verifier(portal).verify(token)
