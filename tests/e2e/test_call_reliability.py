"""Delivery rules end to end: repeats, reordering, throttling, authentication, bad input."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.product import (
    ANNA,
    BEN,
    CALLER,
    POOL_NUMBER,
    STRANGER,
    Product,
    connected,
    parties,
    seed_contact,
    wait_for,
)

pytestmark = pytest.mark.e2e


def test_every_event_three_times_and_out_of_order_makes_exactly_one_activity(
    world: Product,
) -> None:
    contact_id = seed_contact(world)
    world.acs.set_delivery(copies=3, reorder=True)
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)
    call = connected(world, ANNA)
    world.api("PUT", f"me/calls/{call['callId']}/notes", ANNA, json_body={"notes": "3x"})
    world.acs.hang_up(CALLER)
    world.settle()

    deliveries = world.acs.deliveries()
    assert max(d["copy"] for d in deliveries) == 3, "the emulator must really repeat events"
    assert all(d["delivered"] for d in deliveries)
    [activity] = wait_for(world.phonecalls, what="the activity")
    assert activity["description"] == "3x"
    assert activity["_regardingobjectid_value"] == contact_id
    assert parties(world, activity["activityid"]) == {1: contact_id, 2: ANNA.user_id}
    adds = [r for r in world.acs.requests_log() if r["operation"] == "add"]
    answers = [r for r in world.acs.requests_log() if r["operation"] == "answer"]
    assert len(adds) == 1 and len(answers) == 1  # one offer, one answer: nothing done twice
    creates = [
        r
        for r in world.dataverse.requests_seen()
        if r["method"] == "POST" and "phonecalls" in r["path"]
    ]
    assert len(creates) == 1


def test_dataverse_throttling_on_the_create_still_creates_the_activity_once(
    world: Product,
) -> None:
    seed_contact(world)
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)
    connected(world, ANNA)
    world.dataverse.throttle(count=2, retry_after=1)
    world.acs.hang_up(CALLER)

    [activity] = wait_for(world.phonecalls, what="the activity", timeout=30)
    statuses = [
        r["status"]
        for r in world.dataverse.requests_seen()
        if r["method"] == "POST" and "phonecalls" in r["path"]
    ]
    assert 429 in statuses and statuses[-1] in (201, 204)
    assert activity["_ownerid_value"] == ANNA.user_id


def test_the_agent_api_refuses_no_token_a_wrong_role_and_someone_elses_call(
    world: Product,
) -> None:
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)
    call_id = connected(world, ANNA)["callId"]

    no_token = world.api("GET", "me/calls/current")
    assert no_token.status_code == 401
    assert no_token.headers["Content-Type"].startswith("application/problem+json")
    forged = world.api("GET", "me/calls/current", token="eyJhbGciOiJSUzI1NiJ9.e30.c2ln")
    assert forged.status_code == 401
    wrong_role = world.api(
        "GET", "me/calls/current", token=world.token(ANNA, roles=["Something.Else"])
    )
    assert wrong_role.status_code == 403
    not_an_agent = world.api("GET", "me/calls/current", STRANGER)
    assert not_an_agent.status_code == 403
    for method, path, body in [
        ("PUT", f"me/calls/{call_id}/notes", {"notes": "x"}),
        ("POST", f"me/calls/{call_id}/hangup", None),
        ("POST", f"me/calls/{call_id}/customer", {"entity": "contact", "id": "x"}),
    ]:
        reply = world.api(method, path, BEN, json_body=body)
        assert reply.status_code == 403, (path, reply.text)
    assert world.current(ANNA)["notes"] == ""
    world.acs.hang_up(CALLER)


def test_notes_over_the_description_are_kept_and_over_the_maximum_refused_with_it(
    world: Product,
) -> None:
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)
    call_id = connected(world, ANNA)["callId"]
    path = f"me/calls/{call_id}/notes"
    kept = world.api("PUT", path, ANNA, json_body={"notes": "x" * 2001})
    assert kept.status_code == 200 and kept.json()["notes"] == "x" * 2001
    reply = world.api("PUT", path, ANNA, json_body={"notes": "x" * 100_001})
    assert reply.status_code == 422
    assert "100000" in reply.json()["detail"]
    assert reply.json()["errors"][0]["field"] == "notes"
    assert world.current(ANNA)["notes"] == "x" * 2001
    world.acs.hang_up(CALLER)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b"[]",
        json.dumps(
            [
                {
                    "id": "e",
                    "eventType": "Microsoft.Communication.IncomingCall",
                    "eventTime": "2026-11-25T09:00:00Z",
                    "data": {"to": {"rawId": "4:" + POOL_NUMBER}},
                }
            ]
        ).encode(),
    ],
)
def test_malformed_webhook_bodies_get_400_problem_json_and_change_nothing(
    world: Product,
    body: bytes,
) -> None:
    key = {"x-functions-key": world.host.function_key}
    reply = world.api("POST", "acs/incoming", raw=body, headers=key)
    assert reply.status_code == 400, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert "Traceback" not in reply.text
    assert world.acs.requests_log() == []  # nothing answered or rejected


def test_callbacks_need_the_call_token_and_the_acs_signature(world: Product) -> None:
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)
    call_id = connected(world, ANNA)["callId"]
    event = json.dumps(
        [
            {
                "id": "forged",
                "type": "Microsoft.Communication.CallDisconnected",
                "time": "2026-11-25T09:00:00Z",
                "data": {},
            }
        ]
    ).encode()
    no_token = world.api("POST", f"acs/callbacks/{call_id}", raw=event)
    assert no_token.status_code == 401
    token = world.acs.state()["calls"][0]["callbackUri"].split("token=")[1]
    unsigned = world.api("POST", f"acs/callbacks/{call_id}?token={token}", raw=event)
    assert unsigned.status_code == 401
    assert connected(world, ANNA)["state"] == "connected"  # the forged hang-up did nothing
    world.acs.hang_up(CALLER)


def test_the_event_grid_validation_handshake_is_answered(world: Product) -> None:
    result = world.acs.validate_subscription("incomingCall")
    assert result["status"] == 200, result


def test_health_reports_every_dependency_and_503_when_one_is_down(world: Product) -> None:
    reply = world.api("GET", "health")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert set(body["dependencies"]) == {"tableStorage", "queueStorage", "dataverse", "acs"}
    assert all(d["status"] == "up" for d in body["dependencies"].values())
    world.dataverse.inject_faults(status=503, count=1)
    down = world.api("GET", "health")
    assert down.status_code == 503
    dataverse = down.json()["dependencies"]["dataverse"]
    assert (dataverse["status"], dataverse["error"]) == ("down", "DependencyUnavailable")
