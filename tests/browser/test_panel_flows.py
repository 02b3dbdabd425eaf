"""The panel's workflows in a real browser inside the stub D365: click-to-dial (§6, §2.1.3,
§2.1.4), several candidates (§2.1.2), an unknown caller's activity form (§3), the second tab
(§1.4), a reload in the middle of a call, and a consulted transfer (§1.3)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import PanelPage
from tests.fixtures.product import (
    ANNA,
    ANNA_DIRECT,
    BEN,
    CALLER,
    POOL_NUMBER,
    Product,
    parties,
    seed_contact,
    wait_for,
)
from tests.fixtures.product import (
    TestAgent as Agent,
)

pytestmark = pytest.mark.browser
UNKNOWN = "+358509876543"


def available(world: Product, agent: Agent) -> None:
    reply = world.api("PUT", "me/availability", agent, json_body={"status": "Available"})
    assert reply.status_code == 200, reply.text


def signed_in(agent_browser: Any, agent: Agent, cif: int = 1) -> PanelPage:
    return agent_browser().open(cif=cif).sign_in(agent).wait_ready()


def state_of(world: Product, agent: Agent) -> str | None:
    call = world.current(agent)
    return call["state"] if call else None


def test_click_to_dial_from_a_d365_phone_field_calls_the_customer(
    world: Product, agent_browser: Any
) -> None:
    """§6 and §2.1.3: the phone icon on the contact form dials through onclicktoact."""
    contact_id = seed_contact(world)
    anna = signed_in(agent_browser, ANNA)
    anna.set_records({contact_id: {"name": "Maija Meikäläinen", "phone": CALLER}})
    anna.page.evaluate(f"() => window.stub.showRecord('contact', '{contact_id}')")
    anna.page.get_by_role("button", name=f"Call {CALLER}").click()  # the stub's click-to-dial

    frame = anna.frame
    frame.get_by_text("Calling…").wait_for(timeout=20_000)
    anna.wait_stub_call("setMode", lambda args: args == [1])
    anna.screenshot("06-click-to-dial-calling")
    world.answer_device(CALLER, "the customer's phone")
    frame.locator("#call-badge", has_text="Connected").wait_for(timeout=20_000)
    assert "Maija Meikäläinen" in anna.text("#incall")
    frame.get_by_label("Call notes").fill("Booked a demo")
    frame.get_by_text("Saved").wait_for(timeout=10_000)
    frame.get_by_role("button", name="End call").click()
    frame.locator("#wrapup").wait_for(timeout=20_000)

    [activity] = wait_for(world.phonecalls, what="the Phone Call activity")
    assert activity["directioncode"] is True
    assert activity["description"] == "Booked a demo"
    assert activity["_regardingobjectid_value"] == contact_id
    assert not anna.stub_calls("openForm")  # outbound: "no action is taken" (§2.1.3 3)


def test_dial_pad_to_an_unknown_number_ends_with_the_activity_form(
    world: Product, agent_browser: Any
) -> None:
    """§2.1.4 and §3: no To or Regarding; the pre-filled Phone Call opens in D365."""
    anna = signed_in(agent_browser, ANNA)
    frame = anna.frame
    frame.get_by_label("Number to call").fill(UNKNOWN)
    frame.get_by_label("Show my number as").select_option(ANNA_DIRECT)
    frame.get_by_role("button", name="Call", exact=True).click()
    world.answer_device(UNKNOWN, "the called phone")
    frame.locator("#call-badge", has_text="Connected").wait_for(timeout=20_000)
    frame.get_by_role("button", name="End call").click()
    form = frame.locator("#activity-form")
    form.wait_for(timeout=20_000)
    assert UNKNOWN in form.inner_text() and "Outgoing" in form.inner_text()
    anna.screenshot("07-activity-form")
    anna.axe("activity form")
    [activity] = wait_for(world.phonecalls, what="the Phone Call activity")
    assert activity["_regardingobjectid_value"] is None and activity["directioncode"] is True
    assert parties(world, activity["activityid"]) == {1: ANNA.user_id}
    frame.get_by_role("button", name="Open the Phone Call form").click()
    opened = anna.wait_stub_call("openForm")
    assert json.loads(opened["args"][0]) == {
        "entityName": "phonecall",
        "entityId": activity["activityid"],
    }


def test_several_candidates_are_listed_opened_and_one_picked(
    world: Product, agent_browser: Any
) -> None:
    """§2.1.2: D365 searches on ring; the Caller tab lists both; the check mark picks one."""
    contact_id = seed_contact(world, name="Maija Meikäläinen")
    [account_id] = world.dataverse.seed(
        {"accounts": [{"name": "Meikäläinen Oy", "telephone1": CALLER}]}
    )["accounts"]
    available(world, ANNA)
    anna = signed_in(agent_browser, ANNA)
    frame = anna.frame
    world.acs.place_call(CALLER, POOL_NUMBER)
    answer = frame.get_by_role("button", name="Answer call from 2 possible callers")
    answer.wait_for(timeout=20_000)
    anna.wait_stub_call("searchAndOpenRecords")
    answer.click()

    caller_tab = frame.get_by_role("tab", name="Caller")
    caller_tab.wait_for(timeout=20_000)
    assert caller_tab.get_attribute("aria-selected") == "true"  # shown at once (§2.1.2 2a)
    frame.get_by_role("link", name="Meikäläinen Oy").click()
    opened = anna.wait_stub_call("openForm")
    assert json.loads(opened["args"][0])["entityId"] == account_id
    anna.screenshot("08-candidates")
    anna.axe("candidates")
    pick = frame.get_by_role("button", name="Pick Meikäläinen Oy as the caller")
    pick.click()
    wait_for(lambda: pick.get_attribute("aria-pressed") == "true", what="the check mark")
    assert world.current(ANNA)["picked"]["id"] == account_id
    anna.screenshot("09-candidate-picked")
    world.acs.hang_up(CALLER)

    [activity] = wait_for(world.phonecalls, what="the Phone Call activity")
    assert activity["_regardingobjectid_value"] == account_id
    assert parties(world, activity["activityid"]) == {1: account_id, 2: ANNA.user_id}
    assert contact_id != account_id


def test_an_unknown_caller_leaves_the_prefilled_form_after_the_call(
    world: Product, agent_browser: Any
) -> None:
    """§2.1.2 (not identified) and §3: nothing pops; at the end the form shows the values."""
    available(world, ANNA)
    anna = signed_in(agent_browser, ANNA)
    frame = anna.frame
    world.acs.place_call(UNKNOWN, POOL_NUMBER)
    frame.get_by_role("button", name=f"Answer call from {UNKNOWN}").click(timeout=20_000)
    frame.locator("#call-badge", has_text="Connected").wait_for(timeout=20_000)
    frame.get_by_label("Call notes").fill("Asked about prices")
    frame.get_by_text("Saved").wait_for(timeout=10_000)
    world.acs.hang_up(UNKNOWN)
    form = frame.locator("#activity-form")
    form.wait_for(timeout=20_000)
    text = form.inner_text()
    assert "Incoming call from" in text and "Asked about prices" in text and "Incoming" in text
    assert not anna.stub_calls("openForm") and not anna.stub_calls("searchAndOpenRecords")
    [activity] = wait_for(world.phonecalls, what="the Phone Call activity")
    assert activity["_regardingobjectid_value"] is None


def test_long_notes_are_typed_and_saved_whole_and_the_panel_says_they_are_attached(
    world: Product, agent_browser: Any
) -> None:
    """Past the description's 2,000 characters the panel keeps taking notes and says the whole
    text goes to the activity as a note (docs/phone-call-mapping.md)."""
    available(world, ANNA)
    anna = signed_in(agent_browser, ANNA)
    frame = anna.frame
    world.acs.place_call(UNKNOWN, POOL_NUMBER)
    frame.get_by_role("button", name=f"Answer call from {UNKNOWN}").click(timeout=20_000)
    frame.locator("#call-badge", has_text="Connected").wait_for(timeout=20_000)
    notes = "The customer explained the whole story. " * 100  # 4,000 characters
    frame.get_by_label("Call notes").fill(notes)
    frame.get_by_text("Saved").wait_for(timeout=10_000)
    assert "(full notes attached to the activity)" in frame.locator("#notes-count").inner_text()
    assert frame.get_by_label("Call notes").input_value() == notes
    world.acs.hang_up(UNKNOWN)
    [activity] = wait_for(world.phonecalls, what="the Phone Call activity")
    assert activity["description"].endswith("… (full notes attached)")
    [note] = wait_for(lambda: world.dataverse.records("annotations"), what="the notes note")
    assert note["notetext"] == notes


def test_a_second_tab_gets_the_documented_message_and_can_take_over(
    world: Product, agent_browser: Any
) -> None:
    """§1.4: the second tab of the same agent is told, in the document's words; take-over
    moves the phone there and the first tab says so."""
    first = signed_in(agent_browser, ANNA)
    second = agent_browser(context=first.context).open()  # same browser: already signed in
    conflict = second.frame.get_by_role("alertdialog")
    conflict.wait_for(timeout=30_000)
    text = conflict.inner_text()
    assert "Webphone is already active in another window" in text
    assert "Web Phone can be active in single-session only" in text
    second.screenshot("10-conflict")
    second.axe("conflict")
    second.frame.get_by_role("button", name="See less").click()
    assert not second.frame.locator("#conflict-text").is_visible()
    second.frame.get_by_role("button", name="See more").click()

    second.frame.get_by_role("button", name="Use the phone here").click()
    second.wait_ready()
    first.frame.get_by_text("Webphone is active in another window").wait_for(timeout=30_000)
    available(world, ANNA)
    world.acs.place_call(CALLER, POOL_NUMBER)
    second.frame.locator("#ringing").wait_for(timeout=20_000)
    assert first.frame.locator("#ringing").is_hidden()  # only the active tab rings


def test_a_reload_in_the_middle_of_a_call_keeps_the_customer_and_the_notes(
    world: Product, agent_browser: Any
) -> None:
    """The whole D365 page is refreshed (Ctrl+F5) during a call: the customer waits on hold
    music, the panel starts again, is rung back into the same call, the notes are intact, and
    the call makes exactly one activity."""
    contact_id = seed_contact(world)
    available(world, ANNA)
    anna = signed_in(agent_browser, ANNA)
    world.acs.place_call(CALLER, POOL_NUMBER)
    anna.frame.get_by_role("button", name="Answer call from Maija Meikäläinen").click(
        timeout=20_000
    )
    anna.frame.locator("#call-badge", has_text="Connected").wait_for(timeout=20_000)
    call_id = world.current(ANNA)["callId"]
    anna.frame.get_by_label("Call notes").fill("Before the refresh")
    anna.frame.get_by_text("Saved").wait_for(timeout=10_000)

    anna.page.reload()
    anna.wait_ready_or_in_call()
    frame = anna.frame
    frame.locator("#call-badge", has_text="Connected").wait_for(timeout=30_000)
    assert world.current(ANNA)["callId"] == call_id
    notes = frame.get_by_label("Call notes")
    assert notes.input_value() == "Before the refresh"
    notes.fill("Before the refresh, and after")
    frame.get_by_text("Saved").wait_for(timeout=10_000)
    anna.screenshot("11-after-reload")
    world.acs.hang_up(CALLER)

    [activity] = wait_for(world.phonecalls, what="the Phone Call activity")
    assert activity["description"] == "Before the refresh, and after"
    assert activity["_regardingobjectid_value"] == contact_id
    world.settle()
    assert len(world.phonecalls()) == 1


def test_a_consulted_transfer_to_a_colleague_completed(world: Product, agent_browser: Any) -> None:
    """§1.3: consult Ben with the customer on hold, then hand the customer over."""
    seed_contact(world)
    available(world, ANNA)
    anna = signed_in(agent_browser, ANNA)
    frame = anna.frame
    world.acs.place_call(CALLER, POOL_NUMBER)
    frame.get_by_role("button", name="Answer call from Maija Meikäläinen").click(timeout=20_000)
    frame.locator("#call-badge", has_text="Connected").wait_for(timeout=20_000)
    frame.get_by_label("Call notes").fill("Wants to change the delivery address")
    frame.get_by_text("Saved").wait_for(timeout=10_000)

    frame.get_by_role("button", name="Hold").click()
    frame.locator("#call-badge", has_text="On hold").wait_for()
    frame.get_by_role("button", name="Resume").click()
    frame.locator("#call-badge", has_text="Connected").wait_for()
    frame.get_by_role("button", name="Transfer").click()
    frame.get_by_label("Transfer to a colleague or number").fill("Ben")
    frame.get_by_role("button", name="Choose").first.click(timeout=10_000)
    frame.get_by_role("button", name="Consult first").click()
    frame.get_by_text("Talking to Ben Agent").wait_for(timeout=10_000)
    world.answer(BEN)
    anna.screenshot("12-consulting")
    anna.axe("consulting")
    frame.get_by_role("button", name="Complete transfer").click()
    # Anna is free again: the idle panel says who has the call now.
    frame.locator("#transferred-note", has_text="Transferred to Ben Agent").wait_for(timeout=20_000)
    frame.locator("#idle").wait_for()
    assert frame.locator("#incall").is_hidden() and frame.locator("#wrapup").is_hidden()
    assert state_of(world, ANNA) == "transferred"
    anna.screenshot("12b-transferred-idle")

    # Ben's panel shows the call, Anna's notes read-only above his own.
    wait_for(lambda: state_of(world, BEN) == "connected", what="ben's call")
    ben = agent_browser().open().sign_in(BEN).wait_ready_or_in_call()
    ben_frame = ben.frame
    ben_frame.locator("#call-badge", has_text="Connected").wait_for(timeout=20_000)
    earlier = ben_frame.locator("#earlier-notes-text")
    earlier.wait_for(timeout=10_000)
    assert earlier.inner_text().startswith("Anna Agent (until transfer at ")
    assert earlier.inner_text().endswith("Wants to change the delivery address")
    ben_frame.get_by_label("Call notes").fill("New address confirmed")
    ben_frame.get_by_text("Saved").wait_for(timeout=10_000)
    # The count is of the activity's notes: Anna's, attributed, then Ben's.
    whole = len(world.current(BEN)["earlierNotes"]) + len("\n\nNew address confirmed")
    assert ben_frame.locator("#notes-count").inner_text() == f"{whole} / 2000"
    ben.screenshot("12c-transferred-receiving-agent")
    ben.axe("transferred call")
    world.acs.hang_up(CALLER)
    [activity] = wait_for(world.phonecalls, what="the Phone Call activity")
    assert activity["_ownerid_value"] == BEN.user_id
    assert parties(world, activity["activityid"])[2] == BEN.user_id
    assert activity["description"].startswith("Anna Agent (until transfer at ")
    assert activity["description"].endswith(
        " UTC):\nWants to change the delivery address\n\nNew address confirmed"
    )


def test_lunch_ends_by_itself_and_the_panel_shows_the_status_before_it(
    world: Product, agent_browser: Any
) -> None:
    """§1.2.1: Lunch is Offwork for LUNCH_MINUTES, then the status before it. The clock is
    moved on both sides: the stored end of Lunch is rewritten and the housekeeping timer run
    (as tests/e2e do), and the browser's clock is fast-forwarded past the end it was told."""
    from datetime import UTC, datetime, timedelta

    available(world, ANNA)
    page = agent_browser()
    page.context.clock.install()
    page.open().sign_in(ANNA).wait_ready()
    frame = page.frame
    frame.get_by_label("Availability").select_option("Lunch")
    note = frame.locator("#status-note")
    note.filter(has_text="Lunch until").wait_for(timeout=10_000)
    assert "then Available" in note.inner_text()
    assert world.api("GET", "me/availability", ANNA).json()["status"] == "Lunch"
    page.screenshot("13-lunch")

    past = datetime.now(UTC) - timedelta(seconds=1)
    row = world.store.get("agents", "agent", ANNA.id)
    world.store.upsert("agents", {**row, "status_until": past}, replace=True)
    world.store.upsert("agents", {"PartitionKey": "timed", "RowKey": ANNA.id, "until": past})
    assert world.host.invoke("housekeeping").status_code == 202
    wait_for(
        lambda: world.store.get("agents", "agent", ANNA.id)["status"] == "Available",
        what="housekeeping to write back Available",
    )
    page.context.clock.fast_forward("31:00")
    wait_for(
        lambda: frame.get_by_label("Availability").input_value() == "Available",
        what="the panel to show Available again",
        timeout=20,
    )
    assert note.is_hidden()
