"""The enrichment queue trigger: recording link and pool metrics onto the Phone Call activity."""

from __future__ import annotations

from datetime import UTC, datetime

import azure.functions as func

from functions.invocation import background_invocation
from shared import telemetry
from shared.queues import ENRICHMENT

bp = func.Blueprint()


@bp.queue_trigger(arg_name="msg", queue_name=ENRICHMENT, connection="AzureWebJobsStorage")
@background_invocation("queue")
def enrich_activity(msg: func.QueueMessage) -> None:
    from shared import composition  # wired on first use, not at cold start
    from shared.messages import enrichment_message

    # A malformed message raises: after maxDequeueCount it is kept in enrichment-poison.
    message = enrichment_message(msg.get_body(), msg.id or "", msg.dequeue_count)
    telemetry.tag_call(message.call_id)  # the queue span joins the call's webhook spans
    composition.enrichment().handle(message, datetime.now(UTC))
