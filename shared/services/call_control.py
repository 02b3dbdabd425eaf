"""Call control from the web phone (§1.3): hold, mute, DTMF, direct and consulted transfer."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from shared.domain.calls import Call, Consult, ConsultState
from shared.domain.directory import Agent, Directory
from shared.domain.numbers import normalise
from shared.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    NotAllowed,
    NotFound,
    TelephonyError,
    Unprocessable,
)
from shared.services.agent_calls import AgentCalls
from shared.services.ports import AgentStates, CallRepository, Telephony

DTMF = re.compile(r"^[0-9*#A-D]{1,32}$")


class CallControl:
    def __init__(
        self,
        *,
        calls: CallRepository,
        agents: AgentStates,
        telephony: Telephony,
        directory: Directory,
        views: AgentCalls,
        hold_music_url: str | None,
        default_region: str,
    ) -> None:
        self.calls, self.agents, self.telephony = calls, agents, telephony
        self.directory, self.views = directory, views
        self.hold_music_url, self.region = hold_music_url or None, default_region

    # ------------------------------------------------------------------ guards

    def _serving(self, agent: Agent, call_id: str) -> Call:
        """The call, if `agent` is serving its customer right now."""
        call = self.calls.get(call_id)
        if call is None:
            raise NotFound(f"no call {call_id}")
        if call.serving_agent_id != agent.id:
            raise NotAllowed("this call is not yours to control")
        if not call.answered or call.ended or not call.connection_id:
            raise Conflict(f"the call is {call.phase.value}, not connected")
        return call

    def _set(self, call: Call, **changes: Any) -> Call:
        result = self.calls.update(call.call_id, lambda c: replace(c, **changes))
        return result[0] if result else call

    # ------------------------------------------------------------------ hold, mute, DTMF

    def hold(self, agent: Agent, call_id: str, *, on: bool) -> dict[str, Any]:
        call = self._serving(agent, call_id)
        customer = call.customer_target or ""
        if on:
            self.telephony.hold(call.connection_id or "", customer, music_url=self.hold_music_url)
        else:
            self.telephony.unhold(call.connection_id or "", customer)
        return self.views.view(self._set(call, held=on))

    def mute(self, agent: Agent, call_id: str) -> dict[str, Any]:
        """Mutes the agent in the call. Unmuting is the web phone's own microphone (ACS has no
        server-side unmute)."""
        call = self._serving(agent, call_id)
        self.telephony.mute(call.connection_id or "", call.agent_target or "")
        return self.views.view(self._set(call, muted=True))

    def dtmf(self, agent: Agent, call_id: str, tones: str) -> dict[str, Any]:
        if not DTMF.match(tones):
            raise Unprocessable(
                "tones must be 1-32 of 0-9 * # A-D",
                errors=[FieldError("tones", "1-32 of 0-9 * # A-D")],
            )
        call = self._serving(agent, call_id)
        self.telephony.send_dtmf(call.connection_id or "", tones, call.customer_target or "")
        return self.views.view(call)

    # ------------------------------------------------------------------ transfers

    def _target(
        self, agent: Agent, to_agent: str | None, to_number: str | None
    ) -> tuple[str, str | None]:
        if bool(to_agent) == bool(to_number):
            raise InvalidInput(
                "give exactly one of agentId and number",
                errors=[FieldError("agentId", "or number, not both")],
            )
        if to_agent:
            colleague = self.directory.agent(to_agent)
            if colleague is None or colleague.id == agent.id:
                raise Unprocessable(
                    "no such colleague", errors=[FieldError("agentId", "a colleague's agent id")]
                )
            return colleague.ring_target, colleague.id
        number = normalise(to_number or "", self.region)
        if not number.valid:
            raise Unprocessable(
                "not a valid phone number", errors=[FieldError("number", "a valid phone number")]
            )
        return f"4:{number.value}", None

    def _begin(self, call: Call, target: str, agent_id: str | None, blind: bool) -> Consult:
        if agent_id and not self.agents.claim(agent_id, call.call_id):
            raise Conflict("that colleague is on another call")
        if agent_id:  # the colleague's panel shows the call they are being handed
            self.agents.note_call(agent_id, call.call_id, call.first_answered_at or call.arrived_at)
        n = (call.consult.n + 1) if call.consult else 1
        consult = Consult(n, target, agent_id, blind)

        def start(current: Call) -> Call | None:
            if current.consult is not None and current.consult.active:
                return None
            return replace(current, consult=consult)

        result = self.calls.update(call.call_id, start)
        if result is None or not result[1]:
            if agent_id:
                self.agents.release(agent_id, call.call_id)
            raise Conflict("a transfer is already in progress")
        return consult

    def transfer(
        self,
        agent: Agent,
        call_id: str,
        *,
        to_agent: str | None = None,
        to_number: str | None = None,
    ) -> dict[str, Any]:
        """Direct transfer: the target replaces the agent when it answers."""
        call = self._serving(agent, call_id)
        target, colleague = self._target(agent, to_agent, to_number)
        consult = self._begin(call, target, colleague, blind=True)
        self.telephony.transfer(
            call.connection_id or "",
            target,
            transferee=call.agent_target or "",
            operation_context=consult.context,
            caller_id=call.our_number or None,
        )
        return self.views.view(self.calls.get(call_id) or call)

    def consult(
        self,
        agent: Agent,
        call_id: str,
        *,
        to_agent: str | None = None,
        to_number: str | None = None,
    ) -> dict[str, Any]:
        """Consulted transfer, step 1: the customer on hold, the target rung for the agent."""
        call = self._serving(agent, call_id)
        target, colleague = self._target(agent, to_agent, to_number)
        consult = self._begin(call, target, colleague, blind=False)
        if not call.held:
            self.telephony.hold(
                call.connection_id or "", call.customer_target or "", music_url=self.hold_music_url
            )
        invitation = self.telephony.add_participant(
            call.connection_id or "",
            target,
            invitation_timeout=45,
            operation_context=consult.context,
            caller_id=call.our_number or None,
        )
        updated = self._set(call, held=True, consult=replace(consult, invitation_id=invitation))
        return self.views.view(updated)

    def complete(self, agent: Agent, call_id: str) -> dict[str, Any]:
        """Step 2a: hand the customer to the target; the agent leaves, the customer resumes."""
        call = self._serving(agent, call_id)
        consult = call.consult
        if consult is None or consult.blind or consult.state is not ConsultState.CONNECTED:
            raise Conflict("there is no connected consultation to complete")
        leaving = call.agent_target or ""
        updated = self._set(
            call,
            consult=replace(consult, state=ConsultState.COMPLETED),
            agent_target_override=consult.target,
            held=False,
        )
        self.telephony.unhold(call.connection_id or "", call.customer_target or "")
        self.telephony.remove_participant(
            call.connection_id or "", leaving, operation_context="transfer-complete"
        )
        self.agents.release(agent.id, call.call_id)
        return self.views.view(updated)

    def cancel(self, agent: Agent, call_id: str) -> dict[str, Any]:
        """Step 2b: drop the target; the customer comes back off hold to the agent."""
        call = self._serving(agent, call_id)
        consult = call.consult
        if consult is None or consult.blind or not consult.active:
            raise Conflict("there is no consultation to cancel")
        updated = self._set(
            call, consult=replace(consult, state=ConsultState.CANCELLED), held=False
        )
        connection = call.connection_id or ""
        try:
            if consult.state is ConsultState.RINGING and consult.invitation_id:
                self.telephony.cancel_add_participant(
                    connection, consult.invitation_id, operation_context=consult.context
                )
            else:
                self.telephony.remove_participant(
                    connection, consult.target, operation_context="consult-cancel"
                )
        except TelephonyError as exc:
            if exc.status not in (400, 404):  # already gone: what we wanted
                raise
        self.telephony.unhold(connection, call.customer_target or "")
        if consult.agent_id:
            self.agents.release(consult.agent_id, call.call_id)
        return self.views.view(updated)
