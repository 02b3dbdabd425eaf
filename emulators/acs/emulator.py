"""The ACS Call Automation emulator: HTTPS server, HMAC auth, REST surface, callback keys,
recording content, control API; `start()` runs one in-process."""

from __future__ import annotations

import base64
import binascii
import re
import threading
import uuid
from collections import OrderedDict
from typing import Any

from werkzeug.wrappers import Request, Response

from emulators.acs import control, hmac_auth, rest
from emulators.acs.browser_devices import BrowserDevices
from emulators.acs.delivery import Deliverer, DeliverySettings, Outgoing, now_iso
from emulators.acs.identity import IdentityService
from emulators.acs.tokens import ISSUER, CallbackSigner
from emulators.acs.world import AcsError, Fault, World, WorldConfig
from emulators.common.server import EmulatorApp, RunningServer, json_response
from emulators.common.tls import LocalTLS

DEFAULT_ACS_NUMBERS = ["+358930000001", "+358930000002"]
DEFAULT_TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local"
    "/providers/Microsoft.Communication/communicationServices/acs-emulator"
)
OBJECT_PATH = re.compile(r"/v1/objects/(?P<doc>[^/]+)(?P<rest>/content/(audio|acsmetadata))?\Z")
RANGE = re.compile(r"bytes=(\d+)-(\d*)\Z")
REPEATABILITY_CACHE = 1000
LOG_LIMIT = 10_000


class AcsApp(EmulatorApp):
    """Routes /calling/* and /v1/objects/* itself (ACS paths put ':action' after an id, which
    werkzeug rules cannot split); /_control/* goes through the werkzeug rules."""

    def __init__(self, emulator: AcsEmulator) -> None:
        super().__init__()
        self.emulator = emulator
        control.register(self, emulator)

    def not_found(self, request: Request) -> Response:
        return rest.error_response(404, "NotFound", f"No resource at '{request.path}'.")

    def dispatch(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_control/"):
            return super().dispatch(request)
        if path == "/calling/keys" and request.method == "GET":
            return json_response(self.emulator.signer.jwks())
        if path == "/calling/.well-known/acsopenidconfiguration" and request.method == "GET":
            return json_response(
                {
                    "issuer": ISSUER,
                    "jwks_uri": f"{self.emulator.url}/calling/keys",
                    "id_token_signing_alg_values_supported": ["RS256"],
                }
            )
        if path.startswith("/calling/"):
            return self.emulator.handle_rest(request)
        if path.startswith("/identities"):
            return self.emulator.handle_identity(request)
        if path.startswith("/v1/objects/"):
            return self.emulator.handle_object(request)
        return self.not_found(request)


class AcsEmulator:
    """One running emulator. Control methods work in-process as well as over /_control/."""

    def __init__(
        self,
        *,
        tls: LocalTLS,
        port: int,
        access_key: str,
        resource_id: str,
        incoming_call_webhook: str | None,
        recording_webhook: str | None,
        acs_numbers: list[str],
        host: str = "127.0.0.1",
        topic: str = DEFAULT_TOPIC,
        device_port: int = 0,
    ) -> None:
        try:
            base64.b64decode(access_key, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("access_key must be base64, as an ACS access key is") from exc
        self.access_key = access_key
        self.resource_id = resource_id
        self.tls = tls
        self.signer = CallbackSigner(resource_id)
        self.identities = IdentityService(resource_id)
        self.deliverer = Deliverer(verify=str(tls.ca_path), signer=self.signer)
        self._log_lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._repeatability: OrderedDict[str, tuple[int, bytes, str]] = OrderedDict()
        self._server = RunningServer(AcsApp(self), host, port, tls.server_context())
        self.url = self._server.url
        self.port = self._server.port
        self.world = World(
            base_url=self.url,
            resource_id=resource_id,
            deliverer=self.deliverer,
            topic=topic,
            config=WorldConfig(
                acs_numbers=tuple(acs_numbers),
                incoming_call_webhook=incoming_call_webhook,
                recording_webhook=recording_webhook,
            ),
        )
        self._server.start()
        # The browser device API (emulators/acs/browser_devices.py): plain HTTP, its own port.
        self.devices = BrowserDevices(self.world, self.identities, host=host, port=device_port)
        self.devices.start()
        self.device_url = self.devices.url

    # -- facts for clients ------------------------------------------------------------------------

    @property
    def connection_string(self) -> str:
        return f"endpoint={self.url};accesskey={self.access_key}"

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/calling/keys"

    @property
    def issuer(self) -> str:
        return ISSUER

    @property
    def app_identity(self) -> str:
        return self.world.app_identity

    def stop(self) -> None:
        self.devices.stop()
        self._server.stop()
        self.world.stop()
        self.deliverer.stop()

    # -- HTTP: ACS REST surface -------------------------------------------------------------------

    def _log(
        self, request: Request, operation: str | None, status: int, repeated: bool = False
    ) -> None:
        entry = {
            "at": now_iso(),
            "method": request.method,
            "path": _raw_uri(request),
            "operation": operation,
            "status": status,
            "repeated": repeated,
        }
        with self._log_lock:
            self._requests.append(entry)
            del self._requests[:-LOG_LIMIT]

    def _authenticate(self, request: Request, hosts: list[str]) -> Response | None:
        failure = hmac_auth.verify(
            access_key=self.access_key,
            verb=request.method,
            path_and_query=_raw_uri(request),
            hosts=hosts,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=request.get_data(cache=True),
        )
        if failure is None:
            return None
        return rest.error_response(401, failure.code, failure.message)

    def handle_rest(self, request: Request) -> Response:
        response = self._handle_rest(request)
        client_request_id = request.headers.get("x-ms-client-request-id")
        if client_request_id:
            response.headers["x-ms-client-request-id"] = client_request_id
        return response

    def _handle_rest(self, request: Request) -> Response:
        denied = self._authenticate(request, [request.host])
        if denied is not None:
            self._log(request, None, denied.status_code)
            return denied
        route, params, path_known = rest.match(request.method, request.path)
        operation = route.operation if route else None
        api_version = request.args.get("api-version")
        if not api_version:
            response = rest.error_response(
                400, "MissingApiVersionParameter", "The api-version query parameter is required."
            )
        elif api_version not in rest.SUPPORTED_API_VERSIONS:
            response = rest.error_response(
                400,
                "UnsupportedApiVersion",
                f"The HTTP resource that matches the request URI '{request.url}' does not "
                f"support the API version '{api_version}'.",
            )
        elif route is None and rest.NOT_EMULATED.match(request.path):
            response = rest.error_response(
                501, "NotImplemented", "This operation is not simulated by the emulator."
            )
        elif route is None:
            response = (
                rest.error_response(405, "MethodNotAllowed", request.method)
                if path_known
                else self.app_not_found(request)
            )
        else:
            return self._execute(request, route, params)
        self._log(request, operation, response.status_code)
        return response

    def handle_identity(self, request: Request) -> Response:
        """ACS Identity (emulators/acs/identity.py), HMAC-signed like every resource call."""
        denied = self._authenticate(request, [request.host])
        response = denied if denied is not None else self.identities.handle(request)
        self._log(request, "identity", response.status_code)
        return response

    def app_not_found(self, request: Request) -> Response:
        return rest.error_response(404, "NotFound", f"No resource at '{request.path}'.")

    def _execute(self, request: Request, route: rest.Route, params: rest.Params) -> Response:
        # Repeatability-Request-ID: a retried write gets the first answer, not a second effect.
        request_id = request.headers.get("Repeatability-Request-ID")
        key = f"{request.method} {request.path} {request_id}" if request_id else None
        if key is not None:
            with self._log_lock:
                cached = self._repeatability.get(key)
            if cached is not None:
                status, data, content_type = cached
                self._log(request, route.operation, status, repeated=True)
                return Response(data or None, status=status, content_type=content_type)
        response = rest.execute(self.world, route, params, request)
        if key is not None and response.status_code < 500:
            with self._log_lock:
                self._repeatability[key] = (
                    response.status_code,
                    response.get_data(),
                    response.content_type or "application/json",
                )
                while len(self._repeatability) > REPEATABILITY_CACHE:
                    self._repeatability.popitem(last=False)
        self._log(request, route.operation, response.status_code)
        return response

    # -- HTTP: recording content (what contentLocation/metadataLocation/deleteLocation point at) --

    def handle_object(self, request: Request) -> Response:
        found = OBJECT_PATH.match(request.path)
        if found is None:
            response = self.app_not_found(request)
        elif (
            self.world.config.recording_content_requires_auth
            and (
                denied := self._authenticate(
                    request, [request.host, request.headers.get("x-ms-host", "")]
                )
            )
            is not None
        ):
            response = denied
        else:
            response = self._object(request, found["doc"], found["rest"])
        self._log(request, "recordingContent", response.status_code)
        return response

    def _object(self, request: Request, document_id: str, suffix: str | None) -> Response:
        missing = rest.error_response(404, "NotFound", f"No recording document '{document_id}'.")
        if suffix is None:
            if request.method != "DELETE":
                return rest.error_response(405, "MethodNotAllowed", request.method)
            return (
                Response(status=200)
                if self.world.delete_recording_content(document_id)
                else missing
            )
        if request.method != "GET":
            return rest.error_response(405, "MethodNotAllowed", request.method)
        if suffix.endswith("acsmetadata"):
            metadata = self.world.recording_metadata(document_id)
            return missing if metadata is None else json_response(metadata)
        content = self.world.recording_content(document_id)
        if content is None:
            return missing
        ranged = RANGE.match(request.headers.get("Range", ""))
        if ranged:
            start = int(ranged[1])
            end = int(ranged[2]) if ranged[2] else len(content) - 1
            return Response(
                content[start : end + 1],
                status=206,
                content_type="audio/wav",
                headers={"Content-Range": f"bytes {start}-{end}/{len(content)}"},
            )
        return Response(content, status=200, content_type="audio/wav")

    # -- control (in-process; /_control/ calls these) ---------------------------------------------

    def reset(self) -> dict[str, Any]:
        """Back to the state right after start: no calls, no logs, no faults, default delivery."""
        self.world.reset()
        self.deliverer.reset()
        with self._log_lock:
            self._requests.clear()
            self._repeatability.clear()
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
        with self._log_lock:
            return [dict(entry) for entry in self._requests]

    def deliveries(self) -> list[dict[str, Any]]:
        return self.deliverer.log()

    def idle(self) -> bool:
        """True when every queued event has been delivered (or given up on)."""
        return self.deliverer.idle()

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
                "validationUrl": f"{self.url}/_control/eventgrid/validate",
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


def _raw_uri(request: Request) -> str:
    """The request target exactly as sent (the SDK signs the still-encoded path and query)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    query = request.query_string.decode()
    return request.path + (f"?{query}" if query else "")


def start(
    *,
    tls: LocalTLS,
    port: int = 0,
    access_key: str,
    resource_id: str,
    incoming_call_webhook: str | None = None,
    recording_webhook: str | None = None,
    acs_numbers: list[str] | None = None,
    host: str = "127.0.0.1",
    device_port: int = 0,
) -> AcsEmulator:
    """Start an ACS emulator on `host:port` (0 = a free port) over HTTPS with the local CA.

    Webhook URLs are whole URLs (with `?code=` when the Functions host wants a key). The browser
    device API listens on plain HTTP at `device_port` (0 = a free port): `.device_url`.
    """
    return AcsEmulator(
        tls=tls,
        port=port,
        access_key=access_key,
        resource_id=resource_id,
        incoming_call_webhook=incoming_call_webhook,
        recording_webhook=recording_webhook,
        acs_numbers=list(acs_numbers or DEFAULT_ACS_NUMBERS),
        host=host,
        device_port=device_port,
    )
