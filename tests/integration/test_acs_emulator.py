"""The ACS emulator driven by the real azure-communication-callautomation SDK over HTTPS, with a
webhook receiver that checks the Event Grid deliveries and the callback JWTs."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
import requests
from azure.communication.callautomation import (
    CallAutomationClient,
    CallConnectionClient,
    CommunicationUserIdentifier,
    DtmfTone,
    FileSource,
    PhoneNumberIdentifier,
    RecognizeInputType,
)
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from werkzeug.wrappers import Request, Response

from emulators.acs import ISSUER, AcsEmulator, sign_request
from emulators.common.processes import wait_until
from emulators.common.server import RunningServer
from emulators.common.tls import LocalTLS

pytestmark = pytest.mark.integration

CALLER = "+358401234567"
OUR_NUMBER = "+358930000001"
AGENT = "8:acs:11111111-1111-1111-1111-111111111111_agent-1"
AGENT_2 = "8:acs:11111111-1111-1111-1111-111111111111_agent-2"
CALLBACKS = "/api/callbacks"
WAIT = 10.0


# -- a webhook receiver -----------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    status: int


def _wav(seconds: float = 0.2) -> bytes:
    """What ACS plays from a file: 16-bit PCM, mono, 16 kHz."""
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(16_000)
        audio.writeframes(b"\0\0" * int(16_000 * seconds))
    return out.getvalue()


class WebhookReceiver:
    """An HTTPS endpoint that records every POST and serves `files` to GETs (the audio a
    FileSource names); can be told to fail the next requests."""

    def __init__(self, tls: LocalTLS) -> None:
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self.files: dict[str, bytes] = {}
        self.fail_next = 0
        self.answer_after = 0.0  # seconds each request is held before it is answered
        self.in_flight = self.max_in_flight = 0
        self._server = RunningServer(self._wsgi, ssl_context=tls.server_context()).start()
        self.url = self._server.url

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        if request.method == "GET":
            found = self.files.get(request.path)
            return Response(found or b"", 200 if found else 404, content_type="audio/wav")(
                environ, start_response
            )
        body = json.loads(request.get_data() or b"null")
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        time.sleep(self.answer_after)
        with self._lock:
            self.in_flight -= 1
            status = 500 if self.fail_next > 0 else 200
            self.fail_next = max(0, self.fail_next - 1)
            self.received.append(
                Received(request.path, request.query_string.decode(), headers, body, status)
            )
        if status == 200 and headers.get("aeg-event-type") == "SubscriptionValidation":
            reply = {"validationResponse": body[0]["data"]["validationCode"]}
            return Response(json.dumps(reply), 200, content_type="application/json")(
                environ, start_response
            )
        return Response(status=status)(environ, start_response)

    def requests_to(self, prefix: str, *, ok_only: bool = True) -> list[Received]:
        with self._lock:
            return [
                r
                for r in self.received
                if r.path.startswith(prefix) and (r.status == 200 or not ok_only)
            ]

    def events(self, prefix: str) -> list[dict[str, Any]]:
        return [event for r in self.requests_to(prefix) for event in r.body]

    def types(self, prefix: str) -> list[str]:
        return [_short(e) for e in self.events(prefix)]

    def wait_for(self, prefix: str, name: str, count: int = 1) -> dict[str, Any]:
        wait_until(
            lambda: self.types(prefix).count(name) >= count,
            WAIT,
            f"{count} x {name} at {prefix} (got {self.types(prefix)})",
        )
        return [e for e in self.events(prefix) if _short(e) == name][count - 1]

    def stop(self) -> None:
        self._server.stop()


def _short(event: dict[str, Any]) -> str:
    return str(event.get("type") or event.get("eventType")).removeprefix("Microsoft.Communication.")


@pytest.fixture
def receiver(local_tls: LocalTLS) -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(local_tls)
    yield server
    server.stop()


@pytest.fixture
def jwks(acs_emulator: AcsEmulator, local_tls: LocalTLS) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(acs_emulator.jwks_url, ssl_context=local_tls.client_context())


def assert_signed(request: Received, jwks: jwt.PyJWKClient, audience: str) -> dict[str, Any]:
    scheme, _, token = request.headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    assert jwt.get_unverified_header(token)["kid"]
    key = jwks.get_signing_key_from_jwt(token).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=audience, issuer=ISSUER)
    assert claims["exp"] - claims["iat"] <= 600
    return claims


# -- helpers ------------------------------------------------------------------------------------


def answer_inbound(
    acs: AcsEmulator, client: CallAutomationClient, receiver: WebhookReceiver
) -> tuple[str, CallConnectionClient]:
    """A PSTN caller dials our number; the app answers the IncomingCall with a callback URL."""
    acs.set_webhooks(incoming_call=f"{receiver.url}/api/incoming?code=key1")
    acs.place_call(CALLER, OUR_NUMBER, "Customer")
    incoming = receiver.wait_for("/api/incoming", "IncomingCall")
    props = client.answer_call(
        incoming["data"]["incomingCallContext"],
        f"{receiver.url}{CALLBACKS}/c1?sig=abc",
        operation_context="inbound",
    )
    assert props.call_connection_id
    return props.call_connection_id, client.get_call_connection(props.call_connection_id)


def ringing_device(acs: AcsEmulator, device: str) -> dict[str, Any]:
    device = f"4:{device}" if device.startswith("+") else device
    wait_until(lambda: any(r["device"] == device for r in acs.ringing()), WAIT, f"{device} rings")
    return next(r for r in acs.ringing() if r["device"] == device)


SCRIPT = [
    "CallConnected",
    "ParticipantsUpdated",
    "AddParticipantSucceeded",
    "ParticipantsUpdated",
    "ParticipantsUpdated",
    "ParticipantsUpdated",
    "CallDisconnected",
]


def run_inbound_script(
    acs: AcsEmulator, client: CallAutomationClient, receiver: WebhookReceiver
) -> str:
    """Caller dials, app answers, agent rings and answers, hold, unhold, caller hangs up.
    Delivered one at a time, so the order the events were raised in is the order received."""
    acs.set_delivery(parallelism=1)
    call_id, connection = answer_inbound(acs, client, receiver)
    receiver.wait_for(CALLBACKS, "CallConnected")
    connection.add_participant(
        CommunicationUserIdentifier(AGENT), invitation_timeout=30, operation_context="agent"
    )
    ringing_device(acs, AGENT)
    acs.device_answer(AGENT)
    receiver.wait_for(CALLBACKS, "AddParticipantSucceeded")
    connection.hold(PhoneNumberIdentifier(CALLER), operation_context="hold")
    connection.unhold(PhoneNumberIdentifier(CALLER), operation_context="unhold")
    acs.hang_up(CALLER)
    receiver.wait_for(CALLBACKS, "CallDisconnected")
    wait_until(acs.idle, WAIT, "all events delivered")
    return call_id


# -- the scripted inbound call ------------------------------------------------------------------


def test_inbound_call_raises_the_documented_events_with_valid_jwts(
    acs_emulator: AcsEmulator,
    acs_client: CallAutomationClient,
    receiver: WebhookReceiver,
    jwks: jwt.PyJWKClient,
    acs_resource_id: str,
) -> None:
    call_id = run_inbound_script(acs_emulator, acs_client, receiver)

    incoming_request = receiver.requests_to("/api/incoming")[0]
    assert incoming_request.query == "code=key1"
    assert incoming_request.headers["aeg-event-type"] == "Notification"
    incoming = incoming_request.body[0]
    assert incoming["eventType"] == "Microsoft.Communication.IncomingCall"
    assert {"id", "topic", "subject", "eventTime", "dataVersion"} <= set(incoming)
    assert incoming["data"]["from"]["rawId"] == f"4:{CALLER}"
    assert incoming["data"]["to"]["phoneNumber"]["value"] == OUR_NUMBER
    assert incoming["data"]["serverCallId"] and incoming["data"]["correlationId"]

    assert receiver.types(CALLBACKS) == SCRIPT
    for request in receiver.requests_to(CALLBACKS):
        assert request.query == "sig=abc"
        assert assert_signed(request, jwks, acs_resource_id)["aud"] == acs_resource_id
        (event,) = request.body
        assert event["specversion"] == "1.0"
        assert event["source"] == f"calling/callConnections/{call_id}"
        assert event["data"]["callConnectionId"] == call_id
        assert event["data"]["serverCallId"] == incoming["data"]["serverCallId"]
        assert event["data"]["correlationId"] == incoming["data"]["correlationId"]
        assert {"operationContext", "resultInformation"} <= set(event["data"])
    events = receiver.events(CALLBACKS)
    assert events[2]["data"]["participant"]["rawId"] == AGENT
    assert events[2]["data"]["operationContext"] == "agent"
    updates = [e["data"] for e in events if _short(e) == "ParticipantsUpdated"]
    assert [u["sequenceNumber"] for u in updates] == [1, 2, 3, 4]
    holds = [{p["identifier"]["rawId"]: p["isOnHold"] for p in u["participants"]} for u in updates]
    assert holds == [
        {f"4:{CALLER}": False},
        {f"4:{CALLER}": False, AGENT: False},
        {f"4:{CALLER}": True, AGENT: False},
        {f"4:{CALLER}": False, AGENT: False},
    ]

    with pytest.raises(ResourceNotFoundError):
        acs_client.get_call_connection(call_id).get_call_properties()
    assert acs_emulator.call(call_id)["state"] == "disconnected"


@pytest.mark.parametrize("switch", ["duplicate", "reorder"])
def test_duplicate_and_reordered_delivery(
    switch: str,
    acs_emulator: AcsEmulator,
    acs_client: CallAutomationClient,
    receiver: WebhookReceiver,
    jwks: jwt.PyJWKClient,
    acs_resource_id: str,
) -> None:
    acs_emulator.set_delivery(**{switch: True})
    run_inbound_script(acs_emulator, acs_client, receiver)

    received = receiver.types(CALLBACKS)
    ids = [e["id"] for e in receiver.events(CALLBACKS)]
    if switch == "duplicate":
        assert received == [name for name in SCRIPT for _ in range(2)]
        assert all(ids.count(i) == 2 for i in ids)
    else:
        assert sorted(received) == sorted(SCRIPT)
        assert received != SCRIPT
        assert len(set(ids)) == len(ids)
    for request in receiver.requests_to(CALLBACKS):
        assert_signed(request, jwks, acs_resource_id)


# -- every SDK operation ------------------------------------------------------------------------


def test_events_are_delivered_concurrently_unless_told_one_at_a_time(
    acs_emulator: AcsEmulator, acs_client: CallAutomationClient, receiver: WebhookReceiver
) -> None:
    receiver.answer_after = 0.5  # a slow webhook: events raised together overlap, if allowed
    assert acs_emulator.delivery_settings()["parallelism"] > 1
    answer_inbound(acs_emulator, acs_client, receiver)  # CallConnected and a roster at once
    wait_until(acs_emulator.idle, WAIT, "all events delivered")
    assert receiver.max_in_flight >= 2

    acs_emulator.reset()
    receiver.received.clear()  # the next IncomingCall is the one to answer
    receiver.max_in_flight = 0
    acs_emulator.set_delivery(parallelism=1)
    answer_inbound(acs_emulator, acs_client, receiver)
    wait_until(acs_emulator.idle, WAIT, "all events delivered")
    assert receiver.max_in_flight == 1


def test_mid_call_operations(
    acs_emulator: AcsEmulator, acs_client: CallAutomationClient, receiver: WebhookReceiver
) -> None:
    acs_emulator.set_delivery(parallelism=1)  # the order of events is checked below
    call_id, connection = answer_inbound(acs_emulator, acs_client, receiver)
    caller = PhoneNumberIdentifier(CALLER)
    props = connection.get_call_properties()
    assert props.call_connection_state == "connected"
    assert props.callback_url.endswith("/c1?sig=abc")
    assert props.answered_for is not None and props.answered_for.raw_id == f"4:{OUR_NUMBER}"
    assert [p.identifier.raw_id for p in connection.list_participants()] == [f"4:{CALLER}"]
    assert connection.get_participant(caller).is_muted is False

    added = connection.add_participant(CommunicationUserIdentifier(AGENT))
    assert added.invitation_id == ringing_device(acs_emulator, AGENT)["invitationId"]
    acs_emulator.device_answer(AGENT)
    receiver.wait_for(CALLBACKS, "AddParticipantSucceeded")

    assert (
        connection.mute_participant(
            CommunicationUserIdentifier(AGENT), operation_context="m"
        ).operation_context
        == "m"
    )
    assert connection.get_participant(CommunicationUserIdentifier(AGENT)).is_muted is True
    connection.hold(caller)
    assert connection.get_participant(caller).is_on_hold is True
    connection.unhold(caller)
    assert connection.get_participant(caller).is_on_hold is False

    sent = connection.send_dtmf_tones(
        [DtmfTone.ONE, DtmfTone.POUND], caller, operation_context="dtmf"
    )
    assert sent.operation_context == "dtmf"
    assert (
        receiver.wait_for(CALLBACKS, "SendDtmfTonesCompleted")["data"]["operationContext"] == "dtmf"
    )
    assert acs_emulator.call(call_id)["sentTones"][0]["tones"] == ["one", "pound"]

    receiver.files["/hello.wav"] = _wav()
    connection.play_media(FileSource(receiver.url + "/hello.wav"), operation_context="greeting")
    assert receiver.wait_for(CALLBACKS, "PlayCompleted")["data"]["operationContext"] == "greeting"
    assert receiver.types(CALLBACKS).index("PlayStarted") < receiver.types(CALLBACKS).index(
        "PlayCompleted"
    )
    # A file ACS cannot download is a PlayFailed with its download code.
    connection.play_media(FileSource(receiver.url + "/missing.wav"), operation_context="gone")
    failed = receiver.wait_for(CALLBACKS, "PlayFailed")["data"]
    assert failed["operationContext"] == "gone"
    assert failed["resultInformation"]["subCode"] == 8536

    # Keys pressed with no recognize running go nowhere.
    assert acs_emulator.press(CALLER, "9")["recognized"] is False
    connection.start_recognizing_media(
        RecognizeInputType.DTMF, caller, dtmf_max_tones_to_collect=3, operation_context="menu"
    )
    acs_emulator.press(CALLER, "12")
    acs_emulator.press(CALLER, "3")
    recognized = receiver.wait_for(CALLBACKS, "RecognizeCompleted")["data"]
    assert recognized["dtmfResult"]["tones"] == ["one", "two", "three"]
    assert recognized["operationContext"] == "menu"

    removed = connection.remove_participant(
        CommunicationUserIdentifier(AGENT), operation_context="bye"
    )
    assert removed.operation_context == "bye"
    assert (
        receiver.wait_for(CALLBACKS, "RemoveParticipantSucceeded")["data"]["participant"]["rawId"]
        == AGENT
    )

    transfer = connection.transfer_call_to_participant(
        CommunicationUserIdentifier(AGENT_2), operation_context="xfer"
    )
    assert transfer.operation_context == "xfer"
    assert connection.get_call_properties().call_connection_state == "transferring"
    ringing_device(acs_emulator, AGENT_2)
    acs_emulator.device_answer(AGENT_2)
    accepted = receiver.wait_for(CALLBACKS, "CallTransferAccepted")["data"]
    assert accepted["transferTarget"]["rawId"] == AGENT_2
    assert accepted["transferee"]["rawId"] == f"4:{CALLER}"
    receiver.wait_for(CALLBACKS, "CallDisconnected")
    operations = [(r["operation"], r["status"]) for r in acs_emulator.requests_log()]
    for expected in [
        ("answer", 200),
        ("getCall", 200),
        ("listParticipants", 200),
        ("getParticipant", 200),
        ("add", 202),
        ("mute", 200),
        ("hold", 200),
        ("unhold", 200),
        ("sendDtmf", 202),
        ("play", 202),
        ("recognize", 202),
        ("remove", 202),
        ("transfer", 202),
    ]:
        assert expected in operations


def test_outbound_call_rings_and_hangs_up(
    acs_emulator: AcsEmulator, acs_client: CallAutomationClient, receiver: WebhookReceiver
) -> None:
    created = acs_client.create_call(
        PhoneNumberIdentifier(CALLER),
        f"{receiver.url}{CALLBACKS}/out",
        source_caller_id_number=PhoneNumberIdentifier(OUR_NUMBER),
        operation_context="dial",
    )
    assert created.call_connection_state == "connecting"
    assert created.targets[0].raw_id == f"4:{CALLER}"
    assert ringing_device(acs_emulator, CALLER)["kind"] == "create"
    acs_emulator.device_answer(CALLER)
    assert receiver.wait_for(CALLBACKS, "CallConnected")["data"]["operationContext"] == "dial"
    connection = acs_client.get_call_connection(created.call_connection_id)
    assert connection.get_call_properties().call_connection_state == "connected"
    connection.hang_up(is_for_everyone=False)
    receiver.wait_for(CALLBACKS, "CallDisconnected")

    second = acs_client.create_call(
        CommunicationUserIdentifier(AGENT), f"{receiver.url}{CALLBACKS}/out2"
    )
    acs_emulator.device_answer(AGENT)
    receiver.wait_for(CALLBACKS, "CallConnected", count=2)
    acs_client.get_call_connection(second.call_connection_id).hang_up(is_for_everyone=True)
    receiver.wait_for(CALLBACKS, "CallDisconnected", count=2)
    statuses = [(r["method"], r["operation"], r["status"]) for r in acs_emulator.requests_log()]
    assert ("POST", "create", 201) in statuses
    assert ("DELETE", "hangup", 204) in statuses
    assert ("POST", "terminate", 204) in statuses


def test_outbound_call_declined_and_pstn_without_caller_id(
    acs_emulator: AcsEmulator, acs_client: CallAutomationClient, receiver: WebhookReceiver
) -> None:
    acs_client.create_call(CommunicationUserIdentifier(AGENT), f"{receiver.url}{CALLBACKS}/x")
    acs_emulator.device_decline(AGENT)
    failed = receiver.wait_for(CALLBACKS, "CreateCallFailed")["data"]
    assert failed["resultInformation"]["code"] == 603

    with pytest.raises(HttpResponseError) as refused:
        acs_client.create_call(PhoneNumberIdentifier(CALLER), f"{receiver.url}{CALLBACKS}/y")
    assert refused.value.status_code == 400
    with pytest.raises(HttpResponseError) as not_ours:
        acs_client.create_call(
            PhoneNumberIdentifier(CALLER),
            f"{receiver.url}{CALLBACKS}/y",
            source_caller_id_number=PhoneNumberIdentifier("+15550000000"),
        )
    assert not_ours.value.status_code == 403


def test_add_participant_declined_timed_out_and_cancelled(
    acs_emulator: AcsEmulator, acs_client: CallAutomationClient, receiver: WebhookReceiver
) -> None:
    _, connection = answer_inbound(acs_emulator, acs_client, receiver)
    connection.add_participant(CommunicationUserIdentifier(AGENT), operation_context="a1")
    ringing_device(acs_emulator, AGENT)
    acs_emulator.device_decline(AGENT)
    declined = receiver.wait_for(CALLBACKS, "AddParticipantFailed")["data"]
    assert (declined["operationContext"], declined["resultInformation"]["code"]) == ("a1", 603)

    connection.add_participant(
        CommunicationUserIdentifier(AGENT), invitation_timeout=1, operation_context="a2"
    )
    timed_out = receiver.wait_for(CALLBACKS, "AddParticipantFailed", count=2)["data"]
    assert (timed_out["operationContext"], timed_out["resultInformation"]["code"]) == ("a2", 408)
    assert acs_emulator.ringing() == []

    added = connection.add_participant(CommunicationUserIdentifier(AGENT_2))
    cancelled = connection.cancel_add_participant_operation(added.invitation_id)
    assert cancelled.invitation_id == added.invitation_id
    receiver.wait_for(CALLBACKS, "CancelAddParticipantSucceeded")
    assert [p.identifier.raw_id for p in connection.list_participants()] == [f"4:{CALLER}"]


def test_reject_redirect_and_used_contexts(
    acs_emulator: AcsEmulator, acs_client: CallAutomationClient, receiver: WebhookReceiver
) -> None:
    acs_emulator.set_webhooks(incoming_call=f"{receiver.url}/api/incoming")
    acs_emulator.place_call(CALLER, OUR_NUMBER)
    context = receiver.wait_for("/api/incoming", "IncomingCall")["data"]["incomingCallContext"]
    acs_client.reject_call(context, call_reject_reason="busy")
    with pytest.raises(HttpResponseError) as used:
        acs_client.answer_call(context, f"{receiver.url}{CALLBACKS}/r")
    assert used.value.status_code == 400
    assert used.value.error is not None and used.value.error.code

    acs_emulator.place_call(CALLER, OUR_NUMBER)
    context = receiver.wait_for("/api/incoming", "IncomingCall", count=2)["data"][
        "incomingCallContext"
    ]
    acs_client.redirect_call(context, CommunicationUserIdentifier(AGENT))
    assert ringing_device(acs_emulator, AGENT)["kind"] == "redirect"

    # Redirected to another of our numbers, the call comes back as a new IncomingCall.
    acs_emulator.place_call(CALLER, OUR_NUMBER)
    context = receiver.wait_for("/api/incoming", "IncomingCall", count=3)["data"][
        "incomingCallContext"
    ]
    acs_client.redirect_call(context, PhoneNumberIdentifier("+358930000002"))
    again = receiver.wait_for("/api/incoming", "IncomingCall", count=4)["data"]
    assert again["to"]["phoneNumber"]["value"] == "+358930000002"

    with pytest.raises(HttpResponseError) as unknown:
        acs_client.answer_call("not-a-context", f"{receiver.url}{CALLBACKS}/r")
    assert unknown.value.status_code == 400

    # A caller who hangs up before the answer leaves a context that can no longer be used.
    acs_emulator.place_call(CALLER, OUR_NUMBER)
    context = receiver.wait_for("/api/incoming", "IncomingCall", count=5)["data"][
        "incomingCallContext"
    ]
    acs_emulator.hang_up(CALLER)
    with pytest.raises(HttpResponseError):
        acs_client.answer_call(context, f"{receiver.url}{CALLBACKS}/r")


def test_unknown_call_connection_is_404(acs_client: CallAutomationClient) -> None:
    connection = acs_client.get_call_connection(str(uuid.uuid4()))
    with pytest.raises(ResourceNotFoundError) as missing:
        connection.get_call_properties()
    assert missing.value.status_code == 404
    with pytest.raises(ResourceNotFoundError):
        connection.hang_up(is_for_everyone=True)


def test_recording_file_status_updated_points_at_a_wav(
    acs_emulator: AcsEmulator,
    acs_client: CallAutomationClient,
    receiver: WebhookReceiver,
    local_tls: LocalTLS,
    acs_access_key: str,
) -> None:
    acs_emulator.set_webhooks(recording=f"{receiver.url}/api/recordings?code=key2")
    call_id, _ = answer_inbound(acs_emulator, acs_client, receiver)
    started = acs_client.start_recording(
        call_connection_id=call_id,
        recording_content_type="audio",
        recording_channel_type="mixed",
        recording_format_type="wav",
    )
    assert started.recording_state == "active"
    assert receiver.wait_for(CALLBACKS, "RecordingStateChanged")["data"]["state"] == "active"
    acs_client.pause_recording(started.recording_id)
    assert acs_client.get_recording_properties(started.recording_id).recording_state == ("inactive")
    acs_client.resume_recording(started.recording_id)
    assert (
        receiver.wait_for(CALLBACKS, "RecordingStateChanged", count=3)["data"]["state"] == "active"
    )

    acs_emulator.hang_up(CALLER)
    receiver.wait_for("/api/recordings", "RecordingFileStatusUpdated")
    (updated_request,) = receiver.requests_to("/api/recordings")
    assert updated_request.query == "code=key2"
    assert updated_request.headers["aeg-event-type"] == "Notification"
    data = updated_request.body[0]["data"]
    assert data["recordingFormatType"] == "Wav" and data["sessionEndReason"] == "CallEnded"
    chunk = data["recordingStorageInfo"]["recordingChunks"][0]

    assert (
        requests.get(chunk["contentLocation"], verify=local_tls.ca_path, timeout=5).status_code
        == 401
    )
    content = requests.get(
        chunk["contentLocation"],
        verify=local_tls.ca_path,
        timeout=5,
        headers=sign_request(access_key=acs_access_key, method="GET", url=chunk["contentLocation"]),
    )
    assert content.status_code == 200 and content.headers["Content-Type"] == "audio/wav"
    with wave.open(io.BytesIO(content.content)) as audio:
        assert audio.getnchannels() == 1 and audio.getnframes() > 0
    metadata = requests.get(
        chunk["metadataLocation"],
        verify=local_tls.ca_path,
        timeout=5,
        headers=sign_request(
            access_key=acs_access_key, method="GET", url=chunk["metadataLocation"]
        ),
    )
    assert metadata.json()["chunkDocumentId"] == chunk["documentId"]
    deleted = requests.delete(
        chunk["deleteLocation"],
        verify=local_tls.ca_path,
        timeout=5,
        headers=sign_request(
            access_key=acs_access_key, method="DELETE", url=chunk["deleteLocation"]
        ),
    )
    assert deleted.status_code == 200
    assert (
        requests.get(
            chunk["contentLocation"],
            verify=local_tls.ca_path,
            timeout=5,
            headers=sign_request(
                access_key=acs_access_key, method="GET", url=chunk["contentLocation"]
            ),
        ).status_code
        == 404
    )


def test_stop_recording_delivers_the_file_event(
    acs_emulator: AcsEmulator, acs_client: CallAutomationClient, receiver: WebhookReceiver
) -> None:
    acs_emulator.set_webhooks(recording=f"{receiver.url}/api/recordings")
    call_id, _ = answer_inbound(acs_emulator, acs_client, receiver)
    server_call_id = acs_emulator.call(call_id)["serverCallId"]
    started = acs_client.start_recording(server_call_id=server_call_id)
    with pytest.raises(HttpResponseError):
        acs_client.start_recording(call_connection_id=call_id)  # already recording
    acs_client.stop_recording(started.recording_id)
    assert (
        receiver.wait_for(CALLBACKS, "RecordingStateChanged", count=2)["data"]["state"]
        == "inactive"
    )
    updated = receiver.wait_for("/api/recordings", "RecordingFileStatusUpdated")["data"]
    assert updated["sessionEndReason"] == "RecordingStopped"
    with pytest.raises(ResourceNotFoundError):
        acs_client.stop_recording(started.recording_id)


# -- authentication, retries, repeatability, faults, control API --------------------------------


def test_wrong_access_key_is_refused(acs_emulator: AcsEmulator, local_tls: LocalTLS) -> None:
    wrong = CallAutomationClient.from_connection_string(
        f"endpoint={acs_emulator.url};accesskey=d3Jvbmcta2V5LXdyb25nLWtleQ==",
        connection_verify=str(local_tls.ca_path),
    )
    with pytest.raises(ClientAuthenticationError) as denied:
        wrong.get_call_connection("any").get_call_properties()
    assert denied.value.status_code == 401

    unsigned = requests.post(
        f"{acs_emulator.url}/calling/callConnections?api-version=2026-03-12",
        json={},
        verify=local_tls.ca_path,
        timeout=5,
    )
    assert unsigned.status_code == 401
    assert set(unsigned.json()["error"]) == {"code", "message"}
    assert [r["status"] for r in acs_emulator.requests_log()] == [401, 401]


def test_tampered_body_and_missing_api_version(
    acs_emulator: AcsEmulator, local_tls: LocalTLS, acs_access_key: str
) -> None:
    url = f"{acs_emulator.url}/calling/callConnections?api-version=2026-03-12"
    headers = sign_request(access_key=acs_access_key, method="POST", url=url, body=b"{}")
    tampered = requests.post(
        url, data=b'{"targets":[]}', headers=headers, verify=local_tls.ca_path, timeout=5
    )
    assert tampered.status_code == 401
    assert "x-ms-content-sha256" in tampered.json()["error"]["message"]

    bare = f"{acs_emulator.url}/calling/callConnections"
    no_version = requests.post(
        bare,
        data=b"{}",
        verify=local_tls.ca_path,
        timeout=5,
        headers=sign_request(access_key=acs_access_key, method="POST", url=bare, body=b"{}"),
    )
    assert no_version.status_code == 400


def test_event_grid_retries_after_a_500(
    acs_emulator: AcsEmulator, receiver: WebhookReceiver
) -> None:
    acs_emulator.set_webhooks(incoming_call=f"{receiver.url}/api/incoming")
    receiver.fail_next = 1
    acs_emulator.place_call(CALLER, OUR_NUMBER)
    receiver.wait_for("/api/incoming", "IncomingCall")
    attempts = receiver.requests_to("/api/incoming", ok_only=False)
    assert [(r.status, r.headers["aeg-delivery-count"]) for r in attempts] == [
        (500, "0"),
        (200, "1"),
    ]
    assert attempts[0].body == attempts[1].body
    (logged,) = acs_emulator.deliveries()
    assert (logged["attempts"], logged["delivered"]) == ([500, 200], True)


def test_repeated_request_id_is_not_executed_twice(
    acs_emulator: AcsEmulator, acs_client: CallAutomationClient, receiver: WebhookReceiver
) -> None:
    headers = {"Repeatability-Request-ID": str(uuid.uuid4())}
    first = acs_client.create_call(
        CommunicationUserIdentifier(AGENT), f"{receiver.url}{CALLBACKS}/rep", headers=dict(headers)
    )
    second = acs_client.create_call(
        CommunicationUserIdentifier(AGENT), f"{receiver.url}{CALLBACKS}/rep", headers=dict(headers)
    )
    assert first.call_connection_id == second.call_connection_id
    assert len(acs_emulator.state()["calls"]) == 1
    assert [r["repeated"] for r in acs_emulator.requests_log()] == [False, True]


def test_injected_faults(
    acs_emulator: AcsEmulator, acs_client: CallAutomationClient, receiver: WebhookReceiver
) -> None:
    _, connection = answer_inbound(acs_emulator, acs_client, receiver)
    acs_emulator.add_fault("hold", mode="event")
    connection.hold(PhoneNumberIdentifier(CALLER), operation_context="h")
    assert receiver.wait_for(CALLBACKS, "HoldFailed")["data"]["operationContext"] == "h"
    assert connection.get_participant(PhoneNumberIdentifier(CALLER)).is_on_hold is False
    acs_emulator.add_fault("getCall", status=400)
    with pytest.raises(HttpResponseError) as failed:
        connection.get_call_properties()
    assert failed.value.status_code == 400
    assert connection.get_call_properties().call_connection_state == "connected"


def test_recognize_times_out_without_keys(
    acs_emulator: AcsEmulator, acs_client: CallAutomationClient, receiver: WebhookReceiver
) -> None:
    _, connection = answer_inbound(acs_emulator, acs_client, receiver)
    connection.start_recognizing_media(
        RecognizeInputType.DTMF,
        PhoneNumberIdentifier(CALLER),
        initial_silence_timeout=1,
        dtmf_stop_tones=["pound"],
    )
    failed = receiver.wait_for(CALLBACKS, "RecognizeFailed")["data"]
    assert failed["resultInformation"]["subCode"] == 8510
    connection.start_recognizing_media(
        RecognizeInputType.DTMF,
        PhoneNumberIdentifier(CALLER),
        dtmf_max_tones_to_collect=5,
        dtmf_stop_tones=["pound"],
    )
    acs_emulator.press(CALLER, "42#")
    done = receiver.wait_for(CALLBACKS, "RecognizeCompleted")["data"]
    assert done["dtmfResult"]["tones"] == ["four", "two"]


def test_control_api_over_http(
    acs_emulator: AcsEmulator, receiver: WebhookReceiver, local_tls: LocalTLS
) -> None:
    control = f"{acs_emulator.url}/_control"

    def post(path: str, body: dict[str, Any]) -> requests.Response:
        return requests.post(control + path, json=body, verify=local_tls.ca_path, timeout=10)

    assert post("/config", {"incomingCallWebhook": f"{receiver.url}/api/incoming"}).ok
    assert post("/eventgrid/validate", {"subscription": "incomingCall"}).json()["validated"]
    placed = post("/incoming-calls", {"from": CALLER, "to": OUR_NUMBER}).json()
    assert placed["state"] == "ringing" and placed["incomingCallContext"]
    assert post("/incoming-calls", {"from": CALLER, "to": "+15550000000"}).status_code == 400
    assert post("/devices/answer", {"device": AGENT}).status_code == 404
    assert post("/delivery", {"duplicate": True}).json()["duplicate"] is True
    assert post("/faults", {"operation": "play", "mode": "event"}).ok
    state = requests.get(control + "/state", verify=local_tls.ca_path, timeout=5).json()
    assert state["incomingCalls"][0]["from"] == f"4:{CALLER}"
    assert state["faults"] == [
        {"operation": "play", "mode": "event", "status": 500, "remaining": 1}
    ]
    assert post("/reset", {}).ok
    state = requests.get(control + "/state", verify=local_tls.ca_path, timeout=5).json()
    assert state["incomingCalls"] == [] and state["faults"] == []
    assert state["config"]["incomingCallWebhook"] is None
