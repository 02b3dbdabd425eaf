"""TokenValidator and ClientCredentialsTokenProvider against the Entra and Dataverse emulators."""

from __future__ import annotations

from collections.abc import Iterator

import jwt
import pytest

from emulators.common.processes import free_port
from emulators.common.tls import LocalTLS
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from emulators.entra import start as start_entra
from shared.adapters.identity import (
    AuthenticationError,
    AuthFailure,
    ClientCredentialsTokenProvider,
    SigningKeysUnavailable,
    TokenAcquisitionError,
    TokenValidator,
    http_session,
    is_microsoft_authority,
)
from tests.fixtures.entra_dataverse import API_AUDIENCE, AppRegistration

pytestmark = pytest.mark.integration

AGENT = {
    "oid": "0f3c1e2d-4b5a-4c6d-8e7f-901a2b3c4d5e",
    "upn": "aino@contoso.example",
    "name": "Aino Agent",
}


def validator(entra: EntraEmulator, local_tls: LocalTLS, **kw: float) -> TokenValidator:
    return TokenValidator(entra.issuer, API_AUDIENCE, entra.jwks_url, str(local_tls.ca_path), **kw)


@pytest.fixture
def own_entra(local_tls: LocalTLS) -> Iterator[EntraEmulator]:
    """A private Entra (key rotation must not disturb the shared one)."""
    server = start_entra(tls=local_tls, tenant_id="own-tenant", clients={"app": "secret"})
    yield server
    server.stop()


def test_a_minted_user_token_validates(entra: EntraEmulator, local_tls: LocalTLS) -> None:
    token = entra.mint_user_token(**AGENT, roles=["Agent"], aud=API_AUDIENCE)
    principal = validator(entra, local_tls).validate(f"Bearer {token}")
    assert principal.oid == AGENT["oid"]
    assert principal.upn == AGENT["upn"]
    assert principal.name == AGENT["name"]
    assert principal.roles == ("Agent",)
    assert principal.tenant_id == entra.tenant_id
    assert principal.has_role("Agent") and not principal.has_role("Supervisor")
    assert principal.claims["ver"] == "2.0"


def test_a_token_of_another_tenant_is_refused_even_with_our_issuer(
    entra: EntraEmulator, local_tls: LocalTLS
) -> None:
    foreign = entra.mint_user_token(
        **AGENT, aud=API_AUDIENCE, extra={"tid": "99999999-9999-4999-8999-999999999999"}
    )
    ours = TokenValidator(
        entra.issuer,
        API_AUDIENCE,
        entra.jwks_url,
        str(local_tls.ca_path),
        tenant_id=entra.tenant_id.upper(),
    )
    with pytest.raises(AuthenticationError) as caught:
        ours.validate(foreign)
    assert caught.value.reason == AuthFailure.WRONG_TENANT
    assert ours.validate(entra.mint_user_token(**AGENT, aud=API_AUDIENCE)).oid == AGENT["oid"]


def _tamper(token: str) -> str:
    head, payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    claims["roles"] = ["Supervisor"]
    forged = jwt.api_jws.base64url_encode(jwt.api_jws.json.dumps(claims).encode()).decode()
    assert forged != payload
    return f"{head}.{forged}.{signature}"


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("tampered", AuthFailure.BAD_SIGNATURE),
        ("expired", AuthFailure.EXPIRED),
        ("wrong_audience", AuthFailure.WRONG_AUDIENCE),
        ("wrong_issuer", AuthFailure.WRONG_ISSUER),
        ("hs256", AuthFailure.UNSUPPORTED_ALGORITHM),
        ("junk", AuthFailure.MALFORMED),
        ("empty", AuthFailure.MISSING),
    ],
)
def test_a_bad_token_is_refused_with_its_reason(
    kind: str, reason: AuthFailure, entra: EntraEmulator, local_tls: LocalTLS
) -> None:
    good = entra.mint_user_token(**AGENT, aud=API_AUDIENCE)
    token = {
        "tampered": _tamper(good),
        "expired": entra.mint_user_token(**AGENT, aud=API_AUDIENCE, expires_in=-3600),
        "wrong_audience": entra.mint_user_token(**AGENT, aud="api://someone-else"),
        "wrong_issuer": entra.mint_user_token(
            **AGENT, aud=API_AUDIENCE, tid="99999999-9999-4999-8999-999999999999"
        ),
        "hs256": jwt.encode(
            {"aud": API_AUDIENCE, "iss": entra.issuer}, "k" * 32, algorithm="HS256"
        ),
        "junk": "eyJhbGciOi.not.a-token",
        "empty": "",
    }[kind]
    with pytest.raises(AuthenticationError) as caught:
        validator(entra, local_tls).validate(token)
    assert caught.value.reason == reason
    if token:
        assert token not in str(caught.value) and token not in caught.value.detail


def test_keys_are_cached_and_refetched_once_on_rollover(
    own_entra: EntraEmulator, local_tls: LocalTLS
) -> None:
    check = validator(own_entra, local_tls, refetch_cooldown_seconds=3600)
    check.validate(own_entra.mint_user_token(**AGENT, aud=API_AUDIENCE))
    check.validate(own_entra.mint_user_token(**AGENT, aud=API_AUDIENCE))
    assert check.fetch_count == 1
    own_entra.rotate_keys(keep_old=False)
    check.validate(own_entra.mint_user_token(**AGENT, aud=API_AUDIENCE))
    assert check.fetch_count == 2
    # A second unknown key inside the cooldown does not trigger another download.
    own_entra.rotate_keys(keep_old=False)
    with pytest.raises(AuthenticationError) as caught:
        check.validate(own_entra.mint_user_token(**AGENT, aud=API_AUDIENCE))
    assert caught.value.reason == AuthFailure.UNKNOWN_KEY
    assert check.fetch_count == 2


def test_unreachable_keys_are_a_dependency_failure(
    entra: EntraEmulator, local_tls: LocalTLS
) -> None:
    check = TokenValidator(
        entra.issuer,
        API_AUDIENCE,
        f"https://127.0.0.1:{free_port()}/keys",
        str(local_tls.ca_path),
        timeout_seconds=2,
    )
    with pytest.raises(SigningKeysUnavailable):
        check.validate(entra.mint_user_token(**AGENT, aud=API_AUDIENCE))


def test_the_ca_bundle_wins_over_requests_ca_bundle(
    entra: EntraEmulator, local_tls: LocalTLS, monkeypatch: pytest.MonkeyPatch
) -> None:
    # REQUESTS_CA_BUNDLE pointing elsewhere must not override the configured bundle.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/nonexistent/ca.pem")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/nonexistent/ca.pem")
    response = http_session(str(local_tls.ca_path)).get(entra.jwks_url, timeout=10)
    assert response.status_code == 200


def provider(
    app_registration: AppRegistration, scope: str, local_tls: LocalTLS, secret: str | None = None
) -> ClientCredentialsTokenProvider:
    return ClientCredentialsTokenProvider(
        app_registration.authority_host,
        app_registration.tenant_id,
        app_registration.client_id,
        secret if secret is not None else app_registration.client_secret,
        scope,
        str(local_tls.ca_path),
    )


def test_client_credentials_tokens_come_from_msal_once_then_its_cache(
    entra: EntraEmulator,
    app_registration: AppRegistration,
    dataverse_reset: DataverseEmulator,
    local_tls: LocalTLS,
) -> None:
    dataverse = dataverse_reset
    tokens = provider(app_registration, f"{dataverse.url}/.default", local_tls)
    first = tokens.token()
    token_calls = sum(1 for r in entra.requests_seen() if r["path"].endswith("/token"))
    second = tokens.token()
    assert second == first
    assert sum(1 for r in entra.requests_seen() if r["path"].endswith("/token")) == token_calls
    assert tokens.build_count == 1
    assert jwt.decode(first, options={"verify_signature": False})["aud"] == dataverse.url
    # The token is accepted by the Dataverse emulator.
    response = http_session(str(local_tls.ca_path)).get(
        f"{dataverse.api_url}/WhoAmI", headers={"Authorization": f"Bearer {first}"}, timeout=10
    )
    assert response.status_code == 200


def test_a_wrong_secret_is_a_typed_error_without_the_secret(
    app_registration: AppRegistration, local_tls: LocalTLS
) -> None:
    secret = "very-wrong-secret-value"
    tokens = provider(app_registration, "https://org.example/.default", local_tls, secret)
    with pytest.raises(TokenAcquisitionError) as caught:
        tokens.token()
    assert caught.value.error == "invalid_client"
    assert 7000215 in caught.value.error_codes
    assert "AADSTS7000215" in caught.value.reason  # for the log
    assert "AADSTS" not in caught.value.detail  # what an API caller sees: nothing internal
    assert app_registration.client_id not in caught.value.detail
    assert secret not in str(caught.value) and secret not in caught.value.reason


def test_an_unreachable_authority_is_not_cached(
    app_registration: AppRegistration, local_tls: LocalTLS
) -> None:
    tokens = ClientCredentialsTokenProvider(
        f"https://127.0.0.1:{free_port()}",
        "t",
        "c",
        "s3cr3t-value",
        "https://x/.default",
        str(local_tls.ca_path),
        timeout_seconds=2,
    )
    for _ in range(2):
        with pytest.raises(TokenAcquisitionError) as caught:
            tokens.token()
        assert "s3cr3t-value" not in str(caught.value)
    assert tokens.build_count == 0


@pytest.mark.parametrize(
    ("host", "microsoft"),
    [
        ("https://login.microsoftonline.com", True),
        ("https://login.microsoftonline.com/", True),
        ("login.microsoftonline.us", True),
        ("https://127.0.0.1:8443", False),
        ("https://login.microsoftonline.com.evil.example", False),
    ],
)
def test_instance_discovery_is_off_only_for_non_microsoft_hosts(host: str, microsoft: bool) -> None:
    assert is_microsoft_authority(host) is microsoft
