"""Entra ID's user sign-in for single-page apps: authorization code + PKCE, refresh, logout, CORS.

What MSAL.js (@azure/msal-browser) does against login.microsoftonline.com, on loopback: the
authorize endpoint renders a sign-in page for the seeded users, redirects to a registered SPA
redirect URI with `code` and `state`, and the token endpoint redeems the code (the PKCE
`code_verifier` checked) or a refresh token, cross-origin, answering CORS only for the origins of
SPA redirect URIs, as Entra does for the "Single-page application" platform.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from werkzeug.wrappers import Request, Response

# Entra: an authorization code lives 10 minutes and is redeemed once; a refresh token issued to a
# SPA lives 24 hours (fixed, not sliding).
CODE_LIFETIME_SECONDS = 600
SPA_RT_SECONDS = 24 * 3600
SESSION_COOKIE = "ESTSAUTH"
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
GRAPH_AUDIENCE = "00000003-0000-0000-c000-000000000000"
GRAPH_LOGIN_SCOPES = "openid profile email User.Read"
AUTHORIZE_PARAMS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "login_hint",
    "client_info",
)


class OAuthError(Exception):
    """An OAuth error in Entra's terms (status, error, AADSTS code, description)."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description


@dataclass(frozen=True)
class Resource:
    """A service principal of the tenant that tokens can be issued for: its identifier URI (a
    token's `aud`; `https://*.<domain>` for a first-party service answering for every host, as
    Dynamics CRM does for each org's URL) and the app roles its application defines. A token
    carries only the roles of its own audience."""

    identifier: str
    app_roles: frozenset[str] = frozenset()

    def names(self, audience: str) -> bool:
        wanted, own = audience.rstrip("/").lower(), self.identifier.rstrip("/").lower()
        if own.startswith("https://*."):
            host = urlsplit(wanted).netloc
            return wanted.startswith("https://") and host.endswith(own[len("https://*") :])
        return wanted == own

    def roles_of(self, assigned: tuple[str, ...] | list[str]) -> list[str]:
        """The assigned roles this application defines (another app's stay out)."""
        return [r for r in assigned if r in self.app_roles]


def resource_not_found(resource: str, tenant_id: str) -> OAuthError:
    return OAuthError(
        400,
        "invalid_resource",
        500011,
        f"AADSTS500011: The resource principal named {resource} was not found in the tenant "
        f"named {tenant_id}. This can happen if the application has not been installed by the "
        "administrator of the tenant or consented to by any user in the tenant. You might have "
        "sent your authentication request to the wrong tenant.",
    )


@dataclass(frozen=True)
class User:
    """A user of the tenant; `roles` are the app roles assigned to the user (Phone.Agent, ...):
    a token carries those its audience's application defines."""

    oid: str
    upn: str
    name: str
    roles: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"oid": self.oid, "upn": self.upn, "name": self.name, "roles": list(self.roles)}


@dataclass(frozen=True)
class SpaClient:
    """A public client with "Single-page application" redirect URIs (no secret)."""

    client_id: str
    redirect_uris: tuple[str, ...]

    @property
    def origins(self) -> frozenset[str]:
        return frozenset(origin_of(uri) for uri in self.redirect_uris)


@dataclass
class _Grant:
    """What a code or refresh token stands for."""

    client_id: str
    user: User
    scopes: tuple[str, ...]
    expires_at: float
    redirect_uri: str = ""
    code_challenge: str = ""
    code_challenge_method: str = "S256"
    nonce: str | None = None
    redeemed: bool = False
    kind: str = "code"
    sid: str = field(default_factory=lambda: str(uuid.uuid4()))


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def pkce_challenge(verifier: str, method: str = "S256") -> str:
    if method == "plain":
        return verifier
    # utf-8, not ascii: a verifier outside RFC 7636's alphabet just fails to match (400), as
    # Entra answers it, rather than raising here (500).
    return _b64url(hashlib.sha256(verifier.encode("utf-8")).digest())


class AuthorizationServer:
    """The authorize/token/logout half of one tenant. `sign(claims)` signs with the tenant's key,
    `issuer` is the v2.0 issuer, `now` the clock (seconds)."""

    def __init__(
        self,
        *,
        tenant_id: str,
        issuer: Callable[[], str],
        sign: Callable[[dict[str, Any]], str],
        mint_access_token: Callable[..., str],
        resource: Callable[[str], Resource | None],
        now: Callable[[], float] = time.time,
    ) -> None:
        self.tenant_id = tenant_id
        self._resource = resource
        self._issuer, self._sign, self._mint, self._now = issuer, sign, mint_access_token, now
        self._lock = threading.Lock()
        self._users: dict[str, User] = {}
        self._spa: dict[str, SpaClient] = {}
        self._codes: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}
        self._sessions: dict[str, User] = {}

    # ---- registrations ----------------------------------------------------------------------

    def add_user(self, user: User) -> None:
        with self._lock:
            self._users[user.upn.lower()] = user

    def users(self) -> list[User]:
        with self._lock:
            return list(self._users.values())

    def register_spa(self, client_id: str, redirect_uris: list[str]) -> SpaClient:
        client = SpaClient(client_id, tuple(redirect_uris))
        with self._lock:
            self._spa[client_id] = client
        return client

    def spa_client(self, client_id: str) -> SpaClient | None:
        with self._lock:
            return self._spa.get(client_id)

    def allowed_origin(self, origin: str) -> bool:
        """True if `origin` is the origin of some SPA redirect URI (CORS on the token endpoint)."""
        with self._lock:
            return any(origin.lower() in c.origins for c in self._spa.values())

    def allowed_logout_redirect(self, uri: str) -> bool:
        with self._lock:
            return any(uri in c.redirect_uris for c in self._spa.values())

    # ---- authorize ----------------------------------------------------------------------------

    def authorize(self, request: Request, tenant: str) -> Response:
        """GET renders the sign-in page (or signs in silently); POST is the page's form."""
        source = request.form if request.method == "POST" else request.args
        params = {k: source.get(k, "") for k in AUTHORIZE_PARAMS}
        client = self.spa_client(params["client_id"])
        if client is None:
            return _error_page(
                700016,
                f"Application with identifier '{params['client_id']}' was not found in the "
                f"directory '{self.tenant_id}'.",
            )
        if params["redirect_uri"] not in client.redirect_uris:
            return _error_page(
                50011,
                f"The redirect URI '{params['redirect_uri']}' specified in the request does not "
                f"match the redirect URIs configured for the application '{client.client_id}'.",
            )
        try:
            self._check_authorize(params)
        except OAuthError as exc:
            return _redirect_error(params, exc)
        prompt = params["prompt"]
        session_user = self._session_user(request)
        if request.method == "POST":
            username = request.form.get("username", "").strip()
            with self._lock:
                user = self._users.get(username.lower())
            if user is None:
                message = (
                    f"AADSTS50034: The user account {username or '(empty)'} does not exist in "
                    f"the {self.tenant_id} directory. To sign into this application, the "
                    "account must be added to the directory."
                )
                return _sign_in_page(tenant, params, error=message)
            sid = secrets.token_urlsafe(24)
            with self._lock:
                self._sessions[sid] = user
            response = self._redirect_with_code(params, user)
            response.set_cookie(
                SESSION_COOKIE, sid, secure=True, httponly=True, samesite="None", path="/"
            )
            return response
        if prompt == "none":
            if session_user is None:
                return _redirect_error(
                    params,
                    OAuthError(
                        400,
                        "login_required",
                        50058,
                        "AADSTS50058: A silent sign-in request was sent but no user is signed in.",
                    ),
                )
            return self._redirect_with_code(params, session_user)
        if session_user is not None and prompt not in ("login", "select_account"):
            hint = params["login_hint"].lower()
            if not hint or hint == session_user.upn.lower():
                return self._redirect_with_code(params, session_user)
        return _sign_in_page(tenant, params, login_hint=params["login_hint"])

    def _check_authorize(self, params: dict[str, str]) -> None:
        if params["response_type"] != "code":
            raise OAuthError(
                400,
                "unsupported_response_type",
                700054,
                f"AADSTS700054: response_type '{params['response_type']}' is not enabled for "
                "the application.",
            )
        if not params["code_challenge"]:
            raise OAuthError(
                400,
                "invalid_request",
                9002325,
                "AADSTS9002325: Proof Key for Code Exchange is required for cross-origin "
                "authorization code redemption.",
            )
        if params["code_challenge_method"] not in ("", "S256", "plain"):
            raise OAuthError(
                400,
                "invalid_request",
                501491,
                "AADSTS501491: Invalid size of Code_Challenge parameter or unsupported "
                "code_challenge_method.",
            )
        if params["response_mode"] not in ("", "query", "fragment"):
            raise OAuthError(
                400,
                "invalid_request",
                900144,
                f"AADSTS900144: response_mode '{params['response_mode']}' is not supported here.",
            )
        if not params["scope"].strip():
            raise OAuthError(
                400,
                "invalid_request",
                900144,
                "AADSTS900144: The request body must contain the following parameter: 'scope'.",
            )
        for scope in params["scope"].split():
            if scope not in OIDC_SCOPES and "/" in scope:
                audience = scope.rsplit("/", 1)[0]
                if self._resource(audience) is None:
                    raise resource_not_found(audience, self.tenant_id)

    def _session_user(self, request: Request) -> User | None:
        sid = request.cookies.get(SESSION_COOKIE, "")
        with self._lock:
            return self._sessions.get(sid) if sid else None

    def _redirect_with_code(self, params: dict[str, str], user: User) -> Response:
        code = secrets.token_urlsafe(48)
        grant = _Grant(
            client_id=params["client_id"],
            user=user,
            scopes=tuple(params["scope"].split()),
            expires_at=self._now() + CODE_LIFETIME_SECONDS,
            redirect_uri=params["redirect_uri"],
            code_challenge=params["code_challenge"],
            code_challenge_method=params["code_challenge_method"] or "plain",
            nonce=params["nonce"] or None,
        )
        with self._lock:
            self._codes[code] = grant
        answer = {"code": code, "state": params["state"]}
        if params["client_info"] == "1":
            answer["client_info"] = self.client_info(user)
        answer["session_state"] = grant.sid
        return _redirect(params, answer)

    # ---- logout -------------------------------------------------------------------------------

    def logout(self, request: Request, tenant: str) -> Response:
        sid = request.cookies.get(SESSION_COOKIE, "")
        with self._lock:
            self._sessions.pop(sid, None)
        target = request.args.get("post_logout_redirect_uri", "")
        if target and self.allowed_logout_redirect(target):
            response = Response(status=302, headers={"Location": target})
        else:
            response = _page(
                "Signed out",
                "<h1>You signed out of your account</h1>"
                "<p>It's a good idea to close all browser windows.</p>",
            )
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, samesite="None")
        return response

    # ---- token --------------------------------------------------------------------------------

    def token(self, request: Request, grant_type: str) -> dict[str, Any]:
        """Redeem `authorization_code` or `refresh_token` for a public SPA client."""
        form = request.form
        client_id = form.get("client_id", "")
        client = self.spa_client(client_id)
        if client is None:
            raise OAuthError(
                400,
                "unauthorized_client",
                700016,
                f"AADSTS700016: Application with identifier '{client_id}' was not found in the "
                f"directory '{self.tenant_id}'.",
            )
        origin = request.headers.get("Origin", "")
        if not origin:
            raise OAuthError(
                400,
                "invalid_request",
                9002327,
                "AADSTS9002327: Tokens issued for the 'Single-Page Application' client-type may "
                "only be redeemed via cross-origin requests.",
            )
        if origin.lower() not in client.origins:
            raise OAuthError(
                400,
                "invalid_request",
                9002326,
                "AADSTS9002326: Cross-origin token redemption is permitted only for the "
                "'Single-Page Application' client-type. Request origin does not match the "
                "redirect URI's origin.",
            )
        if grant_type == "authorization_code":
            grant = self._redeem_code(form)
        else:
            grant = self._redeem_refresh_token(form)
        return self._tokens(grant, form.get("scope", ""))

    def _redeem_code(self, form: Any) -> _Grant:
        code = form.get("code", "")
        with self._lock:
            grant = self._codes.get(code)
            if grant is not None and not grant.redeemed:
                grant.redeemed = True
                redeemed_now = True
            else:
                redeemed_now = False
        if grant is None:
            raise OAuthError(
                400,
                "invalid_grant",
                9002313,
                "AADSTS9002313: Invalid request. Request is malformed or invalid.",
            )
        if not redeemed_now:
            raise OAuthError(
                400,
                "invalid_grant",
                54005,
                "AADSTS54005: OAuth2 Authorization code was already redeemed, please retry with "
                "a new valid code or use an existing refresh token.",
            )
        if grant.expires_at < self._now():
            raise OAuthError(
                400,
                "invalid_grant",
                70008,
                "AADSTS70008: The provided authorization code or refresh token has expired due "
                "to inactivity. Send a new interactive authorization request for this user and "
                "resource.",
            )
        if form.get("client_id", "") != grant.client_id:
            raise OAuthError(
                400,
                "invalid_grant",
                70000,
                "AADSTS70000: The provided authorization code was issued to a different client.",
            )
        if form.get("redirect_uri", "") != grant.redirect_uri:
            raise OAuthError(
                400,
                "invalid_grant",
                70000,
                "AADSTS70000: The request was denied because one or more grants are invalid: "
                "the redirect_uri does not match the one the code was issued for.",
            )
        verifier = form.get("code_verifier", "")
        if not verifier:
            raise OAuthError(
                400,
                "invalid_request",
                900144,
                "AADSTS900144: The request body must contain the following parameter: "
                "'code_verifier'.",
            )
        if pkce_challenge(verifier, grant.code_challenge_method) != grant.code_challenge:
            raise OAuthError(
                400,
                "invalid_grant",
                501481,
                "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in "
                "the authorization request.",
            )
        return grant

    def _redeem_refresh_token(self, form: Any) -> _Grant:
        token = form.get("refresh_token", "")
        with self._lock:
            grant = self._refresh.get(token)
        if grant is None or grant.client_id != form.get("client_id", ""):
            raise OAuthError(
                400,
                "invalid_grant",
                9002313,
                "AADSTS9002313: Invalid request. Request is malformed or invalid.",
            )
        if grant.expires_at < self._now():
            raise OAuthError(
                400,
                "invalid_grant",
                700084,
                "AADSTS700084: The refresh token was issued to a single page app (SPA), and "
                "therefore has a fixed, limited lifetime of 1.00:00:00, which cannot be "
                "extended. It is now expired and a new sign in request must be sent by the SPA "
                "to the sign in page.",
            )
        return grant

    def _tokens(self, grant: _Grant, requested_scope: str) -> dict[str, Any]:
        scopes = tuple(requested_scope.split()) or grant.scopes
        resource_scopes = [s for s in scopes if s not in OIDC_SCOPES]
        resources = {s.rsplit("/", 1)[0] for s in resource_scopes if "/" in s}
        if len(resources) > 1:
            raise OAuthError(
                400,
                "invalid_request",
                28000,
                "AADSTS28000: Provided value for the input parameter scope is not valid because "
                "it contains more than one resource.",
            )
        user, now = grant.user, self._now()
        if resources:
            audience = resources.pop()
            resource = self._resource(audience)
            if resource is None:
                raise resource_not_found(audience, self.tenant_id)
            names = [s.rsplit("/", 1)[1] for s in resource_scopes]
            scp = " ".join(n for n in names if n != ".default") or "user_impersonation"
            access_token = self._mint(
                oid=user.oid,
                upn=user.upn,
                name=user.name,
                roles=resource.roles_of(user.roles),
                aud=audience,
                scp=scp,
                azp=grant.client_id,
            )
            granted = " ".join(f"{audience}/{n}" for n in scp.split())
        else:
            access_token = self._mint(
                oid=user.oid,
                upn=user.upn,
                name=user.name,
                aud=GRAPH_AUDIENCE,
                scp=GRAPH_LOGIN_SCOPES,
                azp=grant.client_id,
            )
            granted = GRAPH_LOGIN_SCOPES
        refresh_token = secrets.token_urlsafe(64)
        # A SPA's refresh token keeps the first sign-in's 24 hours: redeeming one does not extend.
        rt_expires = grant.expires_at if grant.kind == "refresh" else now + SPA_RT_SECONDS
        with self._lock:
            self._refresh[refresh_token] = _Grant(
                client_id=grant.client_id,
                user=user,
                scopes=scopes,
                expires_at=rt_expires,
                sid=grant.sid,
                kind="refresh",
            )
        lifetime = 3599
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": granted,
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access_token,
            "refresh_token": refresh_token,
            "refresh_token_expires_in": int(rt_expires - now),
            "client_info": self.client_info(user),
        }
        if "openid" in scopes:
            body["id_token"] = self.id_token(grant, now)
        return body

    def id_token(self, grant: _Grant, now: float) -> str:
        user = grant.user
        claims: dict[str, Any] = {
            "aud": grant.client_id,
            "iss": self._issuer(),
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now) + 3600,
            "name": user.name,
            "oid": user.oid,
            "preferred_username": user.upn,
            "rh": "0.local.",
            "sid": grant.sid,
            "sub": _b64url(hashlib.sha256(f"{user.oid}:{grant.client_id}".encode()).digest())[:43],
            "tid": self.tenant_id,
            "uti": _b64url(uuid.uuid4().bytes),
            "ver": "2.0",
        }
        if grant.nonce:
            claims["nonce"] = grant.nonce
        return self._sign(claims)

    def client_info(self, user: User) -> str:
        return _b64url(json.dumps({"uid": user.oid, "utid": self.tenant_id}).encode())


# ---- pages and redirects ------------------------------------------------------------------------


def _redirect(params: dict[str, str], answer: dict[str, str]) -> Response:
    separator = "?" if params["response_mode"] == "query" else "#"
    if separator == "?" and "?" in params["redirect_uri"]:
        separator = "&"
    location = params["redirect_uri"] + separator + urlencode(answer)
    return Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


def _redirect_error(params: dict[str, str], exc: OAuthError) -> Response:
    answer = {"error": exc.error, "error_description": exc.description, "state": params["state"]}
    return _redirect(params, answer)


def _page(title: str, body: str, status: int = 200) -> Response:
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<style>body{font-family:sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}"
        "label,input,button{display:block;font-size:1rem;margin:.4rem 0}"
        "input{width:100%;padding:.5rem}button{padding:.5rem 1.5rem;background:#0067b8;"
        "color:#fff;border:0}button:focus,input:focus{outline:3px solid #000}"
        ".error{color:#a4262c}</style></head><body><main>"
        f"{body}</main></body></html>"
    )
    return Response(
        document,
        status=status,
        content_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


def _sign_in_page(
    tenant: str, params: dict[str, str], *, error: str = "", login_hint: str = ""
) -> Response:
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
        for name, value in params.items()
        if value
    )
    alert = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    body = (
        "<h1>Sign in</h1>"
        f"{alert}"
        f'<form method="post" action="/{html.escape(tenant)}/oauth2/v2.0/authorize">'
        f"{hidden}"
        '<label for="username">Username</label>'
        '<input id="username" name="username" type="text" autocomplete="username" '
        f'value="{html.escape(login_hint)}" required autofocus>'
        '<button type="submit">Sign in</button>'
        "</form>"
    )
    return _page("Sign in to your account", body)


def _error_page(code: int, description: str) -> Response:
    text = f"AADSTS{code}: {description}"
    body = (
        "<h1>Sorry, but we're having trouble signing you in.</h1>"
        f'<p role="alert">{html.escape(text)}</p>'
    )
    return _page("Sign in error", body, 400)
