"""The recording link written to D365: the audio, for a signed-in agent or supervisor."""

from __future__ import annotations

import azure.functions as func

from functions.invocation import Auth, endpoint

bp = func.Blueprint()
AUDIO = "audio/*"


@endpoint(
    bp,
    "GET",
    "recordings/{callId}",
    auth=Auth.STAFF,
    errors=(400, 404, 503),
    responses={200: AUDIO, 206: AUDIO},
)
def recording(req: func.HttpRequest) -> func.HttpResponse:
    """The call's recording audio (agents and supervisors)

    A `Range: bytes=<start>-<end>` header gets 206 with that part; a range outside the
    recording is 404."""
    from shared import composition  # wired on first use, not at cold start

    audio = composition.recording_playback().audio(
        req.route_params["callId"], req.headers.get("Range")
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
