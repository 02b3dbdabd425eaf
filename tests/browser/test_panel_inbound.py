"""§2.1.1 in a real browser: the agent signs in inside D365 (CIF 1.0), a known customer calls the
pool, the record pops, the agent answers, types notes and the caller hangs up."""

from __future__ import annotations

import json

import pytest

from tests.browser.conftest import PanelPage
from tests.fixtures.product import ANNA, CALLER, POOL_NUMBER, Product, seed_contact, wait_for

pytestmark = pytest.mark.browser


def test_inbound_identified_call_pops_the_record_and_logs_the_notes(
    world: Product, agent_browser
) -> None:
    contact_id = seed_contact(world)
    anna: PanelPage = agent_browser().open(cif=1)
    anna.set_records({contact_id: {"name": "Maija Meikäläinen", "phone": CALLER}})
    anna.screenshot("01-startup")
    anna.sign_in(ANNA).wait_ready()
    frame = anna.frame
    assert anna.stub_calls("setClickToAct")[-1]["args"] == [True]
    frame.get_by_label("Availability").select_option("Available")
    wait_for(
        lambda: world.api("GET", "me/availability", ANNA).json()["type"] == "Available",
        what="Anna to be Available",
    )
    anna.screenshot("02-idle-keypad")
    anna.axe("idle")

    world.acs.place_call(CALLER, POOL_NUMBER)
    answer = frame.get_by_role("button", name="Answer call from Maija Meikäläinen")
    answer.wait_for(timeout=20_000)
    assert "Service pool: Sales" in anna.text("#ringing")
    assert CALLER in anna.text("#ringing")
    anna.wait_stub_call("setMode", lambda args: args == [1])
    opened = anna.wait_stub_call("openForm")
    assert json.loads(opened["args"][0]) == {"entityName": "contact", "entityId": contact_id}
    anna.screenshot("03-ringing")
    anna.axe("ringing")

    answer.click()
    frame.locator("#incall").wait_for(timeout=20_000)
    wait_for(
        lambda: (c := world.current(ANNA)) and c["state"] == "connected",
        what="the call to be connected",
    )
    notes = frame.get_by_label("Call notes")
    notes.click()
    notes.type("Wants a quote for 20 seats")
    frame.get_by_text("Saved").wait_for(timeout=10_000)
    assert world.current(ANNA)["notes"] == "Wants a quote for 20 seats"
    anna.screenshot("04-in-call")
    anna.axe("in call")

    world.acs.hang_up(CALLER)
    frame.locator("#wrapup").wait_for(timeout=20_000)
    [activity] = wait_for(world.phonecalls, what="the Phone Call activity")
    assert activity["description"] == "Wants a quote for 20 seats"
    assert activity["_regardingobjectid_value"] == contact_id
    frame.get_by_text("Phone Call saved in D365 for Maija Meikäläinen").wait_for(timeout=20_000)
    anna.screenshot("05-wrap-up")
    anna.axe("wrap-up")
    frame.get_by_role("button", name="Close and get ready").click()
    anna.wait_stub_call("setMode", lambda args: args == [0])
    frame.locator("#idle").wait_for()
    assert len(anna.stub_calls("openForm")) == 1  # popped once, not again on answer
