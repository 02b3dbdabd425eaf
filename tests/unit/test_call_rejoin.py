"""A refresh never drops the customer: the fold and the decisions when the serving web phone
leaves, comes back, or does not come back within REJOIN_SECONDS."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from shared.domain.calls import (
    Call,
    CallEvent,
    CallKind,
    NextStep,
    Outcome,
    Phase,
    apply_event,
    next_step,
    rejoin_expired,
    with_offer,
    with_rejoin_offer,
)
from tests.unit.test_call_domain import at, fold, pool_call

pytestmark = pytest.mark.unit
CUSTOMER, ANNA, BEN = "4:+358401234567", "8:acs:anna", "8:acs:ben"


def roster(seq: int, t: float, *present: str) -> CallEvent:
    return CallEvent(f"p{seq}", "ParticipantsUpdated", at(t), participants=present, sequence=seq)


def answered(**kw: object) -> Call:
    call = with_offer(pool_call(app_connected_at=at(1), **kw), ANNA, "anna", at(2))
    call = apply_event(call, CallEvent("s", "AddParticipantSucceeded", at(5), "offer:1"))
    return apply_event(call, roster(2, 5, CUSTOMER, ANNA))


def test_a_web_phone_leaving_puts_the_customer_on_hold_instead_of_ending_the_call() -> None:
    call = apply_event(answered(), roster(3, 30, CUSTOMER))
    assert call.agent_away_since == at(30) and call.party_left_at is None
    assert call.awaiting_rejoin and call.phase is Phase.CONNECTED
    assert next_step(call) is NextStep.HOLD_FOR_REJOIN
    assert next_step(replace(call, rejoin_hold=True)) is NextStep.NOTHING


def test_the_agent_back_in_the_roster_takes_the_customer_off_hold_in_any_order() -> None:
    start = answered()
    events = [roster(3, 30, CUSTOMER), roster(4, 50, CUSTOMER, ANNA)]
    for order in itertools.permutations(events):
        back = replace(fold(start, [*order, *order]), rejoin_hold=True)
        assert back.agent_away_since is None and back.party_left_at is None
        assert next_step(back) is NextStep.UNHOLD_AFTER_REJOIN
    # Only the stale roster after the return: still back.
    assert fold(start, [events[1], events[0]]).agent_away_since is None


def test_the_customer_hanging_up_while_the_agent_is_away_ends_the_call() -> None:
    call = fold(answered(), [roster(3, 30, CUSTOMER), roster(4, 40)])
    assert next_step(call) is NextStep.HANG_UP
    ended = apply_event(call, CallEvent("d", "CallDisconnected", at(41)))
    assert ended.outcome is Outcome.ANSWERED and next_step(ended) is NextStep.CREATE_ACTIVITY


def test_our_own_hang_up_or_a_transfer_never_waits_for_a_rejoin() -> None:
    hung_up = apply_event(replace(answered(), hangup_requested=True), roster(3, 30, CUSTOMER))
    assert hung_up.agent_away_since is None and hung_up.party_left_at == at(30)
    transferred = apply_event(
        replace(answered(), agent_target_override=BEN), roster(3, 30, CUSTOMER)
    )
    assert transferred.agent_away_since is None and transferred.party_left_at == at(30)


def test_the_new_session_rings_the_same_agent_back_once_and_the_answer_rejoins() -> None:
    away = replace(apply_event(answered(), roster(3, 30, CUSTOMER)), rejoin_hold=True)
    assert with_rejoin_offer(away, BEN, "ben", at(40)) is None  # not ben's call
    rung = with_rejoin_offer(away, ANNA, "anna", at(40))
    assert rung is not None and rung.offers[-1].rejoin and rung.phase is Phase.RINGING
    assert rung.pending_rejoin is not None
    assert with_rejoin_offer(rung, ANNA, "anna", at(41)) is None  # already ringing
    back = fold(
        rung,
        [
            CallEvent("s2", "AddParticipantSucceeded", at(45), "offer:2"),
            roster(4, 45, CUSTOMER, ANNA),
        ],
    )
    assert back.phase is Phase.CONNECTED and back.answered_by == "anna"
    assert back.first_answered_at == at(5)  # the wait metrics keep the first answer
    assert next_step(back) is NextStep.UNHOLD_AFTER_REJOIN


def test_a_pool_caller_goes_back_to_the_queue_after_rejoin_seconds() -> None:
    away = replace(apply_event(answered(), roster(3, 30, CUSTOMER)), rejoin_hold=True)
    assert rejoin_expired(away, at(89), 60) is None  # not yet
    requeued = rejoin_expired(away, at(90), 60)
    assert requeued is not None and requeued.needs_agent
    assert rejoin_expired(requeued, at(91), 60) is None  # once
    assert requeued.phase is Phase.WAITING and next_step(requeued) is NextStep.OFFER
    # Rosters without an agent while it waits again are no reason to hang up.
    waiting = apply_event(requeued, roster(4, 91, CUSTOMER))
    assert waiting.party_left_at is None and next_step(waiting) is NextStep.OFFER
    ringing = with_offer(waiting, BEN, "ben", at(92))
    assert ringing.phase is Phase.RINGING and next_step(ringing) is NextStep.NOTHING
    taken = fold(
        ringing,
        [
            roster(5, 95, CUSTOMER, BEN),
            CallEvent("s3", "AddParticipantSucceeded", at(95), "offer:2"),
        ],
    )
    assert not taken.needs_agent and taken.answered_by == "ben"
    assert taken.agent_target == BEN and taken.phase is Phase.CONNECTED
    assert next_step(taken) is NextStep.UNHOLD_AFTER_REJOIN
    # Ben's web phone dropping now waits for ben, not for anna.
    ben_away = apply_event(replace(taken, rejoin_hold=False), roster(6, 120, CUSTOMER))
    assert ben_away.awaiting_rejoin and ben_away.serving_agent_id == "ben"


def test_a_direct_caller_is_diverted_after_rejoin_seconds() -> None:
    direct = answered(kind=CallKind.DIRECT, pool_id=None, agent_id="anna")
    away = replace(apply_event(direct, roster(3, 30, CUSTOMER)), rejoin_hold=True)
    expired = rejoin_expired(away, at(95), 60)
    assert expired is not None and not expired.needs_agent
    assert next_step(expired) is NextStep.DIVERT_AFTER_REJOIN
    assert with_rejoin_offer(expired, ANNA, "anna", at(96)) is None  # too late to ring back


def test_the_agent_back_before_the_deadline_is_not_requeued() -> None:
    back = fold(answered(), [roster(3, 30, CUSTOMER), roster(4, 50, CUSTOMER, ANNA)])
    assert rejoin_expired(back, at(200), 60) is None
