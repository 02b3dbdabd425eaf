"""Hostile input (issue 17): each probe an attacker or a careless client sends, answered."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import azure.functions as func
import pytest

from shared.errors import InvalidInput, NotFound, Unprocessable

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _request(body: bytes, content_type: str | None = "application/json") -> func.HttpRequest:
    headers = {"Content-Type": content_type} if content_type else {}
    return func.HttpRequest(method="PUT", url="http://h/api/x", headers=headers, body=body)


def _guarded(max_body: int = 1024) -> Any:
    """A throwaway endpoint (public, a raw JSON body) behind the shared request guard."""
    from functions.invocation import Auth, endpoint, read_raw_json

    bp = func.Blueprint()

    @endpoint(bp, "PUT", "probe", auth=Auth.PUBLIC, raw_body={"type": "object"}, max_body=max_body)
    def probe(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse(json.dumps({"got": type(read_raw_json(req)).__name__}))

    from functions import invocation

    invocation.OPERATIONS.remove(next(o for o in invocation.OPERATIONS if o.route == "probe"))
    return probe


def _problem(response: func.HttpResponse) -> dict[str, Any]:
    assert response.mimetype == "application/problem+json", response.get_body()
    body: dict[str, Any] = json.loads(response.get_body())
    return body


def test_a_body_over_the_route_limit_is_413_problem_json_naming_the_limit() -> None:
    probe = _guarded(max_body=1024)
    response = probe(_request(b'{"a": "' + b"x" * 2000 + b'"}'))
    assert response.status_code == 413
    assert "1024" in _problem(response)["detail"]
    assert probe(_request(b'{"a": "x"}')).status_code == 200


def test_a_body_that_is_not_json_by_its_content_type_is_415() -> None:
    probe = _guarded()
    response = probe(_request(b'{"a": 1}', "text/plain"))
    assert response.status_code == 415
    assert "application/json" in _problem(response)["detail"]
    assert probe(_request(b'{"a": 1}', "application/json; charset=utf-8")).status_code == 200
    assert probe(_request(b'{"a": 1}', "application/cloudevents-batch+json")).status_code == 200
    assert probe(_request(b'{"a": 1}', None)).status_code == 200  # no header: read as JSON


def test_json_nested_deeper_than_the_limit_is_400_not_a_recursion_error() -> None:
    from shared.json_input import MAX_DEPTH, loads

    probe = _guarded(max_body=1_000_000)
    for deep in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
        response = probe(_request(deep))
        assert response.status_code == 400, response.get_body()
        assert "deep" in _problem(response)["detail"]
    assert loads(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    with pytest.raises(InvalidInput):
        loads(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))


def test_a_non_ascii_callback_token_is_simply_wrong() -> None:
    from shared.services.calls import CallbackTokens

    tokens = CallbackTokens(b"k" * 32)
    assert tokens.valid("x", "é") is False
    assert tokens.valid("x", "\x00\udcff") is False
    assert tokens.valid("x", tokens.token("x")) is True


@pytest.mark.parametrize(
    "events",
    [
        [{"id": "1", "eventType": ["a"], "data": {}}],
        [{"id": "1", "eventType": "Microsoft.Communication.IncomingCall", "data": "text"}],
        [{"id": {}, "eventType": "x", "data": {}}],
        [{"id": "1", "eventType": "x", "data": {}, "eventTime": 5}],
    ],
)
def test_an_event_grid_body_whose_events_are_not_envelopes_is_invalid(events: Any) -> None:
    from shared.adapters import acs_events

    with pytest.raises(InvalidInput):
        acs_events.event_grid_events(json.dumps(events).encode())


class _Leases:
    """One lease per agent, with the real store's semantics (None from decide keeps it)."""

    def __init__(self) -> None:
        self.leases: dict[str, Any] = {}

    def swap(self, agent_id: str, decide: Any) -> Any:
        new = decide(self.leases.get(agent_id))
        if new is not None:
            self.leases[agent_id] = new
        return self.leases.get(agent_id)

    def remove(self, agent_id: str, session_id: str) -> None:
        lease = self.leases.get(agent_id)
        if lease is not None and lease.session_id == session_id:
            del self.leases[agent_id]


def test_ending_a_session_that_is_not_yours_is_404_and_yours_stays() -> None:
    from shared.domain.directory import Agent
    from shared.services.sessions import WebPhoneSessions

    anna, ben = Agent("anna", "Anna", "oid-a", "u-a"), Agent("ben", "Ben", "oid-b", "u-b")
    sessions = WebPhoneSessions(_Leases(), 60)  # type: ignore[arg-type]
    annas = sessions.start(anna, NOW).session_id
    bens = sessions.start(ben, NOW).session_id
    with pytest.raises(NotFound):
        sessions.end(anna, bens)
    sessions.heartbeat(ben, bens, NOW)  # still Ben's
    sessions.end(anna, annas)
    with pytest.raises(NotFound):
        sessions.end(anna, annas)  # already ended


def test_the_destination_policy_refuses_premium_rate_shared_cost_and_other_regions() -> None:
    from shared.domain.destinations import DestinationPolicy

    policy = DestinationPolicy(
        allowed_regions=frozenset({"FI", "SE"}),
        blocked_types=frozenset({"PREMIUM_RATE", "SHARED_COST"}),
    )
    assert policy.refusal("+358401234567") is None  # Finnish mobile
    assert policy.refusal("+46701234567") is None  # Swedish mobile
    premium = policy.refusal("+358600123456")  # Finnish 0600 premium-rate service
    assert premium is not None and "premium-rate" in premium
    region = policy.refusal("+14155550123")
    assert region is not None and "US" in region and "FI" in region
    open_policy = DestinationPolicy(allowed_regions=frozenset(), blocked_types=frozenset())
    assert open_policy.refusal("+358600123456") is None
    with pytest.raises(Unprocessable) as refused:
        policy.check("+358600123456", field="forwardTo")
    assert refused.value.errors[0].field == "forwardTo"


def _guarded_services() -> Any:
    from shared.domain.activity import SubjectTemplates
    from shared.domain.destinations import DestinationPolicy
    from shared.services.agent_calls import AgentCalls
    from shared.services.call_control import CallControl
    from tests.unit.test_call_flow import World

    w = World()
    policy = DestinationPolicy(frozenset({"FI"}), frozenset({"PREMIUM_RATE", "SHARED_COST"}))
    views = AgentCalls(
        flow=w.flow,
        directory=w.flow.directory,
        calls=w.calls,
        agents=w.agents,
        crm=w.crm,
        telephony=w.telephony,
        templates=SubjectTemplates(),
        default_region="FI",
        destinations=policy,
    )
    control = CallControl(
        calls=w.calls,
        agents=w.agents,
        telephony=w.telephony,
        directory=w.flow.directory,
        views=views,
        hold_music_url=None,
        default_region="FI",
        destinations=policy,
    )
    return w, views, control, policy


def test_click_to_dial_and_transfers_to_a_premium_rate_number_are_422_saying_why() -> None:
    from tests.unit.test_call_flow import ANNA

    w, views, control, _ = _guarded_services()
    with pytest.raises(Unprocessable) as dialled:
        views.dial(ANNA, "0600 123456", None, NOW)
    assert "premium-rate" in dialled.value.detail and dialled.value.errors[0].field == "number"
    assert not w.telephony.named("dial") and not w.telephony.named("create")
    call_id = w.incoming()
    w.event(call_id, "CallConnected", 1)
    w.event(call_id, "AddParticipantSucceeded", 5, "offer:1")
    for move in (control.transfer, control.consult):
        with pytest.raises(Unprocessable) as moved:
            move(ANNA, call_id, to_number="+14155550123")
        assert "US" in moved.value.detail
    assert not w.telephony.named("transfer")


def test_dnd_forwarding_to_a_blocked_number_is_422_and_nothing_is_stored() -> None:
    from shared.domain.availability import StatusCatalog
    from shared.services.presence import Presence
    from tests.unit.test_call_flow import ANNA

    w, _, _, policy = _guarded_services()
    presence = Presence(w.agents, w.flow.directory, StatusCatalog(), destinations=policy)
    with pytest.raises(Unprocessable) as refused:
        presence.set_availability(ANNA, NOW, forward_to="+358600123456")
    assert refused.value.errors[0].field == "forwardTo" and "premium-rate" in refused.value.detail
    assert presence.availability(ANNA, NOW).forward_to != "+358600123456"
    presence.set_availability(ANNA, NOW, forward_to="+358401234567")
    assert presence.availability(ANNA, NOW).forward_to == "+358401234567"


def test_a_status_change_alone_is_not_checked_as_a_destination() -> None:
    from shared.domain.availability import StatusCatalog
    from shared.services.presence import Presence
    from tests.unit.test_call_flow import ANNA

    w, _, _, policy = _guarded_services()
    presence = Presence(w.agents, w.flow.directory, StatusCatalog(), destinations=policy)
    assert presence.set_availability(ANNA, NOW, status="DND").status == "DND"
