"""The call: its state built from events that may come twice and out of order, and what to do next.

Every field is set by a rule that gives the same result whatever order the events arrive in
(earliest time wins, terminal outcomes stick), so a replayed or late event cannot undo progress.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from shared.domain.customers import CustomerRef, customer_of_record

# Namespace of deterministic ids derived from our call ids (Phone Call activityid etc.).
CALL_NAMESPACE = uuid.UUID("6f1c2a52-3f0e-4d7b-9a55-2f7a1e0c9d41")


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class CallKind(StrEnum):
    POOL = "pool"  # to a service pool number: offered to its members one at a time
    DIRECT = "direct"  # to an agent's direct number
    OUTBOUND = "outbound"  # click-to-dial: the agent's leg first, then the customer


class OfferOutcome(StrEnum):
    PENDING = "pending"
    ANSWERED = "answered"
    NOT_ANSWERED = "notAnswered"  # declined, timed out or failed
    CANCELLED = "cancelled"


class Phase(StrEnum):
    """What the agent's panel shows."""

    CONNECTING = "connecting"  # the app's own leg is not up yet
    WAITING = "waiting"  # in the pool's queue, nobody is being offered the call
    RINGING = "ringing"  # offered to an agent (inbound) or ringing the customer (outbound)
    CONNECTED = "connected"
    ENDED = "ended"
    # This agent handed the customer to a colleague (a completed transfer): the call goes on,
    # it is the colleague's now (their notes, their activity), over for this agent.
    TRANSFERRED = "transferred"


class Outcome(StrEnum):
    ANSWERED = "answered"
    DECLINED = "declined"  # an agent refused it / the customer refused an outbound call
    UNANSWERED = "unanswered"
    ABANDONED = "abandoned"  # the caller hung up before anyone answered
    FORWARDED = "forwarded"  # a direct call to an agent in DND, sent to their forwarding target
    BUSY = "busy"  # a direct call refused as busy (DND without a target, or on another call)
    CALLBACK_REQUESTED = "callbackRequested"  # the caller left a callback request (§5)


@dataclass(frozen=True)
class Offer:
    """One attempt to connect: ringing an agent (inbound) or the customer (outbound)."""

    n: int
    target: str  # ACS raw id rung
    agent_id: str | None  # the agent offered (inbound); None when ringing the customer
    offered_at: datetime
    outcome: OfferOutcome = OfferOutcome.PENDING
    settled_at: datetime | None = None
    invitation_id: str | None = None
    rejoin: bool = False  # ringing the serving agent back into its call after a drop

    @property
    def context(self) -> str:
        """operation_context sent to ACS, so the result event finds this offer."""
        return f"offer:{self.n}"


class ConsultState(StrEnum):
    RINGING = "ringing"
    CONNECTED = "connected"  # consulted transfer: the agent talks to the target
    COMPLETED = "completed"  # the target has the customer now
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Consult:
    """A transfer: direct (`blind`) or consulted (the customer on hold meanwhile)."""

    n: int
    target: str
    agent_id: str | None
    blind: bool
    state: ConsultState = ConsultState.RINGING
    invitation_id: str | None = None
    # Who hands the call over, and the names the attributed notes show (the directory's).
    from_agent_id: str | None = None
    from_name: str = ""
    to_name: str = ""

    @property
    def context(self) -> str:
        return f"{'transfer' if self.blind else 'consult'}:{self.n}"

    @property
    def active(self) -> bool:
        return self.state in (ConsultState.RINGING, ConsultState.CONNECTED)


@dataclass(frozen=True)
class Handover:
    """A transfer to a colleague that completed: from `at` the call is `to_agent_id`'s (the
    panel, the notes, the Phone Call activity); `from_agent_id`'s notes are kept, attributed."""

    n: int  # the transfer (Consult.n) that made it: a repeat of its event adds nothing
    from_agent_id: str
    from_name: str
    to_agent_id: str
    to_name: str
    at: datetime


@dataclass(frozen=True)
class IncomingCall:
    """The parts of an Event Grid IncomingCall event the flow needs."""

    event_id: str
    from_raw: str
    to_raw: str
    server_call_id: str
    incoming_call_context: str
    at: datetime


@dataclass(frozen=True)
class CallEvent:
    """A mid-call event, as much of it as the domain needs."""

    id: str
    type: str  # CallConnected, AddParticipantSucceeded, ... (without the namespace)
    at: datetime
    operation_context: str | None = None
    participants: tuple[str, ...] = ()  # raw ids, for ParticipantsUpdated
    sequence: int | None = None
    result_code: int | None = None
    server_call_id: str | None = None
    tones: tuple[str, ...] = ()  # RecognizeCompleted: the keys pressed ("one", "pound", ...)
    connection_id: str | None = None  # callConnectionId: known before answer_call returns


class CallbackOffer(StrEnum):
    """§5: a waiting caller is offered a callback; pressing 1 leaves a request."""

    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"  # another key, or none: back to waiting in the queue
    CAPTURED = "captured"  # the request is stored; the caller hears a confirmation
    CONFIRMED = "confirmed"  # the confirmation has played: the call can end


CALLBACK_OFFER, CALLBACK_CONFIRM = "callback-offer", "callback-confirm"
CLOSED_ANNOUNCEMENT = "closed-announcement"
QUEUE_ANNOUNCEMENT, OVERFLOW_TRANSFER = "queue-announcement", "overflow-transfer"


@dataclass(frozen=True)
class Call:
    call_id: str
    direction: Direction
    kind: CallKind
    customer_number: str
    our_number: str
    arrived_at: datetime
    pool_id: str | None = None
    agent_id: str | None = None  # the dialled agent (direct), the dialling agent (outbound)
    connection_id: str | None = None
    server_call_id: str | None = None  # ACS's id of the call (recordings are keyed by it)
    # The other party's raw id: the caller (inbound) or the dialling agent's device (outbound).
    peer_target: str | None = None
    candidates: tuple[CustomerRef, ...] = ()
    picked: CustomerRef | None = None
    offers: tuple[Offer, ...] = ()
    app_connected_at: datetime | None = None
    first_answered_at: datetime | None = None
    answered_by: str | None = None
    ended_at: datetime | None = None
    party_left_at: datetime | None = None
    hangup_requested: bool = False
    participants_sequence: int = -1
    activity_id: str | None = None
    tried: tuple[str, ...] = field(default=())  # agents offered in the current round
    record: bool = False  # recording is on for this call (settings, per-pool override)
    recording_requested: bool = False
    recording_id: str | None = None
    disposition: str | None = None  # "forward" / "busy": diverted before it was answered
    held: bool = False  # the customer is on hold (they hear music)
    muted: bool = False  # the agent's microphone is muted in the call
    consult: Consult | None = None  # a transfer in progress or done (§1.3)
    agent_target_override: str | None = None  # who talks to the customer after a transfer
    callback: CallbackOffer | None = None
    # A closed pool's caller hears `announcement`, then "hangup" or "callback" (docs/pools.md).
    announcement: str | None = None
    announcement_prompt: str | None = None  # an uploaded prompt of the pool, played instead
    announce_then: str | None = None
    announced: str = ""  # "", "playing", "played"
    # A refresh never drops the customer: the serving web phone's leg left without a hang-up.
    agent_away_since: datetime | None = None  # from the latest roster; None once it is back
    rejoin_hold: bool = False  # the customer was put on hold music for the wait
    rejoin_expired: bool = False  # direct call: REJOIN_SECONDS passed without the agent
    requeue_floor: int | None = None  # pool: offers up to this n were before the requeue
    # The case (incident) the agent linked the call to (CaseDialog): the activity regards it.
    case_id: str | None = None
    case_title: str | None = None
    case_number: str | None = None
    # Contact&Account: the agent asked for a Phone Call activity (none is made otherwise).
    activity_requested: bool = False
    # Waiting in a pool's queue (docs/pools.md, shared/services/queue_waits.py): the action
    # taken after overflow.maxWaitSeconds (once), the last queue announcement made, and a
    # callback that keeps the caller's place in the queue.
    overflowed: str = ""  # "", or the action's `then` ("pool", "number", "queuedCallback"...)
    queue_announced: int = 0
    keeps_place: bool = False  # the callback offered (or left) keeps the caller's place
    callback_call_id: str | None = None  # kept place: the outbound call offering it now
    callback_offered_at: datetime | None = None  # ... since then
    callback_done: bool = False  # kept place: a member took it (answered the outbound leg)
    callback_for: str | None = None  # an outbound call: the kept-place call it calls back
    # Completed transfers to colleagues, in order: the last one's colleague owns the call.
    handovers: tuple[Handover, ...] = ()
    # The agent the Phone Call activity was written for: a transfer completing after the
    # activity (its event late) moves the activity to the new owner.
    activity_owner: str | None = None

    # ------------------------------------------------------------------ derived

    @property
    def answered(self) -> bool:
        return self.first_answered_at is not None

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    @property
    def place_kept(self) -> bool:
        """The caller left a callback that keeps its place: the request waits in the queue
        (the caller has hung up) until a member takes it as an outbound call."""
        return (
            self.keeps_place
            and self.callback in (CallbackOffer.CAPTURED, CallbackOffer.CONFIRMED)
            and not self.callback_done
            and not self.answered
        )

    @property
    def pending_offer(self) -> Offer | None:
        return next((o for o in self.offers if o.outcome is OfferOutcome.PENDING), None)

    @property
    def phase(self) -> Phase:
        if self.ended:
            return Phase.ENDED
        if self.answered and not self.needs_agent and self.pending_rejoin is None:
            return Phase.CONNECTED
        if self.pending_offer is not None:
            return Phase.RINGING
        if self.answered and not self.needs_agent:
            return Phase.CONNECTED  # the agent is away; the customer waits on hold
        return Phase.CONNECTING if self.app_connected_at is None else Phase.WAITING

    @property
    def pending_rejoin(self) -> Offer | None:
        offer = self.pending_offer
        return offer if offer is not None and offer.rejoin else None

    @property
    def awaiting_rejoin(self) -> bool:
        """The serving agent's web phone dropped; the customer waits for it to come back."""
        return (
            self.agent_away_since is not None
            and not self.rejoin_expired
            and not self.ended
            and self.party_left_at is None
        )

    @property
    def needs_agent(self) -> bool:
        """A pool call back in the queue after REJOIN_SECONDS, until another agent answers."""
        floor = self.requeue_floor
        return floor is not None and not any(
            o.outcome is OfferOutcome.ANSWERED and o.n > floor for o in self.offers
        )

    @property
    def outcome(self) -> Outcome | None:
        if not self.ended:
            return None
        if self.disposition:
            return Outcome.FORWARDED if self.disposition == "forward" else Outcome.BUSY
        if self.answered:
            return Outcome.ANSWERED
        if self.callback in (CallbackOffer.CAPTURED, CallbackOffer.CONFIRMED):
            return Outcome.CALLBACK_REQUESTED
        if self.overflowed == "number":
            return Outcome.FORWARDED  # sent on to the overflow number after the longest wait
        if any(o.outcome is OfferOutcome.NOT_ANSWERED for o in self.offers) and (
            self.kind is not CallKind.POOL or self.direction is Direction.OUTBOUND
        ):
            return Outcome.DECLINED if self.direction is Direction.OUTBOUND else Outcome.UNANSWERED
        return Outcome.ABANDONED

    @property
    def customer(self) -> CustomerRef | None:
        return customer_of_record(self.candidates, self.picked)

    @property
    def activity_uuid(self) -> str:
        """The Phone Call activity's id: the same for every retry, so a repeat creates nothing."""
        return str(uuid.uuid5(CALL_NAMESPACE, f"activity:{self.call_id}"))

    @property
    def wait_seconds(self) -> int | None:
        if self.first_answered_at is None:
            return None
        return max(0, round((self.first_answered_at - self.arrived_at).total_seconds()))

    @property
    def customer_target(self) -> str | None:
        """The customer's raw id in the call."""
        return self.peer_target if self.direction is Direction.INBOUND else _answered_target(self)

    @property
    def agent_target(self) -> str | None:
        """The raw id of whoever serves the customer now (a transfer target after a transfer)."""
        if self.agent_target_override:
            return self.agent_target_override
        return _answered_target(self) if self.direction is Direction.INBOUND else self.peer_target

    @property
    def serving_agent_id(self) -> str | None:
        """The agent serving the customer now: a colleague who took a transfer, else the
        agent who answered (inbound) or dialled (outbound)."""
        consult = self.consult
        if consult is not None and consult.state is ConsultState.COMPLETED and consult.agent_id:
            return consult.agent_id
        return self.owner_agent_id

    @property
    def owner_agent_id(self) -> str | None:
        """The agent the call belongs to: the colleague of the latest completed transfer, else
        the agent who answered (inbound) or dialled (outbound). They own the notes and the
        Phone Call activity."""
        if self.handovers:
            return self.handovers[-1].to_agent_id
        return self.talk_agent_id

    def handed_over_by(self, agent_id: str) -> Handover | None:
        """The latest transfer by which `agent_id` handed the call to a colleague, if the call
        is no longer theirs."""
        if agent_id == self.owner_agent_id:
            return None
        return next((h for h in reversed(self.handovers) if h.from_agent_id == agent_id), None)

    def phase_for(self, agent_id: str) -> Phase:
        """What `agent_id`'s panel shows: a call they handed over is over for them."""
        if self.handed_over_by(agent_id) is not None:
            return Phase.TRANSFERRED
        return self.phase

    def notes_shown_to(self, agent_id: str) -> int | None:
        """The part of the notes `agent_id`'s panel shows as theirs: the one they write or,
        once they handed the call on, the one they wrote (read-only)."""
        handed = self.handed_over_by(agent_id)
        return self.handovers.index(handed) if handed else self.notes_part_of(agent_id)

    def notes_part_of(self, agent_id: str) -> int | None:
        """The part of the notes `agent_id` writes (0: the first agent's, k: the part after
        the k-th handover), or None: the call was handed on, its notes are another's. A
        colleague consulted writes the part that becomes theirs if the transfer completes."""
        owner = self.owner_agent_id
        if agent_id == owner or owner is None:  # None: not answered yet, nobody's in particular
            return len(self.handovers)
        consult = self.consult
        if consult is not None and consult.active and consult.agent_id == agent_id:
            return len(self.handovers) + 1
        return None

    @property
    def talk_agent_id(self) -> str | None:
        """The agent the customer talks (or talked) to."""
        return self.answered_by if self.direction is Direction.INBOUND else self.agent_id


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current


def _offer_number(context: str | None) -> int | None:
    if context and context.startswith("offer:"):
        try:
            return int(context.split(":", 1)[1])
        except ValueError:
            return None
    return None


def _settle(call: Call, n: int, outcome: OfferOutcome, at: datetime) -> Call:
    offers = []
    for offer in call.offers:
        if offer.n == n and offer.outcome is OfferOutcome.PENDING:
            offer = replace(offer, outcome=outcome, settled_at=at)
        elif offer.n == n and outcome is OfferOutcome.ANSWERED:
            # A success outranks a failure seen first (events out of order).
            offer = replace(offer, outcome=outcome, settled_at=at)
        offers.append(offer)
    return replace(call, offers=tuple(offers))


def apply_event(call: Call, event: CallEvent) -> Call:
    """The call after `event`. Pure; order-insensitive; an unknown event changes nothing."""
    if event.server_call_id and call.server_call_id is None:
        call = replace(call, server_call_id=event.server_call_id)
    if event.connection_id and call.connection_id is None:
        call = replace(call, connection_id=event.connection_id)
    n = _offer_number(event.operation_context)
    offer = next((o for o in call.offers if o.n == n), None) if n is not None else None
    match event.type:
        case "CallConnected":
            # Inbound: our answer took; outbound: the agent picked up the leg we created.
            return replace(call, app_connected_at=_earliest(call.app_connected_at, event.at))
        case "AddParticipantSucceeded" if offer is not None:
            call = _settle(call, offer.n, OfferOutcome.ANSWERED, event.at)
            first = _earliest(call.first_answered_at, event.at)
            answered_by = call.answered_by
            if call.direction is Direction.INBOUND and (
                call.first_answered_at is None or event.at <= call.first_answered_at
            ):
                answered_by = offer.agent_id
            if call.requeue_floor is not None and call.direction is Direction.INBOUND:
                # Back from the queue: whoever answered last serves (and owns) the call.
                answered_by = _latest_answered(call).agent_id or answered_by
            return replace(call, first_answered_at=first, answered_by=answered_by)
        case "AddParticipantFailed" if offer is not None:
            return _settle(call, offer.n, OfferOutcome.NOT_ANSWERED, event.at)
        case "CancelAddParticipantSucceeded" if offer is not None:
            return _settle(call, offer.n, OfferOutcome.CANCELLED, event.at)
        case "ParticipantsUpdated":
            if event.sequence is not None and event.sequence <= call.participants_sequence:
                return call  # stale
            if call.first_answered_at is None or event.at < call.first_answered_at:
                # A roster from before the answer says nothing about leaving, and its sequence
                # need not be kept: any roster older than the answer is ignored by its time.
                return call
            if event.sequence is not None:
                call = replace(call, participants_sequence=event.sequence)
            present = set(event.participants)
            # Whoever serves the customer may be the agent or, while a transfer is under way or
            # once it is done (its events can come after the roster), the transfer target.
            servers = {call.agent_target} | (
                {call.consult.target}
                if call.consult is not None
                and call.consult.state is not ConsultState.FAILED
                and call.consult.state is not ConsultState.CANCELLED
                else set()
            )
            customer_gone = call.customer_target is not None and call.customer_target not in present
            nobody_serving = not (servers - {None}) & present
            if call.needs_agent:
                # Back in the queue, nobody serves until another agent answers.
                nobody_serving = False
            if nobody_serving and not customer_gone and _may_rejoin(call):
                # A web phone left without hanging up (a refresh, a closed tab): the customer
                # stays; the latest roster says whether the agent is back.
                away = call.agent_away_since or event.at
                return replace(call, agent_away_since=away)
            if not nobody_serving and call.agent_away_since is not None:
                call = replace(call, agent_away_since=None)
            if (customer_gone or nobody_serving) and call.party_left_at is None:
                return replace(call, party_left_at=event.at)
            return call
        case (
            "AddParticipantSucceeded"
            | "AddParticipantFailed"
            | "CallTransferAccepted"
            | ("CallTransferFailed")
        ) if _consult_of(call, event.operation_context) is not None:
            return _consult_event(call, event.type, event.at)
        case "RecognizeCompleted" | "RecognizeFailed" if event.operation_context == CALLBACK_OFFER:
            if call.callback is not CallbackOffer.OFFERED:
                return call  # decided already (a repeat, or out of order)
            pressed_one = event.type == "RecognizeCompleted" and event.tones[:1] in (
                ("one",),
                ("1",),
            )
            accepted = pressed_one and not call.answered
            return replace(
                call, callback=CallbackOffer.ACCEPTED if accepted else CallbackOffer.DECLINED
            )
        case "PlayCompleted" | "PlayFailed" | "PlayCanceled" if (
            event.operation_context == CALLBACK_CONFIRM
        ):
            if call.callback is CallbackOffer.CAPTURED:
                return replace(call, callback=CallbackOffer.CONFIRMED)
            return call
        case "PlayCompleted" | "PlayFailed" | "PlayCanceled" if (
            event.operation_context == CLOSED_ANNOUNCEMENT
        ):
            if event.type == "PlayFailed" and call.announcement_prompt and call.announcement:
                # ACS could not play the uploaded prompt: the text is read out instead.
                return replace(call, announcement_prompt=None, announced="")
            return call if call.announced == "played" else replace(call, announced="played")
        case "CallDisconnected" | "CreateCallFailed" | "AnswerFailed":
            return replace(call, ended_at=_earliest(call.ended_at, event.at))
        case _:
            return call


def _consult_of(call: Call, context: str | None) -> Consult | None:
    consult = call.consult
    return consult if consult is not None and consult.context == context else None


def _consult_event(call: Call, kind: str, at: datetime) -> Call:
    consult = call.consult
    assert consult is not None
    if kind == "AddParticipantSucceeded" and consult.state is ConsultState.RINGING:
        return replace(call, consult=replace(consult, state=ConsultState.CONNECTED))
    if kind == "CallTransferAccepted":
        # A direct transfer is done when ACS says the target accepted; a repeat (or the event
        # after a failure seen first: success outranks it) changes nothing more.
        return transfer_completed(call, consult.n, at) or call
    if kind in ("AddParticipantFailed", "CallTransferFailed") and consult.state in (
        ConsultState.RINGING,
    ):
        return replace(call, consult=replace(consult, state=ConsultState.FAILED))
    return call


def transfer_completed(call: Call, n: int, at: datetime) -> Call | None:
    """The call once transfer `n` has handed the customer over (ACS's CallTransferAccepted of
    a direct transfer; the agent completing a consulted one). A colleague becomes the call's
    owner (docs/api.md, "Transfers"). None: not that transfer, or recorded already."""
    consult = call.consult
    if consult is None or consult.n != n or consult.state is ConsultState.CANCELLED:
        return None
    if consult.state is ConsultState.COMPLETED and (
        not consult.agent_id or any(h.n == n for h in call.handovers)
    ):
        return None
    done = replace(
        call,
        consult=replace(consult, state=ConsultState.COMPLETED),
        agent_target_override=consult.target,
        held=False,
    )
    handing = consult.from_agent_id or call.owner_agent_id
    if consult.agent_id and handing and not any(h.n == n for h in call.handovers):
        handover = Handover(n, handing, consult.from_name, consult.agent_id, consult.to_name, at)
        done = replace(done, handovers=(*call.handovers, handover))
    return done


def notes_before(call: Call, parts: tuple[str, ...]) -> str:
    """The notes of the agents who handed the call on, each under their name and the time of
    their transfer (UTC): what the owner sees read-only above their own."""
    blocks = []
    for k, handover in enumerate(call.handovers):
        text = parts[k] if k < len(parts) else ""
        if text.strip():
            name = handover.from_name or "The first agent"
            blocks.append(f"{name} (until transfer at {handover.at:%H:%M} UTC):\n{text}")
    return "\n\n".join(blocks)


def call_notes(call: Call, parts: tuple[str, ...]) -> str:
    """The call's notes as the Phone Call activity's description: the earlier agents' parts,
    attributed, then the owner's own. Without a transfer, the notes as typed."""
    if not call.handovers:
        return parts[0] if parts else ""
    own = parts[len(call.handovers)] if len(parts) > len(call.handovers) else ""
    return "\n\n".join(p for p in (notes_before(call, parts), own) if p.strip())


def _answered_target(call: Call) -> str | None:
    answered = _latest_answered(call)
    return answered.target if answered.n else None


_NO_OFFER = Offer(0, "", None, datetime.min)


def _latest_answered(call: Call) -> Offer:
    """The latest answered offer (a rejoin rings the same device; a requeue another agent)."""
    answered = [o for o in call.offers if o.outcome is OfferOutcome.ANSWERED]
    return max(answered, key=lambda o: o.n) if answered else _NO_OFFER


def _may_rejoin(call: Call) -> bool:
    """Only an inbound call served by a web phone (an ACS user) waits for its agent: a phone
    number hanging up is the agent ending the call, as is our own hang-up."""
    consult = call.consult
    return (
        call.direction is Direction.INBOUND
        and not call.hangup_requested
        and (call.agent_target or "").startswith("8:acs:")
        and call.agent_target_override is None
        and (consult is None or not consult.active)
        and not call.needs_agent
    )


# ---------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class OfferTo:
    """Ring this target next (the service claims the agent before it rings)."""

    target: str
    agent_id: str | None


class NextStep(StrEnum):
    NOTHING = "nothing"
    OFFER = "offer"  # choose an agent and ring them (inbound), or ring the customer (outbound)
    HANG_UP = "hangUp"  # end the call for everyone
    CREATE_ACTIVITY = "createActivity"
    REASSIGN_ACTIVITY = "reassignActivity"  # a transfer completed after the activity was made
    START_RECORDING = "startRecording"  # once the agent and the customer are connected
    CAPTURE_CALLBACK = "captureCallback"  # the waiting caller pressed 1 (§5)
    ANNOUNCE = "announce"  # a closed pool's announcement, then hang up
    OFFER_CALLBACK = "offerCallback"  # a closed pool offers its caller a callback at once
    HOLD_FOR_REJOIN = "holdForRejoin"  # the agent's web phone dropped: music for the customer
    UNHOLD_AFTER_REJOIN = "unholdAfterRejoin"  # the agent is back (or another took the call)
    DIVERT_AFTER_REJOIN = "divertAfterRejoin"  # direct call: to the DND target, or end


def next_step(call: Call) -> NextStep:
    """What the call needs now. Pure: the service carries it out, once."""
    if call.ended:
        if call.answered and call.activity_id is None:
            return NextStep.CREATE_ACTIVITY
        if call.activity_id and call.activity_owner not in (None, call.owner_agent_id):
            return NextStep.REASSIGN_ACTIVITY
        return NextStep.NOTHING
    if call.hangup_requested:
        return NextStep.NOTHING
    if call.overflowed == "number" and not call.answered:
        return NextStep.NOTHING  # being transferred to the overflow number
    if call.announce_then and not call.answered:
        if call.app_connected_at is None or not call.connection_id:
            return NextStep.NOTHING
        if call.announce_then == "callback":
            if call.callback is None:
                return NextStep.OFFER_CALLBACK
            if call.callback is CallbackOffer.DECLINED:
                return NextStep.HANG_UP
            if call.callback is CallbackOffer.OFFERED:
                return NextStep.NOTHING  # the caller is choosing; nobody is offered the call
        elif call.announced == "":
            return NextStep.ANNOUNCE
        elif call.announced == "played":
            return NextStep.HANG_UP
        else:
            return NextStep.NOTHING
    if call.callback is CallbackOffer.ACCEPTED and not call.answered:
        return NextStep.CAPTURE_CALLBACK
    if call.callback is CallbackOffer.CONFIRMED and not call.answered:
        return NextStep.HANG_UP
    if call.callback is CallbackOffer.CAPTURED and not call.answered:
        return NextStep.NOTHING  # the confirmation is playing
    if call.answered and not call.needs_agent:
        # One of the two parties left: nobody is left to talk to.
        if call.party_left_at is not None:
            return NextStep.HANG_UP
        if call.agent_away_since is not None:
            if call.rejoin_expired:
                return NextStep.DIVERT_AFTER_REJOIN  # a pool call is requeued instead
            return NextStep.NOTHING if call.rejoin_hold else NextStep.HOLD_FOR_REJOIN
        if call.rejoin_hold:
            return NextStep.UNHOLD_AFTER_REJOIN
        if call.record and not call.recording_requested and call.server_call_id:
            return NextStep.START_RECORDING
        return NextStep.NOTHING
    if call.needs_agent:
        if call.party_left_at is not None:
            return NextStep.HANG_UP  # the caller gave up while back in the queue
        return NextStep.NOTHING if call.pending_offer is not None else NextStep.OFFER
    if call.app_connected_at is None or call.pending_offer is not None or not call.connection_id:
        return NextStep.NOTHING
    if call.kind is CallKind.POOL:
        return NextStep.OFFER
    # Direct and outbound calls have one target: one try, then the call ends.
    return NextStep.HANG_UP if call.offers else NextStep.OFFER


def with_offer(call: Call, target: str, agent_id: str | None, at: datetime) -> Call:
    """The call with a new pending offer to `target`."""
    n = max((o.n for o in call.offers), default=0) + 1
    tried = (*call.tried, agent_id) if agent_id else call.tried
    # A long wait rings agents again and again: keep what matters (the answered and pending
    # offers) and only the latest settled ones, so the stored call stays small.
    kept = [o for o in call.offers if o.outcome in (OfferOutcome.ANSWERED, OfferOutcome.PENDING)]
    settled = [o for o in call.offers if o not in kept][-KEPT_SETTLED_OFFERS:]
    offers = tuple(sorted((*kept, *settled), key=lambda o: o.n))
    return replace(call, offers=(*offers, Offer(n, target, agent_id, at)), tried=tried)


KEPT_SETTLED_OFFERS = 10


def with_rejoin_offer(call: Call, target: str, agent_id: str, at: datetime) -> Call | None:
    """Ring the away agent's new session back into the call; None if it is not waiting for it
    (back already, expired, ended) or a rejoin ring is pending."""
    if not call.awaiting_rejoin or call.pending_offer is not None:
        return None
    if call.serving_agent_id != agent_id:
        return None
    rung = with_offer(call, target, agent_id, at)
    last = rung.offers[-1]
    return replace(rung, offers=(*rung.offers[:-1], replace(last, rejoin=True)))


def rejoin_expired(call: Call, now: datetime, rejoin_seconds: int) -> Call | None:
    """REJOIN_SECONDS after the drop without the agent: a pool call goes back to the front of the
    queue (another agent takes it), a direct call to the agent's DND target. None: nothing to do
    (the agent is back, the call ended, or it is not time yet)."""
    away = call.agent_away_since
    if not call.awaiting_rejoin or away is None:
        return None
    if (now - away).total_seconds() < rejoin_seconds:
        return None
    if call.kind is CallKind.POOL:
        floor = max((o.n for o in call.offers), default=0)
        # Back in the queue: the away agent is no longer who serves it (its claim is released);
        # the agent who answers next may drop and be waited for in turn.
        # The agent who dropped counts as tried: the others are offered first.
        away_agent = call.serving_agent_id
        tried = (away_agent,) if away_agent else ()
        return replace(call, requeue_floor=floor, agent_away_since=None, tried=tried)
    return replace(call, rejoin_expired=True)


def choose_agent(
    member_order: tuple[str, ...], free: set[str], tried: tuple[str, ...]
) -> tuple[str | None, bool]:
    """The next member to offer: the first free one not yet tried in this round.

    Returns (agent id or None, whether a new round started). A new round starts when every
    free member has been tried, so a caller keeps being offered while agents are free.
    """
    for agent_id in member_order:
        if agent_id in free and agent_id not in tried:
            return agent_id, False
    for agent_id in member_order:
        if agent_id in free:
            return agent_id, True
    return None, False
