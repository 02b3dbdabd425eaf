"""Pool routing stays live: no caller waits while a member is free, no agent stays claimed by a
call that no longer rings it, and an offer the host died before ringing heals (docs/pools.md,
Routing). The races and the crash are made to happen at a chosen step."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from shared.domain.calls import CallEvent, IncomingCall, OfferOutcome
from shared.services.calls import LOST_RING_MARGIN_SECONDS
from tests.unit.test_call_flow import World, at

pytestmark = pytest.mark.unit


class HostKilled(BaseException):
    """The process dies here: nothing after this step runs, not even an `except Exception`."""


class Rig(World):
    def __init__(self) -> None:
        super().__init__()
        self.calls_made = 0

    def arrive(self, t: float) -> str:
        self.calls_made += 1
        n = self.calls_made
        call = self.flow.incoming(
            IncomingCall(
                f"eg-{n}", f"4:+35840100000{n}", "4:+358900100", f"server-{n}", f"ctx-{n}", at(t)
            )
        )
        assert call is not None
        self.event(call.call_id, "CallConnected", t)
        return call.call_id

    def ringing(self, call_id: str) -> str | None:
        offer = self.calls.rows[call_id].pending_offer
        return offer.agent_id if offer else None

    def once(self, obj: Any, name: str, before: Callable[[], None]) -> None:
        """Run `before` the next time `obj.name` is called (then call it, unless it raised)."""
        real = getattr(obj, name)

        def hooked(*args: Any, **kwargs: Any) -> Any:
            setattr(obj, name, real)
            before()
            return real(*args, **kwargs)

        setattr(obj, name, hooked)


def killed() -> None:
    raise HostKilled


@pytest.mark.parametrize("step", ["note_call", "add_participant"])
def test_an_offer_the_host_died_before_ringing_expires_and_the_queue_moves_past_it(
    step: str,
) -> None:
    w = Rig()
    first, second = w.arrive(1), w.arrive(2)  # Anna and Ben take them
    w.event(first, "AddParticipantSucceeded", 3, "offer:1")
    w.event(second, "AddParticipantSucceeded", 3, "offer:1")
    stuck, behind = w.arrive(4), w.arrive(5)
    assert w.waiting.oldest("sales", 10) == [stuck, behind]

    # Anna is freed and offered the head call; the host dies after the offer is recorded,
    # before ACS is asked to ring her.
    w.once(w.agents if step == "note_call" else w.telephony, step, killed)
    with pytest.raises(HostKilled):
        w.event(first, "CallDisconnected", 10)
    assert w.ringing(stuck) == "anna" and w.agents.busy == {"anna": stuck, "ben": second}
    assert w.waiting.oldest("sales", 10) == [stuck, behind]

    w.event(second, "CallDisconnected", 12)  # Ben is freed
    # The dispatch passes the stuck call by: the caller behind it is offered Ben.
    assert w.ringing(behind) == "ben"

    # Nothing else happens in the pool; the housekeeping timer looks at its queue after the
    # ring timeout and the margin: the offer never rung expires, Anna is offered the call.
    rung = w.calls.rows[stuck].offers[-1].offered_at
    w.flow.dispatch_pools(rung + timedelta(seconds=20 + LOST_RING_MARGIN_SECONDS - 1))
    assert w.ringing(stuck) == "anna" and len(w.calls.rows[stuck].offers) == 1  # not yet
    w.flow.dispatch_pools(rung + timedelta(seconds=20 + LOST_RING_MARGIN_SECONDS + 1))
    offers = w.calls.rows[stuck].offers
    assert [(o.agent_id, o.outcome) for o in offers] == [
        ("anna", OfferOutcome.NOT_ANSWERED),
        ("anna", OfferOutcome.PENDING),
    ]
    assert ("add", "8:acs:anna", offers[-1].context, "") in w.telephony.named("add")
    assert w.agents.busy == {"anna": stuck, "ben": behind}
    assert w.waiting.oldest("sales", 10) == []  # rung now: out of the queue

    # A late repeat of the check, or ACS's own failure event for the lost offer, changes
    # nothing.
    w.flow.dispatch_pools(at(200))
    w.event(stuck, "AddParticipantFailed", 201, offers[0].context)
    assert len(w.calls.rows[stuck].offers) == 2 and w.agents.busy["anna"] == stuck


def test_an_offer_made_on_arrival_and_never_rung_is_found_by_the_claim_it_holds() -> None:
    w = Rig()
    w.once(w.telephony, "add_participant", killed)
    with pytest.raises(HostKilled):
        w.arrive(1)  # offered at once (never queued); the host dies before ACS rings
    [stuck] = w.calls.rows
    assert w.ringing(stuck) == "anna" and w.waiting.oldest("sales", 10) == []

    w.flow.dispatch_pools(at(1 + 20 + LOST_RING_MARGIN_SECONDS + 1))
    assert [o.outcome for o in w.calls.rows[stuck].offers] == [
        OfferOutcome.NOT_ANSWERED,
        OfferOutcome.PENDING,
    ]
    assert len(w.telephony.named("add")) == 1  # rung now
    assert w.agents.busy == {w.ringing(stuck): stuck}


def test_a_claim_left_by_an_ended_call_that_never_offered_it_is_freed() -> None:
    w = Rig()
    call_id = w.arrive(1)
    w.event(call_id, "AddParticipantSucceeded", 2, "offer:1")
    w.agents.claim("ben", call_id)  # a second invocation's claim, its offer never recorded
    w.event(call_id, "CallDisconnected", 10)
    assert w.agents.busy == {"ben": call_id}  # the end frees only whom the call offered
    waiting = w.arrive(11)  # waits: Ben looks busy
    assert w.ringing(waiting) == "anna"
    w.event(waiting, "AddParticipantSucceeded", 12, "offer:1")
    late = w.arrive(13)
    assert w.ringing(late) is None

    w.flow.dispatch_pools(at(10 + 20 + LOST_RING_MARGIN_SECONDS + 1))
    assert w.agents.busy == {"anna": waiting, "ben": late}
    assert w.ringing(late) == "ben"


def test_a_release_racing_an_offer_of_the_head_call_offers_the_next_caller() -> None:
    w = Rig()
    first, second = w.arrive(1), w.arrive(2)  # Anna and Ben take them
    w.event(first, "AddParticipantSucceeded", 3, "offer:1")
    w.event(second, "AddParticipantSucceeded", 3, "offer:1")
    head, behind = w.arrive(4), w.arrive(5)
    assert w.waiting.oldest("sales", 10) == [head, behind]

    # Anna's release offers her the head call; between recording the offer and ringing her
    # (the call still in the queue), Ben is freed on another thread and his dispatch reads
    # the queue.
    w.once(w.agents, "note_call", lambda: w.event(second, "CallDisconnected", 11))
    w.event(first, "CallDisconnected", 10)

    assert w.ringing(head) == "anna"
    assert w.ringing(behind) == "ben"  # not left waiting beside a free Ben
    assert w.agents.busy == {"anna": head, "ben": behind}
    assert w.waiting.oldest("sales", 10) == []


def test_a_claim_whose_offer_cannot_be_recorded_is_freed() -> None:
    w = Rig()

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the calls table did not answer")

    real = w.calls.update
    calls = {"n": 0}

    def update(call_id: str, change: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if w.agents.busy.get("anna") == call_id:  # the offer's write (the event's with it)
            w.calls.update = real  # type: ignore[method-assign]
            return failing()
        return real(call_id, change, **kwargs)

    w.calls.update = update  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        w.arrive(1)
    [call_id] = w.calls.rows
    assert w.agents.busy == {}  # Anna is not left claimed by an offer that never was
    # The event's redelivery offers the call.
    again = CallEvent(
        "again", "CallConnected", at(2), connection_id=w.telephony.connection_of(call_id)
    )
    w.flow.on_event(call_id, again, at(2))
    assert w.ringing(call_id) == "anna"
