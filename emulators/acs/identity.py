"""ACS Identity surfaces: the REST API the azure-communication-identity client calls
(`/identities`, HMAC-signed like every resource call) and its control subtree
(`/_control/identities`: register identities that exist already, list them). The state is
`parts.identities` (identity_store.py), shared with the browser device API."""

from __future__ import annotations

import json

from werkzeug.wrappers import Request, Response

from emulators.acs.surface import AcsParts, error_response
from emulators.common.server import json_response


class Identities:
    prefix = "/identities"

    def __init__(self, parts: AcsParts) -> None:
        self.parts = parts

    def handle(self, request: Request) -> Response:
        denied = self.parts.authenticate(request, [request.host])
        response = denied if denied is not None else self.parts.identities.handle(request)
        self.parts.requests.add(request, "identity", response.status_code)
        return response


class IdentityControls:
    """GET: the resource's identities; POST {"id"}: one that exists already (e.g. AGENTS')."""

    prefix = "/_control/identities"

    def __init__(self, parts: AcsParts) -> None:
        self.parts = parts

    def handle(self, request: Request) -> Response:
        store = self.parts.identities
        if request.method == "GET":
            return json_response({"identities": store.identities()})
        if request.method != "POST":
            return error_response(405, "MethodNotAllowed", request.method)
        try:
            body = json.loads(request.get_data() or b"{}")
        except ValueError:
            body = None
        raw_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(raw_id, str):
            return error_response(400, "BadRequest", "'id' (string) is required.")
        try:
            store.register(raw_id)
        except ValueError as exc:
            return error_response(400, "BadRequest", str(exc))
        return json_response({"id": raw_id})
