"""Pool alarms (§8), the wallboard's figures and the service calls tab (§9 2.4), end to end:
a caller raises the queue alarm once to Teams and by e-mail, answering clears it once, and
checks in between repeat nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.product import (
    ALARM_SENDER,
    ALARM_TO,
    ANNA,
    BEN,
    CALLER,
    POOL_NUMBER,
    Product,
    connected,
    wait_for,
)

pytestmark = pytest.mark.e2e


def supervisor(world: Product) -> str:
    return world.token(BEN, roles=["Phone.Supervisor"])


def card_title(post: dict[str, Any]) -> str:
    [attachment] = post["payload"]["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"]
    return str(card["body"][0]["text"])


def test_an_alarm_is_raised_once_and_cleared_once_to_teams_and_by_email(world: Product) -> None:
    token = supervisor(world)
    reply = world.api(
        "PUT", "supervisor/pools/sales/alarms", token=token, json_body={"queueLength": 1}
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["queueLength"] == 1 and reply.json()["active"] == []
    assert reply.json()["updatedBy"] == BEN.oid

    world.acs.place_call(CALLER, POOL_NUMBER)  # rings anna: one caller waits for an agent
    wait_for(lambda: len(world.teams.posts()) >= 1, what="the raised alarm in Teams")
    wait_for(lambda: len(world.acs.emails()) >= 1, what="the raised alarm's e-mail")
    # The condition holds while the timer checks again and again: nothing is repeated.
    for _ in range(3):
        world.run_function("alarm_check")
    alarms = world.api("GET", "supervisor/pools/sales/alarms", token=token).json()
    assert [a["kind"] for a in alarms["active"]] == ["queueLength"]
    board = world.api("GET", "supervisor/wallboard", token=token).json()
    [sales] = [p for p in board["pools"] if p["poolId"] == "sales"]
    assert sales["waiting"] == 1 and [a["kind"] for a in sales["alarms"]] == ["queueLength"]

    world.answer(ANNA)
    connected(world, ANNA)
    wait_for(lambda: len(world.teams.posts()) >= 2, what="the cleared alarm in Teams")
    wait_for(lambda: len(world.acs.emails()) >= 2, what="the cleared alarm's e-mail")
    for _ in range(3):
        world.run_function("alarm_check")
    world.acs.hang_up(CALLER)
    world.settle()
    world.run_function("alarm_check")

    # Let any stray check land before counting: the pool-check queue drains within seconds.
    wait_for(
        lambda: (
            world.api("GET", "supervisor/pools/sales/alarms", token=token).json()["active"] == []
        ),
        what="no alarm raised",
    )
    posts, mails = world.teams.posts(), world.acs.emails()
    assert [card_title(p) for p in posts] == [
        "Sales: Queue length alarm raised",
        "Sales: Queue length alarm cleared",
    ]
    assert [m["subject"] for m in mails] == [
        "Sales: Queue length alarm raised",
        "Sales: Queue length alarm cleared",
    ]
    assert all(m["senderAddress"] == ALARM_SENDER for m in mails)
    assert all(m["to"] == list(ALARM_TO) for m in mails)
    assert "1 callers waiting (threshold 1)" in mails[0]["plainText"]


def test_the_service_calls_tab_lists_ongoing_and_recent_calls(world: Product) -> None:
    token = supervisor(world)
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)
    connected(world, ANNA)

    def ongoing() -> dict[str, Any] | None:
        tab = world.api("GET", "supervisor/pools/sales/calls", token=token).json()
        calls = tab["ongoing"]
        return tab if calls and calls[0]["state"] == "connected" else None

    tab = wait_for(ongoing, what="the connected call on the tab")
    [call] = tab["ongoing"]
    assert (call["customerNumber"], call["agentId"], call["agentName"]) == (
        CALLER,
        ANNA.id,
        ANNA.name,
    )
    assert call["outcome"] is None and call["waitSeconds"] >= 0

    world.acs.hang_up(CALLER)

    def ended() -> dict[str, Any] | None:
        tab = world.api("GET", "supervisor/pools/sales/calls", token=token).json()
        return tab if not tab["ongoing"] and tab["recent"] else None

    tab = wait_for(ended, what="the call among the recent ones")
    [done] = tab["recent"]
    assert (done["callId"], done["outcome"], done["agentId"]) == (
        call["callId"],
        "answered",
        "anna",
    )
    assert done["endedAt"] is not None

    board = world.api("GET", "supervisor/wallboard", token=token).json()
    [sales] = [p for p in board["pools"] if p["poolId"] == "sales"]
    assert (sales["answeredToday"], sales["abandonedToday"], sales["waiting"]) == (1, 0, 0)
    assert board["refreshSeconds"] >= 2


def test_only_supervisors_read_the_wallboard_and_set_alarms(world: Product) -> None:
    for method, path, body in (
        ("GET", "supervisor/wallboard", None),
        ("GET", "supervisor/pools/sales/calls", None),
        ("GET", "supervisor/pools/sales/alarms", None),
        ("PUT", "supervisor/pools/sales/alarms", {"queueLength": 3}),
    ):
        assert world.api(method, path, json_body=body).status_code == 401, path
        assert world.api(method, path, ANNA, json_body=body).status_code == 403, path
    token = supervisor(world)
    assert world.api("GET", "supervisor/pools/nope/calls", token=token).status_code == 404
    bad = world.api(
        "PUT", "supervisor/pools/sales/alarms", token=token, json_body={"queueLength": 0}
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "queueLength"
    wrong_type = world.api(
        "PUT", "supervisor/pools/sales/alarms", token=token, json_body={"nobodyServing": "yes"}
    )
    assert wrong_type.status_code == 400
    # Nothing was stored by the refused requests.
    alarms = world.api("GET", "supervisor/pools/sales/alarms", token=token).json()
    assert alarms["queueLength"] is None and alarms["nobodyServing"] is False
