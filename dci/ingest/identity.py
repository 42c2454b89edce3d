"""Who sent a batch: the Power Pages ID token in it, verified, or nobody.

Power Pages issues RS256 ID tokens at `/_services/auth/token` (implicit grant): `sub` is the
Dataverse contact id, `iss` the portal host name, `aud` the registered client id when there is
one. The public key is PEM at `https://{portal}/_services/auth/publickey`. Only a verified `sub`
ever links activity to a contact; any failure leaves the batch anonymous, with a logged reason.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dci.ids import is_guid

logger = logging.getLogger(__name__)

LEEWAY_SECONDS = 60
KEY_REFRESH_SECONDS = 60  # a signature failure refetches the portal key at most this often
FETCH_TIMEOUT_SECONDS = 3
_LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
MAX_TOKEN_CHARS = 8192
JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


class TokenRejected(Exception):
    """The token does not prove who the visitor is; the message says why (for the log)."""


@dataclass(frozen=True)
class Identity:
    """A verified portal user."""

    contact: str
    issuer: str
    expires: int


def key_url(issuer: str) -> str:
    """Where a portal publishes its token key; plain http only for a loopback demo portal."""
    host = issuer.rsplit(":", 1)[0] if not issuer.startswith("[") else issuer.split("]")[0] + "]"
    scheme = "http" if host in _LOOPBACK else "https"
    return f"{scheme}://{issuer}/_services/auth/publickey"


def fetch_pem(url: str) -> str:
    """GET a PEM document (stdlib: keeps `requests` off the ingest path)."""
    with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_SECONDS) as response:  # noqa: S310 - https, or loopback
        return response.read(64 * 1024).decode("ascii")


class PortalKeys:
    """Public keys per portal: the configured PEM, or fetched from the portal and cached."""

    def __init__(self, configured_pem: str | None, fetch: Callable[[str], str] = fetch_pem,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._configured = configured_pem
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._fetched_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._configured_key = self._load(configured_pem) if configured_pem else None

    def key(self, issuer: str) -> Any:
        """The key for `issuer` (fetched on first use when none is configured)."""
        if self._configured_key is not None:
            return self._configured_key
        with self._lock:
            if issuer not in self._keys:
                self._refresh(issuer)
            return self._keys[issuer]

    def refresh_after_failure(self, issuer: str) -> bool:
        """Refetch a portal's key after a signature failure (rotation); at most once a minute."""
        if self._configured:
            return False
        with self._lock:
            if self._clock() - self._fetched_at.get(issuer, float("-inf")) < KEY_REFRESH_SECONDS:
                return False
            self._refresh(issuer)
            return True

    def _refresh(self, issuer: str) -> None:
        self._fetched_at[issuer] = self._clock()
        self._keys[issuer] = self._load(self._fetch(key_url(issuer)))
        logger.info("fetched the token key of portal %s", issuer, extra={"issuer": issuer})

    @staticmethod
    def _load(pem: str) -> Any:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        return load_pem_public_key(pem.encode("ascii"))


class TokenVerifier:
    """Verifies portal ID tokens; remembers verified ones until they expire."""

    def __init__(self, issuers: tuple[str, ...], keys: PortalKeys, client_id: str | None = None,
                 cache_size: int = 4096, clock: Callable[[], float] = time.time) -> None:
        self._issuers = issuers
        self._keys = keys
        self._client_id = client_id
        self._clock = clock
        self._cache: OrderedDict[str, Identity] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def verify(self, token: str) -> Identity:
        """The identity the token proves, or TokenRejected saying why."""
        with self._lock:
            known = self._cache.get(token)
        if known is not None and known.expires + LEEWAY_SECONDS > self._clock():
            return known
        identity = self._verify(token)
        with self._lock:
            self._cache[token] = identity
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return identity

    def _verify(self, token: str) -> Identity:
        import jwt

        if len(token) > MAX_TOKEN_CHARS:
            raise TokenRejected(f"longer than {MAX_TOKEN_CHARS} characters")
        if not JWT_SHAPE.fullmatch(token):
            raise TokenRejected("not a compact JWT (three unpadded base64url parts)")
        try:
            header = jwt.get_unverified_header(token)
            issuer = str(jwt.decode(token, options={"verify_signature": False}).get("iss", ""))
        except jwt.PyJWTError as error:
            raise TokenRejected(f"malformed token: {error}") from None
        if header.get("alg") != "RS256":
            raise TokenRejected(f"algorithm {header.get('alg')!r} is not RS256")
        if issuer.lower() not in self._issuers:
            raise TokenRejected(f"issuer {issuer!r} is not in PORTAL_ISSUERS")
        try:
            try:
                claims = self._decode(token, issuer)
            except jwt.InvalidSignatureError:
                if not self._keys.refresh_after_failure(issuer):
                    raise
                claims = self._decode(token, issuer)  # the portal may have rotated its key
        except jwt.PyJWTError as error:
            raise TokenRejected(_reason(error)) from None
        except (OSError, ValueError) as error:  # unreachable portal, or not a PEM public key
            raise TokenRejected(f"no usable key for portal {issuer}: {error}") from None
        if int(claims["exp"]) + LEEWAY_SECONDS < self._clock():  # this verifier's clock has the last word
            raise TokenRejected("expired")
        contact = str(claims.get("sub", ""))
        if not is_guid(contact):
            raise TokenRejected("sub is not a contact id")
        return Identity(contact=contact.lower(), issuer=issuer.lower(), expires=int(claims["exp"]))

    def _decode(self, token: str, issuer: str) -> dict[str, Any]:
        import jwt

        return jwt.decode(
            token,
            self._keys.key(issuer),
            algorithms=["RS256"],
            audience=self._client_id,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "sub", "iss"], "verify_aud": self._client_id is not None},
        )


def _reason(error: Exception) -> str:
    import jwt

    if isinstance(error, jwt.ExpiredSignatureError):
        return "expired"
    if isinstance(error, jwt.ImmatureSignatureError):
        return "not yet valid"
    if isinstance(error, jwt.InvalidAudienceError):
        return "wrong audience"
    if isinstance(error, jwt.InvalidSignatureError):
        return "bad signature"
    return f"invalid token: {error}"


@functools.cache
def verifier_for(issuers: tuple[str, ...], public_key: str | None, client_id: str | None) -> TokenVerifier:
    """One verifier per configuration, shared by every request of the process."""
    return TokenVerifier(issuers, PortalKeys(public_key), client_id)
