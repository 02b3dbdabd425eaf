"""Enterprise calls (§4): Graph's call-record notifications (webhook, queue, the subscription
timer), the PSTN call log catch-up (every ENTERPRISE_SYNC_SCHEDULE) and the endpoint where
other systems (a mobile operator, a PBX) push their call records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from functions.invocation import (
    WEBHOOK_BODY_LIMIT,
    Auth,
    TextQuery,
    background_invocation,
    endpoint,
    json_response,
    problem_response,
    problem_view,
    read_raw_json,
)
from shared.errors import InvalidInput, Unprocessable
from shared.queues import ENTERPRISE_NOTIFICATIONS

bp = func.Blueprint()


@bp.timer_trigger(
    schedule="%ENTERPRISE_SYNC_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True
)
@background_invocation("timer")
def enterprise_calls_sync(timer: func.TimerRequest) -> None:
    from shared import composition  # wired on first use, not at cold start

    composition.enterprise_sync().sync_teams(datetime.now(UTC))


@endpoint(
    bp,
    "POST",
    "enterprise-calls",
    auth=Auth.FUNCTION_KEY,
    errors=(503,),
    responses={200: "PushReport", 422: ("PushRejected", "ProblemView")},
    raw_body={"type": "object", "description": "See docs/enterprise-calls.md."},
    max_body=WEBHOOK_BODY_LIMIT,
)
def enterprise_calls_push(req: func.HttpRequest) -> func.HttpResponse:
    """Push call records from other systems (mobile operator, PBX)

    See docs/enterprise-calls.md. 200 when every record was read; 422 naming each malformed
    record's fields, with the results of the others (imported)."""
    from shared import composition  # wired on first use, not at cold start
    from shared.views import PushRejected, extended, to_json

    result = composition.enterprise_sync().import_pushed(read_raw_json(req), datetime.now(UTC))
    report = result.report()
    if not result.errors:
        return json_response(to_json(report))
    problem = Unprocessable(
        f"{report.malformed} of {result.received} call records are malformed and were not "
        "imported; the others were processed (see results)",
        errors=list(result.errors),
    )
    return problem_response(problem, extended(problem_view(problem), PushRejected, **vars(report)))


# ---------------------------------------------------------------------- Graph notifications

VALIDATION_TOKEN_MAX = 1024
VALIDATION_TOKEN = TextQuery(
    "validationToken",
    description="Sent by Graph when it validates the URL: echoed back as text/plain (200).",
    min_length=1,
    max_length=VALIDATION_TOKEN_MAX,
)
GRAPH_WEBHOOK: dict[str, Any] = {
    "auth": Auth.PUBLIC,  # as Graph calls it: the clientState in every notification is the proof
    "errors": (403, 503),
    "query": (VALIDATION_TOKEN,),
    "responses": {200: "text/plain", 202: None},
    "raw_body": {
        "type": "object",
        "description": "A changeNotificationCollection; see docs/enterprise-calls.md.",
        "required": ["value"],
        "properties": {"value": {"type": "array", "items": {"type": "object"}}},
    },
    "max_body": WEBHOOK_BODY_LIMIT,
}


@endpoint(bp, "POST", "enterprise-calls/notifications", **GRAPH_WEBHOOK)
def graph_call_record_notifications(req: func.HttpRequest) -> func.HttpResponse:
    """Microsoft Graph: call-record change notifications, and the validation handshake

    With `validationToken`: 200 text/plain echoing it. Otherwise a
    changeNotificationCollection (202); every item must carry the subscription's clientState
    (403 if one does not, nothing is taken). See docs/enterprise-calls.md."""
    return _graph_webhook(req)


@endpoint(bp, "POST", "enterprise-calls/lifecycle", **GRAPH_WEBHOOK)
def graph_lifecycle_notifications(req: func.HttpRequest) -> func.HttpResponse:
    """Microsoft Graph: lifecycle notifications of the call-record subscription

    reauthorizationRequired renews, subscriptionRemoved recreates and catches up, missed
    catches up (202). See docs/enterprise-calls.md."""
    return _graph_webhook(req)


def _graph_webhook(req: func.HttpRequest) -> func.HttpResponse:
    token = req.params.get(VALIDATION_TOKEN.name)
    if token is not None:
        # Graph checks the URL: the token echoed as plain text, with 200, within 10 seconds.
        if not token or len(token) > VALIDATION_TOKEN_MAX:
            raise InvalidInput(f"validationToken must be 1-{VALIDATION_TOKEN_MAX} characters")
        return func.HttpResponse(
            token,
            status_code=200,
            mimetype="text/plain",
            headers={"X-Content-Type-Options": "nosniff"},
        )
    from shared import composition  # wired on first use, not at cold start

    composition.call_record_notifications().accept(read_raw_json(req))
    return func.HttpResponse(status_code=202)


@bp.queue_trigger(
    arg_name="msg", queue_name=ENTERPRISE_NOTIFICATIONS, connection="AzureWebJobsStorage"
)
@background_invocation("queue")
def enterprise_call_notification(msg: func.QueueMessage) -> None:
    """One notice: a call record to import, a lifecycle event, a catch-up. A failure is
    retried by the queue; after maxDequeueCount the message waits in
    enterprise-notifications-poison and the catch-up poll imports the call."""
    from shared import composition  # wired on first use, not at cold start

    # A malformed message raises: retried, then kept in enterprise-notifications-poison.
    composition.call_record_notifications().handle(msg.get_body(), datetime.now(UTC))


@bp.timer_trigger(
    schedule="%GRAPH_SUBSCRIPTION_SCHEDULE%",
    arg_name="timer",
    run_on_startup=False,
    use_monitor=True,
)
@background_invocation("timer")
def enterprise_calls_subscription(timer: func.TimerRequest) -> None:
    """Create the call-record subscription, or renew it before it expires."""
    from shared import composition  # wired on first use, not at cold start

    composition.call_record_notifications().keep_subscription(datetime.now(UTC))
