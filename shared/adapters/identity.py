"""Identity: bearer JWT validation through a cached JWKS, and client-credentials tokens via MSAL."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.errors import DependencyUnavailable, NotAuthenticated

if TYPE_CHECKING:  # jwt, requests and msal are imported on first use: not paid at cold start
    import requests
    from jwt import PyJWK

log = logging.getLogger(__name__)

# Hosts MSAL itself knows as Entra authorities; anything else (the local emulator) needs
# instance_discovery=False, or MSAL asks login.microsoftonline.com to vouch for it.
MICROSOFT_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "sts.windows.net",
        "login.microsoftonline.us",
        "login.usgovcloudapi.net",
        "login-us.microsoftonline.com",
        "login.partner.microsoftonline.cn",
        "login.chinacloudapi.cn",
        "login.microsoftonline.de",
    }
)


def is_microsoft_authority(authority_host: str) -> bool:
    """True when `authority_host` (a URL or a bare host name) is one of Microsoft's."""
    host = urlsplit(authority_host).hostname if "://" in authority_host else authority_host
    return (host or "").lower().rstrip(".") in MICROSOFT_AUTHORITY_HOSTS


def http_session(ca_bundle: str | None = None) -> requests.Session:
    """A requests Session that trusts `ca_bundle` when one is given.

    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override `Session.verify` whenever a call
    does not pass `verify=` itself (MSAL never does), so the session pins its own setting.
    """
    import requests

    class _PinnedVerifySession(requests.Session):
        def merge_environment_settings(
            self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
        ) -> Any:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if verify is None:
                settings["verify"] = self.verify
            return settings

    session = _PinnedVerifySession()
    if ca_bundle:
        session.verify = ca_bundle
    return session


# ---- token validation ------------------------------------------------------------------------


class AuthFailure(StrEnum):
    """Why a bearer token was refused (safe to log and to show: never the token itself)."""

    MISSING = "missing_token"
    MALFORMED = "malformed_token"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    UNKNOWN_KEY = "unknown_signing_key"
    BAD_SIGNATURE = "invalid_signature"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    WRONG_AUDIENCE = "invalid_audience"
    WRONG_ISSUER = "invalid_issuer"
    WRONG_TENANT = "invalid_tenant"
    MISSING_CLAIM = "missing_claim"


class AuthenticationError(NotAuthenticated):
    """The bearer token does not validate; `reason` says why, the token is never included."""

    def __init__(self, reason: AuthFailure, detail: str | None = None) -> None:
        super().__init__(detail or f"The bearer token was refused: {reason.value}.")
        self.reason = reason


class SigningKeysUnavailable(DependencyUnavailable):
    """The JWKS could not be fetched and no cached keys exist: not the caller's fault."""


@dataclass(frozen=True)
class Principal:
    """Who a validated token speaks for. Empty strings where the token has no such claim."""

    oid: str
    upn: str
    name: str
    roles: tuple[str, ...]
    tenant_id: str
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def has_role(self, role: str) -> bool:
        return role in self.roles


def _as_tuple(value: str | Sequence[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


class TokenValidator:
    """Validates RS256 bearer JWTs (Entra user tokens, ACS callback tokens) against a JWKS.

    The key set is fetched on first use and cached for `jwks_ttl_seconds`; a token signed with a
    key id not in the cache triggers one refetch (key rollover), at most once per
    `refetch_cooldown_seconds`, so random key ids cannot make us hammer the key endpoint.
    """

    def __init__(
        self,
        issuer: str | Sequence[str],
        audience: str | Sequence[str],
        jwks_url: str,
        ca_bundle: str | None = None,
        *,
        leeway_seconds: float = 60.0,
        jwks_ttl_seconds: float = 24 * 3600.0,
        refetch_cooldown_seconds: float = 60.0,
        timeout_seconds: float = 10.0,
        algorithms: Sequence[str] = ("RS256",),
        tenant_id: str | None = None,
    ) -> None:
        # Entra tokens: `tid` must be our tenant too (the issuer alone names it only by URL).
        self._tenant = (tenant_id or "").lower() or None
        self._issuers = _as_tuple(issuer)
        self._audiences = _as_tuple(audience)
        self._jwks_url = jwks_url
        self._ca_bundle = ca_bundle
        self._leeway = leeway_seconds
        self._ttl = jwks_ttl_seconds
        self._cooldown = refetch_cooldown_seconds
        self._timeout = timeout_seconds
        self._algorithms = tuple(algorithms)
        self._lock = threading.Lock()
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._last_forced_refetch: float | None = None
        self._session: requests.Session | None = None
        self.fetch_count = 0  # how many times the JWKS was downloaded (observable in tests)

    def validate(self, bearer_token: str | None) -> Principal:
        """The principal of a valid token, else AuthenticationError (SigningKeysUnavailable if
        the key set cannot be read at all)."""
        import jwt

        token = (bearer_token or "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if not token:
            raise AuthenticationError(AuthFailure.MISSING, "No bearer token was presented.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationError(AuthFailure.MALFORMED) from None
        algorithm = header.get("alg")
        if algorithm not in self._algorithms:
            raise AuthenticationError(AuthFailure.UNSUPPORTED_ALGORITHM)
        kid = header.get("kid") or header.get("x5t")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationError(AuthFailure.MALFORMED, "The token names no signing key.")
        key = self._signing_key(kid)
        if key is None:
            raise AuthenticationError(AuthFailure.UNKNOWN_KEY)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[algorithm],
                audience=list(self._audiences),
                issuer=list(self._issuers),
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError(AuthFailure.EXPIRED) from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationError(AuthFailure.NOT_YET_VALID) from None
        except jwt.InvalidAudienceError:
            raise AuthenticationError(AuthFailure.WRONG_AUDIENCE) from None
        except jwt.InvalidIssuerError:
            raise AuthenticationError(AuthFailure.WRONG_ISSUER) from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError(AuthFailure.BAD_SIGNATURE) from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(
                AuthFailure.MISSING_CLAIM, f"The token lacks the '{exc.claim}' claim."
            ) from None
        except jwt.PyJWTError:
            raise AuthenticationError(AuthFailure.MALFORMED) from None
        tid = claims.get("tid")
        if self._tenant and (not isinstance(tid, str) or tid.lower() != self._tenant):
            raise AuthenticationError(AuthFailure.WRONG_TENANT)
        return _principal(claims)

    # The lock is held while fetching so concurrent validations wait for one download.
    def _signing_key(self, kid: str) -> PyJWK | None:
        with self._lock:
            now = time.monotonic()
            stale = self._fetched_at is None or now - self._fetched_at > self._ttl
            if stale:
                self._refresh(keep_on_failure=self._fetched_at is not None)
            key = self._keys.get(kid)
            if key is not None or stale:
                return key
            cooled = (
                self._last_forced_refetch is None
                or now - self._last_forced_refetch >= self._cooldown
            )
            if not cooled:
                return None
            self._last_forced_refetch = now
            self._refresh(keep_on_failure=True)
            return self._keys.get(kid)

    def _refresh(self, *, keep_on_failure: bool) -> None:
        import jwt
        import requests

        if self._session is None:
            self._session = http_session(self._ca_bundle)
        try:
            response = self._session.get(self._jwks_url, timeout=self._timeout)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            if keep_on_failure and self._keys:
                return  # keep serving the cached keys; the next stale check retries
            raise SigningKeysUnavailable(
                f"The signing keys could not be read ({type(exc).__name__})."
            ) from None
        keys: dict[str, PyJWK] = {}
        entries = document.get("keys", []) if isinstance(document, dict) else []
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
                continue
            try:
                parsed = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue  # an unsupported key type must not hide the usable ones
            for name in (entry.get("kid"), entry.get("x5t")):
                if isinstance(name, str) and name:
                    keys.setdefault(name, parsed)
        self.fetch_count += 1
        self._keys = keys
        self._fetched_at = time.monotonic()


def _principal(claims: dict[str, Any]) -> Principal:
    def text(*names: str) -> str:
        for name in names:
            value = claims.get(name)
            if isinstance(value, str) and value:
                return value
        return ""

    raw_roles = claims.get("roles")
    roles = tuple(r for r in raw_roles if isinstance(r, str)) if isinstance(raw_roles, list) else ()
    return Principal(
        oid=text("oid", "sub"),
        upn=text("preferred_username", "upn", "unique_name", "email"),
        name=text("name"),
        roles=roles,
        tenant_id=text("tid"),
        claims=MappingProxyType(dict(claims)),
    )


# ---- client credentials ----------------------------------------------------------------------


class TokenAcquisitionError(DependencyUnavailable):
    """No app token could be obtained. Carries Entra's error code, never the client secret."""

    def __init__(
        self, detail: str, *, error: str | None = None, error_codes: tuple[int, ...] = ()
    ) -> None:
        super().__init__(detail)
        # What callers of our API see: no authority, tenant, client id or Entra's text (those
        # are in `reason`, which goes to the log with the correlation id).
        self.reason = detail
        self.detail = "Signing in to a dependency (Dataverse or Graph) failed; see the app's log."
        self.error = error
        self.error_codes = error_codes
        log.warning("token acquisition failed: %s", detail)


class ClientCredentialsTokenProvider:
    """App-only access tokens for one resource scope (e.g. Dataverse `<org>/.default`).

    One MSAL ConfidentialClientApplication is built on first use and reused: MSAL keeps the
    token in its in-memory cache and only goes to Entra when it nears expiry.
    """

    def __init__(
        self,
        authority_host: str,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        scope: str,
        ca_bundle: str | None = None,
        *,
        timeout_seconds: float = 10.0,
    ) -> None:
        self._authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self._microsoft = is_microsoft_authority(authority_host)
        self._client_id = client_id
        self._secret = client_secret
        self._scope = scope
        self._ca_bundle = ca_bundle
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._msal_app: Any = None
        self.build_count = 0  # how many MSAL apps were built (observable in tests)

    @property
    def scope(self) -> str:
        return self._scope

    def token(self) -> str:
        """A valid access token for the scope (from MSAL's cache when it has one)."""
        app = self._app()
        try:
            result = app.acquire_token_for_client(scopes=[self._scope])
        except Exception as exc:  # MSAL raises whatever its HTTP client raises: normalise it
            raise TokenAcquisitionError(self._failure(exc)) from None
        if not isinstance(result, dict):
            raise TokenAcquisitionError("The identity provider gave no usable answer.")
        access_token = result.get("access_token")
        if isinstance(access_token, str) and access_token:
            return access_token
        error = str(result.get("error") or "unknown_error")
        codes = tuple(int(c) for c in result.get("error_codes") or () if isinstance(c, int))
        described = self._redact(str(result.get("error_description") or ""))
        first_line = described.split(" Trace ID:", 1)[0]
        raise TokenAcquisitionError(
            f"No token for {self._scope}: {error}. {first_line}".strip(),
            error=error,
            error_codes=codes,
        )

    def _app(self) -> Any:
        with self._lock:
            if self._msal_app is None:
                import msal

                kwargs: dict[str, Any] = {}
                if not self._microsoft:
                    kwargs["instance_discovery"] = False
                try:
                    # The constructor already reads the authority's OpenID configuration.
                    self._msal_app = msal.ConfidentialClientApplication(
                        self._client_id,
                        client_credential=self._secret,
                        authority=self._authority,
                        http_client=http_session(self._ca_bundle),
                        timeout=self._timeout,
                        **kwargs,
                    )
                except Exception as exc:  # not cached: the next call tries again
                    raise TokenAcquisitionError(self._failure(exc)) from None
                self.build_count += 1
            return self._msal_app

    def _failure(self, exc: Exception) -> str:
        return self._redact(
            f"The identity provider at {self._authority} could not be reached or refused the "
            f"configuration ({type(exc).__name__}: {exc})"
        )

    def _redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text
