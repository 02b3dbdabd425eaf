"""Availability rules (§1.2.1) and the single-session lease (§1.4), with time passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain import sessions
from shared.domain.availability import (
    AVAILABLE,
    AgentState,
    AvailabilityType,
    DirectCallAction,
    StatusCatalog,
    choose,
    direct_call_action,
    effective,
    takes_call_from_pool,
)

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
CATALOG = StatusCatalog(
    statuses={
        "Available": AvailabilityType.AVAILABLE,
        "Offwork": AvailabilityType.OFFWORK,
        "DND": AvailabilityType.DND,
        "Lunch": AvailabilityType.OFFWORK,
        "Meeting": AvailabilityType.DND,
    },
    lunch_minutes=30,
)


def test_each_type_decides_pool_and_direct_calls() -> None:
    for status, pool, direct in [
        ("Available", True, DirectCallAction.RING),
        ("Offwork", False, DirectCallAction.RING),
        ("Meeting", False, DirectCallAction.BUSY),
    ]:
        state = AgentState("a", availability=choose(AVAILABLE, status, CATALOG, T0))
        assert takes_call_from_pool(state, "p", T0) is pool
        assert direct_call_action(state.availability, None) is direct
    dnd = choose(AVAILABLE, "DND", CATALOG, T0)
    assert direct_call_action(dnd, "+358401112222") is DirectCallAction.FORWARD


def test_a_busy_or_inactive_agent_takes_no_pool_call() -> None:
    assert not takes_call_from_pool(AgentState("a", busy_call_id="c"), "p", T0)
    assert not takes_call_from_pool(AgentState("a", inactive_pools=frozenset({"p"})), "p", T0)
    assert takes_call_from_pool(AgentState("a", inactive_pools=frozenset({"q"})), "p", T0)


def test_lunch_returns_to_the_status_before_it_and_a_second_lunch_keeps_that() -> None:
    lunch = choose(choose(AVAILABLE, "Meeting", CATALOG, T0), "Lunch", CATALOG, T0)
    assert effective(lunch, T0 + timedelta(minutes=29)).status == "Lunch"
    assert effective(lunch, T0 + timedelta(minutes=30)).status == "Meeting"
    again = choose(lunch, "Lunch", CATALOG, T0 + timedelta(minutes=10))
    assert again.then_status == "Meeting" and again.until == T0 + timedelta(minutes=40)
    with pytest.raises(ValueError, match="unknown status"):
        choose(AVAILABLE, "Holiday", CATALOG, T0)


def test_a_second_session_is_refused_while_the_first_lives_and_wins_after_it_expires() -> None:
    first = sessions.start(None, "s1", T0, 60, takeover=False)
    assert first is not None
    assert sessions.start(first, "s2", T0 + timedelta(seconds=59), 60, takeover=False) is None
    assert (
        sessions.start(first, "s2", T0 + timedelta(seconds=60), 60, takeover=False).session_id
        == "s2"
    )
    assert sessions.start(first, "s3", T0, 60, takeover=True).session_id == "s3"
    assert sessions.renew(first, "s2", T0, 60) is None
    renewed = sessions.renew(first, "s1", T0 + timedelta(seconds=30), 60)
    assert renewed.expires_at == T0 + timedelta(seconds=90)
