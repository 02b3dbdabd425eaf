"""What a REST surface of the ACS emulator is and what it may use.

Each surface (Call Automation, recording content, the control API, ...) is one module with a
class built from `AcsParts` that answers every request under its `prefix`; `emulator.SURFACES`
lists them. Surfaces depend on this module and on the world, never on `emulator`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from werkzeug.wrappers import Request, Response

from emulators.acs import hmac_auth
from emulators.acs.delivery import Deliverer, now_iso
from emulators.acs.identity_store import IdentityService
from emulators.acs.mailbox import Mailbox
from emulators.acs.tokens import CallbackSigner
from emulators.acs.world import World
from emulators.common.server import json_response
from emulators.dataverse.auth import BearerChecker, TokenRejected

REPEATABILITY_CACHE = 1000
LOG_LIMIT = 10_000


class Surface(Protocol):
    """Answers every request whose path starts with `prefix`."""

    prefix: str

    def handle(self, request: Request) -> Response: ...


def error_response(status: int, code: str, message: str) -> Response:
    """The service's error body: `{"error": {"code", "message"}}`."""
    return json_response({"error": {"code": code, "message": message}}, status)


def raw_uri(request: Request) -> str:
    """The request target exactly as sent (the SDK signs the still-encoded path and query)."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        return str(raw)
    query = request.query_string.decode()
    return request.path + (f"?{query}" if query else "")


@dataclass
class RequestLog:
    """Every request the ACS API surfaces answered, and the Repeatability-Request-ID answers."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _entries: list[dict[str, Any]] = field(default_factory=list)
    _repeatability: OrderedDict[str, tuple[int, bytes, str]] = field(default_factory=OrderedDict)

    def add(
        self, request: Request, operation: str | None, status: int, repeated: bool = False
    ) -> None:
        entry = {
            "at": now_iso(),
            "method": request.method,
            "path": raw_uri(request),
            "operation": operation,
            "status": status,
            "repeated": repeated,
        }
        with self._lock:
            self._entries.append(entry)
            del self._entries[:-LOG_LIMIT]

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._entries]

    def repeated(self, key: str) -> tuple[int, bytes, str] | None:
        with self._lock:
            return self._repeatability.get(key)

    def remember(self, key: str, answer: tuple[int, bytes, str]) -> None:
        with self._lock:
            self._repeatability[key] = answer
            while len(self._repeatability) > REPEATABILITY_CACHE:
                self._repeatability.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._repeatability.clear()


@dataclass(frozen=True)
class AcsParts:
    """The pieces of one running emulator that every surface may use."""

    url: str
    access_key: str
    world: World
    deliverer: Deliverer
    signer: CallbackSigner
    requests: RequestLog
    identities: IdentityService  # ACS users and their tokens (kept across /_control/reset)
    mailbox: Mailbox = field(default_factory=Mailbox)  # ACS Email: the mails sent
    # Entra ID bearer tokens (a managed identity's), as ACS accepts them beside the HMAC key;
    # None: HMAC only.
    bearer: BearerChecker | None = None
    # What `/_control/reset` also clears: a surface with state of its own adds its reset here.
    resets: list[Callable[[], None]] = field(default_factory=list)

    def authenticate(self, request: Request, hosts: list[str]) -> Response | None:
        """None when the request carries a valid ACS HMAC signature (or an accepted Entra ID
        bearer token), else the 401 to send."""
        authorization = request.headers.get("Authorization", "")
        if authorization.lower().startswith("bearer "):
            if self.bearer is None:
                return error_response(401, "Denied", "Unsupported authorization scheme.")
            try:
                self.bearer.check(authorization)
            except TokenRejected as exc:
                return error_response(401, "InvalidAuthenticationToken", str(exc))
            return None
        failure = hmac_auth.verify(
            access_key=self.access_key,
            verb=request.method,
            path_and_query=raw_uri(request),
            hosts=hosts,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=request.get_data(cache=True),
        )
        if failure is None:
            return None
        return error_response(401, failure.code, failure.message)


SurfaceFactory = Callable[[AcsParts], Surface]
