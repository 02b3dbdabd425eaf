"""The Entra ID emulator's SPA sign-in over HTTPS, request by request as MSAL.js makes them:
authorize (sign-in page), code + PKCE redemption, refresh, CORS for SPA origins, logout."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests

from emulators.common.tls import LocalTLS
from emulators.entra import EntraEmulator
from tests.fixtures.entra_dataverse import API_AUDIENCE, ca_session

pytestmark = pytest.mark.integration

SPA_ORIGIN = "http://127.0.0.1:7071"
REDIRECT_URI = f"{SPA_ORIGIN}/api/panel/"
SCOPES = f"{API_AUDIENCE}/Phone.Use openid profile offline_access"


@pytest.fixture
def spa(entra: EntraEmulator, local_tls: LocalTLS) -> Iterator[dict[str, str]]:
    """A fresh SPA registration and user per test (the emulator is shared by the session)."""
    session = ca_session(local_tls)
    client_id = str(uuid.uuid4())
    user = {
        "oid": str(uuid.uuid4()),
        "upn": f"u{secrets.token_hex(4)}@contoso.local",
        "name": "Anna Agent",
        "roles": ["Phone.Agent"],
    }
    r = session.post(
        f"{entra.url}/_control/spa-clients",
        json={"client_id": client_id, "redirect_uris": [REDIRECT_URI]},
    )
    assert r.status_code == 201, r.text
    assert session.post(f"{entra.url}/_control/users", json=user).status_code == 201
    yield {"client_id": client_id, **{k: v for k, v in user.items() if k != "roles"}}
    session.close()


class _Form(HTMLParser):
    """The sign-in page's form: its action, hidden fields, the labelled input and the button."""

    def __init__(self) -> None:
        super().__init__()
        self.action, self.fields, self.labels, self.buttons = "", {}, [], []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"]] = a.get("value", "")
        elif tag in ("label", "button"):
            self._in = tag

    def handle_data(self, data: str) -> None:
        if self._in == "label":
            self.labels.append(data)
        elif self._in == "button":
            self.buttons.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._in = None


def pkce() -> tuple[str, str]:
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def authorize_params(client_id: str, challenge: str, **extra: str) -> dict[str, str]:
    return {
        "client_id": client_id,
        "scope": SCOPES,
        "redirect_uri": REDIRECT_URI,
        "client-request-id": str(uuid.uuid4()),
        "response_mode": "fragment",
        "response_type": "code",
        "x-client-SKU": "msal.js.browser",
        "client_info": "1",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "nonce": str(uuid.uuid4()),
        "state": base64.urlsafe_b64encode(b'{"id":"x"}').decode(),
        **extra,
    }


def sign_in(
    session: requests.Session, entra: EntraEmulator, spa: dict[str, str], **extra: str
) -> tuple[dict[str, str], dict[str, list[str]], str]:
    """Open the authorize URL, fill in the username, submit: (params, redirect, verifier)."""
    verifier, challenge = pkce()
    params = authorize_params(spa["client_id"], challenge, **{"prompt": "login", **extra})
    authorize = f"{entra.url}/{entra.tenant_id}/oauth2/v2.0/authorize"
    page = session.get(authorize, params=params, allow_redirects=False)
    assert page.status_code == 200, page.text
    assert page.headers["Content-Type"].startswith("text/html")
    form = _Form()
    form.feed(page.text)
    assert "Username" in form.labels and "Sign in" in form.buttons
    posted = session.post(
        f"{entra.url}{form.action}",
        data={**form.fields, "username": spa["upn"]},
        allow_redirects=False,
    )
    assert posted.status_code == 302, posted.text
    location = posted.headers["Location"]
    assert location.startswith(REDIRECT_URI + "#")
    return params, parse_qs(urlsplit(location).fragment), verifier


def redeem(
    session: requests.Session, entra: EntraEmulator, form: dict[str, str], origin: str = SPA_ORIGIN
) -> requests.Response:
    return session.post(
        f"{entra.url}/{entra.tenant_id}/oauth2/v2.0/token",
        data=form,
        headers={"Origin": origin, "Content-Type": "application/x-www-form-urlencoded"},
    )


def claims(entra: EntraEmulator, local_tls: LocalTLS, token: str, audience: str) -> dict[str, Any]:
    keys = requests.get(entra.jwks_url, verify=str(local_tls.ca_path), timeout=10).json()["keys"]
    key = jwt.PyJWK(next(k for k in keys if k["kid"] == jwt.get_unverified_header(token)["kid"]))
    return dict(
        jwt.decode(token, key, algorithms=["RS256"], audience=audience, issuer=entra.issuer)
    )


def code_form(spa: dict[str, str], code: str, verifier: str) -> dict[str, str]:
    return {
        "client_id": spa["client_id"],
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPES,
        "code": code,
        "code_verifier": verifier,
        "grant_type": "authorization_code",
        "client_info": "1",
    }


def test_sign_in_redeems_the_code_with_pkce_for_tokens_msal_js_accepts(
    entra: EntraEmulator, local_tls: LocalTLS, spa: dict[str, str]
) -> None:
    session = ca_session(local_tls)
    params, answer, verifier = sign_in(session, entra, spa)
    assert answer["state"] == [params["state"]]
    info = json.loads(base64.urlsafe_b64decode(answer["client_info"][0] + "=="))
    assert info == {"uid": spa["oid"], "utid": entra.tenant_id}

    r = redeem(session, entra, code_form(spa, answer["code"][0], verifier))
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert body["scope"] == f"{API_AUDIENCE}/Phone.Use"
    access = claims(entra, local_tls, body["access_token"], API_AUDIENCE)
    assert access["oid"] == spa["oid"] and access["upn"] == spa["upn"]
    assert access["name"] == "Anna Agent" and access["tid"] == entra.tenant_id
    assert access["roles"] == ["Phone.Agent"] and access["scp"] == "Phone.Use"
    assert access["azp"] == spa["client_id"]
    id_token = claims(entra, local_tls, body["id_token"], spa["client_id"])
    assert id_token["nonce"] == params["nonce"] and id_token["preferred_username"] == spa["upn"]
    assert body["client_info"] == answer["client_info"][0]

    # The code is single use; the refresh token gets a new access token for the same user.
    again = redeem(session, entra, code_form(spa, answer["code"][0], verifier))
    assert again.status_code == 400 and again.json()["error_codes"] == [54005]
    assert again.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    refreshed = redeem(
        session,
        entra,
        {
            "client_id": spa["client_id"],
            "scope": SCOPES,
            "refresh_token": body["refresh_token"],
            "grant_type": "refresh_token",
            "client_info": "1",
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    renewed = claims(entra, local_tls, refreshed.json()["access_token"], API_AUDIENCE)
    assert renewed["oid"] == spa["oid"] and renewed["roles"] == ["Phone.Agent"]
    assert refreshed.json()["refresh_token"] != body["refresh_token"]


def test_a_wrong_code_verifier_or_redirect_uri_is_refused(
    entra: EntraEmulator, local_tls: LocalTLS, spa: dict[str, str]
) -> None:
    session = ca_session(local_tls)
    _, answer, _ = sign_in(session, entra, spa)
    wrong, _ = pkce()
    r = redeem(session, entra, code_form(spa, answer["code"][0], wrong))
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_grant" and r.json()["error_codes"] == [501481]

    _, answer, verifier = sign_in(session, entra, spa)
    form = {**code_form(spa, answer["code"][0], verifier), "redirect_uri": SPA_ORIGIN + "/other"}
    assert redeem(session, entra, form).json()["error"] == "invalid_grant"

    _, answer, _ = sign_in(session, entra, spa)
    r = redeem(session, entra, code_form(spa, answer["code"][0], "v\u00e9rifier-" + "x" * 40))
    assert r.status_code == 400 and r.json()["error_codes"] == [501481]  # not a 500


def test_cors_is_answered_for_spa_origins_only(
    entra: EntraEmulator, local_tls: LocalTLS, spa: dict[str, str]
) -> None:
    session = ca_session(local_tls)
    token_url = f"{entra.url}/{entra.tenant_id}/oauth2/v2.0/token"
    preflight = session.options(
        token_url,
        headers={
            "Origin": SPA_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-anchormailbox",
        },
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == "content-type,x-anchormailbox"

    stranger = session.options(
        token_url,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in stranger.headers
    _, answer, verifier = sign_in(session, entra, spa)
    refused = redeem(
        session, entra, code_form(spa, answer["code"][0], verifier), "https://evil.example"
    )
    assert refused.status_code == 400 and refused.json()["error_codes"] == [9002326]
    assert "Access-Control-Allow-Origin" not in refused.headers

    discovery = session.get(
        f"{entra.url}/{entra.tenant_id}/v2.0/.well-known/openid-configuration",
        headers={"Origin": SPA_ORIGIN},
    )
    assert discovery.headers["Access-Control-Allow-Origin"] == "*"
    assert discovery.json()["end_session_endpoint"].endswith("/oauth2/v2.0/logout")


def test_an_unknown_user_stays_on_the_sign_in_page_with_entras_message(
    entra: EntraEmulator, local_tls: LocalTLS, spa: dict[str, str]
) -> None:
    session = ca_session(local_tls)
    _, challenge = pkce()
    params = authorize_params(spa["client_id"], challenge)
    url = f"{entra.url}/{entra.tenant_id}/oauth2/v2.0/authorize"
    r = session.post(url, data={**params, "username": "nobody@contoso.local"})
    assert r.status_code == 200 and "AADSTS50034" in r.text and 'role="alert"' in r.text
    assert "Location" not in r.headers


def test_authorize_refuses_unregistered_redirects_and_requires_pkce(
    entra: EntraEmulator, local_tls: LocalTLS, spa: dict[str, str]
) -> None:
    session = ca_session(local_tls)
    url = f"{entra.url}/{entra.tenant_id}/oauth2/v2.0/authorize"
    _, challenge = pkce()
    bad_redirect = authorize_params(
        spa["client_id"], challenge, redirect_uri="https://evil.example/"
    )
    r = session.get(url, params=bad_redirect, allow_redirects=False)
    assert r.status_code == 400 and "AADSTS50011" in r.text and "Location" not in r.headers

    no_pkce = authorize_params(spa["client_id"], "")
    r = session.get(url, params=no_pkce, allow_redirects=False)
    assert r.status_code == 302
    answer = parse_qs(urlsplit(r.headers["Location"]).fragment)
    assert (
        answer["error"] == ["invalid_request"] and "AADSTS9002325" in answer["error_description"][0]
    )
    assert answer["state"] == [no_pkce["state"]]


def test_silent_sign_in_uses_the_session_and_logout_ends_it(
    entra: EntraEmulator, local_tls: LocalTLS, spa: dict[str, str]
) -> None:
    session = ca_session(local_tls)
    url = f"{entra.url}/{entra.tenant_id}/oauth2/v2.0/authorize"
    _, challenge = pkce()
    silent = authorize_params(spa["client_id"], challenge, prompt="none", response_mode="query")
    r = session.get(url, params=silent, allow_redirects=False)
    answer = parse_qs(urlsplit(r.headers["Location"]).query)
    assert answer["error"] == ["login_required"]

    sign_in(session, entra, spa)
    r = session.get(url, params=silent, allow_redirects=False)
    assert r.status_code == 302
    assert "code" in parse_qs(urlsplit(r.headers["Location"]).query)

    out = session.get(
        f"{entra.url}/{entra.tenant_id}/oauth2/v2.0/logout",
        params={"post_logout_redirect_uri": REDIRECT_URI},
        allow_redirects=False,
    )
    assert out.status_code == 302 and out.headers["Location"] == REDIRECT_URI
    r = session.get(url, params=silent, allow_redirects=False)
    assert parse_qs(urlsplit(r.headers["Location"]).query)["error"] == ["login_required"]
    elsewhere = session.get(
        f"{entra.url}/{entra.tenant_id}/oauth2/v2.0/logout",
        params={"post_logout_redirect_uri": "https://evil.example/"},
        allow_redirects=False,
    )
    assert elsewhere.status_code == 200 and re.search("signed out", elsewhere.text)


def test_user_roles_are_in_the_agent_apis_tokens_only_and_unknown_apis_get_none(
    entra: EntraEmulator, local_tls: LocalTLS, spa: dict[str, str]
) -> None:
    session = ca_session(local_tls)
    _, answer, verifier = sign_in(session, entra, spa)
    body = redeem(session, entra, code_form(spa, answer["code"][0], verifier)).json()
    assert claims(entra, local_tls, body["access_token"], API_AUDIENCE)["roles"] == ["Phone.Agent"]

    def refreshed(scope: str) -> requests.Response:
        return redeem(
            session,
            entra,
            {
                "client_id": spa["client_id"],
                "scope": f"{scope} openid offline_access",
                "refresh_token": body["refresh_token"],
                "grant_type": "refresh_token",
            },
        )

    # The same user, a token for another API of the tenant: the agent API's roles stay out.
    storage = refreshed("https://storage.azure.com/user_impersonation")
    assert storage.status_code == 200, storage.text
    storage_claims = claims(
        entra, local_tls, storage.json()["access_token"], "https://storage.azure.com"
    )
    assert "roles" not in storage_claims and storage_claims["oid"] == spa["oid"]

    unknown = refreshed("api://not-in-this-tenant/Phone.Use")
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "invalid_resource"
    assert unknown.json()["error_codes"] == [500011]
    assert "api://not-in-this-tenant was not found" in unknown.json()["error_description"]


def test_signing_in_for_an_api_the_tenant_does_not_have_redirects_invalid_resource(
    entra: EntraEmulator, local_tls: LocalTLS, spa: dict[str, str]
) -> None:
    _, challenge = pkce()
    params = {
        **authorize_params(spa["client_id"], challenge),
        "scope": "api://not-in-this-tenant/Phone.Use openid",
    }
    page = ca_session(local_tls).get(
        f"{entra.url}/{entra.tenant_id}/oauth2/v2.0/authorize", params=params, allow_redirects=False
    )
    assert page.status_code == 302, page.text
    answer = parse_qs(urlsplit(page.headers["Location"]).fragment)
    assert answer["error"] == ["invalid_resource"]
    assert answer["error_description"][0].startswith(
        "AADSTS500011: The resource principal named api://not-in-this-tenant was not found"
    )
