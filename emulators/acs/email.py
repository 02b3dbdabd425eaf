"""ACS Email surfaces: the REST API azure-communication-email calls (`POST /emails:send`, a
long-running operation read at `GET /emails/operations/{id}`, HMAC-signed like every ACS
resource call) and its control subtree (`/_control/emails`: the mails sent, in order).

As the service does it: an `api-version` it knows, the message's required parts (sender,
at least one recipient, a subject, a plain-text or HTML body) or 400 with the service's error
body, 202 with `Operation-Location` and `Retry-After`, and the `Operation-Id` header as the
operation's id, so a repeated send with the same id is the same operation (one mail)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from emulators.acs.surface import AcsParts, error_response
from emulators.common.server import json_response

API_VERSIONS = ("2023-03-31", "2024-07-01-preview", "2025-09-01")
RETRY_AFTER_SECONDS = "1"  # the service says 30; the SDK polls no sooner than this says


def _problems(message: Any) -> str | None:
    if not isinstance(message, dict):
        return "The request body must be a JSON object."
    if not isinstance(message.get("senderAddress"), str) or "@" not in message["senderAddress"]:
        return "The senderAddress field is required and must be an email address."
    recipients = message.get("recipients")
    if not isinstance(recipients, dict):
        return "The recipients field is required."
    listed = [
        r
        for kind in ("to", "cc", "bcc")
        for r in (recipients.get(kind) or [])
        if isinstance(r, dict)
    ]
    if not listed:
        return "At least one recipient (to, cc or bcc) is required."
    if any(not isinstance(r.get("address"), str) or "@" not in r["address"] for r in listed):
        return "Each recipient needs a valid address."
    content = message.get("content")
    if not isinstance(content, dict) or not isinstance(content.get("subject"), str):
        return "The content.subject field is required."
    if not (content.get("plainText") or content.get("html")):
        return "Either content.plainText or content.html is required."
    return None


class Emails:
    prefix = "/emails"

    def __init__(self, parts: AcsParts) -> None:
        self.parts = parts
        parts.resets.append(parts.mailbox.reset)

    def handle(self, request: Request) -> Response:
        denied = self.parts.authenticate(request, [request.host])
        response = denied if denied is not None else self._answer(request)
        self.parts.requests.add(request, "email", response.status_code)
        return response

    def _answer(self, request: Request) -> Response:
        version = request.args.get("api-version", "")
        if version not in API_VERSIONS:
            return error_response(
                400,
                "UnsupportedApiVersion",
                f"The api-version '{version}' is not supported; supported: "
                + ", ".join(API_VERSIONS),
            )
        if request.path == "/emails:send":
            if request.method != "POST":
                return error_response(405, "MethodNotAllowed", request.method)
            return self._send(request, version)
        if request.path.startswith("/emails/operations/"):
            if request.method != "GET":
                return error_response(405, "MethodNotAllowed", request.method)
            operation = self.parts.mailbox.operation(request.path.rsplit("/", 1)[1])
            if operation is None:
                return error_response(404, "NotFound", "The operation was not found.")
            return json_response({**operation, "error": None})
        return error_response(404, "NotFound", f"No resource at '{request.path}'.")

    def _send(self, request: Request, version: str) -> Response:
        try:
            message = json.loads(request.get_data(cache=True) or b"null")
        except ValueError:
            return error_response(400, "BadRequest", "The request body is not valid JSON.")
        problem = _problems(message)
        if problem:
            return error_response(400, "BadRequest", problem)
        operation_id = request.headers.get("Operation-Id") or str(uuid.uuid4())
        self.parts.mailbox.accept(operation_id, message)
        location = f"{self.parts.url}/emails/operations/{operation_id}?api-version={version}"
        return json_response(
            {"id": operation_id, "status": "Running", "error": None},
            202,
            headers={"Operation-Location": location, "Retry-After": RETRY_AFTER_SECONDS},
        )


class EmailControls:
    """GET: every mail the emulator accepted, oldest first."""

    prefix = "/_control/emails"

    def __init__(self, parts: AcsParts) -> None:
        self.parts = parts

    def handle(self, request: Request) -> Response:
        if request.method != "GET":
            return error_response(405, "MethodNotAllowed", request.method)
        return json_response({"emails": self.parts.mailbox.mails()})
