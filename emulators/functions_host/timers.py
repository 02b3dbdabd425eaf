"""Timer triggers: NCRONTAB schedules, monitoring (past due), run on startup, no overlap."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.functions.timer import TimerRequest

from .invoker import InvocationFailed, Invoker
from .loader import FunctionSpec, TimerTrigger

log = logging.getLogger("functions_host")

# What the real host writes for "never ran" (.NET's DateTime.MinValue).
_NEVER = "0001-01-01T00:00:00"


def utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime | None) -> str:
    return t.isoformat() if t else _NEVER


def _parse(text: Any) -> datetime | None:
    if not isinstance(text, str) or text.startswith("0001-01-01"):
        return None
    t = datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ScheduleStatus:
    """The monitor's record of a timer, as the host keeps it in storage: Last, Next, LastUpdated."""

    last: datetime | None
    next: datetime
    last_updated: datetime

    def to_dict(self) -> dict[str, str]:
        return {
            "Last": _iso(self.last),
            "Next": _iso(self.next),
            "LastUpdated": _iso(self.last_updated),
        }


class ScheduleStatusStore:
    """One small JSON file per timer: `<state-dir>/timers/<function>.json`."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / "timers"

    def path(self, function: str) -> Path:
        return self.directory / f"{function}.json"

    def read(self, function: str) -> ScheduleStatus | None:
        try:
            raw = json.loads(self.path(function).read_text(encoding="utf-8"))
            nxt = _parse(raw["Next"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("Ignoring unreadable schedule status for '%s': %s", function, exc)
            return None
        if nxt is None:
            return None
        return ScheduleStatus(_parse(raw.get("Last")), nxt, _parse(raw.get("LastUpdated")) or nxt)

    def write(self, function: str, status: ScheduleStatus) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path(function)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(status.to_dict(), indent=2), encoding="utf-8")
        os.replace(tmp, target)  # atomic: a crash never leaves half a status


class TimerRunner:
    """One timer function: a thread that waits for each occurrence and invokes the function."""

    def __init__(
        self,
        spec: FunctionSpec,
        invoker: Invoker,
        store: ScheduleStatusStore,
        stop: threading.Event,
    ) -> None:
        assert isinstance(spec.trigger, TimerTrigger)
        self.spec = spec
        self.trigger: TimerTrigger = spec.trigger
        self._invoker = invoker
        self._store = store
        self._stop = stop
        # The real host holds a singleton lock per timer: an invocation never overlaps itself.
        self._lock = threading.Lock()
        self._status: ScheduleStatus | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"timer-{spec.name}")

    def next_occurrence(self) -> datetime:
        return self.trigger.schedule.next_after(utcnow())

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def invoke_now(self, reason: str) -> None:
        """A manual run (admin API): never past due, and the monitor's status is left as it is."""
        threading.Thread(
            target=self._fire,
            args=(None, False, reason),
            daemon=True,
            name=f"timer-{self.spec.name}-manual",
        ).start()

    def _startup(self) -> None:
        now = utcnow()
        past_due_since: datetime | None = None
        if self.trigger.use_monitor:
            status = self._store.read(self.spec.name)
            if status is None:
                # First start: record the next occurrence, so a later start can see a miss.
                status = ScheduleStatus(None, self.trigger.schedule.next_after(now), now)
                self._store.write(self.spec.name, status)
            elif now > status.next:
                past_due_since = status.next
            self._status = status
        if past_due_since is not None:
            log.info(
                "Timer '%s' is past due: the occurrence at %s was missed",
                self.spec.name,
                _iso(past_due_since),
            )
            self._fire(past_due_since, True, f"Timer fired at {_iso(now)} (past due)")
        elif self.trigger.run_on_startup:
            self._fire(now, False, f"Timer fired at {_iso(now)} (run on startup)")

    def _run(self) -> None:
        try:
            self._schedule_loop()
        except Exception:  # a bug here must be visible, not a timer that silently stops
            log.exception("Timer '%s' stopped unexpectedly", self.spec.name)

    def _schedule_loop(self) -> None:
        self._startup()
        due = self.next_occurrence()
        while not self._stop.is_set():
            remaining = (due - utcnow()).total_seconds()
            if remaining > 0:
                self._stop.wait(min(remaining, 1.0))
                continue
            self._fire(due, False, f"Timer fired at {_iso(utcnow())}")
            # From now, not from `due`: a run longer than the interval skips occurrences.
            due = self.trigger.schedule.next_after(max(utcnow(), due))

    def _fire(self, occurrence: datetime | None, past_due: bool, reason: str) -> None:
        with self._lock:
            status = self._status.to_dict() if self.trigger.use_monitor and self._status else None
            request = TimerRequest(
                past_due=past_due, schedule_status=status, schedule={"AdjustForDST": True}
            )
            with contextlib.suppress(InvocationFailed):  # logged by the invoker; schedule goes on
                self._invoker.invoke(self.spec, request, reason)
            if self.trigger.use_monitor and occurrence is not None:
                now = utcnow()
                self._status = ScheduleStatus(
                    occurrence, self.trigger.schedule.next_after(now), now
                )
                self._store.write(self.spec.name, self._status)
