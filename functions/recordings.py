"""The recording's audio, which the panel's recording page (the link written to D365) fetches
with the viewer's token; RecordingAccess decides who may listen."""

import azure.functions as func

from functions.invocation import http_invocation

bp = func.Blueprint()


@bp.route(route="recordings/{callId}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def recording(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition  # wired on first use, not at cold start

    viewer = composition.access().principal(req.headers.get("Authorization"))
    audio = composition.recording_playback().audio(
        req.route_params["callId"], viewer, req.headers.get("Range")
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
