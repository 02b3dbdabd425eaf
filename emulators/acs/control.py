"""The ACS emulator's control API (JSON under /_control/): drive the simulated world, read it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from emulators.acs.world import AcsError
from emulators.common.server import EmulatorApp, json_response

if TYPE_CHECKING:
    from emulators.acs.emulator import AcsEmulator

CONFIG_FIELDS = {
    "incomingCallWebhook": "incoming_call_webhook",
    "recordingWebhook": "recording_webhook",
    "acsNumbers": "acs_numbers",
    "ringTimeoutSeconds": "ring_timeout_seconds",
    "allowHttpCallbacks": "allow_http_callbacks",
    "recordingContentRequiresAuth": "recording_content_requires_auth",
}
DELIVERY_FIELDS = {
    "duplicate": "duplicate",
    "reorder": "reorder",
    "copies": "copies",
    "maxAttempts": "max_attempts",
    "retryDelaySeconds": "retry_delay_seconds",
    "timeoutSeconds": "timeout_seconds",
}


def _body(request: Request) -> dict[str, Any]:
    data = request.get_data(cache=True)
    if not data:
        return {}
    try:
        body = json.loads(data)
    except ValueError as exc:
        raise AcsError(400, "BadRequest", f"Body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise AcsError(400, "BadRequest", "Body must be a JSON object.")
    return body


def _required(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise AcsError(400, "BadRequest", f"'{name}' (string) is required.")
    return value


def _renamed(body: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    unknown = set(body) - set(fields)
    if unknown:
        raise AcsError(
            400, "BadRequest", f"Unknown fields {sorted(unknown)}; known: {sorted(fields)}."
        )
    return {fields[k]: v for k, v in body.items()}


def _register_identity(emulator: AcsEmulator, raw_id: str) -> dict[str, Any]:
    try:
        emulator.identities.register(raw_id)
    except ValueError as exc:
        raise AcsError(400, "BadRequest", str(exc)) from None
    return {"id": raw_id}


def register(app: EmulatorApp, emulator: AcsEmulator) -> None:
    """Add the /_control/ routes to `app`; each handler calls the emulator's public methods."""

    def handle(fn: Any) -> Any:
        def handler(request: Request, **values: Any) -> Response:
            try:
                result = fn(_body(request) if request.method in ("POST", "PUT") else {}, **values)
            except AcsError as exc:
                return json_response(
                    {"error": {"code": exc.code, "message": exc.message}}, exc.status
                )
            except TypeError as exc:
                return json_response({"error": {"code": "BadRequest", "message": str(exc)}}, 400)
            return json_response(result if result is not None else {"ok": True})

        return handler

    def add(rule: str, methods: list[str], fn: Any) -> None:
        app.route("/_control" + rule, methods, handle(fn))

    add("/state", ["GET"], lambda b: emulator.state())
    add("/reset", ["POST"], lambda b: emulator.reset())
    add("/config", ["POST"], lambda b: emulator.configure(**_renamed(b, CONFIG_FIELDS)))
    add("/delivery", ["GET"], lambda b: emulator.delivery_settings())
    add("/delivery", ["POST"], lambda b: emulator.set_delivery(**_renamed(b, DELIVERY_FIELDS)))
    add(
        "/incoming-calls",
        ["POST"],
        lambda b: emulator.place_call(
            _required(b, "from"),
            _required(b, "to"),
            b.get("callerDisplayName", ""),
            b.get("customContext"),
        ),
    )
    add("/incoming-calls", ["GET"], lambda b: emulator.state()["incomingCalls"])
    add("/calls", ["GET"], lambda b: emulator.state()["calls"])
    add("/calls/<cid>", ["GET"], lambda b, cid: emulator.call(cid))
    add("/ringing", ["GET"], lambda b: emulator.ringing())
    add(
        "/devices/answer",
        ["POST"],
        lambda b: emulator.device_answer(_required(b, "device"), b.get("callConnectionId")),
    )
    add(
        "/devices/decline",
        ["POST"],
        lambda b: emulator.device_decline(_required(b, "device"), b.get("callConnectionId")),
    )
    add(
        "/devices/no-answer",
        ["POST"],
        lambda b: emulator.device_no_answer(_required(b, "device"), b.get("callConnectionId")),
    )
    add(
        "/participants/hang-up",
        ["POST"],
        lambda b: emulator.hang_up(_required(b, "participant"), b.get("callConnectionId")),
    )
    add(
        "/participants/press",
        ["POST"],
        lambda b: emulator.press(
            _required(b, "participant"), _required(b, "tones"), b.get("callConnectionId")
        ),
    )
    add("/identities", ["GET"], lambda b: {"identities": emulator.identities.identities()})
    add("/identities", ["POST"], lambda b: _register_identity(emulator, _required(b, "id")))
    add("/recordings", ["GET"], lambda b: emulator.recordings())
    add("/requests", ["GET"], lambda b: emulator.requests_log())
    add("/deliveries", ["GET"], lambda b: emulator.deliveries())
    add("/idle", ["GET"], lambda b: {"idle": emulator.idle()})
    add("/faults", ["GET"], lambda b: emulator.state()["faults"])
    add(
        "/faults",
        ["POST"],
        lambda b: emulator.add_fault(
            _required(b, "operation"),
            b.get("mode", "http"),
            int(b.get("status", 500)),
            int(b.get("count", 1)),
        ),
    )
    add(
        "/eventgrid/validate",
        ["POST"],
        lambda b: emulator.validate_subscription(b.get("subscription", "incomingCall")),
    )
