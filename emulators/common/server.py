"""A small HTTPS server for the emulators: werkzeug routing, a background thread, clean stop."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

Handler = Callable[..., Response]


def json_response(
    body: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> Response:
    return Response(
        json.dumps(body), status=status, headers=headers or {}, content_type=content_type
    )


class EmulatorApp:
    """A WSGI app: rules map to handlers `handler(request, **url_values) -> Response`.

    Subclasses (or callers) register routes with `route()`. `not_found` and
    `method_not_allowed` can be overridden to give the emulated service's own error shape.
    """

    def __init__(self) -> None:
        self.url_map = Map(strict_slashes=False, merge_slashes=False)
        self._handlers: dict[str, Handler] = {}

    def route(self, rule: str, methods: list[str], handler: Handler, **kw: Any) -> None:
        endpoint = f"{len(self._handlers)}:{rule}"
        self.url_map.add(Rule(rule, methods=methods, endpoint=endpoint, **kw))
        self._handlers[endpoint] = handler

    def not_found(self, request: Request) -> Response:
        return json_response({"error": {"code": "NotFound", "message": request.path}}, 404)

    def method_not_allowed(self, request: Request) -> Response:
        return json_response(
            {"error": {"code": "MethodNotAllowed", "message": request.method}}, 405
        )

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
        except NotFound:
            return self.not_found(request)
        except MethodNotAllowed:
            return self.method_not_allowed(request)
        except HTTPException as exc:  # e.g. a redirect werkzeug would issue
            return json_response(
                {"error": {"code": exc.name, "message": str(exc)}}, exc.code or 400
            )
        return self._handlers[str(endpoint)](request, **values)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return self.dispatch(Request(environ))(environ, start_response)


class _QuietHandler(WSGIRequestHandler):
    """Request lines are not logged: the emulators keep their own request logs."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class RunningServer:
    """A server on a background thread. `url` is its base URL (no trailing slash)."""

    def __init__(
        self,
        app: Callable[..., Any],
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, ssl_context=ssl_context, request_handler=_QuietHandler
        )
        scheme = "https" if ssl_context else "http"
        self.port = self._server.socket.getsockname()[1]
        self.url = f"{scheme}://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name=f"emulator-{self.port}"
        )

    def start(self) -> RunningServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
