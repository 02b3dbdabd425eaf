"""A pool's opening hours, exceptions (holidays, one-off closures) and what a caller gets when
the pool is closed (§7 2.3 3; docs/pools.md). Pure: the time is passed in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.domain.prompts import PROMPT_ID

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class Then(StrEnum):
    """What happens to a caller the pool does not take."""

    HANG_UP = "hangup"  # after the announcement
    POOL = "pool"  # on to another pool's queue
    NUMBER = "number"  # forwarded to a phone number
    CALLBACK = "callback"  # offered a callback request (the pool's callback list)
    # Offered a callback that keeps the caller's place in the queue: a member calls back when
    # the request reaches the front (overflow.maxWaitSeconds only; docs/pools.md).
    QUEUED_CALLBACK = "queuedCallback"


@dataclass(frozen=True)
class PoolAction:
    then: Then
    target: str | None = None  # the pool id or the E.164 number
    announcement: str | None = None  # text ACS reads out (text to speech)
    prompt: str | None = None  # an uploaded prompt of the pool, played instead of the text

    @property
    def announces(self) -> bool:
        return bool(self.announcement or self.prompt)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"then": self.then.value}
        if self.target:
            data["target"] = self.target
        if self.announcement:
            data["announcement"] = self.announcement
        if self.prompt:
            data["prompt"] = self.prompt
        return data


Ranges = tuple[tuple[time, time], ...]


@dataclass(frozen=True)
class ScheduleException:
    """A day the weekly hours do not hold: a holiday (no hours) or shorter hours."""

    day: date
    name: str
    hours: Ranges
    action: PoolAction


@dataclass(frozen=True)
class Schedule:
    time_zone: str = "UTC"
    weekly: tuple[tuple[str, Ranges], ...] | None = None  # None: always open
    closed: PoolAction = PoolAction(Then.HANG_UP)
    exceptions: tuple[ScheduleException, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"timeZone": self.time_zone}
        if self.weekly is not None:
            data["hours"] = {d: _ranges_json(r) for d, r in self.weekly}
        if self.weekly is not None or self.exceptions:
            data["closed"] = self.closed.to_json()
        if self.exceptions:
            data["exceptions"] = [
                {
                    "date": e.day.isoformat(),
                    "name": e.name,
                    "hours": _ranges_json(e.hours),
                    **e.action.to_json(),
                }
                for e in self.exceptions
            ]
        return data


@dataclass(frozen=True)
class Closure:
    """The pool is closed at this moment: why (the exception's name, or "hours") and what to
    do with the caller."""

    reason: str
    action: PoolAction


def _within(ranges: Ranges, at: time) -> bool:
    return any(start <= at < end or (end == time(0) and start <= at) for start, end in ranges)


def closure(schedule: Schedule, now: datetime) -> Closure | None:
    """None while the pool is open at `now`; else why it is closed and what the caller gets.
    Times are the pool's local times (its IANA zone, so summer time is followed)."""
    local = now.astimezone(ZoneInfo(schedule.time_zone))
    for exception in schedule.exceptions:
        if exception.day == local.date():
            if _within(exception.hours, local.time()):
                return None
            return Closure(exception.name or exception.day.isoformat(), exception.action)
    if schedule.weekly is None:
        return None
    today = dict(schedule.weekly).get(WEEKDAYS[local.weekday()], ())
    return None if _within(today, local.time()) else Closure("hours", schedule.closed)


# ---------------------------------------------------------------------- reading the JSON


def _ranges_json(ranges: Ranges) -> list[list[str]]:
    return [
        [s.strftime("%H:%M"), "24:00" if e == time(0) else e.strftime("%H:%M")] for s, e in ranges
    ]


def _clock(text: str) -> time:
    return time(0) if text == "24:00" else time.fromisoformat(text)


def _ranges(value: Any, where: str, problems: list[str]) -> Ranges:
    if not isinstance(value, list):
        problems.append(f'{where} must be a list of ["HH:MM", "HH:MM"] ranges')
        return ()
    out: list[tuple[time, time]] = []
    for i, pair in enumerate(value):
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(p, str) and _HHMM.match(p) for p in pair)
        ):
            problems.append(f'{where}[{i}] must be ["HH:MM", "HH:MM"]')
            continue
        start, end = _clock(pair[0]), _clock(pair[1])
        if end != time(0) and end <= start:
            problems.append(f"{where}[{i}] must end after it starts")
            continue
        out.append((start, end))
    return tuple(out)


def parse_action(
    value: Any, where: str, problems: list[str], *, announcement: bool = True
) -> PoolAction | None:
    """`{"then", "target", "announcement", "prompt"}`; None (with a problem) when wrong."""
    if not isinstance(value, dict):
        problems.append(f"{where} must be an object")
        return None
    try:
        then = Then(value.get("then", "hangup"))
    except ValueError:
        problems.append(f"{where}.then must be one of {[t.value for t in Then]}")
        return None
    target = value.get("target")
    if then is Then.POOL and not (isinstance(target, str) and _ID.match(target)):
        problems.append(f"{where}.target must be a pool id")
        return None
    if then is Then.NUMBER and not (isinstance(target, str) and _E164.match(target)):
        problems.append(f"{where}.target must be an E.164 number")
        return None
    text = value.get("announcement")
    if text is not None and (not isinstance(text, str) or len(text) > 1000):
        problems.append(f"{where}.announcement must be text of at most 1000 characters")
        text = None
    prompt = value.get("prompt")
    if prompt is not None and not (isinstance(prompt, str) and PROMPT_ID.match(prompt)):
        problems.append(f"{where}.prompt must be the id of one of the pool's prompts")
        prompt = None
    if not announcement and (text or prompt):
        problems.append(f"{where} takes no announcement")
    return PoolAction(
        then, target if then in (Then.POOL, Then.NUMBER) else None, text or None, prompt or None
    )


def parse_schedule(data: dict[str, Any], where: str, problems: list[str]) -> Schedule:
    zone = data.get("timeZone", "UTC")
    try:
        ZoneInfo(zone if isinstance(zone, str) and zone else "-")
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"{where}.timeZone must be an IANA time zone, e.g. Europe/Helsinki")
        zone = "UTC"
    weekly = None
    hours = data.get("hours")
    if hours is not None:
        if not isinstance(hours, dict) or not set(hours) <= set(WEEKDAYS):
            problems.append(f"{where}.hours must be an object keyed by {list(WEEKDAYS)}")
        else:
            weekly = tuple(
                (d, _ranges(hours[d], f"{where}.hours.{d}", problems))
                for d in WEEKDAYS
                if d in hours
            )
    closed = PoolAction(Then.HANG_UP)
    if data.get("closed") is not None:
        closed = parse_action(data["closed"], f"{where}.closed", problems) or closed
        _waiting_only(closed, f"{where}.closed", problems)
    exceptions: list[ScheduleException] = []
    raw = data.get("exceptions", [])
    if not isinstance(raw, list):
        problems.append(f"{where}.exceptions must be a list")
        raw = []
    for i, item in enumerate(raw):
        at = f"{where}.exceptions[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{at} must be an object")
            continue
        try:
            day = date.fromisoformat(str(item.get("date")))
        except ValueError:
            problems.append(f"{at}.date must be YYYY-MM-DD")
            continue
        action = parse_action(item, at, problems)
        _waiting_only(action, at, problems)
        name = item.get("name") or ""
        if not isinstance(name, str) or len(name) > 100:
            problems.append(f"{at}.name must be text of at most 100 characters")
            name = ""
        if action is not None:
            exceptions.append(
                ScheduleException(
                    day, name, _ranges(item.get("hours", []), f"{at}.hours", problems), action
                )
            )
    return Schedule(str(zone), weekly, closed, tuple(exceptions))


def _waiting_only(action: PoolAction | None, where: str, problems: list[str]) -> None:
    """A place in the queue is kept only for a caller who is in it (overflow.maxWaitSeconds)."""
    if action is not None and action.then is Then.QUEUED_CALLBACK:
        problems.append(f"{where}.then queuedCallback is only for overflow.maxWaitSeconds")
