"""The web phone's audio side: the agent's ACS user token, and the ACS emulator's browser device
API that the panel drives locally (ring, answer, decline, mute, leave)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import requests

from tests.fixtures import product as fixtures
from tests.fixtures.product import (
    ANNA,
    BEN,
    CALLER,
    POOL_NUMBER,
    STRANGER,
    Product,
    wait_for,
)

PANEL_ORIGIN = "https://contoso.crm4.dynamics.com"

pytestmark = pytest.mark.e2e


def test_an_agent_gets_a_voip_token_for_its_own_acs_user(world: Product) -> None:
    reply = world.api("GET", "me/acs-token", ANNA)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Cache-Control"] == "no-store"
    body = reply.json()
    assert body["communicationUserId"] == ANNA.acs_id
    expires = dt.datetime.fromisoformat(body["expiresOn"].replace("Z", "+00:00"))
    assert expires > dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    # ACS itself issued it (through azure-communication-identity), for anna's user, scope voip.
    assert world.acs.identities.user_of(body["token"], "voip") == ANNA.acs_id
    assert any(
        r["operation"] == "identity" and r["status"] == 200 for r in world.acs.requests_log()
    )


def test_the_acs_token_needs_a_configured_agent(world: Product) -> None:
    anonymous = world.api("GET", "me/acs-token")
    assert anonymous.status_code == 401
    assert anonymous.headers["Content-Type"].startswith("application/problem+json")
    not_an_agent = world.api("GET", "me/acs-token", token=world.token(STRANGER))
    assert not_an_agent.status_code == 403
    no_role = world.api("GET", "me/acs-token", token=world.token(ANNA, roles=["Other"]))
    assert no_role.status_code == 403
    assert not any(r["operation"] == "identity" for r in world.acs.requests_log())


def device(world: Product, agent: fixtures.TestAgent) -> DeviceSession:
    token = world.api("GET", "me/acs-token", agent).json()["token"]
    return DeviceSession(world.acs.device_url, token)


class DeviceSession:
    """What the panel's local device adapter does: the device API with the agent's ACS token."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.http = url, requests.Session()
        self.http.trust_env = False
        self.http.headers.update({"Authorization": f"Bearer {token}", "Origin": PANEL_ORIGIN})

    def me(self) -> dict[str, Any]:
        reply = self.http.get(f"{self.url}/devices/me", timeout=10)
        assert reply.status_code == 200, reply.text
        assert reply.headers["Access-Control-Allow-Origin"] == PANEL_ORIGIN
        body: dict[str, Any] = reply.json()
        return body

    def post(self, action: str, body: dict[str, Any] | None = None) -> requests.Response:
        return self.http.post(f"{self.url}/devices/me/{action}", json=body or {}, timeout=10)

    def ring(self) -> dict[str, Any]:
        ring: dict[str, Any] = wait_for(lambda: self.me()["ringing"], what="the device to ring")[0]
        return ring


def test_the_panel_device_rings_with_the_call_answers_and_mutes(world: Product) -> None:
    phone = device(world, ANNA)
    assert phone.me() == {
        "communicationUserId": ANNA.acs_id,
        "ringing": [],
        "connected": False,
        "muted": False,
    }
    world.acs.place_call(CALLER, POOL_NUMBER)
    ring = phone.ring()
    current = world.current(ANNA)
    assert current is not None and current["state"] == "ringing"
    assert ring["from"] == CALLER and ring["callId"] == current["callId"]
    assert "rejoin" not in ring

    answered = phone.post("answer", {"ringId": ring["ringId"]})
    assert answered.status_code == 200, answered.text
    assert answered.json()["connected"] is True and answered.json()["ringing"] == []
    wait_for(lambda: (world.current(ANNA) or {}).get("state") == "connected", what="call connected")
    assert phone.post("mute").json()["muted"] is True
    [acs_call] = [c for c in world.acs.state()["calls"] if c["state"] == "connected"]
    assert {p["rawId"]: p["isMuted"] for p in acs_call["participants"]}[ANNA.acs_id] is True
    assert phone.post("unmute").json()["muted"] is False
    world.acs.hang_up(CALLER)
    wait_for(lambda: not phone.me()["connected"], what="the device to leave the ended call")
    assert phone.post("mute").status_code == 409  # nothing to mute any more


def test_a_declined_ring_goes_to_the_next_agent(world: Product) -> None:
    anna, ben = device(world, ANNA), device(world, BEN)
    world.acs.place_call(CALLER, POOL_NUMBER)
    declined = anna.post("decline", {"ringId": anna.ring()["ringId"]})
    assert declined.status_code == 200 and declined.json()["ringing"] == []
    assert ben.ring()["from"] == CALLER
    world.acs.hang_up(CALLER)


def test_the_device_api_refuses_bad_tokens_and_bad_rings_and_answers_cors(world: Product) -> None:
    url = world.acs.device_url
    http = requests.Session()
    http.trust_env = False
    assert http.get(f"{url}/devices/me", timeout=10).status_code == 401
    forged = http.get(
        f"{url}/devices/me", headers={"Authorization": "Bearer not-a-token"}, timeout=10
    )
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "InvalidAuthenticationToken"
    preflight = http.options(
        f"{url}/devices/me/answer",
        headers={
            "Origin": PANEL_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == PANEL_ORIGIN
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    phone = device(world, ANNA)
    assert phone.post("answer", {"ringId": "nothing-rings"}).status_code == 404
    assert phone.post("answer", {}).status_code == 400
    assert phone.post("decline", {"ringId": 7}).status_code == 400
