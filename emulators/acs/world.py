"""The simulated telephony world behind the ACS emulator: calls, ringing devices, media actions,
recordings, and the events each change raises (mid-call CloudEvents and Event Grid events)."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from emulators.acs.delivery import Deliverer, Outgoing, now_iso
from emulators.acs.media import tone_wav

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


class AcsError(Exception):
    """A refusal rendered as `{"error": {"code", "message"}}` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# -- identifiers --------------------------------------------------------------------------------


def normalise_raw_id(value: str) -> str:
    """`+358...` becomes `4:+358...`; raw ids (`4:`, `8:acs:`, ...) stay as they are."""
    value = value.strip()
    return f"4:{value}" if value.startswith("+") else value


def identifier(raw_or_number: str) -> dict[str, Any]:
    """The wire model of an identifier, with `kind` as the service returns it."""
    raw = normalise_raw_id(raw_or_number)
    if raw.startswith("4:"):
        return {"kind": "phoneNumber", "rawId": raw, "phoneNumber": {"value": raw[2:]}}
    if raw.startswith("8:acs:") or raw.startswith("8:spool:"):
        return {"kind": "communicationUser", "rawId": raw, "communicationUser": {"id": raw}}
    return {"kind": "unknown", "rawId": raw}


def raw_id_of(model: Any) -> str:
    if not isinstance(model, dict):
        raise AcsError(400, "BadRequest", "An identifier must be an object.")
    if model.get("rawId"):
        return normalise_raw_id(str(model["rawId"]))
    if isinstance(model.get("phoneNumber"), dict) and model["phoneNumber"].get("value"):
        return f"4:{model['phoneNumber']['value']}"
    if isinstance(model.get("communicationUser"), dict) and model["communicationUser"].get("id"):
        return str(model["communicationUser"]["id"])
    raise AcsError(400, "BadRequest", "The identifier has neither rawId nor a known kind.")


def is_phone(raw: str) -> bool:
    return raw.startswith("4:")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# -- state --------------------------------------------------------------------------------------


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


class World:
    """All state, behind one lock. Events are queued while the lock is held, so their order is
    the order in which the changes happened."""

    def __init__(
        self,
        *,
        base_url: str,
        resource_id: str,
        config: WorldConfig,
        deliverer: Deliverer,
        topic: str,
    ) -> None:
        self.base_url = base_url
        self.resource_id = resource_id
        self.topic = topic
        self.app_identity = f"8:acs:{resource_id}_{uuid.uuid4()}"
        self._initial = config
        self._deliverer = deliverer
        self._lock = threading.RLock()
        self._timers: set[threading.Timer] = set()
        self._wav = tone_wav(1.0)
        self._clear(config)

    def _clear(self, config: WorldConfig) -> None:
        self.config = config
        self.calls: dict[str, Call] = {}
        self.incoming: dict[str, IncomingCall] = {}
        self.invitations: dict[str, Invitation] = {}
        self.recordings: dict[str, Recording] = {}
        self.documents: dict[str, Recording] = {}
        self.faults: list[Fault] = []

    # -- lifecycle & configuration ---------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._cancel_timers()
            self._clear(self._initial)

    def stop(self) -> None:
        with self._lock:
            self._cancel_timers()

    def configure(self, **changes: Any) -> WorldConfig:
        with self._lock:
            if "acs_numbers" in changes:
                changes["acs_numbers"] = tuple(str(n) for n in changes["acs_numbers"])
            self.config = WorldConfig(**{**self.config.__dict__, **changes})
            return self.config

    def add_fault(
        self, operation: str, mode: str = "http", status: int = 500, count: int = 1
    ) -> Fault:
        if mode not in ("http", "event"):
            raise AcsError(400, "BadRequest", "mode must be 'http' or 'event'.")
        if mode == "event" and operation not in EVENT_FAULTS:
            raise AcsError(
                400,
                "BadRequest",
                f"'{operation}' has no failure event; known: {sorted(EVENT_FAULTS)}",
            )
        fault = Fault(operation, mode, int(status), int(count))
        with self._lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, operation: str, mode: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.operation == operation and fault.mode == mode and fault.remaining > 0:
                    fault.remaining -= 1
                    return fault
        return None

    # -- timers -----------------------------------------------------------------------------------

    def _timer(self, seconds: float, fn: Callable[..., None], *args: Any) -> threading.Timer:
        holder: list[threading.Timer] = []

        def fire() -> None:
            with self._lock:
                if holder[0] not in self._timers:
                    return  # cancelled while waiting for the lock
                self._timers.discard(holder[0])
                fn(*args)

        timer = threading.Timer(seconds, fire)
        timer.daemon = True
        holder.append(timer)
        self._timers.add(timer)
        timer.start()
        return timer

    def _cancel(self, timer: threading.Timer | None) -> None:
        if timer is not None:
            timer.cancel()
            self._timers.discard(timer)

    def _cancel_timers(self) -> None:
        for timer in list(self._timers):
            timer.cancel()
        self._timers.clear()

    # -- events -----------------------------------------------------------------------------------

    def _emit(
        self,
        call: Call,
        name: str,
        extra: dict[str, Any] | None = None,
        *,
        operation_context: str | None = None,
        callback_uri: str | None = None,
        result: tuple[int, int, str] | None = OK,
    ) -> None:
        data: dict[str, Any] = {
            "callConnectionId": call.call_connection_id,
            "serverCallId": call.server_call_id,
            "correlationId": call.correlation_id,
            "operationContext": operation_context,
        }
        if result is not None:
            data["resultInformation"] = {
                "code": result[0],
                "subCode": result[1],
                "message": result[2],
            }
        data.update(extra or {})
        source = f"calling/callConnections/{call.call_connection_id}"
        event_id = str(uuid.uuid4())
        event_type = f"Microsoft.Communication.{name}"
        event: dict[str, Any] = {
            "id": event_id,
            "source": source,
            "type": event_type,
            "data": data,
            "time": now_iso(),
            "specversion": "1.0",
            "datacontenttype": "application/json",
            "subject": source,
        }
        self._deliverer.enqueue(
            Outgoing(
                kind="callback",
                event_type=event_type,
                event_id=event_id,
                url=callback_uri or call.callback_uri,
                body=[event],
                call_connection_id=call.call_connection_id,
            )
        )

    def _emit_grid(
        self,
        event_type: str,
        subject: str,
        data: dict[str, Any],
        url: str | None,
        subscription: str,
    ) -> str:
        event_id = str(uuid.uuid4())
        event = {
            "id": event_id,
            "topic": self.topic,
            "subject": subject,
            "data": data,
            "eventType": event_type,
            "dataVersion": "1.0",
            "metadataVersion": "1",
            "eventTime": now_iso(),
        }
        self._deliverer.enqueue(
            Outgoing(
                kind="eventgrid",
                event_type=event_type,
                event_id=event_id,
                url=url,
                body=[event],
                subscription=subscription,
            )
        )
        return event_id

    def _participants_updated(self, call: Call) -> None:
        call.sequence += 1
        self._emit(
            call,
            "ParticipantsUpdated",
            {
                "sequenceNumber": call.sequence,
                "participants": [p.to_json() for p in call.participants.values()],
            },
            operation_context=call.operation_context,
        )

    # -- lookups & validation ---------------------------------------------------------------------

    def _call(self, call_connection_id: str) -> Call:
        call = self.calls.get(call_connection_id)
        if call is None or not call.active:
            raise AcsError(404, "8522", f"Call connection '{call_connection_id}' not found.")
        return call

    def _connected(self, call_connection_id: str) -> Call:
        call = self._call(call_connection_id)
        if call.state != "connected":
            raise AcsError(
                400, "8501", "Action is not valid when call is not in Established state."
            )
        return call

    def _participant(self, call: Call, model: Any) -> Participant:
        raw = raw_id_of(model)
        participant = call.participants.get(raw)
        if participant is None:
            raise AcsError(404, "8523", f"Participant '{raw}' is not in the call.")
        return participant

    def _callback(self, value: Any, field_name: str = "CallbackUri") -> str:
        parts = urlsplit(str(value or ""))
        allowed = ("https", "http") if self.config.allow_http_callbacks else ("https",)
        if parts.scheme not in allowed or not parts.netloc:
            raise AcsError(400, "BadRequest", f"The field {field_name} is invalid.")
        return str(value)

    def _optional_callback(self, body: dict[str, Any]) -> str | None:
        value = body.get("operationCallbackUri")
        return self._callback(value, "OperationCallbackUri") if value else None

    def _check_caller_id(self, body: dict[str, Any], target_raw: str, required: bool) -> None:
        number = (body.get("sourceCallerIdNumber") or {}).get("value")
        if number is None:
            if required and is_phone(target_raw):
                raise AcsError(
                    400,
                    "BadRequest",
                    "SourceCallerIdNumber is required to call a PSTN participant.",
                )
            return
        if number not in self.config.acs_numbers:
            raise AcsError(
                403, "Forbidden", f"Source caller id '{number}' is not a number of this resource."
            )

    def _new_ids(self) -> tuple[str, str, str]:
        conv = uuid.uuid4()
        server_call_id = _b64(f"https://acs-emulator.local/conv/{conv}?i=10&e=emulator")
        return str(uuid.uuid4()), server_call_id, str(uuid.uuid4())

    def properties(self, call: Call, state: str | None = None) -> dict[str, Any]:
        body = {
            "callConnectionId": call.call_connection_id,
            "serverCallId": call.server_call_id,
            "targets": call.targets,
            "callConnectionState": state or call.state,
            "callbackUri": call.callback_uri,
            "sourceCallerIdNumber": call.source_caller_id_number,
            "sourceDisplayName": call.source_display_name,
            "source": call.source,
            "correlationId": call.correlation_id,
            "answeredBy": call.answered_by,
            "answeredFor": call.answered_for,
        }
        return {k: v for k, v in body.items() if v is not None}

    # -- ringing devices --------------------------------------------------------------------------

    def _ring(
        self,
        *,
        kind: str,
        target: dict[str, Any],
        call: Call | None,
        operation_context: str | None,
        callback_uri: str | None,
        timeout: float,
        transferee: dict[str, Any] | None = None,
    ) -> Invitation:
        invitation = Invitation(
            invitation_id=str(uuid.uuid4()),
            kind=kind,
            target=identifier(raw_id_of(target)),
            call_connection_id=call.call_connection_id if call else None,
            operation_context=operation_context,
            callback_uri=callback_uri,
            timeout_seconds=timeout,
            created_at=now_iso(),
            transferee=transferee,
        )
        invitation.timer = self._timer(timeout, self._ring_timed_out, invitation.invitation_id)
        self.invitations[invitation.invitation_id] = invitation
        return invitation

    def _ring_timed_out(self, invitation_id: str) -> None:
        invitation = self.invitations.get(invitation_id)
        if invitation is not None:
            self._invitation_failed(invitation, NO_ANSWER)

    def _find_invitation(self, device: str, call_connection_id: str | None) -> Invitation:
        raw = normalise_raw_id(device)
        for invitation in self.invitations.values():
            if invitation.raw_id == raw and call_connection_id in (
                None,
                invitation.call_connection_id,
            ):
                return invitation
        raise AcsError(404, "NotRinging", f"No device '{raw}' is ringing.")

    def _drop_invitation(self, invitation: Invitation) -> None:
        self._cancel(invitation.timer)
        self.invitations.pop(invitation.invitation_id, None)

    def _invitation_answered(self, invitation: Invitation) -> None:
        self._drop_invitation(invitation)
        call = self.calls.get(invitation.call_connection_id or "")
        if call is None or not call.active:
            return
        ctx, cb = invitation.operation_context, invitation.callback_uri
        if invitation.kind == "add":
            call.participants[invitation.raw_id] = Participant(invitation.target)
            self._emit(
                call,
                "AddParticipantSucceeded",
                {"participant": invitation.target},
                operation_context=ctx,
                callback_uri=cb,
                result=ADD_OK,
            )
            self._participants_updated(call)
        elif invitation.kind == "create":
            for other in [
                i
                for i in self.invitations.values()
                if i.call_connection_id == call.call_connection_id
            ]:
                self._drop_invitation(other)  # sim-ring: the first to answer takes the call
            call.state, call.connected_at = "connected", now_iso()
            call.customer_raw = invitation.raw_id
            call.participants = {invitation.raw_id: Participant(invitation.target)}
            self._emit(
                call,
                "CallConnected",
                operation_context=call.operation_context,
                result=CALL_CONNECTED,
            )
            self._participants_updated(call)
        elif invitation.kind == "transfer":
            transferee = invitation.transferee or {}
            self._emit(
                call,
                "CallTransferAccepted",
                {
                    "transferTarget": invitation.target,
                    "transferee": transferee,
                },
                operation_context=ctx,
                callback_uri=cb,
                result=TRANSFER_OK,
            )
            if len(call.participants) <= 1:
                # A 1:1 transfer hands the caller over: the app's leg of the call ends.
                self._end_call(call, "The call was transferred.")
            else:
                call.state = "connected"
                call.participants.pop(raw_id_of(transferee), None)
                call.participants[invitation.raw_id] = Participant(invitation.target)
                self._participants_updated(call)

    def _invitation_failed(self, invitation: Invitation, result: tuple[int, int, str]) -> None:
        self._drop_invitation(invitation)
        call = self.calls.get(invitation.call_connection_id or "")
        if call is None or not call.active:
            return
        ctx, cb = invitation.operation_context, invitation.callback_uri
        if invitation.kind == "add":
            self._emit(
                call,
                "AddParticipantFailed",
                {"participant": invitation.target},
                operation_context=ctx,
                callback_uri=cb,
                result=result,
            )
        elif invitation.kind == "create":
            if any(
                i.call_connection_id == call.call_connection_id for i in self.invitations.values()
            ):
                return  # another target of the sim-ring is still ringing
            self._emit(
                call, "CreateCallFailed", operation_context=call.operation_context, result=result
            )
            self._end_call(call, result[2], notify=False)
        elif invitation.kind == "transfer":
            call.state = "connected"
            self._emit(
                call, "CallTransferFailed", operation_context=ctx, callback_uri=cb, result=result
            )

    # -- ending calls & recordings ----------------------------------------------------------------

    def _end_call(self, call: Call, reason: str, *, notify: bool = True) -> None:
        if not call.active:
            return
        for invitation in [
            i for i in self.invitations.values() if i.call_connection_id == call.call_connection_id
        ]:
            self._drop_invitation(invitation)
        if call.recognize is not None:
            self._cancel(call.recognize.timer)
            call.recognize = None
        call.looping_plays.clear()
        call.state, call.ended_at, call.end_reason = "disconnected", now_iso(), reason
        if notify:
            self._emit(
                call,
                "CallDisconnected",
                operation_context=call.operation_context,
                result=(200, 0, reason),
            )
        for recording_id in call.recording_ids:
            recording = self.recordings[recording_id]
            if not recording.finished:
                self._finish_recording(recording, "CallEnded")

    def _finish_recording(self, recording: Recording, session_end_reason: str) -> None:
        recording.state = "inactive"
        recording.stopped_at = datetime.now(UTC)
        recording.document_id = f"0-emu-d{uuid.uuid4().hex[:2]}-{uuid.uuid4().hex}"
        self.documents[recording.document_id] = recording
        objects = f"{self.base_url}/v1/objects/{recording.document_id}"
        duration_ms = int((recording.stopped_at - recording.started_at).total_seconds() * 1000)
        data = {
            "recordingStorageInfo": {
                "recordingChunks": [
                    {
                        "documentId": recording.document_id,
                        "index": 0,
                        "endReason": "SessionEnded",
                        "contentLocation": f"{objects}/content/audio",
                        "metadataLocation": f"{objects}/content/acsmetadata",
                        "deleteLocation": objects,
                    }
                ]
            },
            "recordingStartTime": recording.started_at.isoformat().replace("+00:00", "Z"),
            "recordingDurationMs": duration_ms,
            "recordingContentType": _title(recording.content_type),
            "recordingChannelType": _title(recording.channel_type),
            "recordingFormatType": _title(recording.format_type),
            "sessionEndReason": session_end_reason,
        }
        subject = (
            f"/recording/call/{recording.correlation_id}/serverCallId/{recording.server_call_id}"
        )
        self._emit_grid(
            "Microsoft.Communication.RecordingFileStatusUpdated",
            subject,
            data,
            self.config.recording_webhook,
            "RECORDINGFILESTATUSUPDATED",
        )

    # == REST operations ==========================================================================

    def create_call(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            targets = body.get("targets") or []
            if not isinstance(targets, list) or not targets:
                raise AcsError(400, "BadRequest", "The Targets field is required.")
            callback = self._callback(body.get("callbackUri"))
            target_raws = [raw_id_of(t) for t in targets]
            for raw in target_raws:
                self._check_caller_id(body, raw, required=True)
            cid, server_call_id, correlation_id = self._new_ids()
            source_user = (body.get("source") or {}).get("id") or self.app_identity
            call = Call(
                call_connection_id=cid,
                server_call_id=server_call_id,
                correlation_id=correlation_id,
                direction="outbound",
                state="connecting",
                callback_uri=callback,
                operation_context=body.get("operationContext"),
                source=identifier(source_user),
                targets=[identifier(r) for r in target_raws],
                customer_raw=target_raws[0],
                source_caller_id_number=body.get("sourceCallerIdNumber"),
                source_display_name=body.get("sourceDisplayName"),
            )
            self.calls[cid] = call
            if self.take_fault("create", "event"):
                self._emit(
                    call,
                    "CreateCallFailed",
                    operation_context=call.operation_context,
                    result=INJECTED,
                )
                self._end_call(call, INJECTED[2], notify=False)
            else:
                for raw in target_raws:
                    self._ring(
                        kind="create",
                        target=identifier(raw),
                        call=call,
                        operation_context=call.operation_context,
                        callback_uri=None,
                        timeout=self.config.ring_timeout_seconds,
                    )
            return self.properties(call, "connecting")

    def _incoming(self, body: dict[str, Any]) -> IncomingCall:
        context = body.get("incomingCallContext")
        if not context:
            raise AcsError(400, "BadRequest", "The IncomingCallContext field is required.")
        incoming = self.incoming.get(str(context))
        if incoming is None or incoming.state != "ringing":
            raise AcsError(
                400,
                "8523",
                "Invalid request: the incoming call context is unknown, expired "
                "or has already been used.",
            )
        return incoming

    def answer_call(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            incoming = self._incoming(body)
            callback = self._callback(body.get("callbackUri"))
            cid = str(uuid.uuid4())
            answered_by = (body.get("answeredBy") or {}).get("id") or self.app_identity
            call = Call(
                call_connection_id=cid,
                server_call_id=incoming.server_call_id,
                correlation_id=incoming.correlation_id,
                direction="inbound",
                state="connected",
                callback_uri=callback,
                operation_context=body.get("operationContext"),
                source=identifier(incoming.from_raw),
                targets=[identifier(incoming.to_raw)],
                customer_raw=incoming.from_raw,
                answered_by={"id": answered_by},
                answered_for=(
                    identifier(incoming.to_raw)["phoneNumber"]
                    if is_phone(incoming.to_raw)
                    else None
                ),
                connected_at=now_iso(),
            )
            call.participants[incoming.from_raw] = Participant(identifier(incoming.from_raw))
            self.calls[cid] = call
            incoming.state, incoming.call_connection_id = "answered", cid
            if self.take_fault("answer", "event"):
                self._emit(
                    call, "AnswerFailed", operation_context=call.operation_context, result=INJECTED
                )
                self._end_call(call, INJECTED[2], notify=False)
            else:
                self._emit(
                    call,
                    "CallConnected",
                    operation_context=call.operation_context,
                    result=CALL_CONNECTED,
                )
                self._participants_updated(call)
            # The service answers before media is up: the response still says "connecting".
            return self.properties(call, "connecting")

    def redirect_call(self, body: dict[str, Any]) -> None:
        with self._lock:
            incoming = self._incoming(body)
            target_raw = raw_id_of(body.get("target"))
            incoming.state = "redirected"
            if is_phone(target_raw) and target_raw[2:] in self.config.acs_numbers:
                # A call redirected to one of our own numbers arrives again as IncomingCall.
                self._raise_incoming(
                    incoming.from_raw,
                    target_raw,
                    incoming.display_name,
                    None,
                    incoming.server_call_id,
                    incoming.correlation_id,
                )
            else:
                self._ring(
                    kind="redirect",
                    target=identifier(target_raw),
                    call=None,
                    operation_context=None,
                    callback_uri=None,
                    timeout=self.config.ring_timeout_seconds,
                )

    def reject_call(self, body: dict[str, Any]) -> None:
        with self._lock:
            incoming = self._incoming(body)
            reason = body.get("callRejectReason") or "none"
            if str(reason).lower() not in ("none", "busy", "forbidden"):
                raise AcsError(400, "BadRequest", f"Unknown CallRejectReason '{reason}'.")
            incoming.state = "rejected"

    def get_call(self, cid: str) -> dict[str, Any]:
        with self._lock:
            return self.properties(self._call(cid))

    def hang_up(self, cid: str, *, for_everyone: bool) -> None:
        with self._lock:
            call = self._call(cid)
            self._end_call(
                call,
                "The call was terminated by the application."
                if for_everyone
                else "The application left the call.",
            )

    def transfer(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            call = self._connected(cid)
            target_raw = raw_id_of(body.get("targetParticipant"))
            self._check_caller_id(body, target_raw, required=False)
            callback = self._optional_callback(body)
            if body.get("transferee"):
                transferee = self._participant(call, body["transferee"]).identifier
            elif len(call.participants) == 1:
                transferee = next(iter(call.participants.values())).identifier
            else:
                raise AcsError(
                    400,
                    "BadRequest",
                    "Transferee is required when the call has several participants.",
                )
            context = body.get("operationContext")
            if self.take_fault("transfer", "event"):
                self._emit(
                    call,
                    "CallTransferFailed",
                    operation_context=context,
                    callback_uri=callback,
                    result=INJECTED,
                )
            else:
                call.state = "transferring"
                self._ring(
                    kind="transfer",
                    target=identifier(target_raw),
                    call=call,
                    operation_context=context,
                    callback_uri=callback,
                    timeout=self.config.ring_timeout_seconds,
                    transferee=transferee,
                )
            return {"operationContext": context}

    def list_participants(self, cid: str) -> dict[str, Any]:
        with self._lock:
            call = self._call(cid)
            return {"value": [p.to_json() for p in call.participants.values()]}

    def get_participant(self, cid: str, raw: str) -> dict[str, Any]:
        with self._lock:
            call = self._call(cid)
            return self._participant(call, {"rawId": raw}).to_json()

    def add_participant(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            call = self._connected(cid)
            target_raw = raw_id_of(body.get("participantToAdd"))
            self._check_caller_id(body, target_raw, required=True)
            callback = self._optional_callback(body)
            if target_raw in call.participants:
                raise AcsError(400, "BadRequest", f"'{target_raw}' is already in the call.")
            timeout = body.get("invitationTimeoutInSeconds")
            if timeout is None:
                timeout = self.config.ring_timeout_seconds
            elif not isinstance(timeout, int) or not 0 < timeout <= 180:
                raise AcsError(
                    400, "BadRequest", "InvitationTimeoutInSeconds must be between 1 and 180."
                )
            context = body.get("operationContext")
            target = identifier(target_raw)
            invitation_id = str(uuid.uuid4())
            if self.take_fault("add", "event"):
                self._emit(
                    call,
                    "AddParticipantFailed",
                    {"participant": target},
                    operation_context=context,
                    callback_uri=callback,
                    result=INJECTED,
                )
            else:
                invitation = self._ring(
                    kind="add",
                    target=target,
                    call=call,
                    operation_context=context,
                    callback_uri=callback,
                    timeout=float(timeout),
                )
                invitation.voip_headers = _voip_headers(body)
                invitation_id = invitation.invitation_id
            return {
                "participant": Participant(target).to_json(),
                "operationContext": context,
                "invitationId": invitation_id,
            }

    def cancel_add_participant(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            call = self._connected(cid)
            invitation_id = str(body.get("invitationId") or "")
            invitation = self.invitations.get(invitation_id)
            if invitation is None or invitation.call_connection_id != cid:
                raise AcsError(404, "8523", f"Invitation '{invitation_id}' is not pending.")
            self._drop_invitation(invitation)
            context = body.get("operationContext")
            self._emit(
                call,
                "CancelAddParticipantSucceeded",
                {"invitationId": invitation_id},
                operation_context=context,
                callback_uri=self._optional_callback(body),
            )
            return {"invitationId": invitation_id, "operationContext": context}

    def remove_participant(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            call = self._connected(cid)
            participant = self._participant(call, body.get("participantToRemove"))
            callback = self._optional_callback(body)
            context = body.get("operationContext")
            if self.take_fault("remove", "event"):
                self._emit(
                    call,
                    "RemoveParticipantFailed",
                    {"participant": participant.identifier},
                    operation_context=context,
                    callback_uri=callback,
                    result=INJECTED,
                )
                return {"operationContext": context}
            del call.participants[str(participant.identifier["rawId"])]
            self._emit(
                call,
                "RemoveParticipantSucceeded",
                {"participant": participant.identifier},
                operation_context=context,
                callback_uri=callback,
                result=REMOVE_OK,
            )
            self._participants_updated(call)
            if not call.participants:
                self._end_call(call, "The last participant was removed.")
            return {"operationContext": context}

    def mute(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            call = self._connected(cid)
            targets = body.get("targetParticipants") or []
            if not isinstance(targets, list) or len(targets) != 1:
                raise AcsError(400, "BadRequest", "Exactly one participant can be muted.")
            participant = self._participant(call, targets[0])
            if not participant.is_muted:
                participant.is_muted = True
                self._participants_updated(call)
            return {"operationContext": body.get("operationContext")}

    def _hold(self, cid: str, body: dict[str, Any], on_hold: bool) -> None:
        with self._lock:
            call = self._connected(cid)
            participant = self._participant(call, body.get("targetParticipant"))
            callback = self._optional_callback(body)
            if on_hold and self.take_fault("hold", "event"):
                self._emit(
                    call,
                    "HoldFailed",
                    operation_context=body.get("operationContext"),
                    callback_uri=callback,
                    result=INJECTED,
                )
                return
            if participant.is_on_hold != on_hold:
                participant.is_on_hold = on_hold
                self._participants_updated(call)

    def hold(self, cid: str, body: dict[str, Any]) -> None:
        self._hold(cid, body, True)

    def unhold(self, cid: str, body: dict[str, Any]) -> None:
        self._hold(cid, body, False)

    def send_dtmf(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            call = self._connected(cid)
            tones = body.get("tones") or []
            if (
                not isinstance(tones, list)
                or not tones
                or any(str(t).lower() not in TONE_NAMES for t in tones)
            ):
                raise AcsError(400, "BadRequest", "Tones must be a non-empty list of DTMF tones.")
            participant = self._participant(call, body.get("targetParticipant"))
            context, callback = body.get("operationContext"), self._optional_callback(body)
            if self.take_fault("sendDtmf", "event"):
                self._emit(
                    call,
                    "SendDtmfTonesFailed",
                    operation_context=context,
                    callback_uri=callback,
                    result=INJECTED,
                )
            else:
                call.sent_tones.append(
                    {
                        "to": participant.identifier["rawId"],
                        "tones": [str(t).lower() for t in tones],
                        "at": now_iso(),
                    }
                )
                self._emit(
                    call, "SendDtmfTonesCompleted", operation_context=context, callback_uri=callback
                )
            return {"operationContext": context}

    def play(self, cid: str, body: dict[str, Any]) -> None:
        with self._lock:
            call = self._connected(cid)
            sources = body.get("playSources") or []
            if not isinstance(sources, list) or not sources:
                raise AcsError(400, "BadRequest", "PlaySources must not be empty.")
            play_to = [raw_id_of(p) for p in body.get("playTo") or []]
            for raw in play_to:
                self._participant(call, {"rawId": raw})
            context, callback = body.get("operationContext"), self._optional_callback(body)
            loop = bool((body.get("playOptions") or {}).get("loop"))
            call.plays.append(
                {
                    "sources": sources,
                    "playTo": play_to or "all",
                    "loop": loop,
                    "operationContext": context,
                    "at": now_iso(),
                }
            )
            if self.take_fault("play", "event"):
                self._emit(
                    call,
                    "PlayFailed",
                    {"failedPlaySourceIndex": 0},
                    operation_context=context,
                    callback_uri=callback,
                    result=INJECTED,
                )
                return
            self._emit(call, "PlayStarted", operation_context=context, callback_uri=callback)
            if loop:
                call.looping_plays.append((context, callback))
            else:
                self._emit(call, "PlayCompleted", operation_context=context, callback_uri=callback)

    def recognize(self, cid: str, body: dict[str, Any]) -> None:
        with self._lock:
            call = self._connected(cid)
            kind = body.get("recognizeInputType")
            if kind != "dtmf":
                raise AcsError(
                    400,
                    "BadRequest",
                    f"Recognize input type '{kind}' is not supported by the emulator (dtmf only).",
                )
            options = body.get("recognizeOptions") or {}
            participant = self._participant(call, options.get("targetParticipant"))
            if call.recognize is not None:
                raise AcsError(400, "8501", "A recognize operation is already running.")
            context, callback = body.get("operationContext"), self._optional_callback(body)
            if self.take_fault("recognize", "event"):
                self._emit(
                    call,
                    "RecognizeFailed",
                    operation_context=context,
                    callback_uri=callback,
                    result=INJECTED,
                )
                return
            dtmf = options.get("dtmfOptions") or {}
            call.recognize = Recognize(
                target_raw=str(participant.identifier["rawId"]),
                operation_context=context,
                callback_uri=callback,
                max_tones=int(dtmf.get("maxTonesToCollect") or 1),
                stop_tones=frozenset(str(t).lower() for t in dtmf.get("stopTones") or []),
                inter_tone_seconds=float(
                    dtmf.get("interToneTimeoutInSeconds") or DEFAULT_INTER_TONE_SECONDS
                ),
            )
            silence = float(
                options.get("initialSilenceTimeoutInSeconds") or DEFAULT_INITIAL_SILENCE_SECONDS
            )
            call.recognize.timer = self._timer(
                silence, self._recognize_timed_out, call.call_connection_id, call.recognize
            )

    def _recognize_timed_out(self, cid: str, recognize: Recognize) -> None:
        call = self.calls.get(cid)
        if call is None or call.recognize is not recognize:
            return
        call.recognize = None
        if recognize.tones:
            self._recognize_completed(call, recognize, INTER_TONE)
        else:
            self._emit(
                call,
                "RecognizeFailed",
                operation_context=recognize.operation_context,
                callback_uri=recognize.callback_uri,
                result=INITIAL_SILENCE,
            )

    def _recognize_completed(
        self, call: Call, recognize: Recognize, result: tuple[int, int, str]
    ) -> None:
        self._cancel(recognize.timer)
        call.recognize = None
        self._emit(
            call,
            "RecognizeCompleted",
            {
                "recognitionType": "dtmf",
                "dtmfResult": {"tones": list(recognize.tones)},
            },
            operation_context=recognize.operation_context,
            callback_uri=recognize.callback_uri,
            result=result,
        )

    def cancel_media(self, cid: str) -> None:
        with self._lock:
            call = self._call(cid)
            for context, callback in call.looping_plays:
                self._emit(
                    call,
                    "PlayCanceled",
                    operation_context=context,
                    callback_uri=callback,
                    result=PLAY_CANCELLED,
                )
            call.looping_plays.clear()
            if call.recognize is not None:
                recognize = call.recognize
                self._cancel(recognize.timer)
                call.recognize = None
                self._emit(
                    call,
                    "RecognizeCanceled",
                    operation_context=recognize.operation_context,
                    callback_uri=recognize.callback_uri,
                    result=PLAY_CANCELLED,
                )

    # -- recordings -------------------------------------------------------------------------------

    def start_recording(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            call: Call | None = None
            if body.get("callConnectionId"):
                call = self._call(str(body["callConnectionId"]))
            else:
                locator = body.get("callLocator") or {}
                server_call_id = locator.get("serverCallId")
                if not server_call_id:
                    raise AcsError(
                        400,
                        "BadRequest",
                        "A serverCallLocator or callConnectionId is required "
                        "(group and room calls are not emulated).",
                    )
                call = next(
                    (
                        c
                        for c in self.calls.values()
                        if c.server_call_id == server_call_id and c.active
                    ),
                    None,
                )
                if call is None:
                    raise AcsError(404, "8522", "No active call has this server call id.")
            if call.state != "connected":
                raise AcsError(
                    400, "8501", "Action is not valid when call is not in Established state."
                )
            if any(not self.recordings[r].finished for r in call.recording_ids):
                raise AcsError(400, "BadRequest", "The call is already being recorded.")
            state_callback = body.get("recordingStateCallbackUri")
            if state_callback:
                self._callback(state_callback, "RecordingStateCallbackUri")
            recording_id = _b64url(
                json.dumps(
                    {
                        "PlatformEndpointId": str(uuid.uuid4()),
                        "ResourceSpecificId": str(uuid.uuid4()),
                    }
                ).encode()
            )
            paused = bool(body.get("pauseOnStart"))
            recording = Recording(
                recording_id=recording_id,
                call_connection_id=call.call_connection_id,
                server_call_id=call.server_call_id,
                correlation_id=call.correlation_id,
                state="inactive" if paused else "active",
                content_type=body.get("recordingContentType") or "audioVideo",
                channel_type=body.get("recordingChannelType") or "mixed",
                format_type=body.get("recordingFormatType") or "mp4",
                callback_uri=state_callback,
                started_at=datetime.now(UTC),
                external_storage=body.get("externalStorage"),
                participants=list(call.participants),
            )
            self.recordings[recording_id] = recording
            call.recording_ids.append(recording_id)
            self._recording_state_changed(recording)
            return {
                "recordingId": recording_id,
                "recordingState": recording.state,
                "recordingKind": RECORDING_KIND,
            }

    def _recording(self, recording_id: str) -> Recording:
        recording = self.recordings.get(recording_id)
        if recording is None or recording.finished:
            raise AcsError(404, "8522", f"Recording '{recording_id}' not found.")
        return recording

    def _recording_state_changed(self, recording: Recording) -> None:
        call = self.calls.get(recording.call_connection_id)
        if call is None or not call.active:
            return
        self._emit(
            call,
            "RecordingStateChanged",
            {
                "recordingId": recording.recording_id,
                "state": recording.state,
                "startDateTime": recording.started_at.isoformat().replace("+00:00", "Z"),
                "recordingKind": RECORDING_KIND,
            },
            operation_context=None,
            callback_uri=recording.callback_uri,
        )

    def get_recording(self, recording_id: str) -> dict[str, Any]:
        with self._lock:
            recording = self._recording(recording_id)
            return {
                "recordingId": recording_id,
                "recordingState": recording.state,
                "recordingKind": RECORDING_KIND,
            }

    def stop_recording(self, recording_id: str) -> None:
        with self._lock:
            recording = self._recording(recording_id)
            recording.state = "inactive"
            self._recording_state_changed(recording)
            self._finish_recording(recording, "RecordingStopped")

    def set_recording_paused(self, recording_id: str, paused: bool) -> None:
        with self._lock:
            recording = self._recording(recording_id)
            state = "inactive" if paused else "active"
            if recording.state != state:
                recording.state = state
                self._recording_state_changed(recording)

    def recording_content(self, document_id: str) -> bytes | None:
        with self._lock:
            recording = self.documents.get(document_id)
            return None if recording is None or recording.content_deleted else self._wav

    def recording_metadata(self, document_id: str) -> dict[str, Any] | None:
        with self._lock:
            recording = self.documents.get(document_id)
            if recording is None or recording.content_deleted or recording.stopped_at is None:
                return None
            return {
                "resourceId": self.resource_id,
                "callId": recording.correlation_id,
                "chunkDocumentId": document_id,
                "chunkIndex": 0,
                "chunkStartTime": recording.started_at.isoformat().replace("+00:00", "Z"),
                "chunkDuration": (recording.stopped_at - recording.started_at).total_seconds()
                * 1000,
                "pauseResumeIntervals": [],
                "recordingInfo": {
                    "contentType": recording.content_type,
                    "channelType": recording.channel_type,
                    "format": recording.format_type,
                    "audioConfiguration": {"sampleRate": 16000, "bitRate": 256000, "channels": 1},
                },
                "participants": [{"participantId": raw} for raw in recording.participants],
            }

    def delete_recording_content(self, document_id: str) -> bool:
        with self._lock:
            recording = self.documents.get(document_id)
            if recording is None or recording.content_deleted:
                return False
            recording.content_deleted = True
            return True

    # == the simulated world (control API) ========================================================

    def _raise_incoming(
        self,
        from_raw: str,
        to_raw: str,
        display_name: str,
        custom_context: dict[str, Any] | None,
        server_call_id: str | None = None,
        correlation_id: str | None = None,
    ) -> IncomingCall:
        _, new_server_call_id, new_correlation_id = self._new_ids()
        # Shaped like the service's: an unsigned JWT whose payload names the call.
        header = _b64url(b'{"alg":"none","typ":"JWT"}')
        payload = _b64url(
            json.dumps(
                {
                    "cc": uuid.uuid4().hex,
                    "shrToken": uuid.uuid4().hex,
                    "iat": int(datetime.now(UTC).timestamp()),
                }
            ).encode()
        )
        incoming = IncomingCall(
            context=f"{header}.{payload}.",
            server_call_id=server_call_id or new_server_call_id,
            correlation_id=correlation_id or new_correlation_id,
            from_raw=from_raw,
            to_raw=to_raw,
            display_name=display_name,
        )
        self.incoming[incoming.context] = incoming
        data: dict[str, Any] = {
            "to": identifier(to_raw),
            "from": identifier(from_raw),
            "serverCallId": incoming.server_call_id,
            "callerDisplayName": display_name,
            "incomingCallContext": incoming.context,
            "customContext": custom_context or {"sipHeaders": {}, "voipHeaders": {}},
            "correlationId": incoming.correlation_id,
        }
        self._emit_grid(
            "Microsoft.Communication.IncomingCall",
            f"/caller/{from_raw}/recipient/{to_raw}",
            data,
            self.config.incoming_call_webhook,
            "INCOMINGCALL",
        )
        return incoming

    def place_call(
        self,
        from_number: str,
        to_number: str,
        display_name: str = "",
        custom_context: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A PSTN caller dials one of our numbers: IncomingCall goes to the webhook."""
        with self._lock:
            from_raw, to_raw = normalise_raw_id(from_number), normalise_raw_id(to_number)
            if not is_phone(from_raw):
                raise AcsError(400, "BadRequest", "'from' must be a phone number (+E.164).")
            if not is_phone(to_raw) or to_raw[2:] not in self.config.acs_numbers:
                numbers = list(self.config.acs_numbers)
                raise AcsError(400, "BadRequest", f"'to' must be one of the ACS numbers {numbers}.")
            return self._raise_incoming(from_raw, to_raw, display_name, custom_context).to_json()

    def device_answer(self, device: str, call_connection_id: str | None = None) -> dict[str, Any]:
        with self._lock:
            invitation = self._find_invitation(device, call_connection_id)
            self._invitation_answered(invitation)
            return {**invitation.to_json(), "outcome": "answered"}

    def device_decline(self, device: str, call_connection_id: str | None = None) -> dict[str, Any]:
        with self._lock:
            invitation = self._find_invitation(device, call_connection_id)
            self._invitation_failed(invitation, DECLINED)
            return {**invitation.to_json(), "outcome": "declined"}

    def device_no_answer(
        self, device: str, call_connection_id: str | None = None
    ) -> dict[str, Any]:
        """The ring timeout, now."""
        with self._lock:
            invitation = self._find_invitation(device, call_connection_id)
            self._invitation_failed(invitation, NO_ANSWER)
            return {**invitation.to_json(), "outcome": "noAnswer"}

    def _calls_with(self, raw: str, call_connection_id: str | None) -> list[Call]:
        return [
            c
            for c in self.calls.values()
            if c.active
            and raw in c.participants
            and call_connection_id in (None, c.call_connection_id)
        ]

    def participant_hang_up(
        self, participant: str, call_connection_id: str | None = None
    ) -> dict[str, Any]:
        """A caller or a device hangs up. The original remote party leaving ends the call."""
        with self._lock:
            raw = normalise_raw_id(participant)
            abandoned = [
                i for i in self.incoming.values() if i.from_raw == raw and i.state == "ringing"
            ]
            for incoming in abandoned:
                incoming.state = "abandoned"
            ended, left = [], []
            for call in self._calls_with(raw, call_connection_id):
                if raw == call.customer_raw:
                    self._end_call(call, "The remote participant hung up.")
                    ended.append(call.call_connection_id)
                    continue
                del call.participants[raw]
                self._participants_updated(call)
                left.append(call.call_connection_id)
                if not call.participants:
                    self._end_call(call, "The last participant left.")
                    ended.append(call.call_connection_id)
            if not (abandoned or ended or left):
                raise AcsError(404, "NotInCall", f"'{raw}' is not in any call.")
            return {
                "abandonedIncomingCalls": [i.context for i in abandoned],
                "endedCalls": ended,
                "leftCalls": left,
            }

    def press(
        self, participant: str, tones: str, call_connection_id: str | None = None
    ) -> dict[str, Any]:
        """Keys pressed on a phone in a call: they reach an active recognize, else nothing."""
        with self._lock:
            raw = normalise_raw_id(participant)
            names = []
            for key in tones.upper():
                if key not in DTMF_NAMES:
                    raise AcsError(400, "BadRequest", f"'{key}' is not a DTMF key.")
                names.append(DTMF_NAMES[key])
            calls = [c for c in self._calls_with(raw, call_connection_id) if c.state == "connected"]
            if not calls:
                raise AcsError(404, "NotInCall", f"'{raw}' is not in a connected call.")
            call = calls[0]
            call.pressed_tones.append({"from": raw, "tones": names, "at": now_iso()})
            recognize = call.recognize
            if recognize is None or recognize.target_raw != raw:
                return {"callConnectionId": call.call_connection_id, "recognized": False}
            self._cancel(recognize.timer)
            for name in names:
                if name in recognize.stop_tones:
                    self._recognize_completed(call, recognize, STOP_TONE)
                    break
                recognize.tones.append(name)
                if len(recognize.tones) >= recognize.max_tones:
                    self._recognize_completed(call, recognize, MAX_DIGITS)
                    break
            else:
                recognize.timer = self._timer(
                    recognize.inter_tone_seconds,
                    self._recognize_timed_out,
                    call.call_connection_id,
                    recognize,
                )
            return {
                "callConnectionId": call.call_connection_id,
                "recognized": True,
                "completed": call.recognize is None,
            }

    # -- control reads ----------------------------------------------------------------------------

    def call_json(self, cid: str) -> dict[str, Any]:
        with self._lock:
            call = self.calls.get(cid)
            if call is None:
                raise AcsError(404, "NotFound", f"No call '{cid}'.")
            recognize = call.recognize
            return {
                "callConnectionId": call.call_connection_id,
                "serverCallId": call.server_call_id,
                "correlationId": call.correlation_id,
                "direction": call.direction,
                "state": call.state,
                "callbackUri": call.callback_uri,
                "operationContext": call.operation_context,
                "source": call.source,
                "targets": call.targets,
                "customer": call.customer_raw,
                "participants": [
                    {"rawId": raw, "isMuted": p.is_muted, "isOnHold": p.is_on_hold}
                    for raw, p in call.participants.items()
                ],
                "ringing": [
                    i.to_json() for i in self.invitations.values() if i.call_connection_id == cid
                ],
                "recognizing": None
                if recognize is None
                else {
                    "target": recognize.target_raw,
                    "tones": list(recognize.tones),
                    "maxTones": recognize.max_tones,
                    "stopTones": sorted(recognize.stop_tones),
                    "operationContext": recognize.operation_context,
                },
                "sentTones": list(call.sent_tones),
                "pressedTones": list(call.pressed_tones),
                "plays": list(call.plays),
                "recordings": list(call.recording_ids),
                "createdAt": call.created_at,
                "connectedAt": call.connected_at,
                "endedAt": call.ended_at,
                "endReason": call.end_reason,
            }

    def state_json(self) -> dict[str, Any]:
        with self._lock:
            return {
                "config": {
                    "acsNumbers": list(self.config.acs_numbers),
                    "incomingCallWebhook": self.config.incoming_call_webhook,
                    "recordingWebhook": self.config.recording_webhook,
                    "ringTimeoutSeconds": self.config.ring_timeout_seconds,
                    "allowHttpCallbacks": self.config.allow_http_callbacks,
                    "recordingContentRequiresAuth": self.config.recording_content_requires_auth,
                    "appIdentity": self.app_identity,
                },
                "incomingCalls": [i.to_json() for i in self.incoming.values()],
                "calls": [self.call_json(cid) for cid in self.calls],
                "ringing": [i.to_json() for i in self.invitations.values()],
                "recordings": [r.to_json() for r in self.recordings.values()],
                "faults": [f.to_json() for f in self.faults if f.remaining > 0],
            }

    def recordings_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_json() for r in self.recordings.values()]

    def ringing_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [i.to_json() for i in self.invitations.values()]


def _voip_headers(body: dict[str, Any]) -> dict[str, str]:
    context = body.get("customCallingContext")
    headers = context.get("voipHeaders") if isinstance(context, dict) else None
    return {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {}


def _title(value: str) -> str:
    return value[:1].upper() + value[1:]
