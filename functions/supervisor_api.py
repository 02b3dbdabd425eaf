"""Supervisors' API (§7, §9): the live pool dashboard and pool membership switches."""

from datetime import UTC, datetime

import azure.functions as func

from functions.invocation import http_invocation, json_response, read_json
from shared.errors import FieldError, InvalidInput

bp = func.Blueprint()


@bp.route(route="supervisor/pools", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def pool_dashboard(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    composition.access().supervisor(req.headers.get("Authorization"))
    return json_response(
        composition.supervision().dashboard(datetime.now(UTC)),
        headers={"Cache-Control": "no-store"},
    )


@bp.route(route="supervisor/pools/{poolId}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def pool_detail(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    composition.access().supervisor(req.headers.get("Authorization"))
    return json_response(
        composition.supervision().pool(req.route_params["poolId"], datetime.now(UTC)),
        headers={"Cache-Control": "no-store"},
    )


@bp.route(
    route="supervisor/pools/{poolId}/members/{agentId}",
    methods=["PUT"],
    auth_level=func.AuthLevel.ANONYMOUS,
)
@http_invocation
def pool_member(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    composition.access().supervisor(req.headers.get("Authorization"))
    data = read_json(req, active=bool)
    if "active" not in data:
        raise InvalidInput("active is required", errors=[FieldError("active", "required")])
    return json_response(
        composition.supervision().set_member(
            req.route_params["poolId"],
            req.route_params["agentId"],
            data["active"],
            datetime.now(UTC),
        )
    )
