"""In-memory fakes of the ports, for unit tests of services."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from shared.domain.activity import DESCRIPTION_MAX, ActivityNotes, PhoneCallActivity
from shared.domain.availability import (
    AgentState,
    effective,
    takes_call_from_pool,
    takes_pool_calls,
)
from shared.domain.calls import Call
from shared.domain.customers import CustomerRef
from shared.domain.directory import ServicePool


@dataclass
class FakeTelephony:
    ops: list[tuple[str, ...]] = field(default_factory=list)
    voip_headers: list[dict[str, str]] = field(default_factory=list)  # of each add, in order
    played: list[str] = field(default_factory=list)  # the text of each play, in order

    answered: dict[str, str] = field(default_factory=dict)  # call id -> its connection id

    def answer(
        self, incoming_call_context: str, *, callback_url: str, operation_context: str
    ) -> str:
        from shared.errors import TelephonyError

        connection = f"conn-{incoming_call_context}"
        if connection in self.answered.values():  # as ACS: a context is answered once
            raise TelephonyError("answer", 400, "8523")
        self.ops.append(("answer", incoming_call_context, callback_url))
        call_id = callback_url.split("/callbacks/", 1)[-1].split("?", 1)[0]
        self.answered[call_id] = connection
        return connection

    def connection_of(self, call_id: str) -> str | None:
        """The connection id ACS's events of an answered call carry."""
        return self.answered.get(call_id)

    def reject(self, incoming_call_context: str, *, busy: bool = False) -> None:
        self.ops.append(("reject", incoming_call_context) + (("busy",) if busy else ()))

    def redirect(self, incoming_call_context: str, target: str) -> None:
        self.ops.append(("redirect", incoming_call_context, target))

    def add_participant(
        self,
        connection_id: str,
        target: str,
        *,
        invitation_timeout: int,
        operation_context: str,
        caller_id: str | None = None,
        voip_headers: Mapping[str, str] | None = None,
    ) -> str | None:
        self.ops.append(("add", target, operation_context, caller_id or ""))
        self.voip_headers.append(dict(voip_headers or {}))
        return f"inv-{len(self.ops)}"

    def cancel_add_participant(
        self, connection_id: str, invitation_id: str, *, operation_context: str
    ) -> None:
        self.ops.append(("cancel", invitation_id))

    def hang_up(self, connection_id: str) -> None:
        self.ops.append(("hangup", connection_id))

    def create_call(
        self,
        target: str,
        *,
        callback_url: str,
        operation_context: str,
        caller_id: str | None = None,
    ) -> str:
        self.ops.append(("create", target, caller_id or ""))
        return f"conn-out-{len(self.ops)}"

    def start_recording(self, server_call_id: str, *, state_callback_url: str) -> str:
        self.ops.append(("record", server_call_id))
        return f"rec-{server_call_id}"

    def hold(self, connection_id: str, target: str, *, music_url: str | None) -> None:
        self.ops.append(("hold", target))

    def unhold(self, connection_id: str, target: str) -> None:
        self.ops.append(("unhold", target))

    def mute(self, connection_id: str, target: str) -> None:
        self.ops.append(("mute", target))

    def send_dtmf(self, connection_id: str, tones: str, target: str) -> None:
        self.ops.append(("dtmf", tones, target))

    def transfer(
        self,
        connection_id: str,
        target: str,
        *,
        transferee: str,
        operation_context: str,
        caller_id: str | None = None,
    ) -> None:
        self.ops.append(("transfer", target, transferee, operation_context))

    def remove_participant(
        self, connection_id: str, target: str, *, operation_context: str
    ) -> None:
        self.ops.append(("remove", target, operation_context))

    def recognize_dtmf(
        self,
        connection_id: str,
        target: str,
        *,
        prompt: object,
        operation_context: str,
        silence_timeout: int,
    ) -> None:
        self.ops.append(("recognize", target, operation_context))

    def play(self, connection_id: str, prompt: object, *, operation_context: str) -> None:
        self.ops.append(("play", operation_context))
        self.played.append(str(getattr(prompt, "text", prompt)))

    def named(self, name: str) -> list[tuple[str, ...]]:
        return [op for op in self.ops if op[0] == name]


@dataclass
class FakeCrm:
    customers: dict[str, tuple[CustomerRef, ...]] = field(default_factory=dict)
    activities: dict[str, PhoneCallActivity] = field(default_factory=dict)
    creates: int = 0
    lookups: int = 0

    def find_customers(self, number: str) -> tuple[CustomerRef, ...]:
        self.lookups += 1
        return self.customers.get(number, ())

    def create_phone_call(self, activity: PhoneCallActivity) -> bool:
        self.creates += 1
        if activity.activity_id in self.activities:
            return False
        self.activities[activity.activity_id] = activity
        return True

    def search(self, query: object, *, top: int) -> list:
        return []

    def write_notes(self, activity_id: str, notes: ActivityNotes) -> bool:
        from dataclasses import replace

        self.activities[activity_id] = replace(
            self.activities[activity_id],
            description=notes.description,
            notes_annotation=notes.annotation,
        )
        return True

    def reassign_phone_call(self, activity: PhoneCallActivity) -> bool:
        if activity.activity_id not in self.activities:
            return False
        self.activities[activity.activity_id] = activity
        return True


@dataclass
class FakeCalls:
    rows: dict[str, Call] = field(default_factory=dict)
    events: set[tuple[str, str]] = field(default_factory=set)
    note_rows: dict[str, str] = field(default_factory=dict)
    attached: set[str] = field(default_factory=set)  # calls whose notes were once long

    def add(self, call: Call) -> bool:
        if call.call_id in self.rows:
            return False
        self.rows[call.call_id] = call
        return True

    def get(self, call_id: str) -> Call | None:
        return self.rows.get(call_id)

    def get_with_notes(self, call_id: str) -> Call | None:
        return self.rows.get(call_id)

    def guess(self, call_id: str) -> Call | None:
        return self.rows.get(call_id)

    def update(
        self, call_id: str, change: Callable[[Call], Call | None], *, event_id: str | None = None
    ) -> tuple[Call, bool] | None:
        current = self.rows.get(call_id)
        if current is None:
            return None
        if event_id is not None and (call_id, event_id) in self.events:
            return current, False
        new = change(current)
        if event_id is not None:
            self.events.add((call_id, event_id))
        if new is None or new == current:
            return current, False
        self.rows[call_id] = new
        return new, True

    def notes(self, call_id: str, part: int = 0) -> str:
        return self.note_rows.get(call_id if not part else f"{call_id}/{part}", "")

    def notes_parts(self, call_id: str, count: int) -> tuple[str, ...]:
        return tuple(self.notes(call_id, k) for k in range(max(1, count)))

    def notes_attached(self, call_id: str) -> bool:
        return call_id in self.attached

    def save_notes(
        self, call_id: str, notes: str, part: int = 0, *, attached: bool = False
    ) -> None:
        self.note_rows[call_id if not part else f"{call_id}/{part}"] = notes
        if attached or len(notes) > DESCRIPTION_MAX:
            self.attached.add(call_id)


@dataclass
class FakeAgents:
    rows: dict[str, AgentState] = field(default_factory=dict)
    history: dict[str, list[str]] = field(default_factory=dict)
    releases: list[tuple[str, int]] = field(default_factory=list)  # (agent, wrap-up seconds)

    @property
    def busy(self) -> dict[str, str]:
        return {a: s.busy_call_id for a, s in self.rows.items() if s.busy_call_id}

    def set_busy(self, agent_id: str, call_id: str | None) -> None:
        self.rows[agent_id] = replace(self.state(agent_id), busy_call_id=call_id)

    def state(self, agent_id: str) -> AgentState:
        return self.rows.get(agent_id) or AgentState(agent_id)

    def states(self, agent_ids: tuple[str, ...]) -> dict[str, AgentState]:
        return {a: self.state(a) for a in agent_ids}

    def update(
        self, agent_id: str, change: Callable[[AgentState], AgentState | None]
    ) -> AgentState:
        new = change(self.state(agent_id))
        if new is not None:
            self.rows[agent_id] = new
        return self.state(agent_id)

    def claims(self) -> list[tuple[str, str]]:
        return sorted(self.busy.items())

    def with_expired_status(self, now: datetime) -> list[str]:
        return [
            a
            for a, st in self.rows.items()
            if st.availability.until is not None and st.availability.until <= now
        ]

    def claim(self, agent_id: str, call_id: str) -> bool:
        busy = self.state(agent_id).busy_call_id
        if busy and busy != call_id:
            return False
        self.set_busy(agent_id, call_id)
        return True

    def release(self, agent_id: str, call_id: str, *, wrap_up_seconds: int = 0) -> bool:
        if self.state(agent_id).busy_call_id == call_id:
            self.set_busy(agent_id, None)
            self.releases.append((agent_id, wrap_up_seconds))
            return True
        return False

    def note_call(self, agent_id: str, call_id: str, at: datetime) -> None:
        self.rows[agent_id] = replace(self.state(agent_id), latest_call_id=call_id)
        calls = self.history.setdefault(agent_id, [])
        if call_id not in calls:
            calls.insert(0, call_id)

    def latest_call(self, agent_id: str) -> str | None:
        return self.state(agent_id).latest_call_id

    def recent_calls(self, agent_id: str, limit: int) -> list[str]:
        return self.history.get(agent_id, [])[:limit]


@dataclass
class FakeRoster:
    """The pool roster computed from the fake agents: best skill, then longest idle."""

    agents: FakeAgents
    pool_of: Callable[[str], ServicePool | None]  # the directory's, as the test changes it

    def _pool(self, pool_id: str) -> ServicePool:
        pool = self.pool_of(pool_id)
        assert pool is not None
        return pool

    def free_members(self, pool_id: str, now: datetime, limit: int) -> list[str]:
        pool = self._pool(pool_id)
        epoch = datetime(2000, 1, 1, tzinfo=UTC)
        free = [m for m in pool.members if takes_call_from_pool(self.agents.state(m), pool_id, now)]

        def order(m: str) -> tuple[int, datetime]:
            st = self.agents.state(m)
            return (-pool.skill(m), max(st.idle_since or epoch, st.wrap_until or epoch))

        return sorted(free, key=order)[:limit]

    def claimed_and_free(
        self, pool_id: str, call_id: str, now: datetime, limit: int
    ) -> tuple[list[str], list[str]]:
        claimed = [m for m in self._pool(pool_id).members if self.agents.busy.get(m) == call_id]
        return claimed, self.free_members(pool_id, now, limit)

    def anyone_serving(self, pool_id: str) -> bool:
        return any(
            self.agents.state(m).active_in(pool_id)
            and takes_pool_calls(effective(self.agents.state(m).availability, datetime.now(UTC)))
            for m in self._pool(pool_id).members
        )


@dataclass
class FakeWaiting:
    queues: dict[str, list[str]] = field(default_factory=dict)

    arrived: dict[str, datetime] = field(default_factory=dict)

    def add(self, pool_id: str, call: Call) -> None:
        queue = self.queues.setdefault(pool_id, [])
        if call.call_id not in queue:
            queue.append(call.call_id)
            self.arrived[call.call_id] = call.arrived_at
            queue.sort(key=lambda c: self.arrived[c])  # as the real keys: oldest first

    def remove(self, pool_id: str, call: Call) -> None:
        if call.call_id in self.queues.get(pool_id, []):
            self.queues[pool_id].remove(call.call_id)

    def oldest(self, pool_id: str, limit: int) -> list[str]:
        return self.queues.get(pool_id, [])[:limit]

    def arrivals(self, pool_id: str, limit: int) -> list[tuple[str, datetime]]:
        return [(c, self.arrived[c]) for c in self.oldest(pool_id, limit)]

    def position(self, pool_id: str, call: Call, limit: int) -> int:
        queue = self.queues.get(pool_id, [])
        ahead = queue.index(call.call_id) if call.call_id in queue else len(queue)
        return min(ahead, limit) + 1


@dataclass
class FakeEnrichment:
    scheduled: list[tuple[str, int]] = field(default_factory=list)

    def schedule(self, call_id: str, *, delay_seconds: int) -> None:
        self.scheduled.append((call_id, delay_seconds))


def event_id() -> str:
    return str(uuid.uuid4())
