"""Call control from the web phone (§1.3), observed in the ACS emulator's state and events."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.product import (
    ANNA,
    BEN,
    CALLER,
    POOL_NUMBER,
    Product,
    connected,
    seed_contact,
    wait_for,
)

pytestmark = pytest.mark.e2e


def acs_call(world: Product) -> dict[str, Any]:
    [call] = [c for c in world.acs.state()["calls"] if c["state"] != "disconnected"]
    return call


def participant(world: Product, raw_id: str) -> dict[str, Any] | None:
    return next((p for p in acs_call(world)["participants"] if p["rawId"] == raw_id), None)


def answered_pool_call(world: Product) -> str:
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)
    return str(connected(world, ANNA)["callId"])


def post(world: Product, call_id: str, action: str, body: Any = None, agent=ANNA) -> Any:
    reply = world.api("POST", f"me/calls/{call_id}/{action}", agent, json_body=body)
    assert reply.status_code == 200, (action, reply.text)
    return reply.json()


def test_hold_unhold_mute_and_dtmf_reach_acs(world: Product) -> None:
    call_id = answered_pool_call(world)
    post(world, call_id, "hold")
    assert participant(world, f"4:{CALLER}")["isOnHold"] is True
    post(world, call_id, "unhold")
    assert participant(world, f"4:{CALLER}")["isOnHold"] is False
    post(world, call_id, "mute")
    assert participant(world, ANNA.acs_id)["isMuted"] is True
    post(world, call_id, "dtmf", {"tones": "12#"})
    sent = wait_for(lambda: acs_call(world)["sentTones"], what="the tones to be sent")
    assert [(t["to"], t["tones"]) for t in sent] == [(f"4:{CALLER}", ["one", "two", "pound"])]
    bad = world.api("POST", f"me/calls/{call_id}/dtmf", ANNA, json_body={"tones": "12x"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "tones"
    world.settle()
    kinds = {d["eventType"].split(".")[-1] for d in world.acs.deliveries()}
    assert {"ParticipantsUpdated", "SendDtmfTonesCompleted"} <= kinds
    world.acs.hang_up(CALLER)


def test_a_direct_transfer_to_a_colleague_hands_the_customer_over(world: Product) -> None:
    seed_contact(world)
    call_id = answered_pool_call(world)
    post(world, call_id, "transfer", {"agentId": BEN.id})
    world.answer(BEN)
    wait_for(
        lambda: participant(world, BEN.acs_id) and not participant(world, ANNA.acs_id),
        what="ben to replace anna",
    )
    world.settle()
    assert participant(world, f"4:{CALLER}") is not None  # the customer was never dropped
    assert world.current(BEN)["callId"] == call_id
    world.acs.hang_up(CALLER)
    [activity] = wait_for(world.phonecalls, what="the activity")
    assert activity["_ownerid_value"] == ANNA.user_id  # the agent who answered logs the call


def test_a_consulted_transfer_completed(world: Product) -> None:
    call_id = answered_pool_call(world)
    view = post(world, call_id, "consult", {"agentId": BEN.id})
    assert participant(world, f"4:{CALLER}")["isOnHold"] is True
    world.answer(BEN)
    wait_for(lambda: participant(world, BEN.acs_id), what="ben to join the consultation")
    wait_for(lambda: world.current(ANNA)["callId"] == call_id, what="the consult to settle")
    world.settle()
    post(world, call_id, "consult/complete")
    wait_for(lambda: participant(world, ANNA.acs_id) is None, what="anna to leave")
    assert participant(world, f"4:{CALLER}")["isOnHold"] is False
    assert participant(world, BEN.acs_id) is not None
    world.settle()
    assert acs_call(world)["state"] == "connected"  # nobody hung up on the customer
    assert view["callId"] == call_id
    world.acs.hang_up(CALLER)


def test_a_consulted_transfer_cancelled_returns_the_customer_to_the_agent(
    world: Product,
) -> None:
    call_id = answered_pool_call(world)
    post(world, call_id, "consult", {"number": "+358405550000"})
    world.answer_device("+358405550000", "the consulted number")
    wait_for(lambda: participant(world, "4:+358405550000"), what="the target to join")
    world.settle()
    post(world, call_id, "consult/cancel")
    wait_for(lambda: participant(world, "4:+358405550000") is None, what="the target to leave")
    assert participant(world, f"4:{CALLER}")["isOnHold"] is False
    assert participant(world, ANNA.acs_id) is not None
    world.settle()
    assert acs_call(world)["state"] == "connected"
    world.acs.hang_up(CALLER)


def test_history_caller_ids_and_directory(world: Product) -> None:
    contact_id = seed_contact(world)
    call_id = answered_pool_call(world)
    world.acs.hang_up(CALLER)
    wait_for(world.phonecalls, what="the activity")
    [item] = world.api("GET", "me/calls?limit=5", ANNA).json()["calls"]
    assert (item["callId"], item["direction"], item["number"], item["outcome"]) == (
        call_id,
        "inbound",
        CALLER,
        "answered",
    )
    assert item["name"] == "Maija Meikäläinen" and item["durationSeconds"] is not None
    assert world.api("GET", "me/calls?limit=0", ANNA).status_code == 400

    ids = world.api("GET", "me/caller-ids", ANNA).json()
    assert ids["default"] == POOL_NUMBER

    by_name = world.api("GET", "directory?q=maija", ANNA).json()["results"]
    assert [(r["kind"], r["id"]) for r in by_name] == [("contact", contact_id)]
    by_number = world.api("GET", "directory?q=040 1234567", ANNA).json()["results"]
    assert by_number[0]["id"] == contact_id
    colleagues = world.api("GET", "directory?q=ben", ANNA).json()["results"]
    assert colleagues == [{"kind": "colleague", "id": "ben", "name": "Ben Agent", "phone": None}]
    assert world.api("GET", "directory?q=a", ANNA).status_code == 422
