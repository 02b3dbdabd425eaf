"""What every trigger shares: one structured log line per invocation, errors as problem+json."""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import os
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import azure.functions as func

from shared import telemetry
from shared.errors import (
    Conflict,
    DependencyUnavailable,
    FieldError,
    InvalidInput,
    NotAllowed,
    NotAuthenticated,
    NotFound,
    Problem,
    Unprocessable,
)

log = logging.getLogger("invocation")

_STATUS: dict[type[Problem], int] = {
    InvalidInput: 400,
    NotAuthenticated: 401,
    NotAllowed: 403,
    NotFound: 404,
    Conflict: 409,
    Unprocessable: 422,
    DependencyUnavailable: 503,
}
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

F = TypeVar("F", bound=Callable[..., Any])


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body), status_code=status, headers=headers, mimetype="application/json"
    )


def read_json(
    req: func.HttpRequest, *, allow_empty: bool = False, **fields: type
) -> dict[str, Any]:
    """The JSON object body, with each named field of the given type (None allowed if absent)."""
    raw = req.get_body()
    if allow_empty and not raw:
        return {}
    try:
        data = json.loads(raw or b"null")
    except ValueError:
        raise InvalidInput("the body is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    errors = [
        FieldError(name, f"must be {kind.__name__}")
        for name, kind in fields.items()
        if name in data and data[name] is not None and not isinstance(data[name], kind)
    ]
    if errors:
        raise InvalidInput("; ".join(f"{e.field} {e.message}" for e in errors), errors=errors)
    return data


def require_fields(data: dict[str, Any], *names: str) -> None:
    missing = [FieldError(n, "required") for n in names if data.get(n) in (None, "")]
    if missing:
        raise InvalidInput("missing: " + ", ".join(e.field for e in missing), errors=missing)


def problem_response(problem: Problem) -> func.HttpResponse:
    status = next((code for kind, code in _STATUS.items() if isinstance(problem, kind)), 400)
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": problem.title,
        "status": status,
        "detail": problem.detail,
    }
    if problem.errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in problem.errors]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return func.HttpResponse(
        json.dumps(body), status_code=status, headers=headers, mimetype="application/problem+json"
    )


def correlation_id(headers: Any) -> str:
    """The caller's correlation id (x-correlation-id, else the W3C trace id), or a new one."""
    given = (headers.get("x-correlation-id") or "").strip()
    if _SAFE_ID.match(given):
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
        call_id = (req.route_params or {}).get("callId")
        if call_id:
            telemetry.tag_call(call_id)
        try:
            response: func.HttpResponse = fn(req, *args, **kwargs)
        except Problem as problem:
            response = problem_response(problem)
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
