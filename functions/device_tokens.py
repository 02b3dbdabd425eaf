"""The web phone's ACS user token: what the panel's Calling SDK signs in to ACS with."""

import azure.functions as func

from functions.invocation import http_invocation, json_response

bp = func.Blueprint()


@bp.route(route="me/acs-token", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def acs_token(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition

    agent = composition.access().agent(req.headers.get("Authorization"))
    token = composition.device_tokens().issue(agent)
    return json_response(token.to_json(), headers={"Cache-Control": "no-store"})
