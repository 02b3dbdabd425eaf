"""§5 in the call: a waiting caller is offered a callback, presses 1, and it lands in D365."""

from __future__ import annotations

import pytest

from tests.fixtures.product import ANNA, BEN, CALLER, POOL_NUMBER, Product, seed_contact, wait_for

pytestmark = pytest.mark.e2e


def close_the_pool(world: Product) -> None:
    for agent in (ANNA, BEN):
        reply = world.api("PUT", "me/availability", agent, json_body={"status": "Offwork"})
        assert reply.status_code == 200, reply.text


def recognizing(world: Product) -> dict | None:
    return next((c for c in world.acs.state()["calls"] if c.get("recognizing")), None)


def test_a_caller_who_presses_1_leaves_a_request_that_is_in_d365_within_seconds(
    world: Product,
) -> None:
    contact_id = seed_contact(world)
    close_the_pool(world)
    world.acs.place_call(CALLER, POOL_NUMBER)
    wait_for(lambda: recognizing(world), what="the callback offer to play")
    world.acs.press(CALLER, "1")
    wait_for(
        lambda: all(c["state"] == "disconnected" for c in world.acs.state()["calls"]),
        what="the call to end after the confirmation",
    )

    def callback_activity() -> dict | None:
        return next((a for a in world.phonecalls() if a["subject"] == "Callback Request"), None)

    activity = wait_for(callback_activity, what="the callback in D365", timeout=60)
    assert activity["phonenumber"] == CALLER
    assert activity["_regardingobjectid_value"] == contact_id
    plays = [p for c in world.acs.state()["calls"] for p in c.get("plays", [])]
    assert plays, "the caller heard the confirmation"
    assert not [a for a in world.phonecalls() if a["subject"].startswith("Incoming call")]


def test_another_key_keeps_the_caller_waiting_for_an_agent(world: Product) -> None:
    close_the_pool(world)
    world.acs.place_call(CALLER, POOL_NUMBER)
    wait_for(lambda: recognizing(world), what="the callback offer to play")
    world.acs.press(CALLER, "2")
    wait_for(lambda: recognizing(world) is None, what="the offer to finish")
    assert [c["state"] for c in world.acs.state()["calls"]] == ["connected"]
    reply = world.api("PUT", "me/availability", ANNA, json_body={"status": "Available"})
    assert reply.status_code == 200
    world.answer(ANNA)  # still in the queue: the first free agent gets the call
    world.acs.hang_up(CALLER)
    world.settle()
    assert not [a for a in world.phonecalls() if a["subject"] == "Callback Request"]
