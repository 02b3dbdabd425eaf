"""Dataverse Web API v9.2 stand-in over HTTPS: records, queries, $batch, metadata, control API."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from werkzeug.wrappers import Request, Response

from emulators.common.server import RunningServer
from emulators.common.tls import LocalTLS
from emulators.dataverse import errors as E
from emulators.dataverse.auth import BearerChecker, TokenInfo, TokenRejected
from emulators.dataverse.batch import (
    InnerResponse,
    boundary_of,
    parse_inner_request,
    parse_multipart,
    render_batch,
)
from emulators.dataverse.errors import ODataError
from emulators.dataverse.privileges import Privileges
from emulators.dataverse.query import parse_expand
from emulators.dataverse.schema import Table
from emulators.dataverse.store import ROOT_BUSINESS_UNIT_ID, Caller, Store, etag

API_PREFIX = "/api/data/v9.2"
JSON_TYPE = "application/json; odata.metadata=minimal"
DEFAULT_PAGE_SIZE = 5000
_SEGMENT = re.compile(r"^([A-Za-z_$][\w.$]*)(?:\((.*)\))?$")
_ALLOWED_OPTIONS = {"$select", "$filter", "$orderby", "$top", "$expand", "$count", "$skiptoken"}
# Tables in the order seeding must create them so that @odata.bind targets exist.
_SEED_ORDER = [
    "systemusers",
    "teams",
    "accounts",
    "contacts",
    "leads",
    "queues",
    "phonecalls",
    "activityparties",
    "queueitems",
]
_ORGANIZATION_ID = "7a1a0b8c-0d4e-4f36-9a53-6c7d2f1e0a01"
_BUSINESS_UNIT_ID = ROOT_BUSINESS_UNIT_ID


@dataclass
class Fault:
    status: int
    retry_after: int | None = None


@dataclass
class Context:
    """One API request's identity and the Content-ID map of its change set."""

    caller: Caller
    token: TokenInfo
    caller_object_id: str | None
    content_ids: dict[str, str] = field(default_factory=dict)
    in_batch: bool = False


class DataverseEmulator:
    """A Dataverse organisation. `url` is the org URL (the token audience); the Web API is at
    `api_url` (`{url}/api/data/v9.2`)."""

    def __init__(self, *, tls: LocalTLS | None, port: int, jwks_url: str, issuer: str) -> None:
        self.store = Store()
        self.privileges = Privileges()  # impersonated users' read access (CallerObjectId)
        self._server = RunningServer(
            self, port=port, ssl_context=tls.server_context() if tls else None
        )
        self.url = self._server.url
        self.api_url = f"{self.url}{API_PREFIX}"
        self.issuer = issuer
        self._checker = BearerChecker(
            jwks_url=jwks_url,
            issuer=issuer,
            audiences={self.url, f"{self.url}/"},
            ca_path=str(tls.ca_path) if tls else None,
        )
        self._lock = threading.Lock()
        self._faults: deque[Fault] = deque()
        self._throttle_share = 0.0
        self._throttle_credit = 0.0
        self._throttle_retry_after = 5
        self._throttle_statuses: tuple[int, ...] = (429,)
        self._throttle_turn = 0
        self._log: list[dict[str, Any]] = []

    def start(self) -> DataverseEmulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    # ---- in-process control (the HTTP control API calls these too) ---------------------------

    def reset(self) -> None:
        self.store.reset()
        self.privileges.reset()
        with self._lock:
            self._faults.clear()
            self._throttle_share = self._throttle_credit = 0.0
            self._log.clear()

    def seed(self, data: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[str]]:
        unknown = [s for s in data if self.store.table_for_set(s) is None]
        if unknown:
            raise ODataError(400, E.RESOURCE_NOT_FOUND, f"Unknown entity sets: {unknown}")
        order = [s for s in _SEED_ORDER if s in data] + [s for s in data if s not in _SEED_ORDER]
        created: dict[str, list[str]] = {}
        with self.store.lock:
            snap = self.store.snapshot()
            try:
                seeder = Caller(self.store.application_user("emulator-seed"))
                for entity_set in order:
                    table = self.store.table_for_set(entity_set)
                    assert table is not None
                    created[entity_set] = [
                        self.store.create(table, dict(row), seeder, seeding=True)
                        for row in data[entity_set]
                    ]
            except ODataError:
                self.store.restore(snap)
                raise
        return created

    def throttle(
        self,
        *,
        count: int = 0,
        share: float = 0.0,
        retry_after: int = 5,
        statuses: tuple[int, ...] = (429,),
    ) -> None:
        """The next `count` API requests get 429; then `share` (0..1) of the later ones get
        the `statuses` in turn (e.g. 429 and 503: throttled, then the service busy)."""
        if not statuses or any(s not in (429, 503) for s in statuses):
            raise ValueError("statuses are 429 and/or 503")
        with self._lock:
            self._faults.extend(Fault(429, retry_after) for _ in range(count))
            self._throttle_share = max(0.0, min(1.0, share))
            self._throttle_credit = 0.0
            self._throttle_retry_after = retry_after
            self._throttle_statuses = tuple(statuses)
            self._throttle_turn = 0

    def inject_faults(
        self, *, status: int = 503, count: int = 1, retry_after: int | None = None
    ) -> None:
        with self._lock:
            self._faults.extend(Fault(status, retry_after) for _ in range(count))

    def records(self, entity_set: str) -> list[dict[str, Any]]:
        table = self.store.table_for_set(entity_set)
        if table is None:
            raise ODataError(404, E.RESOURCE_NOT_FOUND, f"Unknown entity set '{entity_set}'.")
        rows = self.store.query(table)
        return [self.store.render(table, r, select=None, expand=[], annotations=True) for r in rows]

    def requests_seen(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._log)

    # ---- WSGI ----------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if request.path.startswith("/_control/"):
            response = self._control(request)
        elif request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/"):
            response = self._api(request)
        else:
            response = _json(
                404, {"error": {"code": "0x8006088a", "message": "Resource not found."}}
            )
        return response(environ, start_response)

    def _record(self, entry: dict[str, Any]) -> None:
        entry["time"] = dt.datetime.now(dt.UTC).isoformat()
        with self._lock:
            self._log.append(entry)

    def _api(self, request: Request) -> Response:
        caller_object_id = request.headers.get("CallerObjectId")
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "query": request.query_string.decode("latin-1"),
            "caller_object_id": caller_object_id,
            "in_batch": False,
            "body": _json_or_none(request.get_data()),
        }
        try:
            token = self._checker.check(request.headers.get("Authorization"))
        except TokenRejected as exc:
            entry.update(status=401, reason=str(exc))
            self._record(entry)
            return self._unauthorized()
        entry.update(oid=token.oid, app_id=token.app_id)
        fault = self._next_fault()
        if fault is not None:
            entry["status"] = fault.status
            self._record(entry)
            return self._fault_response(fault)
        try:
            caller = self._caller(token, caller_object_id)
            ctx = Context(caller=caller, token=token, caller_object_id=caller_object_id)
            rest = request.path[len(API_PREFIX) :].lstrip("/")
            if rest == "$batch":
                if request.method != "POST":
                    raise ODataError(405, E.QUERY_PARSE, "$batch only accepts POST.")
                response = self._batch(request, ctx)
                entry["status"] = response.status_code
                self._record(entry)
                return response
            inner = self.execute(
                request.method,
                rest,
                dict(parse_qsl(request.query_string.decode("latin-1"), keep_blank_values=True)),
                {k.lower(): v for k, v in request.headers.items()},
                request.get_data(),
                ctx,
            )
        except ODataError as exc:
            inner = _error(exc)
        entry["status"] = inner.status
        self._record(entry)
        return Response(inner.body, status=inner.status, headers=inner.headers)

    def _caller(self, token: TokenInfo, caller_object_id: str | None) -> Caller:
        if caller_object_id:
            user = self.store.user_by_object_id(caller_object_id)
            if user is None:
                raise ODataError(
                    404,
                    E.NOT_FOUND,
                    f"systemuser With azureactivedirectoryobjectid = {caller_object_id} Does "
                    "Not Exist",
                )
            return Caller(user)
        return Caller(self.store.application_user(token.app_id or token.oid))

    def _unauthorized(self) -> Response:
        authority = self.issuer.removesuffix("/v2.0").rstrip("/")
        return Response(
            b"",
            status=401,
            headers={
                "WWW-Authenticate": (
                    f"Bearer authorization_uri={authority}/oauth2/authorize, "
                    f"resource_id={self.url}/"
                ),
            },
        )

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            if self._throttle_share > 0:
                # Error diffusion: exactly `share` of the requests, spread evenly, repeatable.
                self._throttle_credit += self._throttle_share
                if self._throttle_credit >= 1.0:
                    self._throttle_credit -= 1.0
                    statuses = self._throttle_statuses
                    self._throttle_turn += 1
                    status = statuses[self._throttle_turn % len(statuses)]
                    return Fault(status, self._throttle_retry_after)
            return None

    def _fault_response(self, fault: Fault) -> Response:
        headers = {"OData-Version": "4.0"}
        if fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        if fault.status == 429:
            body = {
                "error": {
                    "code": E.THROTTLED,
                    "message": "Number of requests exceeded the limit of 6000 over time window "
                    "of 300 seconds.",
                }
            }
        else:
            body = {
                "error": {
                    "code": "0x80040216",
                    "message": "The service is temporarily unavailable. Try again later.",
                }
            }
        return Response(
            json.dumps(body), status=fault.status, headers=headers, content_type=JSON_TYPE
        )

    # ---- request execution (also used for each request inside a $batch) ----------------------

    def execute(
        self,
        method: str,
        rest: str,
        args: dict[str, str],
        headers: Mapping[str, str],
        body: bytes,
        ctx: Context,
    ) -> InnerResponse:
        try:
            return self._dispatch(method, rest, args, headers, body, ctx)
        except ODataError as exc:
            return _error(exc)

    def _dispatch(
        self,
        method: str,
        rest: str,
        args: dict[str, str],
        headers: Mapping[str, str],
        body: bytes,
        ctx: Context,
    ) -> InnerResponse:
        segments = [unquote(s) for s in rest.split("/") if s]
        if segments and segments[0].startswith("$") and segments[0] in ctx.content_ids:
            segments = ctx.content_ids[segments[0]].split("/") + segments[1:]
        if not segments:
            raise ODataError(404, E.RESOURCE_NOT_FOUND, "Resource not found for the segment ''.")
        for option in args:
            if option.startswith("$") and option not in _ALLOWED_OPTIONS:
                raise E.query_error(f"The query parameter {option} is not supported")
        prefer = _prefer(headers.get("prefer", ""))
        head = _SEGMENT.match(segments[0])
        if head is None:
            raise ODataError(
                404, E.RESOURCE_NOT_FOUND, f"Resource not found for the segment '{segments[0]}'."
            )
        name, key = head.group(1), head.group(2)
        if name in ("WhoAmI",) and method == "GET":
            return self._ok(
                {
                    "@odata.context": f"{self.api_url}/$metadata#Microsoft.Dynamics.CRM."
                    "WhoAmIResponse",
                    "BusinessUnitId": _BUSINESS_UNIT_ID,
                    "UserId": ctx.caller.systemuser_id,
                    "OrganizationId": _ORGANIZATION_ID,
                }
            )
        if name == "EntityDefinitions":
            return self._metadata(method, key, segments[1:], body)
        table = self.store.table_for_set(name)
        if table is None:
            raise ODataError(
                404, E.RESOURCE_NOT_FOUND, f"Resource not found for the segment '{name}'."
            )
        payload = _substitute_content_ids(_json_body(body, method), ctx.content_ids)
        if key is None:
            if len(segments) > 1:
                raise ODataError(
                    404,
                    E.RESOURCE_NOT_FOUND,
                    f"Resource not found for the segment '{segments[1]}'.",
                )
            if method == "GET":
                return self._query(table, args, headers, prefer)
            if method == "POST":
                return self._create(table, payload, args, prefer, ctx)
            raise ODataError(405, E.QUERY_PARSE, f"{method} is not allowed on an entity set.")
        record_id = _key(table, key)
        if len(segments) == 1:
            if method == "GET":
                if ctx.caller_object_id:
                    record = self.store.get(table, record_id)  # 404 first, as the service
                    self.privileges.check_read(table.logical_name, record, ctx.caller.systemuser_id)
                return self._read(
                    table, record_id, args, prefer, if_none_match=headers.get("if-none-match")
                )
            if method == "PATCH":
                return self._update(table, record_id, payload, args, headers, prefer, ctx)
            if method == "DELETE":
                self.store.delete(table, record_id, if_match=headers.get("if-match"))
                return InnerResponse(204, {"OData-Version": "4.0"})
            raise ODataError(405, E.QUERY_PARSE, f"{method} is not allowed on an entity.")
        nav = segments[1]
        if nav == "Microsoft.Dynamics.CRM.AddToQueue" and table.logical_name == "queue":
            if method != "POST":
                raise ODataError(405, E.QUERY_PARSE, "AddToQueue is an action: use POST.")
            item_id = self.store.add_to_queue(record_id, (payload or {}).get("Target"), ctx.caller)
            return self._ok(
                {
                    "@odata.context": f"{self.api_url}/$metadata#Microsoft.Dynamics.CRM."
                    "AddToQueueResponse",
                    "QueueItemId": item_id,
                }
            )
        if table.logical_name == "role" and nav == "Microsoft.Dynamics.CRM.AddPrivilegesRole":
            if method != "POST":
                raise ODataError(405, E.QUERY_PARSE, "AddPrivilegesRole is an action: use POST.")
            self.store.add_privileges_role(record_id, payload)
            return InnerResponse(204, {"OData-Version": "4.0"})
        if (
            table.logical_name == "role"
            and nav == "Microsoft.Dynamics.CRM.RetrieveRolePrivilegesRole()"
        ):
            if method != "GET":
                raise ODataError(405, E.QUERY_PARSE, "RetrieveRolePrivilegesRole is a function.")
            return self._ok(
                {
                    "@odata.context": f"{self.api_url}/$metadata#Microsoft.Dynamics.CRM."
                    "RetrieveRolePrivilegesRoleResponse",
                    "RolePrivileges": self.store.privileges_of_role(record_id),
                }
            )
        return self._navigation(table, record_id, nav, method, payload, args, prefer, ctx)

    def _ok(
        self, body: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> InnerResponse:
        out = {"OData-Version": "4.0", "Content-Type": JSON_TYPE, **(headers or {})}
        return InnerResponse(status, out, json.dumps(body).encode())

    def _entity_url(self, table: Table, record_id: str) -> str:
        return f"{self.api_url}/{table.entity_set}({record_id})"

    def _query(
        self, table: Table, args: dict[str, str], headers: Mapping[str, str], prefer: dict[str, str]
    ) -> InnerResponse:
        select = self.store.parse_select(table, args.get("$select"))
        expand = parse_expand(args["$expand"]) if args.get("$expand") else []
        rows = self.store.query(
            table, filter_text=args.get("$filter"), orderby_text=args.get("$orderby")
        )
        total = len(rows)
        applied: list[str] = []
        next_link = None
        if "$top" in args:
            rows = rows[: _int_option("$top", args["$top"])]
        else:
            page_size = DEFAULT_PAGE_SIZE
            if "odata.maxpagesize" in prefer:
                page_size = max(1, _int_option("odata.maxpagesize", prefer["odata.maxpagesize"]))
                applied.append(f"odata.maxpagesize={page_size}")
            offset = _skiptoken_offset(args.get("$skiptoken"))
            page = rows[offset : offset + page_size]
            if offset + page_size < len(rows):
                params = {k: v for k, v in args.items() if k != "$skiptoken"}
                params["$skiptoken"] = (
                    f'<cookie pagenumber="{offset // page_size + 2}" '
                    f'offset="{offset + page_size}" istracking="False" />'
                )
                next_link = (
                    f"{self.api_url}/{table.entity_set}?{urlencode(params, quote_via=quote)}"
                )
            rows = page
        annotations = "odata.include-annotations" in prefer
        if annotations:
            applied.append(f'odata.include-annotations="{prefer["odata.include-annotations"]}"')
        columns = f"({','.join(select)})" if select else ""
        body: dict[str, Any] = {
            "@odata.context": f"{self.api_url}/$metadata#{table.entity_set}{columns}"
        }
        if args.get("$count", "").lower() == "true":
            body["@odata.count"] = min(total, 5000)
        with self.store.lock:
            body["value"] = [
                self.store.render(table, r, select=select, expand=expand, annotations=annotations)
                for r in rows
            ]
        if next_link:
            body["@odata.nextLink"] = next_link
        extra = {"Preference-Applied": ",".join(applied)} if applied else {}
        return self._ok(body, headers=extra)

    def _read(
        self,
        table: Table,
        record_id: str,
        args: dict[str, str],
        prefer: dict[str, str],
        *,
        if_none_match: str | None = None,
    ) -> InnerResponse:
        select = self.store.parse_select(table, args.get("$select"))
        expand = parse_expand(args["$expand"]) if args.get("$expand") else []
        annotations = "odata.include-annotations" in prefer
        with self.store.lock:
            record = self.store.get(table, record_id)
            if _not_modified(if_none_match, etag(record)):
                # A conditional retrieval of an unchanged record: 304, no body.
                return InnerResponse(304, {"OData-Version": "4.0", "ETag": etag(record)})
            body = self.store.render(
                table, record, select=select, expand=expand, annotations=annotations
            )
        columns = f"({','.join(select)})" if select else ""
        body = {
            "@odata.context": f"{self.api_url}/$metadata#{table.entity_set}{columns}/$entity",
            **body,
        }
        return self._ok(body, headers={"ETag": body["@odata.etag"]})

    def _representation(
        self,
        table: Table,
        record_id: str,
        args: dict[str, str],
        status: int,
        headers: dict[str, str],
    ) -> InnerResponse:
        response = self._read(table, record_id, args, {})
        response.status = status
        response.headers.update(headers)
        response.headers["Preference-Applied"] = "return=representation"
        return response

    def _create(
        self,
        table: Table,
        payload: Any,
        args: dict[str, str],
        prefer: dict[str, str],
        ctx: Context,
    ) -> InnerResponse:
        if not isinstance(payload, dict):
            raise E.payload_error(table, "An entity was expected in the request body.")
        self.store.parse_select(table, args.get("$select"))  # validate before writing
        record_id = self.store.create(table, payload, ctx.caller)
        location = self._entity_url(table, record_id)
        headers = {"OData-EntityId": location, "Location": location}
        if prefer.get("return") == "representation":
            return self._representation(table, record_id, args, 201, headers)
        return InnerResponse(204, {"OData-Version": "4.0", **headers})

    def _update(
        self,
        table: Table,
        record_id: str,
        payload: Any,
        args: dict[str, str],
        headers: Mapping[str, str],
        prefer: dict[str, str],
        ctx: Context,
    ) -> InnerResponse:
        if not isinstance(payload, dict):
            raise E.payload_error(table, "An entity was expected in the request body.")
        self.store.parse_select(table, args.get("$select"))
        self.store.update(
            table,
            record_id,
            payload,
            ctx.caller,
            if_match=headers.get("if-match"),
            if_none_match=headers.get("if-none-match"),
        )
        location = self._entity_url(table, record_id.lower())
        out = {"OData-EntityId": location}
        if prefer.get("return") == "representation":
            return self._representation(table, record_id, args, 200, out)
        return InnerResponse(204, {"OData-Version": "4.0", **out})

    def _navigation(
        self,
        table: Table,
        record_id: str,
        nav: str,
        method: str,
        payload: Any,
        args: dict[str, str],
        prefer: dict[str, str],
        ctx: Context,
    ) -> InnerResponse:
        if nav in table.collections:
            child_set, fk = table.collections[nav]
            child = self.store.table_for_set(child_set)
            assert child is not None
            self.store.get(table, record_id)  # 404 when the parent is missing
            if method == "GET":
                select = self.store.parse_select(child, args.get("$select"))
                rows = self.store.query(
                    child,
                    filter_text=args.get("$filter"),
                    orderby_text=args.get("$orderby"),
                    extra_filter=(fk, record_id.lower()),
                )
                with self.store.lock:
                    value = [
                        self.store.render(child, r, select=select, expand=[], annotations=False)
                        for r in rows
                    ]
                return self._ok(
                    {"@odata.context": f"{self.api_url}/$metadata#{child_set}", "value": value}
                )
            if method == "POST":
                if not isinstance(payload, dict):
                    raise E.payload_error(child, "An entity was expected in the request body.")
                bind = next(
                    n for n, t in child.lookups[fk[1:-6]].navs.items() if t == table.logical_name
                )
                body = {**payload, f"{bind}@odata.bind": f"/{table.entity_set}({record_id})"}
                return self._create(child, body, args, prefer, ctx)
            raise ODataError(405, E.QUERY_PARSE, f"{method} is not allowed on '{nav}'.")
        target = table.nav_target(nav)
        if target is None or method != "GET":
            raise ODataError(
                404, E.RESOURCE_NOT_FOUND, f"Resource not found for the segment '{nav}'."
            )
        lookup, target_name = target
        record = self.store.get(table, record_id)
        related_id = record.get(lookup.value_column)
        if not related_id or record.get(f"@type:{lookup.name}") != target_name:
            return InnerResponse(204, {"OData-Version": "4.0"})
        return self._read(self.store.tables[target_name], related_id, args, prefer)

    def _metadata(
        self, method: str, key: str | None, rest: list[str], body: bytes
    ) -> InnerResponse:
        if key is None:
            raise E.query_error("Address an entity definition by LogicalName='name'.")
        match = re.fullmatch(r"LogicalName='([^']+)'", key)
        if not match:
            raise E.query_error(f"The key '{key}' is not supported by the emulator.")
        table = self.store.table_by_logical_name(match.group(1))
        base = f"{self.api_url}/EntityDefinitions(LogicalName='{table.logical_name}')"
        if not rest:
            if method != "GET":
                raise ODataError(405, E.QUERY_PARSE, f"{method} is not supported here.")
            return self._ok(
                {
                    "@odata.context": f"{self.api_url}/$metadata#EntityDefinitions/$entity",
                    "MetadataId": str(uuid.uuid5(uuid.NAMESPACE_URL, table.logical_name)),
                    "LogicalName": table.logical_name,
                    "SchemaName": table.logical_name.capitalize(),
                    "EntitySetName": table.entity_set,
                    "PrimaryIdAttribute": table.primary_id,
                    "PrimaryNameAttribute": table.primary_name,
                    "ObjectTypeCode": table.object_type_code,
                    "IsActivity": table.activity,
                }
            )
        attr = _SEGMENT.match(rest[0])
        if attr is None or attr.group(1) != "Attributes" or len(rest) > 1:
            raise ODataError(
                404, E.RESOURCE_NOT_FOUND, f"Resource not found for the segment '{rest[0]}'."
            )
        attr_key = attr.group(2)
        context = f"{self.api_url}/$metadata#EntityDefinitions('{table.logical_name}')/Attributes"
        if attr_key is None:
            if method == "GET":
                return self._ok(
                    {"@odata.context": context, "value": self.store.attributes_of(table)}
                )
            if method == "POST":
                payload = _json_body(body, method)
                if not isinstance(payload, dict):
                    raise E.query_error("An attribute definition was expected in the body.")
                metadata_id = self.store.create_attribute(table, payload)
                return InnerResponse(
                    204,
                    {"OData-Version": "4.0", "OData-EntityId": f"{base}/Attributes({metadata_id})"},
                )
            raise ODataError(405, E.QUERY_PARSE, f"{method} is not supported here.")
        if method != "GET":
            raise ODataError(405, E.QUERY_PARSE, f"{method} is not supported on an attribute.")
        by_name = re.fullmatch(r"LogicalName='([^']+)'", attr_key)
        if by_name:
            found = self.store.attribute(table, by_name.group(1))
        else:
            found = self.store.attribute_by_id(table, attr_key)
        return self._ok({"@odata.context": f"{context}/$entity", **found})

    # ---- $batch ----------------------------------------------------------------------------------

    def _batch(self, request: Request, ctx: Context) -> Response:
        parts = parse_multipart(request.get_data(), boundary_of(request.content_type or ""))
        prefer = _prefer(request.headers.get("Prefer", ""))
        continue_on_error = "odata.continue-on-error" in prefer
        items: list[InnerResponse | list[InnerResponse]] = []
        for part in parts:
            content_type = part.headers.get("content-type", "")
            if content_type.startswith("multipart/mixed"):
                ok, result = self._changeset(part.content, boundary_of(content_type), ctx)
                items.append(result)
                if not ok and not continue_on_error:
                    break
                continue
            inner = parse_inner_request(part)
            response = self._inner(inner.method, inner.url, inner.headers, inner.body, ctx)
            response.content_id = inner.content_id
            items.append(response)
            if response.status >= 400 and not continue_on_error:
                break
        content_type, body = render_batch(items)
        return Response(
            body, status=200, headers={"OData-Version": "4.0"}, content_type=content_type
        )

    def _changeset(
        self, content: bytes, boundary: str, ctx: Context
    ) -> tuple[bool, InnerResponse | list[InnerResponse]]:
        """Run a change set atomically: all of it, or (after any failure) none of it."""
        responses: list[InnerResponse] = []
        changeset_ctx = Context(
            caller=ctx.caller, token=ctx.token, caller_object_id=ctx.caller_object_id
        )
        with self.store.lock:
            snap = self.store.snapshot()
            for part in parse_multipart(content, boundary):
                inner = parse_inner_request(part)
                if inner.method == "GET":
                    failed = _error(E.query_error("A GET request cannot be part of a change set."))
                    failed.content_id = inner.content_id
                    self.store.restore(snap)
                    return False, failed
                response = self._inner(
                    inner.method, inner.url, inner.headers, inner.body, changeset_ctx
                )
                response.content_id = inner.content_id
                if response.status >= 400:
                    self.store.restore(snap)
                    return False, response
                entity = response.headers.get("OData-EntityId")
                if inner.content_id and entity:
                    changeset_ctx.content_ids[f"${inner.content_id}"] = entity.split(
                        f"{API_PREFIX}/", 1
                    )[-1]
                responses.append(response)
        return True, responses

    def _inner(
        self, method: str, url: str, headers: dict[str, str], body: bytes, ctx: Context
    ) -> InnerResponse:
        parts = urlsplit(url)
        path = parts.path
        if path.startswith(API_PREFIX):
            path = path[len(API_PREFIX) :]
        args = dict(parse_qsl(parts.query, keep_blank_values=True))
        response = self.execute(method, path.lstrip("/"), args, headers, body, ctx)
        self._record(
            {
                "method": method,
                "path": f"{API_PREFIX}/{path.lstrip('/')}",
                "query": parts.query,
                "caller_object_id": ctx.caller_object_id,
                "in_batch": True,
                "body": _json_or_none(body),
                "status": response.status,
                "oid": ctx.token.oid,
                "app_id": ctx.token.app_id,
            }
        )
        return response

    # ---- control API -------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        path = request.path[len("/_control/") :].strip("/")
        body = request.get_json(silent=True) or {}
        try:
            if path == "reset" and request.method == "POST":
                self.reset()
                return Response(status=204)
            if path == "seed" and request.method == "POST":
                return _json(201, self.seed(body))
            if path == "throttle" and request.method == "POST":
                self.throttle(
                    count=int(body.get("count", 0)),
                    share=float(body.get("share", 0.0)),
                    retry_after=int(body.get("retry_after", 5)),
                    statuses=tuple(int(x) for x in body.get("statuses", [429])),
                )
                return Response(status=204)
            if path == "privileges" and request.method == "POST":
                self.privileges.set_read(
                    str(body["systemuserid"]), str(body["table"]), str(body["read"])
                )
                return Response(status=204)
            if path == "shares" and request.method == "POST":
                self.privileges.share(
                    str(body["table"]), str(body["id"]), str(body["systemuserid"])
                )
                return Response(status=204)
            if path == "faults" and request.method == "POST":
                retry = body.get("retry_after")
                self.inject_faults(
                    status=int(body.get("status", 503)),
                    count=int(body.get("count", 1)),
                    retry_after=int(retry) if retry is not None else None,
                )
                return Response(status=204)
            if path == "requests" and request.method == "GET":
                return _json(200, {"requests": self.requests_seen()})
            if path == "requests" and request.method == "DELETE":
                with self._lock:
                    self._log.clear()
                return Response(status=204)
            if path.startswith("records/") and request.method == "GET":
                return _json(200, {"value": self.records(path[len("records/") :])})
        except ODataError as exc:
            return _json(exc.status, exc.body())
        except (TypeError, ValueError, KeyError) as exc:
            return _json(400, {"error": {"code": "BadControlRequest", "message": str(exc)}})
        return _json(404, {"error": {"code": "NotFound", "message": request.path}})


# ---- helpers -----------------------------------------------------------------------------------


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def _error(exc: ODataError) -> InnerResponse:
    headers = {"OData-Version": "4.0", "Content-Type": JSON_TYPE, **exc.headers}
    return InnerResponse(exc.status, headers, json.dumps(exc.body()).encode())


def _json_or_none(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _json_body(raw: bytes, method: str) -> Any:
    if method in ("GET", "DELETE") or not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise ODataError(
            400, E.PAYLOAD, "The request body is not valid JSON (Microsoft.OData.ODataException)."
        ) from None


def _substitute_content_ids(value: Any, content_ids: dict[str, str]) -> Any:
    """`"x@odata.bind": "$1"` refers to the record created by the request with Content-ID 1."""
    if not content_ids:
        return value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k.endswith("@odata.bind") and isinstance(v, str) and v in content_ids:
                out[k] = "/" + content_ids[v]
            else:
                out[k] = _substitute_content_ids(v, content_ids)
        return out
    if isinstance(value, list):
        return [_substitute_content_ids(v, content_ids) for v in value]
    return value


_PREFERENCE = re.compile(r'\s*([\w.-]+)\s*(?:=\s*("[^"]*"|[^,]*))?\s*(?:,|$)')


def _not_modified(if_none_match: str | None, current: str) -> bool:
    """`If-None-Match` on a retrieve: the record still has one of the ETags (or `*`).
    `If-None-Match: null` is Dataverse's way of asking for a fresh read: never matches."""
    if not if_none_match or if_none_match.strip().lower() == "null":
        return False
    tags = {tag.strip() for tag in if_none_match.split(",")}
    return "*" in tags or current in tags


def _prefer(header: str) -> dict[str, str]:
    """Prefer preferences; a quoted value may hold commas (odata.include-annotations="a,b")."""
    return {
        m.group(1).lower(): (m.group(2) or "").strip().strip('"')
        for m in _PREFERENCE.finditer(header)
        if m.group(1)
    }


def _key(table: Table, key: str) -> str:
    key = key.strip()
    if "=" in key:
        name, _, value = key.partition("=")
        if name.strip() != table.primary_id:
            raise E.query_error(
                f"Alternate keys ({name.strip()}) are not supported by the emulator."
            )
        key = value.strip()
    key = key.strip("'")
    try:
        return str(uuid.UUID(key))
    except ValueError:
        raise E.query_error(
            f"Bad Request - Error in query syntax: the key '{key}' is not a valid Edm.Guid."
        ) from None


def _int_option(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise E.query_error(f"Invalid value '{value}' for {name}.") from None
    if number < 0:
        raise E.query_error(f"Invalid value '{value}' for {name}.")
    return number


def _skiptoken_offset(token: str | None) -> int:
    if not token:
        return 0
    match = re.search(r'offset="(\d+)"', token)
    if not match:
        raise E.query_error("The $skiptoken is not valid.")
    return int(match.group(1))


def start(*, tls: LocalTLS | None, port: int = 0, jwks_url: str, issuer: str) -> DataverseEmulator:
    """Start a Dataverse org that trusts tokens from `issuer` signed with keys at `jwks_url`."""
    return DataverseEmulator(tls=tls, port=port, jwks_url=jwks_url, issuer=issuer).start()
