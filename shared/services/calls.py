"""Call flows (§2.1.1-§2.1.4, §6): incoming calls, mid-call events, routing, the activity."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.domain.activity import PhoneCallActivity, SubjectTemplates, phone_call_activity
from shared.domain.availability import (
    DirectCallAction,
    direct_call_action,
    effective,
)
from shared.domain.calls import (
    CALL_NAMESPACE,
    CALLBACK_CONFIRM,
    CALLBACK_OFFER,
    CLOSED_ANNOUNCEMENT,
    Call,
    CallbackOffer,
    CallEvent,
    CallKind,
    ConsultState,
    Direction,
    IncomingCall,
    NextStep,
    OfferOutcome,
    apply_event,
    next_step,
    with_offer,
)
from shared.domain.directory import Agent, Directory, ServicePool
from shared.domain.numbers import normalise
from shared.domain.schedule import PoolAction, Then, closure
from shared.domain.workflows import Workflow, effective_workflow
from shared.errors import Conflict, TelephonyError
from shared.services.activity_notes import stored_notes
from shared.services.ports import (
    AgentStates,
    CallbackCapture,
    CallRepository,
    Crm,
    DelayedChecks,
    EnrichmentQueue,
    PoolRoster,
    Prompt,
    RecentPoolCalls,
    Telephony,
    WaitingCalls,
)
from shared.telemetry import tag_call

log = logging.getLogger(__name__)

OFFER_PAGE = 5  # free members read per try: the offer's cost does not grow with the pool
OFFER_TRIES = 20
# An offer recorded but never rung (the host died before ACS was asked) expires this long after
# the pool's ring timeout: by then ACS would have told the result of a ring it was asked for.
LOST_RING_MARGIN_SECONDS = 15


@dataclass(frozen=True)
class CallFlowOptions:
    public_base_url: str
    callback_secret: bytes
    default_region: str
    enrich_delay_seconds: int
    templates: SubjectTemplates = field(default_factory=SubjectTemplates)
    unresolved_parties: bool = False  # DATAVERSE_UNRESOLVED_PARTIES
    outbound_ring_seconds: int = 45
    direct_ring_seconds: int = 30
    recording: bool = False  # the global setting
    rejoin_seconds: int = 60  # how long a customer waits for an agent whose panel dropped
    hold_music_url: str | None = None
    pool_recording: dict[str, bool] = field(default_factory=dict)  # per-pool overrides

    callback_offer: Prompt = field(
        default_factory=lambda: Prompt(
            "If you would like us to call you back, press 1. To keep waiting, press any other key."
        )
    )
    callback_confirm: Prompt = field(
        default_factory=lambda: Prompt(
            "Thank you. We will call you back as soon as we can. Goodbye."
        )
    )
    # overflow "queuedCallback": the callback keeps the caller's place in the queue.
    kept_place_offer: Prompt = field(
        default_factory=lambda: Prompt(
            "To keep your place in the queue and be called back when it is your turn, press 1."
            " To keep waiting, press any other key."
        )
    )
    kept_place_confirm: Prompt = field(
        default_factory=lambda: Prompt(
            "Thank you. You keep your place in the queue, and we will call you back when it"
            " is your turn. Goodbye."
        )
    )

    def records(self, pool_id: str | None) -> bool:
        return self.pool_recording.get(pool_id, self.recording) if pool_id else self.recording


class CallbackTokens:
    """The per-call secret carried in our ACS callback URL (HMAC of the call id)."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def token(self, call_id: str) -> str:
        digest = hmac.new(self._secret, call_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def valid(self, call_id: str, token: str) -> bool:
        # As bytes: compare_digest refuses non-ASCII text (a TypeError, not a wrong token).
        given = (token or "").encode("utf-8", "replace")
        return hmac.compare_digest(self.token(call_id).encode(), given)


def call_id_for(server_call_id: str) -> str:
    """One call id per ACS call, so a repeated IncomingCall finds the call it created."""
    return str(uuid.uuid5(CALL_NAMESPACE, f"server-call:{server_call_id}"))


class CallFlow:
    """Carries calls from IncomingCall to the Phone Call activity; every step idempotent."""

    def __init__(
        self,
        *,
        directory: Directory,
        calls: CallRepository,
        agents: AgentStates,
        waiting: WaitingCalls,
        telephony: Telephony,
        crm: Crm,
        enrichment: EnrichmentQueue,
        options: CallFlowOptions,
        roster: PoolRoster,
        callbacks: CallbackCapture | None = None,
        delayed: DelayedChecks | None = None,
        recent: RecentPoolCalls | None = None,
    ) -> None:
        self.callbacks, self.delayed, self.roster = callbacks, delayed, roster
        self.directory, self.calls, self.agents, self.waiting = directory, calls, agents, waiting
        self.telephony, self.crm, self.enrichment, self.options = (
            telephony,
            crm,
            enrichment,
            options,
        )
        self.tokens = CallbackTokens(options.callback_secret)
        from shared.services.prompt_links import PromptLinks
        from shared.services.rejoin import Rejoins

        self.rejoins = Rejoins(self)
        self.prompt_links = PromptLinks(options.public_base_url, options.callback_secret)
        from shared.services.queue_waits import QueueWaits

        self.queue = QueueWaits(self, recent)  # announcements, longest wait, kept places

    def callback_url(self, call_id: str) -> str:
        return (
            f"{self.options.public_base_url}/api/acs/callbacks/{call_id}"
            f"?token={self.tokens.token(call_id)}"
        )

    # ------------------------------------------------------------------ inbound

    def incoming(self, event: IncomingCall) -> Call | None:
        """Answer a call to a pool or an agent's direct number; reject one to anything else."""
        region = self.options.default_region
        caller = normalise(event.from_raw, region)
        called = normalise(event.to_raw, region)
        pool = self.directory.pool_by_number(called.value)
        agent = None if pool else self.directory.agent_by_direct_number(called.value)
        if pool is None and agent is None:
            log.info("rejecting a call to %s: not a pool or direct number", called.value)
            self.telephony.reject(event.incoming_call_context)
            return None
        call_id = call_id_for(event.server_call_id)
        tag_call(call_id)  # this invocation's spans belong to the call
        # A pool call is stored first (a repeat finds it there); a direct call's diversion
        # depends on whether it was handled before, so that one is looked up.
        existing = self.calls.get(call_id) if pool is None else None
        if existing is not None and (existing.connection_id or existing.disposition):
            return existing  # a repeated IncomingCall: already handled
        action: PoolAction | None = None
        if existing is None and pool is not None:
            pool, action = self._pool_taking(pool, event.at)
            if action is not None and action.then is not Then.POOL:
                diverted = self._divert_pool_call(call_id, pool, action, caller.value, event)
                if diverted is not None:
                    return diverted
        elif existing is not None and existing.pool_id:
            pool = self.directory.pool(existing.pool_id) or pool
        if existing is None and agent is not None:
            diverted = self._divert_direct_call(call_id, agent, caller.value, called.value, event)
            if diverted is not None:
                return diverted
        if existing is None:
            candidates = self.crm.find_customers(caller.value) if caller.valid else ()
            call = Call(
                call_id=call_id,
                direction=Direction.INBOUND,
                kind=CallKind.POOL if pool else CallKind.DIRECT,
                customer_number=caller.value,
                our_number=called.value,
                arrived_at=event.at,
                pool_id=pool.id if pool else None,
                agent_id=agent.id if agent else None,
                peer_target=f"4:{caller.value}" if caller.valid else event.from_raw,
                candidates=candidates,
                server_call_id=event.server_call_id,
                record=(
                    pool.record if pool and pool.record is not None else self.options.recording
                ),
                announcement=(action.announcement if action else None),
                announcement_prompt=(action.prompt if action else None),
                announce_then=(
                    None
                    if action is None
                    else "callback"
                    if action.then is Then.CALLBACK and pool and pool.callback
                    else "hangup"
                ),
            )
            added = self.calls.add(call)
            if (
                added
                and pool
                and action is None
                and pool.callback
                and self.delayed
                and (pool.callback.offer_after_seconds is not None)
            ):
                # After N seconds of waiting the caller is offered a callback (§5).
                self.delayed.offer_callback_later(
                    call_id, delay_seconds=pool.callback.offer_after_seconds
                )
            if added and pool and action is None:
                self.queue.arrived(call, pool)
            if not added:
                existing = self.calls.get(call_id)
                if existing is None or existing.connection_id or existing.disposition:
                    return existing  # a repeated IncomingCall: already handled
        try:
            self.telephony.answer(
                event.incoming_call_context,
                callback_url=self.callback_url(call_id),
                operation_context="answer",
            )
        except TelephonyError as exc:
            # A repeat racing the first delivery: ACS refuses the context that one used.
            if existing is None or exc.status != 400:
                raise
            log.info("call %s: the incoming call was answered already (%s)", call_id, exc.code)
        # The connection id is the call's from its first event (every event carries it): no
        # write here.
        return existing if existing is not None else call

    def _pool_taking(
        self, pool: ServicePool, now: datetime
    ) -> tuple[ServicePool, PoolAction | None]:
        """The pool that takes a new call (a closed or full pool may send it to another one,
        one hop only), and what to do instead when none does (docs/pools.md)."""
        for _ in range(2):
            shut = closure(pool.schedule, now)
            action = shut.action if shut else None
            limit = pool.overflow.max_queue_length if pool.overflow else None
            if (
                action is None
                and pool.overflow is not None
                and limit is not None
                and len(self.waiting.arrivals(pool.id, limit + 1)) >= limit
            ):
                action = pool.overflow.action
            if action is None:
                return pool, None
            if action.then is not Then.POOL:
                return pool, action
            other = self.directory.pool(action.target or "")
            if other is None or other.id == pool.id:
                return pool, replace(action, then=Then.HANG_UP, target=None)
            pool = other
        return pool, None

    def _divert_pool_call(
        self, call_id: str, pool: ServicePool, action: PoolAction, caller: str, event: IncomingCall
    ) -> Call | None:
        """A closed (or full) pool forwards the call to a number or refuses it. An
        announcement, or a callback offer, needs the call answered: None, and the call waits
        marked with what it is to hear."""
        if action.then is Then.NUMBER or not action.announces:
            if action.then is Then.CALLBACK and pool.callback is not None:
                return None
            disposition = "closed-forward" if action.then is Then.NUMBER else "closed"
            try:
                if action.then is Then.NUMBER and action.target:
                    self.telephony.redirect(event.incoming_call_context, f"4:{action.target}")
                else:
                    self.telephony.reject(event.incoming_call_context)
            except TelephonyError as exc:
                if exc.status not in (400, 404):
                    raise
            call = Call(
                call_id=call_id,
                direction=Direction.INBOUND,
                kind=CallKind.POOL,
                customer_number=caller,
                our_number=event.to_raw,
                arrived_at=event.at,
                pool_id=pool.id,
                ended_at=event.at,
                disposition=disposition,
                server_call_id=event.server_call_id,
            )
            self.calls.add(call)
            return call
        return None

    def _divert_direct_call(
        self, call_id: str, agent: Agent, caller: str, called: str, event: IncomingCall
    ) -> Call | None:
        """§1.2.1: under DND (or while busy) a direct call goes to the agent's forwarding
        target, or is refused as busy. Returns the call if it was diverted."""
        state = self.agents.state(agent.id)
        forward_to = state.forward_to or agent.forward_to
        action = direct_call_action(effective(state.availability, event.at), forward_to)
        if action is DirectCallAction.RING and state.busy_call_id:
            action = DirectCallAction.FORWARD if forward_to else DirectCallAction.BUSY
        if action is DirectCallAction.RING:
            return None
        call = Call(
            call_id=call_id,
            direction=Direction.INBOUND,
            kind=CallKind.DIRECT,
            customer_number=caller,
            our_number=called,
            arrived_at=event.at,
            agent_id=agent.id,
            ended_at=event.at,
            disposition=action.value,
            server_call_id=event.server_call_id,
        )
        # ACS first, then the record: a failure is retried with Event Grid's redelivery; on a
        # redelivery after a crash ACS refuses the used context, which means it was done.
        try:
            if action is DirectCallAction.FORWARD and forward_to:
                self.telephony.redirect(event.incoming_call_context, f"4:{forward_to}")
            else:
                self.telephony.reject(event.incoming_call_context, busy=True)
        except TelephonyError as exc:
            if exc.status not in (400, 404):
                raise
            log.info("call %s: the incoming call was already diverted (%s)", call_id, exc.code)
        self.calls.add(call)
        self.agents.note_call(agent.id, call_id, event.at)
        return call

    # ------------------------------------------------------------------ outbound (§6)

    def dial(self, agent: Agent, number: str, caller_id: str | None, at: datetime) -> Call:
        """Click-to-dial: ring the agent first (its web phone, or the mobile it chose, which
        sees `caller_id`); the customer when the agent answers."""
        callee = normalise(number, self.options.default_region)
        call_id = str(uuid.uuid4())
        tag_call(call_id)
        candidates = self.crm.find_customers(callee.value) if callee.valid else ()
        target = self.ring_target_of(agent)
        call = Call(
            call_id=call_id,
            direction=Direction.OUTBOUND,
            kind=CallKind.OUTBOUND,
            customer_number=callee.value,
            our_number=caller_id or "",
            arrived_at=at,
            agent_id=agent.id,
            peer_target=target,
            candidates=candidates,
            record=self.options.records(None),
        )
        if not self.agents.claim(agent.id, call_id):
            raise Conflict("you are on another call; end it before dialling")
        self.calls.add(call)
        self.agents.note_call(agent.id, call_id, at)
        try:
            connection_id = self.telephony.create_call(
                target,
                callback_url=self.callback_url(call_id),
                operation_context="agent-leg",
                caller_id=caller_id,
            )
        except Exception:
            # Nothing will ever end this call: end it here and free the agent.
            self.calls.update(call_id, lambda c: c if c.ended else replace(c, ended_at=at))
            self.agents.release(agent.id, call_id)
            raise
        updated = self.calls.update(
            call_id, lambda c: None if c.connection_id else replace(c, connection_id=connection_id)
        )
        return updated[0] if updated else call

    # ------------------------------------------------------------------ mid-call events

    def on_event(self, call_id: str, event: CallEvent, now: datetime) -> Call | None:
        """Record a mid-call event once, then do what the call needs next."""
        if event.type == "CallConnected":
            folded = self._offer_on_connect(call_id, event, now)
            if folded is not None:
                self.release_declined(folded, now)
                return self.advance(folded, now)
        connects: list[bool] = []
        # The event that ends an answered call makes its activity before it is written, so
        # the event and the activity's mark are one write (a crash in between makes the
        # activity again on the redelivery: D365 keeps the first, its id is the call's).
        mark = self._activity_first(call_id, event) if event.type == "CallDisconnected" else None

        def change(c: Call) -> Call:
            new = apply_event(c, event)
            connects[:] = [c.app_connected_at is None and new.app_connected_at is not None]
            return mark(new) if mark is not None else new

        result = self.calls.update(call_id, change, event_id=event.id)
        if result is None:
            return None
        # A repeat still advances the call: it may be the retry of a step that failed.
        self.release_declined(result[0], now)
        # An inbound call connected by this very write was never offered, so never queued:
        # its first offer has no queue row to remove.
        unqueued = result[1] and bool(connects and connects[0])
        return self.advance(result[0], now, unqueued=unqueued)

    def advance(self, call: Call, now: datetime, *, unqueued: bool = False) -> Call:
        """Carry out next steps until the call needs nothing more right now (`unqueued`: the
        call was never in its pool's queue)."""
        for _ in range(10):  # each step changes the call; a bound guards against a loop
            step = next_step(call)
            if step is NextStep.NOTHING:
                break
            if step is NextStep.OFFER:
                offered = self._offer(call, now, unqueued=unqueued)
                unqueued = False
                if offered is None:
                    break
                call = offered
            elif step is NextStep.HANG_UP:
                call = self._hang_up(call)
            elif step is NextStep.CREATE_ACTIVITY:
                call = self._create_activity(call)
            elif step is NextStep.REASSIGN_ACTIVITY:
                call = self._reassign_activity(call)
            elif step is NextStep.START_RECORDING:
                call = self._start_recording(call)
            elif step is NextStep.CAPTURE_CALLBACK:
                call = self._capture_callback(call, now)
            elif step is NextStep.ANNOUNCE:
                call = self._announce_closed(call, now)
            elif step is NextStep.OFFER_CALLBACK:
                call = self.offer_callback(call.call_id, now) or call
                if call.callback is None:
                    call = self._hang_up(call)  # no number to call back: nothing to offer
            elif step is NextStep.HOLD_FOR_REJOIN:
                call = self.rejoins.hold(call)
            elif step is NextStep.UNHOLD_AFTER_REJOIN:
                call = self.rejoins.unhold(call)
            elif step is NextStep.DIVERT_AFTER_REJOIN:
                call = self.rejoins.divert(call)
        if call.ended:
            if call.callback_for:
                self.queue.callback_ended(call, now)
            if (
                call.pool_id
                and (not call.answered or call.requeue_floor is not None)
                and not call.place_kept  # a callback keeps the caller's place
            ):
                # An abandoned caller leaves the queue (so does one queued again after its
                # agent dropped). An answered call left it when the offer that was answered
                # rang (if that delete was lost, the dispatcher sweeps it).
                self.waiting.remove(call.pool_id, call)
            self._release_agents(call, now)
        return call

    def hang_up(self, call: Call) -> Call:
        return self._hang_up(call)

    def _hang_up(self, call: Call) -> Call:
        # ACS first, then the mark: a failure leaves the step to be retried with the event's
        # redelivery; hanging up twice is harmless (a gone call counts as hung up).
        if call.connection_id:
            self.telephony.hang_up(call.connection_id)
        result = self.calls.update(
            call.call_id,
            lambda c: None if c.hangup_requested else replace(c, hangup_requested=True),
        )
        return result[0] if result else call

    def _start_recording(self, call: Call) -> Call:
        result = self.calls.update(
            call.call_id,
            lambda c: None if c.recording_requested else replace(c, recording_requested=True),
        )
        if result is None or not result[1] or not call.server_call_id:
            return result[0] if result else call
        try:
            recording_id = self.telephony.start_recording(
                call.server_call_id, state_callback_url=self.callback_url(call.call_id)
            )
        except Exception:
            self._unmark(call.call_id, recording_requested=False)  # retried on the next event
            raise
        updated = self.calls.update(
            call.call_id,
            lambda c: None if c.recording_id else replace(c, recording_id=recording_id),
        )
        return updated[0] if updated else result[0]

    def _announce_closed(self, call: Call, now: datetime) -> Call:
        """A closed pool's announcement (its uploaded prompt, else the text read out); its
        PlayCompleted hangs up (once)."""
        result = self.calls.update(
            call.call_id, lambda c: None if c.announced else replace(c, announced="playing")
        )
        if result is None or not result[1]:
            return result[0] if result else call
        try:
            self.telephony.play(
                call.connection_id or "",
                Prompt(call.announcement or "", self._prompt_url(call, now)),
                operation_context=CLOSED_ANNOUNCEMENT,
            )
        except Exception:
            self._unmark(call.call_id, announced="")
            raise
        return result[0]

    def _prompt_url(self, call: Call, now: datetime) -> str | None:
        prompt = call.announcement_prompt
        if not (prompt and call.pool_id):
            return None
        return self.prompt_links.url(call.pool_id, prompt, now)

    def _withdraw_pending_offer(self, call: Call) -> None:
        """The caller chose a callback: stop ringing the agent offered the call meanwhile."""
        offer = call.pending_offer
        if offer is None:
            return
        if offer.invitation_id and call.connection_id:
            with contextlib.suppress(TelephonyError):  # it may have just stopped ringing
                self.telephony.cancel_add_participant(
                    call.connection_id, offer.invitation_id, operation_context=offer.context
                )
        if offer.agent_id:
            self.agents.release(offer.agent_id, call.call_id)

    def _unmark(self, call_id: str, **fields: Any) -> None:
        """Undo a "requested" mark after the request failed, so the step is tried again."""
        self.calls.update(call_id, lambda c: replace(c, **fields))

    # ------------------------------------------------------------------ callbacks (§5)

    def offer_callback(
        self, call_id: str, now: datetime, *, keep_place: bool = False
    ) -> Call | None:
        """Offer a waiting pool caller a callback: press 1 to leave a request (`keep_place`:
        one that keeps the caller's place in the queue, docs/pools.md)."""
        call = self.calls.get(call_id)
        pool = self.directory.pool(call.pool_id or "") if call else None
        if (
            call is None
            or pool is None
            or (pool.callback is None and not keep_place)
            or call.answered
            or call.ended
            or not _may_offer_callback(call, keep_place)
            or not call.connection_id
            or not (call.peer_target or "").startswith("4:+")
        ):
            return call  # answered, gone, offered before, or no number to call back

        result = self.calls.update(
            call_id,
            lambda c: (
                replace(c, callback=CallbackOffer.OFFERED, keeps_place=keep_place)
                if _may_offer_callback(c, keep_place)
                else None
            ),
        )
        if result is None or not result[1]:
            return result[0] if result else call
        try:
            self.telephony.recognize_dtmf(
                call.connection_id,
                call.peer_target or "",
                prompt=self.options.kept_place_offer if keep_place else self.options.callback_offer,
                operation_context=CALLBACK_OFFER,
                silence_timeout=10,
            )
        except Exception:
            self._unmark(call_id, callback=call.callback, keeps_place=False)
            raise
        return result[0]

    def _capture_callback(self, call: Call, now: datetime) -> Call:
        pool = self.directory.pool(call.pool_id or "")
        stored = call.keeps_place or bool(  # a kept place stays in the queue, not a list
            pool
            and pool.callback
            and self.callbacks
            and self.callbacks.capture_from_call(call, pool.callback.list_id, now)
        )
        # Stored first, then marked: a crash in between repeats an idempotent capture.
        outcome = CallbackOffer.CAPTURED if stored else CallbackOffer.DECLINED
        result = self.calls.update(
            call.call_id,
            lambda c: (
                None if c.callback is not CallbackOffer.ACCEPTED else replace(c, callback=outcome)
            ),
        )
        if result is None or not result[1]:
            return result[0] if result else call
        if stored and call.pool_id:
            if call.keeps_place:
                # Its place: the row of its arrival (an agent rung meanwhile took it out).
                self.waiting.add(call.pool_id, call)
            else:
                self.waiting.remove(call.pool_id, call)
            self._withdraw_pending_offer(result[0])
            self.telephony.play(
                call.connection_id or "",
                self.options.kept_place_confirm
                if call.keeps_place
                else self.options.callback_confirm,
                operation_context=CALLBACK_CONFIRM,
            )
        return result[0]

    # ------------------------------------------------------------------ routing

    def _offer(
        self,
        call: Call,
        now: datetime,
        nobody_free: list[bool] | None = None,
        *,
        unqueued: bool = False,
    ) -> Call | None:
        """Ring the call's next target; None if this invocation did not (`nobody_free` is
        told True when it waits because no member was free for it; `unqueued`: the call was
        never in the queue, so ringing it removes no queue row unless this offer queued it)."""
        if call.direction is Direction.OUTBOUND:
            if call.callback_for:  # calling back a kept place: it leaves the queue now
                self.queue.callback_taken(call)
            return self._ring(
                call,
                f"4:{call.customer_number}",
                None,
                now,
                self.options.outbound_ring_seconds,
                caller_id=call.our_number,
            )
        if call.kind is CallKind.DIRECT:
            agent = self.directory.agent(call.agent_id or "")
            if agent is None or not self.agents.claim(agent.id, call.call_id):
                return self._hang_up(call)  # busy (or gone from the directory): unanswered
            target, caller_id = self.endpoint_of(agent, call)
            return self._ring(
                call, target, agent.id, now, self.options.direct_ring_seconds, caller_id=caller_id
            )
        pool = self.directory.pool(call.pool_id or "")
        if pool is None:
            return self._hang_up(call)
        # A member claimed for this call whose offer was never recorded (the process died in
        # between) is rung now: its claim is taken up again, not leaked.
        page = OFFER_PAGE + len(call.tried)
        leaked, free = self.roster.claimed_and_free(pool.id, call.call_id, now, page)
        queued = False
        # Each try reads one page of free members. A claim lost to a call arriving at the
        # same moment took that member out of the index, so the next page is another one:
        # the tries are bounded by the calls racing, never by the pool's size.
        for attempt in range(OFFER_TRIES):
            if attempt:
                free = self.roster.free_members(pool.id, now, page)
            elif leaked:
                free = leaked
            if not free and not queued:
                # The caller waits; a freed agent picks it up. An agent freed between the read
                # above and this write may have looked at the queue before the call was in it:
                # look once more, so no caller waits beside a free agent.
                self.waiting.add(pool.id, call)
                queued = True
                continue
            if not free:
                if (
                    pool.callback
                    and pool.callback.when_closed
                    and not self.roster.anyone_serving(pool.id)
                ):
                    self.offer_callback(call.call_id, now)  # nobody serves the pool: closed
                else:
                    self.queue.joined(call, pool, now)
                if nobody_free is not None:
                    nobody_free.append(True)
                return None
            untried = [a for a in free if a not in call.tried]
            # Every free member rang once in this round: a new round starts.
            new_round = not untried
            claimed, rung = self._ring_first(
                call, pool, untried or free, now, new_round=new_round, queued=queued or not unqueued
            )
            if claimed:
                return rung
        self.waiting.add(pool.id, call)
        if nobody_free is not None:
            nobody_free.append(True)  # every try lost its claims: the members are taken
        return None

    def _ring_first(
        self,
        call: Call,
        pool: ServicePool,
        candidates: list[str],
        now: datetime,
        *,
        new_round: bool,
        queued: bool,
        event: CallEvent | None = None,
    ) -> tuple[bool, Call | None]:
        """Claim the first candidate that can be claimed and ring it: (whether one was
        claimed, the call as rung or None if another invocation offered it meanwhile)."""
        # Calls arriving together read the same page: one that loses the claim on an agent
        # moves on to the next one, so they spread over the free members.
        for agent_id in candidates:
            try:
                if not self.agents.claim(agent_id, call.call_id):
                    continue
                agent = self.directory.agent(agent_id)
                if agent is None:
                    self.agents.release(agent_id, call.call_id)
                    continue
                target, caller_id = self.endpoint_of(agent, call)
            except Exception:
                # The claim may have been written: a claim no offer names is never freed by
                # the call's end, so it goes now (a release is per call: harmless).
                self._free_claim(agent_id, call.call_id)
                raise
            return True, self._ring(
                replace(call, tried=()) if new_round else call,
                target,
                agent.id,
                now,
                pool.ring_timeout_seconds,
                caller_id=caller_id,
                reset_round=new_round,
                queued=queued,
                event=event,
            )
        return False, None

    def _offer_on_connect(self, call_id: str, event: CallEvent, now: datetime) -> Call | None:
        """A pool call's CallConnected and its first offer in one write: the member is claimed
        first, then the event and the offer are stored together. None when this does not
        apply (not a new pool call's connection, nobody free, or the call changed meanwhile):
        the event is then recorded and the call advanced as any other. The call as this
        instance last saw it decides whether to try; the write checks it against the stored
        one."""
        base = self.calls.guess(call_id) or self.calls.get(call_id)
        if (
            base is None
            or base.app_connected_at is not None
            or base.kind is not CallKind.POOL
            or base.direction is not Direction.INBOUND
        ):
            return None
        after = apply_event(base, event)
        pool = self.directory.pool(after.pool_id or "")
        if pool is None or after.tried or next_step(after) is not NextStep.OFFER:
            return None
        leaked, free = self.roster.claimed_and_free(pool.id, call_id, now, OFFER_PAGE)
        _, rung = self._ring_first(
            after, pool, leaked or free, now, new_round=False, queued=False, event=event
        )
        return rung

    def endpoint_of(self, agent: Agent, call: Call) -> tuple[str, str | None]:
        """What rings for `agent`: its web phone, or the mobile it chose (PUT /me/endpoint),
        added as a PSTN participant that sees the number the customer called (the pool's or
        the agent's direct number) as the caller id."""
        target = self.ring_target_of(agent)
        return target, (call.our_number or None) if target.startswith("4:") else None

    def ring_target_of(self, agent: Agent) -> str:
        """The agent's web phone, or as a PSTN target the mobile it chose (PUT /me/endpoint)."""
        mobile = self.agents.state(agent.id).mobile_number
        return f"4:{mobile}" if mobile else agent.ring_target

    def workflow_of(self, call: Call) -> Workflow:
        """The phone workflow of the call's agent (its own setting wins over the pool's)."""
        agent = self.directory.agent(call.talk_agent_id or call.agent_id or "")
        pool = self.directory.pool(call.pool_id or "")
        return effective_workflow(
            agent.workflow if agent else None, pool.workflow if pool else None
        )

    def _ring(
        self,
        call: Call,
        target: str,
        agent_id: str | None,
        now: datetime,
        timeout: int,
        *,
        caller_id: str | None = None,
        reset_round: bool = False,
        queued: bool = True,
        event: CallEvent | None = None,
    ) -> Call | None:
        """Record the offer (with `event`, which is then written with it, or not at all),
        then ring. `queued`: the call may have a queue row, which goes once ACS rings."""
        connected_before: list[bool] = []

        def add_offer(current: Call) -> Call | None:
            if event is not None:
                # Connected before this event: the call may have been queued meanwhile.
                connected_before[:] = [current.app_connected_at is not None]
                current = apply_event(current, event)
            if next_step(current) is not NextStep.OFFER:
                return None  # someone else offered it already, or it ended
            base = replace(current, tried=()) if reset_round else current
            return with_offer(base, target, agent_id, now)

        try:
            result = self.calls.update(
                call.call_id, add_offer, event_id=event.id if event is not None else None
            )
        except Exception:
            if agent_id:  # the offer may not be recorded: no claim is left behind
                self._free_claim(agent_id, call.call_id)
            raise
        if result is None or not result[1]:
            # Someone else offered the call meanwhile. Our claim is freed, unless that offer
            # went to the same agent: a claim is per call, so it is theirs as much as ours.
            if agent_id and not (result and _rings_or_serves(result[0], agent_id)):
                self.agents.release(agent_id, call.call_id)
            return None
        updated = result[0]
        offer = updated.offers[-1]
        if agent_id:
            self.agents.note_call(agent_id, call.call_id, now)
        try:
            invitation = self.telephony.add_participant(
                updated.connection_id or "",
                target,
                invitation_timeout=timeout,
                operation_context=offer.context,
                caller_id=caller_id or None,
                voip_headers=ring_headers(updated, target),
            )
        except Exception:
            # The offer never rang: settle it so the call is offered again, free the agent.
            failed = CallEvent(f"ring-failed-{offer.n}", "AddParticipantFailed", now, offer.context)
            self.calls.update(call.call_id, lambda c: apply_event(c, failed))
            if agent_id:
                self.agents.release(agent_id, call.call_id)
            raise
        if invitation:
            self.calls.update(call.call_id, lambda c: _with_invitation(c, offer.n, invitation))
        if call.pool_id and (queued or any(connected_before)):
            # Out of the queue only once ACS rings: a host that dies before leaves the call
            # in the queue, where the next dispatch finds its offer and expires it.
            self.waiting.remove(call.pool_id, call)
        return updated

    def _free_claim(self, agent_id: str, call_id: str) -> None:
        with contextlib.suppress(Exception):  # the error that got here is the one to raise
            self.agents.release(agent_id, call_id)

    def expire_lost_offer(self, call: Call, now: datetime) -> Call | None:
        """A pending offer never rung (the host died between recording it and asking ACS):
        settled as not answered once the ring timeout and a margin are over, its agent freed,
        so the call is offered again. None while it may still ring (or was rung)."""
        offer = call.pending_offer
        if offer is None or offer.invitation_id or offer.rejoin:
            return None
        pool = self.directory.pool(call.pool_id or "")
        timeout = pool.ring_timeout_seconds if pool else self.options.direct_ring_seconds
        if now - offer.offered_at < timedelta(seconds=timeout + LOST_RING_MARGIN_SECONDS):
            return None
        lost = CallEvent(f"ring-lost-{offer.n}", "AddParticipantFailed", now, offer.context)
        result = self.calls.update(call.call_id, lambda c: apply_event(c, lost), event_id=lost.id)
        if result is None:
            return None
        log.warning("call %s: offer %s was never rung; offered again", call.call_id, offer.n)
        self.release_declined(result[0], now)
        return result[0]

    def _release_agents(self, call: Call, now: datetime) -> None:
        """An ended call frees its agents; each freed agent takes the oldest waiting call."""
        involved = (
            {o.agent_id for o in call.offers if o.agent_id}
            | ({call.agent_id} if call.agent_id else set())
            | ({call.consult.agent_id} if call.consult and call.consult.agent_id else set())
        )
        pool = self.directory.pool(call.pool_id) if call.pool_id else None
        freed_any = False
        for agent_id in sorted(involved):
            # The agent who talked to a pool's caller has the pool's after-call work time.
            wrap_up = pool.wrap_up_seconds if pool and agent_id == call.talk_agent_id else 0
            if not self.agents.release(agent_id, call.call_id, wrap_up_seconds=wrap_up):
                continue
            freed_any = True
            if wrap_up and self.delayed is not None:
                self.delayed.after_wrap_up(agent_id, delay_seconds=wrap_up)
            else:
                self.dispatch_waiting(agent_id, now)
        if not freed_any and involved:
            # A repeat (or a retry) dispatches too: the invocation that freed the agents may
            # have died before it gave them the next waiting callers.
            self.dispatch_waiting(sorted(involved)[0], now)

    def release_declined(self, call: Call, now: datetime) -> None:
        """Offers that failed free their agents at once (not only when the call ends)."""
        failed = (OfferOutcome.NOT_ANSWERED, OfferOutcome.CANCELLED)
        still_wanted = {o.agent_id for o in call.offers if o.outcome is OfferOutcome.PENDING}
        for offer in call.offers:
            agent_id = offer.agent_id
            if (
                not agent_id
                or offer.outcome not in failed
                or agent_id == call.answered_by
                or agent_id in still_wanted
            ):  # rung again in a later round: keep the claim
                continue
            if self.agents.release(agent_id, call.call_id):
                self.dispatch_waiting(agent_id, now, skip=call.call_id)
        consult = call.consult
        if consult is None or not consult.agent_id:
            return
        # A transfer that failed frees the colleague; one that succeeded frees the agent who
        # handed the call over.
        if consult.state in (ConsultState.FAILED, ConsultState.CANCELLED):
            freed = consult.agent_id
        elif consult.state is ConsultState.COMPLETED:
            handover = next((h for h in call.handovers if h.n == consult.n), None)
            freed = handover.from_agent_id if handover else call.talk_agent_id or ""
        else:
            return
        if freed and self.agents.release(freed, call.call_id):
            self.dispatch_waiting(freed, now, skip=call.call_id)

    def dispatch_waiting(self, agent_id: str, now: datetime, skip: str | None = None) -> None:
        """A freed agent takes the oldest call still waiting in one of its pools."""
        for pool in self.directory.pools_of(agent_id):
            if self.dispatch_pool(pool.id, now, skip=skip):
                return

    def dispatch_pool(self, pool_id: str, now: datetime, skip: str | None = None) -> bool:
        """Offer the pool's oldest waiting call again (a member freed, added or switched on,
        or the pool's settings changed). True if there was one. A call being rung is passed
        over (one whose offer was never rung expires), and so is one another invocation
        offered meanwhile while a member is still free: no caller waits behind it."""
        for _ in range(10):  # a page of 10 at a time; ended calls are swept as they are seen
            page = [c for c in self.waiting.oldest(pool_id, 10) if c != skip]
            for call_id in page:
                waiting = self.calls.get(call_id)
                if waiting is not None and waiting.place_kept:
                    offered = self.queue.call_back(waiting, now)
                    if offered is None:
                        continue  # being offered to a member: it keeps its place
                    return True
                if (
                    waiting is None
                    or waiting.ended
                    or (waiting.answered and not waiting.needs_agent)
                ):
                    if waiting is not None:
                        self.waiting.remove(pool_id, waiting)
                    continue
                if waiting.pending_offer is not None:
                    expired = self.expire_lost_offer(waiting, now)
                    if expired is None:
                        continue  # ringing a member: the callers behind it are offered
                    waiting = expired
                if next_step(waiting) is NextStep.OFFER:
                    nobody_free: list[bool] = []
                    rung = self._offer(waiting, now, nobody_free)
                    if rung is None and not nobody_free:
                        continue  # offered by another invocation meanwhile: the next caller
                    if rung is not None:
                        self.advance(rung, now)
                    return True
                self.advance(waiting, now)
                return True
            if len(page) < 10:
                break
        return False

    def dispatch_pools(self, now: datetime) -> None:
        """Housekeeping (docs/pools.md, Routing): what a crash left behind is put right even
        when nothing else happens in the pool. Every agent's claim is looked at (one query,
        a read per claimed call): an offer never rung expires and the call is offered again;
        a claim by a call that ended without offering the agent is freed. Then each pool's
        queue is dispatched."""
        try:
            self._heal_claims(now)
        except Exception:
            log.exception("the claims check failed; the next one tries again")
        for pool in self.directory.all_pools():
            try:
                self.dispatch_pool(pool.id, now)
            except Exception:
                log.exception("pool %s: the queue check failed; the next one tries again", pool.id)

    def _heal_claims(self, now: datetime) -> None:
        for agent_id, call_id in self.agents.claims():
            call = self.calls.get(call_id)
            if call is None:
                continue  # a dial claims before the call is stored
            offer = call.pending_offer
            if offer is not None and offer.agent_id == agent_id and not call.ended:
                expired = self.expire_lost_offer(call, now)
                if expired is not None:
                    self.advance(expired, now)
                continue
            pool = self.directory.pool(call.pool_id or "")
            timeout = pool.ring_timeout_seconds if pool else self.options.direct_ring_seconds
            margin = timedelta(seconds=timeout + LOST_RING_MARGIN_SECONDS)
            if (
                call.ended_at is not None
                and now - call.ended_at >= margin
                # Ended, and its end freed everyone it offered: this claim was never offered.
                and self.agents.release(agent_id, call_id)
            ):
                log.warning("agent %s: claim by ended call %s freed", agent_id, call_id)
                self.dispatch_waiting(agent_id, now)

    # ------------------------------------------------------------------ the activity (§3)

    def _phone_call(self, call: Call, agent: Agent) -> PhoneCallActivity:
        """The call's activity, the agent who owns the call (after a transfer, the colleague
        who took it) its owner and agent party; every agent's notes, attributed."""
        pool = self.directory.pool(call.pool_id or "")
        activity = phone_call_activity(
            call,
            agent_user_id=agent.system_user_id,
            agent_name=agent.name,
            pool_name=pool.name if pool else "",
            notes=stored_notes(self.calls, call),
            templates=self.options.templates,
            unresolved_parties=self.options.unresolved_parties,
        )
        if call.case_id:  # CaseDialog: the activity regards the case the agent chose
            activity = replace(activity, regarding_case=call.case_id)
        return activity

    def _activity_first(self, call_id: str, event: CallEvent) -> Callable[[Call], Call] | None:
        """If `event` ends the call and its activity is due: make it now (the call and its
        notes read in one request) and return the mark to write with the event."""
        current = self.calls.get_with_notes(call_id)
        if current is None:
            return None
        ended = apply_event(current, event)
        if ended == current or next_step(ended) is not NextStep.CREATE_ACTIVITY:
            return None
        made = self._make_activity(ended)
        if made is None:
            return None
        return lambda c: _with_activity(c, *made) if next_step(c) is NextStep.CREATE_ACTIVITY else c

    def _make_activity(self, call: Call, *, asked: bool = False) -> tuple[str, str | None] | None:
        """Make the call's activity in D365 (and schedule its enrichment): the activity id
        and owner to mark the call with; ("", None) for a Contact&Account call, which gets
        none; None if the agent is unknown."""
        owner = call.owner_agent_id
        agent = self.directory.agent(owner or "")
        if agent is None:
            log.warning("call %s: answering agent unknown, no activity", call.call_id)
            return None
        if (
            not asked
            and not call.activity_requested
            and self.workflow_of(call) is Workflow.CONTACT_ACCOUNT
        ):
            # Contact&Account: identification and screen pop only; the agent may still save an
            # activity from the panel (save_activity). "" marks "none made" on the call.
            return "", None
        activity = self._phone_call(call, agent)
        self.crm.create_phone_call(activity)
        # Enrichment is scheduled before the activity is marked as made: a crash in between
        # repeats both (each idempotent) rather than leaving an activity never enriched.
        self.enrichment.schedule(call.call_id, delay_seconds=self.options.enrich_delay_seconds)
        return activity.activity_id, owner

    def _create_activity(self, call: Call, *, asked: bool = False) -> Call:
        made = self._make_activity(call, asked=asked)
        if made is None:
            return replace(call, activity_id="")
        result = self.calls.update(call.call_id, lambda c: _with_activity(c, *made))
        return result[0] if result else replace(call, activity_id=made[0])

    def _reassign_activity(self, call: Call) -> Call:
        """A transfer's completion came in after the activity was written (its event late):
        the activity follows the call to the colleague who took it."""
        owner = call.owner_agent_id
        agent = self.directory.agent(owner or "")
        if agent is not None and call.activity_id:
            activity = replace(self._phone_call(call, agent), activity_id=call.activity_id)
            if not self.crm.reassign_phone_call(activity):
                log.warning(
                    "call %s: the activity is completed; it stays with its first owner",
                    call.call_id,
                )
        result = self.calls.update(
            call.call_id,
            lambda c: (
                None
                if c.activity_owner == c.owner_agent_id
                else replace(c, activity_owner=c.owner_agent_id)
            ),
        )
        return result[0] if result else replace(call, activity_owner=owner)

    def save_activity(self, call: Call) -> Call:
        """Contact&Account: the agent saves the Phone Call activity after all. An ended call
        gets it now (once: the activity id is the call's); a live one when it ends."""
        if call.activity_id:
            return call
        if not call.ended:
            result = self.calls.update(
                call.call_id,
                lambda c: None if c.activity_requested else replace(c, activity_requested=True),
            )
            return result[0] if result else call
        return self._create_activity(replace(call, activity_id=None), asked=True)


def ring_headers(call: Call, target: str) -> dict[str, str] | None:
    """What a web phone (an ACS user) is told with the ring: our call id, so the panel knows
    which call rings. Phone numbers get nothing (VoIP headers are for ACS users only)."""
    return {"callId": call.call_id} if target.startswith("8:acs:") else None


def _may_offer_callback(call: Call, keep_place: bool) -> bool:
    """Offered once; a caller who declined a callback may still be offered to keep its place."""
    return call.callback is None or (keep_place and call.callback is CallbackOffer.DECLINED)


def _rings_or_serves(call: Call, agent_id: str) -> bool:
    """The agent is rung for the call, or took it: its claim must stay."""
    live = (OfferOutcome.PENDING, OfferOutcome.ANSWERED)
    return any(o.agent_id == agent_id and o.outcome in live for o in call.offers)


def _with_activity(call: Call, activity_id: str, owner: str | None) -> Call:
    """The call marked with its activity ("": none made, Contact&Account); a mark already
    there stays (a real activity may replace "none made": the agent saved one after all)."""
    if activity_id and not call.activity_id:
        return replace(call, activity_id=activity_id, activity_owner=owner)
    if not activity_id and call.activity_id is None:
        return replace(call, activity_id="")
    return call


def _with_invitation(call: Call, n: int, invitation: str) -> Call | None:
    offers = tuple(
        replace(o, invitation_id=invitation) if o.n == n and not o.invitation_id else o
        for o in call.offers
    )
    return None if offers == call.offers else replace(call, offers=offers)
