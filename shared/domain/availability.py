"""Availability (§1.2.1): statuses of three types, Lunch as a timed Offwork, and their effects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class AvailabilityType(StrEnum):
    OFFWORK = "Offwork"  # no pool calls; direct calls ring; outbound allowed
    AVAILABLE = "Available"  # pool and direct calls; outbound allowed
    DND = "DND"  # no pool calls; direct calls go to the forwarding target or get busy


LUNCH = "Lunch"
BUILT_IN: dict[str, AvailabilityType] = {
    "Available": AvailabilityType.AVAILABLE,
    "Offwork": AvailabilityType.OFFWORK,
    "DND": AvailabilityType.DND,
    LUNCH: AvailabilityType.OFFWORK,
}


@dataclass(frozen=True)
class Availability:
    """A status; a timed one (Lunch) returns to `then_status` at `until`."""

    status: str
    type: AvailabilityType
    until: datetime | None = None
    then_status: str | None = None
    then_type: AvailabilityType | None = None


AVAILABLE = Availability("Available", AvailabilityType.AVAILABLE)


@dataclass(frozen=True)
class StatusCatalog:
    """The statuses an agent can choose: the built-in ones plus the customer's own."""

    statuses: dict[str, AvailabilityType] = field(default_factory=lambda: dict(BUILT_IN))
    lunch_minutes: int = 30

    def type_of(self, status: str) -> AvailabilityType | None:
        return self.statuses.get(status)


def effective(current: Availability, now: datetime) -> Availability:
    """The status in force at `now`: an expired timed status has returned to the one before."""
    if current.until is not None and now >= current.until and current.then_status:
        return Availability(current.then_status, current.then_type or AvailabilityType.OFFWORK)
    return current


def choose(
    current: Availability, status: str, catalog: StatusCatalog, now: datetime
) -> Availability:
    """The agent picks `status`. Lunch is Offwork for lunch_minutes, then back to the status
    in force before it. Raises ValueError for a status the catalog does not know."""
    kind = catalog.type_of(status)
    if kind is None:
        raise ValueError(f"unknown status {status!r}; one of {sorted(catalog.statuses)}")
    if status != LUNCH:
        return Availability(status, kind)
    before = effective(current, now)
    if before.status == LUNCH:  # lunch again: keep what it returns to
        before = Availability(
            before.then_status or "Available", before.then_type or AvailabilityType.AVAILABLE
        )
    return Availability(
        LUNCH,
        kind,
        until=now + timedelta(minutes=catalog.lunch_minutes),
        then_status=before.status,
        then_type=before.type,
    )


def takes_pool_calls(availability: Availability) -> bool:
    return availability.type is AvailabilityType.AVAILABLE


class DirectCallAction(StrEnum):
    RING = "ring"
    FORWARD = "forward"
    BUSY = "busy"


def direct_call_action(availability: Availability, forward_to: str | None) -> DirectCallAction:
    """§1.2.1: direct calls ring when Available or Offwork; under DND they are forwarded to
    the agent's forwarding target, or refused as busy when there is none."""
    if availability.type is not AvailabilityType.DND:
        return DirectCallAction.RING
    return DirectCallAction.FORWARD if forward_to else DirectCallAction.BUSY


@dataclass(frozen=True)
class AgentState:
    """An agent's runtime state: the call it is busy with, its status, its pool switches."""

    agent_id: str
    busy_call_id: str | None = None
    availability: Availability = AVAILABLE
    inactive_pools: frozenset[str] = frozenset()
    forward_to: str | None = None  # set by the agent; the AGENTS setting gives the default
    latest_call_id: str | None = None
    wrap_until: datetime | None = None  # after-call work: no pool calls before this
    idle_since: datetime | None = None  # when it last became free (longest idle goes first)
    # The agent's endpoint: None rings the web phone; an E.164 number rings that mobile.
    mobile_number: str | None = None

    def active_in(self, pool_id: str) -> bool:
        return pool_id not in self.inactive_pools


def takes_call_from_pool(state: AgentState, pool_id: str, now: datetime) -> bool:
    """Free, out of after-call work, Available (at `now`) and active in the pool."""
    return (
        not state.busy_call_id
        and (state.wrap_until is None or state.wrap_until <= now)
        and state.active_in(pool_id)
        and takes_pool_calls(effective(state.availability, now))
    )
