"""The browser's side of an ACS user: what the ACS Calling SDK does in the agent's panel (ring,
answer, decline, mute, leave), as a small JSON API on loopback HTTP for the panel's local device
adapter. Authenticated by the ACS user access token the Identity API issued (scope voip), so the
panel code path (fetch a token from /api/me/acs-token, sign in the device) is the same as with
the real SDK."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from emulators.acs.errors import AcsError
from emulators.common.server import EmulatorApp, RunningServer, json_response

if TYPE_CHECKING:
    from emulators.acs.identity_store import IdentityService
    from emulators.acs.world import World

CORS_HEADERS = "Authorization, Content-Type"


def _cors(request: Request, response: Response) -> Response:
    """Any origin may drive the device: it is a loopback stand-in for code inside the page."""
    origin = request.headers.get("Origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    return response


class BrowserDevices:
    """The device API's server (plain HTTP, its own port) over the emulator's world."""

    def __init__(
        self, world: World, identities: IdentityService, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.world, self.identities = world, identities
        self._app = EmulatorApp()
        for action in ("answer", "decline", "mute", "unmute", "leave"):
            self._app.route(f"/devices/me/{action}", ["POST"], self._action(action))
        self._app.route("/devices/me", ["GET"], self._me)
        self._server = RunningServer(self._wsgi, host, port)
        self.url = self._server.url

    def start(self) -> BrowserDevices:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    # ---- HTTP ---------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.method == "OPTIONS":
            response = Response(status=204)
        else:
            try:
                response = self._app.dispatch(request)
            except AcsError as exc:
                response = json_response(
                    {"error": {"code": exc.code, "message": exc.message}}, exc.status
                )
        return _cors(request, response)(environ, start_response)

    def _user(self, request: Request) -> str:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        user = self.identities.user_of(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise AcsError(
                401,
                "InvalidAuthenticationToken",
                "An ACS user access token with the voip scope is required "
                "(Authorization: Bearer <token>).",
            )
        return user

    def _me(self, request: Request) -> Response:
        return json_response(self.device_json(self._user(request)))

    def _action(self, action: str) -> Any:
        def handle(request: Request) -> Response:
            user = self._user(request)
            if action in ("answer", "decline"):
                connection = self.world.device_ring(user, _ring_id(request))
                if action == "answer":
                    self.world.device_answer(user, connection)
                else:
                    self.world.device_decline(user, connection)
            elif action in ("mute", "unmute"):
                self.world.device_set_muted(user, action == "mute")
            else:
                self.world.participant_hang_up(user)
            return json_response(self.device_json(user))

        return handle

    def device_json(self, user: str) -> dict[str, Any]:
        return self.world.device_view(user)


def _ring_id(request: Request) -> str:
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError:
        body = None
    ring_id = body.get("ringId") if isinstance(body, dict) else None
    if not isinstance(ring_id, str) or not ring_id:
        raise AcsError(400, "BadRequest", "'ringId' (string) is required.")
    return ring_id
