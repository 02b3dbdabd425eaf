"""The call flows of §2.1.1-§2.1.4 and §6 end to end: ACS emulator -> our app -> Dataverse."""

from __future__ import annotations

import pytest

from tests.fixtures.product import (
    ANNA,
    ANNA_DIRECT,
    BEN,
    CALLER,
    POOL_NUMBER,
    Product,
    connected,
    parties,
    seed_contact,
    wait_for,
)

pytestmark = pytest.mark.e2e
UNKNOWN = "+358509876543"


def test_inbound_call_single_identified_customer(world: Product) -> None:
    """§2.1.1: the record pops, notes become the description, a complete activity exists."""
    contact_id = seed_contact(world)
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)

    call = connected(world, ANNA)
    assert call["screenPop"] == {
        "action": "openRecord",
        "record": {"entity": "contact", "id": contact_id, "name": "Maija Meikäläinen"},
    }
    assert (call["poolName"], call["customerNumber"], call["direction"]) == (
        "Sales",
        CALLER,
        "inbound",
    )
    reply = world.api(
        "PUT",
        f"me/calls/{call['callId']}/notes",
        ANNA,
        json_body={"notes": "Wants a quote for 20 seats"},
    )
    assert reply.status_code == 200, reply.text
    assert world.current(ANNA)["notes"] == "Wants a quote for 20 seats"  # survives a refresh
    world.acs.hang_up(CALLER)

    [activity] = wait_for(world.phonecalls, what="the Phone Call activity")
    assert activity["subject"] == f"Incoming call from {CALLER}"
    assert activity["description"] == "Wants a quote for 20 seats"
    assert activity["phonenumber"] == CALLER
    assert activity["directioncode"] is False
    assert activity["_regardingobjectid_value"] == contact_id
    assert activity["_ownerid_value"] == ANNA.user_id
    assert activity["actualdurationminutes"] == 1
    assert 0 <= activity["new_durationseconds"] <= 60  # the exact length, in seconds
    assert activity["actualstart"] <= activity["actualend"]
    assert activity["statecode"] == 0  # completed later, by the enrichment
    assert parties(world, activity["activityid"]) == {1: contact_id, 2: ANNA.user_id}
    ended = world.current(ANNA)
    assert ended["state"] == "ended" and ended["outcome"] == "answered"
    assert ended["activity"] is None  # nothing for the agent to complete


def test_inbound_call_with_several_matches_where_the_agent_picks_one(world: Product) -> None:
    """§2.1.2 a/b: candidates are shown; the picked one becomes Regarding and From."""
    first = seed_contact(world, name="Maija Meikäläinen")
    [account] = world.dataverse.seed(
        {"accounts": [{"name": "Meikäläinen Oy", "telephone1": CALLER}]}
    )["accounts"]
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)
    call = connected(world, ANNA)
    assert call["identification"] == "several"
    assert call["screenPop"]["action"] == "showCandidates"
    assert {c["id"] for c in call["candidates"]} == {first, account}

    bad = world.api(
        "POST",
        f"me/calls/{call['callId']}/customer",
        ANNA,
        json_body={"entity": "contact", "id": account},
    )
    assert bad.status_code == 422
    assert bad.headers["Content-Type"].startswith("application/problem+json")
    picked = world.api(
        "POST",
        f"me/calls/{call['callId']}/customer",
        ANNA,
        json_body={"entity": "account", "id": account},
    )
    assert picked.status_code == 200, picked.text
    assert picked.json()["screenPop"]["action"] == "openRecord"
    world.acs.hang_up(CALLER)

    [activity] = wait_for(world.phonecalls, what="the activity")
    assert activity["_regardingobjectid_value"] == account
    assert parties(world, activity["activityid"]) == {1: account, 2: ANNA.user_id}


def test_inbound_call_from_an_unknown_number_leaves_the_activity_for_the_agent(
    world: Product,
) -> None:
    """§2.1.2 and §3: no customer party or regarding; the panel gets pre-filled values."""
    world.acs.place_call(UNKNOWN, POOL_NUMBER)
    world.answer(ANNA)
    call = connected(world, ANNA)
    assert call["identification"] == "none" and call["screenPop"] == {"action": "nothing"}
    world.acs.hang_up(UNKNOWN)

    [activity] = wait_for(world.phonecalls, what="the activity")
    assert activity["_regardingobjectid_value"] is None
    assert parties(world, activity["activityid"]) == {2: ANNA.user_id}
    ended = wait_for(
        lambda: (c := world.current(ANNA)) and c["state"] == "ended" and c, what="the call to end"
    )
    prefill = ended["activity"]
    assert prefill["activityId"] == activity["activityid"]
    assert prefill["needsCompletion"] is True and prefill["phoneNumber"] == UNKNOWN


def test_outbound_call_to_an_identified_customer(world: Product) -> None:
    """§2.1.3 and §6: click-to-dial rings the agent, then the customer with the caller id."""
    contact_id = seed_contact(world)
    reply = world.api(
        "POST", "me/calls", ANNA, json_body={"number": "040 123 4567", "callerId": ANNA_DIRECT}
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["customerNumber"] == CALLER
    world.answer(ANNA)  # the agent's own leg
    world.answer_device(CALLER, "the customer's phone")
    call = connected(world, ANNA)
    assert call["direction"] == "outbound" and call["screenPop"]["action"] == "openRecord"
    world.api("PUT", f"me/calls/{call['callId']}/notes", ANNA, json_body={"notes": "Booked"})
    assert world.api("POST", f"me/calls/{call['callId']}/hangup", ANNA).status_code == 200

    [activity] = wait_for(world.phonecalls, what="the activity")
    assert activity["directioncode"] is True
    assert activity["subject"] == f"Outgoing call to {CALLER}"
    assert activity["description"] == "Booked"
    assert activity["_regardingobjectid_value"] == contact_id
    assert parties(world, activity["activityid"]) == {1: ANNA.user_id, 2: contact_id}


def test_outbound_call_to_an_unknown_number_leaves_to_and_regarding_empty(
    world: Product,
) -> None:
    """§2.1.4."""
    reply = world.api("POST", "me/calls", ANNA, json_body={"number": UNKNOWN})
    assert reply.status_code == 201, reply.text
    world.answer(ANNA)
    world.answer_device(UNKNOWN, "the customer's phone")
    connected(world, ANNA)
    world.acs.hang_up(UNKNOWN)

    [activity] = wait_for(world.phonecalls, what="the activity")
    assert activity["_regardingobjectid_value"] is None
    assert parties(world, activity["activityid"]) == {1: ANNA.user_id}


def test_click_to_dial_refuses_a_bad_number_and_a_caller_id_not_the_agents(
    world: Product,
) -> None:
    bad_number = world.api("POST", "me/calls", ANNA, json_body={"number": "12"})
    assert bad_number.status_code == 422
    assert bad_number.json()["errors"][0]["field"] == "number"
    bad_id = world.api(
        "POST", "me/calls", BEN, json_body={"number": CALLER, "callerId": ANNA_DIRECT}
    )
    assert bad_id.status_code == 422
    assert [e["field"] for e in bad_id.json()["errors"]] == ["callerId"]
    assert world.acs.state()["calls"] == [] or all(
        c.get("state") != "connected" for c in world.acs.state()["calls"]
    )


def test_a_declined_direct_call_and_an_unanswered_pool_call_make_no_activity(
    world: Product,
) -> None:
    """§2.1.1 3: a decline takes no action in D365; nor does a call nobody answers."""
    world.acs.place_call(CALLER, ANNA_DIRECT)
    wait_for(lambda: world.ringing(ANNA.acs_id), what="anna's device to ring")
    world.acs.device_decline(ANNA.acs_id)
    wait_for(
        lambda: all(
            c.get("state") in ("disconnected", "ended") for c in world.acs.state()["calls"]
        ),
        what="the direct call to end",
    )

    world.acs.place_call(CALLER, POOL_NUMBER)
    wait_for(lambda: world.ringing(ANNA.acs_id), what="anna's device to ring")
    world.acs.device_no_answer(ANNA.acs_id)
    wait_for(lambda: world.ringing(BEN.acs_id), what="the call to move on to ben")
    world.acs.device_decline(BEN.acs_id)
    wait_for(lambda: world.ringing(ANNA.acs_id), what="a second round to anna")
    world.acs.hang_up(CALLER)
    world.settle()
    assert world.phonecalls() == []


def test_an_agent_declines_through_the_api_and_the_call_goes_to_the_next_member(
    world: Product,
) -> None:
    world.acs.place_call(CALLER, POOL_NUMBER)
    wait_for(lambda: world.ringing(ANNA.acs_id), what="anna's device to ring")
    offered = wait_for(
        lambda: (c := world.current(ANNA)) and c["state"] == "ringing" and c,
        what="anna's panel to show the offer",
    )
    # Until ACS has confirmed the invitation the API answers 409 "decline again in a moment".
    declined = wait_for(
        lambda: (
            (r := world.api("POST", f"me/calls/{offered['callId']}/decline", ANNA)).status_code
            == 200
            and r
        ),
        what="the decline to be taken",
    )
    assert declined.json()["callId"] == offered["callId"]
    world.answer(BEN)
    connected(world, BEN)
    world.acs.hang_up(CALLER)
    [activity] = wait_for(world.phonecalls, what="the activity")
    assert activity["_ownerid_value"] == BEN.user_id
