"""When the pool monitor checks alarms and what it reads for it (§8): a pool nobody watches is
never asked to be checked, setting thresholds checks at once, and a check reads nothing it
just read or wrote."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.pool_monitoring import WrittenRows
from shared.domain.calls import Call, CallKind, Direction
from shared.domain.directory import Agent, Directory, ServicePool
from shared.domain.pool_monitoring import (
    AlarmKind,
    AlarmState,
    AlarmThresholds,
    PoolCallEntry,
    entry_of,
    watched,
)
from shared.services.pool_monitor import Channels, PoolMonitor
from tests.unit.fakes import FakeAgents

pytestmark = pytest.mark.unit
T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
ANNA = Agent("anna", "Anna", "0" * 8 + "-0000-4000-8000-" + "0" * 12, "u-anna", "8:acs:anna")
SALES = ServicePool("sales", "Sales", ("+358900100",), ("anna",), 20)


@dataclass
class FakeLog:
    entries: dict[str, PoolCallEntry] = field(default_factory=dict)
    reads: int = 0

    def record(self, entry: PoolCallEntry, revision: int) -> None:
        self.entries[entry.call_id] = entry

    def recent(self, pool_id: str, since: datetime, limit: int) -> list[PoolCallEntry]:
        self.reads += 1
        return [e for e in self.entries.values() if e.pool_id == pool_id]


@dataclass
class FakeAlarms:
    """The alarm rows of each pool with a version count as ETag; counts every read."""

    rows: dict[str, tuple[AlarmThresholds, AlarmState, int]] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)

    def _row(self, pool_id: str) -> tuple[AlarmThresholds, AlarmState, int]:
        return self.rows.get(pool_id, (AlarmThresholds(), AlarmState(active={}), 0))

    def thresholds(self, pool_id: str) -> tuple[AlarmThresholds, str | None, datetime | None]:
        self.reads.append("thresholds")
        return self._row(pool_id)[0], None, None

    def set_thresholds(
        self, pool_id: str, thresholds: AlarmThresholds, by: str, at: datetime
    ) -> None:
        _, state, version = self._row(pool_id)
        self.rows[pool_id] = (thresholds, state, version)

    def state(self, pool_id: str) -> tuple[AlarmState, str | None]:
        self.reads.append("state")
        _, state, version = self._row(pool_id)
        return state, str(version) if version else None

    def current(self, pool_id: str) -> tuple[AlarmThresholds, AlarmState, str | None]:
        self.reads.append("current")
        thresholds, state, version = self._row(pool_id)
        return thresholds, state, str(version) if version else None

    def watched(self, pool_id: str) -> bool:
        self.reads.append("watched")
        thresholds, state, _ = self._row(pool_id)
        return watched(thresholds, state)

    def save_state(self, pool_id: str, state: AlarmState, etag: str | None) -> str | None:
        thresholds, _, version = self._row(pool_id)
        if (str(version) if version else None) != etag:
            return None
        self.rows[pool_id] = (thresholds, state, version + 1)
        return str(version + 1)


@dataclass
class FakeChecks:
    requested: list[str] = field(default_factory=list)

    def request(self, pool_id: str) -> None:
        self.requested.append(pool_id)


@dataclass
class FakeTeams:
    titles: list[str] = field(default_factory=list)

    def post(self, title: str, facts: list[tuple[str, str]], raised: bool) -> None:
        self.titles.append(title)


class World:
    def __init__(self) -> None:
        self.log, self.alarms, self.checks, self.teams = (
            FakeLog(),
            FakeAlarms(),
            FakeChecks(),
            FakeTeams(),
        )
        self.monitor = PoolMonitor(
            directory=Directory((ANNA,), (SALES,)),
            agents=FakeAgents(),
            log=self.log,
            alarms=self.alarms,
            checks=self.checks,
            channels=Channels(teams=self.teams),
        )


def arrived(call_id: str) -> Call:
    return Call(
        call_id=call_id,
        direction=Direction.INBOUND,
        kind=CallKind.POOL,
        customer_number="+358401234567",
        our_number="+358900100",
        arrived_at=T0,
        pool_id="sales",
    )


def test_a_change_in_a_pool_nobody_watches_is_logged_but_asks_for_no_check() -> None:
    w = World()
    w.monitor.call_changed(None, arrived("c1"), revision=0)
    assert "c1" in w.log.entries and w.checks.requested == []

    w.alarms.set_thresholds("sales", AlarmThresholds(queue_length=5), "sam", T0)
    w.monitor.call_changed(None, arrived("c2"), revision=0)
    assert w.checks.requested == ["sales"]


def test_a_pool_with_an_alarm_left_to_clear_is_still_checked_after_its_thresholds_go() -> None:
    w = World()
    raised = AlarmState(active={AlarmKind.QUEUE_LENGTH: T0}, serial=1)
    w.alarms.rows["sales"] = (AlarmThresholds(), raised, 1)
    w.monitor.call_changed(None, arrived("c1"), revision=0)
    assert w.checks.requested == ["sales"]


def test_setting_thresholds_checks_the_pool_at_once_and_answers_from_that_check() -> None:
    w = World()
    # A caller already waits in a pool nobody watched: no check was asked for it.
    w.monitor.call_changed(None, arrived("c1"), revision=0)
    assert w.checks.requested == []
    w.alarms.reads.clear()

    settings = w.monitor.set_thresholds("sales", AlarmThresholds(queue_length=1), "sam", T0)

    assert w.teams.titles == ["Sales: Queue length alarm raised"]  # not left to the timer
    assert [a.kind for a in settings.active] == [AlarmKind.QUEUE_LENGTH]
    assert (settings.queue_length, settings.updated_by, settings.updated_at) == (1, "sam", T0)
    # One read of the alarm rows and one of the log: the answer reads nothing again.
    assert w.alarms.reads == ["current"] and w.log.reads == 1


def test_setting_thresholds_off_in_a_quiet_pool_reads_no_figures() -> None:
    w = World()
    settings = w.monitor.set_thresholds("sales", AlarmThresholds(), "sam", T0)
    assert settings.active == () and w.log.reads == 0 and w.teams.titles == []


def test_the_check_that_wins_the_state_write_delivers_without_reading_the_state_again() -> None:
    w = World()
    w.alarms.rows["sales"] = (AlarmThresholds(queue_length=1), AlarmState(active={}), 0)
    entry = entry_of(arrived("c1"))
    assert entry is not None
    w.log.record(entry, 0)

    events = w.monitor.check("sales", T0 + timedelta(seconds=5))

    assert [e.kind for e in events] == [AlarmKind.QUEUE_LENGTH]
    assert w.teams.titles == ["Sales: Queue length alarm raised"]
    _, state, version = w.alarms.rows["sales"]
    assert state.outbox == () and version == 2  # raised, then delivered: two guarded writes
    assert w.alarms.reads == ["current"]  # the delivery wrote from the ETag of the first


def test_the_row_memory_keeps_the_rows_used_last_and_forgets_the_oldest() -> None:
    rows = WrittenRows(capacity=2)
    rows.remember("sales", "a", 1, "e1")
    rows.remember("sales", "b", 1, "e2")
    assert rows.known("sales", "a") == (1, "e1")  # used: now the newest
    rows.remember("sales", "c", 0, "e3")
    assert rows.known("sales", "b") is None
    assert rows.known("sales", "a") == (1, "e1") and rows.known("sales", "c") == (0, "e3")
    rows.remember("sales", "a", 2, "")  # a write without an ETag leaves nothing to guess from
    assert rows.known("sales", "a") is None
