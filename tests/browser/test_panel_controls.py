"""The panel's controls in a real browser: CIF 2.0 notifications and sessions, declining, hold,
mute and touch tones, pools, the directory and history, the keyboard, and stand-alone use."""

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


def available(world: Product, *agents: Agent) -> None:
    for agent in agents:
        reply = world.api("PUT", "me/availability", agent, json_body={"status": "Available"})
        assert reply.status_code == 200, reply.text


def acs_call(world: Product) -> dict[str, Any]:
    [call] = [c for c in world.acs.state()["calls"] if c["state"] != "disconnected"]
    return call


def participant(world: Product, raw_id: str) -> dict[str, Any] | None:
    return next((p for p in acs_call(world)["participants"] if p["rawId"] == raw_id), None)


def test_cif2_notification_accept_answers_and_the_call_gets_a_session(
    world: Product, agent_browser: Any
) -> None:
    """CIF 2.0 (Customer Service workspace, panel on the left): the ring is a D365
    notification; Accept answers; the call is a session, closed when the agent closes."""
    contact_id = seed_contact(world)
    available(world, ANNA)
    anna: PanelPage = agent_browser().open(cif=2).sign_in(ANNA).wait_ready()
    anna.set_records({contact_id: {"name": "Maija Meikäläinen", "phone": CALLER}})
    assert "CIF 2.0" in anna.text("#footer")
    world.acs.place_call(CALLER, POOL_NUMBER)
    notification = anna.page.get_by_role("alert").filter(has_text="Maija Meikäläinen")
    notification.wait_for(timeout=20_000)
    assert "Sales" in notification.inner_text()
    anna.screenshot("16-cif2-notification", panel_only=False)
    notification.get_by_role("button", name="Accept").click()

    anna.frame.locator("#call-badge", has_text="Connected").wait_for(timeout=20_000)
    session = anna.wait_stub_call("createSession")
    assert session["args"][0]["templateParameters"]["title"] == "Maija Meikäläinen"
    assert anna.stub_calls("openForm")  # the record opened in the session
    world.acs.hang_up(CALLER)
    anna.frame.get_by_role("button", name="Close and get ready").click(timeout=20_000)
    anna.wait_stub_call("closeSession")
    anna.wait_stub_call("setMode", lambda args: args == [0])


def test_declining_moves_the_call_to_the_next_member_and_logs_nothing(
    world: Product, agent_browser: Any
) -> None:
    """§2.1.1 3: declined, "no action is taken"; the pool offers the call to Ben."""
    available(world, ANNA, BEN)
    anna = agent_browser().open().sign_in(ANNA).wait_ready()
    world.acs.place_call(CALLER, POOL_NUMBER)
    anna.frame.get_by_role("button", name=f"Decline call from {CALLER}").click(timeout=20_000)
    anna.frame.locator("#idle").wait_for(timeout=10_000)
    world.answer(BEN)
    wait_for(lambda: (c := world.current(BEN)) and c["state"] == "connected", what="ben")
    assert anna.frame.locator("#ringing").is_hidden()
    world.acs.hang_up(CALLER)
    world.settle()
    assert not anna.stub_calls("openForm")
    [activity] = wait_for(world.phonecalls, what="Ben's activity")
    assert activity["_ownerid_value"] == BEN.user_id  # Anna's decline made none


def test_mute_touch_tones_and_hold_reach_the_call(world: Product, agent_browser: Any) -> None:
    available(world, ANNA)
    anna = agent_browser().open().sign_in(ANNA).wait_ready()
    frame = anna.frame
    world.acs.place_call(CALLER, POOL_NUMBER)
    frame.get_by_role("button", name=f"Answer call from {CALLER}").click(timeout=20_000)
    frame.locator("#call-badge", has_text="Connected").wait_for(timeout=20_000)

    frame.get_by_role("button", name="Mute").click()
    wait_for(lambda: participant(world, ANNA.acs_id)["isMuted"], what="anna muted in ACS")
    assert frame.get_by_role("button", name="Unmute").get_attribute("aria-pressed") == "true"
    frame.get_by_role("button", name="Unmute").click()
    wait_for(lambda: not participant(world, ANNA.acs_id)["isMuted"], what="anna unmuted")

    frame.get_by_role("button", name="Keypad").click()
    keypad = frame.get_by_role("group", name="Touch-tone keypad")
    for key in ("1", "2", "#"):
        keypad.get_by_role("button", name=key, exact=True).click()
    sent = wait_for(
        lambda: len(acs_call(world)["sentTones"]) >= 3 and acs_call(world)["sentTones"],
        what="the tones",
    )
    assert [t for s in sent for t in s["tones"]] == ["one", "two", "pound"]
    assert frame.locator("#dtmf-sent").inner_text() == "12#"
    anna.screenshot("17-dtmf")

    frame.get_by_role("button", name="Hold").click()
    wait_for(lambda: participant(world, f"4:{CALLER}")["isOnHold"], what="the customer on hold")
    frame.locator("#call-badge", has_text="On hold").wait_for()
    anna.screenshot("18-on-hold")
    anna.axe("on hold")
    frame.get_by_role("button", name="Resume").click()
    wait_for(lambda: not participant(world, f"4:{CALLER}")["isOnHold"], what="off hold")
    frame.get_by_role("button", name="End call").click()
    frame.locator("#wrapup").wait_for(timeout=20_000)


def test_pools_directory_and_history(world: Product, agent_browser: Any) -> None:
    """§1.3: pool activation, the contact directory (call from it) and the call history."""
    seed_contact(world)
    anna = agent_browser().open().sign_in(ANNA).wait_ready()
    frame = anna.frame
    frame.get_by_role("tab", name="Queues").click()
    switch = frame.get_by_role("switch", name="Sales")
    assert switch.get_attribute("aria-checked") == "true"
    switch.click()
    wait_for(lambda: switch.get_attribute("aria-checked") == "false", what="the switch")
    [pool] = world.api("GET", "me/pools", ANNA).json()["pools"]
    assert pool["active"] is False
    anna.screenshot("19-queues")
    anna.axe("queues")
    switch.click()
    wait_for(lambda: world.api("GET", "me/pools", ANNA).json()["pools"][0]["active"], what="on")

    frame.get_by_role("tab", name="Contacts").click()
    frame.get_by_label("Search contacts, accounts, leads and colleagues").fill("Maija")
    call_button = frame.get_by_role("button", name="Call Maija Meikäläinen")
    call_button.wait_for(timeout=10_000)
    anna.screenshot("20-directory")
    anna.axe("directory")
    # by the start of her mobile number in national form (D365 holds it in E.164)
    frame.get_by_label("Search contacts, accounts, leads and colleagues").fill("040 123")
    matched = frame.locator('#dir-results [data-matched="mobilephone"]')
    matched.wait_for(timeout=10_000)
    assert matched.inner_text() == "mobile"
    line = frame.locator("#dir-results .row-sub", has=frame.locator('[data-matched="mobilephone"]'))
    assert line.inner_text() == f"mobile {CALLER}"
    anna.screenshot("20b-directory-by-number")
    call_button.click()
    world.answer_device(CALLER, "the customer's phone")
    frame.locator("#call-badge", has_text="Connected").wait_for(timeout=20_000)
    frame.get_by_role("button", name="End call").click()
    frame.get_by_role("button", name="Close and get ready").click(timeout=20_000)

    anna.page.get_by_role("button", name="Expand the phone").click()  # closing minimised it
    frame.get_by_role("tab", name="History").click()
    again = frame.get_by_role("list", name="Recent calls").get_by_role(
        "button", name="Call Maija Meikäläinen"
    )
    again.wait_for(timeout=10_000)
    anna.screenshot("21-history")
    anna.axe("history")


def test_every_control_is_reachable_by_keyboard_with_a_visible_focus(
    world: Product, agent_browser: Any
) -> None:
    """Tab walks the idle phone; each focused control shows an outline; arrows move tabs."""
    anna = agent_browser().open().sign_in(ANNA).wait_ready()
    frame = anna.frame
    frame.get_by_label("Availability").focus()
    seen: list[str] = []
    for _ in range(25):
        anna.page.keyboard.press("Tab")
        info = frame.evaluate(
            """() => { const e = document.activeElement; const s = getComputedStyle(e);
              return {name: (e.getAttribute('aria-label') || e.textContent || e.id || '').trim(),
                      tag: e.tagName, outline: s.outlineStyle, width: s.outlineWidth,
                      shadow: s.boxShadow, border: s.borderBottomColor}; }"""
        )
        if info["tag"] == "BODY":
            break
        visible = info["outline"] not in ("none", "") and info["width"] != "0px"
        assert visible or info["shadow"] != "none", f"no visible focus on {info}"
        seen.append(info["name"])
    assert "Keypad" in seen and "Call" in " ".join(seen), seen
    frame.get_by_role("tab", name="Keypad").focus()
    anna.page.keyboard.press("ArrowRight")
    assert frame.get_by_role("tab", name="Contacts").get_attribute("aria-selected") == "true"
    anna.page.keyboard.press("End")
    assert frame.get_by_role("tab", name="Queues").get_attribute("aria-selected") == "true"


def test_the_panel_works_stand_alone_without_a_d365_host(
    world: Product, agent_browser: Any
) -> None:
    """Opened directly (no CIF host): sign-in by redirect, the phone works, links open D365."""
    page = agent_browser()
    page.page.set_viewport_size({"width": 380, "height": 760})
    page.page.goto(page.panel_url)
    page.sign_in_here(ANNA)
    page.page.locator("#idle").wait_for(timeout=30_000)
    assert "stand-alone" in page.page.locator("#footer").inner_text().lower()
    page.page.screenshot(path=str(page.screenshot_path("22-stand-alone")))


def test_with_unsaved_changes_in_d365_the_record_opens_when_the_call_is_answered(
    world: Product, agent_browser: Any
) -> None:
    """§2.1.1 1b i: D365 refuses to open a form over unsaved changes while it rings; the
    contact card opens when the agent answers."""
    contact_id = seed_contact(world)
    available(world, ANNA)
    anna = agent_browser().open().sign_in(ANNA).wait_ready()
    anna.page.evaluate("() => { window.stub.openFormFails = true; }")
    world.acs.place_call(CALLER, POOL_NUMBER)
    answer = anna.frame.get_by_role("button", name="Answer call from Maija Meikäläinen")
    answer.wait_for(timeout=20_000)
    anna.wait_stub_call("openForm")  # tried, refused
    anna.page.evaluate("() => { window.stub.openFormFails = false; }")
    answer.click()
    anna.frame.locator("#call-badge", has_text="Connected").wait_for(timeout=20_000)
    wait_for(lambda: len(anna.stub_calls("openForm")) == 2, what="the second openForm")
    assert anna.page.locator("#record-form").get_attribute("data-id") == contact_id
    world.acs.hang_up(CALLER)


def test_a_caller_who_gives_up_while_it_rings_leaves_the_panel_ready(
    world: Product, agent_browser: Any
) -> None:
    """The ring stops by itself (the caller hung up): the panel is ready again, nothing logged."""
    available(world, ANNA)
    anna = agent_browser().open().sign_in(ANNA).wait_ready()
    world.acs.place_call(CALLER, POOL_NUMBER)
    anna.frame.locator("#ringing").wait_for(timeout=20_000)
    world.acs.hang_up(CALLER)
    anna.frame.locator("#idle").wait_for(timeout=20_000)
    assert anna.frame.locator("#ringing").is_hidden()
    world.settle()
    assert world.phonecalls() == []
