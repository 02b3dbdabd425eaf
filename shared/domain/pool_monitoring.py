"""Watching a service pool (§8, §9 2.4): each pool call as one log entry, the pool's live
figures drawn from those entries, and the alarms a supervisor's thresholds raise and clear."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from shared.domain.calls import Call, Outcome, Phase


@dataclass(frozen=True)
class PoolCallEntry:
    """One pool call as the service calls tab shows it (an index row per pool call)."""

    pool_id: str
    call_id: str
    arrived_at: datetime
    phase: Phase
    customer_number: str
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    agent_id: str | None = None
    outcome: Outcome | None = None

    @property
    def waiting(self) -> bool:
        """In the queue: not answered by anyone yet (ringing an agent counts), not ended."""
        return self.phase in (Phase.CONNECTING, Phase.WAITING, Phase.RINGING)

    def wait_seconds(self, now: datetime) -> int:
        """How long the caller waited (or has waited so far) for an agent."""
        until = self.answered_at or self.ended_at or now
        return max(0, round((until - self.arrived_at).total_seconds()))


def entry_of(call: Call) -> PoolCallEntry | None:
    """The log entry of a pool call; None for a call that is not a pool's."""
    if not call.pool_id:
        return None
    # The log keeps what supervisors act on: waiting (from arrival until answered, ringing an
    # agent included, as the alarms count it), connected, ended. The moment before the app's
    # leg is up and each offer ringing before the answer are no phases of their own here, so
    # neither writes a log row (the agent's panel shows them, from the call row).
    phase = call.phase
    if phase is Phase.CONNECTING or (phase is Phase.RINGING and not call.answered):
        phase = Phase.WAITING
    return PoolCallEntry(
        pool_id=call.pool_id,
        call_id=call.call_id,
        arrived_at=call.arrived_at,
        phase=phase,
        customer_number=call.customer_number,
        answered_at=call.first_answered_at,
        ended_at=call.ended_at,
        agent_id=call.talk_agent_id if call.answered else None,
        outcome=call.outcome,
    )


@dataclass(frozen=True)
class PoolStatus:
    """What a wall screen shows of a pool (§9 2.4) and what its alarms are checked against."""

    pool_id: str
    name: str
    waiting: int
    longest_wait_seconds: int
    serving: int
    free: int
    answered_today: int
    abandoned_today: int

    @property
    def abandon_rate_percent(self) -> int:
        """Abandoned of today's calls that ended answered or abandoned (0 with none)."""
        total = self.answered_today + self.abandoned_today
        return round(100 * self.abandoned_today / total) if total else 0


def status_of(
    pool_id: str,
    name: str,
    entries: list[PoolCallEntry],
    *,
    serving: int,
    free: int,
    day_start: datetime,
    now: datetime,
) -> PoolStatus:
    """The pool's figures from its recent log entries and its agents' counts."""
    waiting = [e for e in entries if e.waiting]
    today = [e for e in entries if e.ended_at is not None and e.ended_at >= day_start]
    return PoolStatus(
        pool_id=pool_id,
        name=name,
        waiting=len(waiting),
        longest_wait_seconds=max((e.wait_seconds(now) for e in waiting), default=0),
        serving=serving,
        free=free,
        answered_today=sum(1 for e in today if e.outcome is Outcome.ANSWERED),
        abandoned_today=sum(1 for e in today if e.outcome is Outcome.ABANDONED),
    )


# ---------------------------------------------------------------------------------- alarms


class AlarmKind(StrEnum):
    QUEUE_LENGTH = "queueLength"
    MAX_WAIT = "maxWait"
    NOBODY_SERVING = "nobodyServing"
    ABANDON_RATE = "abandonRate"


@dataclass(frozen=True)
class AlarmThresholds:
    """A pool's alarm thresholds (§8); None switches that alarm off."""

    queue_length: int | None = None  # raised at this many callers waiting, or more
    max_wait_seconds: int | None = None  # raised when the longest wait reaches this
    nobody_serving: bool = False  # raised while no agent serves the pool
    abandon_rate_percent: int | None = None  # raised at this share of today's calls abandoned
    abandon_min_calls: int = 10  # ... once today has at least this many answered + abandoned

    @property
    def any(self) -> bool:
        return (
            self.queue_length is not None
            or self.max_wait_seconds is not None
            or self.nobody_serving
            or self.abandon_rate_percent is not None
        )


def breached(thresholds: AlarmThresholds, status: PoolStatus) -> frozenset[AlarmKind]:
    """The alarms whose condition holds for the pool now."""
    out: set[AlarmKind] = set()
    if thresholds.queue_length is not None and status.waiting >= thresholds.queue_length:
        out.add(AlarmKind.QUEUE_LENGTH)
    if (
        thresholds.max_wait_seconds is not None
        and status.waiting
        and status.longest_wait_seconds >= thresholds.max_wait_seconds
    ):
        out.add(AlarmKind.MAX_WAIT)
    if thresholds.nobody_serving and status.serving == 0:
        out.add(AlarmKind.NOBODY_SERVING)
    finished = status.answered_today + status.abandoned_today
    if (
        thresholds.abandon_rate_percent is not None
        and finished >= thresholds.abandon_min_calls
        and status.abandon_rate_percent >= thresholds.abandon_rate_percent
    ):
        out.add(AlarmKind.ABANDON_RATE)
    return frozenset(out)


class Change(StrEnum):
    RAISED = "raised"
    CLEARED = "cleared"


@dataclass(frozen=True)
class AlarmEvent:
    """One alarm raised or cleared: what is notified, once per channel."""

    pool_id: str
    kind: AlarmKind
    change: Change
    at: datetime
    serial: int  # the pool's transition count: with the kind and change, the event's identity

    @property
    def id(self) -> str:
        return f"{self.pool_id}:{self.serial}:{self.kind.value}:{self.change.value}"


@dataclass(frozen=True)
class AlarmState:
    """Which alarms of a pool are raised, since when, and the events not yet delivered."""

    active: dict[AlarmKind, datetime]
    serial: int = 0
    outbox: tuple[AlarmEvent, ...] = ()


def transition(
    state: AlarmState, now_breached: frozenset[AlarmKind], pool_id: str, now: datetime
) -> tuple[AlarmState, tuple[AlarmEvent, ...]]:
    """Raise what newly holds, clear what no longer holds; nothing while nothing changes, so
    an alarm is raised once and cleared once however often it is checked."""
    raised = sorted(now_breached - state.active.keys())
    cleared = sorted(state.active.keys() - now_breached)
    if not raised and not cleared:
        return state, ()
    serial = state.serial + 1
    events = tuple(AlarmEvent(pool_id, k, Change.RAISED, now, serial) for k in raised) + tuple(
        AlarmEvent(pool_id, k, Change.CLEARED, now, serial) for k in cleared
    )
    active = {k: t for k, t in state.active.items() if k in now_breached}
    active.update({k: now for k in raised})
    return AlarmState(active, serial, state.outbox + events), events


def watched(thresholds: AlarmThresholds, state: AlarmState) -> bool:
    """A pool whose changes need an alarm check: an alarm is set, or one raised (or an event
    undelivered) is left to clear. Any other pool's check could only find nothing to do."""
    return thresholds.any or bool(state.active) or bool(state.outbox)


DESCRIPTIONS = {
    AlarmKind.QUEUE_LENGTH: "Queue length",
    AlarmKind.MAX_WAIT: "Longest wait",
    AlarmKind.NOBODY_SERVING: "Nobody serving",
    AlarmKind.ABANDON_RATE: "Abandon rate",
}


def describe(kind: AlarmKind, thresholds: AlarmThresholds, status: PoolStatus) -> str:
    """The alarm's condition in words, with the figure and its threshold."""
    if kind is AlarmKind.QUEUE_LENGTH:
        return f"{status.waiting} callers waiting (threshold {thresholds.queue_length})"
    if kind is AlarmKind.MAX_WAIT:
        return (
            f"the longest wait is {status.longest_wait_seconds} s "
            f"(threshold {thresholds.max_wait_seconds} s)"
        )
    if kind is AlarmKind.NOBODY_SERVING:
        return "no agent serves the pool"
    return (
        f"{status.abandon_rate_percent}% of today's calls abandoned "
        f"(threshold {thresholds.abandon_rate_percent}%)"
    )
