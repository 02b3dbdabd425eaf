"""ACS reached as in Azure, without its key: Call Automation and the recording download with an
Entra ID token of the app's identity (the ACS emulator checks its signature, issuer and audience,
as ACS does), through the real SDK client our adapter builds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from werkzeug.wrappers import Response

from emulators.acs import AcsEmulator, start
from emulators.common.processes import wait_until
from emulators.common.server import EmulatorApp, RunningServer
from emulators.common.tls import LocalTLS
from emulators.entra import EntraEmulator
from shared.adapters.acs import AcsTelephony
from shared.adapters.acs_access import ACS_SCOPE, AcsAccess
from shared.adapters.acs_recordings import AcsRecordingContent
from shared.errors import DependencyUnavailable, TelephonyError
from tests.fixtures.entra_dataverse import app_tokens

pytestmark = pytest.mark.integration
AGENT = "8:acs:11111111-1111-1111-1111-111111111111_identity-agent"


class EntraAppCredential:
    """A TokenCredential for one scope, from the Entra emulator (a managed identity's stand-in)."""

    def __init__(self, entra: EntraEmulator, tls: LocalTLS, scope: str = ACS_SCOPE) -> None:
        self.scope = scope
        self.asked: list[tuple[str, ...]] = []
        self._tokens = app_tokens(tls, entra, scope)

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.asked.append(scopes)
        return AccessToken(self._tokens.token(), 2**31)


@pytest.fixture(scope="module")
def acs_with_entra(
    local_tls: LocalTLS, entra: EntraEmulator, acs_access_key: str, acs_resource_id: str
) -> Iterator[AcsEmulator]:
    emulator = start(
        tls=local_tls,
        access_key=acs_access_key,
        resource_id=acs_resource_id,
        entra_jwks_url=entra.jwks_url,
        entra_issuer=entra.issuer,
    )
    yield emulator
    emulator.stop()


@pytest.fixture
def callbacks(local_tls: LocalTLS) -> Iterator[str]:
    app = EmulatorApp()
    app.route("/cb", ["POST"], lambda request: Response(status=200))
    server = RunningServer(app, ssl_context=local_tls.server_context()).start()
    yield f"{server.url}/cb"
    server.stop()


def telephony(emulator: AcsEmulator, credential: Any, tls: LocalTLS) -> AcsTelephony:
    return AcsTelephony(
        AcsAccess(endpoint=emulator.url, token_credential=credential),
        ca_bundle=str(tls.ca_path),
        retry_total=0,
    )


def test_call_automation_with_the_identity_and_no_key(
    acs_with_entra: AcsEmulator, entra: EntraEmulator, local_tls: LocalTLS, callbacks: str
) -> None:
    acs_with_entra.reset()
    credential = EntraAppCredential(entra, local_tls)
    phone = telephony(acs_with_entra, credential, local_tls)
    connection_id = phone.create_call(AGENT, callback_url=callbacks, operation_context="dial")
    assert acs_with_entra.call(connection_id)["callConnectionId"] == connection_id
    assert credential.asked and credential.asked[0] == (ACS_SCOPE,)  # the SDK's own scope
    phone.ping()  # 404 for the probe's call: authenticated


def test_a_token_for_another_resource_is_refused(
    acs_with_entra: AcsEmulator, entra: EntraEmulator, local_tls: LocalTLS
) -> None:
    wrong = EntraAppCredential(entra, local_tls, scope="https://vault.azure.net/.default")
    with pytest.raises(TelephonyError) as refused:
        telephony(acs_with_entra, wrong, local_tls).ping()
    assert refused.value.status == 401


def test_the_recording_downloads_with_a_bearer_token(
    acs_with_entra: AcsEmulator, entra: EntraEmulator, local_tls: LocalTLS, callbacks: str
) -> None:
    acs_with_entra.reset()
    credential = EntraAppCredential(entra, local_tls)
    phone = telephony(acs_with_entra, credential, local_tls)
    connection_id = phone.create_call(AGENT, callback_url=callbacks, operation_context="dial")
    wait_until(lambda: any(r["device"] == AGENT for r in acs_with_entra.ringing()), 30, "ringing")
    acs_with_entra.device_answer(AGENT)
    server_call_id = acs_with_entra.call(connection_id)["serverCallId"]
    phone.start_recording(server_call_id, state_callback_url=callbacks)
    acs_with_entra.hang_up(AGENT)
    wait_until(lambda: acs_with_entra.recordings()[0]["documentId"], 30, "the recording file")
    document = acs_with_entra.recordings()[0]["documentId"]
    location = f"{acs_with_entra.url}/v1/objects/{document}/content/audio"

    content = AcsRecordingContent(
        AcsAccess(endpoint=acs_with_entra.url, token_credential=credential),
        ca_bundle=str(local_tls.ca_path),
    )
    audio = content.fetch(location)
    assert audio.status == 200 and audio.content[:4] == b"RIFF"

    wrong = EntraAppCredential(entra, local_tls, scope="https://vault.azure.net/.default")
    refused = AcsRecordingContent(
        AcsAccess(endpoint=acs_with_entra.url, token_credential=wrong),
        ca_bundle=str(local_tls.ca_path),
    )
    with pytest.raises(DependencyUnavailable):
        refused.fetch(location)
