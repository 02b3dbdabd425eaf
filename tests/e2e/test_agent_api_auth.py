"""Every agent endpoint: 401 without a token, 403 with the wrong role or someone else's call,
422 naming the field for input that breaks a rule."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.product import ANNA, BEN, CALLER, POOL_NUMBER, Product, connected

pytestmark = pytest.mark.e2e

CALL = "{call}"
# (method, path, a valid body) of every agent endpoint
ENDPOINTS: list[tuple[str, str, Any]] = [
    ("GET", "me/calls/current", None),
    ("GET", "me/calls", None),
    ("POST", "me/calls", {"number": CALLER}),
    ("GET", "me/caller-ids", None),
    ("GET", "directory?q=maija", None),
    ("GET", "me/availability", None),
    ("PUT", "me/availability", {"status": "Available"}),
    ("GET", "me/pools", None),
    ("PUT", "me/pools", {"pools": [{"poolId": "sales", "active": True}]}),
    ("POST", "me/session", None),
    ("PUT", "me/session/s-1", None),
    ("DELETE", "me/session/s-1", None),
    ("PUT", f"me/calls/{CALL}/notes", {"notes": "x"}),
    ("POST", f"me/calls/{CALL}/customer", {"entity": "contact", "id": "x"}),
    ("POST", f"me/calls/{CALL}/hangup", None),
    ("POST", f"me/calls/{CALL}/decline", None),
    ("POST", f"me/calls/{CALL}/hold", None),
    ("POST", f"me/calls/{CALL}/unhold", None),
    ("POST", f"me/calls/{CALL}/mute", None),
    ("POST", f"me/calls/{CALL}/dtmf", {"tones": "1"}),
    ("POST", f"me/calls/{CALL}/transfer", {"number": "+358405550000"}),
    ("POST", f"me/calls/{CALL}/consult", {"number": "+358405550000"}),
    ("POST", f"me/calls/{CALL}/consult/complete", None),
    ("POST", f"me/calls/{CALL}/consult/cancel", None),
]
# (method, path, body, the field the 422 must name)
UNPROCESSABLE: list[tuple[str, str, Any, str]] = [
    ("POST", "me/calls", {"number": "12"}, "number"),
    ("POST", "me/calls", {"number": CALLER, "callerId": "+358999999999"}, "callerId"),
    ("GET", "directory?q=m", None, "q"),
    ("PUT", "me/availability", {"status": "Sailing"}, "status"),
    ("PUT", "me/availability", {"forwardTo": "12"}, "forwardTo"),
    ("PUT", "me/pools", {"pools": [{"poolId": "nope", "active": True}]}, "pools.nope"),
    ("PUT", f"me/calls/{CALL}/notes", {"notes": "x" * 100_001}, "notes"),
    ("POST", f"me/calls/{CALL}/customer", {"entity": "contact", "id": "nobody"}, "id"),
    ("POST", f"me/calls/{CALL}/dtmf", {"tones": "9x"}, "tones"),
    ("POST", f"me/calls/{CALL}/transfer", {"number": "1"}, "number"),
    ("POST", f"me/calls/{CALL}/consult", {"agentId": "ghost"}, "agentId"),
]


@pytest.fixture
def call_id(world: Product) -> str:
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)
    return str(connected(world, ANNA)["callId"])


def test_every_endpoint_refuses_no_token_and_the_wrong_role(world: Product, call_id: str) -> None:
    wrong_role = world.token(ANNA, roles=["Reports.Reader"])
    for method, path, body in ENDPOINTS:
        path = path.replace(CALL, call_id)
        anonymous = world.api(method, path, json_body=body)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.headers["Content-Type"].startswith("application/problem+json")
        forbidden = world.api(method, path, token=wrong_role, json_body=body)
        assert forbidden.status_code == 403, (method, path, forbidden.text)
    world.acs.hang_up(CALLER)


def test_every_call_endpoint_refuses_another_agents_call(world: Product, call_id: str) -> None:
    for method, path, body in ENDPOINTS:
        if CALL not in path:
            continue
        reply = world.api(method, path.replace(CALL, call_id), BEN, json_body=body)
        assert reply.status_code == 403, (method, path, reply.text)
    assert world.current(ANNA)["state"] == "connected"  # nothing happened to the call
    world.acs.hang_up(CALLER)


def test_input_that_breaks_a_rule_is_422_naming_the_field(world: Product, call_id: str) -> None:
    for method, path, body, field in UNPROCESSABLE:
        reply = world.api(method, path.replace(CALL, call_id), ANNA, json_body=body)
        assert reply.status_code == 422, (method, path, reply.text)
        assert reply.headers["Content-Type"].startswith("application/problem+json")
        assert field in [e["field"] for e in reply.json()["errors"]], (path, reply.json())
    assert world.current(ANNA)["state"] == "connected"
    world.acs.hang_up(CALLER)


def test_malformed_bodies_are_400_not_500(world: Product, call_id: str) -> None:
    for method, path, body in ENDPOINTS:
        if body is None or method == "GET":
            continue
        reply = world.api(
            method,
            path.replace(CALL, call_id),
            ANNA,
            raw=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert reply.status_code == 400, (method, path, reply.text)
    world.acs.hang_up(CALLER)
