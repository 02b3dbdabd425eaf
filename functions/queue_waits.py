"""A waiting pool caller's timed checks: the next queue announcement, the longest wait."""

from __future__ import annotations

from datetime import UTC, datetime

import azure.functions as func

from functions.invocation import background_invocation
from shared.queues import QUEUE_WAITS

bp = func.Blueprint()


@bp.queue_trigger(arg_name="msg", queue_name=QUEUE_WAITS, connection="AzureWebJobsStorage")
@background_invocation("queue")
def queue_wait_due(msg: func.QueueMessage) -> None:
    """If the caller still waits: its position and estimated wait (docs/pools.md
    `queueAnnouncements`), or the overflow action after `overflow.maxWaitSeconds`."""
    from shared import composition
    from shared.messages import queue_wait_check

    check = queue_wait_check(msg.get_body())
    composition.call_flow().queue.due(check.call_id, check.check, check.n, datetime.now(UTC))
