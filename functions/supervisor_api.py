"""Supervisors' API (§7, §9): the live pool dashboard and pool membership switches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import azure.functions as func

from functions.invocation import NO_STORE, Auth, IntQuery, endpoint

if TYPE_CHECKING:
    from functions.bodies import AlarmThresholdsBody, MemberBody
    from shared.services.access import Principal
    from shared.views import AlarmSettings, Dashboard, PoolCalls, PoolDetail, Wallboard

bp = func.Blueprint()


@endpoint(bp, "GET", "supervisor/pools", auth=Auth.SUPERVISOR, headers=NO_STORE)
def pool_dashboard(req: func.HttpRequest) -> Dashboard:
    """Supervisors: every pool's serving, free, active, active calls, queue length and max
    wait time (§9)"""
    from shared import composition

    return composition.supervision().dashboard(datetime.now(UTC))


@endpoint(
    bp,
    "GET",
    "supervisor/pools/{poolId}",
    auth=Auth.SUPERVISOR,
    errors=(404,),
    headers=NO_STORE,
)
def pool_detail(req: func.HttpRequest) -> PoolDetail:
    """Supervisors: one pool's figures, numbers and agents (§7)"""
    from shared import composition

    return composition.supervision().pool(req.route_params["poolId"], datetime.now(UTC))


@endpoint(
    bp,
    "PUT",
    "supervisor/pools/{poolId}/members/{agentId}",
    auth=Auth.SUPERVISOR,
    errors=(404, 422, 503),
)
def pool_member(req: func.HttpRequest, body: MemberBody) -> PoolDetail:
    """Supervisors: activate or deactivate an agent in a pool (§7 2.a)"""
    from shared import composition

    return composition.supervision().set_member(
        req.route_params["poolId"], req.route_params["agentId"], body.active, datetime.now(UTC)
    )


CALLS_LIMIT = IntQuery("limit", 50, 1, 500, "How many ended calls, newest first")


@endpoint(
    bp,
    "GET",
    "supervisor/pools/{poolId}/calls",
    auth=Auth.SUPERVISOR,
    errors=(404,),
    query=(CALLS_LIMIT,),
    headers=NO_STORE,
)
def pool_calls(req: func.HttpRequest) -> PoolCalls:
    """Supervisors: the service calls tab (§9), the pool's ongoing and recent calls

    Each with its wait, agent and outcome, from the last 24 hours; one Table Storage query
    however long the queue is."""
    from shared import composition

    return composition.pool_monitor().calls(
        req.route_params["poolId"], datetime.now(UTC), CALLS_LIMIT.read(req)
    )


@endpoint(bp, "GET", "supervisor/wallboard", auth=Auth.SUPERVISOR, headers=NO_STORE)
def wallboard(req: func.HttpRequest) -> Wallboard:
    """Supervisors: the wallboard's figures (§9 2.4) for every pool, with raised alarms"""
    from shared import composition

    return composition.pool_monitor().wallboard(datetime.now(UTC))


@endpoint(
    bp,
    "GET",
    "supervisor/pools/{poolId}/alarms",
    auth=Auth.SUPERVISOR,
    errors=(404,),
    headers=NO_STORE,
)
def pool_alarms(req: func.HttpRequest) -> AlarmSettings:
    """Supervisors: the pool's alarm thresholds (§8) and the alarms raised now"""
    from shared import composition

    return composition.pool_monitor().settings(req.route_params["poolId"], datetime.now(UTC))


@endpoint(
    bp,
    "PUT",
    "supervisor/pools/{poolId}/alarms",
    auth=Auth.SUPERVISOR,
    errors=(404, 503),
)
def set_pool_alarms(
    req: func.HttpRequest, principal: Principal, body: AlarmThresholdsBody
) -> AlarmSettings:
    """Supervisors: set the pool's alarm thresholds (§8); checked at once

    Each alarm is raised once when its condition starts to hold and cleared once when it
    stops, to the Teams webhook and by e-mail (docs/alarms.md)."""
    from shared import composition
    from shared.domain.pool_monitoring import AlarmThresholds

    thresholds = AlarmThresholds(
        queue_length=body.queue_length,
        max_wait_seconds=body.max_wait_seconds,
        nobody_serving=bool(body.nobody_serving),
        abandon_rate_percent=body.abandon_rate_percent,
        abandon_min_calls=body.abandon_min_calls or 10,
    )
    return composition.pool_monitor().set_thresholds(
        req.route_params["poolId"], thresholds, principal.oid, datetime.now(UTC)
    )
