"""The web phone's audio side: the agent's ACS user token, and the ACS emulator's browser device
API that the panel drives locally (ring, answer, decline, mute, leave)."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.fixtures.product import ANNA, STRANGER, Product

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
