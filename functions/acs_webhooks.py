"""ACS webhooks: Event Grid (IncomingCall, recordings) and mid-call callbacks."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import azure.functions as func

from functions.invocation import WEBHOOK_BODY_LIMIT, Auth, endpoint

if TYPE_CHECKING:
    from shared.views import Accepted, ValidationAnswer

bp = func.Blueprint()
log = logging.getLogger(__name__)
_GONE = (400, 404)  # ACS: the incoming call context is unknown, expired or already used
_TEXT = {"type": "string", "minLength": 1, "maxLength": 512}
EVENTS = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "description": "An Event Grid event (its envelope checked; data as the event type says)",
        "required": ["id", "eventType", "data"],
        "properties": {
            "id": _TEXT,
            "eventType": _TEXT,
            "data": {"type": "object"},
            "eventTime": {"type": "string", "format": "date-time"},
        },
    },
}
CLOUD_EVENTS = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "description": "A CloudEvent of Call Automation",
        "required": ["id", "type", "time", "data"],
        "properties": {
            "id": {"type": "string", "minLength": 1, "maxLength": 256},
            "type": _TEXT,
            "time": {"type": "string", "format": "date-time"},
            "data": {"type": "object"},
        },
    },
}


@endpoint(
    bp,
    "POST",
    "acs/incoming",
    auth=Auth.FUNCTION_KEY,
    errors=(503,),
    raw_body=EVENTS,
    max_body=WEBHOOK_BODY_LIMIT,
)
def acs_incoming(req: func.HttpRequest) -> Accepted | ValidationAnswer:
    """Event Grid: the validation handshake and Microsoft.Communication.IncomingCall

    A call ACS can no longer answer (its incomingCallContext expired or used) is acknowledged
    and logged, not counted in `accepted`: Event Grid would redeliver it for nothing."""
    from shared import composition  # wired on first use, not at cold start
    from shared.adapters import acs_events
    from shared.errors import TelephonyError
    from shared.views import Accepted, ValidationAnswer

    events = acs_events.event_grid_events(req.get_body())
    code = acs_events.validation_code(events)
    if code is not None:
        return ValidationAnswer(validation_response=code)
    calls = [
        acs_events.incoming_call(e) for e in events if e["eventType"] == acs_events.INCOMING_CALL
    ]  # parse all before acting on any
    accepted = 0
    for call in calls:
        try:
            composition.call_flow().incoming(call)
        except TelephonyError as refused:
            if refused.status not in _GONE:
                raise  # ACS down or throttling: Event Grid's retry may still reach the caller
            log.warning(
                "IncomingCall %s acknowledged without action: ACS answered %s %s (the call "
                "can no longer be answered)",
                call.event_id[:64],
                refused.status,
                refused.code,
            )
            continue
        accepted += 1
    return Accepted(accepted=accepted)


@endpoint(
    bp,
    "POST",
    "acs/callbacks/{callId}",
    auth=Auth.ACS_CALLBACK,
    errors=(409, 503),
    raw_body=CLOUD_EVENTS,
    max_body=WEBHOOK_BODY_LIMIT,
)
def acs_callback(req: func.HttpRequest) -> Accepted:
    """ACS mid-call CloudEvents (ACS-signed JWT and the per-call token in ?token=)"""
    from shared import composition  # wired on first use, not at cold start
    from shared.adapters import acs_events
    from shared.views import Accepted

    call_id, flow = req.route_params["callId"], composition.call_flow()
    events = acs_events.call_events(req.get_body())
    now = datetime.now(UTC)
    for event in events:
        flow.on_event(call_id, event, now)
    return Accepted(accepted=len(events))


@endpoint(
    bp,
    "POST",
    "acs/recordings",
    auth=Auth.FUNCTION_KEY,
    errors=(503,),
    raw_body=EVENTS,
    max_body=WEBHOOK_BODY_LIMIT,
)
def acs_recordings(req: func.HttpRequest) -> Accepted | ValidationAnswer:
    """Event Grid: Microsoft.Communication.RecordingFileStatusUpdated"""
    from shared import composition  # wired on first use, not at cold start
    from shared.adapters import acs_events
    from shared.views import Accepted, ValidationAnswer

    events = acs_events.event_grid_events(req.get_body())
    code = acs_events.validation_code(events)
    if code is not None:
        return ValidationAnswer(validation_response=code)
    ready = [
        acs_events.recording_ready(e)
        for e in events
        if e["eventType"] == acs_events.RECORDING_READY
    ]
    for r in ready:
        composition.recordings().save(
            r.server_call_id,
            r.recording_id,
            r.content_location,
            r.metadata_location,
            r.duration_ms,
            r.at,
        )
    return Accepted(accepted=len(ready))
