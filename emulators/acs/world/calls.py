"""Call connections: create, answer, redirect, reject, hang up, transfer; the devices that ring
for them (invitations) and how a call ends."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from emulators.acs.delivery import now_iso
from emulators.acs.errors import AcsError
from emulators.acs.world.identifiers import (
    b64url,
    identifier,
    is_phone,
    normalise_raw_id,
    raw_id_of,
)
from emulators.acs.world.model import (
    ADD_OK,
    CALL_CONNECTED,
    INJECTED,
    NO_ANSWER,
    TRANSFER_OK,
    Call,
    IncomingCall,
    Invitation,
    Participant,
)
from emulators.acs.world.recording import Recordings


class Calls(Recordings):
    """The call-level REST operations and the ringing that backs create, add and transfer."""

    # -- ringing devices --------------------------------------------------------------------------

    def _ring(
        self,
        *,
        kind: str,
        target: dict[str, Any],
        call: Call | None,
        operation_context: str | None,
        callback_uri: str | None,
        timeout: float,
        transferee: dict[str, Any] | None = None,
    ) -> Invitation:
        invitation = Invitation(
            invitation_id=str(uuid.uuid4()),
            kind=kind,
            target=identifier(raw_id_of(target)),
            call_connection_id=call.call_connection_id if call else None,
            operation_context=operation_context,
            callback_uri=callback_uri,
            timeout_seconds=timeout,
            created_at=now_iso(),
            transferee=transferee,
        )
        invitation.timer = self._timer(timeout, self._ring_timed_out, invitation.invitation_id)
        self.invitations[invitation.invitation_id] = invitation
        return invitation

    def _ring_timed_out(self, invitation_id: str) -> None:
        invitation = self.invitations.get(invitation_id)
        if invitation is not None:
            self._invitation_failed(invitation, NO_ANSWER)

    def _find_invitation(self, device: str, call_connection_id: str | None) -> Invitation:
        raw = normalise_raw_id(device)
        for invitation in self.invitations.values():
            if invitation.raw_id == raw and call_connection_id in (
                None,
                invitation.call_connection_id,
            ):
                return invitation
        raise AcsError(404, "NotRinging", f"No device '{raw}' is ringing.")

    def _invitation_answered(self, invitation: Invitation) -> None:
        self._drop_invitation(invitation)
        call = self.calls.get(invitation.call_connection_id or "")
        if call is None or not call.active:
            return
        ctx, cb = invitation.operation_context, invitation.callback_uri
        if invitation.kind == "add":
            call.participants[invitation.raw_id] = Participant(invitation.target)
            self._emit(
                call,
                "AddParticipantSucceeded",
                {"participant": invitation.target},
                operation_context=ctx,
                callback_uri=cb,
                result=ADD_OK,
            )
            self._participants_updated(call)
        elif invitation.kind == "create":
            for other in [
                i
                for i in self.invitations.values()
                if i.call_connection_id == call.call_connection_id
            ]:
                self._drop_invitation(other)  # sim-ring: the first to answer takes the call
            call.state, call.connected_at = "connected", now_iso()
            call.customer_raw = invitation.raw_id
            call.participants = {invitation.raw_id: Participant(invitation.target)}
            self._emit(
                call,
                "CallConnected",
                operation_context=call.operation_context,
                result=CALL_CONNECTED,
            )
            self._participants_updated(call)
        elif invitation.kind == "transfer":
            transferee = invitation.transferee or {}
            self._emit(
                call,
                "CallTransferAccepted",
                {
                    "transferTarget": invitation.target,
                    "transferee": transferee,
                },
                operation_context=ctx,
                callback_uri=cb,
                result=TRANSFER_OK,
            )
            if len(call.participants) <= 1:
                # A 1:1 transfer hands the caller over: the app's leg of the call ends.
                self._end_call(call, "The call was transferred.")
            else:
                call.state = "connected"
                call.participants.pop(raw_id_of(transferee), None)
                call.participants[invitation.raw_id] = Participant(invitation.target)
                self._participants_updated(call)

    def _invitation_failed(self, invitation: Invitation, result: tuple[int, int, str]) -> None:
        self._drop_invitation(invitation)
        call = self.calls.get(invitation.call_connection_id or "")
        if call is None or not call.active:
            return
        ctx, cb = invitation.operation_context, invitation.callback_uri
        if invitation.kind == "add":
            self._emit(
                call,
                "AddParticipantFailed",
                {"participant": invitation.target},
                operation_context=ctx,
                callback_uri=cb,
                result=result,
            )
        elif invitation.kind == "create":
            if any(
                i.call_connection_id == call.call_connection_id for i in self.invitations.values()
            ):
                return  # another target of the sim-ring is still ringing
            self._emit(
                call, "CreateCallFailed", operation_context=call.operation_context, result=result
            )
            self._end_call(call, result[2], notify=False)
        elif invitation.kind == "transfer":
            call.state = "connected"
            self._emit(
                call, "CallTransferFailed", operation_context=ctx, callback_uri=cb, result=result
            )

    # -- ending a call ----------------------------------------------------------------------------

    def _end_call(self, call: Call, reason: str, *, notify: bool = True) -> None:
        if not call.active:
            return
        for invitation in [
            i for i in self.invitations.values() if i.call_connection_id == call.call_connection_id
        ]:
            self._drop_invitation(invitation)
        if call.recognize is not None:
            self._cancel(call.recognize.timer)
            call.recognize = None
        call.looping_plays.clear()
        call.state, call.ended_at, call.end_reason = "disconnected", now_iso(), reason
        if notify:
            self._emit(
                call,
                "CallDisconnected",
                operation_context=call.operation_context,
                result=(200, 0, reason),
            )
        for recording_id in call.recording_ids:
            recording = self.recordings[recording_id]
            if not recording.finished:
                self._finish_recording(recording, "CallEnded")

    # -- REST operations --------------------------------------------------------------------------

    def create_call(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            targets = body.get("targets") or []
            if not isinstance(targets, list) or not targets:
                raise AcsError(400, "BadRequest", "The Targets field is required.")
            callback = self._callback(body.get("callbackUri"))
            target_raws = [raw_id_of(t) for t in targets]
            for raw in target_raws:
                self._check_caller_id(body, raw, required=True)
            cid, server_call_id, correlation_id = self._new_ids()
            source_user = (body.get("source") or {}).get("id") or self.app_identity
            call = Call(
                call_connection_id=cid,
                server_call_id=server_call_id,
                correlation_id=correlation_id,
                direction="outbound",
                state="connecting",
                callback_uri=callback,
                operation_context=body.get("operationContext"),
                source=identifier(source_user),
                targets=[identifier(r) for r in target_raws],
                customer_raw=target_raws[0],
                source_caller_id_number=body.get("sourceCallerIdNumber"),
                source_display_name=body.get("sourceDisplayName"),
            )
            self.calls[cid] = call
            if self.take_fault("create", "event"):
                self._emit(
                    call,
                    "CreateCallFailed",
                    operation_context=call.operation_context,
                    result=INJECTED,
                )
                self._end_call(call, INJECTED[2], notify=False)
            else:
                for raw in target_raws:
                    invitation = self._ring(
                        kind="create",
                        target=identifier(raw),
                        call=call,
                        operation_context=call.operation_context,
                        callback_uri=None,
                        timeout=self.config.ring_timeout_seconds,
                    )
                    # A phone called shows the number the call was made from, as for an add.
                    invitation.caller_id = (call.source_caller_id_number or {}).get("value")
            return self.properties(call, "connecting")

    def _incoming(self, body: dict[str, Any]) -> IncomingCall:
        context = body.get("incomingCallContext")
        if not context:
            raise AcsError(400, "BadRequest", "The IncomingCallContext field is required.")
        incoming = self.incoming.get(str(context))
        if incoming is None or incoming.state != "ringing":
            raise AcsError(
                400,
                "8523",
                "Invalid request: the incoming call context is unknown, expired "
                "or has already been used.",
            )
        return incoming

    def answer_call(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            incoming = self._incoming(body)
            callback = self._callback(body.get("callbackUri"))
            cid = str(uuid.uuid4())
            answered_by = (body.get("answeredBy") or {}).get("id") or self.app_identity
            call = Call(
                call_connection_id=cid,
                server_call_id=incoming.server_call_id,
                correlation_id=incoming.correlation_id,
                direction="inbound",
                state="connected",
                callback_uri=callback,
                operation_context=body.get("operationContext"),
                source=identifier(incoming.from_raw),
                targets=[identifier(incoming.to_raw)],
                customer_raw=incoming.from_raw,
                answered_by={"id": answered_by},
                answered_for=(
                    identifier(incoming.to_raw)["phoneNumber"]
                    if is_phone(incoming.to_raw)
                    else None
                ),
                connected_at=now_iso(),
            )
            call.participants[incoming.from_raw] = Participant(identifier(incoming.from_raw))
            self.calls[cid] = call
            incoming.state, incoming.call_connection_id = "answered", cid
            if self.take_fault("answer", "event"):
                self._emit(
                    call, "AnswerFailed", operation_context=call.operation_context, result=INJECTED
                )
                self._end_call(call, INJECTED[2], notify=False)
            else:
                self._emit(
                    call,
                    "CallConnected",
                    operation_context=call.operation_context,
                    result=CALL_CONNECTED,
                )
                self._participants_updated(call)
            # The service answers before media is up: the response still says "connecting".
            return self.properties(call, "connecting")

    def redirect_call(self, body: dict[str, Any]) -> None:
        with self._lock:
            incoming = self._incoming(body)
            target_raw = raw_id_of(body.get("target"))
            incoming.state = "redirected"
            if is_phone(target_raw) and target_raw[2:] in self.config.acs_numbers:
                # A call redirected to one of our own numbers arrives again as IncomingCall.
                self._raise_incoming(
                    incoming.from_raw,
                    target_raw,
                    incoming.display_name,
                    None,
                    incoming.server_call_id,
                    incoming.correlation_id,
                )
            else:
                self._ring(
                    kind="redirect",
                    target=identifier(target_raw),
                    call=None,
                    operation_context=None,
                    callback_uri=None,
                    timeout=self.config.ring_timeout_seconds,
                )

    def reject_call(self, body: dict[str, Any]) -> None:
        with self._lock:
            incoming = self._incoming(body)
            reason = body.get("callRejectReason") or "none"
            if str(reason).lower() not in ("none", "busy", "forbidden"):
                raise AcsError(400, "BadRequest", f"Unknown CallRejectReason '{reason}'.")
            incoming.state = "rejected"

    def get_call(self, cid: str) -> dict[str, Any]:
        with self._lock:
            return self.properties(self._call(cid))

    def hang_up(self, cid: str, *, for_everyone: bool) -> None:
        with self._lock:
            call = self._call(cid)
            self._end_call(
                call,
                "The call was terminated by the application."
                if for_everyone
                else "The application left the call.",
            )

    def transfer(self, cid: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            call = self._connected(cid)
            target_raw = raw_id_of(body.get("targetParticipant"))
            self._check_caller_id(body, target_raw, required=False)
            callback = self._optional_callback(body)
            if body.get("transferee"):
                transferee = self._participant(call, body["transferee"]).identifier
            elif len(call.participants) == 1:
                transferee = next(iter(call.participants.values())).identifier
            else:
                raise AcsError(
                    400,
                    "BadRequest",
                    "Transferee is required when the call has several participants.",
                )
            context = body.get("operationContext")
            if self.take_fault("transfer", "event"):
                self._emit(
                    call,
                    "CallTransferFailed",
                    operation_context=context,
                    callback_uri=callback,
                    result=INJECTED,
                )
            else:
                call.state = "transferring"
                self._ring(
                    kind="transfer",
                    target=identifier(target_raw),
                    call=call,
                    operation_context=context,
                    callback_uri=callback,
                    timeout=self.config.ring_timeout_seconds,
                    transferee=transferee,
                )
            return {"operationContext": context}

    # -- incoming calls ---------------------------------------------------------------------------

    def _raise_incoming(
        self,
        from_raw: str,
        to_raw: str,
        display_name: str,
        custom_context: dict[str, Any] | None,
        server_call_id: str | None = None,
        correlation_id: str | None = None,
    ) -> IncomingCall:
        _, new_server_call_id, new_correlation_id = self._new_ids()
        # Shaped like the service's: an unsigned JWT whose payload names the call.
        header = b64url(b'{"alg":"none","typ":"JWT"}')
        payload = b64url(
            json.dumps(
                {
                    "cc": uuid.uuid4().hex,
                    "shrToken": uuid.uuid4().hex,
                    "iat": int(datetime.now(UTC).timestamp()),
                }
            ).encode()
        )
        incoming = IncomingCall(
            context=f"{header}.{payload}.",
            server_call_id=server_call_id or new_server_call_id,
            correlation_id=correlation_id or new_correlation_id,
            from_raw=from_raw,
            to_raw=to_raw,
            display_name=display_name,
        )
        self.incoming[incoming.context] = incoming
        data: dict[str, Any] = {
            "to": identifier(to_raw),
            "from": identifier(from_raw),
            "serverCallId": incoming.server_call_id,
            "callerDisplayName": display_name,
            "incomingCallContext": incoming.context,
            "customContext": custom_context or {"sipHeaders": {}, "voipHeaders": {}},
            "correlationId": incoming.correlation_id,
        }
        self._emit_grid(
            "Microsoft.Communication.IncomingCall",
            f"/caller/{from_raw}/recipient/{to_raw}",
            data,
            self.config.incoming_call_webhook,
            "INCOMINGCALL",
        )
        return incoming
