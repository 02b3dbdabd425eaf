"""The agent's phone state end to end: availability (§1.2.1), pools, single session (§1.4)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from shared.domain.sessions import ALREADY_ACTIVE
from tests.fixtures.product import (
    ANNA,
    ANNA_DIRECT,
    BEN,
    CALLER,
    POOL_NUMBER,
    Product,
    connected,
    wait_for,
)

pytestmark = pytest.mark.e2e


def set_status(world: Product, agent: object, **body: object) -> dict:
    reply = world.api("PUT", "me/availability", agent, json_body=body)  # type: ignore[arg-type]
    assert reply.status_code == 200, reply.text
    return reply.json()


def first_ringing(world: Product, *devices: str) -> str:
    return wait_for(
        lambda: next((d for d in devices if world.ringing(d)), None),
        what=f"one of {devices} to ring",
    )


@pytest.mark.parametrize(
    ("status", "pool_rings_anna", "direct"),
    [
        ("Available", True, "ring"),
        ("Offwork", False, "ring"),
        ("DND", False, "busy"),
        ("Lunch", False, "ring"),
    ],
)
def test_each_availability_type_on_a_pool_call_and_a_direct_call(
    world: Product,
    status: str,
    pool_rings_anna: bool,
    direct: str,
) -> None:
    view = set_status(world, ANNA, status=status)
    assert view["status"] == status
    if status == "Lunch":
        assert view["type"] == "Offwork" and view["returnsTo"] == "Available" and view["until"]

    world.acs.place_call(CALLER, POOL_NUMBER)
    rung = first_ringing(world, ANNA.acs_id, BEN.acs_id)
    assert (rung == ANNA.acs_id) is pool_rings_anna
    world.acs.hang_up(CALLER)
    world.settle()

    world.acs.place_call(CALLER, ANNA_DIRECT)
    if direct == "ring":
        wait_for(lambda: world.ringing(ANNA.acs_id), what="the direct call to ring anna")
        world.acs.hang_up(CALLER)
    else:

        def refused() -> dict | None:
            return next(
                (
                    c
                    for c in world.acs.state()["incomingCalls"]
                    if c["to"].endswith(ANNA_DIRECT) and c.get("state") == "rejected"
                ),
                None,
            )

        wait_for(refused, what="the direct call to be refused as busy")
        assert world.ringing(ANNA.acs_id) is None
    world.settle()
    assert world.phonecalls() == []


def test_dnd_forwards_direct_calls_to_the_agents_target(world: Product) -> None:
    target = "+358405556666"
    view = set_status(world, ANNA, status="DND", forwardTo=target)
    assert view["forwardTo"] == target
    world.acs.place_call(CALLER, ANNA_DIRECT)
    wait_for(lambda: world.ringing(target), what="the forwarding target to ring")
    assert world.ringing(ANNA.acs_id) is None
    history = world.api("GET", "me/calls?limit=5", ANNA).json()["calls"]
    assert history[0]["outcome"] == "forwarded"


def test_an_unknown_status_or_forwarding_number_is_422_naming_the_field(world: Product) -> None:
    reply = world.api("PUT", "me/availability", ANNA, json_body={"status": "Holiday"})
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "status"
    reply = world.api("PUT", "me/availability", ANNA, json_body={"forwardTo": "0401"})
    assert reply.status_code == 422 and reply.json()["errors"][0]["field"] == "forwardTo"
    reply = world.api("PUT", "me/availability", ANNA, json_body={"status": 5})
    assert reply.status_code == 400


def test_an_agent_inactive_in_a_pool_gets_none_of_its_calls(world: Product) -> None:
    pools = world.api("GET", "me/pools", ANNA).json()["pools"]
    assert pools == [{"poolId": "sales", "name": "Sales", "active": True}]
    reply = world.api(
        "PUT", "me/pools", ANNA, json_body={"pools": [{"poolId": "sales", "active": False}]}
    )
    assert reply.json()["pools"][0]["active"] is False
    world.acs.place_call(CALLER, POOL_NUMBER)
    assert first_ringing(world, ANNA.acs_id, BEN.acs_id) == BEN.acs_id
    world.acs.hang_up(CALLER)
    bad = world.api(
        "PUT", "me/pools", ANNA, json_body={"pools": [{"poolId": "support", "active": True}]}
    )
    assert bad.status_code == 422


def test_a_waiting_caller_reaches_an_agent_the_moment_she_becomes_available(
    world: Product,
) -> None:
    set_status(world, ANNA, status="Offwork")
    set_status(world, BEN, status="Offwork")
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.settle()
    assert world.ringing(ANNA.acs_id) is None and world.ringing(BEN.acs_id) is None
    set_status(world, ANNA, status="Available")
    world.answer(ANNA)
    connected(world, ANNA)
    world.acs.hang_up(CALLER)


def test_a_second_tab_gets_the_documented_message_and_a_takeover_wins(world: Product) -> None:
    first = world.api("POST", "me/session", ANNA)
    assert first.status_code == 201, first.text
    second = world.api("POST", "me/session", ANNA)
    assert second.status_code == 409
    assert second.json()["detail"] == ALREADY_ACTIVE
    taken = world.api("POST", "me/session", ANNA, json_body={"takeover": True})
    assert taken.status_code == 201
    old_heartbeat = world.api("PUT", f"me/session/{first.json()['sessionId']}", ANNA)
    assert old_heartbeat.status_code == 409
    beat = world.api("PUT", f"me/session/{taken.json()['sessionId']}", ANNA)
    assert beat.status_code == 200 and beat.json()["expiresAt"] >= taken.json()["expiresAt"]
    assert world.api("DELETE", f"me/session/{taken.json()['sessionId']}", ANNA).status_code == 204
    assert world.api("POST", "me/session", ANNA).status_code == 201  # the slot is free again
    world.store.delete("agents", "session", ANNA.id)


def test_twenty_concurrent_session_starts_give_exactly_one_lease(world: Product) -> None:
    token = world.token(BEN)
    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(
            pool.map(lambda _: world.api("POST", "me/session", token=token).status_code, range(20))
        )
    assert sorted(codes) == [201] + [409] * 19
    world.store.delete("agents", "session", BEN.id)


def test_the_openapi_document_is_served(world: Product) -> None:
    reply = world.api("GET", "openapi.json")
    assert reply.status_code == 200
    doc = reply.json()
    assert doc["openapi"] == "3.1.0" and "/me/session" in doc["paths"]


def test_lunch_returns_to_the_status_before_it_when_its_time_is_up(world: Product) -> None:
    """The clock is moved by rewriting the stored end of Lunch (no sleep), then the
    housekeeping timer runs through the host's admin API."""
    from datetime import UTC, datetime, timedelta

    set_status(world, BEN, status="Offwork")
    lunch = set_status(world, ANNA, status="Lunch")
    assert lunch["returnsTo"] == "Available"
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.settle()
    assert world.ringing(ANNA.acs_id) is None  # at lunch: no pool calls

    past = datetime.now(UTC) - timedelta(seconds=1)
    row = world.store.get("agents", "agent", ANNA.id)
    world.store.upsert("agents", {**row, "status_until": past}, replace=True)
    world.store.upsert("agents", {"PartitionKey": "timed", "RowKey": ANNA.id, "until": past})
    assert world.host.invoke("housekeeping").status_code == 202

    wait_for(
        lambda: world.store.get("agents", "agent", ANNA.id)["status"] == "Available",
        what="housekeeping to write back Available",
    )
    assert world.api("GET", "me/availability", ANNA).json()["status"] == "Available"
    world.answer(ANNA)  # the waiting caller reaches her as soon as lunch is over
    connected(world, ANNA)
    world.acs.hang_up(CALLER)
