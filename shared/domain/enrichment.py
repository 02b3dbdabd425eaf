"""Delayed enrichment of the Phone Call activity (§2.1.1 c, §3, §3.1): what to write, and when.

Pure: the call, the recording link (if one is known) and the current time go in; a decision
comes out. The service carries it out with one Dataverse PATCH at most.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.activity import activity_notes
from shared.domain.calls import Call, CallKind, Direction

STATUS_MADE, STATUS_RECEIVED = 2, 4  # phonecall statuscode of a completed (statecode 1) call
STATE_COMPLETED = 1
RECORDING_URL_MAX = 500


@dataclass(frozen=True)
class CustomColumn:
    """A custom column on `phonecall` the enrichment writes (created by scripts/dataverse_setup)."""

    schema_name: str  # e.g. new_RecordingUrl; the logical name is its lower case
    kind: str  # the metadata AttributeType: String, DateTime or Integer
    label: str
    description: str
    max_length: int | None = None

    @property
    def logical_name(self) -> str:
        return self.schema_name.lower()


@dataclass(frozen=True)
class EnrichmentColumns:
    """The custom column names, under the customer's publisher prefix (e.g. `new_`)."""

    prefix: str

    @property
    def recording_url(self) -> str:
        return f"{self.prefix}recordingurl"

    @property
    def call_arrived_at(self) -> str:
        return f"{self.prefix}callarrivedat"

    @property
    def first_answered_at(self) -> str:
        return f"{self.prefix}firstansweredat"

    @property
    def wait_time_seconds(self) -> str:
        return f"{self.prefix}waittimeseconds"

    @property
    def duration_seconds(self) -> str:
        """Not the enrichment's: written with the activity itself, beside
        `actualdurationminutes` (whole minutes, rounded up)."""
        return f"{self.prefix}durationseconds"

    def definitions(self) -> tuple[CustomColumn, ...]:
        p = self.prefix
        return (
            CustomColumn(
                f"{p}RecordingUrl",
                "String",
                "Call Recording",
                "Link to the call's recording (served by the phone backend; needs sign-in).",
                max_length=RECORDING_URL_MAX,
            ),
            CustomColumn(
                f"{p}CallArrivedAt",
                "DateTime",
                "Call Arrived At",
                "When the call reached the service pool's queue.",
            ),
            CustomColumn(
                f"{p}FirstAnsweredAt",
                "DateTime",
                "First Answered At",
                "When an agent first answered the pool call.",
            ),
            CustomColumn(
                f"{p}WaitTimeSeconds",
                "Integer",
                "Wait Time (until first answer)",
                "Seconds the caller waited in the pool's queue before the first answer.",
            ),
            CustomColumn(
                f"{p}DurationSeconds",
                "Integer",
                "Duration (seconds)",
                "The call's length in seconds, from answer to hang-up (Duration shows it in "
                "whole minutes, rounded up).",
            ),
        )


@dataclass(frozen=True)
class ActivityUpdate:
    """The one PATCH of the enrichment: link, pool metrics, completion."""

    activity_id: str
    recording_url: str | None = None
    call_arrived_at: datetime | None = None
    first_answered_at: datetime | None = None
    wait_seconds: int | None = None
    complete_as: int | None = None  # statuscode to complete with; None leaves the activity open
    # The notes as they are now: an edit saved while the activity was being created is not lost.
    description: str | None = None
    annotation: str | None = None  # the whole notes, when longer than the description
    remove_annotation: bool = False  # shorter now than an earlier version that had one

    @property
    def empty(self) -> bool:
        return (
            self.recording_url is None and self.call_arrived_at is None and self.complete_as is None
        )

    @property
    def has_metrics(self) -> bool:
        return self.call_arrived_at is not None


class Outcome(StrEnum):
    """How an enrichment ended (kept on the call's `enrichment` row)."""

    ENRICHED = "enriched"  # everything expected was written (the link when recorded)
    ENRICHED_WITHOUT_RECORDING = "enrichedWithoutRecording"  # the recording never came
    ACTIVITY_CLOSED = "activityClosed"  # the agent completed it first: nothing written
    ACTIVITY_MISSING = "activityMissing"  # the activity never appeared in Dataverse
    NO_ACTIVITY = "noActivity"  # the call has no activity (unanswered, agent unknown)
    NOTHING_TO_WRITE = "nothingToWrite"  # not recorded, not a pool call, left open


class Action(StrEnum):
    WRITE = "write"
    RETRY_LATER = "retryLater"
    FINISH = "finish"


class Waiting(StrEnum):
    ACTIVITY = "waitingForActivity"
    RECORDING = "waitingForRecording"


@dataclass(frozen=True)
class Plan:
    """What to do with one enrichment message."""

    action: Action
    reason: str
    update: ActivityUpdate | None = None  # WRITE
    outcome: Outcome | None = None  # FINISH, and the outcome of a successful WRITE
    retry_in_seconds: int = 0  # RETRY_LATER
    waiting: Waiting | None = None  # RETRY_LATER


@dataclass(frozen=True)
class EnrichmentPolicy:
    base_delay_seconds: int  # ENRICH_DELAY_SECONDS: the first (and smallest) re-queue delay
    max_wait_seconds: int  # ENRICH_MAX_WAIT_SECONDS after the call ended
    complete_activity: bool  # ENRICH_COMPLETE_ACTIVITY


def deadline(call: Call, policy: EnrichmentPolicy) -> datetime:
    """Until when a missing recording or activity is waited for."""
    return (call.ended_at or call.arrived_at) + timedelta(seconds=policy.max_wait_seconds)


def retry_delay(call: Call, now: datetime, policy: EnrichmentPolicy) -> int:
    """The next re-queue delay: as long as the time since the call ended (so it doubles),
    at least the base delay, and never past the deadline."""
    ended = call.ended_at or call.arrived_at
    elapsed = max(0.0, (now - ended).total_seconds())
    grown = max(float(policy.base_delay_seconds), elapsed, 1.0)
    left = (deadline(call, policy) - now).total_seconds()
    return max(1, math.ceil(min(grown, left)))


def completion_status(call: Call) -> int:
    return STATUS_MADE if call.direction is Direction.OUTBOUND else STATUS_RECEIVED


def plan_enrichment(
    call: Call,
    recording_url: str | None,
    now: datetime,
    policy: EnrichmentPolicy,
    notes: str | None = None,
    *,
    notes_attached: bool = False,
) -> Plan:
    """Decide one enrichment attempt. `recording_url` is our link, when the recording is in;
    `notes_attached`: longer notes were saved once, so the activity may have an annotation."""
    if not call.answered or call.activity_id == "":
        return Plan(
            Action.FINISH, "the call has no Phone Call activity", outcome=Outcome.NO_ACTIVITY
        )
    past_deadline = now >= deadline(call, policy)
    if call.activity_id is None:
        if past_deadline:
            return Plan(
                Action.FINISH,
                f"the activity was not created within {policy.max_wait_seconds} s",
                outcome=Outcome.ACTIVITY_MISSING,
            )
        return Plan(
            Action.RETRY_LATER,
            "the activity is not created yet",
            retry_in_seconds=retry_delay(call, now, policy),
            waiting=Waiting.ACTIVITY,
        )
    # Recording was asked of ACS: its file event is awaited (it may come after this message).
    recorded = call.record and (call.recording_requested or bool(call.recording_id))
    outcome, reason = Outcome.ENRICHED, "written"
    if recorded and recording_url is None:
        if not past_deadline:
            return Plan(
                Action.RETRY_LATER,
                "the recording is not available yet",
                retry_in_seconds=retry_delay(call, now, policy),
                waiting=Waiting.RECORDING,
            )
        outcome = Outcome.ENRICHED_WITHOUT_RECORDING
        reason = (
            f"the recording was not available {policy.max_wait_seconds} s after the call "
            "ended; written without the link"
        )
        if not call.recording_id:
            reason += " (ACS never confirmed that recording started)"
    elif call.record and not recorded:
        outcome = Outcome.ENRICHED_WITHOUT_RECORDING
        reason = "recording was on but never started (the call ended first); no link"
    pool = call.kind is CallKind.POOL
    # Dataverse keeps date-times to the second: the wait is what the two shown times say.
    arrived = call.arrived_at.replace(microsecond=0)
    answered = (call.first_answered_at or call.arrived_at).replace(microsecond=0)
    split = activity_notes(notes or "", attached_before=notes_attached)
    update = ActivityUpdate(
        activity_id=call.activity_id,
        recording_url=recording_url,
        call_arrived_at=arrived if pool else None,
        first_answered_at=answered if pool else None,
        wait_seconds=max(0, int((answered - arrived).total_seconds())) if pool else None,
        complete_as=completion_status(call) if policy.complete_activity else None,
        description=split.description if notes or split.remove_annotation else None,
        annotation=split.annotation,
        remove_annotation=split.remove_annotation,
    )
    if update.empty:
        return Plan(
            Action.FINISH,
            "not recorded, not a pool call, and the activity is left open",
            outcome=Outcome.NOTHING_TO_WRITE,
        )
    return Plan(Action.WRITE, reason, update=update, outcome=outcome)


def recording_link(public_base_url: str, call_id: str) -> str:
    """The link written to D365: the panel's recording page, which signs the viewer in and
    plays `GET /api/recordings/{callId}` with the viewer's token (a clicked link sends none)."""
    return f"{public_base_url.rstrip('/')}/api/panel/recording.html?callId={call_id}"


@dataclass(frozen=True)
class RecordingAudio:
    """Recording content as ACS returned it: the whole file (200) or the asked range (206)."""

    status: int
    content: bytes
    content_type: str
    content_range: str | None = None


# ---------------------------------------------------------------------- progress on the call


class Status(StrEnum):
    WAITING_FOR_ACTIVITY = "waitingForActivity"
    WAITING_FOR_RECORDING = "waitingForRecording"
    WRITING = "writing"  # a PATCH is being sent by the message holding the claim
    RETRYING = "retrying"  # an attempt failed; the host delivers the message again
    POISONED = "poisoned"  # the last allowed attempt failed: the message is in the poison queue
    DONE = "done"


class WriteResult(StrEnum):
    WRITTEN = "written"
    CLOSED = "closed"  # the activity is completed or canceled: Dataverse refused the update
    MISSING = "missing"  # no such activity (yet)


@dataclass(frozen=True)
class EnrichmentState:
    """The enrichment's progress, kept in the call's partition (docs/storage.md)."""

    call_id: str
    status: Status
    outcome: Outcome | None = None
    reason: str = ""
    attempts: int = 0  # messages handled (re-queues and host retries included)
    dequeue_count: int = 0  # of the last failed attempt
    writes: int = 0  # claims taken to send the PATCH (more than one: an earlier may have landed)
    claimed_by: str | None = None  # queue message id holding the right to PATCH
    claimed_at: datetime | None = None
    recording_url: str | None = None
    updated_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.outcome is not None


def _base(state: EnrichmentState | None, call_id: str) -> EnrichmentState:
    return state if state is not None else EnrichmentState(call_id, Status.WAITING_FOR_RECORDING)


def waiting(
    state: EnrichmentState | None,
    call_id: str,
    what: Waiting,
    reason: str,
    message_id: str,
    now: datetime,
) -> EnrichmentState | None:
    """A re-queue: nothing written yet; a claim this message held is let go."""
    if state is not None and state.done:
        return None
    current = _base(state, call_id)
    held = current.claimed_by == message_id
    return replace(
        current,
        status=Status(what.value),
        reason=reason,
        attempts=current.attempts + (0 if held else 1),
        claimed_by=None if held else current.claimed_by,
        claimed_at=None if held else current.claimed_at,
        updated_at=now,
    )


def claimed(
    state: EnrichmentState | None, call_id: str, message_id: str, now: datetime, lease_seconds: int
) -> EnrichmentState | None:
    """Take the right to send the PATCH, unless finished or another live message holds it.

    A claim older than the lease belongs to a message whose process died: it is taken over.
    """
    if state is not None and state.done:
        return None
    current = _base(state, call_id)
    holder, since = current.claimed_by, current.claimed_at
    if (
        holder
        and holder != message_id
        and since is not None
        and now - since < timedelta(seconds=lease_seconds)
    ):
        return None
    return replace(
        current,
        status=Status.WRITING,
        attempts=current.attempts + 1,
        writes=current.writes + 1,
        claimed_by=message_id,
        claimed_at=now,
        updated_at=now,
    )


def finished(
    state: EnrichmentState | None,
    call_id: str,
    outcome: Outcome,
    reason: str,
    now: datetime,
    recording_url: str | None = None,
) -> EnrichmentState | None:
    """The outcome; the first one recorded stands."""
    if state is not None and state.done:
        return None
    current = _base(state, call_id)
    counted = current.claimed_by is not None  # a claim already counted this attempt
    return replace(
        current,
        status=Status.DONE,
        outcome=outcome,
        reason=reason,
        attempts=current.attempts + (0 if counted else 1),
        claimed_by=None,
        claimed_at=None,
        recording_url=recording_url,
        updated_at=now,
    )


def failed(
    state: EnrichmentState | None,
    call_id: str,
    message_id: str,
    dequeue_count: int,
    max_dequeue_count: int,
    error: str,
    now: datetime,
) -> EnrichmentState | None:
    """An attempt failed and the host will retry it, or (the last one) poison the message."""
    if state is not None and state.done:
        return None
    current = _base(state, call_id)
    held = current.claimed_by == message_id
    final = dequeue_count >= max_dequeue_count
    reason = f"attempt {dequeue_count} of {max_dequeue_count} failed: {error}"
    if final:
        reason += "; the message was moved to the poison queue"
    return replace(
        current,
        status=Status.POISONED if final else Status.RETRYING,
        reason=reason,
        attempts=current.attempts + (0 if held else 1),
        dequeue_count=dequeue_count,
        claimed_by=None if held else current.claimed_by,
        claimed_at=None if held else current.claimed_at,
        updated_at=now,
    )
