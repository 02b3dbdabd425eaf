"""Call control from the web phone (§1.3): hold, mute, DTMF, direct and consulted transfer."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from shared.domain.calls import Call, Consult, ConsultState, transfer_completed
from shared.domain.destinations import OPEN, DestinationPolicy
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
from shared.views import CallView

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
        destinations: DestinationPolicy = OPEN,
    ) -> None:
        self.destinations = destinations
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

    def hold(self, agent: Agent, call_id: str, *, on: bool) -> CallView:
        call = self._serving(agent, call_id)
        customer = call.customer_target or ""
        if on:
            self.telephony.hold(call.connection_id or "", customer, music_url=self.hold_music_url)
        else:
            self.telephony.unhold(call.connection_id or "", customer)
        return self.views.view(self._set(call, held=on), agent)

    def mute(self, agent: Agent, call_id: str) -> CallView:
        """Mutes the agent in the call. Unmuting is the web phone's own microphone (ACS has no
        server-side unmute)."""
        call = self._serving(agent, call_id)
        self.telephony.mute(call.connection_id or "", call.agent_target or "")
        return self.views.view(self._set(call, muted=True), agent)

    def dtmf(self, agent: Agent, call_id: str, tones: str) -> CallView:
        if not DTMF.match(tones):
            raise Unprocessable(
                "tones must be 1-32 of 0-9 * # A-D",
                errors=[FieldError("tones", "1-32 of 0-9 * # A-D")],
            )
        call = self._serving(agent, call_id)
        self.telephony.send_dtmf(call.connection_id or "", tones, call.customer_target or "")
        return self.views.view(call, agent)

    # ------------------------------------------------------------------ transfers

    def _target(
        self, agent: Agent, to_agent: str | None, to_number: str | None
    ) -> tuple[str, Agent | None]:
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
            return colleague.ring_target, colleague
        number = normalise(to_number or "", self.region)
        if not number.valid:
            raise Unprocessable(
                "not a valid phone number", errors=[FieldError("number", "a valid phone number")]
            )
        self.destinations.check(number.value, field="number")
        return f"4:{number.value}", None

    def _begin(
        self, agent: Agent, call: Call, target: str, colleague: Agent | None, blind: bool
    ) -> Consult:
        agent_id = colleague.id if colleague else None
        if agent_id and not self.agents.claim(agent_id, call.call_id):
            raise Conflict("that colleague is on another call")
        if agent_id:  # the colleague's panel shows the call they are being handed
            self.agents.note_call(agent_id, call.call_id, call.first_answered_at or call.arrived_at)
        n = (call.consult.n + 1) if call.consult else 1
        consult = Consult(
            n,
            target,
            agent_id,
            blind,
            from_agent_id=agent.id,
            from_name=agent.name,
            to_name=colleague.name if colleague else "",
        )

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

    def _on_consult(
        self, call: Call, n: int, change: Callable[[Call, Consult], Call | None]
    ) -> tuple[Call, bool]:
        """Change the call only while its transfer is still transfer `n`, from the state as it
        is now (events may have moved it on since it was read)."""

        def guarded(current: Call) -> Call | None:
            consult = current.consult
            return change(current, consult) if consult is not None and consult.n == n else None

        result = self.calls.update(call.call_id, guarded)
        return result if result is not None else (call, False)

    def _abandon(self, call: Call, consult: Consult, *, unhold: bool) -> None:
        """ACS refused a step of the transfer: it failed; nothing may stay half done."""
        self._on_consult(
            call,
            consult.n,
            lambda c, k: (
                replace(
                    c,
                    consult=replace(k, state=ConsultState.FAILED),
                    held=False if unhold else c.held,
                )
                if k.active
                else None
            ),
        )
        if consult.agent_id:
            self.agents.release(consult.agent_id, call.call_id)
        if unhold:
            with contextlib.suppress(TelephonyError):
                self.telephony.unhold(call.connection_id or "", call.customer_target or "")

    def transfer(
        self,
        agent: Agent,
        call_id: str,
        *,
        to_agent: str | None = None,
        to_number: str | None = None,
    ) -> CallView:
        """Direct transfer: the target replaces the agent when it answers."""
        call = self._serving(agent, call_id)
        target, colleague = self._target(agent, to_agent, to_number)
        consult = self._begin(agent, call, target, colleague, blind=True)
        try:
            self.telephony.transfer(
                call.connection_id or "",
                target,
                transferee=call.agent_target or "",
                operation_context=consult.context,
                caller_id=call.our_number or None,
            )
        except Exception:
            self._abandon(call, consult, unhold=False)
            raise
        return self.views.view(self.calls.get(call_id) or call, agent)

    def consult(
        self,
        agent: Agent,
        call_id: str,
        *,
        to_agent: str | None = None,
        to_number: str | None = None,
    ) -> CallView:
        """Consulted transfer, step 1: the customer on hold, the target rung for the agent."""
        call = self._serving(agent, call_id)
        target, colleague = self._target(agent, to_agent, to_number)
        consult = self._begin(agent, call, target, colleague, blind=False)
        try:
            if not call.held:
                self.telephony.hold(
                    call.connection_id or "",
                    call.customer_target or "",
                    music_url=self.hold_music_url,
                )
            invitation = self.telephony.add_participant(
                call.connection_id or "",
                target,
                invitation_timeout=45,
                operation_context=consult.context,
                caller_id=call.our_number or None,
            )
        except Exception:
            self._abandon(call, consult, unhold=not call.held)
            raise
        updated, _ = self._on_consult(
            call,
            consult.n,
            lambda c, k: replace(
                c, held=True, consult=replace(k, invitation_id=invitation or k.invitation_id)
            ),
        )
        return self.views.view(updated, agent)

    def complete(self, agent: Agent, call_id: str, now: datetime) -> CallView:
        """Step 2a: hand the customer to the target; the agent leaves, the customer resumes.
        A colleague owns the call from now (docs/api.md, "Transfers")."""
        call = self._serving(agent, call_id)
        consult = call.consult
        if consult is None or consult.blind or consult.state is not ConsultState.CONNECTED:
            raise Conflict("there is no connected consultation to complete")
        leaving = call.agent_target or ""
        updated, changed = self._on_consult(
            call,
            consult.n,
            lambda c, k: (
                transfer_completed(c, k.n, now) if k.state is ConsultState.CONNECTED else None
            ),
        )
        if not changed:
            raise Conflict("the consultation changed meanwhile; look at the call again")
        self.telephony.unhold(call.connection_id or "", call.customer_target or "")
        self.telephony.remove_participant(
            call.connection_id or "", leaving, operation_context="transfer-complete"
        )
        self.agents.release(agent.id, call.call_id)
        return self.views.view(updated, agent)

    def cancel(self, agent: Agent, call_id: str) -> CallView:
        """Step 2b: drop the target; the customer comes back off hold to the agent."""
        call = self._serving(agent, call_id)
        consult = call.consult
        if consult is None or consult.blind or not consult.active:
            raise Conflict("there is no consultation to cancel")
        updated, changed = self._on_consult(
            call,
            consult.n,
            lambda c, k: (
                replace(c, consult=replace(k, state=ConsultState.CANCELLED), held=False)
                if k.active
                else None
            ),
        )
        if not changed:
            raise Conflict("the consultation changed meanwhile; look at the call again")
        current = updated.consult or consult
        connection = call.connection_id or ""
        try:
            if consult.state is ConsultState.RINGING and current.invitation_id:
                self.telephony.cancel_add_participant(
                    connection, current.invitation_id, operation_context=consult.context
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
        return self.views.view(updated, agent)
