"""Participants of a connected call: list, get, add (rings a device), cancel add, remove,
mute, hold and unhold."""

from __future__ import annotations

import uuid
from typing import Any

from emulators.acs.errors import AcsError
from emulators.acs.world.calls import Calls
from emulators.acs.world.identifiers import identifier, raw_id_of
from emulators.acs.world.model import INJECTED, REMOVE_OK, Participant


class Participants(Calls):
    """The participant REST operations."""

    def list_participants(self, cid: str) -> dict[str, Any]:
        with self._lock:
            call = self._call(cid)
            return {"value": [p.to_json() for p in call.participants.values()]}

    def get_participant(self, cid: str, raw: str) -> dict[str, Any]:
        with self._lock:
            call = self._call(cid)
            return self._participant(call, {"rawId": raw}).to_json()

    def add_participant(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            call = self._connected(cid)
            target_raw = raw_id_of(body.get("participantToAdd"))
            self._check_caller_id(body, target_raw, required=True)
            callback = self._optional_callback(body)
            if target_raw in call.participants:
                raise AcsError(400, "BadRequest", f"'{target_raw}' is already in the call.")
            timeout = body.get("invitationTimeoutInSeconds")
            if timeout is None:
                timeout = self.config.ring_timeout_seconds
            elif not isinstance(timeout, int) or not 0 < timeout <= 180:
                raise AcsError(
                    400, "BadRequest", "InvitationTimeoutInSeconds must be between 1 and 180."
                )
            context = body.get("operationContext")
            target = identifier(target_raw)
            invitation_id = str(uuid.uuid4())
            if self.take_fault("add", "event"):
                self._emit(
                    call,
                    "AddParticipantFailed",
                    {"participant": target},
                    operation_context=context,
                    callback_uri=callback,
                    result=INJECTED,
                )
            else:
                invitation = self._ring(
                    kind="add",
                    target=target,
                    call=call,
                    operation_context=context,
                    callback_uri=callback,
                    timeout=float(timeout),
                )
                invitation.voip_headers = _voip_headers(body)
                invitation_id = invitation.invitation_id
            return {
                "participant": Participant(target).to_json(),
                "operationContext": context,
                "invitationId": invitation_id,
            }

    def cancel_add_participant(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            call = self._connected(cid)
            invitation_id = str(body.get("invitationId") or "")
            invitation = self.invitations.get(invitation_id)
            if invitation is None or invitation.call_connection_id != cid:
                raise AcsError(404, "8523", f"Invitation '{invitation_id}' is not pending.")
            self._drop_invitation(invitation)
            context = body.get("operationContext")
            self._emit(
                call,
                "CancelAddParticipantSucceeded",
                {"invitationId": invitation_id},
                operation_context=context,
                callback_uri=self._optional_callback(body),
            )
            return {"invitationId": invitation_id, "operationContext": context}

    def remove_participant(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            call = self._connected(cid)
            participant = self._participant(call, body.get("participantToRemove"))
            callback = self._optional_callback(body)
            context = body.get("operationContext")
            if self.take_fault("remove", "event"):
                self._emit(
                    call,
                    "RemoveParticipantFailed",
                    {"participant": participant.identifier},
                    operation_context=context,
                    callback_uri=callback,
                    result=INJECTED,
                )
                return {"operationContext": context}
            del call.participants[str(participant.identifier["rawId"])]
            self._emit(
                call,
                "RemoveParticipantSucceeded",
                {"participant": participant.identifier},
                operation_context=context,
                callback_uri=callback,
                result=REMOVE_OK,
            )
            self._participants_updated(call)
            if not call.participants:
                self._end_call(call, "The last participant was removed.")
            return {"operationContext": context}

    def mute(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            call = self._connected(cid)
            targets = body.get("targetParticipants") or []
            if not isinstance(targets, list) or len(targets) != 1:
                raise AcsError(400, "BadRequest", "Exactly one participant can be muted.")
            participant = self._participant(call, targets[0])
            if not participant.is_muted:
                participant.is_muted = True
                self._participants_updated(call)
            return {"operationContext": body.get("operationContext")}

    def _hold(self, cid: str, body: dict[str, Any], on_hold: bool) -> None:
        with self._lock:
            call = self._connected(cid)
            participant = self._participant(call, body.get("targetParticipant"))
            callback = self._optional_callback(body)
            if on_hold and self.take_fault("hold", "event"):
                self._emit(
                    call,
                    "HoldFailed",
                    operation_context=body.get("operationContext"),
                    callback_uri=callback,
                    result=INJECTED,
                )
                return
            if participant.is_on_hold != on_hold:
                participant.is_on_hold = on_hold
                self._participants_updated(call)

    def hold(self, cid: str, body: dict[str, Any]) -> None:
        self._hold(cid, body, True)

    def unhold(self, cid: str, body: dict[str, Any]) -> None:
        self._hold(cid, body, False)


def _voip_headers(body: dict[str, Any]) -> dict[str, str]:
    context = body.get("customCallingContext")
    headers = context.get("voipHeaders") if isinstance(context, dict) else None
    return {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {}
