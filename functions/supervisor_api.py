"""Supervisors' API (§7, §9): the live pool table, each pool's settings and members (every
change audited), and membership switches. Pools live in Table Storage (docs/pools.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import azure.functions as func

from functions.invocation import NO_STORE, Auth, IntQuery, endpoint, read_raw_json

if TYPE_CHECKING:
    from functions.bodies import AlarmThresholdsBody, MemberBody
    from shared.services.access import Principal
    from shared.views import (
        AlarmSettings,
        Dashboard,
        PoolAudit,
        PoolCalls,
        PoolDetail,
        PoolSettingsView,
        Wallboard,
    )

bp = func.Blueprint()
AUDIT_LIMIT = IntQuery("limit", 50, 1, 500, "At most this many changes, newest first")
POOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A pool's definition, as GET .../settings answers it (docs/pools.md).",
}


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
    "GET",
    "supervisor/pools/{poolId}/settings",
    auth=Auth.SUPERVISOR,
    errors=(404,),
    headers=NO_STORE,
)
def pool_settings(req: func.HttpRequest) -> PoolSettingsView:
    """Supervisors: a pool's settings (numbers, members and skills, ring timeout, after-call
    work, opening hours, exceptions, overflow, queue announcements)"""
    from shared import composition

    return composition.supervision().settings(req.route_params["poolId"])


@endpoint(
    bp,
    "PUT",
    "supervisor/pools/{poolId}/settings",
    auth=Auth.SUPERVISOR,
    errors=(409, 422, 503),
    raw_body=POOL_SCHEMA,
)
def put_pool_settings(req: func.HttpRequest, principal: Any) -> PoolSettingsView:
    """Supervisors: create a pool or replace its settings (§7 2.3 3)

    The whole definition, checked as a whole (422 naming each problem); 409 when a number
    belongs to another pool or the pool changed meanwhile. Audited; the next offer follows it."""
    from shared import composition

    return composition.supervision().put_settings(
        req.route_params["poolId"], read_raw_json(req), principal, datetime.now(UTC)
    )


@endpoint(
    bp,
    "GET",
    "supervisor/pools/{poolId}/audit",
    auth=Auth.SUPERVISOR,
    errors=(404,),
    query=(AUDIT_LIMIT,),
    headers=NO_STORE,
)
def pool_audit(req: func.HttpRequest) -> PoolAudit:
    """Supervisors: who changed the pool, when, and what (newest first)"""
    from shared import composition

    return composition.supervision().audit(req.route_params["poolId"], AUDIT_LIMIT.read(req))


@endpoint(
    bp,
    "PUT",
    "supervisor/pools/{poolId}/members/{agentId}",
    auth=Auth.SUPERVISOR,
    errors=(404, 409, 422, 503),
)
def pool_member(req: func.HttpRequest, principal: Any, body: MemberBody) -> PoolDetail:
    """Supervisors: add an agent to a pool, set its skill, activate or deactivate it (§7 2.3
    2a, 2b)"""
    from shared import composition

    return composition.supervision().set_member(
        req.route_params["poolId"],
        req.route_params["agentId"],
        datetime.now(UTC),
        editor=principal,
        active=body.active,
        skill=body.skill,
    )


@endpoint(
    bp,
    "DELETE",
    "supervisor/pools/{poolId}/members/{agentId}",
    auth=Auth.SUPERVISOR,
    errors=(404, 409, 503),
)
def remove_pool_member(req: func.HttpRequest, principal: Any) -> PoolDetail:
    """Supervisors: remove an agent from a pool (§7 2.3 2b)"""
    from shared import composition

    return composition.supervision().remove_member(
        req.route_params["poolId"], req.route_params["agentId"], datetime.now(UTC), editor=principal
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
