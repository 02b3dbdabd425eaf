"""The simulated people (control API): a PSTN caller dials in, devices answer, decline or let
it ring out, anyone hangs up or presses keys."""

from __future__ import annotations

from typing import Any

from emulators.acs.delivery import now_iso
from emulators.acs.errors import AcsError
from emulators.acs.world.calls import Calls
from emulators.acs.world.identifiers import is_phone, normalise_raw_id
from emulators.acs.world.media import Media
from emulators.acs.world.model import DECLINED, DTMF_NAMES, MAX_DIGITS, NO_ANSWER, STOP_TONE


class Phones(Calls, Media):
    """What callers and agent devices do; each raises the events the service would."""

    def place_call(
        self,
        from_number: str,
        to_number: str,
        display_name: str = "",
        custom_context: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A PSTN caller dials one of our numbers: IncomingCall goes to the webhook."""
        with self._lock:
            from_raw, to_raw = normalise_raw_id(from_number), normalise_raw_id(to_number)
            if not is_phone(from_raw):
                raise AcsError(400, "BadRequest", "'from' must be a phone number (+E.164).")
            if not is_phone(to_raw) or to_raw[2:] not in self.config.acs_numbers:
                numbers = list(self.config.acs_numbers)
                raise AcsError(400, "BadRequest", f"'to' must be one of the ACS numbers {numbers}.")
            return self._raise_incoming(from_raw, to_raw, display_name, custom_context).to_json()

    def device_answer(self, device: str, call_connection_id: str | None = None) -> dict[str, Any]:
        with self._lock:
            invitation = self._find_invitation(device, call_connection_id)
            self._invitation_answered(invitation)
            return {**invitation.to_json(), "outcome": "answered"}

    def device_decline(self, device: str, call_connection_id: str | None = None) -> dict[str, Any]:
        with self._lock:
            invitation = self._find_invitation(device, call_connection_id)
            self._invitation_failed(invitation, DECLINED)
            return {**invitation.to_json(), "outcome": "declined"}

    def device_no_answer(
        self, device: str, call_connection_id: str | None = None
    ) -> dict[str, Any]:
        """The ring timeout, now."""
        with self._lock:
            invitation = self._find_invitation(device, call_connection_id)
            self._invitation_failed(invitation, NO_ANSWER)
            return {**invitation.to_json(), "outcome": "noAnswer"}

    def participant_hang_up(
        self, participant: str, call_connection_id: str | None = None
    ) -> dict[str, Any]:
        """A caller or a device hangs up. The original remote party leaving ends the call."""
        with self._lock:
            raw = normalise_raw_id(participant)
            abandoned = [
                i for i in self.incoming.values() if i.from_raw == raw and i.state == "ringing"
            ]
            for incoming in abandoned:
                incoming.state = "abandoned"
            ended, left = [], []
            for call in self._calls_with(raw, call_connection_id):
                if raw == call.customer_raw:
                    self._end_call(call, "The remote participant hung up.")
                    ended.append(call.call_connection_id)
                    continue
                del call.participants[raw]
                self._participants_updated(call)
                left.append(call.call_connection_id)
                if not call.participants:
                    self._end_call(call, "The last participant left.")
                    ended.append(call.call_connection_id)
            if not (abandoned or ended or left):
                raise AcsError(404, "NotInCall", f"'{raw}' is not in any call.")
            return {
                "abandonedIncomingCalls": [i.context for i in abandoned],
                "endedCalls": ended,
                "leftCalls": left,
            }

    def press(
        self, participant: str, tones: str, call_connection_id: str | None = None
    ) -> dict[str, Any]:
        """Keys pressed on a phone in a call: they reach an active recognize, else nothing."""
        with self._lock:
            raw = normalise_raw_id(participant)
            names = []
            for key in tones.upper():
                if key not in DTMF_NAMES:
                    raise AcsError(400, "BadRequest", f"'{key}' is not a DTMF key.")
                names.append(DTMF_NAMES[key])
            calls = [c for c in self._calls_with(raw, call_connection_id) if c.state == "connected"]
            if not calls:
                raise AcsError(404, "NotInCall", f"'{raw}' is not in a connected call.")
            call = calls[0]
            call.pressed_tones.append({"from": raw, "tones": names, "at": now_iso()})
            recognize = call.recognize
            if recognize is None or recognize.target_raw != raw:
                return {"callConnectionId": call.call_connection_id, "recognized": False}
            self._cancel(recognize.timer)
            for name in names:
                if name in recognize.stop_tones:
                    self._recognize_completed(call, recognize, STOP_TONE)
                    break
                recognize.tones.append(name)
                if len(recognize.tones) >= recognize.max_tones:
                    self._recognize_completed(call, recognize, MAX_DIGITS)
                    break
            else:
                recognize.timer = self._timer(
                    recognize.inter_tone_seconds,
                    self._recognize_timed_out,
                    call.call_connection_id,
                    recognize,
                )
            return {
                "callConnectionId": call.call_connection_id,
                "recognized": True,
                "completed": call.recognize is None,
            }
