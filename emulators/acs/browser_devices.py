"""The browser's side of an ACS user: what the ACS Calling SDK does in the agent's panel (ring,
answer, decline, mute, leave), as a small JSON API on loopback HTTP for the panel's local device
adapter. Authenticated by the ACS user access token the Identity API issued (scope voip), so the
panel code path (fetch a token from /api/me/acs-token, sign in the device) is the same as with
the real SDK."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from emulators.acs.world import AcsError
from emulators.common.server import EmulatorApp, RunningServer, json_response

if TYPE_CHECKING:
    from emulators.acs.identity import IdentityService
    from emulators.acs.world import Call, Invitation, World

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
                invitation = self._ring(user, _ring_id(request))
                if action == "answer":
                    self.world.device_answer(user, invitation.call_connection_id)
                else:
                    self.world.device_decline(user, invitation.call_connection_id)
            elif action in ("mute", "unmute"):
                self.set_muted(user, action == "mute")
            else:
                self.world.participant_hang_up(user)
            return json_response(self.device_json(user))

        return handle

    # ---- the device -------------------------------------------------------------------------

    def _ring(self, user: str, ring_id: str) -> Invitation:
        with self.world._lock:
            invitation = self.world.invitations.get(ring_id)
        if invitation is None or invitation.raw_id != user:
            raise AcsError(404, "NotRinging", f"Nothing with ringId '{ring_id}' rings here.")
        return invitation

    def _connected_calls(self, user: str) -> list[Call]:
        return [c for c in self.world.calls.values() if c.active and user in c.participants]

    def set_muted(self, user: str, muted: bool) -> None:
        """The SDK's mute()/unmute(): the participant's isMuted in every call it is in."""
        with self.world._lock:
            calls = self._connected_calls(user)
            if not calls:
                raise AcsError(409, "NotInCall", "The device is not in a call.")
            for call in calls:
                participant = call.participants[user]
                if participant.is_muted != muted:
                    participant.is_muted = muted
                    self.world._participants_updated(call)

    def device_json(self, user: str) -> dict[str, Any]:
        with self.world._lock:
            ringing = []
            for invitation in self.world.invitations.values():
                if invitation.raw_id != user:
                    continue
                call = self.world.calls.get(invitation.call_connection_id or "")
                entry: dict[str, Any] = {
                    "ringId": invitation.invitation_id,
                    "from": _caller(call, user),
                }
                headers = invitation.voip_headers
                if headers.get("callId"):
                    entry["callId"] = headers["callId"]
                if headers.get("rejoin") == "true":
                    entry["rejoin"] = True
                ringing.append(entry)
            calls = self._connected_calls(user)
            return {
                "communicationUserId": user,
                "ringing": ringing,
                "connected": bool(calls),
                "muted": any(c.participants[user].is_muted for c in calls),
            }


def _ring_id(request: Request) -> str:
    try:
        body = json.loads(request.get_data() or b"{}")
    except ValueError:
        body = None
    ring_id = body.get("ringId") if isinstance(body, dict) else None
    if not isinstance(ring_id, str) or not ring_id:
        raise AcsError(400, "BadRequest", "'ringId' (string) is required.")
    return ring_id


def _caller(call: Call | None, user: str) -> str:
    """Who the ring is from, as the SDK's callerInfo shows it: the customer's number."""
    if call is None:
        return ""
    raw = call.customer_raw if call.customer_raw != user else ""
    if not raw and call.source_caller_id_number:
        raw = str(call.source_caller_id_number.get("rawId", ""))
    return raw[2:] if raw.startswith("4:") else raw
