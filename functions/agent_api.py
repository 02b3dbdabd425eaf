"""The web phone panel's API for agents: the current call, notes, picking, dialling."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import azure.functions as func

from functions.invocation import CALL_ERRORS, NO_STORE, Auth, endpoint

if TYPE_CHECKING:
    from functions.bodies import DialBody, NotesBody, PickCustomerBody
    from shared.domain.directory import Agent
    from shared.views import CallView, CallWithNotes, CurrentCall

bp = func.Blueprint()
# 100,000 characters of the widest JSON (a 4-byte character is a 12-byte surrogate-pair
# escape), and room for the rest of the body (shared.domain.activity.NOTES_MAX).
NOTES_BODY_LIMIT = 100_000 * 12 + 1024


@endpoint(bp, "GET", "me/calls/current", auth=Auth.AGENT, headers=NO_STORE)
def current_call(req: func.HttpRequest, agent: Agent) -> CurrentCall:
    """The agent's current (or latest) call and its screen pop"""
    from shared import composition  # wired on first use, not at cold start
    from shared.views import CurrentCall

    return CurrentCall(call=composition.agent_calls().current(agent))


@endpoint(
    bp,
    "PUT",
    "me/calls/{callId}/notes",
    auth=Auth.AGENT,
    errors=(*CALL_ERRORS, 422),
    max_body=NOTES_BODY_LIMIT,
)
def call_notes(req: func.HttpRequest, agent: Agent, body: NotesBody) -> CallWithNotes:
    """Save the notes (every edit; at most 100,000 characters)

    The activity's description holds 2,000 characters; longer notes are kept whole in a note
    (annotation) on the activity. More than 100,000 characters: 422, which says the limit."""
    from shared import composition

    return composition.agent_calls().save_notes(agent, req.route_params["callId"], body.notes or "")


@endpoint(bp, "POST", "me/calls/{callId}/customer", auth=Auth.AGENT, errors=(404, 409, 422))
def pick_customer(req: func.HttpRequest, agent: Agent, body: PickCustomerBody) -> CallView:
    """Pick one of several identified customers (§2.1.2 a)

    409 once the activity is in D365 (set Regarding there)."""
    from shared import composition

    return composition.agent_calls().pick_customer(
        agent, req.route_params["callId"], body.entity, body.id
    )


@endpoint(bp, "POST", "me/calls", auth=Auth.AGENT, status=201, errors=(409, 422, 503))
def dial(req: func.HttpRequest, agent: Agent, body: DialBody) -> CallView:
    """Click-to-dial (§6): ring the agent's web phone, then the number

    409 while the agent is on another call, or when ACS refuses to place the call."""
    from shared import composition

    return composition.agent_calls().dial(agent, body.number, body.caller_id, datetime.now(UTC))


@endpoint(bp, "POST", "me/calls/{callId}/hangup", auth=Auth.AGENT, errors=CALL_ERRORS)
def hang_up(req: func.HttpRequest, agent: Agent) -> CallView:
    """End the call for everyone"""
    from shared import composition

    return composition.agent_calls().hang_up(agent, req.route_params["callId"])


@endpoint(bp, "POST", "me/calls/{callId}/decline", auth=Auth.AGENT, errors=CALL_ERRORS)
def decline(req: func.HttpRequest, agent: Agent) -> CallView:
    """Decline a call ringing this agent; it moves on to the next member"""
    from shared import composition

    return composition.agent_calls().decline(agent, req.route_params["callId"])
