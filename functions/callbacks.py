"""Callbacks (§5): requests from other sources, the supervisors' list, and the D365 import
(every CALLBACK_POLL_SCHEDULE, and at once per captured request)."""

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

import azure.functions as func

from functions.invocation import background_invocation, http_invocation, json_response
from shared.errors import DependencyUnavailable, FieldError, InvalidInput
from shared.messages import (
    CALLBACK_IMPORTS,
    CALLBACK_OFFERS,
    CallbackImport,
    callback_offer_call_id,
)

bp = func.Blueprint()
log = logging.getLogger("callbacks")
_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _body(req: func.HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(req.get_body() or b"null")
    except ValueError:
        raise InvalidInput("the body is not JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    errors = [
        FieldError(name, "must be a string")
        for name in ("number", "name", "note", "list")
        if data.get(name) is not None and not isinstance(data[name], str)
    ]
    if not data.get("number") and not errors:
        errors.append(FieldError("number", "required"))
    if errors:
        raise InvalidInput("; ".join(f"{e.field} {e.message}" for e in errors), errors=errors)
    return data


@bp.route(route="callbacks", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@http_invocation
def callback_create(req: func.HttpRequest) -> func.HttpResponse:
    """A callback request from another source (a web form): number, optional name, note, list."""
    from shared import composition  # wired on first use, not at cold start
    from shared.domain.callbacks import CallbackSource, callback_request_id
    from shared.services.callbacks import request_view

    data = _body(req)
    key = (req.headers.get("Idempotency-Key") or "").strip()
    if key and not _IDEMPOTENCY_KEY.match(key):
        raise InvalidInput(
            "Idempotency-Key must be 1-128 letters, digits, '.', '_', ':' or '-'",
            errors=[FieldError("Idempotency-Key", "invalid")],
        )
    request = composition.callbacks().capture(
        list_id=data.get("list"),
        number=data["number"],
        requested_at=datetime.now(UTC),
        pool_id=None,
        source=CallbackSource.API,
        name=data.get("name"),
        note=data.get("note"),
        request_id=callback_request_id(f"api:{key}") if key else None,
    )
    return json_response(request_view(request), 201)


@bp.route(route="callbacks", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@http_invocation
def callback_list(req: func.HttpRequest) -> func.HttpResponse:
    """Supervisors: `?list=&state=open|handled&limit=` (open ones longest waiting first)."""
    from shared import composition  # wired on first use, not at cold start
    from shared.domain.callbacks import CallbackState

    composition.access().supervisor(req.headers.get("Authorization"))
    raw_state = (req.params.get("state") or "").strip().lower()
    if raw_state not in ("", *(s.value for s in CallbackState)):
        raise InvalidInput(
            "state must be open or handled", errors=[FieldError("state", "open or handled")]
        )
    raw_limit = (req.params.get("limit") or "100").strip()
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
        raise InvalidInput(
            "limit must be a whole number from 1 to 1000", errors=[FieldError("limit", "1-1000")]
        )
    views = composition.callbacks().requests(
        list_id=(req.params.get("list") or "").strip() or None,
        state=CallbackState(raw_state) if raw_state else None,
        limit=int(raw_limit),
    )
    return json_response({"value": views}, headers={"Cache-Control": "no-store"})


@bp.timer_trigger(
    schedule="%CALLBACK_POLL_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True
)
@background_invocation("timer")
def callback_import(timer: func.TimerRequest) -> None:
    """Every enabled list's open requests become Phone Calls in the list's D365 queue."""
    from shared import composition  # wired on first use, not at cold start

    summary = composition.callbacks().import_open()
    log.info(json.dumps({"event": "callbackImport", **summary.to_json()}, separators=(",", ":")))
    if summary.interrupted:
        # Logged as a failed run; what is left stays open for the next one.
        raise DependencyUnavailable(summary.interrupted)


@bp.queue_trigger(arg_name="msg", queue_name=CALLBACK_IMPORTS, connection="AzureWebJobsStorage")
@background_invocation("queue")
def callback_import_now(msg: func.QueueMessage) -> None:
    """The immediate path: the one request just captured. A failure is retried by the queue;
    after maxDequeueCount the message goes to callback-imports-poison and the timer imports it."""
    from shared import composition  # wired on first use, not at cold start

    message = CallbackImport.read(msg.get_body())
    summary = composition.callbacks().import_one(
        message.list_id, message.request_id, message.requested_at
    )
    log.info(
        json.dumps(
            {"event": "callbackImportNow", "requestId": message.request_id, **summary.to_json()},
            separators=(",", ":"),
        )
    )


@bp.queue_trigger(arg_name="msg", queue_name=CALLBACK_OFFERS, connection="AzureWebJobsStorage")
@background_invocation("queue")
def callback_offer_due(msg: func.QueueMessage) -> None:
    """A pool caller has waited `offerAfterSeconds`: if still waiting, offer a callback (§5)."""
    from shared import composition

    call_id = callback_offer_call_id(msg.get_body())
    composition.call_flow().offer_callback(call_id, datetime.now(UTC))
