"""The ACS emulator's Identity endpoints, driven by the real azure-communication-identity client."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from azure.communication.identity import (
    CommunicationIdentityClient,
    CommunicationTokenScope,
    CommunicationUserIdentifier,
)
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)

from emulators.acs import AcsEmulator
from emulators.common.tls import LocalTLS
from shared.adapters.acs_identity import parse_expiry

pytestmark = pytest.mark.integration


@pytest.fixture
def identity(
    acs_emulator: AcsEmulator, local_tls: LocalTLS
) -> Iterator[CommunicationIdentityClient]:
    client = CommunicationIdentityClient.from_connection_string(
        acs_emulator.connection_string, connection_verify=str(local_tls.ca_path)
    )
    yield client


def test_a_created_user_gets_voip_tokens_that_the_device_api_accepts(
    identity: CommunicationIdentityClient, acs_emulator: AcsEmulator
) -> None:
    user, first = identity.create_user_and_token(scopes=[CommunicationTokenScope.VOIP])
    assert user.properties["id"].startswith(f"8:acs:{acs_emulator.resource_id}_")
    assert acs_emulator.identities.user_of(first.token) == user.properties["id"]

    token = identity.get_token(user, scopes=["voip"], token_expires_in=dt.timedelta(minutes=60))
    left = parse_expiry(token.expires_on) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(minutes=59) < left <= dt.timedelta(minutes=60)
    assert acs_emulator.identities.user_of(token.token) == user.properties["id"]
    chat_only = identity.get_token(user, scopes=["chat"])
    assert acs_emulator.identities.user_of(chat_only.token) is None  # not a voip token

    identity.revoke_tokens(user)
    assert acs_emulator.identities.user_of(token.token) is None
    renewed = identity.get_token(user, scopes=["voip"])
    assert acs_emulator.identities.user_of(renewed.token) == user.properties["id"]


def test_a_registered_identity_gets_tokens_and_an_unknown_one_is_not_found(
    identity: CommunicationIdentityClient, acs_emulator: AcsEmulator
) -> None:
    acs_emulator.identities.register("8:acs:local_anna")
    token = identity.get_token(CommunicationUserIdentifier("8:acs:local_anna"), scopes=["voip"])
    assert acs_emulator.identities.user_of(token.token) == "8:acs:local_anna"
    with pytest.raises(ResourceNotFoundError):
        identity.get_token(CommunicationUserIdentifier("8:acs:nobody"), scopes=["voip"])

    user = identity.create_user()
    identity.delete_user(user)
    with pytest.raises(ResourceNotFoundError):
        identity.get_token(user, scopes=["voip"])


def test_bad_scopes_lifetimes_and_signatures_are_refused(
    identity: CommunicationIdentityClient, acs_emulator: AcsEmulator, local_tls: LocalTLS
) -> None:
    user = identity.create_user()
    with pytest.raises(HttpResponseError) as bad_scope:
        identity.get_token(user, scopes=["phone"])
    assert bad_scope.value.status_code == 400
    with pytest.raises(HttpResponseError) as too_short:
        identity.get_token(user, scopes=["voip"], token_expires_in=dt.timedelta(minutes=10))
    assert too_short.value.status_code == 400

    forged = CommunicationIdentityClient.from_connection_string(
        f"endpoint={acs_emulator.url};accesskey=bm90IHRoZSBrZXk=",
        connection_verify=str(local_tls.ca_path),
    )
    with pytest.raises(ClientAuthenticationError):
        forged.create_user()
