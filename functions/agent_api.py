"""The web phone panel's API for agents: the current call, notes, picking, dialling."""

from datetime import UTC, datetime

import azure.functions as func

from functions.invocation import http_invocation, json_response, read_json, require_fields
from shared.errors import FieldError, InvalidInput

bp = func.Blueprint()


@bp.route(route="me/calls/current", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def current_call(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition  # wired on first use, not at cold start

    agent = composition.access().agent(req.headers.get("Authorization"))
    return json_response(
        {"call": composition.agent_calls().current(agent)}, headers={"Cache-Control": "no-store"}
    )


@bp.route(route="me/calls/{callId}/notes", methods=["PUT"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def call_notes(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition  # wired on first use, not at cold start

    agent = composition.access().agent(req.headers.get("Authorization"))
    data = read_json(req, notes=str)
    if "notes" not in data:
        raise InvalidInput("missing: notes", errors=[FieldError("notes", "required")])
    return json_response(
        composition.agent_calls().save_notes(agent, req.route_params["callId"], data["notes"] or "")
    )


@bp.route(route="me/calls/{callId}/customer", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def pick_customer(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition  # wired on first use, not at cold start

    agent = composition.access().agent(req.headers.get("Authorization"))
    data = read_json(req, entity=str, id=str)
    require_fields(data, "entity", "id")
    return json_response(
        composition.agent_calls().pick_customer(
            agent, req.route_params["callId"], data["entity"], data["id"]
        )
    )


@bp.route(route="me/calls", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def dial(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition  # wired on first use, not at cold start

    agent = composition.access().agent(req.headers.get("Authorization"))
    data = read_json(req, number=str, callerId=str)
    require_fields(data, "number")
    view = composition.agent_calls().dial(
        agent, data["number"], data.get("callerId"), datetime.now(UTC)
    )
    return json_response(view, 201)


@bp.route(route="me/calls/{callId}/hangup", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def hang_up(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition  # wired on first use, not at cold start

    agent = composition.access().agent(req.headers.get("Authorization"))
    return json_response(composition.agent_calls().hang_up(agent, req.route_params["callId"]))


@bp.route(route="me/calls/{callId}/decline", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def decline(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition  # wired on first use, not at cold start

    agent = composition.access().agent(req.headers.get("Authorization"))
    return json_response(composition.agent_calls().decline(agent, req.route_params["callId"]))
