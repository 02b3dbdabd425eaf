"""Delayed enrichment (§2.1.1 c, §3.1): the recording link and pool metrics in one PATCH.

One queue message per attempt. Each attempt either re-queues itself (the recording or the
activity is not there yet), writes once under a claim on the call's enrichment row (so a message
delivered twice writes once), or records why it stops. A failure is recorded with the message's
dequeue count and re-raised, so the host retries it and finally moves it to the poison queue
while the call's row keeps the last reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from shared.domain.calls import Call
from shared.domain.enrichment import (
    Action,
    ActivityUpdate,
    EnrichmentPolicy,
    EnrichmentState,
    Outcome,
    Plan,
    Waiting,
    WriteResult,
    claimed,
    deadline,
    failed,
    finished,
    plan_enrichment,
    recording_link,
    retry_delay,
    waiting,
)
from shared.messages import EnrichmentMessage
from shared.services.activity_notes import follow_notes, stored_notes
from shared.services.ports import (
    ActivityEnrichmentWriter,
    CallRepository,
    EnrichmentLog,
    EnrichmentRetries,
    RecordingIndex,
)

log = logging.getLogger(__name__)

# How long a claim to PATCH protects against a concurrent duplicate. Longer than an attempt can
# take (Dataverse retries wait at most ~20 s, each request times out); a claim older than this
# belongs to a process that died, and its message's retry (or a duplicate) takes it over.
CLAIM_LEASE_SECONDS = 300


@dataclass(frozen=True)
class EnrichmentOptions:
    public_base_url: str
    policy: EnrichmentPolicy
    max_dequeue_count: int  # host.json maxDequeueCount: the attempt after which it is poisoned


class ActivityEnrichment:
    """Handles enrichment messages; every outcome lands on the call's enrichment row."""

    def __init__(
        self,
        *,
        calls: CallRepository,
        recordings: RecordingIndex,
        writer: ActivityEnrichmentWriter,
        progress: EnrichmentLog,
        queue: EnrichmentRetries,
        options: EnrichmentOptions,
    ) -> None:
        self.calls, self.recordings, self.writer = calls, recordings, writer
        self.progress, self.queue, self.options = progress, queue, options

    def handle(self, message: EnrichmentMessage, now: datetime) -> EnrichmentState | None:
        """One attempt. Raises (after recording why) when the host should retry the message."""
        state = self.progress.get(message.call_id)
        if state is not None and state.done:
            log.info("call %s: enrichment already %s", message.call_id, state.outcome)
            return state  # a duplicate or a second chain: nothing more to do, no request
        call = self.calls.get(message.call_id)
        if call is None:
            log.warning("enrichment message for unknown call %s: dropped", message.call_id)
            return None
        try:
            return self._attempt(call, message, now)
        except Exception as exc:
            self._record_failure(message, exc, now)
            raise

    # ------------------------------------------------------------------ one attempt

    def _attempt(self, call: Call, message: EnrichmentMessage, now: datetime) -> EnrichmentState:
        plan = plan_enrichment(
            call,
            self._recording_url(call),
            now,
            self.options.policy,
            notes=stored_notes(self.calls, call),
            notes_attached=self.calls.notes_attached(call.call_id),
        )
        if plan.action is Action.FINISH:
            assert plan.outcome is not None
            return self._finish(call.call_id, plan.outcome, plan.reason, now)
        if plan.action is Action.RETRY_LATER:
            assert plan.waiting is not None
            return self._retry_later(call, message, plan.waiting, plan.reason, now)
        return self._write(call, message, plan, now)

    def _recording_url(self, call: Call) -> str | None:
        """Our link, once the recording's file event is in (it is looked up only if recorded)."""
        if not call.record or not call.server_call_id:
            return None
        if not self.recordings.for_server_call(call.server_call_id):
            return None
        return recording_link(self.options.public_base_url, call.call_id)

    def _write(
        self, call: Call, message: EnrichmentMessage, plan: Plan, now: datetime
    ) -> EnrichmentState:
        assert plan.update is not None and plan.outcome is not None
        state, took = self.progress.change(
            call.call_id,
            lambda s: claimed(s, call.call_id, message.message_id, now, CLAIM_LEASE_SECONDS),
        )
        if not took or state is None:
            # Finished meanwhile, or a duplicate of this message is writing right now.
            log.info("call %s: enrichment is another message's to write", call.call_id)
            return state or self._state(call.call_id)
        result = self.writer.enrich(plan.update)
        if result is WriteResult.WRITTEN:
            self._follow_notes(call.call_id, plan.update)
            return self._finish(
                call.call_id, plan.outcome, plan.reason, now, plan.update.recording_url
            )
        if result is WriteResult.MISSING:
            if now >= deadline(call, self.options.policy):
                return self._finish(
                    call.call_id,
                    Outcome.ACTIVITY_MISSING,
                    "the activity is not in Dataverse (404) at the deadline",
                    now,
                )
            return self._retry_later(
                call, message, Waiting.ACTIVITY, "the activity is not in Dataverse yet (404)", now
            )
        # CLOSED. If an earlier claim's PATCH may have landed (its process died before noting
        # it), the completed activity may be ours: look before calling it the agent's.
        if state.writes > 1 and self.writer.carries(plan.update):
            return self._finish(
                call.call_id,
                plan.outcome,
                "written by an earlier attempt",
                now,
                plan.update.recording_url,
            )
        return self._finish(
            call.call_id,
            Outcome.ACTIVITY_CLOSED,
            "the activity was completed before the enrichment; nothing written, so it shows "
            "no recording link or metrics (§3)",
            now,
        )

    def _follow_notes(self, call_id: str, update: ActivityUpdate) -> None:
        """A save that came while the PATCH was on its way may have landed before it: the
        activity then carries older notes than stored. Write the stored ones again."""
        activity_id = update.activity_id
        follow_notes(
            self.calls,
            call_id,
            lambda split: (
                self.writer.enrich(
                    ActivityUpdate(
                        activity_id,
                        description=split.description,
                        annotation=split.annotation,
                        remove_annotation=split.remove_annotation,
                    )
                )
                is WriteResult.WRITTEN
            ),
            written=update.annotation
            if update.annotation is not None
            else update.description or "",
        )

    def _retry_later(
        self, call: Call, message: EnrichmentMessage, what: Waiting, reason: str, now: datetime
    ) -> EnrichmentState:
        delay = retry_delay(call, now, self.options.policy)
        self.queue.schedule(call.call_id, delay_seconds=delay, jitter=False)
        state, _ = self.progress.change(
            call.call_id,
            lambda s: waiting(
                s, call.call_id, what, f"{reason}; next look in {delay} s", message.message_id, now
            ),
        )
        return state or self._state(call.call_id)

    def _finish(
        self,
        call_id: str,
        outcome: Outcome,
        reason: str,
        now: datetime,
        recording_url: str | None = None,
    ) -> EnrichmentState:
        state, changed = self.progress.change(
            call_id, lambda s: finished(s, call_id, outcome, reason, now, recording_url)
        )
        if changed:
            log.info("call %s: enrichment %s (%s)", call_id, outcome.value, reason)
        return state or self._state(call_id)

    def _record_failure(self, message: EnrichmentMessage, exc: Exception, now: datetime) -> None:
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
        limit = self.options.max_dequeue_count
        try:
            self.progress.change(
                message.call_id,
                lambda s: failed(
                    s,
                    message.call_id,
                    message.message_id,
                    message.dequeue_count,
                    limit,
                    error,
                    now,
                ),
            )
        except Exception:  # the original failure matters more; the host retries it anyway
            log.exception("call %s: could not record the enrichment failure", message.call_id)
        log.warning(
            "call %s: enrichment attempt %s of %s failed: %s",
            message.call_id,
            message.dequeue_count,
            limit,
            error,
        )

    def _state(self, call_id: str) -> EnrichmentState:
        state = self.progress.get(call_id)
        if state is None:  # pragma: no cover - every path above wrote or read the row
            raise RuntimeError(f"call {call_id}: the enrichment row vanished")
        return state
