"""The phone workflows and the phone-sized page in a real browser: Ben's calls use the
CaseDialog (his own workflow setting); the panel at 390x844 as an agent's mobile browser shows
it, signed in stand-alone, setting availability, a pool and the endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import PanelPage
from tests.fixtures.product import (
    ANNA,
    BEN,
    CALLER,
    POOL_NUMBER,
    Product,
    seed_contact,
    wait_for,
)
from tests.fixtures.product import (
    TestAgent as Agent,
)

pytestmark = pytest.mark.browser
UNKNOWN = "+358509876543"
MOBILE = "+358405550123"


def status(world: Product, agent: Agent, name: str) -> None:
    reply = world.api("PUT", "me/availability", agent, json_body={"status": name})
    assert reply.status_code == 200, reply.text


def ben_answers_a_pool_call(world: Product, agent_browser: Any, caller: str) -> PanelPage:
    status(world, ANNA, "Offwork")  # the pool call goes to Ben
    ben = agent_browser().open(cif=2).sign_in(BEN).wait_ready()
    world.acs.place_call(caller, POOL_NUMBER)
    frame = ben.frame
    frame.get_by_role("button", name="Answer", exact=False).first.click(timeout=30_000)
    frame.locator("#call-badge", has_text="Connected").wait_for(timeout=20_000)
    frame.locator("#case-dialog").wait_for(state="visible", timeout=20_000)
    return ben


def test_the_case_dialog_lists_the_customers_cases_and_links_the_call(
    world: Product, agent_browser: Any
) -> None:
    contact_id = seed_contact(world)
    ids = world.dataverse.seed(
        {
            "incidents": [
                {
                    "title": "Invoice 4411 disputed",
                    "customerid_contact@odata.bind": f"/contacts({contact_id})",
                },
                {
                    "title": "Delivery late",
                    "customerid_contact@odata.bind": f"/contacts({contact_id})",
                    "statuscode": 2,
                },
            ]
        }
    )["incidents"]
    ben = ben_answers_a_pool_call(world, agent_browser, CALLER)
    frame = ben.frame
    frame.get_by_text("Open cases of Maija Meikäläinen").wait_for(timeout=20_000)
    frame.get_by_text("Invoice 4411 disputed").wait_for()
    assert "On hold" in ben.text("#case-list")  # the second case's status
    ben.screenshot("20-case-dialog-open-cases")
    ben.axe("case dialog")

    frame.get_by_role("button", name="Link the call to Invoice 4411 disputed").click()
    frame.locator("#case-linked").wait_for(state="visible", timeout=10_000)
    assert "Invoice 4411 disputed" in ben.text("#case-linked")
    ben.screenshot("21-case-dialog-linked")
    frame.get_by_role("button", name="End call").click()
    frame.locator("#wrapup").wait_for(timeout=20_000)

    [activity] = wait_for(world.phonecalls, what="the Phone Call activity")
    assert activity["_regardingobjectid_value"] == ids[0]
    status(world, ANNA, "Available")


def test_the_case_dialog_without_a_customer_searches_and_creates_a_case(
    world: Product, agent_browser: Any
) -> None:
    contact_id = seed_contact(world, phone="+358401112223", name="Kalle Kontakti")
    ben = ben_answers_a_pool_call(world, agent_browser, UNKNOWN)
    frame = ben.frame
    frame.get_by_text("No customer identified").wait_for(timeout=20_000)
    assert frame.get_by_role("button", name="Create").is_disabled()
    frame.get_by_label("Find the customer").fill("Kalle")
    frame.get_by_role("button", name="Choose Kalle Kontakti").click(timeout=10_000)
    frame.get_by_text("Open cases of Kalle Kontakti").wait_for(timeout=10_000)
    frame.get_by_text("No open cases.").wait_for()
    frame.get_by_placeholder("Title of the new case").fill("Card lost abroad")
    ben.screenshot("22-case-dialog-new-case")
    frame.get_by_role("button", name="Create").click()
    frame.locator("#case-linked").wait_for(state="visible", timeout=10_000)
    ben.screenshot("23-case-dialog-created")

    [incident] = world.dataverse.records("incidents")
    assert incident["title"] == "Card lost abroad"
    assert incident["_customerid_value"] == contact_id
    assert incident["ticketnumber"] in ben.text("#case-linked")
    frame.get_by_role("button", name="End call").click()
    [activity] = wait_for(world.phonecalls, what="the Phone Call activity")
    assert activity["_regardingobjectid_value"] == incident["incidentid"]
    status(world, ANNA, "Available")


def test_the_phone_sized_page_signs_in_sets_status_pool_and_mobile(
    world: Product, agent_browser: Any
) -> None:
    anna = agent_browser()
    anna.page.set_viewport_size({"width": 390, "height": 844})
    anna.page.goto(anna.panel_url)
    anna.sign_in_here(ANNA)
    page = anna.page
    page.locator("#idle").wait_for(state="visible", timeout=30_000)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways ({width}px)"
    page.screenshot(path=str(anna.screenshot_path("30-phone-idle")))

    page.get_by_label("Availability").select_option("Lunch")
    wait_for(
        lambda: world.api("GET", "me/availability", ANNA).json()["status"] == "Lunch",
        what="Lunch to be saved",
    )
    page.get_by_role("tab", name="Queues").click()
    page.get_by_role("switch", name="Sales").click()
    wait_for(
        lambda: not world.api("GET", "me/pools", ANNA).json()["pools"][0]["active"],
        what="the pool switch",
    )
    page.get_by_label("My mobile").check()
    page.get_by_label("Mobile number").fill(MOBILE)
    page.get_by_role("button", name="Save", exact=True).click()
    page.locator("#endpoint-state", has_text=f"Calls ring your mobile {MOBILE}.").wait_for(
        timeout=10_000
    )
    assert world.api("GET", "me/endpoint", ANNA).json() == {
        "kind": "mobile",
        "mobileNumber": MOBILE,
        "webPhone": True,
    }
    box = page.get_by_role("button", name="Save", exact=True).bounding_box()
    assert box is not None and box["height"] >= 44 and box["x"] + box["width"] <= 390
    page.screenshot(path=str(anna.screenshot_path("31-phone-queues-endpoint")), full_page=True)
    anna._axe(page.main_frame, "phone-sized queues")

    # Back to the web phone and Available, as the other tests expect Anna.
    page.get_by_label("This web phone").check()
    page.get_by_role("button", name="Save", exact=True).click()
    page.locator("#endpoint-state", has_text="Calls ring this web phone.").wait_for(timeout=10_000)
    page.get_by_role("switch", name="Sales").click()
    status(world, ANNA, "Available")
