"""GET /api/openapi.json (anonymous): the OpenAPI document of the whole HTTP API."""

import json

import azure.functions as func

from functions.invocation import http_invocation

bp = func.Blueprint()


@bp.route(route="openapi.json", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def openapi(req: func.HttpRequest) -> func.HttpResponse:
    from functions.openapi_spec import document
    from shared import composition

    body = json.dumps(document(composition.settings().app_version))
    return func.HttpResponse(
        body, mimetype="application/json", headers={"Cache-Control": "public, max-age=300"}
    )
