"""An ACS user's device as the Calling SDK in a browser sees it: its rings (with the VoIP
headers the app sent), its calls, self-mute (`isMuted` in the roster). The device API
(emulators/acs/browser_devices.py) serves these."""

from __future__ import annotations

from typing import Any

from emulators.acs.errors import AcsError
from emulators.acs.world.calls import Calls
from emulators.acs.world.model import Call


class Browsers(Calls):
    def _device_calls(self, user: str) -> list[Call]:
        return [c for c in self.calls.values() if c.active and user in c.participants]

    def device_ring(self, user: str, ring_id: str) -> str | None:
        """The call connection of `user`'s ring `ring_id`; 404 if it does not ring there."""
        with self._lock:
            invitation = self.invitations.get(ring_id)
            if invitation is None or invitation.raw_id != user:
                raise AcsError(404, "NotRinging", f"Nothing with ringId '{ring_id}' rings here.")
            return invitation.call_connection_id

    def device_set_muted(self, user: str, muted: bool) -> None:
        """The SDK's mute()/unmute(): the participant's isMuted in every call it is in."""
        with self._lock:
            calls = self._device_calls(user)
            if not calls:
                raise AcsError(409, "NotInCall", "The device is not in a call.")
            for call in calls:
                participant = call.participants[user]
                if participant.is_muted != muted:
                    participant.is_muted = muted
                    self._participants_updated(call)

    def device_view(self, user: str) -> dict[str, Any]:
        with self._lock:
            ringing = []
            for invitation in self.invitations.values():
                if invitation.raw_id != user:
                    continue
                call = self.calls.get(invitation.call_connection_id or "")
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
            calls = self._device_calls(user)
            return {
                "communicationUserId": user,
                "ringing": ringing,
                "connected": bool(calls),
                "muted": any(c.participants[user].is_muted for c in calls),
            }


def _caller(call: Call | None, user: str) -> str:
    """Who the ring is from, as the SDK's callerInfo shows it: the customer's number."""
    if call is None:
        return ""
    raw = call.customer_raw if call.customer_raw != user else ""
    if not raw and call.source_caller_id_number:
        raw = str(call.source_caller_id_number.get("rawId", ""))
    return raw[2:] if raw.startswith("4:") else raw
