"""Waiting in a pool's queue (§7 2.3 3; docs/pools.md): the overflow after the longest wait,
a callback that keeps the caller's place, and the position and estimated-wait announcements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters.pool_monitoring import TablePoolCallLog
from shared.domain.calls import Outcome, Phase
from shared.domain.pool_monitoring import PoolCallEntry
from tests.e2e.test_pools import figures, rings, support
from tests.fixtures.product import (
    ANNA,
    BEN,
    CALLER,
    CAT,
    SUPPORT_NUMBER,
    Product,
    connected,
    wait_for,
)

pytestmark = pytest.mark.e2e
SECOND = "+358501112233"
FORWARD_TO = "+358409998877"


def offwork(world: Product, *agents: Any) -> None:
    for agent in agents:
        reply = world.api("PUT", "me/availability", agent, json_body={"status": "Offwork"})
        assert reply.status_code == 200, reply.text


def acs_call_of(world: Product, placed: dict[str, Any]) -> dict[str, Any] | None:
    return next(
        (c for c in world.acs.state()["calls"] if c.get("serverCallId") == placed["serverCallId"]),
        None,
    )


def heard(world: Product, placed: dict[str, Any]) -> list[str]:
    """The texts played to a caller's call, in order."""
    call = acs_call_of(world, placed) or {}
    return [
        str(s.get("text", {}).get("text") or s.get("text") or "")
        for p in call.get("plays", [])
        for s in p.get("sources", [])
    ]


def test_a_caller_waiting_longer_than_the_maximum_overflows_to_another_pool(
    world: Product,
) -> None:
    support(
        world,
        [{"agentId": CAT.id, "skill": 5}],
        overflow={"maxWaitSeconds": 2, "then": "pool", "target": "sales"},
    )
    offwork(world, CAT)  # nobody serves support; anna and ben serve sales
    world.acs.place_call(CALLER, SUPPORT_NUMBER)
    wait_for(lambda: figures(world, "support")["queueLength"] == 1, what="the caller to wait")
    assert world.ringing(ANNA.acs_id) is None and world.ringing(BEN.acs_id) is None

    ring = wait_for(
        lambda: world.ringing(ANNA.acs_id) or world.ringing(BEN.acs_id),
        what="a sales member to ring after the longest wait",
    )
    assert figures(world, "support")["queueLength"] == 0
    world.acs.device_answer(ring["device"])
    agent = ANNA if ring["device"] == ANNA.acs_id else BEN
    call = connected(world, agent)
    assert call["customerNumber"] == CALLER
    world.acs.hang_up(CALLER)
    world.settle()


def test_a_caller_waiting_longer_than_the_maximum_is_sent_on_to_the_overflow_number(
    world: Product,
) -> None:
    support(
        world,
        [{"agentId": CAT.id, "skill": 5}],
        overflow={"maxWaitSeconds": 2, "then": "number", "target": FORWARD_TO},
    )
    offwork(world, CAT)
    world.acs.place_call(CALLER, SUPPORT_NUMBER)
    world.answer_device(FORWARD_TO, "the overflow number")
    token = world.token(BEN, roles=["Phone.Supervisor"])

    def forwarded() -> dict[str, Any] | None:
        tab = world.api("GET", "supervisor/pools/support/calls", token=token)
        assert tab.status_code == 200, tab.text
        return next((c for c in tab.json()["recent"] if c["outcome"] == "forwarded"), None)

    call = wait_for(forwarded, what="the call to be logged as forwarded")
    assert call["customerNumber"] == CALLER and call["agentId"] is None
    assert figures(world, "support")["queueLength"] == 0
    [acs_call] = world.acs.state()["calls"]
    assert acs_call["endReason"] == "The call was transferred."
    world.settle()


def test_a_callback_keeps_the_callers_place_and_a_free_agent_calls_back_first(
    world: Product,
) -> None:
    support(
        world,
        [{"agentId": ANNA.id, "skill": 5}],
        overflow={"maxWaitSeconds": 2, "then": "queuedCallback"},
    )
    offwork(world, ANNA)
    first = world.acs.place_call(CALLER, SUPPORT_NUMBER)
    offer = wait_for(
        lambda: (acs_call_of(world, first) or {}).get("recognizing"),
        what="the offer to keep the place",
    )
    assert "keep your place in the queue" in str(offer["prompts"]).lower()
    world.acs.press(CALLER, "1")
    wait_for(
        lambda: (acs_call_of(world, first) or {}).get("state") == "disconnected",
        what="the first caller to be let go after the confirmation",
    )
    assert "you keep your place" in " ".join(heard(world, first)).lower()
    # The request waits in the queue at the caller's place, and a later caller waits behind it.
    world.acs.place_call(SECOND, SUPPORT_NUMBER)
    wait_for(lambda: figures(world, "support")["queueLength"] == 2, what="both to be in the queue")

    reply = world.api("PUT", "me/availability", ANNA, json_body={"status": "Available"})
    assert reply.status_code == 200, reply.text
    world.answer(ANNA)  # her own leg first, as click-to-dial does ...
    world.answer_device(CALLER, "the first caller's phone")  # ... then the caller's number
    call = connected(world, ANNA)
    assert call["direction"] == "outbound" and call["customerNumber"] == CALLER
    assert figures(world, "support")["queueLength"] == 1  # the second caller still waits
    assert world.api("POST", f"me/calls/{call['callId']}/hangup", ANNA).status_code == 200

    activity = wait_for(
        lambda: next((a for a in world.phonecalls() if a["phonenumber"] == CALLER), None),
        what="the callback's Phone Call activity",
    )
    assert activity["directioncode"] is True  # a call we made
    world.answer(ANNA)  # now the second caller, who arrived later
    second = connected(world, ANNA)
    assert second["customerNumber"] == SECOND
    world.acs.hang_up(SECOND)
    world.settle()


def test_a_kept_place_declined_by_one_member_goes_to_the_next(world: Product) -> None:
    support(
        world,
        [{"agentId": ANNA.id, "skill": 8}, {"agentId": BEN.id, "skill": 5}],
        overflow={"maxWaitSeconds": 1, "then": "queuedCallback"},
    )
    offwork(world, ANNA, BEN)
    first = world.acs.place_call(CALLER, SUPPORT_NUMBER)
    wait_for(lambda: (acs_call_of(world, first) or {}).get("recognizing"), what="the offer")
    world.acs.press(CALLER, "1")
    wait_for(
        lambda: (acs_call_of(world, first) or {}).get("state") == "disconnected",
        what="the caller to hang up",
    )
    for agent in (ANNA, BEN):
        reply = world.api("PUT", "me/availability", agent, json_body={"status": "Available"})
        assert reply.status_code == 200, reply.text
    rings(world, ANNA)  # the better skill first
    world.acs.device_decline(ANNA.acs_id)
    world.answer(BEN)
    world.answer_device(CALLER, "the caller's phone")
    call = connected(world, BEN)
    assert call["customerNumber"] == CALLER
    wait_for(lambda: figures(world, "support")["queueLength"] == 0, what="the queue to empty")
    world.acs.hang_up(CALLER)
    world.settle()


def test_waiting_callers_hear_their_position_and_the_estimated_wait(world: Product) -> None:
    support(
        world,
        [{"agentId": ANNA.id, "skill": 5}],
        queueAnnouncements={"position": True, "estimatedWait": True, "everySeconds": 5},
    )
    # The last hour: anna answered two calls of 90 seconds each.
    log = TablePoolCallLog(world.store)
    now = datetime.now(UTC)
    for i in range(2):
        answered = now - timedelta(minutes=30 - i * 5)
        log.record(
            PoolCallEntry(
                pool_id="support",
                call_id=f"earlier-{i}",
                arrived_at=answered - timedelta(seconds=20),
                phase=Phase.ENDED,
                customer_number="+358501000000",
                answered_at=answered,
                ended_at=answered + timedelta(seconds=90),
                agent_id=ANNA.id,
                outcome=Outcome.ANSWERED,
            ),
            revision=1,
        )
    offwork(world, ANNA)
    first = world.acs.place_call(CALLER, SUPPORT_NUMBER)
    wait_for(lambda: heard(world, first), what="the first caller's announcement")
    second = world.acs.place_call(SECOND, SUPPORT_NUMBER)
    [said] = wait_for(lambda: heard(world, second), what="the second caller's announcement")
    # Number 2, behind one caller: 2 x 90 s handled by one agent = 3 minutes.
    assert said == "You are number 2 in the queue. The estimated wait is about 3 minutes."
    assert heard(world, first)[0] == (
        "You are number 1 in the queue. The estimated wait is about 2 minutes."
    )

    world.acs.hang_up(CALLER)  # the first caller gives up: the second moves up
    again = wait_for(
        lambda: (h := heard(world, second))[1:] and h, what="the next announcement", timeout=30
    )
    assert again[1] == "You are number 1 in the queue. The estimated wait is about 2 minutes."
    world.acs.hang_up(SECOND)
    world.settle()
