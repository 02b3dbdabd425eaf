"""Enterprise calls (§4): Graph's call-record notifications (webhook, queue, the subscription
timer), the PSTN call log catch-up (every ENTERPRISE_SYNC_SCHEDULE) and the endpoint where
other systems (a mobile operator, a PBX) push their call records."""

import json
from datetime import UTC, datetime

import azure.functions as func

from functions.invocation import (
    background_invocation,
    http_invocation,
    json_response,
    problem_response,
)
from shared.errors import InvalidInput, Unprocessable
from shared.messages import ENTERPRISE_NOTIFICATIONS

bp = func.Blueprint()


@bp.timer_trigger(
    schedule="%ENTERPRISE_SYNC_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True
)
@background_invocation("timer")
def enterprise_calls_sync(timer: func.TimerRequest) -> None:
    from shared import composition  # wired on first use, not at cold start

    composition.enterprise_sync().sync_teams(datetime.now(UTC))


@bp.route(route="enterprise-calls", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@http_invocation
def enterprise_calls_push(req: func.HttpRequest) -> func.HttpResponse:
    """Call records in the shape of docs/enterprise-calls.md. 200 when every record was read;
    422 naming each malformed record's fields, with the results of the others (imported)."""
    from shared import composition  # wired on first use, not at cold start

    try:
        data = json.loads(req.get_body() or b"null")
    except ValueError:
        raise InvalidInput("the body is not JSON") from None
    result = composition.enterprise_sync().import_pushed(data, datetime.now(UTC))
    body = result.to_json()
    if not result.errors:
        return json_response(body)
    problem = Unprocessable(
        f"{body['malformed']} of {result.received} call records are malformed and were not "
        "imported; the others were processed (see results)",
        errors=list(result.errors),
    )
    rendered = problem_response(problem)
    merged = {**json.loads(rendered.get_body()), **body}
    return func.HttpResponse(
        json.dumps(merged), status_code=rendered.status_code, mimetype="application/problem+json"
    )


# ---------------------------------------------------------------------- Graph notifications

VALIDATION_TOKEN_MAX = 1024


@bp.route(
    route="enterprise-calls/notifications", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS
)
@http_invocation
def graph_call_record_notifications(req: func.HttpRequest) -> func.HttpResponse:
    """Graph's change notifications for call records (and its validation handshake)."""
    return _graph_webhook(req)


@bp.route(route="enterprise-calls/lifecycle", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def graph_lifecycle_notifications(req: func.HttpRequest) -> func.HttpResponse:
    """Graph's lifecycle notifications for the subscription (and its validation handshake)."""
    return _graph_webhook(req)


def _graph_webhook(req: func.HttpRequest) -> func.HttpResponse:
    # Anonymous like Graph calls it: the clientState in every notification is the proof.
    token = req.params.get("validationToken")
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

    try:
        data = json.loads(req.get_body() or b"null")
    except ValueError:
        raise InvalidInput("the body is not JSON") from None
    composition.call_record_notifications().accept(data)
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
