"""The recording link D365 holds (recording.html?callId=): it signs the viewer in, fetches the
audio with the bearer token and plays it; someone without access is told so plainly."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import OUTSIDER
from tests.fixtures.product import (
    ANNA,
    CALLER,
    POOL_NUMBER,
    Product,
    connected,
    seed_contact,
    wait_for,
)

pytestmark = pytest.mark.browser


def recorded_call(world: Product) -> str:
    seed_contact(world)
    world.api("PUT", "me/availability", ANNA, json_body={"status": "Available"})
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)
    call_id = str(connected(world, ANNA)["callId"])
    wait_for(world.acs.recordings, what="the recording to start")
    world.acs.hang_up(CALLER)
    wait_for(
        lambda: world.api("GET", f"recordings/{call_id}", ANNA).status_code == 200,
        what="the recording to be playable",
    )
    return call_id


def test_the_calls_agent_signs_in_and_hears_the_recording(
    world: Product, agent_browser: Any
) -> None:
    call_id = recorded_call(world)
    viewer = agent_browser()
    viewer.page.set_viewport_size({"width": 900, "height": 640})
    viewer.page.goto(f"{viewer.panel_url}recording.html?callId={call_id}")
    viewer.sign_in_here(ANNA)
    player = viewer.page.locator("audio#player")
    player.wait_for(timeout=30_000)
    assert call_id in viewer.page.url
    wait_for(
        lambda: viewer.page.evaluate(
            "() => { const a = document.querySelector('#player');"
            " return a.readyState >= 1 && a.duration > 0; }"
        ),
        what="the audio to load",
    )
    assert "Signed in as Anna Agent" in viewer.page.locator("#rec-status").inner_text()
    viewer.page.screenshot(path=str(viewer.screenshot_path("14-recording")))
    viewer.axe_page("recording")


def test_someone_without_access_is_told_so(world: Product, agent_browser: Any) -> None:
    call_id = recorded_call(world)
    viewer = agent_browser()
    viewer.page.set_viewport_size({"width": 900, "height": 640})
    viewer.page.goto(f"{viewer.panel_url}recording.html?callId={call_id}")
    viewer.sign_in_here(OUTSIDER)
    error = viewer.page.get_by_role("alert")
    error.wait_for(timeout=30_000)
    assert "You do not have access to this recording" in error.inner_text()
    assert viewer.page.locator("audio#player").is_hidden()
    viewer.page.screenshot(path=str(viewer.screenshot_path("15-recording-refused")))
    viewer.axe_page("recording refused")
