"""The JWT that ACS puts on every mid-call callback, and the JWKS that verifies it."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://acscallautomation.communication.azure.com"
# Short, like the service's: a captured callback cannot be replayed for long.
TOKEN_LIFETIME_SECONDS = 300


class CallbackSigner:
    """An RSA key pair made at start-up; signs RS256 tokens with a `kid` the JWKS serves."""

    def __init__(self, audience: str) -> None:
        self.audience = audience
        self.kid = uuid.uuid4().hex
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}

    def mint(self) -> str:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})
