"""Delayed enrichment against in-memory ports: what is written, when it waits, how it stops."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.repositories import QueueEnrichment
from shared.config import SETTINGS
from shared.domain.calls import Call, CallKind, Direction
from shared.domain.enrichment import (
    STATUS_MADE,
    STATUS_RECEIVED,
    ActivityUpdate,
    EnrichmentColumns,
    EnrichmentPolicy,
    EnrichmentState,
    Outcome,
    Status,
    WriteResult,
    claimed,
)
from shared.errors import DependencyUnavailable, InvalidInput
from shared.messages import EnrichmentMessage, enrichment_message
from shared.services.enrichment import (
    CLAIM_LEASE_SECONDS,
    ActivityEnrichment,
    EnrichmentOptions,
)
from tests.unit.fakes import FakeCalls

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
BASE = "https://phone.example"
POLICY = EnrichmentPolicy(base_delay_seconds=30, max_wait_seconds=600, complete_activity=True)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def answered_call(
    call_id: str = "call-1",
    *,
    kind: CallKind = CallKind.POOL,
    direction: Direction = Direction.INBOUND,
    record: bool = True,
) -> Call:
    """Arrived at T0, answered at +12 s, ended at +100 s, activity created, recording started."""
    return Call(
        call_id=call_id,
        direction=direction,
        kind=kind,
        customer_number="+358401234567",
        our_number="+358900100",
        arrived_at=T0,
        pool_id="sales" if kind is CallKind.POOL else None,
        server_call_id=f"server-{call_id}",
        first_answered_at=at(12.4),
        answered_by="anna",
        ended_at=at(100),
        activity_id=f"activity-{call_id}",
        record=record,
        recording_requested=record,
        recording_id=f"rec-{call_id}" if record else None,
    )


@dataclass
class FakeRecordings:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def arrive(self, server_call_id: str) -> None:
        self.rows.setdefault(server_call_id, []).append(
            {"content_location": f"https://acs.example/{server_call_id}", "received_at": T0}
        )

    def for_server_call(self, server_call_id: str) -> list[dict[str, Any]]:
        return list(self.rows.get(server_call_id, []))


@dataclass
class FakeWriter:
    """Applies updates to in-memory activities; `closed`/`missing` ids answer as Dataverse does."""

    written: list[ActivityUpdate] = field(default_factory=list)
    closed: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    fail_with: Exception | None = None
    reads: int = 0
    carried: bool = False

    def enrich(self, update: ActivityUpdate) -> WriteResult:
        if self.fail_with is not None:
            raise self.fail_with
        if update.activity_id in self.missing:
            return WriteResult.MISSING
        if update.activity_id in self.closed:
            return WriteResult.CLOSED
        self.written.append(update)
        if update.complete_as is not None:
            self.closed.add(update.activity_id)
        return WriteResult.WRITTEN

    def carries(self, update: ActivityUpdate) -> bool:
        self.reads += 1
        return self.carried


@dataclass
class FakeProgress:
    rows: dict[str, EnrichmentState] = field(default_factory=dict)

    def get(self, call_id: str) -> EnrichmentState | None:
        return self.rows.get(call_id)

    def change(
        self, call_id: str, change: Callable[[EnrichmentState | None], EnrichmentState | None]
    ) -> tuple[EnrichmentState | None, bool]:
        current = self.rows.get(call_id)
        new = change(current)
        if new is None or new == current:
            return current, False
        self.rows[call_id] = new
        return new, True


@dataclass
class FakeRetries:
    sent: list[tuple[str, int, bool]] = field(default_factory=list)

    def schedule(self, call_id: str, *, delay_seconds: int, jitter: bool = True) -> None:
        self.sent.append((call_id, delay_seconds, jitter))


class Rig:
    def __init__(self, policy: EnrichmentPolicy = POLICY) -> None:
        self.calls, self.recordings = FakeCalls(), FakeRecordings()
        self.writer, self.progress, self.queue = FakeWriter(), FakeProgress(), FakeRetries()
        self.service = ActivityEnrichment(
            calls=self.calls,
            recordings=self.recordings,
            writer=self.writer,
            progress=self.progress,
            queue=self.queue,
            options=EnrichmentOptions(BASE, policy, max_dequeue_count=5),
        )
        self.n = 0

    def add(self, call: Call, *, recording: bool = True) -> Call:
        self.calls.add(call)
        if recording and call.server_call_id:
            self.recordings.arrive(call.server_call_id)
        return call

    def handle(
        self, call_id: str, now: datetime, *, message_id: str | None = None, dequeue: int = 1
    ) -> EnrichmentState | None:
        self.n += 1
        message = EnrichmentMessage(call_id, message_id or f"msg-{self.n}", dequeue)
        return self.service.handle(message, now)


# ---------------------------------------------------------------------- what is written


def test_a_recorded_pool_call_gets_link_metrics_and_completion_in_one_write() -> None:
    rig = Rig()
    call = rig.add(answered_call())

    state = rig.handle(call.call_id, at(130))

    assert rig.writer.written == [
        ActivityUpdate(
            activity_id="activity-call-1",
            recording_url=f"{BASE}/api/panel/recording.html?callId=call-1",
            call_arrived_at=T0,
            first_answered_at=at(12),  # to the second, as Dataverse keeps it
            wait_seconds=12,  # first answered - arrived
            complete_as=STATUS_RECEIVED,
        )
    ]
    assert state is not None and state.outcome is Outcome.ENRICHED
    assert (
        state.status is Status.DONE
        and state.recording_url == f"{BASE}/api/panel/recording.html?callId=call-1"
    )
    assert rig.queue.sent == []


def test_a_direct_call_gets_the_link_and_no_pool_metrics() -> None:
    rig = Rig()
    call = rig.add(answered_call(kind=CallKind.DIRECT))

    rig.handle(call.call_id, at(130))

    [update] = rig.writer.written
    assert update.recording_url == f"{BASE}/api/panel/recording.html?callId=call-1"
    assert (update.call_arrived_at, update.first_answered_at, update.wait_seconds) == (
        None,
        None,
        None,
    )


def test_an_outbound_call_is_completed_as_made() -> None:
    rig = Rig()
    call = rig.add(answered_call(kind=CallKind.OUTBOUND, direction=Direction.OUTBOUND))

    rig.handle(call.call_id, at(130))

    assert rig.writer.written[0].complete_as == STATUS_MADE


def test_with_completion_off_the_activity_is_left_open_and_an_empty_update_is_not_sent() -> None:
    rig = Rig(replace(POLICY, complete_activity=False))
    pool = rig.add(answered_call("pool"))
    direct = rig.add(answered_call("direct", kind=CallKind.DIRECT, record=False))

    rig.handle(pool.call_id, at(130))
    state = rig.handle(direct.call_id, at(130))

    assert [u.complete_as for u in rig.writer.written] == [None]
    assert state is not None and state.outcome is Outcome.NOTHING_TO_WRITE


def test_an_unanswered_call_has_no_activity_to_enrich() -> None:
    rig = Rig()
    call = rig.add(replace(answered_call(), first_answered_at=None, activity_id=None))

    state = rig.handle(call.call_id, at(130))

    assert state is not None and state.outcome is Outcome.NO_ACTIVITY
    assert rig.writer.written == [] and rig.queue.sent == []


# ---------------------------------------------------------------------- waiting


def test_a_late_recording_is_waited_for_with_a_growing_delay_then_linked() -> None:
    rig = Rig()
    call = rig.add(answered_call(), recording=False)  # ended at +100 s

    first = rig.handle(call.call_id, at(130))
    second = rig.handle(call.call_id, at(160))
    assert first is not None and first.status is Status.WAITING_FOR_RECORDING
    assert second is not None and second.attempts == 2
    # Each delay is as long as the time since the call ended: 30 s, then 60 s.
    assert rig.queue.sent == [("call-1", 30, False), ("call-1", 60, False)]
    assert rig.writer.written == []

    rig.recordings.arrive("server-call-1")
    done = rig.handle(call.call_id, at(220))
    assert done is not None and done.outcome is Outcome.ENRICHED and done.attempts == 3
    assert rig.writer.written[0].recording_url == f"{BASE}/api/panel/recording.html?callId=call-1"


def test_a_recording_that_never_comes_is_given_up_at_the_max_wait_and_metrics_are_written() -> None:
    rig = Rig()
    call = rig.add(answered_call(), recording=False)

    rig.handle(call.call_id, at(500))
    assert rig.queue.sent == [("call-1", 200, False)]  # capped at the deadline (+700 s)
    state = rig.handle(call.call_id, at(700))

    [update] = rig.writer.written
    assert update.recording_url is None and update.wait_seconds == 12
    assert update.complete_as == STATUS_RECEIVED
    assert state is not None and state.outcome is Outcome.ENRICHED_WITHOUT_RECORDING
    assert "not available 600 s after" in state.reason


def test_an_activity_not_created_yet_is_waited_for() -> None:
    rig = Rig()
    call = rig.add(replace(answered_call(), activity_id=None))

    state = rig.handle(call.call_id, at(130))

    assert state is not None and state.status is Status.WAITING_FOR_ACTIVITY
    assert rig.queue.sent == [("call-1", 30, False)] and rig.writer.written == []
    late = rig.handle(call.call_id, at(701))
    assert late is not None and late.outcome is Outcome.ACTIVITY_MISSING


def test_an_activity_dataverse_does_not_have_yet_is_retried_and_the_claim_let_go() -> None:
    rig = Rig()
    call = rig.add(answered_call())
    rig.writer.missing.add("activity-call-1")

    state = rig.handle(call.call_id, at(130))

    assert state is not None and state.status is Status.WAITING_FOR_ACTIVITY
    assert state.claimed_by is None and "404" in state.reason
    assert rig.queue.sent == [("call-1", 30, False)]
    rig.writer.missing.clear()
    assert (rig.handle(call.call_id, at(160)) or state).outcome is Outcome.ENRICHED


# ---------------------------------------------------------------------- closed, duplicates


def test_an_activity_the_agent_completed_first_is_recorded_not_retried() -> None:
    rig = Rig()
    call = rig.add(answered_call())
    rig.writer.closed.add("activity-call-1")

    state = rig.handle(call.call_id, at(130))

    assert state is not None and state.outcome is Outcome.ACTIVITY_CLOSED
    assert "nothing written" in state.reason
    assert rig.writer.written == [] and rig.queue.sent == [] and rig.writer.reads == 0


def test_the_same_message_twice_writes_once() -> None:
    rig = Rig()
    call = rig.add(answered_call())

    rig.handle(call.call_id, at(130), message_id="m")
    again = rig.handle(call.call_id, at(131), message_id="m")
    other = rig.handle(call.call_id, at(132), message_id="copy")

    assert len(rig.writer.written) == 1
    assert again is not None and other is not None and other.outcome is Outcome.ENRICHED


def test_a_duplicate_arriving_while_another_message_writes_does_not_write() -> None:
    rig = Rig()
    call = rig.add(answered_call())
    rig.progress.change(call.call_id, lambda s: claimed(s, call.call_id, "first", at(129), 300))

    state = rig.handle(call.call_id, at(130), message_id="second")

    assert rig.writer.written == []
    assert state is not None and state.claimed_by == "first" and not state.done


def test_a_claim_left_by_a_dead_process_is_taken_over_after_the_lease() -> None:
    rig = Rig()
    call = rig.add(answered_call())
    rig.progress.change(call.call_id, lambda s: claimed(s, call.call_id, "dead", at(100), 300))

    state = rig.handle(call.call_id, at(100 + CLAIM_LEASE_SECONDS), message_id="retry")

    assert len(rig.writer.written) == 1
    assert state is not None and state.outcome is Outcome.ENRICHED and state.writes == 2


def test_closed_after_an_unconfirmed_earlier_write_is_checked_before_blaming_the_agent() -> None:
    rig = Rig()
    call = rig.add(answered_call())
    # A process sent the PATCH and died before noting it: its message comes back.
    rig.progress.change(call.call_id, lambda s: claimed(s, call.call_id, "m", at(130), 300))
    rig.writer.closed.add("activity-call-1")
    rig.writer.carried = True

    state = rig.handle(call.call_id, at(131), message_id="m", dequeue=2)

    assert rig.writer.reads == 1
    assert state is not None and state.outcome is Outcome.ENRICHED
    assert state.reason == "written by an earlier attempt"


# ---------------------------------------------------------------------- failures


def test_a_failing_attempt_is_recorded_and_raised_and_the_last_one_says_poisoned() -> None:
    rig = Rig()
    call = rig.add(answered_call())
    rig.writer.fail_with = DependencyUnavailable("Dataverse is throttling or unavailable (429)")

    for dequeue in range(1, 6):
        with pytest.raises(DependencyUnavailable):
            rig.handle(call.call_id, at(130 + dequeue), message_id="m", dequeue=dequeue)
        state = rig.progress.get(call.call_id)
        assert state is not None and state.claimed_by is None and state.dequeue_count == dequeue
        expected = Status.POISONED if dequeue == 5 else Status.RETRYING
        assert state.status is expected

    assert state.reason.startswith("attempt 5 of 5 failed: DependencyUnavailable: Dataverse")
    assert state.reason.endswith("moved to the poison queue")
    assert not state.done  # a message replayed from the poison queue may still finish it
    rig.writer.fail_with = None
    replayed = rig.handle(call.call_id, at(300), message_id="replayed")
    assert replayed is not None and replayed.outcome is Outcome.ENRICHED


# ---------------------------------------------------------------------- messages, queue, config


def test_messages_that_are_not_a_call_id_are_refused() -> None:
    assert enrichment_message(b'{"callId": "c-1"}', "m", 3) == EnrichmentMessage("c-1", "m", 3)
    for body in (b"not json", b"[]", b"{}", b'{"callId": 7}', b'{"callId": ""}'):
        with pytest.raises(InvalidInput):
            enrichment_message(body, "m", 1)


@dataclass
class FakeSender:
    sent: list[tuple[str, Any, int]] = field(default_factory=list)

    def send(self, queue: str, body: Any, *, delay_seconds: int = 0) -> str:
        self.sent.append((queue, body, delay_seconds))
        return "id"


def test_the_first_schedule_spreads_by_the_jitter_and_a_requeue_is_exact() -> None:
    sender = FakeSender()
    picks = iter([-10, 10, -10])
    queue = QueueEnrichment(sender, jitter_seconds=10, randint=lambda a, b: next(picks))

    queue.schedule("c", delay_seconds=30)
    queue.schedule("c", delay_seconds=30)
    queue.schedule("c", delay_seconds=5)  # never a negative visibility delay
    queue.schedule("c", delay_seconds=45, jitter=False)

    assert [d for _, _, d in sender.sent] == [20, 40, 0, 45]
    assert sender.sent[0][:2] == ("enrichment", {"callId": "c"})


def test_the_jitter_stays_within_its_bounds() -> None:
    sender = FakeSender()
    queue = QueueEnrichment(sender, jitter_seconds=10)
    for _ in range(200):
        queue.schedule("c", delay_seconds=30)
    delays = {d for _, _, d in sender.sent}
    assert min(delays) >= 20 and max(delays) <= 40 and len(delays) > 5


def test_the_dequeue_count_setting_matches_host_json() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert SETTINGS["QUEUE_MAX_DEQUEUE_COUNT"].default == str(
        host["extensions"]["queues"]["maxDequeueCount"]
    )


def test_custom_columns_carry_the_publisher_prefix() -> None:
    columns = EnrichmentColumns("contoso_")
    assert (
        [c.logical_name for c in columns.definitions()]
        == [
            columns.recording_url,
            columns.call_arrived_at,
            columns.first_answered_at,
            columns.wait_time_seconds,
            columns.duration_seconds,
        ]
        == [
            "contoso_recordingurl",
            "contoso_callarrivedat",
            "contoso_firstansweredat",
            "contoso_waittimeseconds",
            "contoso_durationseconds",
        ]
    )
    kinds = [c.kind for c in columns.definitions()]
    assert kinds == ["String", "DateTime", "DateTime", "Integer", "Integer"]


def test_notes_saved_while_the_patch_was_on_its_way_are_written_after_it() -> None:
    """Out of order: the panel's save (and its own write) land before the enrichment's PATCH
    that carries the older notes; the enrichment sees the newer ones and writes them again."""
    rig = Rig(replace(POLICY, complete_activity=False))
    call = rig.add(answered_call())
    rig.calls.save_notes(call.call_id, "older")
    newer = "newer " * 500  # 3,000 characters: the whole text goes to the annotation
    enrich = rig.writer.enrich

    def save_lands_first(update: ActivityUpdate) -> WriteResult:
        if not rig.writer.written:
            rig.calls.save_notes(call.call_id, newer)
        return enrich(update)

    rig.writer.enrich = save_lands_first  # type: ignore[method-assign]
    rig.handle(call.call_id, at(130))

    first, last = rig.writer.written
    assert first.description == "older" and first.recording_url is not None
    assert last.annotation == newer and last.description is not None
    assert last.description.endswith("… (full notes attached)")
    assert last.recording_url is None  # only the notes again
