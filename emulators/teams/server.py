"""A Teams channel's incoming webhook, as a Workflows ("Post to a channel when a webhook request
is received") URL answers it: `POST /workflows/{id}/triggers/manual/paths/invoke` with the
`api-version`, `sp`, `sv` and `sig` query parameters; a wrong or missing `sig` is 401, a body
that is not a message with Adaptive Card attachments is 400 (the error body of the workflow
service), a good one is 202 with no body. Every accepted post is recorded for the tests and
`make run` to read (`GET /_control/posts`); `POST /_control/faults` makes the next posts fail.
"""

from __future__ import annotations

import json
import secrets
import threading
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from emulators.common.server import EmulatorApp, RunningServer, json_response
from emulators.common.tls import LocalTLS

CARD = "application/vnd.microsoft.card.adaptive"
WORKFLOW_ID = "0b1e7c0d5a8f4c2e9d3b6a1f7e2c4d8b"


def _error(status: int, code: str, message: str) -> Response:
    return json_response({"error": {"code": code, "message": message}}, status)


def card_problem(payload: Any) -> str | None:
    """Why Teams would refuse this body as a message with Adaptive Cards, or None."""
    if not isinstance(payload, dict) or payload.get("type") != "message":
        return "The request body must be an object with type 'message'."
    attachments = payload.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "The message must have at least one attachment."
    for item in attachments:
        if not isinstance(item, dict) or item.get("contentType") != CARD:
            return f"Each attachment must have contentType '{CARD}'."
        content = item.get("content")
        if not isinstance(content, dict) or content.get("type") != "AdaptiveCard":
            return "Each attachment's content must be an AdaptiveCard."
        if not isinstance(content.get("version"), str):
            return "The AdaptiveCard needs a version."
        if not isinstance(content.get("body"), list) or not content["body"]:
            return "The AdaptiveCard needs a body."
    return None


class TeamsWebhookEmulator:
    def __init__(self, *, tls: LocalTLS, port: int = 0, host: str = "127.0.0.1") -> None:
        self.signature = secrets.token_urlsafe(24)
        self._lock = threading.Lock()
        self._posts: list[dict[str, Any]] = []
        self._faults: list[int] = []
        app = EmulatorApp()
        app.route("/workflows/<workflow>/triggers/manual/paths/invoke", ["POST"], self._invoke)
        app.route("/_control/posts", ["GET"], self._read_posts)
        app.route("/_control/faults", ["POST"], self._add_faults)
        app.route("/_control/reset", ["POST"], self._reset)
        self._server = RunningServer(app, host, port, tls.server_context())
        self.url = self._server.url
        self._server.start()

    @property
    def webhook_url(self) -> str:
        """The URL to give the app (ALARM_TEAMS_WEBHOOK_URL): its `sig` is the secret."""
        return (
            f"{self.url}/workflows/{WORKFLOW_ID}/triggers/manual/paths/invoke"
            f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self.signature}"
        )

    def _invoke(self, request: Request, workflow: str) -> Response:
        if request.args.get("sig") != self.signature or workflow != WORKFLOW_ID:
            return _error(
                401,
                "DirectApiAuthorizationRequired",
                "The request must be authenticated only by Shared Access scheme.",
            )
        if request.args.get("api-version") != "2016-06-01":
            return _error(400, "InvalidApiVersionParameter", "The api-version is invalid.")
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault:
            return _error(fault, "ServiceUnavailable", "Injected fault.")
        try:
            payload = json.loads(request.get_data() or b"null")
        except ValueError:
            return _error(400, "InvalidRequestContent", "The request content is not valid JSON.")
        problem = card_problem(payload)
        if problem:
            return _error(400, "InvalidRequestContent", problem)
        with self._lock:
            self._posts.append(
                {"at": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "payload": payload}
            )
        return Response(status=202)

    def posts(self) -> list[dict[str, Any]]:
        """Every accepted post, oldest first."""
        with self._lock:
            return [dict(p) for p in self._posts]

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._faults.extend([status] * count)

    def reset(self) -> None:
        with self._lock:
            self._posts.clear()
            self._faults.clear()

    def _read_posts(self, request: Request) -> Response:
        return json_response({"posts": self.posts()})

    def _add_faults(self, request: Request) -> Response:
        try:
            body = json.loads(request.get_data() or b"{}")
            self.fail_next(int(body.get("count", 1)), int(body.get("status", 503)))
        except (ValueError, TypeError, AttributeError):
            return _error(400, "BadRequest", 'Body: {"count": n, "status": 5xx}.')
        return json_response({"ok": True})

    def _reset(self, request: Request) -> Response:
        self.reset()
        return json_response({"ok": True})

    def stop(self) -> None:
        self._server.stop()


def start(*, tls: LocalTLS, port: int = 0, host: str = "127.0.0.1") -> TeamsWebhookEmulator:
    return TeamsWebhookEmulator(tls=tls, port=port, host=host)
