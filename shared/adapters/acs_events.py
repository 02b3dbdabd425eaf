"""Reading ACS payloads: Event Grid deliveries and mid-call CloudEvents (the SDK has no parser)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.domain.calls import CallEvent, IncomingCall
from shared.errors import FieldError, InvalidInput
from shared.json_input import loads

INCOMING_CALL = "Microsoft.Communication.IncomingCall"
RECORDING_READY = "Microsoft.Communication.RecordingFileStatusUpdated"
VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
_PREFIX = "Microsoft.Communication."


def _json_list(body: bytes, what: str) -> list[dict[str, Any]]:
    data = loads(body, what=f"the body ({what} are a JSON array)")
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list) or not data or not all(isinstance(e, dict) for e in data):
        raise InvalidInput(f"the body must be a non-empty JSON array of {what}")
    return data


def _need(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    if value is None or value == "":
        raise InvalidInput(f"{path} is missing", errors=[FieldError(path, "required")])
    return value


def _time(raw: Any, path: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{path} is not a date-time", errors=[FieldError(path, "ISO 8601 date-time")]
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _is_time(raw: Any) -> bool:
    try:
        return isinstance(raw, str) and bool(_time(raw, "eventTime"))
    except InvalidInput:
        return False


def _object(value: Any) -> dict[str, Any]:
    """A JSON object, or an empty one for anything else (a missing or malformed part)."""
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _raw_id(identifier: Any, path: str) -> str:
    if not isinstance(identifier, dict):
        raise InvalidInput(
            f"{path} must be an identifier object", errors=[FieldError(path, "identifier object")]
        )
    raw = identifier.get("rawId")
    phone = _object(identifier.get("phoneNumber")).get("value")
    user = _object(identifier.get("communicationUser")).get("id")
    if isinstance(raw, str) and raw:
        return raw
    if phone:
        return f"4:{phone}"
    if user:
        return str(user)
    raise InvalidInput(f"{path} has no rawId", errors=[FieldError(f"{path}.rawId", "required")])


def event_grid_events(body: bytes) -> list[dict[str, Any]]:
    """An Event Grid delivery: every event an envelope (Event Grid schema): id and eventType
    non-empty strings, data an object, eventTime (where given) a date-time string."""
    events = _json_list(body, "Event Grid events")
    errors: list[FieldError] = []
    for i, event in enumerate(events):
        for key in ("id", "eventType"):
            value = event.get(key)
            if not isinstance(value, str) or not value or len(value) > 512:
                errors.append(FieldError(f"[{i}].{key}", "a string of 1-512 characters"))
        if not isinstance(event.get("data"), dict):
            errors.append(FieldError(f"[{i}].data", "an object"))
        at = event.get("eventTime")
        if "eventTime" in event and not _is_time(at):
            errors.append(FieldError(f"[{i}].eventTime", "an ISO 8601 date-time string"))
    if errors:
        raise InvalidInput(
            "not Event Grid events: " + "; ".join(f"{e.field} must be {e.message}" for e in errors),
            errors=errors,
        )
    return events


def validation_code(events: list[dict[str, Any]]) -> str | None:
    for event in events:
        if event.get("eventType") == VALIDATION:
            return str(_need(event, "data.validationCode"))
    return None


def incoming_call(event: dict[str, Any]) -> IncomingCall:
    data = event["data"]
    if not isinstance(data, dict):
        raise InvalidInput("data must be an object", errors=[FieldError("data", "object")])
    return IncomingCall(
        event_id=str(event["id"]),
        from_raw=_raw_id(_need(event, "data.from"), "data.from"),
        to_raw=_raw_id(_need(event, "data.to"), "data.to"),
        server_call_id=str(_need(event, "data.serverCallId")),
        incoming_call_context=str(_need(event, "data.incomingCallContext")),
        at=_time(event.get("eventTime") or _need(event, "eventTime"), "eventTime"),
    )


@dataclass(frozen=True)
class RecordingReady:
    server_call_id: str
    recording_id: str
    content_location: str
    metadata_location: str | None
    duration_ms: int | None
    at: datetime


def recording_ready(event: dict[str, Any]) -> RecordingReady:
    data = event["data"]
    chunks = _need(data, "recordingStorageInfo.recordingChunks")
    if not isinstance(chunks, list) or not chunks or not isinstance(chunks[0], dict):
        raise InvalidInput(
            "recordingChunks must be a non-empty array",
            errors=[FieldError("data.recordingStorageInfo.recordingChunks", "non-empty array")],
        )
    subject = str(event.get("subject", ""))
    # subject: /recording/call/{callId}/serverCallId/{serverCallId}/recordingId/{recordingId};
    # a server call id is base64 and may itself contain '/'.
    named = _subject_parts(subject)
    server_call_id = named.get("serverCallId") or data.get("serverCallId")
    if not server_call_id:
        raise InvalidInput(
            "the event names no serverCallId (subject or data)",
            errors=[FieldError("subject", "must contain serverCallId")],
        )
    duration = data.get("recordingDurationMs")
    return RecordingReady(
        server_call_id=str(server_call_id),
        recording_id=str(named.get("recordingId") or chunks[0].get("documentId") or event["id"]),
        content_location=str(_need(chunks[0], "contentLocation")),
        metadata_location=chunks[0].get("metadataLocation"),
        duration_ms=int(duration) if isinstance(duration, int | float) else None,
        at=_time(event.get("eventTime") or data.get("recordingStartTime") or "", "eventTime"),
    )


def _subject_parts(subject: str) -> dict[str, str]:
    found: dict[str, str] = {}
    marker_sc, marker_rec = "/serverCallId/", "/recordingId/"
    if marker_sc in subject:
        rest = subject.split(marker_sc, 1)[1]
        found["serverCallId"] = rest.split(marker_rec, 1)[0]
    if marker_rec in subject:
        found["recordingId"] = subject.split(marker_rec, 1)[1].strip("/")
    return {k: v for k, v in found.items() if v}


def call_events(body: bytes) -> list[CallEvent]:
    """Mid-call CloudEvents, each with its serverCallId."""
    events = _json_list(body, "CloudEvents")
    parsed = []
    for i, event in enumerate(events):
        for key in ("id", "type", "data"):
            if key not in event:
                raise InvalidInput(
                    f"event [{i}] has no {key}", errors=[FieldError(f"[{i}].{key}", "required")]
                )
        data = event["data"] if isinstance(event["data"], dict) else {}
        kind = str(event["type"])
        kind = kind[len(_PREFIX) :] if kind.startswith(_PREFIX) else kind
        participants = tuple(
            _raw_id(p.get("identifier"), f"[{i}].data.participants")
            for p in _list(data.get("participants"))
            if isinstance(p, dict)
        )
        sequence = data.get("sequenceNumber")
        result = _object(data.get("resultInformation"))
        if not isinstance(event["id"], str) or not event["id"] or len(event["id"]) > 256:
            raise InvalidInput(
                f"event [{i}] id must be a string of at most 256 characters",
                errors=[FieldError(f"[{i}].id", "string, 1-256 characters")],
            )
        parsed.append(
            CallEvent(
                id=str(event["id"]),
                type=kind,
                at=_time(_need(event, "time"), f"[{i}].time"),
                operation_context=_optional_text(data.get("operationContext")),
                participants=participants,
                sequence=int(sequence) if isinstance(sequence, int) else None,
                result_code=result.get("code") if isinstance(result.get("code"), int) else None,
                server_call_id=_optional_text(data.get("serverCallId")),
                connection_id=_optional_text(data.get("callConnectionId")),
                tones=tuple(
                    str(t).lower()
                    for t in _list(_object(data.get("dtmfResult")).get("tones"))
                    if isinstance(t, str)
                ),
            )
        )
    return parsed
