"""Reading ACS payloads: malformed bodies are refused with the field that is wrong."""

from __future__ import annotations

import json

import pytest

from shared.adapters import acs_events
from shared.errors import InvalidInput

pytestmark = pytest.mark.unit


def incoming(**data: object) -> bytes:
    base = {
        "to": {"rawId": "4:+358101000100", "phoneNumber": {"value": "+358101000100"}},
        "from": {"rawId": "4:+358401234567", "phoneNumber": {"value": "+358401234567"}},
        "serverCallId": "srv-1",
        "incomingCallContext": "ctx",
        **data,
    }
    return json.dumps(
        [
            {
                "id": "e1",
                "eventType": acs_events.INCOMING_CALL,
                "eventTime": "2026-11-25T09:00:00Z",
                "data": base,
            }
        ]
    ).encode()


def test_an_incoming_call_is_read() -> None:
    [event] = acs_events.event_grid_events(incoming())
    call = acs_events.incoming_call(event)
    assert (call.from_raw, call.to_raw, call.server_call_id) == (
        "4:+358401234567",
        "4:+358101000100",
        "srv-1",
    )
    assert call.at.isoformat() == "2026-11-25T09:00:00+00:00"


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b"[1]", b'{"id": "x"}'])
def test_malformed_deliveries_are_invalid_input(body: bytes) -> None:
    with pytest.raises(InvalidInput):
        acs_events.event_grid_events(body)


def test_an_incoming_call_without_its_context_names_the_field() -> None:
    [event] = acs_events.event_grid_events(incoming(incomingCallContext=None))
    with pytest.raises(InvalidInput) as caught:
        acs_events.incoming_call(event)
    assert caught.value.errors[0].field == "data.incomingCallContext"


def test_the_validation_handshake_code_is_found() -> None:
    body = json.dumps(
        [{"id": "v", "eventType": acs_events.VALIDATION, "data": {"validationCode": "abc"}}]
    ).encode()
    assert acs_events.validation_code(acs_events.event_grid_events(body)) == "abc"


def test_mid_call_events_keep_context_participants_and_sequence() -> None:
    body = json.dumps(
        [
            {
                "id": "c1",
                "type": "Microsoft.Communication.ParticipantsUpdated",
                "time": "2026-11-25T09:00:05Z",
                "source": "calling/callConnections/x",
                "data": {
                    "callConnectionId": "x",
                    "serverCallId": "srv",
                    "sequenceNumber": 3,
                    "participants": [{"identifier": {"rawId": "8:acs:a"}, "isMuted": False}],
                    "operationContext": "offer:1",
                },
            }
        ]
    ).encode()
    [event] = acs_events.call_events(body)
    assert (event.type, event.participants, event.sequence, event.server_call_id) == (
        "ParticipantsUpdated",
        ("8:acs:a",),
        3,
        "srv",
    )


def test_a_mid_call_event_without_time_is_refused() -> None:
    body = json.dumps(
        [{"id": "c1", "type": "Microsoft.Communication.CallConnected", "data": {}}]
    ).encode()
    with pytest.raises(InvalidInput):
        acs_events.call_events(body)


def test_a_recording_event_keeps_a_server_call_id_with_slashes() -> None:
    server = "aHR0cHM6Ly9hY3M/aT0x/ZT1lbQ=="
    body = json.dumps(
        [
            {
                "id": "r1",
                "eventType": acs_events.RECORDING_READY,
                "eventTime": "2026-11-25T09:01:00Z",
                "subject": f"/recording/call/c1/serverCallId/{server}/recordingId/rec-9",
                "data": {
                    "recordingStorageInfo": {
                        "recordingChunks": [
                            {"documentId": "d1", "contentLocation": "https://x/content"}
                        ]
                    },
                    "recordingDurationMs": 61000,
                },
            }
        ]
    ).encode()
    [event] = acs_events.event_grid_events(body)
    ready = acs_events.recording_ready(event)
    assert (ready.server_call_id, ready.recording_id) == (server, "rec-9")


@pytest.mark.parametrize(
    "data",
    [
        {"participants": [{"identifier": {"phoneNumber": "+358401234567"}}]},
        {"resultInformation": "failed"},
        {"dtmfResult": ["one"]},
        {"operationContext": {"offer": 1}},
        {"participants": "everyone"},
    ],
)
def test_odd_shapes_inside_a_mid_call_event_never_crash(data: dict) -> None:
    body = json.dumps(
        [
            {
                "id": "c1",
                "type": "Microsoft.Communication.ParticipantsUpdated",
                "time": "2026-11-25T09:00:05Z",
                "data": data,
            }
        ]
    ).encode()
    try:
        [event] = acs_events.call_events(body)
    except InvalidInput:
        return  # refused with a 400: fine
    assert event.operation_context is None or isinstance(event.operation_context, str)


def test_an_event_id_that_is_not_a_string_is_refused() -> None:
    body = json.dumps(
        [
            {
                "id": {"x": 1},
                "type": "Microsoft.Communication.CallConnected",
                "time": "2026-11-25T09:00:05Z",
                "data": {},
            }
        ]
    ).encode()
    with pytest.raises(InvalidInput):
        acs_events.call_events(body)
