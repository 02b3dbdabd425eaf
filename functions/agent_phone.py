"""The web phone panel's own state: availability, pool activation, the single session."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import azure.functions as func

from functions.invocation import Auth, background_invocation, endpoint
from shared.queues import WRAP_UPS

if TYPE_CHECKING:
    from functions.bodies import AvailabilityBody, PoolsBody, SessionBody
    from shared.domain.directory import Agent
    from shared.views import AgentPools, AvailabilityView, SessionView

bp = func.Blueprint()


@endpoint(bp, "GET", "me/availability", auth=Auth.AGENT)
def availability(req: func.HttpRequest, agent: Agent) -> AvailabilityView:
    """The agent's status (§1.2.1)"""
    from shared import composition

    return composition.presence().availability(agent, datetime.now(UTC))


@endpoint(bp, "PUT", "me/availability", auth=Auth.AGENT, errors=(422, 503))
def set_availability(
    req: func.HttpRequest, agent: Agent, body: AvailabilityBody
) -> AvailabilityView:
    """Set the status and/or the DND forwarding number"""
    from shared import composition

    kwargs = {"forward_to": body.forward_to} if "forwardTo" in body.given else {}
    return composition.presence().set_availability(
        agent, datetime.now(UTC), status=body.status, **kwargs
    )


@endpoint(bp, "GET", "me/pools", auth=Auth.AGENT)
def pools(req: func.HttpRequest, agent: Agent) -> AgentPools:
    """The agent's service pools and whether the agent is active in each"""
    from shared import composition

    return composition.presence().pools(agent)


@endpoint(bp, "PUT", "me/pools", auth=Auth.AGENT, errors=(422, 503))
def set_pools(req: func.HttpRequest, agent: Agent, body: PoolsBody) -> AgentPools:
    """Activate or deactivate the agent in pools"""
    from shared import composition

    changes = {switch.pool_id: switch.active for switch in body.pools}
    return composition.presence().set_pools(agent, changes, datetime.now(UTC))


@endpoint(bp, "POST", "me/session", auth=Auth.AGENT, status=201, errors=(409,))
def start_session(req: func.HttpRequest, agent: Agent, body: SessionBody) -> SessionView:
    """Start the web phone's single session (§1.4)

    409 with the use-case document's message while another live session exists; take it over
    with `{"takeover": true}`."""
    from shared import composition

    return composition.web_phone_sessions().start(agent, datetime.now(UTC), takeover=body.takeover)


@endpoint(bp, "PUT", "me/session/{sessionId}", auth=Auth.AGENT, errors=(409,))
def session_heartbeat(req: func.HttpRequest, agent: Agent) -> SessionView:
    """Heartbeat: extend the lease (409 once another session has taken over)"""
    from shared import composition

    return composition.web_phone_sessions().heartbeat(
        agent, req.route_params["sessionId"], datetime.now(UTC)
    )


@endpoint(bp, "DELETE", "me/session/{sessionId}", auth=Auth.AGENT, status=204, errors=(404,))
def end_session(req: func.HttpRequest, agent: Agent) -> None:
    """End the session

    404 unless `sessionId` is the agent's own live session (a colleague's, an ended one)."""
    from shared import composition

    composition.web_phone_sessions().end(agent, req.route_params["sessionId"])


@bp.timer_trigger(schedule="%HOUSEKEEPING_SCHEDULE%", arg_name="timer", run_on_startup=False)
@background_invocation("timer")
def housekeeping(timer: func.TimerRequest) -> None:
    from shared import composition

    now = datetime.now(UTC)
    composition.pool_catalog().build_roster_once()  # once, on a store from before it moved
    composition.presence().sweep(now)
    # An offer never rung (the host died before asking ACS) expires here when nothing else
    # looks at its pool's queue.
    composition.call_flow().dispatch_pools(now)


@bp.queue_trigger(arg_name="msg", queue_name=WRAP_UPS, connection="AzureWebJobsStorage")
@background_invocation("queue")
def wrap_up_over(msg: func.QueueMessage) -> None:
    """An agent's after-call work is over: it takes the oldest call waiting in its pools."""
    from shared import composition
    from shared.messages import wrap_up_agent_id

    agent_id = wrap_up_agent_id(msg.get_body())
    composition.agent_states().reindex(agent_id)  # its free rows come back now
    composition.call_flow().dispatch_waiting(agent_id, datetime.now(UTC))
