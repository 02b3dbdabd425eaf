"""The call flow service against in-memory ports: routing, idempotency, the activity."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.domain.calls import Call, CallEvent, IncomingCall, Outcome, Phase
from shared.domain.customers import CustomerEntity, CustomerRef
from shared.domain.directory import Agent, Directory, ServicePool
from shared.services.calls import CallFlow, CallFlowOptions
from tests.unit.fakes import (
    FakeAgents,
    FakeCalls,
    FakeCrm,
    FakeEnrichment,
    FakeRoster,
    FakeTelephony,
    FakeWaiting,
)

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
CALLER = "+358401234567"
CONTACT = CustomerRef(CustomerEntity.CONTACT, "c-1", "Maija Meikäläinen")
ANNA = Agent(
    "anna",
    "Anna",
    "0" * 8 + "-0000-4000-8000-" + "0" * 12,
    "u-anna",
    "8:acs:anna",
    direct_numbers=("+358900200",),
)
BEN = Agent("ben", "Ben", "1" * 8 + "-0000-4000-8000-" + "0" * 12, "u-ben", "8:acs:ben")
SALES = ServicePool("sales", "Sales", ("+358900100",), ("anna", "ben"), 20)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


class World:
    def __init__(self) -> None:
        self.telephony, self.crm, self.calls = FakeTelephony(), FakeCrm(), FakeCalls()
        self.agents, self.waiting, self.enrichment = FakeAgents(), FakeWaiting(), FakeEnrichment()
        self.crm.customers[CALLER] = (CONTACT,)
        self.flow = CallFlow(
            directory=Directory((ANNA, BEN), (SALES,)),
            calls=self.calls,
            agents=self.agents,
            waiting=self.waiting,
            telephony=self.telephony,
            crm=self.crm,
            enrichment=self.enrichment,
            options=CallFlowOptions("https://app.example", b"k" * 32, "FI", 30),
            roster=FakeRoster(self.agents, lambda p: self.flow.directory.pool(p)),
        )
        self.n = 0

    def incoming(self, to: str = "+358900100", caller: str = "040 1234567") -> str:
        call = self.flow.incoming(
            IncomingCall("eg-1", f"4:{caller}", f"4:{to}", "server-1", "ctx-1", at(0))
        )
        assert call is not None
        return call.call_id

    def event(
        self,
        call_id: str,
        kind: str,
        t: float,
        context: str | None = None,
        event_id: str | None = None,
    ) -> None:
        self.n += 1
        event = CallEvent(
            event_id or f"ev-{self.n}",
            kind,
            at(t),
            context,
            connection_id=self.telephony.connection_of(call_id),
        )
        self.flow.on_event(call_id, event, at(t))


def test_a_pool_call_is_answered_offered_and_becomes_one_activity() -> None:
    w = World()
    call_id = w.incoming()
    assert w.telephony.named("answer")[0][2].startswith(
        f"https://app.example/api/acs/callbacks/{call_id}?token="
    )
    w.event(call_id, "CallConnected", 1)
    assert w.telephony.named("add") == [("add", "8:acs:anna", "offer:1", "")]
    w.event(call_id, "AddParticipantSucceeded", 9, "offer:1")
    assert w.calls.rows[call_id].phase is Phase.CONNECTED
    w.calls.save_notes(call_id, "Asked about invoice 42")
    w.event(call_id, "CallDisconnected", 70)

    [activity] = w.crm.activities.values()
    assert activity.description == "Asked about invoice 42"
    assert activity.regarding == CONTACT and activity.from_party.id == "c-1"  # type: ignore[union-attr]
    assert activity.to_party.id == "u-anna"  # type: ignore[union-attr]
    assert w.enrichment.scheduled == [(call_id, 30)]
    assert w.agents.busy == {}
    assert w.crm.lookups == 1


def test_every_event_three_times_out_of_order_makes_exactly_one_activity() -> None:
    w = World()
    call_id = w.incoming()
    w.incoming()  # IncomingCall delivered again
    for _ in range(3):
        w.event(call_id, "CallConnected", 1, event_id="c")
    for _ in range(3):  # the disconnect arrives before the answer it follows
        w.event(call_id, "CallDisconnected", 70, event_id="d")
        w.event(call_id, "AddParticipantSucceeded", 9, "offer:1", event_id="s")

    assert len(w.telephony.named("answer")) == 1
    assert len(w.telephony.named("add")) == 1
    [activity] = w.crm.activities.values()
    assert (activity.actual_start, activity.actual_end) == (at(9), at(70))
    assert len(w.enrichment.scheduled) == 1
    assert w.agents.busy == {}


def test_a_declined_offer_goes_to_the_next_member() -> None:
    w = World()
    call_id = w.incoming()
    w.event(call_id, "CallConnected", 1)
    w.event(call_id, "AddParticipantFailed", 5, "offer:1")
    assert [op[1] for op in w.telephony.named("add")] == ["8:acs:anna", "8:acs:ben"]
    assert w.agents.busy == {"ben": call_id}
    w.event(call_id, "AddParticipantSucceeded", 8, "offer:2")
    w.event(call_id, "CallDisconnected", 60)
    [activity] = w.crm.activities.values()
    assert activity.owner_user_id == "u-ben"


def test_a_recorded_call_starts_recording_once_when_the_agent_answers() -> None:
    w = World()
    w.flow.options = replace(w.flow.options, recording=True)
    call_id = w.incoming()
    w.event(call_id, "CallConnected", 1)
    assert w.telephony.named("record") == []
    for _ in range(2):
        w.event(call_id, "AddParticipantSucceeded", 9, "offer:1", event_id="s")
    assert w.telephony.named("record") == [("record", "server-1")]
    assert w.calls.rows[call_id].recording_id == "rec-server-1"


def test_a_call_to_an_unknown_number_is_rejected() -> None:
    w = World()
    assert (
        w.flow.incoming(IncomingCall("e", "4:+358401234567", "4:+358999", "s", "ctx", at(0)))
        is None
    )
    assert w.telephony.named("reject") == [("reject", "ctx")]
    assert w.calls.rows == {}


def test_a_declined_direct_call_is_hung_up_and_makes_no_activity() -> None:
    w = World()
    call_id = w.incoming(to="+358900200")
    w.event(call_id, "CallConnected", 1)
    assert w.telephony.named("add") == [("add", "8:acs:anna", "offer:1", "")]
    w.event(call_id, "AddParticipantFailed", 20, "offer:1")
    assert len(w.telephony.named("hangup")) == 1
    w.event(call_id, "CallDisconnected", 21)
    assert w.crm.activities == {}
    assert w.calls.rows[call_id].outcome is Outcome.UNANSWERED


def test_a_call_waits_when_everyone_is_busy_and_goes_to_the_first_freed_agent() -> None:
    w = World()
    w.agents.set_busy("anna", "other-1")
    w.agents.set_busy("ben", "other-2")
    call_id = w.incoming()
    w.event(call_id, "CallConnected", 1)
    assert w.telephony.named("add") == [] and w.waiting.queues["sales"] == [call_id]
    w.flow.calls.add  # noqa: B018 - the freed agent's call ends:
    w.agents.release("ben", "other-2")
    w.flow.dispatch_waiting("ben", at(30))
    assert w.telephony.named("add") == [("add", "8:acs:ben", "offer:1", "")]
    assert w.waiting.queues["sales"] == []


def test_click_to_dial_rings_the_agent_then_the_customer_with_the_caller_id() -> None:
    w = World()
    call = w.flow.dial(ANNA, "040 1234567", "+358900100", at(0))
    assert w.telephony.named("create") == [("create", "8:acs:anna", "+358900100")]
    w.event(call.call_id, "CallConnected", 3)
    assert w.telephony.named("add") == [("add", "4:+358401234567", "offer:1", "+358900100")]
    w.event(call.call_id, "AddParticipantSucceeded", 10, "offer:1")
    w.event(call.call_id, "CallDisconnected", 40)
    [activity] = w.crm.activities.values()
    assert activity.outgoing and activity.to_party.id == "c-1"  # type: ignore[union-attr]
    assert activity.from_party.id == "u-anna"  # type: ignore[union-attr]


class FakeCallbacks:
    def __init__(self) -> None:
        self.captured: list[tuple[str, str]] = []

    def capture_from_call(self, call, list_id, at):  # type: ignore[no-untyped-def]
        if (call.call_id, list_id) not in self.captured:
            self.captured.append((call.call_id, list_id))
        return True


class FakeDelayed:
    def __init__(self) -> None:
        self.scheduled: list[tuple[str, int]] = []
        self.queue_waits: list[tuple[str, str, int, int]] = []

    def check_queue_wait_later(
        self, call_id: str, check: str, n: int, *, delay_seconds: int
    ) -> None:
        self.queue_waits.append((call_id, check, n, delay_seconds))

    def offer_callback_later(self, call_id: str, *, delay_seconds: int) -> None:
        self.scheduled.append((call_id, delay_seconds))


def callback_world() -> tuple[World, FakeCallbacks, FakeDelayed]:
    from shared.domain.directory import PoolCallback

    w = World()
    pool = replace(SALES, callback=PoolCallback("cb", offer_after_seconds=30))
    w.flow.directory = replace(w.flow.directory, pools=(pool,))
    callbacks, delayed = FakeCallbacks(), FakeDelayed()
    w.flow.callbacks, w.flow.delayed = callbacks, delayed  # type: ignore[assignment]
    return w, callbacks, delayed


def test_after_waiting_the_caller_is_offered_a_callback_and_pressing_1_leaves_one() -> None:
    w, callbacks, delayed = callback_world()
    w.agents.set_busy("anna", "x")
    w.agents.set_busy("ben", "y")
    call_id = w.incoming()
    assert delayed.scheduled == [(call_id, 30)]
    w.event(call_id, "CallConnected", 1)
    w.flow.offer_callback(call_id, at(31))
    w.flow.offer_callback(call_id, at(32))  # a repeated message offers nothing more
    assert w.telephony.named("recognize") == [("recognize", f"4:{CALLER}", "callback-offer")]
    for _ in range(2):
        w.flow.on_event(
            call_id,
            CallEvent("r1", "RecognizeCompleted", at(35), "callback-offer", tones=("one",)),
            at(35),
        )
    assert callbacks.captured == [(call_id, "cb")]
    assert w.telephony.named("play") == [("play", "callback-confirm")]
    assert w.waiting.queues.get("sales", []) == []
    w.flow.on_event(call_id, CallEvent("p1", "PlayCompleted", at(40), "callback-confirm"), at(40))
    assert len(w.telephony.named("hangup")) == 1
    w.event(call_id, "CallDisconnected", 41)
    assert w.calls.rows[call_id].outcome is Outcome.CALLBACK_REQUESTED
    assert w.crm.activities == {}


def test_a_key_pressed_after_an_agent_answered_leaves_no_callback() -> None:
    w, callbacks, _ = callback_world()
    call_id = w.incoming()
    w.event(call_id, "CallConnected", 1)
    w.event(call_id, "AddParticipantSucceeded", 5, "offer:1")
    w.flow.offer_callback(call_id, at(31))
    assert w.telephony.named("recognize") == []  # answered: nothing to offer
    w.flow.on_event(
        call_id,
        CallEvent("r1", "RecognizeCompleted", at(35), "callback-offer", tones=("one",)),
        at(35),
    )
    assert callbacks.captured == []


def test_a_ring_acs_refuses_is_settled_the_agent_freed_and_the_call_offered_again() -> None:
    from shared.errors import TelephonyError

    w = World()
    real_add = w.telephony.add_participant
    calls = {"n": 0}

    def refusing_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            raise TelephonyError("add participant", 400, "BadRequest")
        return real_add(*args, **kwargs)

    w.telephony.add_participant = refusing_once  # type: ignore[method-assign]
    call_id = w.incoming()
    with pytest.raises(TelephonyError):
        w.event(call_id, "CallConnected", 1)
    assert w.agents.busy == {}  # anna was not left claimed by an offer that never rang
    assert w.calls.rows[call_id].pending_offer is None
    w.event(call_id, "ParticipantsUpdated", 2)  # any later event routes the call again
    assert w.calls.rows[call_id].pending_offer is not None


def test_a_second_round_offer_keeps_the_agents_claim_when_old_failures_are_seen_again() -> None:
    w = World()
    w.flow.directory = replace(w.flow.directory, pools=(replace(SALES, members=("anna",)),))
    call_id = w.incoming()
    w.event(call_id, "CallConnected", 1)
    w.event(call_id, "AddParticipantFailed", 5, "offer:1")  # declined: round two rings her again
    assert w.calls.rows[call_id].pending_offer.n == 2  # type: ignore[union-attr]
    w.event(call_id, "AddParticipantFailed", 5, "offer:1", event_id="late-copy")
    assert w.agents.busy == {"anna": call_id}  # still hers: no second call can take her


def test_callers_who_hung_up_in_the_queue_do_not_block_the_next_one() -> None:
    w = World()
    w.agents.set_busy("anna", "other")
    w.agents.set_busy("ben", "other-2")
    abandoned = []
    for i in range(6):
        call = w.flow.incoming(
            IncomingCall(
                f"e{i}", f"4:+35840123450{i}", "4:+358900100", f"srv-{i}", f"ctx-{i}", at(i)
            )
        )
        assert call is not None
        w.event(call.call_id, "CallConnected", i + 0.5)
        abandoned.append(call.call_id)
    live = w.flow.incoming(
        IncomingCall("e9", "4:+358401234599", "4:+358900100", "srv-9", "ctx-9", at(9))
    )
    assert live is not None
    w.event(live.call_id, "CallConnected", 9.5)
    for call_id in abandoned:  # they ended, but their queue rows are still there
        w.calls.rows[call_id] = replace(w.calls.rows[call_id], ended_at=at(10))
    assert len(w.waiting.queues["sales"]) == 7
    w.agents.release("ben", "other-2")
    w.flow.dispatch_waiting("ben", at(20))
    assert w.telephony.named("add")[-1][1] == "8:acs:ben"
    assert w.calls.rows[live.call_id].pending_offer is not None


def test_a_transfer_acs_refuses_is_undone_the_colleague_freed_and_a_retry_allowed() -> None:
    from shared.domain.activity import SubjectTemplates
    from shared.domain.calls import ConsultState
    from shared.errors import TelephonyError
    from shared.services.agent_calls import AgentCalls
    from shared.services.call_control import CallControl

    w = World()
    views = AgentCalls(
        flow=w.flow,
        directory=w.flow.directory,
        calls=w.calls,
        agents=w.agents,
        crm=w.crm,
        telephony=w.telephony,
        templates=SubjectTemplates(),
        default_region="FI",
    )
    control = CallControl(
        calls=w.calls,
        agents=w.agents,
        telephony=w.telephony,
        directory=w.flow.directory,
        views=views,
        hold_music_url=None,
        default_region="FI",
    )
    call_id = w.incoming()
    w.event(call_id, "CallConnected", 1)
    w.event(call_id, "AddParticipantSucceeded", 5, "offer:1")

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise TelephonyError("add participant", 403, "Forbidden")

    w.telephony.add_participant = refuse  # type: ignore[method-assign]
    with pytest.raises(TelephonyError):
        control.consult(ANNA, call_id, to_agent="ben")
    call = w.calls.rows[call_id]
    assert call.consult is not None and call.consult.state is ConsultState.FAILED
    assert not call.held and "ben" not in w.agents.busy
    assert ("unhold", f"4:{CALLER}") in w.telephony.ops  # the customer was taken off hold
    del w.telephony.add_participant  # ACS accepts again: a new attempt is not blocked
    view = control.consult(ANNA, call_id, to_agent="ben")
    assert view.call_id == call_id and w.agents.busy["ben"] == call_id


def test_a_claim_left_by_a_crash_before_the_offer_was_recorded_is_taken_up_again() -> None:
    # The process died after claiming Anna and before recording the offer; the event comes
    # again. Anna is rung for this call (not leaked as busy), and freed when it ends.
    w = World()
    call_id = w.incoming()
    w.agents.set_busy("anna", call_id)
    w.event(call_id, "CallConnected", 1)
    assert [op[1] for op in w.telephony.named("add")] == ["8:acs:anna"]
    w.event(call_id, "AddParticipantSucceeded", 5, "offer:1")
    w.event(call_id, "CallDisconnected", 60)
    assert w.agents.busy == {}


def test_a_caller_queued_while_an_agent_was_being_freed_is_offered_to_that_agent() -> None:
    # Both members busy when the call looks; Ben is freed between that look and the queue
    # write (his dispatcher saw an empty queue). The call looks again and rings Ben.
    w = World()
    w.agents.set_busy("anna", "other-1")
    w.agents.set_busy("ben", "other-2")
    real_add = w.waiting.add

    def add_while_ben_is_freed(pool_id: str, call: Any) -> None:
        real_add(pool_id, call)
        w.agents.set_busy("ben", None)

    w.waiting.add = add_while_ben_is_freed  # type: ignore[method-assign]
    call_id = w.incoming()
    w.event(call_id, "CallConnected", 1)
    assert [op[1] for op in w.telephony.named("add")] == ["8:acs:ben"]
    assert w.agents.busy["ben"] == call_id
    assert w.waiting.oldest("sales", 10) == []


def test_a_repeated_disconnect_dispatches_a_waiting_caller_the_first_one_never_did() -> None:
    # The invocation that freed Anna died before dispatching; the repeat of the event (Event
    # Grid redelivers after the failure) puts the waiting caller through.
    w = World()
    first = w.incoming()
    w.event(first, "CallConnected", 1)
    w.event(first, "AddParticipantSucceeded", 5, "offer:1")
    w.agents.set_busy("ben", "elsewhere")
    second = w.flow.incoming(
        IncomingCall("eg-2", "4:+358401111111", "4:+358900100", "server-2", "ctx-2", at(6))
    )
    assert second is not None
    w.event(second.call_id, "CallConnected", 7)
    assert w.waiting.oldest("sales", 10) == [second.call_id]
    original = w.flow.dispatch_waiting
    w.flow.dispatch_waiting = lambda *a, **k: None  # type: ignore[method-assign]
    w.event(first, "CallDisconnected", 60, event_id="d")  # freed Anna, then "died"
    w.flow.dispatch_waiting = original  # type: ignore[method-assign]
    assert w.agents.busy == {"ben": "elsewhere"}
    w.event(first, "CallDisconnected", 60, event_id="d")
    assert w.agents.busy["anna"] == second.call_id


def test_a_duplicate_event_losing_the_offer_race_keeps_the_claim_of_the_agent_rung() -> None:
    # Two deliveries of CallConnected raced: one rang Anna; the other, working from the call as
    # it was before that offer, claimed Anna too (the claim is per call) and then lost the
    # offer. It must not free Anna, who is ringing for this very call.
    w = World()
    call_id = w.incoming()
    before = w.calls.rows[call_id]
    w.event(call_id, "CallConnected", 1)
    assert w.agents.busy == {"anna": call_id}
    stale = replace(before, app_connected_at=at(1))
    w.flow.advance(stale, at(1))
    assert w.agents.busy == {"anna": call_id}
    assert len(w.telephony.named("add")) == 1


def test_an_incoming_call_delivered_again_before_its_first_event_is_answered_once() -> None:
    w = World()
    call_id = w.incoming()
    # Event Grid delivers it again while the answer's events are still on their way: ACS
    # refuses the used context, and that means the call was answered.
    again = w.incoming()
    assert again == call_id
    assert len(w.telephony.named("answer")) == 1
    w.event(call_id, "CallConnected", 1)
    assert w.calls.rows[call_id].connection_id == "conn-ctx-1"  # from the event
    assert w.incoming() == call_id  # and once connected, a repeat asks ACS nothing
    assert len(w.telephony.named("answer")) == 1
    assert w.telephony.named("add") == [("add", "8:acs:anna", "offer:1", "")]


def test_the_end_and_the_activity_mark_are_one_write_and_a_crash_between_makes_one_activity() -> (
    None
):
    w = World()
    call_id = w.incoming()
    w.event(call_id, "CallConnected", 1)
    w.event(call_id, "AddParticipantSucceeded", 9, "offer:1")
    writes: list[Call] = []
    real_update = w.calls.update

    def counted(call_id: str, change, *, event_id=None):  # type: ignore[no-untyped-def]
        result = real_update(call_id, change, event_id=event_id)
        if result and result[1]:
            writes.append(result[0])
        return result

    w.calls.update = counted  # type: ignore[method-assign]
    # The host dies after D365 made the activity, before the end was written ...
    crash = {"once": True}

    def dying(call_id: str, change, *, event_id=None):  # type: ignore[no-untyped-def]
        if event_id == "end" and crash.pop("once", False):
            raise RuntimeError("host died")
        return counted(call_id, change, event_id=event_id)

    w.calls.update = dying  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        w.event(call_id, "CallDisconnected", 70, event_id="end")
    assert len(w.crm.activities) == 1 and not w.calls.rows[call_id].ended
    # ... and Event Grid delivers the event again: the activity is not made twice, and the
    # end and its mark are written together.
    w.event(call_id, "CallDisconnected", 70, event_id="end")
    [activity] = w.crm.activities.values()
    call = w.calls.rows[call_id]
    assert call.ended and call.activity_id == activity.activity_id
    assert [(c.ended, c.activity_id) for c in writes][:1] == [(True, activity.activity_id)]
    assert w.agents.busy == {}


def test_a_pool_calls_connection_and_first_offer_are_one_write() -> None:
    w = World()
    call_id = w.incoming()
    writes: list[tuple[str | None, Call]] = []
    real_update = w.calls.update

    def counted(call_id: str, change, *, event_id=None):  # type: ignore[no-untyped-def]
        result = real_update(call_id, change, event_id=event_id)
        if result and result[1]:
            writes.append((event_id, result[0]))
        return result

    w.calls.update = counted  # type: ignore[method-assign]
    w.event(call_id, "CallConnected", 1, event_id="connected")
    first_event, first = writes[0]
    assert first_event == "connected"  # the event's marker goes with it ...
    assert first.app_connected_at is not None and first.connection_id == "conn-ctx-1"
    assert [o.agent_id for o in first.offers] == ["anna"]  # ... and so does the offer
    assert w.telephony.named("add") == [("add", "8:acs:anna", "offer:1", "")]
    # A repeat changes nothing and rings nobody again.
    w.event(call_id, "CallConnected", 1, event_id="connected")
    assert len(w.telephony.named("add")) == 1
