"""ACS webhooks: Event Grid (IncomingCall, recordings) and mid-call callbacks."""

from datetime import UTC, datetime

import azure.functions as func

from functions.invocation import http_invocation, json_response
from shared.errors import NotAuthenticated

bp = func.Blueprint()


@bp.route(route="acs/incoming", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@http_invocation
def acs_incoming(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition  # wired on first use, not at cold start
    from shared.adapters import acs_events

    events = acs_events.event_grid_events(req.get_body())
    code = acs_events.validation_code(events)
    if code is not None:
        return json_response({"validationResponse": code})
    calls = [
        acs_events.incoming_call(e) for e in events if e["eventType"] == acs_events.INCOMING_CALL
    ]  # parse all before acting on any
    for call in calls:
        composition.call_flow().incoming(call)
    return json_response({"accepted": len(calls)})


@bp.route(route="acs/callbacks/{callId}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def acs_callback(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition  # wired on first use, not at cold start
    from shared.adapters import acs_events

    call_id = req.route_params["callId"]
    flow = composition.call_flow()
    if not flow.tokens.valid(call_id, req.params.get("token", "")):
        raise NotAuthenticated("the callback URL's call token is missing or wrong")
    composition.acs_callback_tokens().validate(req.headers.get("Authorization"))
    events = acs_events.call_events(req.get_body())
    now = datetime.now(UTC)
    for event in events:
        flow.on_event(call_id, event, now)
    return json_response({"accepted": len(events)})


@bp.route(route="acs/recordings", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@http_invocation
def acs_recordings(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition  # wired on first use, not at cold start
    from shared.adapters import acs_events

    events = acs_events.event_grid_events(req.get_body())
    code = acs_events.validation_code(events)
    if code is not None:
        return json_response({"validationResponse": code})
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
    return json_response({"accepted": len(ready)})
