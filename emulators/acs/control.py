"""The ACS emulator's control API: `Controls` drive the simulated world and read it in-process
(`AcsEmulator` is one); `ControlApi` serves the same operations as JSON under /_control/."""

from __future__ import annotations

import json
import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from emulators.acs.delivery import DeliverySettings, Outgoing, now_iso
from emulators.acs.surface import AcsParts, error_response
from emulators.acs.world import AcsError, Fault
from emulators.common.server import EmulatorApp, json_response

CONFIG_FIELDS = {
    "incomingCallWebhook": "incoming_call_webhook",
    "recordingWebhook": "recording_webhook",
    "acsNumbers": "acs_numbers",
    "ringTimeoutSeconds": "ring_timeout_seconds",
    "allowHttpCallbacks": "allow_http_callbacks",
    "recordingContentRequiresAuth": "recording_content_requires_auth",
}
DELIVERY_FIELDS = {
    "parallelism": "parallelism",
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


class Controls:
    """The control operations over one emulator's parts."""

    def __init__(self, parts: AcsParts) -> None:
        self.parts = parts
        self.world = parts.world
        self.deliverer = parts.deliverer

    def reset(self) -> dict[str, Any]:
        """Back to the state right after start: no calls, no logs, no faults, default delivery."""
        self.world.reset()
        self.deliverer.reset()
        self.parts.requests.clear()
        for reset in self.parts.resets:
            reset()
        return {"ok": True}

    def configure(self, **changes: Any) -> dict[str, Any]:
        self.world.configure(**changes)
        config: dict[str, Any] = self.state()["config"]
        return config

    def set_webhooks(
        self, *, incoming_call: str | None = None, recording: str | None = None
    ) -> None:
        changes = {}
        if incoming_call is not None:
            changes["incoming_call_webhook"] = incoming_call
        if recording is not None:
            changes["recording_webhook"] = recording
        self.world.configure(**changes)

    def delivery_settings(self) -> dict[str, Any]:
        return self.deliverer.settings.to_json()

    def set_delivery(self, **changes: Any) -> dict[str, Any]:
        settings: DeliverySettings = self.deliverer.configure(**changes)
        return settings.to_json()

    def place_call(
        self,
        from_number: str,
        to_number: str,
        caller_display_name: str = "",
        custom_context: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return self.world.place_call(from_number, to_number, caller_display_name, custom_context)

    def device_answer(self, device: str, call_connection_id: str | None = None) -> dict[str, Any]:
        return self.world.device_answer(device, call_connection_id)

    def device_decline(self, device: str, call_connection_id: str | None = None) -> dict[str, Any]:
        return self.world.device_decline(device, call_connection_id)

    def device_no_answer(
        self, device: str, call_connection_id: str | None = None
    ) -> dict[str, Any]:
        return self.world.device_no_answer(device, call_connection_id)

    def hang_up(self, participant: str, call_connection_id: str | None = None) -> dict[str, Any]:
        return self.world.participant_hang_up(participant, call_connection_id)

    def press(
        self, participant: str, tones: str, call_connection_id: str | None = None
    ) -> dict[str, Any]:
        return self.world.press(participant, tones, call_connection_id)

    def add_fault(
        self, operation: str, mode: str = "http", status: int = 500, count: int = 1
    ) -> dict[str, Any]:
        fault: Fault = self.world.add_fault(operation, mode, status, count)
        return fault.to_json()

    def state(self) -> dict[str, Any]:
        return self.world.state_json()

    def call(self, call_connection_id: str) -> dict[str, Any]:
        return self.world.call_json(call_connection_id)

    def ringing(self) -> list[dict[str, Any]]:
        return self.world.ringing_json()

    def recordings(self) -> list[dict[str, Any]]:
        return self.world.recordings_json()

    def requests_log(self) -> list[dict[str, Any]]:
        return self.parts.requests.entries()

    def deliveries(self) -> list[dict[str, Any]]:
        return self.deliverer.log()

    def idle(self) -> bool:
        """True when every queued event has been delivered (or given up on) and no play is
        still downloading its files."""
        return self.world.media_idle() and self.deliverer.idle()

    def validate_subscription(self, subscription: str) -> dict[str, Any]:
        """Event Grid's subscription handshake against a configured webhook, synchronously."""
        urls = {
            "incomingCall": self.world.config.incoming_call_webhook,
            "recording": self.world.config.recording_webhook,
        }
        if subscription not in urls:
            raise AcsError(400, "BadRequest", f"subscription must be one of {sorted(urls)}")
        url = urls[subscription]
        if not url:
            return {"validated": False, "error": "no webhook configured"}
        code = str(uuid.uuid4()).upper()
        event_id, event_type = str(uuid.uuid4()), "Microsoft.EventGrid.SubscriptionValidationEvent"
        event = {
            "id": event_id,
            "topic": self.world.topic,
            "subject": "",
            "data": {
                "validationCode": code,
                "validationUrl": f"{self.parts.url}/_control/eventgrid/validate",
            },
            "eventType": event_type,
            "eventTime": now_iso(),
            "metadataVersion": "1",
            "dataVersion": "1",
        }
        status, body = self.deliverer.post_now(
            Outgoing(
                kind="eventgrid",
                event_type=event_type,
                event_id=event_id,
                url=url,
                body=[event],
            ),
            {"aeg-event-type": "SubscriptionValidation"},
        )
        validated = (
            200 <= status < 300
            and isinstance(body, dict)
            and body.get("validationResponse") == code
        )
        return {"validated": validated, "status": status, "response": body}


def register(app: EmulatorApp, emulator: Controls) -> None:
    """Add the /_control/ routes to `app`; each handler calls one of the `Controls`."""

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


class _ControlRouter(EmulatorApp):
    def not_found(self, request: Request) -> Response:
        return error_response(404, "NotFound", f"No resource at '{request.path}'.")


class ControlApi:
    """/_control/*: JSON in, JSON out; no authentication (a local test tool)."""

    prefix = "/_control/"

    def __init__(self, parts: AcsParts) -> None:
        self._router = _ControlRouter()
        register(self._router, Controls(parts))

    def handle(self, request: Request) -> Response:
        return self._router.dispatch(request)
