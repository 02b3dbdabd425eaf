"""Pool alarms (§8): checked after each pool call change (queue) and on a timer."""

from __future__ import annotations

from datetime import UTC, datetime

import azure.functions as func

from functions.invocation import background_invocation
from shared.queues import POOL_CHECKS

bp = func.Blueprint()


@bp.queue_trigger(arg_name="msg", queue_name=POOL_CHECKS, connection="AzureWebJobsStorage")
@background_invocation("queue")
def pool_check(msg: func.QueueMessage) -> None:
    """A pool call changed its phase: raise or clear the pool's alarms now."""
    from shared import composition
    from shared.messages import pool_check_pool_id

    composition.pool_monitor().check(pool_check_pool_id(msg.get_body()), datetime.now(UTC))


@bp.timer_trigger(schedule="%ALARM_CHECK_SCHEDULE%", arg_name="timer", run_on_startup=False)
@background_invocation("timer")
def alarm_check(timer: func.TimerRequest) -> None:
    """Waits grow and agents change status without a call event: every pool, on a timer."""
    from shared import composition

    composition.pool_monitor().check_all(datetime.now(UTC))
