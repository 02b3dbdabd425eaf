"""The host's HTTP front: function routes with auth levels, and the admin API (`/admin/...`)."""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import azure.functions as func
from azure.functions.queue import QueueMessage
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from .invoker import InvocationFailed, Invoker
from .keys import HostKeys
from .loader import FunctionSpec, HttpTrigger, QueueTrigger, TimerTrigger

log = logging.getLogger("functions_host")

_INVOKE = re.compile(r"^/admin/functions/([^/]+)/?$", re.IGNORECASE)


def _empty(status: int) -> Response:
    # The real host answers 401/404 (and a function's crash, 500) with no body at all.
    response = Response(b"", status=status)
    del response.headers["Content-Type"]
    return response


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")


def presented_key(request: Request) -> str | None:
    """The key a caller presents: header `x-functions-key`, else query `code`."""
    return request.headers.get("x-functions-key") or request.args.get("code")


def render(result: Any) -> Response:
    """Turn what an HTTP function returned into the response the host would send."""
    if result is None:
        return _empty(204)
    if isinstance(result, str):
        return Response(
            result.encode("utf-8"), status=200, content_type="text/plain; charset=utf-8"
        )
    if isinstance(result, func.HttpResponse):
        headers = Headers(list(result.headers.items()))
        if "content-type" not in headers:
            # What the Python worker adds: the charset only for text/* types.
            mimetype = result.mimetype
            ct = (
                f"{mimetype}; charset={result.charset}"
                if mimetype.startswith("text/")
                else mimetype
            )
            headers["Content-Type"] = ct
        response = Response(result.get_body(), status=int(result.status_code), headers=headers)
        return response
    raise TypeError(
        f"an HTTP function must return func.HttpResponse or str, got {type(result).__name__}"
    )


class HostServices(Protocol):
    """What the HTTP front end needs of the host (`FunctionsHost` is one)."""

    keys: HostKeys
    invoker: Invoker
    functions: list[FunctionSpec]
    url: str

    def status(self) -> dict[str, Any]: ...

    def invoke_manually(self, spec: FunctionSpec, text: str) -> None: ...


class HostWSGI:
    """The WSGI app. Routes are tried in ASP.NET precedence order (literals before parameters)."""

    def __init__(self, host: HostServices) -> None:
        self.host = host
        self.http_functions: list[FunctionSpec] = []

    def set_functions(self, specs: Iterable[FunctionSpec]) -> None:
        http = [s for s in specs if isinstance(s.trigger, HttpTrigger)]
        self.http_functions = sorted(http, key=lambda s: self._trigger(s).route.precedence)

    @staticmethod
    def _trigger(spec: FunctionSpec) -> HttpTrigger:
        assert isinstance(spec.trigger, HttpTrigger)
        return spec.trigger

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        cors = self.host.cors
        # CORS runs before routing, as the ASP.NET Core middleware does (emulators/.../cors.py).
        preflight = cors.preflight(request) if cors is not None else None
        if preflight is not None:
            return preflight(environ, start_response)
        try:
            response = self.dispatch(request)
        except Exception:  # the host must answer, never die
            log.exception("Unhandled error serving %s %s", request.method, request.path)
            response = _empty(500)
        if cors is not None:
            cors.apply(request, response)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        path = request.path
        lowered = path.lower()
        if lowered == "/admin" or lowered.startswith("/admin/"):
            return self.admin(request)
        matched_path = False
        for spec in self.http_functions:
            trigger = self._trigger(spec)
            values = trigger.route.match(path)
            if values is None:
                continue
            matched_path = True
            if trigger.methods is not None and request.method.upper() not in trigger.methods:
                continue
            return self.call_http(spec, trigger, request, values)
        if not matched_path and path in ("", "/"):
            return Response("Your Functions 4.0 app is up and running", content_type="text/html")
        # A route that exists but not for this method is also 404 on the real host.
        return _empty(404)

    def authorized(self, level: str, request: Request) -> bool:
        key = presented_key(request)
        if level == "anonymous":
            return True
        if level == "admin":
            return self.host.keys.is_master(key)
        return self.host.keys.is_function_key(key)

    def call_http(
        self,
        spec: FunctionSpec,
        trigger: HttpTrigger,
        request: Request,
        route_values: dict[str, str],
    ) -> Response:
        if not self.authorized(trigger.auth_level, request):
            return _empty(401)
        http_request = func.HttpRequest(
            method=request.method,
            url=request.url,
            headers=dict(request.headers.items()),
            # Repeated query names arrive joined with commas, as the host's StringValues do.
            params={k: ",".join(v) for k, v in request.args.lists()},
            route_params=route_values,
            body=request.get_data(),
        )
        try:
            result = self.host.invoker.invoke(
                spec, http_request, "This function was programmatically called via the host APIs."
            )
            return render(result)
        except InvocationFailed:
            return _empty(500)  # already logged with its traceback
        except TypeError as exc:
            log.error("Function '%s': %s", spec.name, exc)
            return _empty(500)

    # --- admin API -----------------------------------------------------------------------------

    def admin(self, request: Request) -> Response:
        path = request.path.rstrip("/").lower()
        if path == "/admin/host/ping" and request.method in ("GET", "POST"):
            return _empty(200)
        if not self.host.keys.is_master(presented_key(request)):
            return _empty(401)
        if path == "/admin/host/status" and request.method == "GET":
            return _json(self.host.status())
        if path == "/admin/functions" and request.method == "GET":
            return _json([self.describe(s) for s in self.host.functions])
        match = _INVOKE.match(request.path)
        if match and request.method == "POST":
            return self.admin_invoke(match.group(1), request)
        return _empty(404)

    def describe(self, spec: FunctionSpec) -> dict[str, Any]:
        info: dict[str, Any] = {
            "name": spec.name,
            "language": "python",
            "trigger": spec.trigger_type,
        }
        trigger = spec.trigger
        if isinstance(trigger, HttpTrigger):
            info.update(
                invoke_url_template=self.host.url + trigger.public_path,
                methods=sorted(trigger.methods) if trigger.methods else None,
                authLevel=trigger.auth_level,
            )
        elif isinstance(trigger, TimerTrigger):
            info.update(
                schedule=trigger.expression,
                runOnStartup=trigger.run_on_startup,
                useMonitor=trigger.use_monitor,
            )
        elif isinstance(trigger, QueueTrigger):
            info.update(queueName=trigger.queue_name, connection=trigger.connection_name)
        return info

    def admin_invoke(self, name: str, request: Request) -> Response:
        # As the host's FunctionsController.Invoke: a JSON body is required, `input` optional.
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _empty(400)
        spec = next((s for s in self.host.functions if s.name.lower() == name.lower()), None)
        if spec is None:
            return _empty(404)
        text = body.get("input")
        text = "" if text is None else text if isinstance(text, str) else json.dumps(text)
        self.host.invoke_manually(spec, text)
        return _empty(202)


def manual_input(spec: FunctionSpec, text: str, base_url: str) -> Any:
    """The trigger value a manual (admin API) run of a non-timer function receives."""
    trigger = spec.trigger
    if isinstance(trigger, QueueTrigger):
        now = datetime.now(UTC)
        body = text.encode("utf-8")
        if trigger.data_type == "str":
            return text
        if trigger.data_type == "bytes":
            return body
        return QueueMessage(  # type: ignore[no-untyped-call]
            id=str(uuid.uuid4()),
            body=body,
            dequeue_count=0,
            insertion_time=now,
            expiration_time=now + timedelta(days=7),
            time_next_visible=now,
            pop_receipt=None,
        )
    assert isinstance(trigger, HttpTrigger)
    return func.HttpRequest(
        method="POST",
        url=base_url + trigger.public_path,
        headers={},
        params={},
        route_params={},
        body=text.encode("utf-8"),
    )


def run_in_background(target: Callable[[], None], name: str) -> None:
    threading.Thread(target=target, daemon=True, name=name).start()
