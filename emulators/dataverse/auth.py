"""Bearer token checks as Dataverse makes them: signature via the issuer's JWKS, iss, aud, exp."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import jwt
import requests


@dataclass(frozen=True)
class TokenInfo:
    oid: str
    app_id: str
    tenant_id: str
    claims: dict[str, Any]


class TokenRejected(Exception):
    """Why a token was refused (logged in the request log; Dataverse's body stays empty)."""


class BearerChecker:
    def __init__(
        self, *, jwks_url: str, issuer: str, audiences: set[str], ca_path: str | None
    ) -> None:
        self.jwks_url, self.issuer, self.audiences = jwks_url, issuer, audiences
        self.ca_path = ca_path
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}

    def check(self, authorization: str | None) -> TokenInfo:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise TokenRejected("no bearer token")
        token = authorization[7:].strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenRejected("malformed token") from None
        if header.get("alg") != "RS256":
            raise TokenRejected("unsupported algorithm")
        key = self._key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=["RS256"],
                audience=sorted(self.audiences),
                issuer=self.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise TokenRejected(f"{type(exc).__name__}: {exc}") from None
        return TokenInfo(
            oid=str(claims.get("oid", "")),
            app_id=str(claims.get("appid") or claims.get("azp") or ""),
            tenant_id=str(claims.get("tid", "")),
            claims=claims,
        )

    def _key(self, kid: str) -> jwt.PyJWK:
        with self._lock:
            if kid not in self._keys:
                self._fetch()
            if kid not in self._keys:
                raise TokenRejected("unknown signing key")
            return self._keys[kid]

    def _fetch(self) -> None:
        try:
            # verify= on the call itself: REQUESTS_CA_BUNDLE would override a Session's setting.
            response = requests.get(self.jwks_url, timeout=10, verify=self.ca_path or True)
            response.raise_for_status()
            keys = response.json().get("keys", [])
        except (requests.RequestException, ValueError) as exc:
            raise TokenRejected(f"signing keys unavailable: {type(exc).__name__}") from None
        for entry in keys:
            try:
                self._keys[entry["kid"]] = jwt.PyJWK(entry)
            except (KeyError, jwt.PyJWTError):
                continue
