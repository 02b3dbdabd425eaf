"""Supervisors' API (§7, §9): the live pool dashboard and pool membership switches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import azure.functions as func

from functions.invocation import NO_STORE, Auth, endpoint

if TYPE_CHECKING:
    from functions.bodies import MemberBody
    from shared.views import Dashboard, PoolDetail

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
