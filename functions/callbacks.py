"""Callbacks (§5): requests from other sources, the supervisors' list, and the D365 import
(every CALLBACK_POLL_SCHEDULE, and at once per captured request)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import azure.functions as func

from functions.invocation import (
    NO_STORE,
    SAFE_ID,
    Auth,
    IntQuery,
    TextQuery,
    background_invocation,
    endpoint,
)
from shared.errors import DependencyUnavailable, FieldError, InvalidInput
from shared.queues import CALLBACK_IMPORTS, CALLBACK_OFFERS

if TYPE_CHECKING:
    from functions.bodies import CallbackBody
    from shared.views import CallbackRequests, CallbackRequestView

bp = func.Blueprint()
log = logging.getLogger("callbacks")
LIST = TextQuery("list", description="A callback list's id; default every list")
STATE = TextQuery("state", choices=("open", "handled"), description="Default both")
LIMIT = IntQuery("limit", 100, 1, 1000, "At most this many, open ones longest waiting first")


@endpoint(bp, "POST", "callbacks", auth=Auth.FUNCTION_KEY, status=201, errors=(422,))
def callback_create(req: func.HttpRequest, body: CallbackBody) -> CallbackRequestView:
    """Leave a callback request (e.g. from a web form)

    See docs/callbacks.md. An `Idempotency-Key` header (1-128 letters, digits, `.`, `_`, `:`
    or `-`) makes a repeat of the same request return the request already left."""
    from shared import composition  # wired on first use, not at cold start
    from shared.domain.callbacks import CallbackSource, callback_request_id
    from shared.services.callbacks import request_view

    key = (req.headers.get("Idempotency-Key") or "").strip()
    if key and not SAFE_ID.match(key):
        raise InvalidInput(
            "Idempotency-Key must be 1-128 letters, digits, '.', '_', ':' or '-'",
            errors=[FieldError("Idempotency-Key", "invalid")],
        )
    request = composition.callbacks().capture(
        list_id=body.list_id,
        number=body.number,
        requested_at=datetime.now(UTC),
        pool_id=None,
        source=CallbackSource.API,
        name=body.name,
        note=body.note,
        request_id=callback_request_id(f"api:{key}") if key else None,
    )
    return request_view(request)


@endpoint(
    bp,
    "GET",
    "callbacks",
    auth=Auth.SUPERVISOR,
    errors=(404,),
    query=(LIST, STATE, LIMIT),
    headers=NO_STORE,
)
def callback_list(req: func.HttpRequest) -> CallbackRequests:
    """Callback requests of a list, by state (supervisors)"""
    from shared import composition  # wired on first use, not at cold start
    from shared.domain.callbacks import CallbackState

    state = STATE.read(req)
    return composition.callbacks().requests(
        list_id=LIST.read(req),
        state=CallbackState(state) if state else None,
        limit=LIMIT.read(req),
    )


@bp.timer_trigger(
    schedule="%CALLBACK_POLL_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True
)
@background_invocation("timer")
def callback_import(timer: func.TimerRequest) -> None:
    """Every enabled list's open requests become Phone Calls in the list's D365 queue."""
    from shared import composition  # wired on first use, not at cold start
    from shared.views import to_json

    summary = composition.callbacks().import_open()
    log.info(json.dumps({"event": "callbackImport", **to_json(summary)}, separators=(",", ":")))
    if summary.interrupted:
        # Logged as a failed run; what is left stays open for the next one.
        raise DependencyUnavailable(summary.interrupted)


@bp.queue_trigger(arg_name="msg", queue_name=CALLBACK_IMPORTS, connection="AzureWebJobsStorage")
@background_invocation("queue")
def callback_import_now(msg: func.QueueMessage) -> None:
    """The immediate path: the one request just captured. A failure is retried by the queue;
    after maxDequeueCount the message goes to callback-imports-poison and the timer imports it."""
    from shared import composition  # wired on first use, not at cold start
    from shared.messages import CallbackImport
    from shared.views import to_json

    message = CallbackImport.read(msg.get_body())
    summary = composition.callbacks().import_one(
        message.list_id, message.request_id, message.requested_at
    )
    log.info(
        json.dumps(
            {"event": "callbackImportNow", "requestId": message.request_id, **to_json(summary)},
            separators=(",", ":"),
        )
    )


@bp.queue_trigger(arg_name="msg", queue_name=CALLBACK_OFFERS, connection="AzureWebJobsStorage")
@background_invocation("queue")
def callback_offer_due(msg: func.QueueMessage) -> None:
    """A pool caller has waited `offerAfterSeconds`: if still waiting, offer a callback (§5)."""
    from shared import composition
    from shared.messages import callback_offer_call_id

    call_id = callback_offer_call_id(msg.get_body())
    composition.call_flow().offer_callback(call_id, datetime.now(UTC))
