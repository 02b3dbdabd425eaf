"""Storage reached as in Azure: service URIs and an Entra token, no key. Azurite run with
`--oauth basic` over HTTPS checks each request's bearer token (lifetime, issuer, audience; not
the signature), so the tables, queues and blob adapters are driven through that path for real."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.storage.queue import QueueClient

from emulators.common.processes import AZURITE_ACCOUNT, Azurite
from emulators.common.tls import LocalTLS
from shared.adapters.prompts import BlobStore
from shared.adapters.queues import QueueSender
from shared.adapters.storage_access import StorageAccess
from shared.adapters.tables import TableStore

pytestmark = pytest.mark.integration
TENANT = "00000000-0000-4000-8000-0000000e7a1d"


class EntraTokens:
    """A TokenCredential minting what Entra ID would give a managed identity for `audience`."""

    def __init__(self, audience: str = "https://storage.azure.com") -> None:
        self.audience = audience
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.append(scopes)
        now = int(time.time())
        claims = {
            "iss": f"https://sts.windows.net/{TENANT}/",
            "aud": self.audience,
            "iat": now,
            "nbf": now - 5,
            "exp": now + 3600,
            "oid": "5e5e5e5e-0000-4000-8000-00000000a001",
        }
        return AccessToken(
            jwt.encode(claims, "azurite-checks-no-signature-only-claims"), now + 3600
        )


@pytest.fixture(scope="module")
def oauth_azurite(
    local_tls: LocalTLS, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Azurite]:
    log = tmp_path_factory.mktemp("azurite-oauth") / "azurite.log"
    server = Azurite.on_free_ports().start(
        log_path=log,
        extra_args=[
            "--oauth",
            "basic",
            "--cert",
            str(local_tls.cert_path),
            "--key",
            str(local_tls.key_path),
        ],
    )
    yield server
    server.stop()


@pytest.fixture
def trust_local_ca(local_tls: LocalTLS, monkeypatch: pytest.MonkeyPatch) -> None:
    # azure-core's requests transport honours REQUESTS_CA_BUNDLE, as in Azure the system store.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(local_tls.ca_path))


def access(server: Azurite, tokens: EntraTokens) -> StorageAccess:
    return StorageAccess(
        table_uri=f"https://127.0.0.1:{server.table_port}/{AZURITE_ACCOUNT}",
        queue_uri=f"https://127.0.0.1:{server.queue_port}/{AZURITE_ACCOUNT}",
        blob_uri=f"https://127.0.0.1:{server.blob_port}/{AZURITE_ACCOUNT}",
        token_credential=tokens,
    )


def test_tables_and_queues_work_with_a_storage_token_and_no_key(
    oauth_azurite: Azurite, trust_local_ca: None
) -> None:
    tokens = EntraTokens()
    reach = access(oauth_azurite, tokens)
    assert reach.uses_identity
    store = TableStore(reach, timeout_seconds=10)
    table = store.table("identitycheck")
    table.upsert_entity({"PartitionKey": "p", "RowKey": "r", "value": 7})
    assert table.get_entity("p", "r")["value"] == 7

    QueueSender(reach, timeout_seconds=10).send("identity-check", {"call": "c1"})
    queue = QueueClient(
        reach.queue_uri, "identity-check", credential=tokens, connection_verify=True
    )
    [message] = list(queue.receive_messages())
    assert message.content  # base64 text, as the Functions host reads it
    assert ("https://storage.azure.com/.default",) in tokens.scopes


def test_prompt_audio_goes_to_blob_storage_with_a_storage_token_and_no_key(
    oauth_azurite: Azurite, trust_local_ca: None
) -> None:
    tokens = EntraTokens()
    blobs = BlobStore(access(oauth_azurite, tokens), timeout_seconds=10)
    blobs.put("prompts", "support/p0123456789abcdef.wav", b"RIFF-audio", "audio/wav")
    assert blobs.get("prompts", "support/p0123456789abcdef.wav") == b"RIFF-audio"
    blobs.delete("prompts", "support/p0123456789abcdef.wav")
    blobs.delete("prompts", "support/p0123456789abcdef.wav")  # gone already: fine
    assert blobs.get("prompts", "support/p0123456789abcdef.wav") is None
    assert ("https://storage.azure.com/.default",) in tokens.scopes


def test_a_token_for_another_audience_is_refused(
    oauth_azurite: Azurite, trust_local_ca: None
) -> None:
    store = TableStore(access(oauth_azurite, EntraTokens("https://vault.azure.net")), retry_total=0)
    with pytest.raises((ClientAuthenticationError, HttpResponseError)) as refused:
        store.table("refused").upsert_entity({"PartitionKey": "p", "RowKey": "r"})
    assert "audience" in str(refused.value).lower() or "403" in str(refused.value)


def test_a_connection_string_still_selects_the_key_path() -> None:
    assert not StorageAccess.of("UseDevelopmentStorage=true").uses_identity
