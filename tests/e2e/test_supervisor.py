"""Supervisors (§7, §9): the live pool table and switching members on and off."""

from __future__ import annotations

import pytest

from tests.fixtures.product import ANNA, BEN, CALLER, POOL_NUMBER, Product, connected, wait_for

pytestmark = pytest.mark.e2e


def sales(world: Product, token: str) -> dict:
    reply = world.api("GET", "supervisor/pools", token=token)
    assert reply.status_code == 200, reply.text
    [pool] = [p for p in reply.json()["pools"] if p["poolId"] == "sales"]
    return pool


def test_the_dashboard_shows_serving_free_active_calls_and_the_queue(world: Product) -> None:
    supervisor = world.token(BEN, roles=["Phone.Supervisor"])
    idle = sales(world, supervisor)
    assert {k: idle[k] for k in ("serving", "free", "active", "activeCalls", "queueLength")} == {
        "serving": 2,
        "free": 2,
        "active": 2,
        "activeCalls": 0,
        "queueLength": 0,
    }

    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)
    connected(world, ANNA)
    busy = sales(world, supervisor)
    assert (busy["free"], busy["activeCalls"]) == (1, 1)

    world.api("PUT", "me/availability", BEN, json_body={"status": "Offwork"})
    world.acs.place_call("+358501112233", POOL_NUMBER)
    queued = wait_for(
        lambda: (p := sales(world, supervisor))["queueLength"] == 1 and p,
        what="the second caller to wait",
    )
    assert queued["serving"] == 1 and queued["free"] == 0
    assert queued["maxWaitSeconds"] >= 0
    world.acs.hang_up("+358501112233")
    world.acs.hang_up(CALLER)


def test_a_supervisor_switches_an_agent_off_in_a_pool(world: Product) -> None:
    supervisor = world.token(BEN, roles=["Phone.Supervisor"])
    reply = world.api(
        "PUT",
        f"supervisor/pools/sales/members/{ANNA.id}",
        token=supervisor,
        json_body={"active": False},
    )
    assert reply.status_code == 200, reply.text
    anna = next(a for a in reply.json()["agents"] if a["agentId"] == ANNA.id)
    assert anna["activeInPool"] is False
    assert world.api("GET", "me/pools", ANNA).json()["pools"][0]["active"] is False
    world.acs.place_call(CALLER, POOL_NUMBER)
    wait_for(lambda: world.ringing(BEN.acs_id), what="the call to go to ben only")
    assert world.ringing(ANNA.acs_id) is None
    world.acs.hang_up(CALLER)

    not_member = world.api(
        "PUT", "supervisor/pools/sales/members/ghost", token=supervisor, json_body={"active": True}
    )
    assert not_member.status_code == 422
    assert world.api("GET", "supervisor/pools/nope", token=supervisor).status_code == 404


def test_agents_cannot_use_the_supervisor_api(world: Product) -> None:
    assert world.api("GET", "supervisor/pools").status_code == 401
    assert world.api("GET", "supervisor/pools", ANNA).status_code == 403
    reply = world.api(
        "PUT", f"supervisor/pools/sales/members/{ANNA.id}", ANNA, json_body={"active": False}
    )
    assert reply.status_code == 403
