"""GET /api/health (anonymous): version and each dependency's reachability; 503 if any is down."""

import azure.functions as func

from functions.invocation import http_invocation, json_response

bp = func.Blueprint()


@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def health(req: func.HttpRequest) -> func.HttpResponse:
    from shared import composition  # wired on first use, not at cold start

    report = composition.health()
    body = {
        "status": "healthy" if report.healthy else "unhealthy",
        "version": report.version,
        "dependencies": {
            d.name: {
                "status": "up" if d.up else "down",
                "durationMs": d.duration_ms,
                **({"error": d.error} if d.error else {}),
            }
            for d in report.dependencies
        },
    }
    return json_response(
        body, 200 if report.healthy else 503, headers={"Cache-Control": "no-store"}
    )
