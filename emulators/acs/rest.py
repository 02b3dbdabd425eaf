"""The ACS Call Automation REST surface (/calling/): the SDK's paths, api-version, statuses and
bodies, the HMAC check, Repeatability-Request-ID, and the callback signing keys."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from emulators.acs.surface import AcsParts, error_response
from emulators.acs.tokens import ISSUER
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


class CallAutomation:
    """/calling/*: the REST operations (HMAC-signed, api-version checked) and the public keys
    the callback JWTs are signed with. ACS paths put ':action' after an id, which werkzeug
    rules cannot split: `ROUTES` are regular expressions."""

    prefix = "/calling/"

    def __init__(self, parts: AcsParts) -> None:
        self.parts = parts

    def handle(self, request: Request) -> Response:
        path = request.path
        if path == "/calling/keys" and request.method == "GET":
            return json_response(self.parts.signer.jwks())
        if path == "/calling/.well-known/acsopenidconfiguration" and request.method == "GET":
            return json_response(
                {
                    "issuer": ISSUER,
                    "jwks_uri": f"{self.parts.url}/calling/keys",
                    "id_token_signing_alg_values_supported": ["RS256"],
                }
            )
        response = self._handle(request)
        client_request_id = request.headers.get("x-ms-client-request-id")
        if client_request_id:
            response.headers["x-ms-client-request-id"] = client_request_id
        return response

    def _handle(self, request: Request) -> Response:
        log = self.parts.requests
        denied = self.parts.authenticate(request, [request.host])
        if denied is not None:
            log.add(request, None, denied.status_code)
            return denied
        route, params, path_known = match(request.method, request.path)
        operation = route.operation if route else None
        api_version = request.args.get("api-version")
        if not api_version:
            response = error_response(
                400, "MissingApiVersionParameter", "The api-version query parameter is required."
            )
        elif api_version not in SUPPORTED_API_VERSIONS:
            response = error_response(
                400,
                "UnsupportedApiVersion",
                f"The HTTP resource that matches the request URI '{request.url}' does not "
                f"support the API version '{api_version}'.",
            )
        elif route is None and NOT_EMULATED.match(request.path):
            response = error_response(
                501, "NotImplemented", "This operation is not simulated by the emulator."
            )
        elif route is None:
            response = (
                error_response(405, "MethodNotAllowed", request.method)
                if path_known
                else error_response(404, "NotFound", f"No resource at '{request.path}'.")
            )
        else:
            return self._execute(request, route, params)
        log.add(request, operation, response.status_code)
        return response

    def _execute(self, request: Request, route: Route, params: Params) -> Response:
        # Repeatability-Request-ID: a retried write gets the first answer, not a second effect.
        log = self.parts.requests
        request_id = request.headers.get("Repeatability-Request-ID")
        key = f"{request.method} {request.path} {request_id}" if request_id else None
        if key is not None:
            cached = log.repeated(key)
            if cached is not None:
                status, data, content_type = cached
                log.add(request, route.operation, status, repeated=True)
                return Response(data or None, status=status, content_type=content_type)
        response = execute(self.parts.world, route, params, request)
        if key is not None and response.status_code < 500:
            log.remember(
                key,
                (
                    response.status_code,
                    response.get_data(),
                    response.content_type or "application/json",
                ),
            )
        log.add(request, route.operation, response.status_code)
        return response
