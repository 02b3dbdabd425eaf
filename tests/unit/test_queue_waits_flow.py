"""A waiting pool caller's timed checks against in-memory ports (docs/pools.md): the longest
wait's overflow, the announcements, and a callback that keeps the caller's place; each message
delivered three times and out of order."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.domain.calls import CallbackOffer, CallEvent, IncomingCall, Outcome, Phase
from shared.domain.directory import Overflow, ServicePool
from shared.domain.pool_monitoring import PoolCallEntry
from shared.domain.queue_wait import QueueAnnouncements
from shared.domain.schedule import PoolAction, Then
from tests.unit.test_call_flow import CALLER, SALES, FakeDelayed, World, at

pytestmark = pytest.mark.unit
BACKUP = ServicePool("backup", "Backup", ("+358900999",), ("ben",), 20)


def world(*pools: ServicePool) -> tuple[World, FakeDelayed]:
    w = World()
    delayed = FakeDelayed()
    w.flow.delayed = delayed
    w.flow.directory = replace(w.flow.directory, pools=pools)
    return w, delayed


def overflowing(then: Then, target: str | None = None, wait: int = 60) -> ServicePool:
    return replace(
        SALES, members=("anna",), overflow=Overflow(None, PoolAction(then, target), wait)
    )


def waiting_caller(w: World) -> str:
    """A caller who waits: anna, the pool's one member, is busy."""
    w.agents.set_busy("anna", "other")
    call_id = w.incoming()
    w.event(call_id, "CallConnected", 1)
    assert w.waiting.queues["sales"] == [call_id]
    return call_id


def test_after_the_longest_wait_the_caller_moves_to_the_other_pool_once() -> None:
    w, delayed = world(overflowing(Then.POOL, "backup"), BACKUP)
    call_id = waiting_caller(w)
    assert (call_id, "overflow", 0, 60) in delayed.queue_waits
    for _ in range(3):  # the message delivered three times
        w.flow.queue.due(call_id, "overflow", 0, at(61))
    call = w.calls.rows[call_id]
    assert (call.pool_id, call.overflowed) == ("backup", "pool")
    assert w.telephony.named("add") == [("add", "8:acs:ben", "offer:1", "")]
    assert w.waiting.queues["sales"] == []


def test_a_call_answered_meanwhile_is_left_alone_and_a_ringing_one_is_looked_at_later() -> None:
    w, delayed = world(overflowing(Then.NUMBER, "+358401112233"))
    call_id = w.incoming()
    w.event(call_id, "CallConnected", 1)  # anna rings
    w.flow.queue.due(call_id, "overflow", 0, at(61))
    assert delayed.queue_waits[-1] == (call_id, "overflow", 0, 21)  # after the ring timeout
    w.event(call_id, "AddParticipantSucceeded", 62, "offer:1")
    w.flow.queue.due(call_id, "overflow", 0, at(82))
    assert w.telephony.named("transfer") == []
    assert w.calls.rows[call_id].overflowed == ""


def test_the_longest_wait_sends_the_caller_on_to_the_number() -> None:
    w, _ = world(overflowing(Then.NUMBER, "+358401112233"))
    call_id = waiting_caller(w)
    for _ in range(3):
        w.flow.queue.due(call_id, "overflow", 0, at(61))
    assert w.telephony.named("transfer") == [
        ("transfer", "4:+358401112233", f"4:{CALLER}", "overflow-transfer")
    ]
    w.event(call_id, "CallTransferAccepted", 63, "overflow-transfer")
    assert w.waiting.queues["sales"] == []  # being sent on: not queued again meanwhile
    w.event(call_id, "CallDisconnected", 65)
    assert w.calls.rows[call_id].outcome is Outcome.FORWARDED


def test_announcements_start_on_joining_and_each_is_made_once() -> None:
    pool = replace(
        SALES, members=("anna",), queue_announcements=QueueAnnouncements(every_seconds=30)
    )
    w, delayed = world(pool)
    recent = [
        PoolCallEntry(
            "sales",
            "old",
            at(-900),
            Phase.ENDED,
            CALLER,
            at(-890),
            at(-770),
            "anna",
            Outcome.ANSWERED,
        )
    ]
    w.flow.queue.recent = type("Log", (), {"recent": lambda self, p, s, n: recent})()
    w.agents.set_busy("anna", "other")
    first = w.incoming()
    w.event(first, "CallConnected", 1)
    assert w.telephony.played == [
        "You are number 1 in the queue. The estimated wait is about 2 minutes."
    ]
    assert (first, "announce", 2, 30) in delayed.queue_waits
    for n in (2, 2, 3, 2, 2):  # repeats, and an old one after a newer one
        w.flow.queue.due(first, "announce", n, at(31))
    assert len(w.telephony.played) == 3
    assert w.calls.rows[first].queue_announced == 3
    w.agents.set_busy("anna", None)
    w.flow.dispatch_waiting("anna", at(40))  # anna rings: the caller hears nothing over it
    w.flow.queue.due(first, "announce", 4, at(61))
    assert len(w.telephony.played) == 3


def test_a_kept_place_waits_in_the_queue_and_a_freed_agent_calls_back_before_later_callers() -> (
    None
):
    pool = replace(overflowing(Then.QUEUED_CALLBACK), members=("anna", "ben"))
    w, _ = world(pool)
    w.agents.set_busy("anna", "x")
    w.agents.set_busy("ben", "y")
    first = w.incoming()
    w.event(first, "CallConnected", 1)
    for _ in range(3):
        w.flow.queue.due(first, "overflow", 0, at(61))
    assert w.telephony.named("recognize") == [("recognize", f"4:{CALLER}", "callback-offer")]
    pressed = CallEvent("r1", "RecognizeCompleted", at(63), "callback-offer", tones=("one",))
    for _ in range(3):
        w.flow.on_event(first, pressed, at(63))
    assert "keep your place" in w.telephony.played[-1]
    w.flow.on_event(first, CallEvent("p1", "PlayCompleted", at(66), "callback-confirm"), at(66))
    w.event(first, "CallDisconnected", 67)
    kept = w.calls.rows[first]
    assert kept.place_kept and kept.outcome is Outcome.CALLBACK_REQUESTED
    second = w.flow.incoming(  # a later caller
        IncomingCall("eg-2", "4:+358501112233", "4:+358900100", "server-2", "ctx-2", at(70))
    )
    assert second is not None
    w.event(second.call_id, "CallConnected", 71)
    assert w.waiting.queues["sales"] == [first, second.call_id]

    w.agents.set_busy("anna", None)
    w.flow.dispatch_waiting("anna", at(80))
    w.flow.dispatch_waiting("anna", at(80))  # a repeat offers nothing more
    assert w.telephony.named("create") == [("create", "8:acs:anna", "+358900100")]
    out_id = w.calls.rows[first].callback_call_id
    assert out_id and w.agents.busy["anna"] == out_id

    # Anna declines: ben (freed meanwhile) is offered it; the place is kept all along.
    w.agents.set_busy("ben", None)
    w.event(out_id, "CreateCallFailed", 85)
    assert w.waiting.queues["sales"][0] == first
    [_, (_, ben_target, _)] = w.telephony.named("create")
    assert ben_target == "8:acs:ben"
    out2 = w.calls.rows[first].callback_call_id
    assert out2 and out2 != out_id
    w.event(out2, "CallConnected", 90)  # ben's leg: the request leaves the queue ...
    assert w.calls.rows[first].callback_done
    assert w.waiting.queues["sales"] == [second.call_id]
    assert w.telephony.named("add")[-1] == ("add", f"4:{CALLER}", "offer:1", "+358900100")
    w.event(out2, "AddParticipantSucceeded", 95, "offer:1")  # ... and the caller answers
    w.event(out2, "CallDisconnected", 200)
    activity = w.crm.activities[w.calls.rows[out2].activity_uuid]
    assert activity.phone_number == CALLER and activity.outgoing
    assert w.calls.rows[first].callback is CallbackOffer.CONFIRMED


def test_a_caller_who_declined_a_callback_is_still_offered_to_keep_its_place() -> None:
    from shared.domain.directory import PoolCallback

    pool = replace(overflowing(Then.QUEUED_CALLBACK), callback=PoolCallback("cb", 30))
    w, _ = world(pool)
    call_id = waiting_caller(w)
    w.flow.offer_callback(call_id, at(31))
    declined = CallEvent("r1", "RecognizeFailed", at(41), "callback-offer")
    w.flow.on_event(call_id, declined, at(41))
    assert w.calls.rows[call_id].callback is CallbackOffer.DECLINED
    w.flow.queue.due(call_id, "overflow", 0, at(61))
    assert len(w.telephony.named("recognize")) == 2
    assert w.calls.rows[call_id].keeps_place
