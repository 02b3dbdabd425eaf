"""GET /api/health (anonymous): version and each dependency's reachability; 503 if any is down."""

from __future__ import annotations

import azure.functions as func

from functions.invocation import NO_STORE, Auth, endpoint, json_response

bp = func.Blueprint()


@endpoint(
    bp,
    "GET",
    "health",
    auth=Auth.PUBLIC,
    headers=NO_STORE,
    responses={200: "HealthView", 503: "HealthView"},
)
def health(req: func.HttpRequest) -> func.HttpResponse:
    """Version and each dependency's reachability (503, with the same body, if one is down)"""
    from shared import composition  # wired on first use, not at cold start
    from shared.services.health import health_view
    from shared.views import to_json

    view = health_view(composition.health())
    return json_response(to_json(view), 200 if view.status == "healthy" else 503, NO_STORE)
