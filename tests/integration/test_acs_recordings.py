"""Recording content from the ACS emulator through our HMAC-signing adapter, over HTTPS."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator

import pytest
from azure.communication.callautomation import CallAutomationClient, CommunicationUserIdentifier
from werkzeug.wrappers import Response

from emulators.acs import AcsEmulator
from emulators.common.processes import wait_until
from emulators.common.server import EmulatorApp, RunningServer
from emulators.common.tls import LocalTLS
from shared.adapters.acs_recordings import AcsRecordingContent, RecordingLocationRefused
from shared.errors import DependencyUnavailable, NotFound

pytestmark = pytest.mark.integration
AGENT = "8:acs:11111111-1111-1111-1111-111111111111_recorded-agent"


@pytest.fixture
def callbacks(local_tls: LocalTLS) -> Iterator[str]:
    """Somewhere for the call's mid-call events to go (they are not looked at)."""
    app = EmulatorApp()
    app.route("/cb", ["POST"], lambda request: Response(status=200))
    server = RunningServer(app, ssl_context=local_tls.server_context()).start()
    yield f"{server.url}/cb"
    server.stop()


@pytest.fixture
def content_location(
    acs_emulator: AcsEmulator, acs_client: CallAutomationClient, callbacks: str
) -> str:
    """A recorded call that has ended: the content location its file event names."""
    created = acs_client.create_call(CommunicationUserIdentifier(AGENT), callbacks)
    wait_until(lambda: any(r["device"] == AGENT for r in acs_emulator.ringing()), 10, "ringing")
    acs_emulator.device_answer(AGENT)
    server_call_id = acs_emulator.call(created.call_connection_id)["serverCallId"]
    acs_client.start_recording(server_call_id=server_call_id)
    acs_emulator.hang_up(AGENT)
    wait_until(lambda: acs_emulator.recordings()[0]["documentId"], 10, "the recording file")
    document = acs_emulator.recordings()[0]["documentId"]
    return f"{acs_emulator.url}/v1/objects/{document}/content/audio"


def adapter(emulator: AcsEmulator, tls: LocalTLS, key: str | None = None) -> AcsRecordingContent:
    connection = emulator.connection_string
    if key is not None:
        connection = f"endpoint={emulator.url};accesskey={key}"
    return AcsRecordingContent(connection, ca_bundle=str(tls.ca_path))


def test_the_signed_download_returns_the_wav(
    acs_emulator: AcsEmulator, local_tls: LocalTLS, content_location: str
) -> None:
    audio = adapter(acs_emulator, local_tls).fetch(content_location)

    assert audio.status == 200 and audio.content_type == "audio/wav"
    with wave.open(io.BytesIO(audio.content)) as wav:
        assert wav.getnframes() > 0
    signed = [r for r in acs_emulator.requests_log() if r["operation"] == "recordingContent"]
    assert [r["status"] for r in signed] == [200]


def test_a_range_is_passed_through(
    acs_emulator: AcsEmulator, local_tls: LocalTLS, content_location: str
) -> None:
    audio = adapter(acs_emulator, local_tls).fetch(content_location, byte_range="bytes=0-3")

    assert audio.status == 206 and audio.content == b"RIFF"
    assert audio.content_range is not None and audio.content_range.startswith("bytes 0-3/")


def test_a_wrong_key_is_refused_by_acs_and_reported_as_unavailable(
    acs_emulator: AcsEmulator, local_tls: LocalTLS, content_location: str
) -> None:
    wrong = adapter(acs_emulator, local_tls, key="d3Jvbmcta2V5LXdyb25nLWtleQ==")
    with pytest.raises(DependencyUnavailable, match="401"):
        wrong.fetch(content_location)


def test_missing_content_is_not_found_and_other_hosts_get_no_request(
    acs_emulator: AcsEmulator, local_tls: LocalTLS, content_location: str
) -> None:
    content = adapter(acs_emulator, local_tls)
    with pytest.raises(NotFound):
        content.fetch(content_location.replace("/v1/objects/", "/v1/objects/missing-"))
    before = len(acs_emulator.requests_log())
    with pytest.raises(RecordingLocationRefused):
        content.fetch("https://localhost:1/v1/objects/x/content/audio")
    assert len(acs_emulator.requests_log()) == before
