"""Watching service pools (§8 alarms, §9 2.4 wallboard and service calls tab): the pool call log
kept from call changes, each pool's live status, and alarms raised once and cleared once to
Teams and e-mail."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Protocol

from shared.domain.availability import AgentState, effective, takes_pool_calls
from shared.domain.calls import Call
from shared.domain.directory import Directory, ServicePool
from shared.domain.pool_monitoring import (
    DESCRIPTIONS,
    AlarmEvent,
    AlarmKind,
    AlarmState,
    AlarmThresholds,
    Change,
    PoolCallEntry,
    PoolStatus,
    breached,
    describe,
    entry_of,
    status_of,
    transition,
    watched,
)
from shared.errors import DependencyUnavailable, NotFound
from shared.services.ports import AgentStates
from shared.views import (
    ActiveAlarm,
    AlarmSettings,
    PoolCalls,
    PoolCallView,
    Wallboard,
    WallboardPool,
)

log = logging.getLogger(__name__)

LOG_WINDOW = timedelta(hours=24)  # how far back the log is read (ongoing calls included)
MAX_LOG_READ = 1000  # rows per pool and read; a busier day counts its latest 1000 calls
SAVE_ATTEMPTS = 5
RETRY_AFTER = timedelta(seconds=60)  # an undelivered event is retried by checks after this


class PoolCallLog(Protocol):
    def record(self, entry: PoolCallEntry, revision: int) -> None: ...
    def recent(self, pool_id: str, since: datetime, limit: int) -> list[PoolCallEntry]: ...


class AlarmStore(Protocol):
    def thresholds(self, pool_id: str) -> tuple[AlarmThresholds, str | None, datetime | None]: ...
    def set_thresholds(
        self, pool_id: str, thresholds: AlarmThresholds, by: str, at: datetime
    ) -> None: ...
    def state(self, pool_id: str) -> tuple[AlarmState, str | None]: ...
    def current(self, pool_id: str) -> tuple[AlarmThresholds, AlarmState, str | None]: ...
    def watched(self, pool_id: str) -> bool: ...
    def save_state(self, pool_id: str, state: AlarmState, etag: str | None) -> str | None: ...


class PoolChecks(Protocol):
    def request(self, pool_id: str) -> None: ...


class TeamsChannel(Protocol):
    def post(self, title: str, facts: list[tuple[str, str]], raised: bool) -> None: ...


class EmailChannel(Protocol):
    def send(self, event_id: str, subject: str, text: str) -> None: ...


@dataclass(frozen=True)
class Channels:
    """Where alarms go; a channel left None is not configured."""

    teams: TeamsChannel | None = None
    email: EmailChannel | None = None


class PoolMonitor:
    def __init__(
        self,
        *,
        directory: Directory,
        agents: AgentStates,
        log: PoolCallLog,
        alarms: AlarmStore,
        checks: PoolChecks,
        channels: Channels,
        refresh_seconds: int = 5,
    ) -> None:
        self.directory, self.agents, self.log, self.alarms = directory, agents, log, alarms
        self.checks, self.channels, self.refresh_seconds = checks, channels, refresh_seconds

    # ------------------------------------------------------------------ the call log

    def call_changed(self, before: Call | None, after: Call, revision: int) -> None:
        """After a call's write: its log row follows when what the tab shows changed, and the
        pool's alarms are checked when its phase or outcome changed, if the pool is watched
        (an alarm set or one to clear; a pool that becomes watched is checked at once by
        `set_thresholds`, and every watched pool by the timer)."""
        entry = entry_of(after)
        old = entry_of(before) if before else None
        if entry is None or entry == old:
            return
        self.log.record(entry, revision)
        # Only what an alarm looks at: a caller joining or leaving the waiting ones (queue
        # length, longest wait) and the outcome (abandon rate). Ringing is still waiting;
        # the timer checks the rest (the wait growing, nobody serving).
        changed = old is None or old.waiting != entry.waiting or old.outcome != entry.outcome
        if changed and self.alarms.watched(entry.pool_id):
            self.checks.request(entry.pool_id)

    # ------------------------------------------------------------------ reads

    def calls(self, pool_id: str, now: datetime, limit: int) -> PoolCalls:
        """The service calls tab (§9): ongoing and recent calls with wait, agent and outcome."""
        pool = self._pool(pool_id)
        entries = self.log.recent(pool.id, now - LOG_WINDOW, MAX_LOG_READ)
        ongoing = [e for e in entries if e.ended_at is None]
        ended = [e for e in entries if e.ended_at is not None][:limit]
        return PoolCalls(
            pool_id=pool.id,
            name=pool.name,
            ongoing=tuple(self._call_view(e, now) for e in ongoing),
            recent=tuple(self._call_view(e, now) for e in ended),
        )

    def wallboard(self, now: datetime) -> Wallboard:
        """Every pool's §9 row with its raised alarms: one agent-state read for all members,
        one log query and one alarm query (thresholds and state) per pool."""
        states = self._states(self.directory.all_pools())
        rows = []
        for pool in self.directory.all_pools():
            status = self.status(pool, states, now)
            thresholds, state, _ = self.alarms.current(pool.id)
            rows.append(
                WallboardPool(
                    pool_id=pool.id,
                    name=pool.name,
                    waiting=status.waiting,
                    longest_wait_seconds=status.longest_wait_seconds,
                    serving=status.serving,
                    free=status.free,
                    answered_today=status.answered_today,
                    abandoned_today=status.abandoned_today,
                    abandon_rate_percent=status.abandon_rate_percent,
                    alarms=_active(state, thresholds, status),
                )
            )
        return Wallboard(at=now, refresh_seconds=self.refresh_seconds, pools=tuple(rows))

    def status(self, pool: ServicePool, states: dict[str, AgentState], now: datetime) -> PoolStatus:
        mine = [states[m] for m in pool.members if m in states]
        serving = [
            s
            for s in mine
            if s.active_in(pool.id) and takes_pool_calls(effective(s.availability, now))
        ]
        return status_of(
            pool.id,
            pool.name,
            self.log.recent(pool.id, now - LOG_WINDOW, MAX_LOG_READ),
            serving=len(serving),
            free=sum(1 for s in serving if not s.busy_call_id),
            day_start=datetime.combine(now.date(), time(0), tzinfo=now.tzinfo),
            now=now,
        )

    # ------------------------------------------------------------------ thresholds

    def settings(self, pool_id: str, now: datetime) -> AlarmSettings:
        pool = self._pool(pool_id)
        thresholds, by, at = self.alarms.thresholds(pool.id)
        state, _ = self.alarms.state(pool.id)
        status = self.status(pool, self._states((pool,)), now) if state.active else None
        return _settings(pool, thresholds, by, at, state, status)

    def set_thresholds(
        self, pool_id: str, thresholds: AlarmThresholds, by: str, now: datetime
    ) -> AlarmSettings:
        """A supervisor sets the pool's thresholds; they are checked at once (a pool that
        becomes watched is checked now, not only by the next change or timer run), and the
        answer is drawn from that check's reads."""
        pool = self._pool(pool_id)
        self.alarms.set_thresholds(pool.id, thresholds, by, now)
        current = self.alarms.current(pool.id)
        state, status = current[1], None
        if watched(*current[:2]):
            _, state, status = self._evaluate(pool, self._states((pool,)), now, current)
        return _settings(pool, current[0], by, now, state, status)

    # ------------------------------------------------------------------ alarms

    def check_all(self, now: datetime) -> int:
        """The timer: every pool's alarms; the number of events raised or cleared."""
        pools = self.directory.all_pools()
        current = {p.id: self.alarms.current(p.id) for p in pools}
        pools = tuple(p for p in pools if watched(*current[p.id][:2]))
        states = self._states(pools) if pools else {}
        return sum(len(self._evaluate(pool, states, now, current[pool.id])[0]) for pool in pools)

    def check(self, pool_id: str, now: datetime) -> tuple[AlarmEvent, ...]:
        """Check one pool now (after a change): raise what newly holds, clear what no longer
        does. Only the check whose state write wins notifies, so concurrent checks of one
        condition notify once. A pool with no alarm set and none to clear costs one read."""
        current = self.alarms.current(pool_id)
        if not watched(*current[:2]):
            return ()  # no alarm set, none to clear: no figures needed
        pool = self.directory.pool(pool_id)
        if pool is None:
            return ()  # a pool removed since the message was sent
        return self._evaluate(pool, self._states((pool,)), now, current)[0]

    def _evaluate(
        self,
        pool: ServicePool,
        states: dict[str, AgentState],
        now: datetime,
        current: tuple[AlarmThresholds, AlarmState, str | None],
    ) -> tuple[tuple[AlarmEvent, ...], AlarmState, PoolStatus]:
        """The check: the events this check raised or cleared (it won the state write), the
        alarm state it leaves and the figures it was decided on."""
        thresholds, state, etag = current
        status = self.status(pool, states, now)
        now_breached = breached(thresholds, status)
        for attempt in range(SAVE_ATTEMPTS):
            if attempt:
                state, etag = self.alarms.state(pool.id)
            new, events = transition(state, now_breached, pool.id, now)
            if not events:
                # Left by a delivery that failed (not one another check is doing right now).
                stale = {e.id for e in state.outbox if e.at <= now - RETRY_AFTER}
                if stale:
                    self._deliver(pool, thresholds, status, stale, (state, etag))
                return (), state, status
            written = self.alarms.save_state(pool.id, new, etag)
            if written is not None:
                self._deliver(pool, thresholds, status, {e.id for e in events}, (new, written))
                return events, new, status
            # Another check wrote first: read its state and decide again.
        log.warning("pool %s: the alarm state kept changing; next check decides", pool.id)
        return (), state, status

    def _deliver(
        self,
        pool: ServicePool,
        thresholds: AlarmThresholds,
        status: PoolStatus,
        ids: set[str],
        known: tuple[AlarmState, str | None],
    ) -> None:
        """Send these outbox events to every channel; each delivered event leaves the outbox
        (ETag-guarded, from the state the check read or wrote: no read unless another check
        wrote since), one that failed stays for a later check (after RETRY_AFTER)."""
        state, etag = known
        if not etag:
            state, etag = self.alarms.state(pool.id)
        delivered: list[AlarmEvent] = []
        for event in (e for e in state.outbox if e.id in ids):
            try:
                self._notify(pool, event, thresholds, status)
            except DependencyUnavailable as exc:
                log.warning("pool %s: alarm %s not delivered: %s", pool.id, event.id, exc)
                break  # in order: a later event never overtakes an earlier one
            delivered.append(event)
        if not delivered:
            return
        for _ in range(SAVE_ATTEMPTS):
            kept = tuple(e for e in state.outbox if e not in delivered)
            if self.alarms.save_state(pool.id, replace(state, outbox=kept), etag) is not None:
                return
            state, etag = self.alarms.state(pool.id)

    def _notify(
        self,
        pool: ServicePool,
        event: AlarmEvent,
        thresholds: AlarmThresholds,
        status: PoolStatus,
    ) -> None:
        raised = event.change is Change.RAISED
        name = DESCRIPTIONS[event.kind]
        title = f"{pool.name}: {name} alarm {'raised' if raised else 'cleared'}"
        condition = (
            describe(event.kind, thresholds, status) if raised else "back within its threshold"
        )
        facts = [
            ("Pool", pool.name),
            ("Alarm", name),
            ("Condition", condition),
            ("Waiting", str(status.waiting)),
            ("Longest wait", f"{status.longest_wait_seconds} s"),
            ("Serving / free", f"{status.serving} / {status.free}"),
            ("At", event.at.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ]
        # Teams first: it has no idempotency key, e-mail has (the event id), so a retry after
        # a failed e-mail repeats at most the Teams post.
        if self.channels.teams is not None:
            self.channels.teams.post(title, facts, raised)
        if self.channels.email is not None:
            text = "\n".join(f"{k}: {v}" for k, v in facts)
            self.channels.email.send(event.id, title, text)

    # ------------------------------------------------------------------ helpers

    def _pool(self, pool_id: str) -> ServicePool:
        pool = self.directory.pool(pool_id)
        if pool is None:
            raise NotFound(f"no service pool {pool_id}")
        return pool

    def _states(self, pools: tuple[ServicePool, ...]) -> dict[str, AgentState]:
        return self.agents.states(tuple(sorted({m for p in pools for m in p.members})))

    def _call_view(self, entry: PoolCallEntry, now: datetime) -> PoolCallView:
        agent = self.directory.agent(entry.agent_id) if entry.agent_id else None
        return PoolCallView(
            call_id=entry.call_id,
            customer_number=entry.customer_number,
            state=entry.phase,
            arrived_at=entry.arrived_at,
            wait_seconds=entry.wait_seconds(now),
            answered_at=entry.answered_at,
            ended_at=entry.ended_at,
            agent_id=entry.agent_id,
            agent_name=agent.name if agent else None,
            outcome=entry.outcome,
        )


def _settings(
    pool: ServicePool,
    thresholds: AlarmThresholds,
    by: str | None,
    at: datetime | None,
    state: AlarmState,
    status: PoolStatus | None,
) -> AlarmSettings:
    return AlarmSettings(
        pool_id=pool.id,
        queue_length=thresholds.queue_length,
        max_wait_seconds=thresholds.max_wait_seconds,
        nobody_serving=thresholds.nobody_serving,
        abandon_rate_percent=thresholds.abandon_rate_percent,
        abandon_min_calls=thresholds.abandon_min_calls,
        updated_by=by,
        updated_at=at,
        active=_active(state, thresholds, status) if status is not None else (),
    )


def _active(
    state: AlarmState, thresholds: AlarmThresholds, status: PoolStatus
) -> tuple[ActiveAlarm, ...]:
    return tuple(
        ActiveAlarm(kind=kind, since=since, text=describe(kind, thresholds, status))
        for kind, since in sorted(state.active.items())
        if isinstance(kind, AlarmKind)
    )
