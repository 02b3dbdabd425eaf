"""The recording's audio, which the panel's recording page (the link written to D365) fetches
with the viewer's token; RecordingAccess decides who may listen."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from functions.invocation import Auth, endpoint

if TYPE_CHECKING:
    from shared.services.access import Principal

bp = func.Blueprint()
AUDIO = "audio/*"


@endpoint(
    bp,
    "GET",
    "recordings/{callId}",
    auth=Auth.SIGNED_IN,
    errors=(400, 404, 503),
    responses={200: AUDIO, 206: AUDIO},
)
def recording(req: func.HttpRequest, principal: Principal) -> func.HttpResponse:
    """The call's recording audio

    For supervisors, the call's own agents, and anyone Dataverse lets read the call's Phone
    Call activity (asked as the viewer, with `CallerObjectId`); others 403. The link written to
    D365 is the panel page `/api/panel/recording.html?callId=...`, which plays this. A
    `Range: bytes=<start>-<end>` header gets 206 with that part; a range outside the recording
    is 404."""
    from shared import composition  # wired on first use, not at cold start

    audio = composition.recording_playback().audio(
        req.route_params["callId"], principal, req.headers.get("Range")
    )
    headers = {
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-store",  # behind a token: never in a shared cache
        "Content-Disposition": f'inline; filename="call-{req.route_params["callId"]}"',
    }
    if audio.content_range:
        headers["Content-Range"] = audio.content_range
    return func.HttpResponse(
        audio.content, status_code=audio.status, headers=headers, mimetype=audio.content_type
    )
