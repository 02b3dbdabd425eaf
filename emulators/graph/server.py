"""Microsoft Graph stand-in: the call-record reports (`getPstnCalls`) with Graph's paging, auth
and throttling, call records (`callRecords/{id}`), subscriptions with change and lifecycle
notifications, plus a control API to end Teams calls, seed PSTN rows and inject faults."""

from __future__ import annotations

import datetime as dt
import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from werkzeug.wrappers import Request, Response

from emulators.common.server import EmulatorApp, RunningServer, json_response
from emulators.common.tls import LocalTLS
from emulators.dataverse.auth import BearerChecker, TokenRejected
from emulators.graph.call_records import (
    expanded,
    graph_timestamp,
    parse_graph_time,
    teams_pstn_call,
)
from emulators.graph.subscriptions import (
    NotificationPlan,
    SubscriptionError,
    SubscriptionHub,
)

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Graph's well-known application id
CALL_RECORDS_ROLE = "CallRecords.Read.All"
DEFAULT_PAGE_SIZE = 1000  # Graph pages getPstnCalls by 1,000 entries
MAX_RANGE = dt.timedelta(days=90)
JSON_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
_FUNCTION = re.compile(r"^getPstnCalls\((?P<args>[^)]*)\)$")
_RECORD_ID = re.compile(r"^[0-9a-fA-F-]{36}$")
TENANT_ID = "00000000-0000-4000-8000-0000000000aa"
_PSTN_FIELDS = (
    "id",
    "callId",
    "userId",
    "userPrincipalName",
    "userDisplayName",
    "startDateTime",
    "endDateTime",
    "duration",
    "charge",
    "callType",
    "currency",
    "calleeNumber",
    "usageCountryCode",
    "tenantCountryCode",
    "connectionCharge",
    "callerNumber",
    "destinationContext",
    "destinationName",
    "conferenceId",
    "licenseCapability",
    "inventoryType",
    "operator",
    "callDurationSource",
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def pstn_call_row(**fields: Any) -> dict[str, Any]:
    """A pstnCallLogRow as Graph returns it; `fields` override the realistic defaults.

    `startDateTime` may be a datetime or text; `endDateTime` and `duration` follow from each
    other when only one is given.
    """
    start_value = fields.pop("startDateTime", None) or _now() - dt.timedelta(minutes=10)
    start = start_value if isinstance(start_value, dt.datetime) else parse_graph_time(start_value)
    end_value = fields.pop("endDateTime", None)
    duration = fields.pop("duration", None)
    if end_value is not None:
        end = end_value if isinstance(end_value, dt.datetime) else parse_graph_time(end_value)
        if duration is None:
            duration = int((end - start).total_seconds())
    else:
        duration = 120 if duration is None else int(duration)
        end = start + dt.timedelta(seconds=duration)
    call_type = fields.get("callType", "user_in")
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "callId": f"{uuid.uuid4().int % 10**10}_{uuid.uuid4().int % 10**9}@52.114.7.12",
        "userId": str(uuid.uuid4()),
        "userPrincipalName": "user@contoso.example",
        "userDisplayName": "Teams User",
        "startDateTime": graph_timestamp(start),
        "endDateTime": graph_timestamp(end),
        "duration": duration,
        "charge": 0.0,
        "callType": call_type,
        "currency": "EUR",
        "calleeNumber": "+358101000300",
        "usageCountryCode": "FI",
        "tenantCountryCode": "FI",
        "connectionCharge": 0.0,
        "callerNumber": "+358401234567",
        "destinationContext": None if call_type.endswith("_in") else "Domestic",
        "destinationName": "Finland",
        "conferenceId": None,
        "licenseCapability": "MCOPSTN1",
        "inventoryType": "Subscriber",
        "operator": "Microsoft",
        "callDurationSource": "microsoft",
    }
    unknown = sorted(set(fields) - set(_PSTN_FIELDS))
    if unknown:
        raise ValueError(f"unknown pstnCallLogRow properties: {unknown}")
    row.update(fields)
    return row


class GraphEmulator:
    """Graph on loopback HTTPS. Tokens are checked against the Entra emulator's JWKS: issuer,
    audience `https://graph.microsoft.com` (or Graph's app id) and the CallRecords.Read.All
    application role."""

    def __init__(
        self,
        *,
        tls: LocalTLS | None,
        port: int,
        jwks_url: str,
        issuer: str,
        required_role: str | None = CALL_RECORDS_ROLE,
        page_size: int = DEFAULT_PAGE_SIZE,
    ) -> None:
        self._checker = BearerChecker(
            jwks_url=jwks_url,
            issuer=issuer,
            audiences={GRAPH_RESOURCE, f"{GRAPH_RESOURCE}/", GRAPH_APP_ID},
            ca_path=str(tls.ca_path) if tls else None,
        )
        self.required_role = required_role
        self._default_page_size = page_size
        self._lock = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._page_size = page_size
        self._throttle_after = 0
        self._throttle_count = 0
        self._retry_after = 1
        self._log: list[dict[str, Any]] = []
        self._records: dict[str, dict[str, Any]] = {}
        self._plan = NotificationPlan()
        self.subscriptions = SubscriptionHub(
            ca_path=str(tls.ca_path) if tls else None, tenant_id=TENANT_ID
        )
        self._app = EmulatorApp()
        self._app.not_found = self._not_found  # type: ignore[method-assign]
        self._app.method_not_allowed = self._method_not_allowed  # type: ignore[method-assign]
        self._routes()
        self._server = RunningServer(
            self._wsgi, port=port, ssl_context=tls.server_context() if tls else None
        )
        self.url = self._server.url

    def start(self) -> GraphEmulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    # ---- in-process control (the HTTP control API calls these too) ---------------------------

    def seed_pstn_calls(self, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Add PSTN call records (missing properties get realistic defaults); their ids."""
        made = [pstn_call_row(**dict(r)) for r in rows]
        with self._lock:
            self._rows.extend(made)
        return [r["id"] for r in made]

    def throttle(self, *, count: int = 1, retry_after: int = 1, after: int = 0) -> None:
        """Let `after` API requests through, then answer the next `count` with 429."""
        with self._lock:
            self._throttle_after, self._throttle_count = max(0, after), max(0, count)
            self._retry_after = max(0, retry_after)

    def set_page_size(self, size: int) -> None:
        if size < 1:
            raise ValueError("pageSize must be at least 1")
        with self._lock:
            self._page_size = size

    def end_teams_call(
        self,
        *,
        user_id: str,
        user_principal_name: str = "user@contoso.example",
        direction: str = "inbound",
        number: str = "+358401234567",
        start: dt.datetime | None = None,
        ring_seconds: int = 5,
        connected_seconds: int = 120,
        copies: int | None = None,
        delay_seconds: float | None = None,
        miss: bool | None = None,
    ) -> dict[str, Any]:
        """A Teams user's PSTN call ends: its callRecord and pstnCallLogRow appear and every
        callRecords subscription is notified, as the next plan (or the arguments) say."""
        if direction not in ("inbound", "outbound"):
            raise ValueError("direction must be inbound or outbound")
        if ring_seconds < 0 or connected_seconds < 0:
            raise ValueError("ringSeconds and connectedSeconds must not be negative")
        began = start or _now() - dt.timedelta(seconds=ring_seconds + connected_seconds)
        record, row = teams_pstn_call(
            user_id=user_id,
            user_principal_name=user_principal_name,
            direction=direction,
            number=number,
            start=began,
            ring_seconds=ring_seconds,
            connected_seconds=connected_seconds,
            tenant_id=TENANT_ID,
        )
        [row_id] = self.seed_pstn_calls([row])
        with self._lock:
            self._records[record["id"]] = record
            plan, self._plan = self._plan, NotificationPlan()
        plan = NotificationPlan(
            copies=plan.copies if copies is None else copies,
            delay_seconds=plan.delay_seconds if delay_seconds is None else delay_seconds,
            miss=plan.miss if miss is None else miss,
        )
        sent = self.subscriptions.notify_call_record(record["id"], plan)
        return {"callRecordId": record["id"], "pstnCallId": row_id, "notifications": sent}

    def plan_next_notification(
        self, *, copies: int = 1, delay_seconds: float = 0.0, miss: bool = False
    ) -> None:
        """How the next ended call's notification is delivered: copies, delay, or missed."""
        with self._lock:
            self._plan = NotificationPlan(max(1, copies), max(0.0, delay_seconds), miss)

    def call_records(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._records.values()]

    def pstn_calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._rows]

    def requests_seen(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._log]

    def reset(self) -> None:
        self.subscriptions.reset()
        with self._lock:
            self._records.clear()
            self._plan = NotificationPlan()
            self._rows.clear()
            self._log.clear()
            self._page_size = self._default_page_size
            self._throttle_after = self._throttle_count = 0
            self._retry_after = 1

    # ---- HTTP ---------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path.startswith("/_control/"):
            return self._app.dispatch(request)(environ, start_response)
        request_id = str(uuid.uuid4())
        environ["graph.request_id"] = request_id
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "query": request.query_string.decode("latin-1"),
            "time": _now().isoformat(),
        }
        response = self._api(request, entry)
        entry["status"] = response.status_code
        with self._lock:
            self._log.append(entry)
        response.headers["request-id"] = request_id
        response.headers["client-request-id"] = (
            request.headers.get("client-request-id") or request_id
        )
        return response(environ, start_response)

    def _api(self, request: Request, entry: dict[str, Any]) -> Response:
        try:
            token = self._checker.check(request.headers.get("Authorization"))
        except TokenRejected as exc:
            entry["reason"] = str(exc)
            empty = not (request.headers.get("Authorization") or "").strip()
            message = "Access token is empty." if empty else "Access token validation failure."
            if "audience" in str(exc).lower():
                message = "Access token validation failure. Invalid audience."
            return self._error(
                request,
                401,
                "InvalidAuthenticationToken",
                message,
                headers={
                    "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.'
                    'microsoftonline.com/common/oauth2/authorize", '
                    f'client_id="{GRAPH_APP_ID}"'
                },
            )
        entry["app_id"] = token.app_id
        request.environ["graph.app_id"] = token.app_id
        roles = token.claims.get("roles") or []
        request.environ["graph.roles"] = list(roles)
        if self.required_role and self.required_role not in roles:
            return self._error(
                request,
                403,
                "Forbidden",
                f"Missing role permissions on the request. API requires one of "
                f"'{self.required_role}'. Roles on the request '{','.join(roles)}'.",
            )
        if self._take_throttle():
            return self._error(
                request,
                429,
                "TooManyRequests",
                "Too many requests. Retry after the interval in the Retry-After header.",
                headers={"Retry-After": str(self._retry_after)},
            )
        return self._app.dispatch(request)

    def _take_throttle(self) -> bool:
        with self._lock:
            if self._throttle_after > 0:
                self._throttle_after -= 1
                return False
            if self._throttle_count > 0:
                self._throttle_count -= 1
                return True
            return False

    def _routes(self) -> None:
        app = self._app
        app.route("/v1.0/communications/callRecords/<function>", ["GET"], self._call_records)
        app.route("/v1.0/subscriptions", ["POST"], self._subscription_create)
        app.route("/v1.0/subscriptions", ["GET"], self._subscription_list)
        app.route("/v1.0/subscriptions/<sub_id>", ["GET"], self._subscription_get)
        app.route("/v1.0/subscriptions/<sub_id>", ["PATCH"], self._subscription_update)
        app.route("/v1.0/subscriptions/<sub_id>", ["DELETE"], self._subscription_delete)
        app.route("/_control/teamsCalls", ["POST"], self._control_teams_call)
        app.route("/_control/callRecords", ["GET"], self._control_records)
        app.route("/_control/notifications", ["POST"], self._control_plan)
        app.route("/_control/subscriptions", ["GET"], self._control_subscriptions)
        app.route("/_control/subscriptions/<sub_id>/expire", ["POST"], self._control_expire)
        app.route("/_control/subscriptions/<sub_id>/lifecycle", ["POST"], self._control_lifecycle)
        app.route("/_control/deliveries", ["GET"], self._control_deliveries)
        app.route("/_control/pstnCalls", ["POST"], self._control_seed)
        app.route("/_control/pstnCalls", ["GET"], self._control_list)
        app.route("/_control/throttle", ["POST"], self._control_throttle)
        app.route("/_control/paging", ["POST"], self._control_paging)
        app.route("/_control/requests", ["GET"], self._control_requests)
        app.route("/_control/requests", ["DELETE"], self._control_clear_requests)
        app.route("/_control/reset", ["POST"], self._control_reset)

    def _call_records(self, request: Request, function: str) -> Response:
        if _RECORD_ID.match(function):
            return self._call_record(request, function)
        match = _FUNCTION.match(function)
        if match is None:
            return self._error(
                request,
                400,
                "BadRequest",
                f"Resource not found for the segment '{function.split('(')[0]}'.",
            )
        args = dict(part.split("=", 1) for part in match.group("args").split(",") if "=" in part)
        times: dict[str, dt.datetime] = {}
        for name in ("fromDateTime", "toDateTime"):
            if name not in args:
                return self._error(
                    request,
                    400,
                    "BadRequest",
                    f"The parameter '{name}' of the function 'getPstnCalls' is missing.",
                )
            try:
                times[name] = parse_graph_time(args[name])
            except ValueError:
                return self._error(
                    request,
                    400,
                    "BadRequest",
                    f"The parameter '{name}' is not a valid DateTimeOffset: '{args[name]}'.",
                )
        start, end = times["fromDateTime"], times["toDateTime"]
        if end < start:
            return self._error(
                request, 400, "BadRequest", "toDateTime must not be earlier than fromDateTime."
            )
        if end - start > MAX_RANGE:
            return self._error(
                request,
                400,
                "BadRequest",
                "The fromDateTime and toDateTime values cannot be more than a date range of "
                "90 days.",
            )
        skip_text = request.args.get("$skip", "0")
        if not skip_text.isdigit():
            return self._error(request, 400, "BadRequest", f"Invalid $skip value '{skip_text}'.")
        skip = int(skip_text)
        with self._lock:
            rows = sorted(
                (r for r in self._rows if start <= parse_graph_time(r["startDateTime"]) <= end),
                key=lambda r: (parse_graph_time(r["startDateTime"]), r["id"]),
            )
            page_size = self._page_size
        page = rows[skip : skip + page_size]
        body: dict[str, Any] = {
            "@odata.context": f"{self.url}/v1.0/$metadata#Collection(microsoft.graph."
            "callRecords.pstnCallLogRow)",
            "@odata.count": len(page),
            "value": page,
        }
        if skip + page_size < len(rows):
            body["@odata.nextLink"] = (
                f"{self.url}/v1.0/communications/callRecords/{quote(function, safe='(),=:')}"
                f"?$skip={skip + page_size}"
            )
        return json_response(body, content_type=JSON_TYPE)

    def _call_record(self, request: Request, record_id: str) -> Response:
        with self._lock:
            record = self._records.get(record_id.lower())
        if record is None:
            return self._error(
                request, 404, "NotFound", f"The call record '{record_id}' was not found."
            )
        body = expanded(record, request.args.get("$expand", ""))
        if "sessions@odata.context" in body:
            body["sessions@odata.context"] = (
                f"{self.url}/v1.0/$metadata#communications/callRecords('{record['id']}')/sessions"
            )
        return json_response(
            {
                "@odata.context": f"{self.url}/v1.0/$metadata#communications/callRecords/$entity",
                **body,
            },
            content_type=JSON_TYPE,
        )

    # ---- subscriptions -----------------------------------------------------------------------

    def _app_id(self, request: Request) -> str:
        return str(request.environ.get("graph.app_id") or "")

    def _sub_error(self, request: Request, exc: SubscriptionError) -> Response:
        return self._error(request, exc.status, exc.code, exc.message)

    def _subscription_create(self, request: Request) -> Response:
        try:
            sub = self.subscriptions.create(
                request.get_json(silent=True),
                app_id=self._app_id(request),
                roles=list(request.environ.get("graph.roles") or []),
                base_url=self.url,
            )
        except SubscriptionError as exc:
            return self._sub_error(request, exc)
        return json_response(sub.to_json(self.url), 201, content_type=JSON_TYPE)

    def _subscription_list(self, request: Request) -> Response:
        subs = self.subscriptions.list(app_id=self._app_id(request))
        values = []
        for sub in subs:
            item = sub.to_json(self.url)
            item.pop("@odata.context")
            values.append(item)
        return json_response(
            {"@odata.context": f"{self.url}/v1.0/$metadata#subscriptions", "value": values},
            content_type=JSON_TYPE,
        )

    def _subscription_get(self, request: Request, sub_id: str) -> Response:
        try:
            sub = self.subscriptions.get(sub_id, app_id=self._app_id(request))
        except SubscriptionError as exc:
            return self._sub_error(request, exc)
        return json_response(sub.to_json(self.url), content_type=JSON_TYPE)

    def _subscription_update(self, request: Request, sub_id: str) -> Response:
        try:
            sub = self.subscriptions.update(
                sub_id, request.get_json(silent=True), app_id=self._app_id(request)
            )
        except SubscriptionError as exc:
            return self._sub_error(request, exc)
        return json_response(sub.to_json(self.url), content_type=JSON_TYPE)

    def _subscription_delete(self, request: Request, sub_id: str) -> Response:
        try:
            self.subscriptions.delete(sub_id, app_id=self._app_id(request))
        except SubscriptionError as exc:
            return self._sub_error(request, exc)
        return Response(status=204)

    # ---- errors in Graph's shape -------------------------------------------------------------

    def _error(
        self,
        request: Request,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> Response:
        request_id = str(request.environ.get("graph.request_id") or uuid.uuid4())
        return json_response(
            {
                "error": {
                    "code": code,
                    "message": message,
                    "innerError": {
                        "date": _now().strftime("%Y-%m-%dT%H:%M:%S"),
                        "request-id": request_id,
                        "client-request-id": request.headers.get("client-request-id") or request_id,
                    },
                }
            },
            status,
            headers=headers,
            content_type=JSON_TYPE,
        )

    def _not_found(self, request: Request) -> Response:
        segment = request.path.rstrip("/").rsplit("/", 1)[-1]
        return self._error(
            request, 400, "BadRequest", f"Resource not found for the segment '{segment}'."
        )

    def _method_not_allowed(self, request: Request) -> Response:
        return self._error(
            request,
            405,
            "Request_BadRequest",
            f"Specified HTTP method is not allowed for the request target: {request.method}.",
        )

    # ---- control API --------------------------------------------------------------------------

    def _control_seed(self, request: Request) -> Response:
        body = request.get_json(silent=True)
        rows = body.get("value") if isinstance(body, dict) else body
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            return json_response(
                {"error": 'send a list of pstnCallLogRow objects, or {"value": [...]}'}, 400
            )
        try:
            ids = self.seed_pstn_calls(rows)
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response({"ids": ids}, 201)

    def _control_list(self, request: Request) -> Response:
        return json_response({"value": self.pstn_calls()})

    def _control_throttle(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        try:
            self.throttle(
                count=int(body.get("count", 1)),
                retry_after=int(body.get("retryAfter", 1)),
                after=int(body.get("after", 0)),
            )
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)
        return Response(status=204)

    def _control_paging(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        try:
            self.set_page_size(int(body.get("pageSize", DEFAULT_PAGE_SIZE)))
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)
        return Response(status=204)

    def _control_requests(self, request: Request) -> Response:
        return json_response({"requests": self.requests_seen()})

    def _control_clear_requests(self, request: Request) -> Response:
        with self._lock:
            self._log.clear()
        return Response(status=204)

    def _control_teams_call(self, request: Request) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("userId"), str):
            return json_response({"error": 'send {"userId": ..., ...} (see the README)'}, 400)
        try:
            start = body.get("startDateTime")
            ended = self.end_teams_call(
                user_id=body["userId"],
                user_principal_name=str(body.get("userPrincipalName") or "user@contoso.example"),
                direction=str(body.get("direction") or "inbound"),
                number=str(body.get("number") or "+358401234567"),
                start=parse_graph_time(start) if isinstance(start, str) else None,
                ring_seconds=int(body.get("ringSeconds", 5)),
                connected_seconds=int(body.get("connectedSeconds", 120)),
                copies=int(body["copies"]) if "copies" in body else None,
                delay_seconds=float(body["delaySeconds"]) if "delaySeconds" in body else None,
                miss=bool(body["miss"]) if "miss" in body else None,
            )
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(ended, 201)

    def _control_records(self, request: Request) -> Response:
        return json_response({"value": self.call_records()})

    def _control_plan(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        try:
            self.plan_next_notification(
                copies=int(body.get("copies", 1)),
                delay_seconds=float(body.get("delaySeconds", 0)),
                miss=bool(body.get("miss", False)),
            )
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)
        return Response(status=204)

    def _control_subscriptions(self, request: Request) -> Response:
        now = _now()
        return json_response(
            {
                "value": [
                    {**s.to_json(self.url), "removed": s.removed, "expired": s.expires <= now}
                    for s in self.subscriptions.all()
                ]
            }
        )

    def _control_expire(self, request: Request, sub_id: str) -> Response:
        body = request.get_json(silent=True) or {}
        try:
            sub = self.subscriptions.set_expiry(sub_id, float(body.get("inSeconds", 0)))
        except KeyError:
            return json_response({"error": f"no subscription {sub_id}"}, 404)
        except (TypeError, ValueError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(sub.to_json(self.url))

    def _control_lifecycle(self, request: Request, sub_id: str) -> Response:
        body = request.get_json(silent=True) or {}
        try:
            self.subscriptions.lifecycle(sub_id, str(body.get("event", "")))
        except KeyError:
            return json_response({"error": f"no subscription {sub_id}"}, 404)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        return Response(status=202)

    def _control_deliveries(self, request: Request) -> Response:
        return json_response({"value": self.subscriptions.deliveries()})

    def _control_reset(self, request: Request) -> Response:
        self.reset()
        return Response(status=204)


def start(
    *,
    tls: LocalTLS | None,
    port: int = 0,
    jwks_url: str,
    issuer: str,
    required_role: str | None = CALL_RECORDS_ROLE,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> GraphEmulator:
    """Start Graph trusting app tokens from `issuer` signed with the keys at `jwks_url`."""
    return GraphEmulator(
        tls=tls,
        port=port,
        jwks_url=jwks_url,
        issuer=issuer,
        required_role=required_role,
        page_size=page_size,
    ).start()
