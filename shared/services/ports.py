"""The ports services talk to; adapters implement them, unit tests fake them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.domain.activity import ActivityNotes, PhoneCallActivity
from shared.domain.availability import AgentState
from shared.domain.calls import Call
from shared.domain.customers import CustomerRef, DirectoryEntry
from shared.domain.directory_search import DirectoryQuery
from shared.domain.enrichment import (
    ActivityUpdate,
    EnrichmentState,
    RecordingAudio,
    WriteResult,
)
from shared.domain.pool_monitoring import PoolCallEntry
from shared.domain.sessions import Lease


class Telephony(Protocol):
    """ACS Call Automation, as the call flows need it."""

    def answer(
        self, incoming_call_context: str, *, callback_url: str, operation_context: str
    ) -> str:
        """Answer an incoming call; returns the call connection id."""
        ...

    def reject(self, incoming_call_context: str, *, busy: bool = False) -> None: ...

    def redirect(self, incoming_call_context: str, target: str) -> None:
        """Send an unanswered incoming call on to `target` (an ACS raw id)."""
        ...

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
        """Ring `target` (an ACS raw id) into the call; returns the invitation id.
        `voip_headers` reach an ACS user's Calling SDK with the ring (the panel reads them)."""
        ...

    def cancel_add_participant(
        self, connection_id: str, invitation_id: str, *, operation_context: str
    ) -> None: ...

    def hang_up(self, connection_id: str) -> None:
        """End the call for everyone."""
        ...

    def create_call(
        self,
        target: str,
        *,
        callback_url: str,
        operation_context: str,
        caller_id: str | None = None,
    ) -> str:
        """Ring `target` in a new call; returns the call connection id."""
        ...

    def start_recording(self, server_call_id: str, *, state_callback_url: str) -> str:
        """Start recording the call; returns the recording id."""
        ...

    def recognize_dtmf(
        self,
        connection_id: str,
        target: str,
        *,
        prompt: Prompt,
        operation_context: str,
        silence_timeout: int,
    ) -> None:
        """Play `prompt` to `target` and collect one key (RecognizeCompleted/Failed follow)."""
        ...

    def play(self, connection_id: str, prompt: Prompt, *, operation_context: str) -> None: ...

    def hold(self, connection_id: str, target: str, *, music_url: str | None) -> None: ...

    def unhold(self, connection_id: str, target: str) -> None: ...

    def mute(self, connection_id: str, target: str) -> None: ...

    def send_dtmf(self, connection_id: str, tones: str, target: str) -> None: ...

    def transfer(
        self,
        connection_id: str,
        target: str,
        *,
        transferee: str,
        operation_context: str,
        caller_id: str | None = None,
    ) -> None:
        """Replace `transferee` in the call with `target` once the target answers."""
        ...

    def remove_participant(
        self, connection_id: str, target: str, *, operation_context: str
    ) -> None: ...


class Crm(Protocol):
    """Dynamics 365 (Dataverse), as the call flows need it."""

    def find_customers(self, number: str) -> tuple[CustomerRef, ...]:
        """Contacts, accounts and leads whose phone columns hold `number`: one round trip."""
        ...

    def create_phone_call(self, activity: PhoneCallActivity) -> bool:
        """Create the activity (and the annotation of notes too long for its description);
        False when one with its id already exists (a repeat: the annotation is written again)."""
        ...

    def search(self, query: DirectoryQuery, *, top: int) -> list[DirectoryEntry]:
        """Contacts, accounts, leads and D365 users whose name contains the query or (a number)
        any of whose phone columns starts with one of its prefixes: one round trip, at most
        `top` records per table, each with the number that matched."""
        ...

    def write_notes(self, activity_id: str, notes: ActivityNotes) -> bool:
        """Replace the notes of an open activity (its description, and the annotation that
        keeps notes too long for it); False when the activity is already completed."""
        ...

    def reassign_phone_call(self, activity: PhoneCallActivity) -> bool:
        """Give an open activity to the agent `activity` names (owner, agent party, subject,
        description): a transfer completed after it was written. False when it is completed
        already (or gone)."""
        ...


@dataclass(frozen=True)
class Prompt:
    """What a caller hears: an audio file (url) or, failing that, text read out by ACS."""

    text: str
    url: str | None = None


class CallbackCapture(Protocol):
    """Stores a callback request a caller left during a call (issue: callbacks, §5)."""

    def capture_from_call(self, call: Call, list_id: str, at: datetime) -> bool:
        """True if stored (idempotent per call); False if the number cannot be called back."""
        ...


class DelayedChecks(Protocol):
    def offer_callback_later(self, call_id: str, *, delay_seconds: int) -> None: ...

    def after_wrap_up(self, agent_id: str, *, delay_seconds: int) -> None:
        """Offer waiting callers to the agent once its after-call work is over."""

    def check_rejoin_later(self, call_id: str, *, delay_seconds: int) -> None:
        """REJOIN_SECONDS after an agent's web phone dropped: has it come back?"""
        ...

    def check_queue_wait_later(
        self, call_id: str, check: str, n: int, *, delay_seconds: int
    ) -> None:
        """A waiting pool caller's maximum wait ("overflow") or next announcement ("announce"
        number `n`) is due (shared/services/queue_waits.py)."""
        ...


class CallRepository(Protocol):
    """Calls, their processed-event markers and notes (one partition per call)."""

    def add(self, call: Call) -> bool:
        """Store a new call; False if a call with its id exists."""
        ...

    def get(self, call_id: str) -> Call | None: ...

    def guess(self, call_id: str) -> Call | None:
        """The call as this instance last read or wrote it, if it did (maybe stale: only for
        deciding what to try; a write checks it)."""
        ...

    def get_with_notes(self, call_id: str) -> Call | None:
        """The call as stored now, its notes read in the same request (for its activity)."""
        ...

    def update(
        self, call_id: str, change: Callable[[Call], Call | None], *, event_id: str | None = None
    ) -> tuple[Call, bool] | None:
        """Apply `change` guarded by the call's ETag (retried on conflict).

        With `event_id`, the event's marker is written in the same transaction, and an event
        seen before changes nothing. Returns (the call now, whether this call changed it), or
        None if the call does not exist. `change` returns None to leave the call as it is.
        """
        ...

    def notes(self, call_id: str, part: int = 0) -> str:
        """One agent's part of the notes (0: the first agent's; k: after the k-th handover)."""
        ...

    def notes_parts(self, call_id: str, count: int) -> tuple[str, ...]:
        """Parts 0 .. count-1 of the notes (at least part 0)."""
        ...

    def notes_attached(self, call_id: str) -> bool:
        """Whether the call's notes (every agent's part, attributed) were ever longer than the
        activity's description (so its activity may have the notes annotation)."""
        ...

    def save_notes(
        self, call_id: str, notes: str, part: int = 0, *, attached: bool = False
    ) -> None:
        """Store one agent's part (at most NOTES_MAX characters). `attached`: the call's notes
        as a whole are (or were, before this save) longer than the description; a part that
        long flags the call by itself. The flag is sticky."""
        ...


class AgentStates(Protocol):
    """Which agent is busy with which call; claims are ETag-guarded."""

    def claim(self, agent_id: str, call_id: str) -> bool:
        """Make the agent busy with `call_id` unless busy with another call."""
        ...

    def release(self, agent_id: str, call_id: str, *, wrap_up_seconds: int = 0) -> bool:
        """Free the agent if (and only if) busy with `call_id`; True if it was. With
        `wrap_up_seconds` it takes no pool calls for that long (after-call work)."""
        ...

    def states(self, agent_ids: tuple[str, ...]) -> dict[str, AgentState]:
        """The state of each agent (a default state for one never seen): one round trip."""
        ...

    def state(self, agent_id: str) -> AgentState: ...

    def update(
        self, agent_id: str, change: Callable[[AgentState], AgentState | None]
    ) -> AgentState:
        """Change availability, pool switches or forwarding (ETag-guarded, retried)."""
        ...

    def claims(self) -> list[tuple[str, str]]:
        """(agent, call) for every agent claimed by a call: one query (the housekeeping check
        of claims and offers a crash left behind)."""
        ...

    def with_expired_status(self, now: datetime) -> list[str]:
        """Agents whose timed status (Lunch) has run out by `now`."""
        ...

    def note_call(self, agent_id: str, call_id: str, at: datetime) -> None:
        """Remember `call_id` as the agent's latest call and in its history."""
        ...

    def latest_call(self, agent_id: str) -> str | None: ...

    def recent_calls(self, agent_id: str, limit: int) -> list[str]:
        """The agent's call ids, newest first."""
        ...


class PoolRoster(Protocol):
    """Each pool's members as routing sees them, kept up to date on every agent change."""

    def free_members(self, pool_id: str, now: datetime, limit: int) -> list[str]:
        """Up to `limit` members taking the pool's calls at `now`: best skill, then longest
        idle. One request, whatever the pool's size."""
        ...

    def anyone_serving(self, pool_id: str) -> bool:
        """Whether any member is Available and active in the pool (busy or not)."""
        ...

    def claimed_and_free(
        self, pool_id: str, call_id: str, now: datetime, limit: int
    ) -> tuple[list[str], list[str]]:
        """Members already claimed for `call_id` (a claim whose offer a crash never recorded),
        and `free_members(pool_id, now, limit)`: one request for both."""
        ...


class WaitingCalls(Protocol):
    """Pool queues: calls waiting for a free agent, in arrival order."""

    def add(self, pool_id: str, call: Call) -> None: ...

    def remove(self, pool_id: str, call: Call) -> None: ...

    def oldest(self, pool_id: str, limit: int) -> list[str]: ...

    def arrivals(self, pool_id: str, limit: int) -> list[tuple[str, datetime]]:
        """(call id, arrived at) of the oldest waiting calls: one read, no call rows."""
        ...

    def position(self, pool_id: str, call: Call, limit: int) -> int:
        """The call's place in the queue (1: the front), counting at most `limit` ahead."""
        ...


class RecentPoolCalls(Protocol):
    """The pool call log (shared/adapters/pool_monitoring.py), as the estimated wait reads it."""

    def recent(self, pool_id: str, since: datetime, limit: int) -> list[PoolCallEntry]:
        """The pool's calls that arrived after `since`, newest first: one query."""
        ...


class EnrichmentQueue(Protocol):
    def schedule(self, call_id: str, *, delay_seconds: int) -> None: ...


class ActivityEnrichmentWriter(Protocol):
    """The enrichment's one Dataverse write (and a read, only to settle a doubtful repeat)."""

    def enrich(self, update: ActivityUpdate) -> WriteResult:
        """One PATCH of an existing activity; CLOSED / MISSING instead of raising for those."""
        ...

    def carries(self, update: ActivityUpdate) -> bool:
        """Whether the activity already holds what `update` writes (an earlier PATCH landed)."""
        ...


class EnrichmentLog(Protocol):
    """The enrichment's progress on the call (its own row in the call's partition)."""

    def get(self, call_id: str) -> EnrichmentState | None: ...

    def change(
        self, call_id: str, change: Callable[[EnrichmentState | None], EnrichmentState | None]
    ) -> tuple[EnrichmentState | None, bool]:
        """Apply `change` guarded by the row's ETag (retried on conflict); (state, changed)."""
        ...


class RecordingIndex(Protocol):
    """RecordingFileStatusUpdated events kept by ACS server call id."""

    def for_server_call(self, server_call_id: str) -> list[dict[str, Any]]: ...


class EnrichmentRetries(Protocol):
    """The enrichment queue, as its handler re-queues a message (exact delay, no jitter)."""

    def schedule(self, call_id: str, *, delay_seconds: int, jitter: bool = True) -> None: ...


class RecordingContent(Protocol):
    """Recording files in ACS."""

    def fetch(self, content_location: str, *, byte_range: str | None = None) -> RecordingAudio:
        """The content (or a `bytes=` range); NotFound when ACS has none."""
        ...


class SessionLeases(Protocol):
    """One web phone lease per agent, changed only through ETag-guarded swaps."""

    def swap(self, agent_id: str, decide: Callable[[Lease | None], Lease | None]) -> Lease | None:
        """Store what `decide` returns for the current lease (None: keep it); retried on a
        conflict with the fresh lease. Returns the lease in force afterwards."""
        ...

    def remove(self, agent_id: str, session_id: str) -> None:
        """Delete the lease if it is still `session_id`'s."""
        ...
