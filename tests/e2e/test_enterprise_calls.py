"""§4 end to end: Teams calls read from the Graph emulator by the timer, and records pushed over
HTTP, become Phone Call activities in the Dataverse emulator through the local host."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from emulators.graph import GraphEmulator
from shared.adapters.enterprise_state import MARKERS, SYNC
from tests.fixtures.product import (
    ANNA,
    CALLER,
    POOL_NUMBER,
    STRANGER,
    Product,
    connected,
    seed_contact,
    wait_for,
)

pytestmark = pytest.mark.e2e
SYNC_FUNCTION = "enterprise_calls_sync"


@pytest.fixture
def teams(world: Product, graph_reset: GraphEmulator) -> GraphEmulator:
    """Graph with no call records, and no sync state left by an earlier test."""
    for table in (MARKERS, SYNC):
        for row in list(world.store.query(table, "PartitionKey ge @any", {"any": ""})):
            world.store.delete(table, row["PartitionKey"], row["RowKey"])
    return graph_reset


def last_run(world: Product) -> dict[str, Any] | None:
    row = world.store.get(SYNC, "teams", "lastrun")
    return None if row is None else {**json.loads(row["summary"]), "at": row["finished_at"]}


def run_sync(world: Product) -> dict[str, Any]:
    """Run the timer now (as the admin API does) and wait for the run it records."""
    before = last_run(world)
    reply = world.host.invoke(SYNC_FUNCTION)
    assert reply.status_code == 202, reply.text
    try:
        return wait_for(
            lambda: (run := last_run(world)) and run != before and run,
            what="the enterprise sync run",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- host log ---\n{world.host.log_tail(30)}") from None


def teams_call(user_oid: str, start: dt.datetime, **fields: Any) -> dict[str, Any]:
    return {
        "startDateTime": start,
        "duration": 200,
        "callType": "user_in",
        "userId": user_oid,
        "userPrincipalName": "someone@contoso.example",
        "callerNumber": CALLER,
        **fields,
    }


def test_a_teams_call_with_a_known_contact_becomes_one_activity_and_a_reread_adds_none(
    world: Product, teams: GraphEmulator
) -> None:
    contact_id = seed_contact(world)
    started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    teams.seed_pstn_calls(
        [teams_call(ANNA.oid, started), teams_call(STRANGER.oid, started)]  # STRANGER: unmapped
    )

    first = run_sync(world)

    assert first["counts"]["imported"] == 1 and first["counts"]["unmappedUser"] == 1
    assert first["unmappedUsers"] == [STRANGER.oid]
    [activity] = world.phonecalls()
    assert activity["subject"] == f"Teams call from {CALLER}"
    assert activity["category"] == "Teams"
    assert activity["_ownerid_value"] == ANNA.user_id
    assert activity["_regardingobjectid_value"] == contact_id
    assert (activity["directioncode"], activity["statecode"]) == (False, 1)

    second = run_sync(world)  # the overlap re-reads the same window

    assert second["counts"]["duplicate"] == 2 and second["counts"]["imported"] == 0
    assert len(world.phonecalls()) == 1


def test_a_call_the_web_phone_logged_is_not_imported_again(
    world: Product, teams: GraphEmulator
) -> None:
    seed_contact(world)
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)
    connected(world, ANNA)
    world.acs.hang_up(CALLER)
    [logged] = wait_for(world.phonecalls, what="the web phone's activity")
    answered = dt.datetime.fromisoformat(logged["actualstart"].replace("Z", "+00:00"))
    # The same call as Teams would report it: it started ringing a little earlier.
    teams.seed_pstn_calls([teams_call(ANNA.oid, answered - dt.timedelta(seconds=15))])

    run = run_sync(world)

    assert run["counts"]["alreadyLogged"] == 1 and run["counts"]["imported"] == 0
    assert [a["activityid"] for a in world.phonecalls()] == [logged["activityid"]]


def test_graph_429_is_waited_out_and_nothing_is_lost(world: Product, teams: GraphEmulator) -> None:
    seed_contact(world)
    teams.seed_pstn_calls([teams_call(ANNA.oid, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3))])
    teams.throttle(count=1, retry_after=1)

    run = run_sync(world)

    assert run["counts"]["imported"] == 1
    assert len(world.phonecalls()) == 1
    assert [r["status"] for r in teams.requests_seen()] == [429, 200]


def test_pushed_records_follow_the_same_rules_and_a_malformed_one_is_named(
    world: Product, teams: GraphEmulator
) -> None:
    seed_contact(world)
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    valid = {
        "id": "mob-1",
        "userId": ANNA.oid,
        "direction": "outbound",
        "customerNumber": CALLER,
        "startDateTime": start,
        "durationSeconds": 95,
    }
    body = {
        "source": "Mobile",
        "calls": [
            valid,
            {**valid, "id": "mob-2", "userId": STRANGER.oid},
            {**valid, "id": "mob-3", "startDateTime": None},
        ],
    }
    url = "enterprise-calls?code=e2e-function-key"

    reply = world.api("POST", url, json_body=body)

    assert reply.status_code == 422, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    problem = reply.json()
    assert problem["errors"] == [{"field": "calls[2].startDateTime", "message": "required"}]
    assert [(r["index"], r["id"], r["outcome"]) for r in problem["results"]] == [
        (0, "mob-1", "imported"),
        (1, "mob-2", "unmappedUser"),
    ]
    assert (problem["received"], problem["malformed"]) == (3, 1)
    [activity] = world.phonecalls()
    assert activity["activityid"] == problem["results"][0]["activityId"]
    assert (activity["subject"], activity["category"]) == (f"Mobile call to {CALLER}", "Mobile")
    assert activity["_ownerid_value"] == ANNA.user_id

    again = world.api("POST", url, json_body={"source": "Mobile", "calls": [valid]})
    assert again.status_code == 200, again.text
    assert again.json()["results"][0]["outcome"] == "duplicate"
    assert len(world.phonecalls()) == 1

    assert world.api("POST", "enterprise-calls", json_body=body).status_code == 401
    not_json = world.api("POST", url, raw=b"{", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400
