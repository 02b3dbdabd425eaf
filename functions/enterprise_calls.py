"""Enterprise calls (§4): the Teams call-record sync (every ENTERPRISE_SYNC_SCHEDULE) and the
endpoint where other systems (a mobile operator, a PBX) push their call records."""

from __future__ import annotations

from datetime import UTC, datetime

import azure.functions as func

from functions.invocation import (
    Auth,
    background_invocation,
    endpoint,
    json_response,
    problem_response,
    problem_view,
    read_raw_json,
)
from shared.errors import Unprocessable

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
