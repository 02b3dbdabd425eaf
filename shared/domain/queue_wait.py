"""What a caller waiting in a pool's queue hears and gets while it waits (§7 2.3 3;
docs/pools.md): the position and estimated-wait announcements, and when a long wait overflows.
Pure: the time and the pool's recent calls are passed in."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the pool settings' parser imports this module at cold start: no call model
    from shared.domain.calls import Call
    from shared.domain.pool_monitoring import PoolCallEntry

MIN_EVERY_SECONDS, MAX_EVERY_SECONDS = 5, 3600
ESTIMATE_WINDOW = timedelta(hours=1)  # the recent calls the estimate learns from
ESTIMATE_CALLS = 50  # at most this many of them (one read of the pool call log)
MAX_POSITION = 100  # a caller further back hears "more than 100" (a read that stays bounded)


@dataclass(frozen=True)
class QueueAnnouncements:
    """`queueAnnouncements`: say the caller's position and/or the estimated wait on joining
    the queue, then every `every_seconds` while the caller waits."""

    position: bool = True
    estimated_wait: bool = True
    every_seconds: int = 60

    def to_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "estimatedWait": self.estimated_wait,
            "everySeconds": self.every_seconds,
        }


def parse_queue_announcements(
    value: Any, where: str, problems: list[str]
) -> QueueAnnouncements | None:
    if value is None:
        return None
    at = f"{where}.queueAnnouncements"
    if not isinstance(value, dict) or not set(value) <= {
        "position",
        "estimatedWait",
        "everySeconds",
    }:
        problems.append(f"{at} must be an object of position, estimatedWait and everySeconds")
        return None
    flags = {k: value.get(k, True) for k in ("position", "estimatedWait")}
    for key, flag in flags.items():
        if not isinstance(flag, bool):
            problems.append(f"{at}.{key} must be true or false")
            return None
    every = value.get("everySeconds", 60)
    if (
        not isinstance(every, int)
        or isinstance(every, bool)
        or not MIN_EVERY_SECONDS <= every <= MAX_EVERY_SECONDS
    ):
        problems.append(
            f"{at}.everySeconds must be a whole number from {MIN_EVERY_SECONDS} "
            f"to {MAX_EVERY_SECONDS}"
        )
        return None
    if not flags["position"] and not flags["estimatedWait"]:
        problems.append(f"{at} needs position and/or estimatedWait: true (or leave it out)")
        return None
    return QueueAnnouncements(flags["position"], flags["estimatedWait"], every)


def estimated_wait_seconds(position: int, recent: list[PoolCallEntry], now: datetime) -> int | None:
    """How long the caller at `position` (1: next) may still wait, from the pool's calls of the
    last hour: `position` x the average handle time / the agents who answered them (the agents
    working the queue). With no call handled yet, the average wait of the calls answered;
    with nothing answered at all, None (no estimate is said)."""
    since = now - ESTIMATE_WINDOW
    answered = [e for e in recent if e.answered_at is not None and e.answered_at >= since]
    handled = [e for e in answered if e.ended_at is not None and e.answered_at is not None]
    handle = [
        (e.ended_at - e.answered_at).total_seconds()
        for e in handled
        if e.ended_at and e.answered_at
    ]
    agents = len({e.agent_id for e in answered if e.agent_id}) or 1
    if handle:
        return max(0, round(position * (sum(handle) / len(handle)) / agents))
    waits = [(e.answered_at - e.arrived_at).total_seconds() for e in answered if e.answered_at]
    if waits:
        return max(0, round(sum(waits) / len(waits)))
    return None


def announcement_text(settings: QueueAnnouncements, position: int, wait_seconds: int | None) -> str:
    """What the caller hears, e.g. "You are number 3 in the queue. The estimated wait is about
    2 minutes." Minutes are rounded up; under a minute is "less than a minute"."""
    parts = []
    if settings.position:
        where = f"more than {MAX_POSITION}" if position > MAX_POSITION else f"number {position}"
        parts.append(f"You are {where} in the queue.")
    if settings.estimated_wait and wait_seconds is not None:
        if wait_seconds < 60:
            parts.append("The estimated wait is less than a minute.")
        else:
            minutes = math.ceil(wait_seconds / 60)
            unit = "minute" if minutes == 1 else "minutes"
            parts.append(f"The estimated wait is about {minutes} {unit}.")
    return " ".join(parts)


class WaitCheck(StrEnum):
    """What a due queue-wait check (an announcement, or the maximum wait) does now."""

    DONE = "done"  # the caller is no longer waiting: answered, gone, leaving a callback
    LATER = "later"  # busy right now (an agent rings, a prompt plays): look again shortly
    NOW = "now"  # still waiting in the queue: go ahead


def still_waiting(call: Call) -> WaitCheck:
    """Whether a pool caller is still waiting for an agent in the queue."""
    from shared.domain.calls import CallbackOffer

    if (
        call.ended
        or call.hangup_requested
        or call.answered
        or call.announce_then
        or call.overflowed in ("number", "hangup")  # sent on, or let go: gone from the queue
        or call.callback
        in (CallbackOffer.ACCEPTED, CallbackOffer.CAPTURED, CallbackOffer.CONFIRMED)
    ):
        return WaitCheck.DONE
    if call.app_connected_at is None or call.pending_offer is not None:
        return WaitCheck.LATER
    if call.callback is CallbackOffer.OFFERED:
        return WaitCheck.LATER  # the caller is choosing; do not talk over the question
    return WaitCheck.NOW
