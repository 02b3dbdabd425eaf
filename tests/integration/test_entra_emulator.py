"""The Entra ID emulator: discovery, JWKS and client credentials, driven by the real MSAL."""

from __future__ import annotations

import base64
from typing import Any

import jwt
import msal
import pytest
import requests

from emulators.common.tls import LocalTLS
from emulators.entra import EntraEmulator
from tests.fixtures.entra_dataverse import AppRegistration, ca_session

pytestmark = pytest.mark.integration

SCOPE = "https://org.example/.default"


@pytest.fixture(autouse=True)
def org_example(entra: EntraEmulator) -> None:
    """https://org.example is an API of the tenant, defining the app role Calls.Write."""
    entra.register_resource("https://org.example", ["Calls.Write"])


def msal_app(
    local_tls: LocalTLS, entra: EntraEmulator, client_id: str, secret: str
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=secret,
        authority=f"{entra.url}/{entra.tenant_id}",
        http_client=ca_session(local_tls),
        instance_discovery=False,
    )


def verified_claims(entra: EntraEmulator, token: str, audience: str, ca: str) -> dict[str, Any]:
    """Check a token's signature against the published JWKS, as a resource server would."""
    keys = requests.get(entra.jwks_url, verify=ca, timeout=10).json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    key = jwt.PyJWK(next(k for k in keys if k["kid"] == kid))
    return dict(
        jwt.decode(token, key, algorithms=["RS256"], audience=audience, issuer=entra.issuer)
    )


def test_discovery_document_and_keys_are_served(local_tls: LocalTLS, entra: EntraEmulator) -> None:
    ca = str(local_tls.ca_path)
    url = f"{entra.url}/{entra.tenant_id}/v2.0/.well-known/openid-configuration"
    config = requests.get(url, verify=ca, timeout=10).json()
    base = f"{entra.url}/{entra.tenant_id}"
    assert config["issuer"] == f"{base}/v2.0" == entra.issuer
    assert config["jwks_uri"] == f"{base}/discovery/v2.0/keys" == entra.jwks_url
    assert config["token_endpoint"] == f"{base}/oauth2/v2.0/token"
    assert config["authorization_endpoint"] == f"{base}/oauth2/v2.0/authorize"
    assert "client_secret_post" in config["token_endpoint_auth_methods_supported"]
    keys = requests.get(config["jwks_uri"], verify=ca, timeout=10).json()["keys"]
    assert keys and {k["kty"] for k in keys} == {"RSA"}
    assert all(k["kid"] and k["n"] and k["e"] and k["x5c"] and k["use"] == "sig" for k in keys)


def test_an_unknown_tenant_is_refused_like_entra(local_tls: LocalTLS, entra: EntraEmulator) -> None:
    response = requests.get(
        f"{entra.url}/no-such-tenant/v2.0/.well-known/openid-configuration",
        verify=str(local_tls.ca_path),
        timeout=10,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_tenant" and body["error_codes"] == [90002]


def test_msal_gets_an_app_token_whose_audience_is_the_scope_resource(
    local_tls: LocalTLS, entra: EntraEmulator, app_registration: AppRegistration
) -> None:
    app = msal_app(local_tls, entra, app_registration.client_id, app_registration.client_secret)
    result = app.acquire_token_for_client(scopes=[SCOPE])
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer" and result["expires_in"] > 3000
    claims = verified_claims(
        entra, result["access_token"], "https://org.example", str(local_tls.ca_path)
    )
    sp = entra.service_principal_id(app_registration.client_id)
    assert claims["aud"] == "https://org.example"
    assert claims["tid"] == entra.tenant_id
    assert claims["appid"] == claims["azp"] == app_registration.client_id
    assert claims["oid"] == claims["sub"] == sp
    assert claims["ver"] == "2.0" and claims["idtyp"] == "app"
    assert claims["iat"] <= claims["nbf"] + 1 and claims["exp"] > claims["iat"]
    header = jwt.get_unverified_header(result["access_token"])
    assert header["alg"] == "RS256" and header["kid"]
    # MSAL caches the app token: a second call does not reach the token endpoint.
    before = len(entra.requests_seen())
    again = app.acquire_token_for_client(scopes=[SCOPE])
    assert again["access_token"] == result["access_token"]
    assert len(entra.requests_seen()) == before


def test_a_wrong_secret_fails_with_aadsts7000215(
    local_tls: LocalTLS, entra: EntraEmulator, app_registration: AppRegistration
) -> None:
    app = msal_app(local_tls, entra, app_registration.client_id, "wrong-secret")
    result = app.acquire_token_for_client(scopes=[SCOPE])
    assert "access_token" not in result
    assert result["error"] == "invalid_client"
    assert result["error_codes"] == [7000215]
    assert result["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    for key in ("timestamp", "trace_id", "correlation_id"):
        assert result[key]
    assert entra.requests_seen()[-1]["status"] == 401


def _token_request(local_tls: LocalTLS, entra: EntraEmulator, **form: str) -> requests.Response:
    return requests.post(entra.token_endpoint, data=form, verify=str(local_tls.ca_path), timeout=10)


@pytest.mark.parametrize(
    ("form", "status", "error", "code"),
    [
        (
            {"client_id": "nobody", "client_secret": "x", "scope": SCOPE},
            400,
            "unauthorized_client",
            700016,
        ),
        ({"scope": "openid"}, 400, "invalid_scope", 1002012),
        ({"scope": "https://org.example/user_impersonation"}, 400, "invalid_scope", 1002012),
        ({"scope": ""}, 400, "invalid_request", 900144),
        ({"scope": SCOPE, "grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        ({"scope": SCOPE, "client_secret": ""}, 401, "invalid_client", 7000218),
    ],
)
def test_token_endpoint_errors_have_entras_shape(
    form: dict[str, str],
    status: int,
    error: str,
    code: int,
    local_tls: LocalTLS,
    entra: EntraEmulator,
    app_registration: AppRegistration,
) -> None:
    request = {
        "client_id": app_registration.client_id,
        "client_secret": app_registration.client_secret,
        "grant_type": "client_credentials",
        **form,
    }
    response = _token_request(local_tls, entra, **request)
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}:")
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)


def test_client_secret_basic_is_accepted(
    local_tls: LocalTLS, entra: EntraEmulator, app_registration: AppRegistration
) -> None:
    basic = base64.b64encode(
        f"{app_registration.client_id}:{app_registration.client_secret}".encode()
    ).decode()
    response = requests.post(
        entra.token_endpoint,
        data={"grant_type": "client_credentials", "scope": SCOPE},
        headers={"Authorization": f"Basic {basic}"},
        verify=str(local_tls.ca_path),
        timeout=10,
    )
    assert response.status_code == 200 and response.json()["access_token"]


def test_control_api_registers_apps_and_mints_user_tokens(
    local_tls: LocalTLS, entra: EntraEmulator
) -> None:
    session = ca_session(local_tls)
    registered = session.post(
        f"{entra.url}/_control/clients",
        json={"client_id": "demo-app", "client_secret": "demo-secret", "roles": ["Calls.Write"]},
    )
    assert registered.status_code == 201
    app = msal_app(local_tls, entra, "demo-app", "demo-secret")
    result = app.acquire_token_for_client(scopes=[SCOPE])
    ca = str(local_tls.ca_path)
    assert verified_claims(entra, result["access_token"], "https://org.example", ca)["roles"] == [
        "Calls.Write"
    ]

    minted = session.post(
        f"{entra.url}/_control/tokens",
        json={
            "oid": "0f3c1e2d-4b5a-4c6d-8e7f-901a2b3c4d5e",
            "upn": "aino@contoso.example",
            "name": "Aino Agent",
            "roles": ["Agent", "Supervisor"],
            "aud": "api://d365-phone-agent-api",
        },
    )
    assert minted.status_code == 200
    claims = verified_claims(entra, minted.json()["access_token"], "api://d365-phone-agent-api", ca)
    assert claims["oid"] == "0f3c1e2d-4b5a-4c6d-8e7f-901a2b3c4d5e"
    assert claims["preferred_username"] == "aino@contoso.example"
    assert claims["name"] == "Aino Agent"
    assert claims["roles"] == ["Agent", "Supervisor"]
    assert claims["tid"] == entra.tenant_id and claims["ver"] == "2.0"
    missing = session.post(f"{entra.url}/_control/tokens", json={"upn": "x"})
    assert missing.status_code == 400


def test_a_resource_the_tenant_does_not_have_gets_no_token(
    local_tls: LocalTLS, entra: EntraEmulator, app_registration: AppRegistration
) -> None:
    response = requests.post(
        entra.token_endpoint,
        data={
            "grant_type": "client_credentials",
            "client_id": app_registration.client_id,
            "client_secret": app_registration.client_secret,
            "scope": "https://unknown.example/.default",
        },
        verify=str(local_tls.ca_path),
        timeout=10,
    )
    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["error_codes"]) == ("invalid_resource", [500011])
    assert body["error_description"].startswith(
        "AADSTS500011: The resource principal named https://unknown.example was not found in "
        f"the tenant named {entra.tenant_id}."
    )
    assert body["trace_id"] and body["correlation_id"] and body["timestamp"]
    # Microsoft's own services are in every tenant, a Dynamics org by its URL.
    for scope in ("https://graph.microsoft.com/.default", "https://org.crm4.dynamics.com/.default"):
        app = msal_app(local_tls, entra, app_registration.client_id, app_registration.client_secret)
        assert "access_token" in app.acquire_token_for_client(scopes=[scope])


def test_an_app_role_is_only_in_tokens_for_the_api_that_defines_it(
    local_tls: LocalTLS, entra: EntraEmulator
) -> None:
    entra.register_client("two-apis", "two-secret", ["Calls.Write", "CallRecords.Read.All"])
    app = msal_app(local_tls, entra, "two-apis", "two-secret")
    ca = str(local_tls.ca_path)

    org = app.acquire_token_for_client(scopes=[SCOPE])["access_token"]
    graph = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    storage = app.acquire_token_for_client(scopes=["https://storage.azure.com/.default"])

    assert verified_claims(entra, org, "https://org.example", ca)["roles"] == ["Calls.Write"]
    graph_claims = verified_claims(entra, graph["access_token"], "https://graph.microsoft.com", ca)
    assert graph_claims["roles"] == ["CallRecords.Read.All"]
    storage_claims = verified_claims(
        entra, storage["access_token"], "https://storage.azure.com", ca
    )
    assert "roles" not in storage_claims
