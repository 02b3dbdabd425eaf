"""Call control and lookups for the web phone (§1.3): hold, mute, DTMF, transfers, history,
caller ids and the contact directory."""

from typing import Any

import azure.functions as func

from functions.invocation import http_invocation, json_response, read_json
from shared.errors import FieldError, InvalidInput

bp = func.Blueprint()


def _int_param(req: func.HttpRequest, name: str, default: int, low: int, high: int) -> int:
    raw = req.params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidInput(
            f"{name} must be a whole number from {low} to {high}",
            errors=[FieldError(name, f"{low}-{high}")],
        )
    return int(raw)


@bp.route(route="me/calls/{callId}/hold", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def hold(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    agent = composition.access().agent(req.headers.get("Authorization"))
    return json_response(
        composition.call_control().hold(agent, req.route_params["callId"], on=True)
    )


@bp.route(route="me/calls/{callId}/unhold", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def unhold(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    agent = composition.access().agent(req.headers.get("Authorization"))
    return json_response(
        composition.call_control().hold(agent, req.route_params["callId"], on=False)
    )


@bp.route(route="me/calls/{callId}/mute", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def mute(req: func.HttpRequest) -> func.HttpResponse:
    """Mutes the agent in the call; unmute is the web phone's own microphone."""
    from shared import composition

    agent = composition.access().agent(req.headers.get("Authorization"))
    return json_response(composition.call_control().mute(agent, req.route_params["callId"]))


@bp.route(route="me/calls/{callId}/dtmf", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def send_dtmf(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    agent = composition.access().agent(req.headers.get("Authorization"))
    data = read_json(req, tones=str)
    if not data.get("tones"):
        raise InvalidInput("tones is required", errors=[FieldError("tones", "required")])
    return json_response(
        composition.call_control().dtmf(agent, req.route_params["callId"], data["tones"])
    )


def _transfer_target(req: func.HttpRequest) -> dict[str, Any]:
    data = read_json(req, agentId=str, number=str)
    return {"to_agent": data.get("agentId"), "to_number": data.get("number")}


@bp.route(route="me/calls/{callId}/transfer", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def transfer(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    agent = composition.access().agent(req.headers.get("Authorization"))
    return json_response(
        composition.call_control().transfer(
            agent, req.route_params["callId"], **_transfer_target(req)
        )
    )


@bp.route(route="me/calls/{callId}/consult", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def consult(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    agent = composition.access().agent(req.headers.get("Authorization"))
    return json_response(
        composition.call_control().consult(
            agent, req.route_params["callId"], **_transfer_target(req)
        )
    )


@bp.route(
    route="me/calls/{callId}/consult/complete",
    methods=["POST"],
    auth_level=func.AuthLevel.ANONYMOUS,
)
@http_invocation
def consult_complete(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    agent = composition.access().agent(req.headers.get("Authorization"))
    return json_response(composition.call_control().complete(agent, req.route_params["callId"]))


@bp.route(
    route="me/calls/{callId}/consult/cancel", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS
)
@http_invocation
def consult_cancel(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    agent = composition.access().agent(req.headers.get("Authorization"))
    return json_response(composition.call_control().cancel(agent, req.route_params["callId"]))


@bp.route(route="me/calls", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def call_history(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    agent = composition.access().agent(req.headers.get("Authorization"))
    limit = _int_param(req, "limit", 20, 1, 100)
    return json_response(
        composition.agent_calls().history(agent, limit), headers={"Cache-Control": "no-store"}
    )


@bp.route(route="me/caller-ids", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def caller_ids(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    agent = composition.access().agent(req.headers.get("Authorization"))
    return json_response(composition.agent_calls().caller_ids(agent))


@bp.route(route="directory", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def directory(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    composition.access().agent(req.headers.get("Authorization"))
    query = req.params.get("q", "")
    limit = _int_param(req, "limit", 20, 1, 50)
    page = _int_param(req, "page", 1, 1, 20)
    return json_response(composition.agent_calls().directory_search(query, limit, page))
