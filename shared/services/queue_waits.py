"""A caller waiting in a pool's queue (§7 2.3 3; docs/pools.md): position and estimated-wait
announcements, the overflow after `overflow.maxWaitSeconds`, and a callback that keeps the
caller's place (a member calls back, as an outbound call, when the request reaches the front).

Every timed step is a delayed queue message (`queue-waits`), nothing is kept in memory; each
is marked on the call with an ETag-guarded write first, so a repeat or a late message does
nothing twice."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared.domain.calls import (
    OVERFLOW_TRANSFER,
    QUEUE_ANNOUNCEMENT,
    Call,
    CallKind,
    Direction,
)
from shared.domain.directory import ServicePool
from shared.domain.queue_wait import (
    ESTIMATE_CALLS,
    ESTIMATE_WINDOW,
    MAX_POSITION,
    WaitCheck,
    announcement_text,
    estimated_wait_seconds,
    still_waiting,
)
from shared.domain.schedule import Then
from shared.errors import TelephonyError
from shared.services.ports import Prompt, RecentPoolCalls

if TYPE_CHECKING:
    from shared.services.calls import CallFlow

log = logging.getLogger(__name__)

OVERFLOW, ANNOUNCE = "overflow", "announce"
BUSY_RETRY_SECONDS = 15  # an announcement due while an agent rings (or a prompt plays)
STALE_OFFER = timedelta(seconds=60)  # a kept place marked offered whose call never appeared
KEPT_PLACE_NAMESPACE = uuid.UUID("3b0f7d2e-9a1c-4c55-8d3e-6a2f0b9e1c47")


class QueueWaits:
    """What the call flow does for its waiting pool callers; `flow.queue`."""

    def __init__(self, flow: CallFlow, recent: RecentPoolCalls | None = None) -> None:
        self.flow, self.recent = flow, recent

    # ------------------------------------------------------------ scheduling

    def arrived(self, call: Call, pool: ServicePool) -> None:
        """A caller joined the pool: its maximum wait starts now."""
        overflow = pool.overflow
        if overflow is None or overflow.max_wait_seconds is None or self.flow.delayed is None:
            return
        self.flow.delayed.check_queue_wait_later(
            call.call_id, OVERFLOW, 0, delay_seconds=overflow.max_wait_seconds
        )

    def joined(self, call: Call, pool: ServicePool, now: datetime) -> None:
        """The caller waits in the queue (nobody free): the first announcement."""
        if pool.queue_announcements is None or call.queue_announced:
            return
        try:
            self._announce(call.call_id, pool, 1, now)
        except TelephonyError as exc:  # the caller keeps waiting; the next one is scheduled
            log.warning("call %s: queue announcement not played (%s)", call.call_id, exc.code)

    def due(self, call_id: str, check: str, n: int, now: datetime) -> None:
        """A queue-wait message became visible."""
        call = self.flow.calls.get(call_id)
        pool = self.flow.directory.pool(call.pool_id or "") if call else None
        if call is None or pool is None:
            return
        if check == OVERFLOW:
            self._overflow(call, pool, now)
        elif pool.queue_announcements is not None and n > call.queue_announced:
            state = still_waiting(call)
            if state is WaitCheck.LATER and self.flow.delayed is not None:
                self.flow.delayed.check_queue_wait_later(
                    call_id, ANNOUNCE, n, delay_seconds=BUSY_RETRY_SECONDS
                )
            elif state is WaitCheck.NOW:
                self._announce(call_id, pool, n, now)

    # ------------------------------------------------------------ announcements

    def _announce(self, call_id: str, pool: ServicePool, n: int, now: datetime) -> None:
        settings = pool.queue_announcements
        assert settings is not None
        result = self.flow.calls.update(
            call_id,
            lambda c: (
                replace(c, queue_announced=n)
                if c.queue_announced < n and still_waiting(c) is WaitCheck.NOW
                else None
            ),
        )
        if result is None or not result[1]:
            return  # announced already (a repeat), or no longer waiting
        call = result[0]
        # The next one is scheduled before this one plays: a crash in between loses one
        # announcement, never the rest of them.
        if self.flow.delayed is not None:
            self.flow.delayed.check_queue_wait_later(
                call_id, ANNOUNCE, n + 1, delay_seconds=settings.every_seconds
            )
        position = self.flow.waiting.position(pool.id, call, MAX_POSITION)
        wait = None
        if settings.estimated_wait and self.recent is not None:
            recent = self.recent.recent(pool.id, now - ESTIMATE_WINDOW, ESTIMATE_CALLS)
            wait = estimated_wait_seconds(position, recent, now)
        text = announcement_text(settings, position, wait)
        if text:
            self.flow.telephony.play(
                call.connection_id or "", Prompt(text), operation_context=QUEUE_ANNOUNCEMENT
            )

    # ------------------------------------------------------------ the longest wait

    def _overflow(self, call: Call, pool: ServicePool, now: datetime) -> None:
        overflow = pool.overflow
        if overflow is None or overflow.max_wait_seconds is None or call.overflowed:
            return
        state = still_waiting(call)
        if state is WaitCheck.LATER and self.flow.delayed is not None:
            # An agent rings, or the caller hears a question: look again once it is settled.
            self.flow.delayed.check_queue_wait_later(
                call.call_id, OVERFLOW, 0, delay_seconds=pool.ring_timeout_seconds + 1
            )
        if state is not WaitCheck.NOW:
            return
        action = overflow.action
        other = self.flow.directory.pool(action.target or "") if action.then is Then.POOL else None
        moved_to = other.id if other is not None and other.id != pool.id else None

        def mark(c: Call) -> Call | None:
            if c.overflowed or still_waiting(c) is not WaitCheck.NOW or c.pool_id != pool.id:
                return None
            marked = replace(c, overflowed=action.then.value)
            return replace(marked, pool_id=moved_to, tried=()) if moved_to else marked

        result = self.flow.calls.update(call.call_id, mark)
        if result is None or not result[1]:
            return  # a repeat, or the call was answered (or left) meanwhile
        marked = result[0]
        log.info(
            "call %s: waited %s s in %s: %s",
            call.call_id,
            overflow.max_wait_seconds,
            pool.id,
            action.then.value,
        )
        if action.then is Then.POOL:
            self.flow.waiting.remove(pool.id, call)
            if moved_to is None:
                self.flow.hang_up(marked)  # the pool is gone: nowhere to go
                return
            self.flow.waiting.add(moved_to, marked)
            self.flow.advance(marked, now)
        elif action.then is Then.NUMBER and action.target:
            self.flow.waiting.remove(pool.id, call)
            self.flow.telephony.transfer(
                call.connection_id or "",
                f"4:{action.target}",
                transferee=call.peer_target or "",
                operation_context=OVERFLOW_TRANSFER,
                caller_id=call.our_number or None,
            )
        elif action.then is Then.CALLBACK:
            self.flow.offer_callback(call.call_id, now)
        elif action.then is Then.QUEUED_CALLBACK:
            self.flow.offer_callback(call.call_id, now, keep_place=True)
        else:
            self.flow.waiting.remove(pool.id, call)
            self.flow.hang_up(marked)

    # ------------------------------------------------------------ a kept place

    def call_back(self, kept: Call, now: datetime) -> bool | None:
        """The kept-place request at the front of the queue: offer it to a free member as an
        outbound call (their device first, then the caller's number). True: offered; None:
        being offered already (look at the next waiting call); False: nobody free."""
        flow = self.flow
        if kept.callback_call_id:
            out = flow.calls.get(kept.callback_call_id)
            if out is not None and not out.ended:
                return None
            offered_at = kept.callback_offered_at or now
            if out is None and now - offered_at < STALE_OFFER:
                return None  # being set up right now by another invocation
            lost = replace(
                kept,
                call_id=kept.callback_call_id,
                callback_for=kept.call_id,
                app_connected_at=None,
                agent_id=None,
            )
            self.callback_ended(out or lost, now)
            refreshed = flow.calls.get(kept.call_id)
            if refreshed is None or not refreshed.place_kept or refreshed.callback_call_id:
                return None
            kept = refreshed
        pool = flow.directory.pool(kept.pool_id or "")
        if pool is None:
            return False
        from shared.services.calls import OFFER_PAGE

        free = flow.roster.free_members(pool.id, now, OFFER_PAGE + len(kept.tried))
        untried = [a for a in free if a not in kept.tried]
        for agent_id in untried or free:
            agent = flow.directory.agent(agent_id)
            if agent is None:
                continue
            attempt = f"{kept.call_id}:{len(kept.tried)}:{agent_id}:{now.isoformat()}"
            out_id = str(uuid.uuid5(KEPT_PLACE_NAMESPACE, attempt))

            def offer(c: Call, out_id: str = out_id, new_round: bool = not untried) -> Call | None:
                if not c.place_kept or c.callback_call_id:
                    return None
                return replace(
                    c,
                    callback_call_id=out_id,
                    callback_offered_at=now,
                    tried=() if new_round else c.tried,
                )

            marked = flow.calls.update(kept.call_id, offer)
            if marked is None or not marked[1]:
                return None  # another invocation offers it
            if not flow.agents.claim(agent_id, out_id):
                self._unmark(kept.call_id, out_id)
                continue
            outbound = Call(
                call_id=out_id,
                direction=Direction.OUTBOUND,
                kind=CallKind.OUTBOUND,
                customer_number=kept.customer_number,
                our_number=kept.our_number,
                arrived_at=now,
                agent_id=agent.id,
                peer_target=agent.ring_target,
                candidates=kept.candidates,
                picked=kept.picked,
                record=flow.options.records(pool.id),
                callback_for=kept.call_id,
            )
            flow.calls.add(outbound)
            flow.agents.note_call(agent.id, out_id, now)
            target, _ = flow.endpoint_of(agent, outbound)
            try:
                connection_id = flow.telephony.create_call(
                    target,
                    callback_url=flow.callback_url(out_id),
                    operation_context="agent-leg",
                    caller_id=kept.our_number or None,
                )
            except Exception:
                flow.calls.update(out_id, lambda c: c if c.ended else replace(c, ended_at=now))
                flow.agents.release(agent.id, out_id)
                self._unmark(kept.call_id, out_id)
                raise
            flow.calls.update(out_id, _with_connection(connection_id))
            log.info("call %s: kept place offered to %s", kept.call_id, agent.id)
            return True
        return False

    def callback_taken(self, outbound: Call) -> None:
        """The member answered the outbound leg: the request leaves the queue."""
        kept_id = outbound.callback_for
        if not kept_id:
            return
        result = self.flow.calls.update(
            kept_id,
            lambda c: (
                replace(c, callback_done=True)
                if c.callback_call_id == outbound.call_id and not c.callback_done
                else None
            ),
        )
        if result is not None and result[0].callback_done and result[0].pool_id:
            self.flow.waiting.remove(result[0].pool_id, result[0])

    def callback_ended(self, outbound: Call, now: datetime) -> None:
        """The outbound call ended. Taken: done. Declined, not answered or failed: the request
        is still at its place; the member counts as tried and the next free one is offered it
        (by the dispatch that follows the member's release)."""
        if outbound.app_connected_at is not None:
            self.callback_taken(outbound)
            return
        kept_id = outbound.callback_for
        if not kept_id:
            return

        def back(c: Call) -> Call | None:
            if c.callback_call_id != outbound.call_id or c.callback_done:
                return None
            tried = c.tried
            if outbound.agent_id and outbound.agent_id not in tried:
                tried = (*tried, outbound.agent_id)
            return replace(c, callback_call_id=None, callback_offered_at=None, tried=tried)

        self.flow.calls.update(kept_id, back)

    def _unmark(self, kept_id: str, out_id: str) -> None:
        self.flow.calls.update(
            kept_id,
            lambda c: (
                replace(c, callback_call_id=None, callback_offered_at=None)
                if c.callback_call_id == out_id
                else None
            ),
        )


def _with_connection(connection_id: str) -> Callable[[Call], Call | None]:
    return lambda c: None if c.connection_id else replace(c, connection_id=connection_id)
