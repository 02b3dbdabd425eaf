"""Entra ID stand-in: OpenID discovery, JWKS, client-credentials tokens, minted user tokens."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from werkzeug.wrappers import Request, Response

from emulators.common.server import EmulatorApp, RunningServer, json_response
from emulators.common.tls import LocalTLS
from emulators.entra.authorize import (
    AuthorizationServer,
    OAuthError,
    Resource,
    User,
    resource_not_found,
)

# A v2.0 access token lives 60-90 minutes in Entra; MSAL only needs `expires_in`.
TOKEN_LIFETIME_SECONDS = 3599
# Microsoft's service principals, in every tenant: the resources the product asks tokens for
# (and Key Vault, a resource of the tenant whose tokens our services must refuse). Graph's app
# roles here are the application permissions an admin may grant the backend.
FIRST_PARTY = (
    Resource(
        "https://graph.microsoft.com",
        frozenset({"CallRecords.Read.All", "CallRecord-PstnCalls.Read.All", "User.Read.All"}),
    ),
    Resource("00000003-0000-0000-c000-000000000000"),  # Graph, by its application id
    Resource("https://communication.azure.com"),
    Resource("https://storage.azure.com"),
    Resource("https://vault.azure.net"),
    Resource("https://management.azure.com"),
    Resource("https://*.dynamics.com"),  # Dynamics CRM: the URL of every org
)


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@dataclass
class SigningKey:
    """An RSA key with a self-signed certificate, published in the JWKS like Entra's keys."""

    kid: str
    private_key: rsa.RSAPrivateKey
    cert_der: bytes

    @classmethod
    def generate(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "accounts.accesscontrol.local")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .sign(key, hashes.SHA256())
        )
        der = cert.public_bytes(serialization.Encoding.DER)
        # Entra's kid and x5t are both the base64url SHA-1 thumbprint of the certificate.
        kid = _b64url(hashlib.sha1(der).digest())  # noqa: S324 - a thumbprint, not security
        return cls(kid=kid, private_key=key, cert_der=der)

    def jwk(self, issuer: str) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
            "x5c": [base64.b64encode(self.cert_der).decode()],
            "issuer": issuer,
        }

    def pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@dataclass
class ClientApp:
    """An app registration with one client secret and the app roles granted to it."""

    client_id: str
    client_secret: str
    roles: list[str] = field(default_factory=list)


class EntraError(Exception):
    """An OAuth error rendered in Entra's shape (error, error_description, error_codes, ...)."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description


class EntraEmulator:
    """One tenant of Entra ID on loopback HTTPS. `url` is the authority host (no trailing /)."""

    def __init__(
        self, *, tls: LocalTLS | None, port: int, tenant_id: str, clients: dict[str, str]
    ) -> None:
        self.tenant_id = tenant_id
        self._lock = threading.Lock()
        self._clients: dict[str, ClientApp] = {
            cid: ClientApp(cid, secret) for cid, secret in clients.items()
        }
        self._keys: list[SigningKey] = [SigningKey.generate()]
        self._requests: list[dict[str, Any]] = []
        self._resources: list[Resource] = list(FIRST_PARTY)
        self.sign_in = AuthorizationServer(
            tenant_id=tenant_id,
            issuer=lambda: self.issuer,
            sign=self._sign,
            mint_access_token=self.mint_user_token,
            resource=self.resource,
        )
        self._app = EmulatorApp()
        self._routes()
        self._server = RunningServer(
            self._wsgi, port=port, ssl_context=tls.server_context() if tls else None
        )
        self.url = self._server.url

    # ---- public, in-process API -------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return self.issuer_for(self.tenant_id)

    def issuer_for(self, tenant_id: str) -> str:
        return f"{self.url}/{tenant_id}/v2.0"

    @property
    def authority(self) -> str:
        return f"{self.url}/{self.tenant_id}"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/{self.tenant_id}/discovery/v2.0/keys"

    @property
    def token_endpoint(self) -> str:
        return f"{self.url}/{self.tenant_id}/oauth2/v2.0/token"

    def start(self) -> EntraEmulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def register_client(
        self, client_id: str, client_secret: str, roles: list[str] | None = None
    ) -> None:
        with self._lock:
            self._clients[client_id] = ClientApp(client_id, client_secret, list(roles or []))

    def register_resource(self, identifier: str, app_roles: list[str] | None = None) -> Resource:
        """An application exposing an API (its identifier URI) with the app roles it defines,
        e.g. the agent API (`api://...`, Phone.Agent and Phone.Supervisor) or a Dataverse org
        on loopback. Tokens are only issued for registered resources."""
        resource = Resource(identifier, frozenset(app_roles or ()))
        with self._lock:
            self._resources = [r for r in self._resources if r.identifier != identifier]
            self._resources.append(resource)
        return resource

    def resource(self, audience: str) -> Resource | None:
        with self._lock:
            return next((r for r in self._resources if r.names(audience)), None)

    def rotate_keys(self, *, keep_old: bool = True) -> str:
        """A new signing key; the old one stays published (as during Entra's rollover) or not."""
        key = SigningKey.generate()
        with self._lock:
            self._keys = [key, *self._keys] if keep_old else [key]
        return key.kid

    def service_principal_id(self, client_id: str) -> str:
        """The object id of an app's service principal in this tenant (stable per client id)."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{self.tenant_id}:{client_id}"))

    def mint_user_token(
        self,
        *,
        oid: str,
        upn: str,
        name: str,
        roles: list[str] | None = None,
        aud: str,
        expires_in: int = TOKEN_LIFETIME_SECONDS,
        tid: str | None = None,
        scp: str | None = None,
        azp: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """A v2.0 user access token as Entra issues it for an API (the agent API here)."""
        tenant = tid or self.tenant_id
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": aud,
            "iss": self.issuer_for(tenant),
            "iat": now,
            "nbf": now,
            "exp": now + int(expires_in),
            "aio": _b64url(uuid.uuid4().bytes),
            "azp": azp or str(uuid.uuid5(uuid.NAMESPACE_URL, f"panel:{tenant}")),
            "azpacr": "0",
            "name": name,
            "oid": oid,
            "preferred_username": upn,
            "upn": upn,
            "rh": "0.local.",
            "roles": list(roles or []),
            # Entra's `sub` is pairwise: unique per user and per application.
            "sub": _b64url(hashlib.sha256(f"{oid}:{aud}".encode()).digest())[:43],
            "tid": tenant,
            "uti": _b64url(uuid.uuid4().bytes),
            "ver": "2.0",
        }
        if scp:
            claims["scp"] = scp
        if not claims["roles"]:
            del claims["roles"]  # Entra omits the claim when no role is assigned
        claims.update(extra or {})
        return self._sign(claims)

    def requests_seen(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    # ---- HTTP ---------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self._cors(request) or self._app.dispatch(request)
        self._cors_headers(request, response)
        if not request.path.startswith("/_control/"):
            with self._lock:
                self._requests.append(
                    {
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "time": dt.datetime.now(dt.UTC).isoformat(),
                    }
                )
        return response(environ, start_response)

    def _cors(self, request: Request) -> Response | None:
        """A browser's preflight of the token endpoint, answered as Entra does for SPA origins."""
        if request.method != "OPTIONS" or not request.headers.get("Origin"):
            return None
        if not request.path.endswith("/oauth2/v2.0/token"):
            return Response(status=204) if _anonymous_metadata(request.path) else None
        return Response(status=204)

    def _cors_headers(self, request: Request, response: Response) -> None:
        origin = request.headers.get("Origin", "")
        if not origin:
            return
        if _anonymous_metadata(request.path):
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif request.path.endswith("/oauth2/v2.0/token") and self.sign_in.allowed_origin(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        else:
            return
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            asked = request.headers.get("Access-Control-Request-Headers")
            if asked:
                response.headers["Access-Control-Allow-Headers"] = asked
            response.headers["Access-Control-Max-Age"] = "86400"

    def _routes(self) -> None:
        app = self._app
        app.route("/<tenant>/v2.0/.well-known/openid-configuration", ["GET"], self._discovery)
        app.route("/<tenant>/discovery/v2.0/keys", ["GET"], self._jwks)
        app.route("/<tenant>/discovery/keys", ["GET"], self._jwks)
        app.route("/<tenant>/oauth2/v2.0/token", ["POST"], self._token)
        app.route("/<tenant>/oauth2/v2.0/authorize", ["GET", "POST"], self._authorize)
        app.route("/<tenant>/oauth2/v2.0/logout", ["GET", "POST"], self._logout)
        app.route("/common/discovery/instance", ["GET"], self._instance_discovery)
        app.route("/_control/clients", ["POST"], self._control_clients)
        app.route("/_control/resources", ["POST"], self._control_resources)
        app.route("/_control/tokens", ["POST"], self._control_tokens)
        app.route("/_control/users", ["POST"], self._control_users)
        app.route("/_control/users", ["GET"], self._control_list_users)
        app.route("/_control/spa-clients", ["POST"], self._control_spa_clients)
        app.route("/_control/keys/rotate", ["POST"], self._control_rotate)
        app.route("/_control/requests", ["GET"], self._control_requests)
        app.route("/_control/requests", ["DELETE"], self._control_clear_requests)

    def _known_tenant(self, tenant: str) -> bool:
        return tenant.lower() == self.tenant_id.lower()

    def _tenant_error(self, request: Request, tenant: str) -> Response:
        return self._error_response(
            request,
            EntraError(
                400,
                "invalid_tenant",
                90002,
                f"AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the "
                "correct tenant ID and are signing into the correct cloud. Check with your "
                "subscription administrator, this may happen if there are no active "
                "subscriptions for the tenant.",
            ),
        )

    def _discovery(self, request: Request, tenant: str) -> Response:
        if not self._known_tenant(tenant):
            return self._tenant_error(request, tenant)
        base = f"{self.url}/{self.tenant_id}"
        return json_response(
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": self.issuer,
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{self.url}/oidc/userinfo",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "claims_supported": [
                    "sub",
                    "iss",
                    "cloud_instance_name",
                    "cloud_instance_host_name",
                    "cloud_graph_host_name",
                    "msgraph_host",
                    "aud",
                    "exp",
                    "iat",
                    "auth_time",
                    "acr",
                    "nonce",
                    "preferred_username",
                    "name",
                    "tid",
                    "ver",
                    "at_hash",
                    "c_hash",
                    "email",
                ],
                "kerberos_endpoint": f"{base}/kerberos",
                "tenant_region_scope": "EU",
                "cloud_instance_name": "microsoftonline.com",
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com",
                "rbac_url": "https://pas.windows.net",
            }
        )

    def _jwks(self, request: Request, tenant: str) -> Response:
        if not self._known_tenant(tenant):
            return self._tenant_error(request, tenant)
        with self._lock:
            keys = [k.jwk(self.issuer) for k in self._keys]
        return json_response({"keys": keys})

    def _instance_discovery(self, request: Request) -> Response:
        host = self.url.split("://", 1)[1]
        discovery = f"{self.url}/{self.tenant_id}/v2.0/.well-known/openid-configuration"
        return json_response(
            {
                "tenant_discovery_endpoint": discovery,
                "api-version": "1.1",
                "metadata": [
                    {"preferred_network": host, "preferred_cache": host, "aliases": [host]}
                ],
            }
        )

    def _token(self, request: Request, tenant: str) -> Response:
        try:
            if not self._known_tenant(tenant):
                return self._tenant_error(request, tenant)
            grant_type = request.form.get("grant_type", "")
            if grant_type in ("authorization_code", "refresh_token"):
                try:
                    return json_response(self.sign_in.token(request, grant_type))
                except OAuthError as exc:
                    raise EntraError(exc.status, exc.error, exc.code, exc.description) from None
            return json_response(self._client_credentials(request))
        except EntraError as exc:
            return self._error_response(request, exc)

    def _authorize(self, request: Request, tenant: str) -> Response:
        if not self._known_tenant(tenant):
            return self._tenant_error(request, tenant)
        return self.sign_in.authorize(request, tenant)

    def _logout(self, request: Request, tenant: str) -> Response:
        if not self._known_tenant(tenant):
            return self._tenant_error(request, tenant)
        return self.sign_in.logout(request, tenant)

    def _client_credentials(self, request: Request) -> dict[str, Any]:
        form = request.form
        client_id = form.get("client_id", "")
        client_secret = form.get("client_secret")
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            # client_secret_basic: both parts are form-url-encoded before base64 (RFC 6749 2.3.1)
            decoded = base64.b64decode(auth[6:].strip()).decode()
            basic_id, _, basic_secret = decoded.partition(":")
            client_id, client_secret = unquote_plus(basic_id), unquote_plus(basic_secret)
        grant_type = form.get("grant_type", "")
        if not grant_type:
            raise EntraError(
                400,
                "invalid_request",
                900144,
                "AADSTS900144: The request body must contain the following "
                "parameter: 'grant_type'.",
            )
        if grant_type != "client_credentials":
            raise EntraError(
                400,
                "unsupported_grant_type",
                70003,
                f"AADSTS70003: The app requested an unsupported grant type '{grant_type}'.",
            )
        if not client_id:
            raise EntraError(
                400,
                "invalid_request",
                900144,
                "AADSTS900144: The request body must contain the following parameter: 'client_id'.",
            )
        with self._lock:
            client = self._clients.get(client_id)
        if client is None:
            raise EntraError(
                400,
                "unauthorized_client",
                700016,
                f"AADSTS700016: Application with identifier '{client_id}' was not "
                f"found in the directory '{self.tenant_id}'. This can happen if the "
                "application has not been installed by the administrator of the "
                "tenant or consented to by any user in the tenant. You may have "
                "sent your authentication request to the wrong tenant.",
            )
        if not client_secret:
            raise EntraError(
                401,
                "invalid_client",
                7000218,
                "AADSTS7000218: The request body must contain the following "
                "parameter: 'client_assertion' or 'client_secret'.",
            )
        if client_secret != client.client_secret:
            raise EntraError(
                401,
                "invalid_client",
                7000215,
                "AADSTS7000215: Invalid client secret provided. Ensure the secret "
                "being sent in the request is the client secret value, not the "
                f"client secret ID, for a secret added to app '{client_id}'.",
            )
        scope = form.get("scope", "").strip()
        if not scope:
            raise EntraError(
                400,
                "invalid_request",
                900144,
                "AADSTS900144: The request body must contain the following parameter: 'scope'.",
            )
        scopes = scope.split()
        resource_scopes = [s for s in scopes if s not in ("openid", "profile", "offline_access")]
        if len(resource_scopes) != 1 or not resource_scopes[0].endswith("/.default"):
            raise EntraError(
                400,
                "invalid_scope",
                1002012,
                f"AADSTS1002012: The provided value for scope {scope} is not valid. "
                "Client credential flows must have a scope value with /.default "
                "suffixed to the resource identifier (application ID URI).",
            )
        audience = resource_scopes[0][: -len("/.default")]
        resource = self.resource(audience) if audience else None
        if resource is None:
            missing = resource_not_found(audience, self.tenant_id)
            raise EntraError(missing.status, missing.error, missing.code, missing.description)
        now = int(time.time())
        sp = self.service_principal_id(client_id)
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "aio": _b64url(uuid.uuid4().bytes),
            "appid": client_id,
            "appidacr": "1",
            "azp": client_id,
            "azpacr": "1",
            "idtyp": "app",
            "oid": sp,
            "rh": "0.local.",
            "sub": sp,
            "tid": self.tenant_id,
            "uti": _b64url(uuid.uuid4().bytes),
            "ver": "2.0",
        }
        roles = resource.roles_of(client.roles)  # granted on another API: not in this token
        if roles:
            claims["roles"] = roles
        return {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECONDS,
            "ext_expires_in": TOKEN_LIFETIME_SECONDS,
            "access_token": self._sign(claims),
        }

    def _sign(self, claims: dict[str, Any]) -> str:
        with self._lock:
            key = self._keys[0]
        return jwt.encode(
            claims,
            key.pem(),
            algorithm="RS256",
            headers={"kid": key.kid, "x5t": key.kid, "typ": "JWT"},
        )

    def _error_response(self, request: Request, exc: EntraError) -> Response:
        trace_id = str(uuid.uuid4())
        correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        description = (
            f"{exc.description} Trace ID: {trace_id} Correlation ID: "
            f"{correlation_id} Timestamp: {stamp}"
        )
        return json_response(
            {
                "error": exc.error,
                "error_description": description,
                "error_codes": [exc.code],
                "timestamp": stamp,
                "trace_id": trace_id,
                "correlation_id": correlation_id,
                "error_uri": f"{self.url}/error?code={exc.code}",
            },
            exc.status,
        )

    # ---- control API --------------------------------------------------------------------------

    def _control_clients(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        client_id, secret = body.get("client_id"), body.get("client_secret")
        if not isinstance(client_id, str) or not isinstance(secret, str):
            return json_response({"error": "client_id and client_secret are required"}, 400)
        roles = body.get("roles") or []
        self.register_client(client_id, secret, [str(r) for r in roles])
        return json_response(
            {"client_id": client_id, "service_principal_id": self.service_principal_id(client_id)},
            201,
        )

    def _control_resources(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        identifier, roles = body.get("identifier"), body.get("app_roles") or []
        if not isinstance(identifier, str) or not identifier or not isinstance(roles, list):
            return json_response(
                {"error": "identifier (string) and app_roles (list) are required"}, 400
            )
        resource = self.register_resource(identifier, [str(r) for r in roles])
        return json_response(
            {"identifier": resource.identifier, "app_roles": sorted(resource.app_roles)}, 201
        )

    def _control_tokens(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        missing = [k for k in ("oid", "aud") if not body.get(k)]
        if missing:
            return json_response({"error": f"missing: {', '.join(missing)}"}, 400)
        token = self.mint_user_token(
            oid=str(body["oid"]),
            upn=str(body.get("upn", "")),
            name=str(body.get("name", "")),
            roles=[str(r) for r in body.get("roles") or []],
            aud=str(body["aud"]),
            expires_in=int(body.get("expires_in", TOKEN_LIFETIME_SECONDS)),
            tid=body.get("tid"),
            scp=body.get("scp"),
            azp=body.get("azp"),
            extra=body.get("extra_claims"),
        )
        return json_response({"access_token": token, "token_type": "Bearer"})

    def _control_users(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        missing = [k for k in ("oid", "upn") if not isinstance(body.get(k), str) or not body[k]]
        roles = body.get("roles") or []
        if missing or not isinstance(roles, list):
            return json_response({"error": f"oid and upn (strings) are required: {missing}"}, 400)
        user = User(
            oid=body["oid"],
            upn=body["upn"],
            name=str(body.get("name") or body["upn"]),
            roles=tuple(str(r) for r in roles),
        )
        self.sign_in.add_user(user)
        return json_response(user.to_json(), 201)

    def _control_list_users(self, request: Request) -> Response:
        return json_response({"users": [u.to_json() for u in self.sign_in.users()]})

    def _control_spa_clients(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        client_id, uris = body.get("client_id"), body.get("redirect_uris")
        if (
            not isinstance(client_id, str)
            or not client_id
            or not isinstance(uris, list)
            or not uris
            or not all(isinstance(u, str) and u.startswith(("https://", "http://")) for u in uris)
        ):
            return json_response(
                {"error": "client_id (string) and redirect_uris (http(s) URLs) are required"}, 400
            )
        client = self.sign_in.register_spa(client_id, uris)
        return json_response(
            {"client_id": client.client_id, "redirect_uris": list(client.redirect_uris)}, 201
        )

    def _control_rotate(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        kid = self.rotate_keys(keep_old=bool(body.get("keep_old", True)))
        return json_response({"kid": kid})

    def _control_requests(self, request: Request) -> Response:
        return json_response({"requests": self.requests_seen()})

    def _control_clear_requests(self, request: Request) -> Response:
        with self._lock:
            self._requests.clear()
        return Response(status=204)


def _anonymous_metadata(path: str) -> bool:
    """Discovery and keys: Entra serves them to any origin."""
    return path.endswith(("/openid-configuration", "/keys", "/discovery/instance"))


def start(
    *, tls: LocalTLS | None, port: int = 0, tenant_id: str, clients: dict[str, str] | None = None
) -> EntraEmulator:
    """Start the Entra ID emulator for one tenant, with the given app registrations."""
    return EntraEmulator(
        tls=tls, port=port, tenant_id=tenant_id, clients=dict(clients or {})
    ).start()
