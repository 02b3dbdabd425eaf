"""Enterprise calls (§4): the Teams call-record sync (every ENTERPRISE_SYNC_SCHEDULE) and the
endpoint where other systems (a mobile operator, a PBX) push their call records."""

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
