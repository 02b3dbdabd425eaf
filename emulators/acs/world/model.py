"""The state of the simulated world (calls, ringing devices, recognizes, recordings, faults)
and the constants the service uses in its events."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from emulators.acs.delivery import now_iso

DEFAULT_RING_TIMEOUT_SECONDS = 60.0
DEFAULT_INITIAL_SILENCE_SECONDS = 5.0
DEFAULT_INTER_TONE_SECONDS = 2.0
RECORDING_KIND = "azureCommunicationServices"

DTMF_NAMES = {
    "0": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
    "*": "asterisk",
    "#": "pound",
    "A": "a",
    "B": "b",
    "C": "c",
    "D": "d",
}
TONE_NAMES = frozenset(DTMF_NAMES.values())

# resultInformation values. The codes/subcodes the SDK documents are used where known; the
# others follow the same shape (code = SIP-like status, subCode = reason).
OK = (200, 0, "Action completed successfully.")
CALL_CONNECTED = (200, 0, "Call connected.")
ADD_OK = (200, 0, "Add participant completed.")
REMOVE_OK = (200, 0, "Remove participant completed.")
TRANSFER_OK = (202, 0, "The transfer operation completed successfully.")
DECLINED = (603, 0, "Call declined by the remote participant.")
NO_ANSWER = (408, 10004, "Call timed out, the participant did not answer.")
CANCELLED = (487, 0, "Invitation cancelled.")
MAX_DIGITS = (200, 8531, "Action completed, max digits received.")
STOP_TONE = (200, 8514, "Action completed, stop tone detected.")
INTER_TONE = (200, 8532, "Action completed, inter-digit silence timeout reached.")
INITIAL_SILENCE = (400, 8510, "Action failed, initial silence timeout reached.")
PLAY_CANCELLED = (400, 8508, "Action failed, the operation was cancelled.")
INJECTED = (500, 8500, "Action failed (fault injected by the emulator).")

# Operations the fault switch knows; "event" faults make the async outcome a failure event.
EVENT_FAULTS = {
    "create": "CreateCallFailed",
    "answer": "AnswerFailed",
    "add": "AddParticipantFailed",
    "remove": "RemoveParticipantFailed",
    "transfer": "CallTransferFailed",
    "play": "PlayFailed",
    "recognize": "RecognizeFailed",
    "sendDtmf": "SendDtmfTonesFailed",
    "hold": "HoldFailed",
}


@dataclass
class Participant:
    identifier: dict[str, Any]
    is_muted: bool = False
    is_on_hold: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "identifier": self.identifier,
            "isMuted": self.is_muted,
            "isOnHold": self.is_on_hold,
        }


@dataclass
class Invitation:
    """A device that rings: kind add | create | transfer | redirect."""

    invitation_id: str
    kind: str
    target: dict[str, Any]
    call_connection_id: str | None
    operation_context: str | None
    callback_uri: str | None
    timeout_seconds: float
    created_at: str
    transferee: dict[str, Any] | None = None
    timer: threading.Timer | None = None
    # customCallingContext.voipHeaders of the add: what an ACS user's Calling SDK receives.
    voip_headers: dict[str, str] = field(default_factory=dict)
    caller_id: str | None = None  # sourceCallerIdNumber of an add (a phone shows it)

    @property
    def raw_id(self) -> str:
        return str(self.target["rawId"])

    def to_json(self) -> dict[str, Any]:
        return {
            "invitationId": self.invitation_id,
            "kind": self.kind,
            "device": self.raw_id,
            "callConnectionId": self.call_connection_id,
            "operationContext": self.operation_context,
            "timeoutSeconds": self.timeout_seconds,
            "ringingSince": self.created_at,
            "callerId": self.caller_id,
        }


@dataclass
class Recognize:
    target_raw: str
    operation_context: str | None
    callback_uri: str | None
    max_tones: int
    stop_tones: frozenset[str]
    inter_tone_seconds: float
    tones: list[str] = field(default_factory=list)
    timer: threading.Timer | None = None
    prompts: list[Any] = field(default_factory=list)  # the play sources asked for (playPrompts)


@dataclass
class Call:
    call_connection_id: str
    server_call_id: str
    correlation_id: str
    direction: str
    state: str
    callback_uri: str
    operation_context: str | None
    source: dict[str, Any] | None
    targets: list[dict[str, Any]]
    customer_raw: str
    source_caller_id_number: dict[str, Any] | None = None
    source_display_name: str | None = None
    answered_by: dict[str, Any] | None = None
    answered_for: dict[str, Any] | None = None
    participants: dict[str, Participant] = field(default_factory=dict)
    sequence: int = 0
    recognize: Recognize | None = None
    looping_plays: list[tuple[str | None, str | None]] = field(default_factory=list)
    sent_tones: list[dict[str, Any]] = field(default_factory=list)
    pressed_tones: list[dict[str, Any]] = field(default_factory=list)
    plays: list[dict[str, Any]] = field(default_factory=list)
    recording_ids: list[str] = field(default_factory=list)
    created_at: str = field(default_factory=now_iso)
    connected_at: str | None = None
    ended_at: str | None = None
    end_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.state != "disconnected"


@dataclass
class IncomingCall:
    context: str
    server_call_id: str
    correlation_id: str
    from_raw: str
    to_raw: str
    display_name: str
    state: str = "ringing"
    call_connection_id: str | None = None
    created_at: str = field(default_factory=now_iso)

    def to_json(self) -> dict[str, Any]:
        return {
            "incomingCallContext": self.context,
            "serverCallId": self.server_call_id,
            "correlationId": self.correlation_id,
            "from": self.from_raw,
            "to": self.to_raw,
            "callerDisplayName": self.display_name,
            "state": self.state,
            "callConnectionId": self.call_connection_id,
            "createdAt": self.created_at,
        }


@dataclass
class Recording:
    recording_id: str
    call_connection_id: str
    server_call_id: str
    correlation_id: str
    state: str
    content_type: str
    channel_type: str
    format_type: str
    callback_uri: str | None
    started_at: datetime
    external_storage: dict[str, Any] | None = None
    document_id: str | None = None
    stopped_at: datetime | None = None
    content_deleted: bool = False
    participants: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.stopped_at is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "recordingId": self.recording_id,
            "callConnectionId": self.call_connection_id,
            "serverCallId": self.server_call_id,
            "state": self.state,
            "finished": self.finished,
            "contentType": self.content_type,
            "channelType": self.channel_type,
            "formatType": self.format_type,
            "startedAt": self.started_at.isoformat().replace("+00:00", "Z"),
            "stoppedAt": (
                self.stopped_at.isoformat().replace("+00:00", "Z") if self.stopped_at else None
            ),
            "documentId": self.document_id,
            "contentDeleted": self.content_deleted,
        }


@dataclass
class Fault:
    operation: str
    mode: str
    status: int
    remaining: int

    def to_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "mode": self.mode,
            "status": self.status,
            "remaining": self.remaining,
        }


@dataclass(frozen=True)
class WorldConfig:
    """What `reset()` goes back to: the configuration the emulator was started with."""

    acs_numbers: tuple[str, ...]
    incoming_call_webhook: str | None
    recording_webhook: str | None
    ring_timeout_seconds: float = DEFAULT_RING_TIMEOUT_SECONDS
    allow_http_callbacks: bool = True
    recording_content_requires_auth: bool = True
