"""Call control and lookups for the web phone (§1.3): hold, mute, DTMF, transfers, history,
caller ids and the contact directory."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import azure.functions as func

from functions.invocation import CALL_ERRORS, NO_STORE, Auth, IntQuery, TextQuery, endpoint

if TYPE_CHECKING:
    from functions.bodies import DtmfBody, TransferBody
    from shared.domain.directory import Agent
    from shared.views import CallerIds, CallView, DirectoryPage, History

bp = func.Blueprint()
HISTORY_LIMIT = IntQuery("limit", 20, 1, 100, "How many calls, newest first")
DIRECTORY_QUERY = TextQuery(
    "q",
    required=True,
    description="Part of a name, or the start of a number in E.164 or national form "
    "(2 to 100 characters; a number has 3+ digits)",
    min_length=2,
    max_length=100,
)
DIRECTORY_LIMIT = IntQuery("limit", 20, 1, 50, "Results per page")
DIRECTORY_PAGE = IntQuery("page", 1, 1, 20, "Which page")


@endpoint(bp, "POST", "me/calls/{callId}/hold", auth=Auth.AGENT, errors=CALL_ERRORS)
def hold(req: func.HttpRequest, agent: Agent) -> CallView:
    """Put the customer on hold (they hear music)"""
    from shared import composition

    return composition.call_control().hold(agent, req.route_params["callId"], on=True)


@endpoint(bp, "POST", "me/calls/{callId}/unhold", auth=Auth.AGENT, errors=CALL_ERRORS)
def unhold(req: func.HttpRequest, agent: Agent) -> CallView:
    """Take the customer off hold"""
    from shared import composition

    return composition.call_control().hold(agent, req.route_params["callId"], on=False)


@endpoint(bp, "POST", "me/calls/{callId}/mute", auth=Auth.AGENT, errors=CALL_ERRORS)
def mute(req: func.HttpRequest, agent: Agent) -> CallView:
    """Mute the agent in the call

    Unmute is the web phone's own microphone: ACS Call Automation has no server-side unmute,
    so the panel unmutes its local audio track."""
    from shared import composition

    return composition.call_control().mute(agent, req.route_params["callId"])


@endpoint(bp, "POST", "me/calls/{callId}/dtmf", auth=Auth.AGENT, errors=(*CALL_ERRORS, 422))
def send_dtmf(req: func.HttpRequest, agent: Agent, body: DtmfBody) -> CallView:
    """Send DTMF tones to the customer"""
    from shared import composition

    return composition.call_control().dtmf(agent, req.route_params["callId"], body.tones)


@endpoint(bp, "POST", "me/calls/{callId}/transfer", auth=Auth.AGENT, errors=(*CALL_ERRORS, 422))
def transfer(req: func.HttpRequest, agent: Agent, body: TransferBody) -> CallView:
    """Direct transfer: the target replaces the agent when it answers"""
    from shared import composition

    return composition.call_control().transfer(
        agent, req.route_params["callId"], to_agent=body.agent_id, to_number=body.number
    )


@endpoint(bp, "POST", "me/calls/{callId}/consult", auth=Auth.AGENT, errors=(*CALL_ERRORS, 422))
def consult(req: func.HttpRequest, agent: Agent, body: TransferBody) -> CallView:
    """Consulted transfer: the customer on hold, the target rung for the agent"""
    from shared import composition

    return composition.call_control().consult(
        agent, req.route_params["callId"], to_agent=body.agent_id, to_number=body.number
    )


@endpoint(bp, "POST", "me/calls/{callId}/consult/complete", auth=Auth.AGENT, errors=CALL_ERRORS)
def consult_complete(req: func.HttpRequest, agent: Agent) -> CallView:
    """Hand the customer to the consulted target; the agent leaves"""
    from shared import composition

    return composition.call_control().complete(agent, req.route_params["callId"], datetime.now(UTC))


@endpoint(bp, "POST", "me/calls/{callId}/consult/cancel", auth=Auth.AGENT, errors=CALL_ERRORS)
def consult_cancel(req: func.HttpRequest, agent: Agent) -> CallView:
    """Drop the consulted target; the customer comes back to the agent"""
    from shared import composition

    return composition.call_control().cancel(agent, req.route_params["callId"])


@endpoint(
    bp,
    "GET",
    "me/calls",
    auth=Auth.AGENT,
    query=(HISTORY_LIMIT,),
    headers=NO_STORE,
)
def call_history(req: func.HttpRequest, agent: Agent) -> History:
    """The agent's recent calls, newest first"""
    from shared import composition

    return composition.agent_calls().history(agent, HISTORY_LIMIT.read(req))


@endpoint(bp, "GET", "me/caller-ids", auth=Auth.AGENT)
def caller_ids(req: func.HttpRequest, agent: Agent) -> CallerIds:
    """Numbers the agent may show on outbound calls"""
    from shared import composition

    return composition.agent_calls().caller_ids(agent)


@endpoint(
    bp,
    "GET",
    "directory",
    auth=Auth.AGENT,
    errors=(422, 503),
    query=(DIRECTORY_QUERY, DIRECTORY_LIMIT, DIRECTORY_PAGE),
)
def directory(req: func.HttpRequest, agent: Agent) -> DirectoryPage:
    """D365 contacts, accounts, leads, users and colleagues by name or a number's start"""
    from shared import composition

    query = DIRECTORY_QUERY.read(req) or ""
    limit, page = DIRECTORY_LIMIT.read(req), DIRECTORY_PAGE.read(req)
    return composition.agent_calls().directory_search(query, limit, page)
