"""What every trigger shares: one structured log line per invocation, errors as problem+json,
and `endpoint`, the one way to declare an HTTP route.

How to add a route with a typed request and response (and have it in /api/openapi.json):

    @endpoint(bp, "POST", "me/calls/{callId}/dtmf", auth=Auth.AGENT, errors=(404, 409, 422))
    def send_dtmf(req: func.HttpRequest, agent: Agent, body: DtmfBody) -> CallView:
        # (its docstring: the first line is the operation's summary, the rest its description)
        return composition.call_control().dtmf(agent, req.route_params["callId"], body.tones)

- `auth` authenticates before the handler runs: Auth.AGENT passes `agent` (the configured
  agent), Auth.SUPERVISOR / Auth.STAFF pass `principal` when the handler asks for it,
  Auth.SIGNED_IN passes `principal` for any valid token (the service decides, e.g. recordings),
  Auth.FUNCTION_KEY leaves it to the host (401 with an empty body), Auth.ACS_CALLBACK checks
  the per-call URL token and the ACS-signed JWT, Auth.PUBLIC nothing.
- A parameter named `body` is decoded from the JSON body into its annotated dataclass
  (functions/bodies.py): a wrong or missing field is a 400 naming it.
- The return annotation is the response: a view of shared/views.py rendered as JSON with
  `status`, `None` for 204, or `func.HttpResponse` when the handler renders itself (then say
  what it returns in `responses=`). Query parameters are `IntQuery`/`TextQuery` objects, read
  by the handler and documented from the same object. A binary body (an upload) is declared
  with `body_media=("audio/wav", ...)`: the guard takes only those types, the handler reads
  `req.get_body()`, and `max_body=` sets its size limit.
- `errors=` lists the statuses the service can answer (404, 409, 422, 503...); 400 (body or
  query), 401 and 403 (from `auth`) are added by themselves.
Types are imported under `if TYPE_CHECKING:` in the trigger modules and resolved on first use,
so declaring a route costs nothing at cold start. functions/openapi.py builds the document from
every `endpoint` (tests check it against the registered routes and validate real responses).
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import os
import re
import time
import typing
from collections.abc import Callable
from typing import Any, TypeVar

import azure.functions as func

from shared import telemetry
from shared.adapters import versions
from shared.config import ConfigError
from shared.errors import (
    Conflict,
    DependencyUnavailable,
    FieldError,
    InvalidInput,
    NotAllowed,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    Problem,
    Unprocessable,
    UnsupportedMediaType,
)

log = logging.getLogger("invocation")

_STATUS: dict[type[Problem], int] = {
    InvalidInput: 400,
    NotAuthenticated: 401,
    NotAllowed: 403,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    Unprocessable: 422,
    DependencyUnavailable: 503,
}
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

F = TypeVar("F", bound=Callable[..., Any])
B = TypeVar("B")


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body), status_code=status, headers=headers, mimetype="application/json"
    )


def read_raw_json(req: func.HttpRequest) -> Any:
    """The body as JSON, whatever its shape (400 if it is not JSON or nested too deep)."""
    from shared.json_input import loads

    return loads(req.get_body())


def status_of(problem: Problem) -> int:
    return next((code for kind, code in _STATUS.items() if isinstance(problem, kind)), 400)


def problem_view(problem: Problem) -> Any:
    """The problem as the shared.views.ProblemView every error body is."""
    from shared.views import FieldProblem, ProblemView

    errors = tuple(FieldProblem(field=e.field, message=e.message) for e in problem.errors)
    return ProblemView(
        title=problem.title,
        status=status_of(problem),
        detail=problem.detail,
        errors=errors or None,
    )


def problem_response(problem: Problem, view: Any = None) -> func.HttpResponse:
    """problem+json for `problem` (or `view`, a ProblemView subclass carrying more)."""
    from shared.views import to_json

    status = status_of(problem)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return func.HttpResponse(
        json.dumps(to_json(view if view is not None else problem_view(problem))),
        status_code=status,
        headers=headers,
        mimetype="application/problem+json",
    )


def correlation_id(headers: Any) -> str:
    """The caller's correlation id (x-correlation-id, else the W3C trace id), or a new one."""
    given = (headers.get("x-correlation-id") or "").strip()
    if SAFE_ID.match(given):
        return given
    trace = _TRACEPARENT.match((headers.get("traceparent") or "").strip())
    return trace.group(1) if trace else os.urandom(16).hex()


def _log_line(
    function: str, trigger: str, cid: str, outcome: str, started: float, **extra: Any
) -> None:
    record = {
        "event": "invocation",
        "function": function,
        "trigger": trigger,
        "correlationId": cid,
        "outcome": outcome,
        "durationMs": round((time.monotonic() - started) * 1000, 1),
        **extra,
    }
    log.info(json.dumps(record, separators=(",", ":")))


def http_invocation(fn: F) -> F:
    """Wrap an HTTP function: Problems become problem+json, anything else a bare 500."""

    @functools.wraps(fn)
    def wrapper(req: func.HttpRequest, *args: Any, **kwargs: Any) -> func.HttpResponse:
        # Each invocation in a context of its own: a call tagged here ends with it.
        return contextvars.copy_context().run(invoke, req, *args, **kwargs)

    def invoke(req: func.HttpRequest, *args: Any, **kwargs: Any) -> func.HttpResponse:
        started, cid = time.monotonic(), correlation_id(req.headers)
        versions.forget_all()
        call_id = (req.route_params or {}).get("callId")
        if call_id:
            telemetry.tag_call(call_id)
        try:
            response: func.HttpResponse = fn(req, *args, **kwargs)
        except Problem as problem:
            response = problem_response(problem)
        except ConfigError as exc:
            # A JSON list of settings (AGENTS, SERVICE_POOLS, ...) is checked on first use: the
            # admin learns which one is wrong (its problems name settings, never values).
            log.error("%s", exc)
            response = func.HttpResponse(
                json.dumps(
                    {
                        "type": "about:blank",
                        "title": "The app is not configured correctly",
                        "status": 503,
                        "detail": str(exc),
                    }
                ),
                status_code=503,
                mimetype="application/problem+json",
            )
        except Exception as exc:
            # Logged by type and stack (no request data); the caller gets no internals.
            log.exception("unhandled %s in %s", type(exc).__name__, fn.__name__)
            response = func.HttpResponse(
                json.dumps(
                    {
                        "type": "about:blank",
                        "title": "Internal error",
                        "status": 500,
                        "detail": f"Unexpected failure; correlation id {cid}",
                    }
                ),
                status_code=500,
                mimetype="application/problem+json",
            )
        response.headers["x-correlation-id"] = cid
        outcome = (
            "success"
            if response.status_code < 400
            else ("rejected" if response.status_code < 500 else "failure")
        )
        _log_line(
            fn.__name__,
            "http",
            cid,
            outcome,
            started,
            status=response.status_code,
            method=req.method,
        )
        return response

    return wrapper  # type: ignore[return-value]


def background_invocation(trigger: str) -> Callable[[F], F]:
    """Wrap a timer or queue function: log its outcome; a failure is re-raised for the host."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return contextvars.copy_context().run(invoke, *args, **kwargs)

        def invoke(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            cid = _message_correlation(args[0]) if args else os.urandom(16).hex()
            versions.forget_all()
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                _log_line(fn.__name__, trigger, cid, "failure", started, error=type(exc).__name__)
                raise
            _log_line(fn.__name__, trigger, cid, "success", started)
            return result

        return wrapper  # type: ignore[return-value]

    return decorate


def _message_correlation(arg: Any) -> str:
    message_id = getattr(arg, "id", None)
    return str(message_id) if message_id else os.urandom(16).hex()


# ---------------------------------------------------------------------- typed HTTP endpoints


class Auth:
    """Who may call an endpoint (see the module docstring)."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    STAFF = "staff"
    SIGNED_IN = "signedIn"  # any valid Entra ID token for the API; the service decides
    FUNCTION_KEY = "functionKey"
    ACS_CALLBACK = "acsCallback"
    PUBLIC = "public"


# Body size limits (bytes), per operation with `max_body=`: a panel's request is small; a
# webhook delivery may batch events (Event Grid sends at most 1 MB).
BODY_LIMIT = 16 * 1024
WEBHOOK_BODY_LIMIT = 1024 * 1024
_JSON_MEDIA = re.compile(r"^application/(?:[\w.+-]+\+)?json$")

NO_STORE = {"Cache-Control": "no-store"}  # live answers: never from a cache
# An operation on one of the agent's calls: unknown (404), not in a state for it (409, also
# ACS refusing), ACS or Dataverse down (503); someone else's call is Auth.AGENT's 403.
CALL_ERRORS = (404, 409, 503)


class IntQuery:
    """An optional whole-number query parameter with bounds (400 naming it when outside)."""

    __slots__ = ("default", "description", "high", "low", "name")

    def __init__(self, name: str, default: int, low: int, high: int, description: str = ""):
        self.name, self.default, self.low, self.high = name, default, low, high
        self.description = description

    def read(self, req: func.HttpRequest) -> int:
        raw = (req.params.get(self.name) or "").strip()
        if raw == "":
            return self.default
        if not raw.isdigit() or not self.low <= int(raw) <= self.high:
            raise InvalidInput(
                f"{self.name} must be a whole number from {self.low} to {self.high}",
                errors=[FieldError(self.name, f"{self.low}-{self.high}")],
            )
        return int(raw)

    def schema(self) -> dict[str, Any]:
        return {
            "type": "integer",
            "minimum": self.low,
            "maximum": self.high,
            "default": self.default,
        }


class TextQuery:
    """A text query parameter; with `choices`, one of them or absent (400 otherwise)."""

    __slots__ = ("choices", "description", "max_length", "min_length", "name", "required")

    def __init__(
        self,
        name: str,
        *,
        required: bool = False,
        choices: tuple[str, ...] = (),
        description: str = "",
        min_length: int = 0,
        max_length: int = 0,
    ):
        self.name, self.required, self.choices = name, required, choices
        self.min_length, self.max_length = min_length, max_length
        self.description = description

    def read(self, req: func.HttpRequest) -> str | None:
        raw = (req.params.get(self.name) or "").strip()
        if self.choices and raw.lower() not in ("", *self.choices):
            wanted = " or ".join(self.choices)
            raise InvalidInput(
                f"{self.name} must be {wanted}", errors=[FieldError(self.name, wanted)]
            )
        return (raw.lower() if self.choices else raw) or None

    def schema(self) -> dict[str, Any]:
        if self.choices:
            return {"type": "string", "enum": list(self.choices)}
        bounds = {"minLength": self.min_length} if self.min_length else {}
        return {
            "type": "string",
            **bounds,
            **({"maxLength": self.max_length} if self.max_length else {}),
        }


class Operation:
    """One documented HTTP operation: what `endpoint` registered (read by functions/openapi)."""

    __slots__ = (
        "_types",
        "auth",
        "body_media",
        "errors",
        "handler",
        "headers",
        "max_body",
        "method",
        "params",
        "query",
        "raw_body",
        "responses",
        "route",
        "status",
    )

    def __init__(self, method: str, route: str, handler: Callable[..., Any], **spec: Any):
        self.method, self.route, self.handler = method, route, handler
        self.auth: str = spec["auth"]
        self.status: int = spec["status"]
        self.errors: tuple[int, ...] = spec["errors"]
        self.query: tuple[IntQuery | TextQuery, ...] = spec["query"]
        self.headers: dict[str, str] = spec["headers"]
        self.responses: dict[int, Any] = spec["responses"]
        self.raw_body: dict[str, Any] | None = spec["raw_body"]
        self.max_body: int = spec["max_body"]
        self.body_media: tuple[str, ...] = spec["body_media"]
        code = handler.__code__
        self.params = code.co_varnames[: code.co_argcount]
        self._types: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return self.handler.__name__

    def types(self) -> dict[str, Any]:
        """The handler's annotations, resolved on first use (they name views and bodies)."""
        if self._types is None:
            try:
                self._types = typing.get_type_hints(self.handler, localns=_type_namespace())
            except NameError as exc:
                raise TypeError(
                    f"{self.name}: {exc}; views live in shared/views.py, bodies in "
                    "functions/bodies.py (the names annotations may use)"
                ) from exc
        return self._types

    def body_type(self) -> type | None:
        return self.types().get("body") if "body" in self.params else None


OPERATIONS: list[Operation] = []


def _type_namespace() -> dict[str, Any]:
    from functions import bodies
    from shared import views
    from shared.domain.directory import Agent
    from shared.services.access import Principal

    return {**vars(views), **vars(bodies), "Agent": Agent, "Principal": Principal, "func": func}


def endpoint(
    bp: func.Blueprint,
    method: str,
    route: str,
    *,
    auth: str,
    status: int = 200,
    errors: tuple[int, ...] = (),
    query: tuple[IntQuery | TextQuery, ...] = (),
    headers: dict[str, str] | None = None,
    responses: dict[int, Any] | None = None,
    raw_body: dict[str, Any] | None = None,
    max_body: int = BODY_LIMIT,
    body_media: tuple[str, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[[func.HttpRequest], func.HttpResponse]]:
    """Register an HTTP route on `bp` with its authentication, typed body and response."""

    def decorate(handler: Callable[..., Any]) -> Callable[[func.HttpRequest], func.HttpResponse]:
        op = Operation(
            method,
            route,
            handler,
            auth=auth,
            status=status,
            errors=errors,
            query=query,
            headers=headers or {},
            responses=responses or {},
            raw_body=raw_body,
            max_body=max_body,
            body_media=body_media,
        )

        def run(req: func.HttpRequest) -> func.HttpResponse:
            _guard(op, req)
            kwargs = _authenticate(op, req)
            body_type = op.body_type()
            if body_type is not None:
                kwargs["body"] = read_body(req, body_type)
            result = handler(req, **kwargs)
            if isinstance(result, func.HttpResponse):
                return result
            if result is None:
                return func.HttpResponse(status_code=204)
            from shared.views import to_json

            return json_response(to_json(result), op.status, dict(op.headers) or None)

        # The host sees `(req)`: what it binds the HTTP trigger to, under the handler's name.
        run.__name__, run.__qualname__ = handler.__name__, handler.__qualname__
        run.__doc__, run.__module__ = handler.__doc__, handler.__module__
        run.__annotations__ = {"req": func.HttpRequest, "return": func.HttpResponse}
        OPERATIONS.append(op)
        auth_level = (
            func.AuthLevel.FUNCTION if auth == Auth.FUNCTION_KEY else func.AuthLevel.ANONYMOUS
        )
        wrapped = http_invocation(run)  # its __wrapped__ is `run`, whose signature is `(req)`
        registered: Callable[[func.HttpRequest], func.HttpResponse] = bp.route(
            route=route, methods=[method], auth_level=auth_level
        )(wrapped)
        return registered

    return decorate


def takes_body(op: Operation) -> bool:
    return op.raw_body is not None or "body" in op.params or bool(op.body_media)


def _guard(op: Operation, req: func.HttpRequest) -> None:
    """What every request meets before anything reads it: the size limit and the media type."""
    body = req.get_body() or b""
    if len(body) > op.max_body:
        raise PayloadTooLarge(f"the body is over this operation's limit of {op.max_body} bytes")
    if not body or not takes_body(op):
        return
    media = (req.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
    if op.body_media:
        if media not in op.body_media:
            raise UnsupportedMediaType(
                f"the body must be {' or '.join(op.body_media)}, not {media[:80] or 'untyped'}"
            )
        return
    if media and not _JSON_MEDIA.match(media):
        raise UnsupportedMediaType(
            f"the body must be application/json (or a +json type), not {media[:80]}"
        )


def _authenticate(op: Operation, req: func.HttpRequest) -> dict[str, Any]:
    if op.auth in (Auth.PUBLIC, Auth.FUNCTION_KEY):
        return {}
    from shared import composition  # wired on first use, not at cold start

    if op.auth == Auth.ACS_CALLBACK:
        composition.acs_callback_access().check(
            req.route_params.get("callId", ""),
            req.params.get("token", ""),
            req.headers.get("Authorization"),
        )
        return {}
    access, authorization = composition.access(), req.headers.get("Authorization")
    if op.auth == Auth.AGENT:
        return {"agent": access.agent(authorization)}
    if op.auth == Auth.SIGNED_IN:
        return {"principal": access.principal(authorization)}
    check = access.supervisor if op.auth == Auth.SUPERVISOR else access.staff
    principal = check(authorization)
    return {"principal": principal} if "principal" in op.params else {}


def read_body(req: func.HttpRequest, cls: type[B]) -> B:
    """The JSON body as a `cls` (functions/bodies.py); 400 naming each wrong field."""
    if getattr(cls, "EMPTY_OK", False) and not req.get_body():
        data: Any = {}
    else:
        data = read_raw_json(req)
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    decoded: B = _decode(cls, data, "")
    return decoded


_JSON_TYPES: dict[type, str] = {str: "a string", bool: "a boolean", int: "an integer"}


def _decode(cls: Any, data: dict[str, Any], prefix: str) -> Any:
    from shared.views import hints, json_fields

    types, kwargs = hints(cls), dict[str, Any]()
    wrong: list[FieldError] = []
    missing: list[FieldError] = []
    for f in json_fields(cls):
        if f.internal:
            if f.attr == "given":
                kwargs["given"] = frozenset(k for k in data if isinstance(k, str))
            continue
        name, kind = prefix + f.json, types[f.attr]
        args = typing.get_args(kind)
        nullable = type(None) in args
        base = next((a for a in args if a is not type(None)), kind) if nullable else kind
        present, value = f.json in data, data.get(f.json)
        if f.required and (
            not present or (not nullable and (value is None or (value == "" and base is str)))
        ):
            missing.append(FieldError(name, "required"))
            continue
        if present and value is None and not nullable:
            wrong.append(FieldError(name, f"must be {_JSON_TYPES.get(base, 'a value')}, not null"))
            continue
        if not present or value is None:
            if present and nullable:
                kwargs[f.attr] = None
            continue
        if typing.get_origin(base) is tuple:
            item_type = typing.get_args(base)[0]
            if not isinstance(value, list):
                wrong.append(FieldError(name, "must be an array"))
                continue
            items = []
            for i, item in enumerate(value):
                if not isinstance(item, dict):
                    wrong.append(FieldError(f"{name}[{i}]", "must be an object"))
                    continue
                try:
                    items.append(_decode(item_type, item, f"{name}[{i}]."))
                except InvalidInput as problem:
                    wrong.extend(problem.errors)
            kwargs[f.attr] = tuple(items)
            continue
        ok = isinstance(value, base) and not (base is int and isinstance(value, bool))
        if not ok:
            wrong.append(FieldError(name, f"must be {_JSON_TYPES.get(base, base.__name__)}"))
            continue
        kwargs[f.attr] = value
    if wrong:
        raise InvalidInput("; ".join(f"{e.field} {e.message}" for e in wrong), errors=wrong)
    if missing:
        raise InvalidInput("missing: " + ", ".join(e.field for e in missing), errors=missing)
    decoded = cls(**kwargs)
    check = getattr(decoded, "check", None)
    if check is not None:
        check()
    return decoded
