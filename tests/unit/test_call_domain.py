"""The call state machine: the same events in any order, any number of times, same call."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.activity import (
    Party,
    PhoneCallActivity,
    SubjectTemplates,
    UnresolvedParty,
    duration_minutes,
    phone_call_activity,
)
from shared.domain.calls import (
    Call,
    CallEvent,
    CallKind,
    Direction,
    NextStep,
    OfferOutcome,
    Outcome,
    Phase,
    apply_event,
    choose_agent,
    next_step,
    with_offer,
)
from shared.domain.customers import CustomerEntity, CustomerRef, ScreenPop, screen_pop

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
ALICE = CustomerRef(CustomerEntity.CONTACT, "c1", "Alice Customer")
BOB = CustomerRef(CustomerEntity.ACCOUNT, "a1", "Bob Ltd")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def pool_call(**kw: object) -> Call:
    base = Call(
        "call-1",
        Direction.INBOUND,
        CallKind.POOL,
        "+358401234567",
        "+358900100",
        T0,
        pool_id="sales",
        peer_target="4:+358401234567",
        connection_id="conn-1",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def fold(call: Call, events: list[CallEvent]) -> Call:
    for event in events:
        call = apply_event(call, event)
    return call


def test_an_answered_pool_call_records_who_answered_and_when() -> None:
    call = apply_event(pool_call(), CallEvent("e1", "CallConnected", at(1)))
    assert next_step(call) is NextStep.OFFER
    call = with_offer(call, "8:acs:agent-a", "a", at(2))
    assert call.phase is Phase.RINGING and next_step(call) is NextStep.NOTHING
    call = apply_event(call, CallEvent("e2", "AddParticipantSucceeded", at(12), "offer:1"))
    assert call.phase is Phase.CONNECTED
    assert (call.answered_by, call.first_answered_at, call.wait_seconds) == ("a", at(12), 12)
    call = apply_event(call, CallEvent("e3", "CallDisconnected", at(70)))
    assert call.outcome is Outcome.ANSWERED
    assert next_step(call) is NextStep.CREATE_ACTIVITY
    assert next_step(replace(call, activity_id=call.activity_uuid)) is NextStep.NOTHING


def test_events_in_any_order_and_repeated_give_the_same_call() -> None:
    start = with_offer(
        apply_event(pool_call(), CallEvent("e1", "CallConnected", at(1))), "8:acs:a", "a", at(2)
    )
    events = [
        CallEvent("e2", "AddParticipantSucceeded", at(10), "offer:1"),
        CallEvent(
            "e3",
            "ParticipantsUpdated",
            at(11),
            participants=("4:+358401234567", "8:acs:a"),
            sequence=2,
        ),
        CallEvent("e4", "CallDisconnected", at(60)),
        CallEvent(
            "e5", "ParticipantsUpdated", at(1.5), participants=("4:+358401234567",), sequence=1
        ),
    ]
    expected = fold(start, events)
    for order in itertools.permutations(events):
        assert fold(start, [*order, *order, *order]) == expected
    assert expected.outcome is Outcome.ANSWERED and expected.party_left_at is None


def test_a_failure_seen_after_success_does_not_undo_the_answer() -> None:
    call = with_offer(pool_call(app_connected_at=at(1)), "8:acs:a", "a", at(2))
    call = apply_event(call, CallEvent("s", "AddParticipantSucceeded", at(5), "offer:1"))
    call = apply_event(call, CallEvent("f", "AddParticipantFailed", at(6), "offer:1"))
    assert call.offers[0].outcome is OfferOutcome.ANSWERED and call.answered


def test_a_declined_offer_moves_the_pool_call_to_the_next_agent() -> None:
    call = with_offer(pool_call(app_connected_at=at(1)), "8:acs:a", "a", at(2))
    call = apply_event(call, CallEvent("f", "AddParticipantFailed", at(3), "offer:1"))
    assert next_step(call) is NextStep.OFFER
    agent, new_round = choose_agent(("a", "b", "c"), {"a", "b"}, call.tried)
    assert (agent, new_round) == ("b", False)
    assert choose_agent(("a", "b"), {"a", "b"}, ("a", "b")) == ("a", True)
    assert choose_agent(("a", "b"), set(), ()) == (None, False)


def test_a_direct_call_nobody_answers_is_hung_up_and_unanswered() -> None:
    call = pool_call(kind=CallKind.DIRECT, pool_id=None, agent_id="a", app_connected_at=at(1))
    assert next_step(call) is NextStep.OFFER
    call = with_offer(call, "8:acs:a", "a", at(2))
    call = apply_event(call, CallEvent("f", "AddParticipantFailed", at(22), "offer:1"))
    assert next_step(call) is NextStep.HANG_UP
    call = apply_event(call, CallEvent("d", "CallDisconnected", at(23)))
    assert call.outcome is Outcome.UNANSWERED and next_step(call) is NextStep.NOTHING


def test_the_caller_hanging_up_in_the_queue_is_abandoned_and_makes_no_activity() -> None:
    call = apply_event(pool_call(app_connected_at=at(1)), CallEvent("d", "CallDisconnected", at(9)))
    assert call.outcome is Outcome.ABANDONED and next_step(call) is NextStep.NOTHING


def test_an_agent_on_a_phone_number_hanging_up_ends_the_call_for_the_customer() -> None:
    # A web phone (an ACS user) leaving waits for a rejoin instead: tests/unit/test_call_rejoin.py
    call = with_offer(pool_call(app_connected_at=at(1)), "4:+358501110000", "a", at(2))
    call = apply_event(call, CallEvent("s", "AddParticipantSucceeded", at(5), "offer:1"))
    call = apply_event(
        call,
        CallEvent(
            "p", "ParticipantsUpdated", at(30), participants=("4:+358401234567",), sequence=5
        ),
    )
    assert next_step(call) is NextStep.HANG_UP


def activity_for(
    call: Call, notes: str = "Wants a quote", *, unresolved: bool = False
) -> PhoneCallActivity:
    return phone_call_activity(
        call,
        agent_user_id="u-agent",
        agent_name="Agent A",
        pool_name="Sales",
        notes=notes,
        templates=SubjectTemplates(),
        unresolved_parties=unresolved,
    )


def ended_inbound(**kw: object) -> Call:
    return pool_call(first_answered_at=at(12), ended_at=at(100), answered_by="a", **kw)


def test_an_inbound_activity_from_the_identified_customer_to_the_agent() -> None:
    activity = activity_for(ended_inbound(candidates=(ALICE,)))
    assert activity.subject == "Incoming call from +358401234567"  # type: ignore[attr-defined]
    assert activity.from_party.entity == "contact"  # type: ignore[attr-defined]
    assert activity.to_party.id == "u-agent"  # type: ignore[attr-defined]
    assert activity.regarding == ALICE  # type: ignore[attr-defined]
    assert activity.duration_minutes == 2  # type: ignore[attr-defined]  # 88 s, rounded up
    assert activity.outgoing is False  # type: ignore[attr-defined]


def test_several_matches_set_no_customer_until_one_is_picked() -> None:
    several = ended_inbound(candidates=(ALICE, BOB))
    assert activity_for(several).regarding is None  # type: ignore[attr-defined]
    assert activity_for(several).from_party is None  # type: ignore[attr-defined]
    assert screen_pop(several.candidates, None) is ScreenPop.SHOW_CANDIDATES
    picked = replace(several, picked=BOB)
    assert activity_for(picked).regarding == BOB  # type: ignore[attr-defined]
    assert screen_pop(picked.candidates, picked.picked) is ScreenPop.OPEN_RECORD


def test_an_outbound_call_to_an_unknown_number_leaves_to_and_regarding_empty() -> None:
    call = replace(
        ended_inbound(), direction=Direction.OUTBOUND, kind=CallKind.OUTBOUND, agent_id="a"
    )
    activity = activity_for(call)
    assert activity.from_party.entity == "systemuser"  # type: ignore[attr-defined]
    assert activity.to_party is None and activity.regarding is None  # type: ignore[attr-defined]
    assert activity.subject == "Outgoing call to +358401234567"  # type: ignore[attr-defined]
    assert activity.outgoing is True  # type: ignore[attr-defined]


def test_an_unknown_number_is_an_unresolved_party_when_the_setting_is_on() -> None:
    inbound = activity_for(ended_inbound(), unresolved=True)
    assert inbound.from_party == UnresolvedParty("+358401234567")
    assert inbound.to_party == Party("systemuser", "u-agent") and inbound.regarding is None
    several = activity_for(ended_inbound(candidates=(ALICE, BOB)), unresolved=True)
    assert several.from_party == UnresolvedParty("+358401234567")
    outbound = replace(
        ended_inbound(), direction=Direction.OUTBOUND, kind=CallKind.OUTBOUND, agent_id="a"
    )
    assert activity_for(outbound, unresolved=True).to_party == UnresolvedParty("+358401234567")
    identified = activity_for(ended_inbound(candidates=(ALICE,)), unresolved=True)
    assert identified.from_party == Party("contact", ALICE.id)


def test_the_duration_is_kept_in_seconds_and_rounded_up_to_whole_minutes() -> None:
    assert activity_for(ended_inbound()).duration_seconds == 88
    short = pool_call(first_answered_at=at(12), ended_at=at(14), answered_by="a")
    assert (activity_for(short).duration_seconds, activity_for(short).duration_minutes) == (2, 1)
    assert [duration_minutes(s) for s in (0, 1, 60, 61, 120, 121)] == [1, 1, 1, 2, 2, 3]


def test_the_activity_id_is_the_same_for_every_attempt() -> None:
    assert ended_inbound().activity_uuid == ended_inbound().activity_uuid
    assert ended_inbound().activity_uuid != replace(ended_inbound(), call_id="x").activity_uuid


def test_an_unanswered_call_cannot_become_an_activity() -> None:
    with pytest.raises(ValueError):
        activity_for(pool_call())


def test_no_offer_before_the_connection_id_is_known_and_an_event_brings_it() -> None:
    call = pool_call(connection_id=None, app_connected_at=at(1))
    assert next_step(call) is NextStep.NOTHING
    call = apply_event(call, CallEvent("c", "CallConnected", at(1), connection_id="conn-9"))
    assert call.connection_id == "conn-9" and next_step(call) is NextStep.OFFER


def test_a_transfer_roster_arriving_before_its_acceptance_does_not_drop_the_customer() -> None:
    from shared.domain.calls import Consult

    call = with_offer(pool_call(app_connected_at=at(1)), "8:acs:a", "a", at(2))
    call = apply_event(call, CallEvent("s", "AddParticipantSucceeded", at(5), "offer:1"))
    call = replace(call, consult=Consult(1, "8:acs:b", "b", blind=True))
    roster = CallEvent(
        "p", "ParticipantsUpdated", at(20), participants=("4:+358401234567", "8:acs:b"), sequence=7
    )
    accepted = CallEvent("t", "CallTransferAccepted", at(19), "transfer:1")
    for order in ([roster, accepted], [accepted, roster]):
        result = fold(call, order)
        assert result.party_left_at is None and next_step(result) is NextStep.NOTHING
        assert result.agent_target == "8:acs:b"
    older = CallEvent("o", "ParticipantsUpdated", at(21), participants=(), sequence=None)
    assert fold(call, [roster, older]).participants_sequence == 7


def test_a_call_offered_many_times_keeps_only_the_latest_settled_offers() -> None:
    call = pool_call(app_connected_at=at(1))
    for i in range(30):
        call = with_offer(call, "8:acs:a", "a", at(2 + i))
        call = apply_event(
            call,
            CallEvent(f"f{i}", "AddParticipantFailed", at(2.5 + i), f"offer:{call.offers[-1].n}"),
        )
    call = with_offer(call, "8:acs:a", "a", at(40))
    assert len(call.offers) == 11 and call.offers[-1].n == 31
    assert call.pending_offer is not None and call.pending_offer.n == 31
