"""The OpenAPI 3.1 document of the HTTP API (served at /api/openapi.json; a test keeps it in
step with the registered routes)."""

from __future__ import annotations

from typing import Any

JSON = "application/json"
PROBLEM = "application/problem+json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str] | None = None, **props: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


S = {"type": "string"}
NS = {"type": ["string", "null"]}
B = {"type": "boolean"}
I = {"type": "integer"}  # noqa: E741 - short names keep the table readable
DT = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "Problem": _obj(
        ["title", "status", "detail"],
        type=S,
        title=S,
        status=I,
        detail=S,
        errors={"type": "array", "items": _obj(["field", "message"], field=S, message=S)},
    ),
    "Customer": _obj(
        ["entity", "id", "name"], entity={"enum": ["contact", "account", "lead"]}, id=S, name=S
    ),
    "Call": _obj(
        ["callId", "state", "direction", "customerNumber", "screenPop"],
        callId=S,
        state={"enum": ["connecting", "waiting", "ringing", "connected", "ended"]},
        outcome={
            "type": ["string", "null"],
            "enum": ["answered", "declined", "unanswered", "abandoned", "forwarded", "busy", None],
        },
        direction={"enum": ["inbound", "outbound"]},
        rejoin={
            "type": "boolean",
            "description": "The ring is the agent's own call coming back after its web phone "
            "dropped (a refresh): the customer waited on hold; notes are intact.",
        },
        customerNumber=S,
        ourNumber=S,
        poolName=NS,
        identification={"enum": ["single", "several", "none"]},
        candidates={"type": "array", "items": _ref("Customer")},
        picked={"oneOf": [_ref("Customer"), {"type": "null"}]},
        screenPop=_obj(
            ["action"],
            action={"enum": ["openRecord", "showCandidates", "nothing"]},
            record=_ref("Customer"),
            candidates={"type": "array", "items": _ref("Customer")},
        ),
        arrivedAt=DT,
        answeredAt=DT,
        endedAt=DT,
        notes=S,
        activityId=NS,
        activity={
            "type": ["object", "null"],
            "description": "Pre-filled Phone Call values for the agent to complete (§3), "
            "after an answered call without a single identified customer.",
        },
    ),
    "AcsToken": _obj(
        ["token", "expiresOn", "communicationUserId"],
        token={"type": "string", "description": "ACS user access token, scope voip"},
        expiresOn={"type": "string", "format": "date-time"},
        communicationUserId={"type": "string", "description": "The agent's acsUserId"},
    ),
    "CurrentCall": _obj(["call"], call={"oneOf": [_ref("Call"), {"type": "null"}]}),
    "History": _obj(
        ["calls"],
        calls={
            "type": "array",
            "items": _obj(
                ["callId", "direction", "number", "at", "outcome"],
                callId=S,
                direction={"enum": ["inbound", "outbound"]},
                number=S,
                name=NS,
                at=DT,
                durationSeconds={"type": ["integer", "null"]},
                outcome=S,
                answeredByYou=B,
            ),
        },
    ),
    "Availability": _obj(
        ["status", "type", "statuses"],
        status=S,
        type={"enum": ["Offwork", "Available", "DND"]},
        until=DT,
        returnsTo=NS,
        forwardTo=NS,
        statuses={"type": "array", "items": _obj(["name", "type"], name=S, type=S)},
    ),
    "Pools": _obj(
        ["pools"],
        pools={
            "type": "array",
            "items": _obj(["poolId", "name", "active"], poolId=S, name=S, active=B),
        },
    ),
    "Session": _obj(
        ["sessionId", "leaseSeconds", "expiresAt"],
        sessionId=S,
        leaseSeconds=I,
        startedAt=DT,
        expiresAt=DT,
    ),
    "CallerIds": _obj(["callerIds"], callerIds={"type": "array", "items": S}, default=NS),
    "Directory": _obj(
        ["results", "page"],
        page=I,
        nextPage={"type": ["integer", "null"]},
        results={
            "type": "array",
            "items": _obj(
                ["kind", "id", "name"],
                kind={"enum": ["contact", "account", "lead", "colleague"]},
                id=S,
                name=S,
                phone=NS,
            ),
        },
    ),
    "Health": _obj(
        ["status", "version", "dependencies"],
        status={"enum": ["healthy", "unhealthy"]},
        version=S,
        dependencies={
            "type": "object",
            "additionalProperties": _obj(
                ["status"], status={"enum": ["up", "down"]}, durationMs=I, error=S
            ),
        },
    ),
    "Accepted": _obj(["accepted"], accepted=I),
    "PoolFigures": _obj(
        [
            "poolId",
            "name",
            "serving",
            "free",
            "active",
            "activeCalls",
            "queueLength",
            "maxWaitSeconds",
        ],
        poolId=S,
        name=S,
        serving=I,
        free=I,
        active=I,
        activeCalls=I,
        queueLength=I,
        maxWaitSeconds=I,
    ),
    "Dashboard": _obj(["pools"], pools={"type": "array", "items": _ref("PoolFigures")}),
    "PoolDetail": {
        "allOf": [
            _ref("PoolFigures"),
            _obj(
                ["agents"],
                numbers={"type": "array", "items": S},
                agents={
                    "type": "array",
                    "items": _obj(
                        ["agentId", "name", "status", "activeInPool", "onCall"],
                        agentId=S,
                        name=S,
                        status=S,
                        type=S,
                        activeInPool=B,
                        onCall=B,
                    ),
                },
            ),
        ]
    },
    "PanelConfig": _obj(
        ["apiBase", "auth", "device"],
        apiBase=S,
        d365Url=S,
        auth=_obj(
            ["clientId", "authority", "scopes", "redirectUri"],
            clientId=S,
            authority=S,
            knownAuthorities={"type": "array", "items": S},
            scopes={"type": "array", "items": S},
            redirectUri=S,
        ),
        device=_obj(["kind"], kind={"enum": ["acs", "emulator"]}, url=S),
    ),
    "TransferTarget": {
        **_obj(None, agentId=S, number=S),
        "description": "Exactly one of agentId (a colleague) and number.",
    },
}

AGENT_AUTH: list[dict[str, list[str]]] = [{"entra": []}]
FUNCTION_KEY: list[dict[str, list[str]]] = [{"functionKey": []}]
CALL_ID = {"name": "callId", "in": "path", "required": True, "schema": S}
POOL_ID = {"name": "poolId", "in": "path", "required": True, "schema": S}


def _response(schema: str | None, code: str = "200", text: str = "OK") -> dict[str, Any]:
    body: dict[str, Any] = {"description": text}
    if schema:
        body["content"] = {JSON: {"schema": _ref(schema)}}
    return {code: body}


def _problems(*codes: int) -> dict[str, Any]:
    meaning = {
        400: "Malformed input",
        401: "No valid token or key",
        403: "Not allowed",
        404: "Not found",
        409: "Conflicts with the current state",
        422: "Breaks a rule; `errors` names the fields",
        503: "A dependency is down",
    }
    return {
        str(c): {"description": meaning[c], "content": {PROBLEM: {"schema": _ref("Problem")}}}
        for c in codes
    }


def _op(
    summary: str,
    schema: str | None,
    *,
    body: dict[str, Any] | None = None,
    params: list[dict[str, Any]] | None = None,
    code: str = "200",
    errors: tuple[int, ...] = (401, 403),
    security: list[Any] | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {**_response(schema, code), **_problems(*errors)},
    }
    op["security"] = AGENT_AUTH if security is None else security
    if description:
        op["description"] = description
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    return op


CALL_OP = (401, 403, 404, 409)
GRAPH_VALIDATION_TOKEN = {
    "name": "validationToken",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "Sent by Graph when it validates the URL: echoed back as text/plain.",
}
PATHS: dict[str, dict[str, Any]] = {
    "/health": {
        "get": _op(
            "Version and each dependency's reachability (503 if one is down)",
            "Health",
            errors=(503,),
            security=[],
        )
    },
    "/me/calls/current": {
        "get": _op("The agent's current (or latest) call and its screen pop", "CurrentCall")
    },
    "/me/calls": {
        "get": _op(
            "The agent's recent calls, newest first",
            "History",
            errors=(400, 401, 403),
            params=[
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                }
            ],
        ),
        "post": _op(
            "Click-to-dial (§6): ring the agent's web phone, then the number",
            "Call",
            code="201",
            errors=(400, 401, 403, 422),
            body=_obj(
                ["number"],
                number=S,
                callerId={**S, "description": "One of GET /me/caller-ids; default its first."},
            ),
        ),
    },
    "/me/calls/{callId}/notes": {
        "put": _op(
            "Save the notes (every edit; at most 2000 characters, the activity description)",
            "Call",
            params=[CALL_ID],
            errors=(400, *CALL_OP, 422),
            body=_obj(["notes"], notes={"type": "string", "maxLength": 2000}),
        )
    },
    "/me/calls/{callId}/customer": {
        "post": _op(
            "Pick one of several identified customers (§2.1.2 a)",
            "Call",
            params=[CALL_ID],
            errors=(400, *CALL_OP, 422),
            body=_obj(["entity", "id"], entity={"enum": ["contact", "account", "lead"]}, id=S),
        )
    },
    "/me/calls/{callId}/hangup": {
        "post": _op("End the call for everyone", "Call", params=[CALL_ID], errors=CALL_OP)
    },
    "/me/calls/{callId}/decline": {
        "post": _op(
            "Decline a call ringing this agent; it moves on to the next member",
            "Call",
            params=[CALL_ID],
            errors=CALL_OP,
        )
    },
    "/me/calls/{callId}/hold": {
        "post": _op(
            "Put the customer on hold (they hear music)", "Call", params=[CALL_ID], errors=CALL_OP
        )
    },
    "/me/calls/{callId}/unhold": {
        "post": _op("Take the customer off hold", "Call", params=[CALL_ID], errors=CALL_OP)
    },
    "/me/calls/{callId}/mute": {
        "post": _op(
            "Mute the agent in the call",
            "Call",
            params=[CALL_ID],
            errors=CALL_OP,
            description="Unmute is the web phone's own microphone: ACS Call Automation has no "
            "server-side unmute, so the panel unmutes its local audio track.",
        )
    },
    "/me/calls/{callId}/dtmf": {
        "post": _op(
            "Send DTMF tones to the customer",
            "Call",
            params=[CALL_ID],
            errors=(400, *CALL_OP, 422),
            body=_obj(["tones"], tones={"type": "string", "pattern": "^[0-9*#A-D]{1,32}$"}),
        )
    },
    "/me/calls/{callId}/transfer": {
        "post": _op(
            "Direct transfer: the target replaces the agent when it answers",
            "Call",
            params=[CALL_ID],
            errors=(400, *CALL_OP, 422),
            body=_ref("TransferTarget"),
        )
    },
    "/me/calls/{callId}/consult": {
        "post": _op(
            "Consulted transfer: the customer on hold, the target rung for the agent",
            "Call",
            params=[CALL_ID],
            errors=(400, *CALL_OP, 422),
            body=_ref("TransferTarget"),
        )
    },
    "/me/calls/{callId}/consult/complete": {
        "post": _op(
            "Hand the customer to the consulted target; the agent leaves",
            "Call",
            params=[CALL_ID],
            errors=CALL_OP,
        )
    },
    "/me/calls/{callId}/consult/cancel": {
        "post": _op(
            "Drop the consulted target; the customer comes back to the agent",
            "Call",
            params=[CALL_ID],
            errors=CALL_OP,
        )
    },
    "/me/caller-ids": {"get": _op("Numbers the agent may show on outbound calls", "CallerIds")},
    "/directory": {
        "get": _op(
            "D365 contacts, accounts, leads and colleagues by name or number",
            "Directory",
            errors=(400, 401, 403, 422),
            params=[
                {"name": "q", "in": "query", "required": True, "schema": {**S, "minLength": 2}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 50}},
                {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
            ],
        )
    },
    "/me/availability": {
        "get": _op("The agent's status (§1.2.1)", "Availability"),
        "put": _op(
            "Set the status and/or the DND forwarding number",
            "Availability",
            errors=(400, 401, 403, 422),
            body=_obj(None, status=S, forwardTo=NS),
        ),
    },
    "/me/pools": {
        "get": _op("The agent's service pools and whether the agent is active in each", "Pools"),
        "put": _op(
            "Activate or deactivate the agent in pools",
            "Pools",
            errors=(400, 401, 403, 422),
            body=_obj(
                ["pools"],
                pools={"type": "array", "items": _obj(["poolId", "active"], poolId=S, active=B)},
            ),
        ),
    },
    "/me/session": {
        "post": _op(
            "Start the web phone's single session (§1.4); 409 with the document's message while "
            "another live session exists",
            "Session",
            code="201",
            errors=(400, 401, 403, 409),
            body=_obj(None, takeover=B),
        )
    },
    "/me/session/{sessionId}": {
        "put": _op(
            "Heartbeat: extend the lease",
            "Session",
            errors=(401, 403, 409),
            params=[{"name": "sessionId", "in": "path", "required": True, "schema": S}],
        ),
        "delete": {
            **_op(
                "End the session",
                None,
                code="204",
                params=[{"name": "sessionId", "in": "path", "required": True, "schema": S}],
            )
        },
    },
    "/me/acs-token": {
        "get": _op(
            "The agent's ACS user token (scope voip) for the panel's Calling SDK; 422 for an "
            "agent without acsUserId",
            "AcsToken",
            errors=(401, 403, 422, 503),
        )
    },
    "/recordings/{callId}": {
        "get": _op(
            "The call's recording audio: for supervisors, the call's own agents and anyone "
            "Dataverse lets read its Phone Call (asked as the viewer, CallerObjectId)",
            None,
            params=[CALL_ID],
            errors=(401, 403, 404),
        )
    },
    "/acs/incoming": {
        "post": _op(
            "Event Grid: the validation handshake and Microsoft.Communication.IncomingCall",
            "Accepted",
            errors=(400, 401, 503),
            security=FUNCTION_KEY,
            body={"type": "array", "items": {"type": "object"}},
        )
    },
    "/acs/recordings": {
        "post": _op(
            "Event Grid: Microsoft.Communication.RecordingFileStatusUpdated",
            "Accepted",
            errors=(400, 401, 503),
            security=FUNCTION_KEY,
            body={"type": "array", "items": {"type": "object"}},
        )
    },
    "/acs/callbacks/{callId}": {
        "post": _op(
            "ACS mid-call CloudEvents (ACS-signed JWT and the per-call token in ?token=)",
            "Accepted",
            params=[CALL_ID, {"name": "token", "in": "query", "required": True, "schema": S}],
            errors=(400, 401, 503),
            security=[],
            body={"type": "array", "items": {"type": "object"}},
        )
    },
    "/callbacks": {
        "post": _op(
            "Leave a callback request (e.g. from a web form)",
            None,
            code="201",
            errors=(400, 401, 422),
            security=FUNCTION_KEY,
            body=_obj(["number"], number=S, name=S, note=S, list=S),
            description="See docs/callbacks.md.",
        ),
        "get": _op(
            "Callback requests of a list, by state (supervisors)",
            None,
            errors=(400, 401, 403),
            params=[
                {"name": "list", "in": "query", "schema": S},
                {"name": "state", "in": "query", "schema": S},
            ],
        ),
    },
    "/enterprise-calls": {
        "post": _op(
            "Push call records from other systems (mobile operator, PBX)",
            None,
            errors=(400, 401, 422),
            security=FUNCTION_KEY,
            body={"type": "object"},
            description="See docs/enterprise-calls.md.",
        )
    },
    "/enterprise-calls/notifications": {
        "post": _op(
            "Microsoft Graph: call-record change notifications, and the validation handshake",
            None,
            code="202",
            errors=(400, 403, 503),
            security=[],
            params=[GRAPH_VALIDATION_TOKEN],
            body={"type": "object"},
            description="With `validationToken`: 200 text/plain echoing it. Otherwise a "
            "changeNotificationCollection; every item must carry the subscription's "
            "clientState (403 if one does not, nothing is taken). See docs/enterprise-calls.md.",
        )
    },
    "/enterprise-calls/lifecycle": {
        "post": _op(
            "Microsoft Graph: lifecycle notifications of the call-record subscription",
            None,
            code="202",
            errors=(400, 403, 503),
            security=[],
            params=[GRAPH_VALIDATION_TOKEN],
            body={"type": "object"},
            description="reauthorizationRequired renews, subscriptionRemoved recreates and "
            "catches up, missed catches up. See docs/enterprise-calls.md.",
        )
    },
    "/supervisor/pools": {
        "get": _op(
            "Supervisors: every pool's serving, free, active, active calls, queue length and "
            "max wait time (§9)",
            "Dashboard",
        )
    },
    "/supervisor/pools/{poolId}": {
        "get": _op(
            "Supervisors: one pool's figures, numbers and agents (§7)",
            "PoolDetail",
            params=[POOL_ID],
            errors=(401, 403, 404),
        )
    },
    "/supervisor/pools/{poolId}/members/{agentId}": {
        "put": _op(
            "Supervisors: activate or deactivate an agent in a pool (§7 2.a)",
            "PoolDetail",
            params=[POOL_ID, {"name": "agentId", "in": "path", "required": True, "schema": S}],
            errors=(400, 401, 403, 404, 422),
            body=_obj(["active"], active=B),
        )
    },
    "/openapi.json": {"get": _op("This document", None, errors=(), security=[])},
    "/panel/config.json": {
        "get": _op(
            "The web phone panel's settings: API base, MSAL.js sign-in, the device to use",
            "PanelConfig",
            errors=(),
            security=[],
        )
    },
    "/panel/{path}": {
        "get": _op(
            "The web phone panel's files (/api/panel/ is the CIF landing page; "
            "recording.html?callId= plays a recording)",
            None,
            params=[
                {
                    "name": "path",
                    "in": "path",
                    "required": True,
                    "schema": S,
                    "description": "A file under panel/dist; empty for index.html "
                    "(route panel/{*path}, a catch-all).",
                }
            ],
            errors=(404,),
            security=[],
        )
    },
}


def document(version: str) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "D365 Phone API",
            "version": version,
            "description": "The web phone panel's API and the webhooks of the D365 phone "
            "backend. Errors are RFC 9457 problem+json.",
        },
        "servers": [{"url": "/api"}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "entra": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "Entra ID access token for API_AUDIENCE with the "
                    "agent (or supervisor) app role.",
                },
                "functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"},
            },
        },
    }
