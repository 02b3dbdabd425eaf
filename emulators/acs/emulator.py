"""The ACS Call Automation emulator: one HTTPS server whose REST surfaces (`SURFACES`) share the
simulated world, the event deliverer, the callback signer and the request log; `start()` runs
one in-process."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from emulators.acs.browser_devices import BrowserDevices
from emulators.acs.control import ControlApi, Controls
from emulators.acs.delivery import Deliverer
from emulators.acs.email import EmailControls, Emails
from emulators.acs.identity import Identities, IdentityControls
from emulators.acs.identity_store import IdentityService
from emulators.acs.objects import RecordingContent
from emulators.acs.rest import CallAutomation
from emulators.acs.surface import AcsParts, RequestLog, Surface, SurfaceFactory, error_response
from emulators.acs.tokens import ISSUER, CallbackSigner
from emulators.acs.world import World, WorldConfig
from emulators.common.server import RunningServer
from emulators.common.tls import LocalTLS
from emulators.dataverse.auth import BearerChecker

DEFAULT_ACS_NUMBERS = ["+358930000001", "+358930000002"]
# The audiences of Entra ID tokens for ACS (its SDKs ask for https://communication.azure.com//.default).
ACS_AUDIENCES = ("https://communication.azure.com", "https://communication.azure.com/")
DEFAULT_TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local"
    "/providers/Microsoft.Communication/communicationServices/acs-emulator"
)

# Every REST surface the emulator serves, by path prefix. A new surface is one module with a
# class `Name(parts: AcsParts)` that has `prefix` and `handle(request)`, and one line here.
SURFACES: tuple[SurfaceFactory, ...] = (
    ControlApi,  # /_control/
    CallAutomation,  # /calling/
    RecordingContent,  # /v1/objects/
    Identities,  # /identities (ACS Identity)
    IdentityControls,  # /_control/identities
    Emails,  # /emails (ACS Email)
    EmailControls,  # /_control/emails
)


class AcsApp:
    """The WSGI app: hands each request to the surface with the longest prefix its path starts
    with (so a surface may own a subtree such as `/_control/identities/`)."""

    def __init__(self) -> None:
        self.surfaces: list[Surface] = []

    def serve(self, surfaces: list[Surface]) -> None:
        self.surfaces = sorted(surfaces, key=lambda s: len(s.prefix), reverse=True)

    def dispatch(self, request: Request) -> Response:
        for surface in self.surfaces:
            if request.path.startswith(surface.prefix):
                return surface.handle(request)
        return error_response(404, "NotFound", f"No resource at '{request.path}'.")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return self.dispatch(Request(environ))(environ, start_response)


class AcsEmulator(Controls):
    """One running emulator. The control methods (`Controls`) work in-process as well as over
    /_control/."""

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
        entra_jwks_url: str | None = None,
        entra_issuer: str | None = None,
    ) -> None:
        try:
            base64.b64decode(access_key, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("access_key must be base64, as an ACS access key is") from exc
        self.access_key = access_key
        self.resource_id = resource_id
        self.tls = tls
        self.signer = CallbackSigner(resource_id)
        app = AcsApp()
        self._server = RunningServer(app, host, port, tls.server_context())
        self.url = self._server.url
        self.port = self._server.port
        deliverer = Deliverer(verify=str(tls.ca_path), signer=self.signer)
        world = World(
            base_url=self.url,
            resource_id=resource_id,
            deliverer=deliverer,
            topic=topic,
            config=WorldConfig(
                acs_numbers=tuple(acs_numbers),
                incoming_call_webhook=incoming_call_webhook,
                recording_webhook=recording_webhook,
            ),
        )
        parts = AcsParts(
            url=self.url,
            access_key=access_key,
            world=world,
            deliverer=deliverer,
            signer=self.signer,
            requests=RequestLog(),
            identities=IdentityService(resource_id),
            bearer=(
                BearerChecker(
                    jwks_url=entra_jwks_url,
                    issuer=entra_issuer,
                    audiences=set(ACS_AUDIENCES),
                    ca_path=str(tls.ca_path),
                )
                if entra_jwks_url and entra_issuer
                else None
            ),
        )
        self.identities = parts.identities
        self.mailbox = parts.mailbox
        super().__init__(parts)
        app.serve([make(parts) for make in SURFACES])
        self._server.start()
        # What the Calling SDK does in a browser, for the panel's local device adapter: a
        # second, plain-HTTP listener (emulators/acs/browser_devices.py).
        self.devices = BrowserDevices(world, parts.identities, host=host, port=device_port)
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

    def emails(self) -> list[dict[str, Any]]:
        """The mails ACS Email accepted, oldest first (GET /_control/emails)."""
        return self.mailbox.mails()

    def stop(self) -> None:
        self.devices.stop()
        self._server.stop()
        self.world.stop()
        self.deliverer.stop()


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
    entra_jwks_url: str | None = None,
    entra_issuer: str | None = None,
) -> AcsEmulator:
    """Start an ACS emulator on `host:port` (0 = a free port) over HTTPS with the local CA.

    Webhook URLs are whole URLs (with `?code=` when the Functions host wants a key). The browser
    device API listens on plain HTTP at `device_port` (0 = a free port): `.device_url`. With
    `entra_jwks_url` and `entra_issuer`, Entra ID bearer tokens for ACS are accepted too.
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
        entra_jwks_url=entra_jwks_url,
        entra_issuer=entra_issuer,
    )
