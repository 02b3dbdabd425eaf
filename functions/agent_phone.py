"""The web phone panel's own state: availability, pool activation, the single session."""

from datetime import UTC, datetime

import azure.functions as func

from functions.invocation import background_invocation, http_invocation, json_response, read_json
from shared.errors import FieldError, InvalidInput

bp = func.Blueprint()


@bp.route(route="me/availability", methods=["GET", "PUT"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def availability(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    agent = composition.access().agent(req.headers.get("Authorization"))
    presence, now = composition.presence(), datetime.now(UTC)
    if req.method == "GET":
        return json_response(presence.availability(agent, now))
    data = read_json(req, status=str, forwardTo=str)
    if "status" not in data and "forwardTo" not in data:
        raise InvalidInput(
            "give status and/or forwardTo",
            errors=[FieldError("status", "required unless forwardTo is given")],
        )
    kwargs = {"forward_to": data["forwardTo"]} if "forwardTo" in data else {}
    return json_response(presence.set_availability(agent, now, status=data.get("status"), **kwargs))


@bp.route(route="me/pools", methods=["GET", "PUT"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def pools(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    agent = composition.access().agent(req.headers.get("Authorization"))
    if req.method == "GET":
        return json_response(composition.presence().pools(agent))
    data = read_json(req, pools=list)
    changes: dict[str, bool] = {}
    for i, item in enumerate(data.get("pools") or []):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("poolId"), str)
            or not isinstance(item.get("active"), bool)
        ):
            raise InvalidInput(
                'each pool is {"poolId": string, "active": boolean}',
                errors=[FieldError(f"pools[{i}]", "poolId and active")],
            )
        changes[item["poolId"]] = item["active"]
    if not changes:
        raise InvalidInput("pools is required", errors=[FieldError("pools", "non-empty list")])
    return json_response(composition.presence().set_pools(agent, changes, datetime.now(UTC)))


@bp.route(route="me/session", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def start_session(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    agent = composition.access().agent(req.headers.get("Authorization"))
    data = read_json(req, takeover=bool, allow_empty=True)
    lease = composition.web_phone_sessions().start(
        agent, datetime.now(UTC), takeover=bool(data.get("takeover"))
    )
    return json_response(lease, 201)


@bp.route(
    route="me/session/{sessionId}", methods=["PUT", "DELETE"], auth_level=func.AuthLevel.ANONYMOUS
)
@http_invocation
def session(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    agent = composition.access().agent(req.headers.get("Authorization"))
    sessions, session_id = composition.web_phone_sessions(), req.route_params["sessionId"]
    if req.method == "DELETE":
        sessions.end(agent, session_id)
        return func.HttpResponse(status_code=204)
    return json_response(sessions.heartbeat(agent, session_id, datetime.now(UTC)))


@bp.timer_trigger(schedule="%HOUSEKEEPING_SCHEDULE%", arg_name="timer", run_on_startup=False)
@background_invocation("timer")
def housekeeping(timer: func.TimerRequest) -> None:
    from shared import composition

    composition.presence().sweep(datetime.now(UTC))
