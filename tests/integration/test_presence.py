"""Availability on real Table Storage with an injected clock: Lunch ends by itself."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.repositories import TableAgentStates
from shared.adapters.tables import TableStore
from shared.domain.availability import StatusCatalog, takes_call_from_pool
from shared.domain.directory import Agent, Directory, ServicePool
from shared.services.presence import Presence
from shared.views import to_json

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 25, 11, 30, tzinfo=UTC)


def fixture(store: TableStore) -> tuple[Presence, Agent, list[tuple[str, datetime]]]:
    agent = Agent(
        f"a{uuid.uuid4().hex[:8]}", "Anna", "0" * 8 + "-0000-4000-8000-" + "0" * 12, "u", "8:acs:a"
    )
    offered: list[tuple[str, datetime]] = []
    presence = Presence(
        TableAgentStates(store),
        Directory((agent,), (ServicePool("p", "P", (), (agent.id,)),)),
        StatusCatalog(lunch_minutes=30),
        on_free=lambda agent_id, now: offered.append((agent_id, now)),
    )
    return presence, agent, offered


def test_lunch_is_offwork_for_its_minutes_then_the_status_before_returns(
    storage_connection_string: str,
) -> None:
    store = TableStore(storage_connection_string)
    presence, agent, _ = fixture(store)
    presence.set_availability(agent, T0, status="DND")
    lunch = to_json(presence.set_availability(agent, T0, status="Lunch"))
    assert (lunch["status"], lunch["type"], lunch["returnsTo"]) == ("Lunch", "Offwork", "DND")
    assert lunch["until"] == "2026-11-25T12:00:00Z"

    assert presence.availability(agent, T0 + timedelta(minutes=29)).status == "Lunch"
    assert presence.availability(agent, T0 + timedelta(minutes=30)).status == "DND"

    states = TableAgentStates(store)
    assert states.with_expired_status(T0 + timedelta(minutes=29)) == []
    assert agent.id in states.with_expired_status(T0 + timedelta(minutes=31))
    assert presence.sweep(T0 + timedelta(minutes=31)) >= 1
    assert states.state(agent.id).availability.status == "DND"  # written back
    assert agent.id not in states.with_expired_status(T0 + timedelta(minutes=31))


def test_after_lunch_an_available_agent_takes_pool_calls_again(
    storage_connection_string: str,
) -> None:
    store = TableStore(storage_connection_string)
    presence, agent, offered = fixture(store)
    presence.set_availability(agent, T0, status="Available")
    presence.set_availability(agent, T0, status="Lunch")
    state = TableAgentStates(store).state(agent.id)
    assert not takes_call_from_pool(state, "p", T0 + timedelta(minutes=10))
    assert takes_call_from_pool(state, "p", T0 + timedelta(minutes=30))
    offered.clear()
    presence.sweep(T0 + timedelta(minutes=30))
    assert offered == [(agent.id, T0 + timedelta(minutes=30))]  # waiting callers reach her


def test_pool_switches_and_forwarding_are_kept(storage_connection_string: str) -> None:
    store = TableStore(storage_connection_string)
    presence, agent, _ = fixture(store)
    assert presence.set_pools(agent, {"p": False}, T0).pools[0].active is False
    view = to_json(presence.set_availability(agent, T0, forward_to="+358401112222"))
    assert view["forwardTo"] == "+358401112222" and view["status"] == "Available"
    state = TableAgentStates(store).state(agent.id)
    assert state.inactive_pools == frozenset({"p"}) and state.forward_to == "+358401112222"
