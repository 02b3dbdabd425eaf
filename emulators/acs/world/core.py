"""The core of the simulated world: its state and lock, configuration, faults, timers,
lookups and validation shared by every concern."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from emulators.acs.delivery import Deliverer
from emulators.acs.errors import AcsError
from emulators.acs.media import tone_wav
from emulators.acs.world.identifiers import b64, is_phone, raw_id_of
from emulators.acs.world.model import (
    EVENT_FAULTS,
    Call,
    Fault,
    IncomingCall,
    Invitation,
    Participant,
    Recording,
    WorldConfig,
)


class WorldCore:
    """All state, behind one lock. Events are queued while the lock is held, so their order is
    the order in which the changes happened. The concerns (calls, participants, media,
    recording, the simulated phones, the control views) are mixins over this core."""

    def __init__(
        self,
        *,
        base_url: str,
        resource_id: str,
        config: WorldConfig,
        deliverer: Deliverer,
        topic: str,
    ) -> None:
        self.base_url = base_url
        self.resource_id = resource_id
        self.topic = topic
        self.app_identity = f"8:acs:{resource_id}_{uuid.uuid4()}"
        self._initial = config
        self._deliverer = deliverer
        self._lock = threading.RLock()
        self._timers: set[threading.Timer] = set()
        self._fetching = 0  # file sources being downloaded for a play
        self._wav = tone_wav(1.0)
        self._clear(config)

    def _clear(self, config: WorldConfig) -> None:
        self.config = config
        self.calls: dict[str, Call] = {}
        self.incoming: dict[str, IncomingCall] = {}
        self.invitations: dict[str, Invitation] = {}
        self.recordings: dict[str, Recording] = {}
        self.documents: dict[str, Recording] = {}
        self.faults: list[Fault] = []

    # -- lifecycle & configuration ---------------------------------------------------------------

    def reset(self) -> None:
        with self._lock:
            self._cancel_timers()
            self._clear(self._initial)

    def media_idle(self) -> bool:
        """No play is still downloading its files."""
        with self._lock:
            return self._fetching == 0

    def stop(self) -> None:
        with self._lock:
            self._cancel_timers()

    def configure(self, **changes: Any) -> WorldConfig:
        with self._lock:
            if "acs_numbers" in changes:
                changes["acs_numbers"] = tuple(str(n) for n in changes["acs_numbers"])
            self.config = WorldConfig(**{**self.config.__dict__, **changes})
            return self.config

    def add_fault(
        self, operation: str, mode: str = "http", status: int = 500, count: int = 1
    ) -> Fault:
        if mode not in ("http", "event"):
            raise AcsError(400, "BadRequest", "mode must be 'http' or 'event'.")
        if mode == "event" and operation not in EVENT_FAULTS:
            raise AcsError(
                400,
                "BadRequest",
                f"'{operation}' has no failure event; known: {sorted(EVENT_FAULTS)}",
            )
        fault = Fault(operation, mode, int(status), int(count))
        with self._lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, operation: str, mode: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.operation == operation and fault.mode == mode and fault.remaining > 0:
                    fault.remaining -= 1
                    return fault
        return None

    # -- timers -----------------------------------------------------------------------------------

    def _timer(self, seconds: float, fn: Callable[..., None], *args: Any) -> threading.Timer:
        holder: list[threading.Timer] = []

        def fire() -> None:
            with self._lock:
                if holder[0] not in self._timers:
                    return  # cancelled while waiting for the lock
                self._timers.discard(holder[0])
                fn(*args)

        timer = threading.Timer(seconds, fire)
        timer.daemon = True
        holder.append(timer)
        self._timers.add(timer)
        timer.start()
        return timer

    def _cancel(self, timer: threading.Timer | None) -> None:
        if timer is not None:
            timer.cancel()
            self._timers.discard(timer)

    def _cancel_timers(self) -> None:
        for timer in list(self._timers):
            timer.cancel()
        self._timers.clear()

    # -- lookups & validation ---------------------------------------------------------------------

    def _call(self, call_connection_id: str) -> Call:
        call = self.calls.get(call_connection_id)
        if call is None or not call.active:
            raise AcsError(404, "8522", f"Call connection '{call_connection_id}' not found.")
        return call

    def _connected(self, call_connection_id: str) -> Call:
        call = self._call(call_connection_id)
        if call.state != "connected":
            raise AcsError(
                400, "8501", "Action is not valid when call is not in Established state."
            )
        return call

    def _participant(self, call: Call, model: Any) -> Participant:
        raw = raw_id_of(model)
        participant = call.participants.get(raw)
        if participant is None:
            raise AcsError(404, "8523", f"Participant '{raw}' is not in the call.")
        return participant

    def _callback(self, value: Any, field_name: str = "CallbackUri") -> str:
        parts = urlsplit(str(value or ""))
        allowed = ("https", "http") if self.config.allow_http_callbacks else ("https",)
        if parts.scheme not in allowed or not parts.netloc:
            raise AcsError(400, "BadRequest", f"The field {field_name} is invalid.")
        return str(value)

    def _optional_callback(self, body: dict[str, Any]) -> str | None:
        value = body.get("operationCallbackUri")
        return self._callback(value, "OperationCallbackUri") if value else None

    def _check_caller_id(self, body: dict[str, Any], target_raw: str, required: bool) -> None:
        number = (body.get("sourceCallerIdNumber") or {}).get("value")
        if number is None:
            if required and is_phone(target_raw):
                raise AcsError(
                    400,
                    "BadRequest",
                    "SourceCallerIdNumber is required to call a PSTN participant.",
                )
            return
        if number not in self.config.acs_numbers:
            raise AcsError(
                403, "Forbidden", f"Source caller id '{number}' is not a number of this resource."
            )

    def _new_ids(self) -> tuple[str, str, str]:
        conv = uuid.uuid4()
        server_call_id = b64(f"https://acs-emulator.local/conv/{conv}?i=10&e=emulator")
        return str(uuid.uuid4()), server_call_id, str(uuid.uuid4())

    def properties(self, call: Call, state: str | None = None) -> dict[str, Any]:
        body = {
            "callConnectionId": call.call_connection_id,
            "serverCallId": call.server_call_id,
            "targets": call.targets,
            "callConnectionState": state or call.state,
            "callbackUri": call.callback_uri,
            "sourceCallerIdNumber": call.source_caller_id_number,
            "sourceDisplayName": call.source_display_name,
            "source": call.source,
            "correlationId": call.correlation_id,
            "answeredBy": call.answered_by,
            "answeredFor": call.answered_for,
        }
        return {k: v for k, v in body.items() if v is not None}

    # -- shared by several concerns ---------------------------------------------------------------

    def _drop_invitation(self, invitation: Invitation) -> None:
        self._cancel(invitation.timer)
        self.invitations.pop(invitation.invitation_id, None)

    def _calls_with(self, raw: str, call_connection_id: str | None) -> list[Call]:
        return [
            c
            for c in self.calls.values()
            if c.active
            and raw in c.participants
            and call_connection_id in (None, c.call_connection_id)
        ]
