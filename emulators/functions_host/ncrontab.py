"""NCRONTAB schedules (`sec min hour day month day-of-week`), evaluated as the host does."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_MONTH_NAMES = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_DAY_NAMES = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

# (name, lowest, highest, names) per field, seconds first.
_FIELDS: list[tuple[str, int, int, list[str]]] = [
    ("second", 0, 59, []),
    ("minute", 0, 59, []),
    ("hour", 0, 23, []),
    ("day", 1, 31, []),
    ("month", 1, 12, _MONTH_NAMES),
    ("day of week", 0, 6, _DAY_NAMES),
]

# NCrontab gives up looking for an occurrence this far ahead (e.g. 30 February never comes).
_SEARCH_YEARS = 30


class ScheduleError(ValueError):
    """The expression is not a valid NCRONTAB schedule."""


def _value(text: str, low: int, names: list[str], field: str, expr: str) -> int:
    upper = text.upper()
    if upper in names:
        return names.index(upper) + low
    if not text.isdigit():
        raise ScheduleError(f"Invalid schedule '{expr}': {text!r} is not a valid {field}")
    return int(text)


def _parse_field(text: str, field: tuple[str, int, int, list[str]], expr: str) -> frozenset[int]:
    name, low, high, names = field
    values: set[int] = set()
    for item in text.split(","):
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"Invalid schedule '{expr}': bad step {step_text!r} ({name})")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = (
                _value(first, low, names, name, expr),
                _value(last, low, names, name, expr),
            )
        else:
            start = _value(base, low, names, name, expr)
            # `a/n` means from a to the end of the range, every n (as NCrontab reads it).
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or start > end:
            raise ScheduleError(
                f"Invalid schedule '{expr}': {item!r} is outside {low}-{high} ({name})"
            )
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule; `next_after(t)` is the first occurrence strictly after t."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        parts = expression.split()
        if len(parts) == 5:
            # The host accepts five fields too (minute precision): seconds are then 0.
            parts = ["0", *parts]
        if len(parts) != 6:
            raise ScheduleError(
                f"Invalid schedule '{expression}': expected six fields "
                "(second minute hour day month day-of-week)"
            )
        fields = [_parse_field(p, f, expression) for p, f in zip(parts, _FIELDS, strict=True)]
        return cls(expression, *fields)

    def _day_matches(self, t: datetime) -> bool:
        # NCrontab requires BOTH day-of-month and day-of-week to match (classic cron ORs them).
        return t.day in self.days and (t.weekday() + 1) % 7 in self.days_of_week

    def next_after(self, t: datetime) -> datetime:
        t = t.replace(microsecond=0) + timedelta(seconds=1)
        limit = t.year + _SEARCH_YEARS
        while t.year <= limit:
            if t.month not in self.months:
                year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                t = t.replace(year=year, month=month, day=1, hour=0, minute=0, second=0)
            elif not self._day_matches(t):
                t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t = t.replace(second=0) + timedelta(minutes=1)
            elif t.second not in self.seconds:
                t += timedelta(seconds=1)
            else:
                return t
        raise ScheduleError(f"Schedule '{self.expression}' has no occurrence after {t:%Y-%m-%d}")

    def default_use_monitor(self, now: datetime) -> bool:
        """The host monitors a schedule by default unless it fires more than once a minute."""
        first = self.next_after(now)
        return self.next_after(first) - first >= timedelta(minutes=1)
