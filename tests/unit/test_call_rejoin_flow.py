"""The rejoin steps of the call flow against in-memory ports: hold music when the web phone
drops, the new session rings the same agent back, REJOIN_SECONDS requeues or diverts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.domain.calls import CallEvent, Phase
from shared.domain.directory import Directory
from shared.domain.sessions import Lease
from shared.services.sessions import WebPhoneSessions
from tests.unit.test_call_flow import ANNA, BEN, CALLER, SALES, World, at

pytestmark = pytest.mark.unit
CUSTOMER = f"4:{CALLER}"


class FakeDelayed:
    def __init__(self) -> None:
        self.rejoins: list[tuple[str, int]] = []
        self.queue_waits: list[tuple[str, str, int, int]] = []

    def check_queue_wait_later(
        self, call_id: str, check: str, n: int, *, delay_seconds: int
    ) -> None:
        self.queue_waits.append((call_id, check, n, delay_seconds))

    def offer_callback_later(self, call_id: str, *, delay_seconds: int) -> None:
        return None

    def check_rejoin_later(self, call_id: str, *, delay_seconds: int) -> None:
        self.rejoins.append((call_id, delay_seconds))


def roster(w: World, call_id: str, seq: int, t: float, *present: str) -> None:
    event = CallEvent(f"r{seq}", "ParticipantsUpdated", at(t), participants=present, sequence=seq)
    w.flow.on_event(call_id, event, at(t))


def dropped_call(w: World) -> tuple[str, FakeDelayed]:
    delayed = FakeDelayed()
    w.flow.delayed = delayed  # type: ignore[assignment]
    call_id = w.incoming()
    w.event(call_id, "CallConnected", 1)
    w.event(call_id, "AddParticipantSucceeded", 5, "offer:1")
    roster(w, call_id, 2, 5, CUSTOMER, ANNA.acs_user_id or "")
    w.calls.save_notes(call_id, "Wants a quote")
    roster(w, call_id, 3, 30, CUSTOMER)  # anna's tab closed (or reloaded)
    return call_id, delayed


def test_a_dropped_web_phone_puts_the_customer_on_hold_and_schedules_the_deadline() -> None:
    w = World()
    call_id, delayed = dropped_call(w)
    roster(w, call_id, 3, 30, CUSTOMER)  # the same roster again: nothing more
    assert w.telephony.named("hold") == [("hold", CUSTOMER)]
    assert w.telephony.named("hangup") == []
    assert delayed.rejoins == [(call_id, 60)]
    assert w.agents.busy == {"anna": call_id}  # anna keeps the call for her next session


class FakeLeases:
    def __init__(self) -> None:
        self.lease: Lease | None = None

    def swap(self, agent_id, change):  # type: ignore[no-untyped-def]
        self.lease = change(self.lease)
        return self.lease

    def remove(self, agent_id: str, session_id: str) -> None:
        self.lease = None


def test_the_new_session_rings_anna_back_into_the_same_call_with_notes_and_one_activity() -> None:
    w = World()
    call_id, _ = dropped_call(w)
    sessions = WebPhoneSessions(FakeLeases(), 60, ring_back=w.flow.rejoins.ring_back)  # type: ignore[arg-type]
    sessions.start(ANNA, at(40))
    assert w.telephony.named("add")[-1] == ("add", "8:acs:anna", "offer:2", "")
    assert w.telephony.voip_headers[-1] == {"callId": call_id, "rejoin": "true"}
    assert w.calls.rows[call_id].pending_rejoin is not None
    assert w.calls.rows[call_id].phase is Phase.RINGING
    w.flow.rejoins.ring_back(ANNA, at(41))  # a second start while it rings: one ring
    assert len(w.telephony.named("add")) == 2
    w.event(call_id, "AddParticipantSucceeded", 45, "offer:2")
    roster(w, call_id, 4, 45, CUSTOMER, "8:acs:anna")
    assert w.telephony.named("unhold") == [("unhold", CUSTOMER)]
    assert w.calls.rows[call_id].phase is Phase.CONNECTED
    w.event(call_id, "CallDisconnected", 90)
    [activity] = w.crm.activities.values()
    assert activity.description == "Wants a quote"
    assert activity.to_party.id == "u-anna"  # type: ignore[union-attr]


def test_after_rejoin_seconds_the_pool_caller_is_offered_to_the_next_agent_first() -> None:
    w = World()
    call_id, _ = dropped_call(w)
    w.flow.rejoins.expired(call_id, at(89))  # early (a stale message): nothing
    assert len(w.telephony.named("add")) == 1
    w.flow.rejoins.expired(call_id, at(91))
    assert w.telephony.named("add")[-1] == ("add", "8:acs:ben", "offer:2", "")
    assert w.agents.busy == {"ben": call_id}  # anna was freed
    w.flow.rejoins.expired(call_id, at(92))  # the message again: nothing more
    assert len(w.telephony.named("add")) == 2
    w.event(call_id, "AddParticipantSucceeded", 95, "offer:2")
    roster(w, call_id, 4, 95, CUSTOMER, "8:acs:ben")
    assert w.telephony.named("unhold") == [("unhold", CUSTOMER)]
    w.event(call_id, "CallDisconnected", 120)
    [activity] = w.crm.activities.values()
    assert activity.to_party.id == "u-ben"  # type: ignore[union-attr]


def test_with_nobody_free_the_requeued_caller_waits_at_the_front() -> None:
    w = World()
    call_id, _ = dropped_call(w)
    w.agents.set_busy("ben", "other-call")
    w.agents.set_busy("anna", "her-next-call")  # anna took another call meanwhile
    w.flow.rejoins.expired(call_id, at(91))
    assert w.waiting.queues["sales"] == [call_id]
    assert w.calls.rows[call_id].phase is Phase.WAITING
    w.agents.set_busy("ben", None)
    w.flow.dispatch_waiting("ben", at(100))  # ben is free: the waiting caller is offered
    assert w.telephony.named("add")[-1] == ("add", "8:acs:ben", "offer:2", "")


def test_a_direct_caller_goes_to_the_dnd_target_or_the_call_ends() -> None:
    w = World()
    forwarding = replace(ANNA, forward_to="+358401119999")
    w.flow.directory = Directory((forwarding, BEN), (SALES,))
    delayed = FakeDelayed()
    w.flow.delayed = delayed  # type: ignore[assignment]
    call_id = w.incoming(to="+358900200")
    w.event(call_id, "CallConnected", 1)
    w.event(call_id, "AddParticipantSucceeded", 5, "offer:1")
    roster(w, call_id, 2, 5, CUSTOMER, "8:acs:anna")
    roster(w, call_id, 3, 30, CUSTOMER)
    w.flow.rejoins.expired(call_id, at(91))
    assert w.telephony.named("transfer")[-1][1] == "4:+358401119999"
    assert w.telephony.named("hangup") == []

    w2 = World()
    w2.flow.delayed = FakeDelayed()  # type: ignore[assignment]
    direct = w2.incoming(to="+358900200")
    w2.event(direct, "CallConnected", 1)
    w2.event(direct, "AddParticipantSucceeded", 5, "offer:1")
    roster(w2, direct, 2, 5, CUSTOMER, "8:acs:anna")
    roster(w2, direct, 3, 30, CUSTOMER)
    w2.flow.rejoins.expired(direct, at(91))
    assert len(w2.telephony.named("hangup")) == 1  # no DND target: the call ends


def test_a_failed_deadline_schedule_is_retried_with_the_event() -> None:
    w = World()
    delayed = FakeDelayed()
    failures = iter([RuntimeError("queue down")])

    def flaky(call_id: str, *, delay_seconds: int) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        delayed.rejoins.append((call_id, delay_seconds))

    delayed.check_rejoin_later = flaky  # type: ignore[method-assign]
    w.flow.delayed = delayed  # type: ignore[assignment]
    call_id = w.incoming()
    w.event(call_id, "CallConnected", 1)
    w.event(call_id, "AddParticipantSucceeded", 5, "offer:1")
    roster(w, call_id, 2, 5, CUSTOMER, "8:acs:anna")
    with pytest.raises(RuntimeError):
        roster(w, call_id, 3, 30, CUSTOMER)
    assert w.telephony.named("hold") == [] and not w.calls.rows[call_id].rejoin_hold
    roster(w, call_id, 3, 30, CUSTOMER)  # the event delivered again
    assert delayed.rejoins == [(call_id, 60)]
    assert w.telephony.named("hold") == [("hold", CUSTOMER)]
