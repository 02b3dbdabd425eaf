"""REJOIN_SECONDS after an agent's web phone dropped mid-call: requeue or divert the caller."""

from __future__ import annotations

from datetime import UTC, datetime

import azure.functions as func

from functions.invocation import background_invocation
from shared.queues import CALL_REJOINS

bp = func.Blueprint()


@bp.queue_trigger(arg_name="msg", queue_name=CALL_REJOINS, connection="AzureWebJobsStorage")
@background_invocation("queue")
def rejoin_check_due(msg: func.QueueMessage) -> None:
    """If the agent is still away, the pool caller goes to the front of the queue, a direct
    caller to the agent's DND target (or the call ends)."""
    from shared import composition
    from shared.messages import rejoin_check_call_id

    call_id = rejoin_check_call_id(msg.get_body())
    composition.call_flow().rejoins.expired(call_id, datetime.now(UTC))
