"""Pool monitoring rules (§8, §9): figures from the pool call log, thresholds, raise once and
clear once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.calls import Outcome, Phase
from shared.domain.pool_monitoring import (
    AlarmKind,
    AlarmState,
    AlarmThresholds,
    Change,
    PoolCallEntry,
    PoolStatus,
    breached,
    status_of,
    transition,
)

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 12, 2, tzinfo=UTC)


def entry(n: int, phase: Phase, arrived_ago: int, **more: object) -> PoolCallEntry:
    return PoolCallEntry(
        "sales", f"c{n}", NOW - timedelta(seconds=arrived_ago), phase, "+358401234567", **more
    )  # type: ignore[arg-type]


def status(**figures: int) -> PoolStatus:
    base = dict(
        waiting=0, longest_wait_seconds=0, serving=2, free=2, answered_today=0, abandoned_today=0
    )
    return PoolStatus("sales", "Sales", **{**base, **figures})


def test_the_status_counts_waiting_callers_their_longest_wait_and_todays_outcomes() -> None:
    entries = [
        entry(1, Phase.WAITING, 40),
        entry(2, Phase.RINGING, 15),
        entry(3, Phase.CONNECTED, 90, answered_at=NOW - timedelta(seconds=80)),
        entry(4, Phase.ENDED, 300, ended_at=NOW - timedelta(seconds=200), outcome=Outcome.ANSWERED),
        entry(5, Phase.ENDED, 100, ended_at=NOW - timedelta(seconds=50), outcome=Outcome.ABANDONED),
        # Ended yesterday: not today's.
        entry(
            6,
            Phase.ENDED,
            13 * 3600,
            ended_at=MIDNIGHT - timedelta(minutes=5),
            outcome=Outcome.ABANDONED,
        ),
    ]
    got = status_of("sales", "Sales", entries, serving=1, free=0, day_start=MIDNIGHT, now=NOW)
    assert (got.waiting, got.longest_wait_seconds) == (2, 40)
    assert (got.answered_today, got.abandoned_today, got.abandon_rate_percent) == (1, 1, 50)
    assert entries[2].wait_seconds(NOW) == 10  # waited until answered, not until now


def test_each_threshold_raises_its_own_alarm() -> None:
    all_on = AlarmThresholds(
        queue_length=3,
        max_wait_seconds=60,
        nobody_serving=True,
        abandon_rate_percent=20,
        abandon_min_calls=5,
    )
    assert breached(all_on, status()) == frozenset()
    assert breached(all_on, status(waiting=3, longest_wait_seconds=10)) == {AlarmKind.QUEUE_LENGTH}
    assert breached(all_on, status(waiting=1, longest_wait_seconds=60)) == {AlarmKind.MAX_WAIT}
    assert breached(all_on, status(serving=0, free=0)) == {AlarmKind.NOBODY_SERVING}
    assert breached(all_on, status(answered_today=4, abandoned_today=1)) == {AlarmKind.ABANDON_RATE}
    # Too few calls today for a rate to mean anything; and thresholds left off raise nothing.
    assert breached(all_on, status(answered_today=1, abandoned_today=1)) == frozenset()
    assert breached(AlarmThresholds(), status(waiting=99, serving=0)) == frozenset()


def test_an_alarm_is_raised_once_and_cleared_once_however_often_it_is_checked() -> None:
    state = AlarmState(active={})
    state, events = transition(state, frozenset({AlarmKind.QUEUE_LENGTH}), "sales", NOW)
    assert [(e.kind, e.change) for e in events] == [(AlarmKind.QUEUE_LENGTH, Change.RAISED)]
    for _ in range(3):  # the condition holds: nothing new
        again, none = transition(state, frozenset({AlarmKind.QUEUE_LENGTH}), "sales", NOW)
        assert none == () and again == state
    state, events = transition(state, frozenset(), "sales", NOW + timedelta(minutes=1))
    assert [(e.kind, e.change) for e in events] == [(AlarmKind.QUEUE_LENGTH, Change.CLEARED)]
    assert state.active == {} and state.serial == 2
    assert len({e.id for e in state.outbox}) == 2  # each event its own identity
    assert transition(state, frozenset(), "sales", NOW)[1] == ()


def test_the_log_shows_a_caller_waiting_until_answered_so_the_leg_and_an_offer_write_nothing() -> (
    None
):
    from dataclasses import replace

    from shared.domain.calls import Call, CallKind, Direction, Offer
    from shared.domain.pool_monitoring import entry_of

    arrived = Call(
        call_id="c1",
        direction=Direction.INBOUND,
        kind=CallKind.POOL,
        customer_number="+358401234567",
        our_number="+358900100",
        arrived_at=NOW,
        pool_id="sales",
    )
    connected = replace(arrived, app_connected_at=NOW + timedelta(seconds=1))
    assert (arrived.phase, connected.phase) == (Phase.CONNECTING, Phase.WAITING)
    first, then = entry_of(arrived), entry_of(connected)
    assert first is not None and first.phase is Phase.WAITING and first.waiting
    assert then == first  # the same log row: no write
    ringing = replace(connected, offers=(Offer(1, "8:acs:anna", "anna", NOW),))
    assert ringing.phase is Phase.RINGING and entry_of(ringing) == first  # nor an offer
