"""§5 in the call: a waiting caller is offered a callback, presses 1, and it lands in D365."""

from __future__ import annotations

import pytest

from tests.fixtures.product import (
    ANNA,
    BEN,
    CALLBACK_LIST,
    CALLBACK_QUEUE_ID,
    CALLER,
    POOL_NUMBER,
    Product,
    parties,
    seed_contact,
    wait_for,
)

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
    assert parties(world, activity["activityid"]) == {2: contact_id}  # To: the one to call
    assert activity["directioncode"] is True  # a call to make
    queued = [
        i["_queueid_value"]
        for i in world.dataverse.records("queueitems")
        if i["_objectid_value"] == activity["activityid"]
    ]
    assert queued == [CALLBACK_QUEUE_ID]
    supervisor = world.token(ANNA, roles=["Phone.Supervisor"])

    def handled() -> list | None:
        reply = world.api("GET", f"callbacks?list={CALLBACK_LIST}&state=handled", token=supervisor)
        assert reply.status_code == 200, reply.text
        return reply.json()["value"] or None

    [request] = wait_for(handled, what="the request to be closed")
    assert (request["handledNote"], request["activityId"], request["source"]) == (
        "Handled by D365",
        activity["activityid"],
        "call",
    )
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
