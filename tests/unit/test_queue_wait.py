"""Waiting in a pool's queue (docs/pools.md): the announcements' words and estimate, the
settings as read, and when a timed check may act on a call."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.calls import Call, CallbackOffer, CallKind, Direction, Offer, Outcome, Phase
from shared.domain.directory import parse_pool, pool_json
from shared.domain.pool_monitoring import PoolCallEntry
from shared.domain.queue_wait import (
    QueueAnnouncements,
    WaitCheck,
    announcement_text,
    estimated_wait_seconds,
    parse_queue_announcements,
    still_waiting,
)
from shared.domain.schedule import Then
from shared.errors import InvalidInput
from shared.messages import queue_wait_body, queue_wait_check

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def handled(
    agent: str, minutes_ago: float, handle_seconds: float, wait: float = 30
) -> PoolCallEntry:
    answered = NOW - timedelta(minutes=minutes_ago)
    return PoolCallEntry(
        "support",
        f"c-{agent}-{minutes_ago}",
        answered - timedelta(seconds=wait),
        Phase.ENDED,
        "+358501000000",
        answered_at=answered,
        ended_at=answered + timedelta(seconds=handle_seconds),
        agent_id=agent,
        outcome=Outcome.ANSWERED,
    )


def test_the_estimate_is_the_position_times_the_handle_time_over_the_agents_answering() -> None:
    recent = [handled("anna", 10, 120), handled("ben", 20, 240), handled("anna", 30, 180)]
    # Average handle time 180 s, two agents: the third caller waits about 3 x 180 / 2 s.
    assert estimated_wait_seconds(3, recent, NOW) == 270
    assert estimated_wait_seconds(1, recent, NOW) == 90


def test_calls_older_than_an_hour_do_not_count_and_without_data_there_is_no_estimate() -> None:
    assert estimated_wait_seconds(2, [handled("anna", 61, 600)], NOW) is None
    assert estimated_wait_seconds(2, [], NOW) is None


def test_with_calls_answered_but_none_finished_the_recent_wait_is_the_estimate() -> None:
    talking = replace(handled("anna", 5, 0, wait=100), ended_at=None, phase=Phase.CONNECTED)
    assert estimated_wait_seconds(4, [talking], NOW) == 100


def test_the_words_say_the_position_and_the_minutes_rounded_up() -> None:
    both = QueueAnnouncements()
    assert announcement_text(both, 3, 61) == (
        "You are number 3 in the queue. The estimated wait is about 2 minutes."
    )
    assert announcement_text(both, 1, 60) == (
        "You are number 1 in the queue. The estimated wait is about 1 minute."
    )
    assert announcement_text(both, 1, 20).endswith("The estimated wait is less than a minute.")
    assert announcement_text(both, 2, None) == "You are number 2 in the queue."
    assert announcement_text(both, 101, None) == "You are more than 100 in the queue."
    wait_only = QueueAnnouncements(position=False)
    assert announcement_text(wait_only, 5, 300) == "The estimated wait is about 5 minutes."


def test_the_announcement_settings_are_checked() -> None:
    problems: list[str] = []
    assert parse_queue_announcements(None, "p", problems) is None
    assert parse_queue_announcements({"everySeconds": 90}, "p", problems) == QueueAnnouncements(
        True, True, 90
    )
    for wrong in (
        {"everySeconds": 1},
        {"position": "yes"},
        {"position": False, "estimatedWait": False},
        {"loud": True},
        [],
    ):
        assert parse_queue_announcements(wrong, "p", problems) is None
    assert len(problems) == 5 and all("queueAnnouncements" in p for p in problems)


def test_a_pool_reads_back_its_longest_wait_and_announcements() -> None:
    problems: list[str] = []
    data = {
        "id": "support",
        "numbers": [],
        "members": [],
        "overflow": {"maxWaitSeconds": 120, "then": "queuedCallback"},
        "queueAnnouncements": {"position": True, "estimatedWait": False, "everySeconds": 45},
    }
    pool = parse_pool(data, "p", problems)
    assert problems == [] and pool is not None and pool.overflow is not None
    assert (pool.overflow.max_wait_seconds, pool.overflow.max_queue_length) == (120, None)
    assert pool.overflow.action.then is Then.QUEUED_CALLBACK
    assert parse_pool(pool_json(pool), "p", problems) == pool
    assert pool_json(pool)["overflow"] == {"maxWaitSeconds": 120, "then": "queuedCallback"}


def test_a_kept_place_is_only_for_the_longest_wait() -> None:
    problems: list[str] = []
    parse_pool(
        {
            "id": "p",
            "numbers": [],
            "members": [],
            "overflow": {"maxQueueLength": 3, "then": "queuedCallback"},
            "closed": {"then": "queuedCallback"},
        },
        "p",
        problems,
    )
    text = "; ".join(problems)
    assert "it takes maxWaitSeconds, not maxQueueLength" in text
    assert "p.closed.then queuedCallback is only for overflow.maxWaitSeconds" in text


def waiting_call(**changes: object) -> Call:
    call = Call(
        "c1",
        Direction.INBOUND,
        CallKind.POOL,
        "+358401234567",
        "+358900100",
        NOW,
        pool_id="support",
        connection_id="conn",
        app_connected_at=NOW,
    )
    return replace(call, **changes)  # type: ignore[arg-type]


def test_a_timed_check_acts_only_on_a_caller_still_waiting() -> None:
    assert still_waiting(waiting_call()) is WaitCheck.NOW
    ringing = waiting_call(offers=(Offer(1, "8:acs:anna", "anna", NOW),))
    assert still_waiting(ringing) is WaitCheck.LATER
    assert still_waiting(waiting_call(callback=CallbackOffer.OFFERED)) is WaitCheck.LATER
    assert still_waiting(waiting_call(app_connected_at=None)) is WaitCheck.LATER
    for done in (
        waiting_call(first_answered_at=NOW),
        waiting_call(ended_at=NOW),
        waiting_call(callback=CallbackOffer.ACCEPTED),
        waiting_call(overflowed="number"),
        waiting_call(hangup_requested=True),
    ):
        assert still_waiting(done) is WaitCheck.DONE
    # Moved to another pool, or a callback declined: still waiting there.
    assert still_waiting(waiting_call(overflowed="pool")) is WaitCheck.NOW


def test_the_queue_wait_message_reads_back_and_refuses_anything_else() -> None:
    import json

    body = json.dumps(queue_wait_body("c1", "announce", 3)).encode()
    check = queue_wait_check(body)
    assert (check.call_id, check.check, check.n) == ("c1", "announce", 3)
    for wrong in (
        b"{}",
        b'{"callId": "c", "check": "dance", "n": 1}',
        b"[",
        b'{"callId": "c", "check": "overflow", "n": true}',
    ):
        with pytest.raises(InvalidInput):
            queue_wait_check(wrong)
