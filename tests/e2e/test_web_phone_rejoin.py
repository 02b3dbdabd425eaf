"""A refresh never drops the customer, end to end: the panel's device leaves the call (the
device API's /leave, as a closed or reloading tab), the customer hears hold music, the agent's
new session rings it back into the same call with its notes, and one activity results; after
REJOIN_SECONDS without the agent the caller is the next agent's, first in the queue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from emulators.common.tls import LocalTLS
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from tests.e2e.test_web_phone_device import DeviceSession, device
from tests.fixtures.product import (
    ANNA,
    BEN,
    CALLER,
    POOL_NUMBER,
    Product,
    own_product,
    wait_for,
)

pytestmark = pytest.mark.e2e
REJOIN_SECONDS = 5


def acs_customer(world: Product) -> dict[str, Any]:
    """The customer's participant in the (one) live ACS call."""
    [call] = [c for c in world.acs.state()["calls"] if c["state"] == "connected"]
    participant: dict[str, Any] = next(
        p for p in call["participants"] if p["rawId"] == f"4:{CALLER}"
    )
    return participant


def answered_call(world: Product, phone: DeviceSession) -> str:
    world.acs.place_call(CALLER, POOL_NUMBER)
    ring = phone.ring()
    assert phone.post("answer", {"ringId": ring["ringId"]}).status_code == 200
    call = wait_for(
        lambda: (c := world.current(ANNA)) and c["state"] == "connected" and c,
        what="anna connected",
    )
    return str(call["callId"])


def start_session(world: Product, agent: Any, takeover: bool = False) -> dict[str, Any]:
    reply = world.api("POST", "me/session", agent, json_body={"takeover": takeover})
    assert reply.status_code == 201, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_a_reload_mid_call_keeps_the_customer_and_rings_the_agent_back(world: Product) -> None:
    start_session(world, ANNA)
    phone = device(world, ANNA)
    call_id = answered_call(world, phone)
    notes = world.api(
        "PUT", f"me/calls/{call_id}/notes", ANNA, json_body={"notes": "Wants a quote"}
    )
    assert notes.status_code == 200, notes.text

    assert phone.post("leave").json()["connected"] is False  # the tab reloads
    wait_for(lambda: acs_customer(world)["isOnHold"], what="the customer on hold music")
    assert world.current(ANNA)["state"] == "connected"  # the call is kept for anna

    # The reloaded panel: a new session (taking over its own stale one), a new device token.
    start_session(world, ANNA, takeover=True)
    phone = device(world, ANNA)
    ring = phone.ring()
    assert ring["rejoin"] is True and ring["callId"] == call_id and ring["from"] == CALLER
    current = world.current(ANNA)
    assert current is not None
    assert (current["callId"], current["state"], current["rejoin"]) == (call_id, "ringing", True)
    assert current["notes"] == "Wants a quote"
    assert phone.post("answer", {"ringId": ring["ringId"]}).json()["connected"] is True
    wait_for(lambda: not acs_customer(world)["isOnHold"], what="the customer off hold")
    # ACS's events of the answer reach the app concurrently: the call shows it once handled.
    back = wait_for(
        lambda: (c := world.current(ANNA)) and c["state"] == "connected" and c,
        what="anna's call connected again",
    )
    assert back is not None and (back["state"], back["rejoin"]) == ("connected", False)

    world.acs.hang_up(CALLER)
    [activity] = wait_for(world.phonecalls, what="the Phone Call activity")
    assert activity["description"] == "Wants a quote"
    assert activity["_ownerid_value"] == ANNA.user_id
    world.settle()
    assert len(world.phonecalls()) == 1


def test_an_agent_who_hangs_up_through_the_api_is_not_waited_for(world: Product) -> None:
    phone = device(world, ANNA)
    call_id = answered_call(world, phone)
    assert world.api("POST", f"me/calls/{call_id}/hangup", ANNA).status_code in (200, 202, 204)
    wait_for(lambda: world.current(ANNA)["state"] == "ended", what="the call ended")
    assert not phone.me()["connected"]


@pytest.fixture(scope="module")
def quick_rejoin(
    local_tls: LocalTLS,
    entra: EntraEmulator,
    dataverse: DataverseEmulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Product]:
    """The product with REJOIN_SECONDS=5 and its own Azurite (its queues are its own)."""
    with own_product(
        local_tls,
        entra,
        dataverse,
        tmp_path_factory.mktemp("rejoin"),
        extra_env={"REJOIN_SECONDS": str(REJOIN_SECONDS)},
        fast_retry=True,
    ) as product:
        yield product


def test_after_rejoin_seconds_the_caller_goes_first_to_the_next_agent(
    quick_rejoin: Product,
) -> None:
    world = quick_rejoin
    world.reset()
    anna = device(world, ANNA)
    call_id = answered_call(world, anna)
    world.api("PUT", f"me/calls/{call_id}/notes", ANNA, json_body={"notes": "Started with Anna"})
    anna.post("leave")
    wait_for(lambda: acs_customer(world)["isOnHold"], what="the customer on hold music")
    ben = device(world, BEN)
    ring = wait_for(
        lambda: ben.me()["ringing"], timeout=REJOIN_SECONDS + 30, what="ben rung after the wait"
    )[0]
    assert ring["callId"] == call_id and "rejoin" not in ring
    assert ben.post("answer", {"ringId": ring["ringId"]}).json()["connected"] is True
    wait_for(lambda: not acs_customer(world)["isOnHold"], what="the customer off hold")
    current = world.current(BEN)
    assert current is not None and current["callId"] == call_id
    assert current["notes"] == "Started with Anna"
    world.acs.hang_up(CALLER)
    [activity] = wait_for(world.phonecalls, what="the Phone Call activity")
    assert activity["_ownerid_value"] == BEN.user_id
    world.settle()
    assert len(world.phonecalls()) == 1
