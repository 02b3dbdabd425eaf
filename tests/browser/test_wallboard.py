"""The wallboard (wallboard.html, §9 2.4) in headless chromium at 1920x1080: a supervisor signs
in, eight pools fill the screen without scrolling, alarmed pools stand out in words and colour,
the figures refresh by themselves, and an agent is told the board is for supervisors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from emulators.common.processes import Azurite
from emulators.common.tls import LocalTLS
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from emulators.entra.authorize import User
from emulators.graph import GraphEmulator
from emulators.panel_demo import panel_redirect_uris
from tests.browser.conftest import AXE, SUPERVISOR, upn
from tests.fixtures.graph import graph_env
from tests.fixtures.product import (
    ANNA,
    BEN,
    CALLER,
    POOL_NUMBER,
    POOLS,
    Product,
    run_product,
    wait_for,
)

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).parent / "artifacts"
WALLBOARD_CLIENT_ID = "0badc0de-0000-4000-8000-00000000b0a2"  # its own SPA registration
NAMES = [
    "CS Japan",
    "CS South Korea",
    "CS Spain",
    "CS UK",
    "CS USA",
    "Customer Service EN",
    "Customer Service FI",
]
EIGHT_POOLS = [
    POOLS[0],
    *(
        {
            "id": f"pool{i}",
            "name": name,
            "numbers": [f"+35810100030{i}"],
            "members": ["ben"] if name == "CS UK" else ["anna", "ben"],
        }
        for i, name in enumerate(NAMES)
    ),
]


@pytest.fixture(scope="module")
def board_product(
    local_tls: LocalTLS,
    azurite: Azurite,
    entra: EntraEmulator,
    dataverse: DataverseEmulator,
    graph: GraphEmulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Product]:
    with run_product(
        tls=local_tls,
        storage=azurite.connection_string,
        entra=entra,
        dataverse=dataverse,
        work=tmp_path_factory.mktemp("wallboard"),
        extra_env={
            **graph_env(graph),
            "SERVICE_POOLS": json.dumps(EIGHT_POOLS),
            "PANEL_CLIENT_ID": WALLBOARD_CLIENT_ID,
            "WALLBOARD_REFRESH_SECONDS": "2",
        },
    ) as running:
        entra.sign_in.register_spa(WALLBOARD_CLIENT_ID, panel_redirect_uris(running.host.url))
        entra.sign_in.add_user(User(ANNA.oid, upn(ANNA), ANNA.name, ("Phone.Agent",)))
        entra.sign_in.add_user(
            User(SUPERVISOR.oid, upn(SUPERVISOR), SUPERVISOR.name, ("Phone.Supervisor",))
        )
        running.reset()
        yield running


def open_board(browser: Browser, product: Product, who: str) -> Page:
    context = browser.new_context(
        ignore_https_errors=True, viewport={"width": 1920, "height": 1080}
    )
    page = context.new_page()
    page.goto(f"{product.host.url}/api/panel/wallboard.html")
    page.get_by_label("Username").fill(who, timeout=20_000)
    page.get_by_role("button", name="Sign in").click()
    return page


def test_the_wallboard_shows_every_pool_on_one_wall_screen(
    board_product: Product, browser: Browser
) -> None:
    world = board_product
    supervisor = world.token(BEN, roles=["Phone.Supervisor"])
    # CS UK's only member goes off work: nobody serves it, its alarm is raised.
    assert world.api("PUT", "me/availability", BEN, json_body={"status": "Offwork"}).ok
    for pool, body in (("pool3", {"nobodyServing": True}), ("sales", {"queueLength": 1})):
        reply = world.api(
            "PUT", f"supervisor/pools/{pool}/alarms", token=supervisor, json_body=body
        )
        assert reply.status_code == 200, reply.text

    page = open_board(browser, world, upn(SUPERVISOR))
    rows = page.locator("#wb-rows tr")
    wait_for(lambda: rows.count() == 8, timeout=30, what="eight pools on the board")
    uk = page.locator("tr[data-pool=pool3]")
    assert "alarmed" in (uk.get_attribute("class") or "")
    assert uk.locator(".alarm").all_inner_texts() == ["⚠ Nobody serving"]

    # A caller rings anna in Sales: the board shows the waiting caller and the queue alarm by
    # itself, on its next refresh.
    world.acs.place_call(CALLER, POOL_NUMBER)
    sales = page.locator("tr[data-pool=sales]")
    wait_for(
        lambda: "alarmed" in (sales.get_attribute("class") or ""),
        timeout=30,
        what="the Sales row to show its waiting caller",
    )
    assert sales.locator("td").nth(0).inner_text().strip() == "1"
    assert sales.locator(".alarm").all_inner_texts() == ["⚠ Queue length"]
    assert "2 alarms" in page.locator("#wb-alarm-count").inner_text()

    # Large and legible without scrolling: the document fits the 1920x1080 screen, the pool
    # names are at least 40 px high, and nothing in a row is cut off.
    fits = page.evaluate(
        "() => ({h: document.documentElement.scrollHeight, w: document.documentElement.scrollWidth,"
        " vh: innerHeight, vw: innerWidth})"
    )
    assert fits["h"] <= fits["vh"] and fits["w"] <= fits["vw"], fits
    name_px = page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('#wb-rows th')).fontSize)"
    )
    assert name_px >= 40, name_px
    bottom = page.evaluate(
        "() => document.querySelector('#wb-rows tr:last-child').getBoundingClientRect().bottom"
    )
    assert bottom <= 1080, bottom

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wallboard.png"))
    page.add_script_tag(content=AXE.read_text())
    violations = page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})))"
    )
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, json.dumps(bad, indent=1)

    world.acs.hang_up(CALLER)
    world.api("PUT", "me/availability", BEN, json_body={"status": "Available"})
    page.context.close()


def test_an_agent_is_told_the_wallboard_is_for_supervisors(
    board_product: Product, browser: Browser
) -> None:
    page = open_board(browser, board_product, upn(ANNA))
    status = page.locator("#wb-status")
    wait_for(lambda: "for supervisors" in status.inner_text(), timeout=30, what="the refusal")
    assert page.locator("#wb-table").is_hidden()
    page.context.close()
