"""The ACS Call Automation REST surface: the SDK's paths, api-version, statuses and bodies."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from emulators.acs.world import AcsError, World
from emulators.common.server import json_response

# The api-versions azure-communication-callautomation 1.6.0 knows (its ApiVersion enum).
SUPPORTED_API_VERSIONS = frozenset(
    {
        "2023-03-06",
        "2023-10-15",
        "2024-04-15",
        "2024-09-15",
        "2025-05-15",
        "2025-06-15",
        "2026-03-12",
    }
)

Body = dict[str, Any]
Params = dict[str, str]
Action = Callable[[World, Params, Body], Any]

CID = r"(?P<cid>[^/:]+)"
RID = r"(?P<rid>[^/:]+)"
CALLS = "/calling/callConnections"


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    operation: str
    status: int
    action: Action


def _route(method: str, path: str, operation: str, status: int, action: Action) -> Route:
    return Route(method, re.compile(path + r"\Z"), operation, status, action)


ROUTES: tuple[Route, ...] = (
    _route("POST", CALLS, "create", 201, lambda w, p, b: w.create_call(b)),
    _route("POST", CALLS + ":answer", "answer", 200, lambda w, p, b: w.answer_call(b)),
    _route("POST", CALLS + ":redirect", "redirect", 204, lambda w, p, b: w.redirect_call(b)),
    _route("POST", CALLS + ":reject", "reject", 204, lambda w, p, b: w.reject_call(b)),
    _route("GET", f"{CALLS}/{CID}", "getCall", 200, lambda w, p, b: w.get_call(p["cid"])),
    _route(
        "DELETE",
        f"{CALLS}/{CID}",
        "hangup",
        204,
        lambda w, p, b: w.hang_up(p["cid"], for_everyone=False),
    ),
    _route(
        "POST",
        f"{CALLS}/{CID}:terminate",
        "terminate",
        204,
        lambda w, p, b: w.hang_up(p["cid"], for_everyone=True),
    ),
    _route(
        "POST",
        f"{CALLS}/{CID}:transferToParticipant",
        "transfer",
        202,
        lambda w, p, b: w.transfer(p["cid"], b),
    ),
    _route(
        "GET",
        f"{CALLS}/{CID}/participants",
        "listParticipants",
        200,
        lambda w, p, b: w.list_participants(p["cid"]),
    ),
    _route(
        "POST",
        f"{CALLS}/{CID}/participants:add",
        "add",
        202,
        lambda w, p, b: w.add_participant(p["cid"], b),
    ),
    _route(
        "POST",
        f"{CALLS}/{CID}/participants:remove",
        "remove",
        202,
        lambda w, p, b: w.remove_participant(p["cid"], b),
    ),
    _route(
        "POST", f"{CALLS}/{CID}/participants:mute", "mute", 200, lambda w, p, b: w.mute(p["cid"], b)
    ),
    _route(
        "POST",
        f"{CALLS}/{CID}/participants:cancelAddParticipant",
        "cancelAdd",
        202,
        lambda w, p, b: w.cancel_add_participant(p["cid"], b),
    ),
    _route(
        "GET",
        f"{CALLS}/{CID}/participants/(?P<raw>[^/]+)",
        "getParticipant",
        200,
        lambda w, p, b: w.get_participant(p["cid"], p["raw"]),
    ),
    _route("POST", f"{CALLS}/{CID}:play", "play", 202, lambda w, p, b: w.play(p["cid"], b)),
    _route(
        "POST",
        f"{CALLS}/{CID}:recognize",
        "recognize",
        202,
        lambda w, p, b: w.recognize(p["cid"], b),
    ),
    _route(
        "POST",
        f"{CALLS}/{CID}:cancelAllMediaOperations",
        "cancelMedia",
        202,
        lambda w, p, b: w.cancel_media(p["cid"]),
    ),
    _route(
        "POST",
        f"{CALLS}/{CID}:sendDtmfTones",
        "sendDtmf",
        202,
        lambda w, p, b: w.send_dtmf(p["cid"], b),
    ),
    _route("POST", f"{CALLS}/{CID}:hold", "hold", 200, lambda w, p, b: w.hold(p["cid"], b)),
    _route("POST", f"{CALLS}/{CID}:unhold", "unhold", 200, lambda w, p, b: w.unhold(p["cid"], b)),
    _route(
        "POST", "/calling/recordings", "startRecording", 200, lambda w, p, b: w.start_recording(b)
    ),
    _route(
        "GET",
        f"/calling/recordings/{RID}",
        "getRecording",
        200,
        lambda w, p, b: w.get_recording(p["rid"]),
    ),
    _route(
        "DELETE",
        f"/calling/recordings/{RID}",
        "stopRecording",
        204,
        lambda w, p, b: w.stop_recording(p["rid"]),
    ),
    _route(
        "POST",
        f"/calling/recordings/{RID}:pause",
        "pauseRecording",
        202,
        lambda w, p, b: w.set_recording_paused(p["rid"], True),
    ),
    _route(
        "POST",
        f"/calling/recordings/{RID}:resume",
        "resumeRecording",
        202,
        lambda w, p, b: w.set_recording_paused(p["rid"], False),
    ),
)

# Real operations of the API that this emulator does not simulate: refused explicitly.
NOT_EMULATED = re.compile(
    CALLS + r"(:connect|/[^/:]+(:startTranscription|:stopTranscription|:updateTranscription"
    r"|:startMediaStreaming|:stopMediaStreaming|:startContinuousDtmfRecognition"
    r"|:stopContinuousDtmfRecognition|/participants:moveHere))\Z"
)


def error_response(status: int, code: str, message: str) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status)


def match(method: str, path: str) -> tuple[Route | None, Params, bool]:
    """The route for `method path`, its parameters, and whether the path exists at all."""
    path_known = False
    for route in ROUTES:
        found = route.pattern.match(path)
        if found:
            path_known = True
            if route.method == method:
                return route, found.groupdict(), True
    return None, {}, path_known


def parse_body(request: Request) -> Body:
    data = request.get_data(cache=True)
    if not data:
        return {}
    try:
        body = json.loads(data)
    except ValueError as exc:
        raise AcsError(400, "BadRequest", f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise AcsError(400, "BadRequest", "The request body must be a JSON object.")
    return body


def execute(world: World, route: Route, params: Params, request: Request) -> Response:
    fault = world.take_fault(route.operation, "http")
    if fault is not None:
        return error_response(
            fault.status, "EmulatorInjectedFault", f"Fault injected for '{route.operation}'."
        )
    try:
        body = parse_body(request) if request.method == "POST" else {}
        result = route.action(world, params, body)
    except AcsError as exc:
        return error_response(exc.status, exc.code, exc.message)
    if route.status == 204 or result is None:
        return Response(status=route.status)
    return json_response(result, route.status)
