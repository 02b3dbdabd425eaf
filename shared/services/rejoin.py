"""A refresh never drops the customer: when the serving agent's web phone leaves the call without
a hang-up, the customer hears hold music; the agent's next session is rung back into the same
call; after REJOIN_SECONDS a pool caller goes back to the front of the queue and a direct call
to the agent's DND target (or ends). The fold is in shared/domain/calls.py."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from shared.domain.calls import (
    Call,
    CallEvent,
    CallKind,
    OfferOutcome,
    apply_event,
    rejoin_expired,
    with_rejoin_offer,
)
from shared.domain.directory import Agent
from shared.errors import TelephonyError

if TYPE_CHECKING:
    from shared.services.calls import CallFlow

log = logging.getLogger(__name__)
DIVERT_CONTEXT = "rejoin-divert"


class Rejoins:
    def __init__(self, flow: CallFlow) -> None:
        self.flow = flow

    # ---- steps of CallFlow.advance ------------------------------------------------------------

    def hold(self, call: Call) -> Call:
        """Music for the customer while the agent is away; the expiry check is scheduled."""
        flow = self.flow
        if call.rejoin_hold:
            return call
        # The deadline first: a repeat is harmless (the check looks at the call), while a mark
        # made before a failed schedule would leave the customer waiting with no deadline.
        if flow.delayed is not None:
            flow.delayed.check_rejoin_later(call.call_id, delay_seconds=flow.options.rejoin_seconds)
        result = flow.calls.update(
            call.call_id, lambda c: None if c.rejoin_hold else replace(c, rejoin_hold=True)
        )
        if result is None or not result[1]:
            return result[0] if result else call
        try:
            flow.telephony.hold(
                call.connection_id or "",
                call.customer_target or "",
                music_url=flow.options.hold_music_url,
            )
        except TelephonyError as exc:
            if exc.status != 404:  # the caller just left: the roster will say so
                flow.calls.update(call.call_id, lambda c: replace(c, rejoin_hold=False))
                raise
        except Exception:
            flow.calls.update(call.call_id, lambda c: replace(c, rejoin_hold=False))
            raise
        return result[0]

    def unhold(self, call: Call) -> Call:
        """The agent is back (or another agent answered): the customer off hold."""
        flow = self.flow
        result = flow.calls.update(
            call.call_id, lambda c: replace(c, rejoin_hold=False) if c.rejoin_hold else None
        )
        if result is None or not result[1]:
            return result[0] if result else call
        try:
            flow.telephony.unhold(call.connection_id or "", call.customer_target or "")
        except TelephonyError as exc:
            if exc.status != 404:
                flow.calls.update(call.call_id, lambda c: replace(c, rejoin_hold=True))
                raise
        except Exception:
            flow.calls.update(call.call_id, lambda c: replace(c, rejoin_hold=True))
            raise
        return result[0]

    def divert(self, call: Call) -> Call:
        """A direct call whose agent did not come back: to the agent's DND target, else end."""
        flow = self.flow
        agent = flow.directory.agent(call.agent_id or "")
        forward_to = None
        if agent is not None:
            forward_to = flow.agents.state(agent.id).forward_to or agent.forward_to
        if not forward_to or call.kind is not CallKind.DIRECT:
            return flow.hang_up(call)
        # ACS first, then the mark (as a hang-up): a failure is retried with the next event.
        flow.telephony.transfer(
            call.connection_id or "",
            f"4:{forward_to}",
            transferee=call.customer_target or "",
            operation_context=DIVERT_CONTEXT,
            caller_id=call.our_number or None,
        )
        result = flow.calls.update(
            call.call_id,
            lambda c: None if c.hangup_requested else replace(c, hangup_requested=True),
        )
        return result[0] if result else call

    # ---- the agent's new session, and the deadline --------------------------------------------

    def ring_back(self, agent: Agent, now: datetime) -> Call | None:
        """A new web phone session of an agent whose panel dropped mid-call: ring it back in."""
        flow = self.flow
        call_id = flow.agents.latest_call(agent.id)
        call = flow.calls.get(call_id) if call_id else None
        if call is None or not call.awaiting_rejoin or call.serving_agent_id != agent.id:
            return None
        target = agent.ring_target
        result = flow.calls.update(
            call.call_id, lambda c: with_rejoin_offer(c, target, agent.id, now)
        )
        if result is None or not result[1]:
            return None
        rung = result[0]
        offer = rung.offers[-1]
        try:
            invitation = flow.telephony.add_participant(
                rung.connection_id or "",
                target,
                invitation_timeout=flow.options.direct_ring_seconds,
                operation_context=offer.context,
                voip_headers={"callId": call.call_id, "rejoin": "true"},
            )
        except Exception:
            failed = CallEvent(f"ring-failed-{offer.n}", "AddParticipantFailed", now, offer.context)
            flow.calls.update(call.call_id, lambda c: apply_event(c, failed))
            raise
        if invitation:
            flow.calls.update(
                call.call_id,
                lambda c: replace(
                    c,
                    offers=tuple(
                        replace(o, invitation_id=invitation) if o.n == offer.n else o
                        for o in c.offers
                    ),
                ),
            )
        return rung

    def expired(self, call_id: str, now: datetime) -> Call | None:
        """REJOIN_SECONDS after the drop (a delayed queue message): requeue or divert."""
        flow = self.flow
        before = flow.calls.get(call_id)
        result = flow.calls.update(
            call_id, lambda c: rejoin_expired(c, now, flow.options.rejoin_seconds)
        )
        if result is None or not result[1] or before is None:
            return result[0] if result else None  # back already, ended, or not time yet
        call = result[0]
        pending = next(
            (o for o in before.offers if o.rejoin and o.outcome is OfferOutcome.PENDING), None
        )
        if pending is not None and pending.invitation_id and call.connection_id:
            with contextlib.suppress(TelephonyError):  # it may have just stopped ringing
                flow.telephony.cancel_add_participant(
                    call.connection_id, pending.invitation_id, operation_context=pending.context
                )
        if call.kind is CallKind.POOL and before.serving_agent_id:
            # The away agent no longer holds the caller: free it (its next session is idle).
            flow.agents.release(before.serving_agent_id, call_id)
        log.info("call %s: the agent did not come back in time (%s)", call_id, call.kind.value)
        return flow.advance(call, now)
