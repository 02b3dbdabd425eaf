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
    parties,
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


def notes(world: Product, agent: Any, call_id: str, text: str) -> Any:
    return world.api("PUT", f"me/calls/{call_id}/notes", agent, json_body={"notes": text})


def transferred_to_ben(world: Product, call_id: str) -> None:
    """The call is Ben's now; Anna's panel shows it handed over and her notes are closed."""
    wait_for(
        lambda: (c := world.current(ANNA)) and c["state"] == "transferred",
        what="anna's call to show transferred",
    )
    anna, ben = world.current(ANNA), world.current(BEN)
    assert anna is not None and ben is not None
    assert anna["callId"] == ben["callId"] == call_id
    assert anna["transferredTo"] == BEN.name and anna["notes"] == "Anna's part"
    assert ben["state"] == "connected" and ben["notes"] == ""
    assert ben["earlierNotes"].startswith(f"{ANNA.name} (until transfer at ")
    assert ben["earlierNotes"].endswith(" UTC):\nAnna's part")
    refused = notes(world, ANNA, call_id, "Anna's part, changed")
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert f"transferred to {BEN.name}" in refused.json()["detail"]
    assert world.api("POST", f"me/calls/{call_id}/hold", ANNA).status_code == 403
    assert notes(world, BEN, call_id, "Ben's part").status_code == 200


def ben_owns_the_activity(world: Product) -> None:
    [activity] = wait_for(world.phonecalls, what="the activity")
    assert activity["_ownerid_value"] == BEN.user_id
    assert parties(world, activity["activityid"])[2] == BEN.user_id  # To: the agent
    description = activity["description"]
    assert description.startswith(f"{ANNA.name} (until transfer at ")
    assert description.endswith(" UTC):\nAnna's part\n\nBen's part")


def test_a_direct_transfer_to_a_colleague_hands_the_customer_and_the_call_over(
    world: Product,
) -> None:
    seed_contact(world)
    call_id = answered_pool_call(world)
    assert notes(world, ANNA, call_id, "Anna's part").status_code == 200
    post(world, call_id, "transfer", {"agentId": BEN.id})
    world.answer(BEN)
    wait_for(
        lambda: participant(world, BEN.acs_id) and not participant(world, ANNA.acs_id),
        what="ben to replace anna",
    )
    world.settle()
    assert participant(world, f"4:{CALLER}") is not None  # the customer was never dropped
    transferred_to_ben(world, call_id)
    world.acs.hang_up(CALLER)
    ben_owns_the_activity(world)
    history = world.api("GET", "me/calls", ANNA).json()["calls"]
    assert history[0]["callId"] == call_id and history[0]["outcome"] == "transferred"


def test_a_direct_transfer_with_every_event_three_times_out_of_order(world: Product) -> None:
    seed_contact(world)
    world.acs.set_delivery(copies=3, reorder=True)
    call_id = answered_pool_call(world)
    assert notes(world, ANNA, call_id, "Anna's part").status_code == 200
    post(world, call_id, "transfer", {"agentId": BEN.id})
    world.answer(BEN)
    wait_for(lambda: not participant(world, ANNA.acs_id), what="ben to replace anna")
    world.settle()
    assert max(d["copy"] for d in world.acs.deliveries()) == 3
    transferred_to_ben(world, call_id)
    world.acs.hang_up(CALLER)
    world.settle()
    ben_owns_the_activity(world)
    assert len(world.phonecalls()) == 1


def test_a_consulted_transfer_completed_makes_the_call_bens(world: Product) -> None:
    seed_contact(world)
    call_id = answered_pool_call(world)
    assert notes(world, ANNA, call_id, "Anna's part").status_code == 200
    view = post(world, call_id, "consult", {"agentId": BEN.id})
    assert participant(world, f"4:{CALLER}")["isOnHold"] is True
    world.answer(BEN)
    wait_for(lambda: participant(world, BEN.acs_id), what="ben to join the consultation")
    wait_for(lambda: world.current(ANNA)["callId"] == call_id, what="the consult to settle")
    world.settle()
    assert world.current(ANNA)["state"] == "connected"  # still Anna's while she consults
    done = post(world, call_id, "consult/complete")
    assert done["state"] == "transferred" and done["transferredTo"] == BEN.name
    wait_for(lambda: participant(world, ANNA.acs_id) is None, what="anna to leave")
    assert participant(world, f"4:{CALLER}")["isOnHold"] is False
    assert participant(world, BEN.acs_id) is not None
    world.settle()
    assert acs_call(world)["state"] == "connected"  # nobody hung up on the customer
    assert view["callId"] == call_id
    transferred_to_ben(world, call_id)
    world.acs.hang_up(CALLER)
    ben_owns_the_activity(world)


def consulting_ben(world: Product, call_id: str) -> None:
    """Anna consults Ben, who answers: the customer on hold, the three of them settled."""
    post(world, call_id, "consult", {"agentId": BEN.id})
    world.answer(BEN)
    wait_for(lambda: participant(world, BEN.acs_id), what="ben to join the consultation")
    world.settle()


def test_a_transferred_calls_notes_past_2000_characters_are_attached_whole_and_attributed(
    world: Product,
) -> None:
    """Two parts of 1,500 characters, neither too long for the description alone: together
    (attributed) they are, so the description is their start, marked, and the one annotation
    holds both parts, Anna's under her name and the time of the transfer, then Ben's."""
    anna_part = "".join(f"A{n}: the customer asked about the invoice. " for n in range(60))[:1500]
    ben_part = "".join(f"B{n}: the refund is approved and on its way. " for n in range(60))[:1500]
    seed_contact(world)
    call_id = answered_pool_call(world)
    assert notes(world, ANNA, call_id, anna_part).status_code == 200
    consulting_ben(world, call_id)
    post(world, call_id, "consult/complete")
    wait_for(lambda: participant(world, ANNA.acs_id) is None, what="anna to leave")
    saved = notes(world, BEN, call_id, ben_part)
    assert saved.status_code == 200, saved.text
    earlier = saved.json()["earlierNotes"]
    assert earlier.startswith(f"{ANNA.name} (until transfer at ") and earlier.endswith(anna_part)
    world.acs.hang_up(CALLER)
    [activity] = wait_for(world.phonecalls, what="the activity")
    assert activity["_ownerid_value"] == BEN.user_id
    whole = f"{earlier}\n\n{ben_part}"
    description = activity["description"]
    assert len(description) <= 2000 and description.endswith("… (full notes attached)")
    assert whole.startswith(description.removesuffix("… (full notes attached)"))
    attached = wait_for(  # written just after the activity it is attached to
        lambda: [
            a
            for a in world.dataverse.records("annotations")
            if a["_objectid_value"] == activity["activityid"]
        ],
        what="the notes annotation",
    )
    assert [a["notetext"] for a in attached] == [whole]
    assert f" UTC):\n{anna_part}\n\n{ben_part}" in attached[0]["notetext"]


def test_a_consulted_transfer_cancelled_leaves_the_call_with_the_agent(
    world: Product,
) -> None:
    seed_contact(world)
    call_id = answered_pool_call(world)
    consulting_ben(world, call_id)
    post(world, call_id, "consult/cancel")
    wait_for(lambda: participant(world, BEN.acs_id) is None, what="ben to leave")
    assert participant(world, f"4:{CALLER}")["isOnHold"] is False
    assert participant(world, ANNA.acs_id) is not None
    world.settle()
    assert acs_call(world)["state"] == "connected"
    anna = world.current(ANNA)
    assert anna is not None and anna["state"] == "connected" and "transferredTo" not in anna
    assert world.current(BEN) is None  # out of it
    assert notes(world, ANNA, call_id, "Kept it").status_code == 200
    assert notes(world, BEN, call_id, "not mine").status_code == 403
    world.acs.hang_up(CALLER)
    [activity] = wait_for(world.phonecalls, what="the activity")
    assert activity["_ownerid_value"] == ANNA.user_id
    assert activity["description"] == "Kept it"


def test_a_consulted_transfer_to_a_number_cancelled_returns_the_customer_to_the_agent(
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
