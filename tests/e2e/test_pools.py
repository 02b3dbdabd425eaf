"""Pools that supervisors run (§7 2.2-2.3, §9; docs/pools.md): stored settings edited through
the API and audited, routing by skill then longest idle, after-call work, opening hours,
exceptions, overflow, and the live figures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.fixtures.product import (
    ANNA,
    BEN,
    CALLBACK_LIST,
    CALLER,
    CAT,
    OVERFLOW_NUMBER,
    POOL_NUMBER,
    SUPPORT_NUMBER,
    Product,
    connected,
    wait_for,
)
from tests.fixtures.product import (
    TestAgent as PhoneAgent,
)

pytestmark = pytest.mark.e2e
ZONE = "Europe/Helsinki"


def supervisor(world: Product) -> str:
    return world.token(BEN, roles=["Phone.Supervisor"])


def put_pool(world: Product, pool_id: str, **settings: Any) -> dict[str, Any]:
    reply = world.api(
        "PUT", f"supervisor/pools/{pool_id}/settings", token=supervisor(world), json_body=settings
    )
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def support(world: Product, members: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return put_pool(
        world,
        "support",
        name="Support",
        numbers=[SUPPORT_NUMBER],
        members=members,
        ringTimeoutSeconds=5,
        **more,
    )


def rings(world: Product, agent: PhoneAgent) -> dict[str, Any]:
    return wait_for(lambda: world.ringing(agent.acs_id), what=f"{agent.id} to ring")


def available_again(world: Product, agent: PhoneAgent) -> None:
    """Offwork, then Available: the agent's idle time starts now."""
    for status in ("Offwork", "Available"):
        reply = world.api("PUT", "me/availability", agent, json_body={"status": status})
        assert reply.status_code == 200, reply.text


def figures(world: Product, pool_id: str) -> dict[str, Any]:
    reply = world.api("GET", "supervisor/pools", token=supervisor(world))
    assert reply.status_code == 200, reply.text
    return next(p for p in reply.json()["pools"] if p["poolId"] == pool_id)


def detail(world: Product, pool_id: str) -> dict[str, Any]:
    reply = world.api("GET", f"supervisor/pools/{pool_id}", token=supervisor(world))
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def test_calls_go_to_the_best_skill_then_the_longest_idle_and_move_on_after_a_decline(
    world: Product,
) -> None:
    support(
        world,
        [
            {"agentId": ANNA.id, "skill": 3},
            {"agentId": BEN.id, "skill": 8},
            {"agentId": CAT.id, "skill": 8},
        ],
    )
    available_again(world, BEN)  # ben has been idle for a moment, cat since long before
    world.acs.place_call(CALLER, SUPPORT_NUMBER)

    rings(world, CAT)  # skill 8, idle longest
    assert world.ringing(BEN.acs_id) is None and world.ringing(ANNA.acs_id) is None
    world.acs.device_decline(CAT.acs_id)
    rings(world, BEN)  # skill 8
    world.acs.device_decline(BEN.acs_id)
    rings(world, ANNA)  # skill 3: last
    world.answer(ANNA)
    connected(world, ANNA)
    world.acs.hang_up(CALLER)
    world.settle()


def test_every_change_is_audited_with_who_when_and_what(world: Product) -> None:
    support(world, [{"agentId": ANNA.id, "skill": 4}])
    reply = world.api(
        "PUT",
        f"supervisor/pools/support/members/{CAT.id}",
        token=supervisor(world),
        json_body={"skill": 9},
    )
    assert reply.status_code == 200, reply.text
    cat = next(a for a in reply.json()["agents"] if a["agentId"] == CAT.id)
    assert cat["skill"] == 9
    audit = world.api("GET", "supervisor/pools/support/audit", token=supervisor(world))
    assert audit.status_code == 200, audit.text
    changes = audit.json()["changes"]
    assert [c["action"] for c in changes] == ["add member cat", "create"]
    assert {c["by"] for c in changes} == {"ben@contoso.example"}
    assert changes[0]["byObjectId"] == BEN.oid
    assert changes[1]["before"] is None
    assert {m["agentId"] for m in changes[0]["after"]["members"]} == {ANNA.id, CAT.id}
    assert changes[0]["at"] >= changes[1]["at"]

    seeded = world.api("GET", "supervisor/pools/sales/audit", token=supervisor(world)).json()
    assert [c["action"] for c in seeded["changes"]] == ["seed"]


def test_membership_edits_take_effect_on_the_next_offer(world: Product) -> None:
    su = supervisor(world)
    gone = world.api("DELETE", f"supervisor/pools/sales/members/{ANNA.id}", token=su)
    assert gone.status_code == 200, gone.text
    assert [a["agentId"] for a in gone.json()["agents"]] == [BEN.id]
    assert world.api("GET", "me/pools", ANNA).json()["pools"] == []
    world.acs.place_call(CALLER, POOL_NUMBER)
    rings(world, BEN)
    assert world.ringing(ANNA.acs_id) is None
    world.acs.hang_up(CALLER)
    world.settle()

    # Back, with the better skill: the next call rings her first.
    back = world.api(
        "PUT", f"supervisor/pools/sales/members/{ANNA.id}", token=su, json_body={"skill": 9}
    )
    assert back.status_code == 200, back.text
    world.acs.place_call(CALLER, POOL_NUMBER)
    rings(world, ANNA)
    assert world.ringing(BEN.acs_id) is None
    world.acs.hang_up(CALLER)
    world.settle()


def test_a_settings_edit_takes_effect_on_the_next_offer(world: Product) -> None:
    support(world, [{"agentId": ANNA.id, "skill": 5}, {"agentId": BEN.id, "skill": 5}])
    available_again(world, ANNA)  # ben idle longest: he would be first
    settings = world.api("GET", "supervisor/pools/support/settings", token=supervisor(world))
    assert settings.status_code == 200, settings.text
    edited = settings.json()
    edited["members"] = [{"agentId": ANNA.id, "skill": 7}, {"agentId": BEN.id, "skill": 5}]
    put_pool(world, "support", **edited)
    world.acs.place_call(CALLER, SUPPORT_NUMBER)
    rings(world, ANNA)
    world.acs.hang_up(CALLER)
    world.settle()


def test_after_call_work_keeps_pool_calls_away_until_it_ends(world: Product) -> None:
    support(
        world, [{"agentId": ANNA.id, "skill": 8}, {"agentId": BEN.id, "skill": 5}], wrapUpSeconds=4
    )
    world.acs.place_call(CALLER, SUPPORT_NUMBER)
    world.answer(ANNA)
    connected(world, ANNA)
    world.acs.hang_up(CALLER)
    wait_for(
        lambda: world.current(ANNA) is None or world.current(ANNA)["state"] == "ended",
        what="anna's call to end",
    )

    # Anna is wrapping up: the next caller rings ben although anna's skill is better.
    world.acs.place_call("+358501112233", SUPPORT_NUMBER)
    rings(world, BEN)
    assert world.ringing(ANNA.acs_id) is None
    anna = next(a for a in detail(world, "support")["agents"] if a["agentId"] == ANNA.id)
    assert anna["takesCalls"] is False and "wrapUpUntil" in anna
    world.acs.hang_up("+358501112233")
    world.settle()

    # A caller waiting while the only free member wraps up reaches her when it ends.
    world.api("PUT", "me/availability", BEN, json_body={"status": "Offwork"})
    world.acs.place_call("+358501112244", SUPPORT_NUMBER)
    world.answer(ANNA)
    connected(world, ANNA)
    world.acs.hang_up("+358501112244")
    wait_for(lambda: figures(world, "support")["activeCalls"] == 0, what="anna to be free")
    world.acs.place_call("+358501112255", SUPPORT_NUMBER)
    wait_for(lambda: figures(world, "support")["queueLength"] == 1, what="the caller to wait")
    assert world.ringing(ANNA.acs_id) is None  # still wrapping up
    rings(world, ANNA)  # the wrap-up's end offers her the waiting call
    world.acs.hang_up("+358501112255")
    world.settle()


def _today() -> str:
    return datetime.now(UTC).astimezone(ZoneInfo(ZONE)).date().isoformat()


def _closed_all_week() -> dict[str, list[list[str]]]:
    return {d: [] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def test_outside_opening_hours_callers_go_to_the_closed_action_pool(world: Product) -> None:
    support(
        world,
        [{"agentId": BEN.id, "skill": 5}],
        timeZone=ZONE,
        hours=_closed_all_week(),
        closed={"then": "pool", "target": "sales"},
    )
    world.api("PUT", "me/availability", BEN, json_body={"status": "Offwork"})
    world.acs.place_call(CALLER, SUPPORT_NUMBER)
    rings(world, ANNA)  # a member of sales, not of support
    world.acs.hang_up(CALLER)
    world.settle()


def test_an_exception_day_plays_its_announcement_then_hangs_up(world: Product) -> None:
    support(
        world,
        [{"agentId": ANNA.id, "skill": 5}],
        timeZone=ZONE,
        hours={d: [["00:00", "24:00"]] for d in _closed_all_week()},  # open all week ...
        exceptions=[  # ... but not today
            {
                "date": _today(),
                "name": "Staff day",
                "announcement": "We are closed today for our staff day.",
                "then": "hangup",
            }
        ],
    )
    placed = world.acs.place_call(CALLER, SUPPORT_NUMBER)

    def heard() -> list[dict[str, Any]] | None:
        calls = [
            c for c in world.acs.state()["calls"] if c.get("serverCallId") == placed["serverCallId"]
        ]
        plays = [p for c in calls for p in c.get("plays", [])]
        ended = any(c.get("state") == "disconnected" or c.get("endedAt") for c in calls)
        return plays if plays and ended else None

    plays = wait_for(heard, what="the announcement, then the hang-up")
    assert "staff day" in str(plays)
    assert world.ringing(ANNA.acs_id) is None


def test_a_closed_pool_forwards_to_a_number(world: Product) -> None:
    support(
        world,
        [{"agentId": ANNA.id, "skill": 5}],
        timeZone=ZONE,
        hours=_closed_all_week(),
        closed={"then": "number", "target": "+358409998877"},
    )
    world.acs.place_call(CALLER, SUPPORT_NUMBER)

    def forwarded() -> dict[str, Any] | None:
        return next(
            (
                c
                for c in world.acs.state()["incomingCalls"]
                if c["to"].endswith(SUPPORT_NUMBER) and c.get("state") == "redirected"
            ),
            None,
        )

    wait_for(forwarded, what="the call to be forwarded")


def test_a_full_queue_overflows_to_another_pool(world: Product) -> None:
    support(
        world,
        [{"agentId": BEN.id, "skill": 5}],
        overflow={"maxQueueLength": 1, "then": "pool", "target": "sales"},
    )
    put_pool(
        world,
        "overflow",
        name="Overflow",
        numbers=[OVERFLOW_NUMBER],
        members=[{"agentId": CAT.id, "skill": 5}],
    )
    world.api("PUT", "me/availability", BEN, json_body={"status": "Offwork"})
    world.api("PUT", "me/availability", ANNA, json_body={"status": "Offwork"})
    world.acs.place_call(CALLER, SUPPORT_NUMBER)
    wait_for(lambda: figures(world, "support")["queueLength"] == 1, what="the first to wait")
    world.acs.place_call("+358501112233", SUPPORT_NUMBER)
    wait_for(lambda: figures(world, "sales")["queueLength"] == 1, what="the second in sales")
    assert figures(world, "support")["queueLength"] == 1
    world.api("PUT", "me/availability", ANNA, json_body={"status": "Available"})
    rings(world, ANNA)
    world.acs.hang_up("+358501112233")
    world.acs.hang_up(CALLER)
    world.settle()


def test_the_pool_table_while_ten_calls_wait_and_three_are_connected(world: Product) -> None:
    support(
        world,
        [{"agentId": a.id, "skill": 5} for a in (ANNA, BEN, CAT)],
    )
    talking = [f"+35850100000{i}" for i in range(3)]
    devices = {a.acs_id for a in (ANNA, BEN, CAT)}
    for n, number in enumerate(talking, start=1):
        world.acs.place_call(number, SUPPORT_NUMBER)
        ring = wait_for(
            lambda: next((r for r in world.acs.ringing() if r["device"] in devices), None),
            what="a member to ring",
        )
        world.acs.device_answer(ring["device"])
        wait_for(
            lambda n=n: figures(world, "support")["activeCalls"] == n,  # type: ignore[misc]
            what=f"call {n} to connect",
            timeout=60,
        )
    waiting = [f"+3585020000{i:02d}" for i in range(10)]
    for number in waiting:
        world.acs.place_call(number, SUPPORT_NUMBER)
    table = wait_for(
        lambda: (f := figures(world, "support"))["queueLength"] == 10 and f,
        what="ten callers to wait",
        timeout=60,
    )
    assert {k: table[k] for k in ("serving", "free", "active", "activeCalls", "queueLength")} == {
        "serving": 3,
        "free": 0,
        "active": 3,
        "activeCalls": 3,
        "queueLength": 10,
    }
    assert table["maxWaitSeconds"] >= 0
    pool = detail(world, "support")
    assert pool["queueLength"] == 10
    assert {a["agentId"]: (a["onCall"], a["takesCalls"]) for a in pool["agents"]} == {
        ANNA.id: (True, False),
        BEN.id: (True, False),
        CAT.id: (True, False),
    }
    for number in waiting + talking:
        world.acs.hang_up(number)
    world.settle()


def test_only_supervisors_edit_pools(world: Product) -> None:
    body = {"name": "Mine", "numbers": [], "members": []}
    assert (
        world.api("PUT", "supervisor/pools/mine/settings", ANNA, json_body=body).status_code == 403
    )
    assert world.api("PUT", "supervisor/pools/mine/settings", json_body=body).status_code == 401
    assert world.api("GET", "supervisor/pools/sales/settings", ANNA).status_code == 403
    assert world.api("GET", "supervisor/pools/sales/audit", ANNA).status_code == 403
    assert world.api("DELETE", f"supervisor/pools/sales/members/{BEN.id}", ANNA).status_code == 403
    assert (
        world.api("GET", "supervisor/pools/mine/settings", token=supervisor(world)).status_code
        == 404
    )


def test_a_bad_pool_is_refused_naming_each_problem(world: Product) -> None:
    reply = world.api(
        "PUT",
        "supervisor/pools/bad/settings",
        token=supervisor(world),
        json_body={
            "numbers": ["0401234567"],
            "members": [{"agentId": "ghost"}],
            "timeZone": "Mars/Olympus",
            "hours": {"mon": [["17:00", "08:00"]]},
            "wrapUpSeconds": -1,
        },
    )
    assert reply.status_code == 422, reply.text
    detail_text = reply.json()["detail"]
    for problem in ("E.164", "timeZone", "end after it starts", "wrapUpSeconds"):
        assert problem in detail_text
    taken = world.api(
        "PUT",
        "supervisor/pools/bad/settings",
        token=supervisor(world),
        json_body={"numbers": [POOL_NUMBER], "members": []},
    )
    assert taken.status_code == 409, taken.text
    unknown = world.api(
        "PUT",
        "supervisor/pools/bad/settings",
        token=supervisor(world),
        json_body={"numbers": [], "members": [{"agentId": "ghost"}]},
    )
    assert unknown.status_code == 422 and "ghost" in unknown.text


def test_a_closed_pool_can_offer_a_callback_instead(world: Product) -> None:
    support(
        world,
        [{"agentId": ANNA.id, "skill": 5}],
        timeZone=ZONE,
        hours=_closed_all_week(),
        closed={"then": "callback"},
        callback={"list": CALLBACK_LIST, "whenClosed": True},
    )
    world.acs.place_call(CALLER, SUPPORT_NUMBER)
    wait_for(
        lambda: next((c for c in world.acs.state()["calls"] if c.get("recognizing")), None),
        what="the callback offer",
    )
    world.acs.press(CALLER, "1")
    su = supervisor(world)

    def stored() -> list[dict[str, Any]] | None:
        reply = world.api("GET", f"callbacks?list={CALLBACK_LIST}", token=su)
        assert reply.status_code == 200, reply.text
        return [r for r in reply.json()["value"] if r["poolId"] == "support"] or None

    [request] = wait_for(stored, what="the callback request")
    assert request["number"] == CALLER
    assert world.ringing(ANNA.acs_id) is None  # closed: nobody was offered the call
    world.settle()
