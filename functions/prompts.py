"""The pools' uploaded prompts (§7 2.3 3b "Create new prompt"; docs/pools.md): supervisors
upload, list and delete them; ACS fetches the audio through the signed link the call flow gives
it when a pool's action plays one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import azure.functions as func

from functions.invocation import NO_STORE, Auth, TextQuery, endpoint
from shared.domain.prompt_limits import MAX_NAME_LENGTH, MAX_PROMPT_BYTES, PROMPT_MEDIA_TYPES

if TYPE_CHECKING:
    from shared.views import PoolPrompts, PromptView

bp = func.Blueprint()
NAME = TextQuery(
    "name",
    required=True,
    min_length=1,
    max_length=MAX_NAME_LENGTH,
    description="What supervisors call the prompt, e.g. Christmas closure",
)
EXPIRES = TextQuery("expires", required=True, description="The link's expiry (epoch seconds)")
SIGNATURE = TextQuery("sig", required=True, description="The link's signature")


@endpoint(
    bp,
    "POST",
    "supervisor/pools/{poolId}/prompts",
    auth=Auth.SUPERVISOR,
    status=201,
    errors=(404, 422, 503),
    query=(NAME,),
    body_media=PROMPT_MEDIA_TYPES,
    max_body=MAX_PROMPT_BYTES,
)
def upload_prompt(req: func.HttpRequest, principal: Any) -> PromptView:
    """Supervisors: upload an audio prompt for the pool (§7 2.3 3b)

    The body is the WAV file itself: 16-bit PCM, mono, 16 kHz (what ACS plays), at most 300
    seconds. A wrong media type is 415, a bigger file 413, another format or a longer one 422
    naming what is wrong. The same audio uploaded again answers the same prompt. Name it in
    an action of the pool's settings as `"prompt": <id>`."""
    from shared import composition

    return composition.prompt_library().upload(
        req.route_params["poolId"],
        NAME.read(req),
        req.headers.get("Content-Type") or "",
        req.get_body() or b"",
        principal,
        datetime.now(UTC),
    )


@endpoint(
    bp,
    "GET",
    "supervisor/pools/{poolId}/prompts",
    auth=Auth.SUPERVISOR,
    errors=(404,),
    headers=NO_STORE,
)
def pool_prompts(req: func.HttpRequest) -> PoolPrompts:
    """Supervisors: the pool's uploaded prompts, oldest first"""
    from shared import composition

    return composition.prompt_library().prompts(req.route_params["poolId"])


@endpoint(
    bp,
    "DELETE",
    "supervisor/pools/{poolId}/prompts/{promptId}",
    auth=Auth.SUPERVISOR,
    status=204,
    errors=(404, 409, 503),
)
def delete_prompt(req: func.HttpRequest) -> None:
    """Supervisors: delete an uploaded prompt

    409 while one of the pool's actions names it: change the settings first."""
    from shared import composition

    composition.prompt_library().delete(req.route_params["poolId"], req.route_params["promptId"])


@endpoint(
    bp,
    "GET",
    "prompts/{poolId}/{promptId}/audio.wav",
    auth=Auth.PUBLIC,
    errors=(403, 404, 503),
    query=(EXPIRES, SIGNATURE),
    responses={200: "audio/wav"},
)
def prompt_audio(req: func.HttpRequest) -> func.HttpResponse:
    """The prompt's audio, for ACS to play

    Reached only through the short-lived signed link the call flow hands ACS in its play
    request (expires, sig); a wrong or expired link is 403."""
    from shared import composition

    audio = composition.prompt_library().audio(
        req.route_params["poolId"],
        req.route_params["promptId"],
        EXPIRES.read(req) or "",
        SIGNATURE.read(req) or "",
        datetime.now(UTC),
    )
    return func.HttpResponse(
        audio,
        status_code=200,
        mimetype="audio/wav",
        headers={"Cache-Control": "private, max-age=900"},
    )
