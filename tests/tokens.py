"""Power-Pages-shaped ID tokens for tests: RS256, `sub` = contact id, `iss` = portal host."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


class Portal:
    """A portal's signing key and the tokens it would issue."""

    def __init__(self, issuer: str, client_id: str | None = None) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def public_pem(self) -> str:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def token(self, contact: str | None = None, *, lifetime: int = 900, issued: float | None = None,
              **claims: Any) -> str:
        """A token as /_services/auth/token returns it; `claims` override or add."""
        now = int(issued if issued is not None else time.time())
        body: dict[str, Any] = {"sub": contact or str(uuid.uuid4()), "iss": self.issuer, "iat": now,
                                "nbf": now, "exp": now + lifetime, "nonce": uuid.uuid4().hex,
                                "preferred_username": "jane@contoso.example"}
        if self.client_id:
            body["aud"] = self.client_id
        body.update(claims)
        return jwt.encode({k: v for k, v in body.items() if v is not None}, self.private_key, algorithm="RS256")
