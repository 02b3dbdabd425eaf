"""Issue 17's probes, replayed against the running host: each answered with a 4xx problem+json
(or acknowledged), never a 500, and the host log shows no traceback for any of them."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.fixtures.entra_dataverse import API_AUDIENCE
from tests.fixtures.product import ANNA, BEN, CALLER, POOL_NUMBER, Product, connected

pytestmark = pytest.mark.e2e

DEEP = b'{"notes": ' + b"[" * 5000 + b"]" * 5000 + b"}"  # under 16 KiB, past recursion


def problem(reply: requests.Response, status: int) -> dict[str, Any]:
    assert reply.status_code == status, (reply.status_code, reply.text[:300])
    assert reply.headers["Content-Type"].startswith("application/problem+json"), reply.text
    assert "Traceback" not in reply.text
    body: dict[str, Any] = reply.json()
    assert body["status"] == status
    return body


def no_traceback(world: Product, before: int) -> None:
    log = world.host.log_text()[before:]
    assert "Traceback" not in log, log[-3000:]
    assert "RecursionError" not in log and "TypeError" not in log, log[-3000:]


def test_a_non_ascii_callback_token_is_401_without_a_traceback(world: Product) -> None:
    before = len(world.host.log_text())
    reply = world.api("POST", "acs/callbacks/x?token=%C3%A9", raw=b"[]")
    problem(reply, 401)
    no_traceback(world, before)


@pytest.mark.parametrize(
    ("method", "path", "who"),
    [
        ("PUT", "me/calls/00000000-0000-0000-0000-000000000000/notes", "agent"),
        ("PUT", "me/availability", "agent"),
        ("POST", "acs/incoming", "key"),
    ],
)
def test_deeply_nested_json_is_400(world: Product, method: str, path: str, who: str) -> None:
    before = len(world.host.log_text())
    headers = {"x-functions-key": world.host.function_key, "Content-Type": "application/json"}
    token = world.token(ANNA) if who == "agent" else None
    body = DEEP if who == "agent" else b"[" + DEEP + b"]"
    detail = problem(world.api(method, path, token=token, raw=body, headers=headers), 400)
    assert "deep" in detail["detail"]
    no_traceback(world, before)


def test_a_body_over_the_limit_is_413_and_text_plain_is_415(world: Product) -> None:
    big = json.dumps({"number": "+358401234567", "pad": "x" * 10_000_000}).encode()
    over = problem(world.api("POST", "me/calls", ANNA, raw=big), 413)
    assert "16384 bytes" in over["detail"]
    plain = world.api(
        "PUT",
        "me/availability",
        ANNA,
        raw=b'{"status": "available"}',
        headers={"Content-Type": "text/plain"},
    )
    assert "application/json" in problem(plain, 415)["detail"]


def test_notes_are_kept_up_to_100000_characters_and_longer_is_422_saying_so(
    world: Product,
) -> None:
    """Notes are never cut: 100,000 characters are kept whole; one more is refused, the
    answer says the limit, and the notes saved before stay."""
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)
    path = f"me/calls/{connected(world, ANNA)['callId']}/notes"
    most = "ä" * 100_000
    kept = world.api("PUT", path, ANNA, json_body={"notes": most})
    assert kept.status_code == 200, kept.text[:300]
    assert world.current(ANNA)["notes"] == most
    over = problem(world.api("PUT", path, ANNA, json_body={"notes": most + "x"}), 422)
    assert "at most 100000" in over["detail"] and over["errors"][0]["field"] == "notes"
    assert world.current(ANNA)["notes"] == most
    world.acs.hang_up(CALLER)


def test_premium_rate_destinations_are_refused_with_the_reason(world: Product) -> None:
    dial = world.api("POST", "me/calls", ANNA, json_body={"number": "+358600123456"})
    assert "premium-rate" in problem(dial, 422)["detail"]
    forward = world.api("PUT", "me/availability", ANNA, json_body={"forwardTo": "+358600123456"})
    body = problem(forward, 422)
    assert body["errors"][0]["field"] == "forwardTo" and "premium-rate" in body["detail"]
    assert world.api("GET", "me/availability", ANNA).json().get("forwardTo") != "+358600123456"
    assert world.acs.ringing() == []  # nothing was dialled


def test_ending_another_agents_session_is_404_and_changes_nothing(world: Product) -> None:
    bens = world.api("POST", "me/session", BEN, json_body={"takeover": True})
    assert bens.status_code == 201, bens.text
    session_id = bens.json()["sessionId"]
    problem(world.api("DELETE", f"me/session/{session_id}", ANNA), 404)
    assert world.api("PUT", f"me/session/{session_id}", BEN).status_code == 200  # still Ben's
    assert world.api("DELETE", f"me/session/{session_id}", BEN).status_code == 204


def test_a_token_of_another_tenant_is_401(world: Product) -> None:
    foreign = world.entra.mint_user_token(
        oid=ANNA.oid,
        upn="anna@contoso.example",
        name="Anna",
        roles=["Phone.Agent"],
        aud=API_AUDIENCE,
        extra={"tid": "99999999-9999-4999-8999-999999999999"},
    )
    problem(world.api("GET", "me/calls/current", token=foreign), 401)
    assert world.api("GET", "me/calls/current", ANNA).status_code == 200


@pytest.mark.parametrize(
    "events",
    [
        [{"id": "1", "eventType": ["Microsoft.Communication.IncomingCall"], "data": {}}],
        [{"id": "1", "eventType": "Microsoft.Communication.IncomingCall", "data": "x"}],
    ],
)
def test_event_grid_bodies_that_are_not_envelopes_are_400(world: Product, events: Any) -> None:
    key = {"x-functions-key": world.host.function_key}
    for route in ("acs/incoming", "acs/recordings"):
        problem(world.api("POST", route, json_body=events, headers=key), 400)
    assert world.acs.requests_log() == []


def test_an_incoming_call_acs_no_longer_knows_is_acknowledged_and_logged(world: Product) -> None:
    before = len(world.host.log_text())
    event = {
        "id": "stale-1",
        "eventType": "Microsoft.Communication.IncomingCall",
        "eventTime": "2026-11-25T09:00:00Z",
        "subject": "/phonenumber/358101000100",
        "dataVersion": "1.0",
        "data": {
            "to": {"kind": "phoneNumber", "rawId": f"4:{POOL_NUMBER}"},
            "from": {"kind": "phoneNumber", "rawId": "4:+358401234567"},
            "serverCallId": "c2VydmVyLWNhbGwtc3RhbGU",
            "incomingCallContext": "expired-context",
            "correlationId": "c-1",
        },
    }
    key = {"x-functions-key": world.host.function_key}
    reply = world.api("POST", "acs/incoming", json_body=[event], headers=key)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"accepted": 0}
    log = world.host.log_text()[before:]
    assert "acknowledged without action" in log
    no_traceback(world, before)
