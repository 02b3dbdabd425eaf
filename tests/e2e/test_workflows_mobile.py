"""The phone workflows (docs/workflows.md) and the agent's mobile endpoint, end to end: the ACS
emulator -> our app in the local host -> the Dataverse emulator's `incidents` and `phonecalls`.

The product here has its own Azurite and settings: the Sales pool's workflow is CaseDialog, Ben's
own is Contact&Account (the agent's wins), calls are recorded and enriched after 1 s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest

from emulators.common.tls import LocalTLS
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from scripts.dataverse_setup import ensure_columns
from shared.domain.enrichment import EnrichmentColumns
from tests.fixtures.entra_dataverse import app_dataverse_client
from tests.fixtures.product import (
    AGENTS,
    ANNA,
    ANNA_DIRECT,
    BEN,
    CALLER,
    POOL_NUMBER,
    POOLS,
    Product,
    connected,
    own_product,
    parties,
    seed_contact,
    wait_for,
)

if TYPE_CHECKING:
    from tests.fixtures.product import TestAgent

pytestmark = pytest.mark.e2e
MOBILE = "+358405550123"
UNKNOWN = "+358509876543"


@pytest.fixture(scope="module")
def product_with_workflows(
    tmp_path_factory: pytest.TempPathFactory,
    local_tls: LocalTLS,
    entra: EntraEmulator,
    dataverse: DataverseEmulator,
) -> Iterator[Product]:
    agents = [{**a, "workflow": "contactAccount"} if a["id"] == BEN.id else dict(a) for a in AGENTS]
    pools = [{**p, "workflow": "caseDialog"} for p in POOLS]
    with own_product(
        local_tls,
        entra,
        dataverse,
        tmp_path_factory.mktemp("workflows"),
        extra_env={
            "AGENTS": json.dumps(agents),
            "SERVICE_POOLS": json.dumps(pools),
            "RECORDING_ENABLED": "true",
            "ENRICH_DELAY_SECONDS": "1",
            "ENRICH_JITTER_SECONDS": "0",
            "ENRICH_MAX_WAIT_SECONDS": "60",
        },
    ) as product:
        yield product


@pytest.fixture
def world(
    product_with_workflows: Product,
    local_tls: LocalTLS,
    entra: EntraEmulator,
    dataverse: DataverseEmulator,
) -> Product:
    product = product_with_workflows
    product.reset()
    client = app_dataverse_client(local_tls, entra, dataverse)
    ensure_columns(client, EnrichmentColumns("new_"))
    return product


def away(world: Product, agent: TestAgent) -> None:
    reply = world.api("PUT", "me/availability", agent, json_body={"status": "Offwork"})
    assert reply.status_code == 200, reply.text


def seed_case(world: Product, contact_id: str, title: str, state: int = 0) -> str:
    [case_id] = world.dataverse.seed(
        {
            "incidents": [
                {
                    "title": title,
                    "customerid_contact@odata.bind": f"/contacts({contact_id})",
                    "statecode": state,
                    "statuscode": 1 if state == 0 else 5,
                }
            ]
        }
    )["incidents"]
    return str(case_id)


def hang_up_and_get_activity(world: Product, who: str = CALLER) -> dict[str, Any]:
    world.acs.hang_up(who)
    [activity] = wait_for(world.phonecalls, what="the Phone Call activity")
    return activity


# ---------------------------------------------------------------------- CaseDialog


def test_case_dialog_lists_open_cases_and_links_the_call_to_one(world: Product) -> None:
    contact_id = seed_contact(world)
    printer = seed_case(world, contact_id, "Printer jams")
    seed_case(world, contact_id, "Old invoice question", state=1)  # resolved: not listed
    away(world, BEN)
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)
    call = connected(world, ANNA)
    assert call["workflow"] == "caseDialog"

    dialog = world.api("GET", f"me/calls/{call['callId']}/cases", ANNA)
    assert dialog.status_code == 200, dialog.text
    body = dialog.json()
    assert body["customer"]["id"] == contact_id
    [case] = body["cases"]
    assert (case["caseId"], case["title"], case["state"], case["status"]) == (
        printer,
        "Printer jams",
        0,
        1,
    )
    assert case["ticketNumber"].startswith("CAS-") and case["createdOn"]

    linked = world.api(
        "PUT", f"me/calls/{call['callId']}/case", ANNA, json_body={"caseId": printer}
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["case"]["caseId"] == printer

    activity = hang_up_and_get_activity(world)
    assert activity["_regardingobjectid_value"] == printer
    assert activity["_regardingobjectid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == (
        "incident"
    )
    assert parties(world, activity["activityid"])[1] == contact_id  # the caller stays the party


def test_case_dialog_creates_a_new_case_in_one_step(world: Product) -> None:
    contact_id = seed_contact(world)
    away(world, BEN)
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)
    call = connected(world, ANNA)

    made = world.api(
        "POST", f"me/calls/{call['callId']}/cases", ANNA, json_body={"title": "Broken screen"}
    )
    assert made.status_code == 201, made.text
    again = world.api(  # a retried request makes no second case
        "POST", f"me/calls/{call['callId']}/cases", ANNA, json_body={"title": "Broken screen"}
    )
    assert again.status_code == 201, again.text
    [incident] = world.dataverse.records("incidents")
    assert incident["title"] == "Broken screen"
    assert incident["_customerid_value"] == contact_id
    assert incident["statecode"] == 0 and incident["ticketnumber"].startswith("CAS-")
    assert incident["caseorigincode"] == 1  # Phone
    assert incident["_ownerid_value"] == ANNA.user_id
    assert made.json()["case"]["ticketNumber"] == incident["ticketnumber"]

    activity = hang_up_and_get_activity(world)
    assert activity["_regardingobjectid_value"] == incident["incidentid"]


def test_case_dialog_without_a_customer_starts_from_a_search(world: Product) -> None:
    """An unknown number: no cases; the agent finds the customer and creates the case for them."""
    contact_id = seed_contact(world, phone="+358401112223", name="Kalle Kontakti")
    away(world, BEN)
    world.acs.place_call(UNKNOWN, POOL_NUMBER)
    world.answer(ANNA)
    call = connected(world, ANNA)

    empty = world.api("GET", f"me/calls/{call['callId']}/cases", ANNA).json()
    assert empty == {"customer": None, "cases": [], "candidates": []}
    refused = world.api(
        "POST", f"me/calls/{call['callId']}/cases", ANNA, json_body={"title": "Lost card"}
    )
    assert refused.status_code == 422, refused.text
    assert world.dataverse.records("incidents") == []

    found = world.api("GET", "directory?q=Kalle", ANNA).json()
    [entry] = [e for e in found["results"] if e["kind"] == "contact"]
    searched = world.api(
        "GET",
        f"me/calls/{call['callId']}/cases?customerEntity=contact&customerId={entry['id']}",
        ANNA,
    )
    assert searched.status_code == 200 and searched.json()["customer"]["id"] == contact_id
    made = world.api(
        "POST",
        f"me/calls/{call['callId']}/cases",
        ANNA,
        json_body={"title": "Lost card", "customerEntity": "contact", "customerId": contact_id},
    )
    assert made.status_code == 201, made.text
    [incident] = world.dataverse.records("incidents")
    assert incident["_customerid_value"] == contact_id

    activity = hang_up_and_get_activity(world, UNKNOWN)
    assert activity["_regardingobjectid_value"] == incident["incidentid"]


# ---------------------------------------------------------------------- Contact&Account


def test_contact_and_account_pops_the_record_and_makes_no_activity_until_asked(
    world: Product,
) -> None:
    contact_id = seed_contact(world)
    away(world, ANNA)  # Ben takes it: his own workflow (Contact&Account) wins over the pool's
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(BEN)
    call = connected(world, BEN)
    assert call["workflow"] == "contactAccount"
    assert call["screenPop"]["record"]["id"] == contact_id
    world.acs.hang_up(CALLER)
    ended = wait_for(
        lambda: (c := world.current(BEN)) and c["state"] == "ended" and c, what="the end"
    )
    world.settle()
    assert world.phonecalls() == []  # identification and screen pop only
    assert ended["activityId"] is None

    saved = world.api("POST", f"me/calls/{call['callId']}/activity", BEN)
    assert saved.status_code == 200, saved.text
    [activity] = world.phonecalls()
    assert activity["_regardingobjectid_value"] == contact_id
    assert saved.json()["activityId"] == activity["activityid"]
    assert world.api("POST", f"me/calls/{call['callId']}/activity", BEN).status_code == 200
    assert len(world.phonecalls()) == 1  # saved once


# ---------------------------------------------------------------------- the mobile endpoint


def test_a_pool_call_rings_the_agents_mobile_and_gives_one_activity_with_metrics(
    world: Product,
) -> None:
    seed_contact(world)
    away(world, BEN)
    assert world.api("GET", "me/endpoint", ANNA).json()["kind"] == "webPhone"
    bad = world.api("PUT", "me/endpoint", ANNA, json_body={"kind": "mobile", "mobileNumber": "1"})
    assert bad.status_code == 422, bad.text
    chosen = world.api(
        "PUT", "me/endpoint", ANNA, json_body={"kind": "mobile", "mobileNumber": MOBILE}
    )
    assert chosen.status_code == 200, chosen.text
    assert chosen.json() == {"kind": "mobile", "mobileNumber": MOBILE, "webPhone": True}

    world.acs.place_call(CALLER, POOL_NUMBER)
    ring = wait_for(lambda: world.ringing(MOBILE), what="Anna's mobile to ring")
    assert ring["device"] == f"4:{MOBILE}"
    assert ring["callerId"] == POOL_NUMBER  # the pool's number shows on the mobile
    assert ring["timeoutSeconds"] == POOLS[0]["ringTimeoutSeconds"]
    assert world.ringing(ANNA.acs_id) is None  # not the web phone
    world.answer_device(MOBILE, "Anna's mobile")
    call = connected(world, ANNA)
    wait_for(world.acs.recordings, what="the recording to start")
    world.acs.hang_up(CALLER)

    # Notes afterwards, in the panel, as after a web-phone call.
    wait_for(world.phonecalls, what="the Phone Call activity")
    noted = world.api(
        "PUT", f"me/calls/{call['callId']}/notes", ANNA, json_body={"notes": "Called from car"}
    )
    assert noted.status_code == 200, noted.text

    def enriched() -> dict[str, Any] | None:
        [row] = world.phonecalls()
        return row if row["statecode"] == 1 else None

    done = wait_for(enriched, timeout=30, what="the enrichment")
    assert len(world.phonecalls()) == 1
    assert done["_ownerid_value"] == ANNA.user_id
    assert done["description"] == "Called from car"
    assert done["new_recordingurl"].endswith(f"recording.html?callId={call['callId']}")
    arrived = datetime.fromisoformat(done["new_callarrivedat"].replace("Z", "+00:00"))
    answered = datetime.fromisoformat(done["new_firstansweredat"].replace("Z", "+00:00"))
    assert done["new_waittimeseconds"] == (answered - arrived).total_seconds()

    back = world.api("PUT", "me/endpoint", ANNA, json_body={"kind": "webPhone"})
    assert back.json()["kind"] == "webPhone"


def test_click_to_dial_rings_the_agents_mobile_then_the_customer(world: Product) -> None:
    """§6 with the mobile endpoint: the agent's mobile rings first, showing the chosen caller
    id, and the customer only once the agent answers; the activity is a click-to-dial's."""
    contact_id = seed_contact(world)
    world.api("PUT", "me/endpoint", ANNA, json_body={"kind": "mobile", "mobileNumber": MOBILE})

    reply = world.api(
        "POST", "me/calls", ANNA, json_body={"number": CALLER, "callerId": ANNA_DIRECT}
    )
    assert reply.status_code == 201, reply.text
    ring = wait_for(lambda: world.ringing(MOBILE), what="Anna's mobile to ring")
    assert ring["device"] == f"4:{MOBILE}" and ring["callerId"] == ANNA_DIRECT
    assert world.ringing(ANNA.acs_id) is None  # not the web phone
    assert world.ringing(CALLER) is None  # the customer waits for the agent
    world.answer_device(MOBILE, "Anna's mobile")
    customer = wait_for(lambda: world.ringing(CALLER), what="the customer's phone to ring")
    assert customer["callerId"] == ANNA_DIRECT
    world.answer_device(CALLER, "the customer's phone")
    call = connected(world, ANNA)
    assert call["direction"] == "outbound" and call["customerNumber"] == CALLER
    world.acs.hang_up(CALLER)

    [activity] = wait_for(world.phonecalls, what="the Phone Call activity")
    assert activity["directioncode"] is True
    assert activity["subject"] == f"Outgoing call to {CALLER}"
    assert activity["_regardingobjectid_value"] == contact_id
    assert parties(world, activity["activityid"]) == {1: ANNA.user_id, 2: contact_id}
    world.api("PUT", "me/endpoint", ANNA, json_body={"kind": "webPhone"})


def test_a_mobile_that_does_not_answer_is_declined_by_the_timeout(world: Product) -> None:
    away(world, BEN)
    world.api("PUT", "me/endpoint", ANNA, json_body={"kind": "mobile", "mobileNumber": MOBILE})
    world.acs.place_call(CALLER, POOL_NUMBER)
    wait_for(lambda: world.ringing(MOBILE), what="Anna's mobile to ring")
    world.acs.device_no_answer(f"4:{MOBILE}")
    # The offer failed like a web phone's: the caller waits for the next free agent.
    wait_for(lambda: world.ringing(MOBILE) is None, what="the ring to stop")
    away(world, ANNA)
    world.acs.hang_up(CALLER)
    world.settle()
    assert world.phonecalls() == []
