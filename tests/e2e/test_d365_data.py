"""Phone Call data as a D365 admin configures it, end to end through the local host:
DATAVERSE_UNRESOLVED_PARTIES on, a callback list owned by a team with its own due window."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from emulators.common.tls import LocalTLS
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from tests.fixtures.product import (
    ANNA,
    CALLBACK_LIST,
    CALLBACK_QUEUE_ID,
    PAUSED_CALLBACK_LIST,
    PAUSED_CALLBACK_QUEUE_ID,
    POOL_NUMBER,
    Product,
    connected,
    own_product,
    wait_for,
)

pytestmark = pytest.mark.e2e
UNKNOWN = "+358509876543"
TEAM = "7ea30000-0000-4000-8000-000000000001"
DUE_MINUTES = 90


@pytest.fixture(scope="module")
def configured(
    local_tls: LocalTLS,
    entra: EntraEmulator,
    dataverse: DataverseEmulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Product]:
    lists = {
        CALLBACK_LIST: {
            "queueId": CALLBACK_QUEUE_ID,
            "dueMinutes": DUE_MINUTES,
            "ownerTeamId": TEAM,
        },
        PAUSED_CALLBACK_LIST: {"queueId": PAUSED_CALLBACK_QUEUE_ID, "enabled": False},
    }
    with own_product(
        local_tls,
        entra,
        dataverse,
        tmp_path_factory.mktemp("d365data"),
        extra_env={
            "DATAVERSE_UNRESOLVED_PARTIES": "true",
            "CALLBACK_LISTS": json.dumps(lists),
        },
    ) as product:
        yield product


@pytest.fixture
def world(configured: Product) -> Product:
    configured.reset()
    configured.dataverse.seed({"teams": [{"teamid": TEAM, "name": "Sales callbacks team"}]})
    return configured


def parties(world: Product, activity_id: str) -> dict[int, tuple[str | None, str | None]]:
    """participationtypemask -> (party id, addressused) of an activity."""
    return {
        p["participationtypemask"]: (p["_partyid_value"], p["addressused"])
        for p in world.dataverse.records("activityparties")
        if p.get("_activityid_value") == activity_id
    }


def test_an_unknown_callers_number_is_the_unresolved_from_party(world: Product) -> None:
    world.acs.place_call(UNKNOWN, POOL_NUMBER)
    world.answer(ANNA)
    connected(world, ANNA)
    world.acs.hang_up(UNKNOWN)

    [activity] = wait_for(world.phonecalls, what="the activity")
    assert parties(world, activity["activityid"]) == {
        1: (None, UNKNOWN),
        2: (ANNA.user_id, None),
    }
    assert activity["_regardingobjectid_value"] is None
    assert activity["actualdurationminutes"] >= 1
    assert isinstance(activity["new_durationseconds"], int)


def test_a_callback_is_due_within_the_lists_window_and_owned_by_its_team(
    world: Product,
) -> None:
    reply = world.api(
        "POST",
        "callbacks",
        json_body={"number": UNKNOWN, "list": CALLBACK_LIST},
        headers={"x-functions-key": world.host.function_key},
    )
    assert reply.status_code == 201, reply.text
    requested_at = reply.json()["requestedAt"]

    [call] = wait_for(world.phonecalls, timeout=60, what="the callback Phone Call")
    assert (call["subject"], call["directioncode"]) == ("Callback Request", True)
    assert call["_ownerid_value"] == TEAM
    start, end = (_moment(call["scheduledstart"]), _moment(call["scheduledend"]))
    assert abs(start - _moment(requested_at)) < timedelta(seconds=1)
    assert end - start == timedelta(minutes=DUE_MINUTES)
    assert parties(world, call["activityid"]) == {2: (None, UNKNOWN)}
    queued = [
        i["_queueid_value"]
        for i in world.dataverse.records("queueitems")
        if i["_objectid_value"] == call["activityid"]
    ]
    assert queued == [CALLBACK_QUEUE_ID]

    def handled() -> Any:
        reply = world.api(
            "GET",
            f"callbacks?list={CALLBACK_LIST}&state=handled",
            token=world.token(ANNA, roles=["Phone.Supervisor"]),
        )
        return reply.status_code == 200 and reply.json()["value"]

    [request] = wait_for(handled, what="the request to be closed")
    assert request["handledNote"] == "Handled by D365"


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
