"""Supervisors (§7 Service Pool Management, §9 Real Time Monitoring): each pool's live figures,
its members, and switching a member on or off in a pool."""

from __future__ import annotations

from datetime import datetime

from shared.domain.availability import AgentState, effective, takes_pool_calls
from shared.domain.directory import Directory, ServicePool
from shared.errors import FieldError, NotFound, Unprocessable
from shared.services.ports import AgentStates, CallRepository, WaitingCalls
from shared.services.presence import Presence
from shared.views import Dashboard, PoolAgent, PoolDetail, PoolFigures, extended

MAX_QUEUE_READ = 200  # a queue longer than this is shown as at least this long


class Supervision:
    def __init__(
        self,
        *,
        directory: Directory,
        agents: AgentStates,
        calls: CallRepository,
        waiting: WaitingCalls,
        presence: Presence,
    ) -> None:
        self.directory, self.agents, self.calls, self.waiting = directory, agents, calls, waiting
        self.presence = presence

    def dashboard(self, now: datetime) -> Dashboard:
        """The use-case document's table: serving, free, active, active calls, queue length and
        max wait time for every pool (one agent-state read for all members)."""
        members = tuple(sorted({m for p in self.directory.pools for m in p.members}))
        states = self.agents.states(members)
        return Dashboard(
            pools=tuple(self._figures(pool, states, now) for pool in self.directory.pools)
        )

    def pool(self, pool_id: str, now: datetime) -> PoolDetail:
        pool = self._pool(pool_id)
        states = self.agents.states(pool.members)
        agents = []
        for agent_id in pool.members:
            agent, state = self.directory.agent(agent_id), states[agent_id]
            availability = effective(state.availability, now)
            agents.append(
                PoolAgent(
                    agent_id=agent_id,
                    name=agent.name if agent else agent_id,
                    status=availability.status,
                    kind=availability.type,
                    active_in_pool=state.active_in(pool.id),
                    on_call=bool(state.busy_call_id),
                )
            )
        return extended(
            self._figures(pool, states, now),
            PoolDetail,
            numbers=tuple(pool.numbers),
            agents=tuple(agents),
        )

    def set_member(self, pool_id: str, agent_id: str, active: bool, now: datetime) -> PoolDetail:
        """§2.3 a: activate or deactivate an agent in a pool."""
        pool = self._pool(pool_id)
        agent = self.directory.agent(agent_id)
        if agent is None or agent_id not in pool.members:
            raise Unprocessable(
                f"{agent_id} is not a member of {pool.id}",
                errors=[FieldError("agentId", "a member of the pool")],
            )
        # The agent's own switch does the same and offers waiting callers to a member switched
        # on: one way to do it.
        self.presence.set_pools(agent, {pool.id: active}, now)
        return self.pool(pool_id, now)

    def _pool(self, pool_id: str) -> ServicePool:
        pool = self.directory.pool(pool_id)
        if pool is None:
            raise NotFound(f"no service pool {pool_id}")
        return pool

    def _figures(
        self, pool: ServicePool, states: dict[str, AgentState], now: datetime
    ) -> PoolFigures:
        mine = [states[m] for m in pool.members if m in states]
        serving = [
            s
            for s in mine
            if s.active_in(pool.id) and takes_pool_calls(effective(s.availability, now))
        ]
        # One read of the queue (its keys hold the arrival times), no read per waiting call.
        # A row left behind by a call an agent took (its delete lost to a crash) is not
        # counted: the agent is busy with that call; the dispatcher sweeps the row later.
        taken = {s.busy_call_id for s in states.values() if s.busy_call_id}
        queue = self.waiting.arrivals(pool.id, MAX_QUEUE_READ)
        waiting_since = [at for call_id, at in queue if call_id not in taken]
        return PoolFigures(
            pool_id=pool.id,
            name=pool.name,
            serving=len(serving),
            free=sum(1 for s in serving if not s.busy_call_id),
            active=sum(1 for s in mine if s.active_in(pool.id)),
            active_calls=sum(1 for s in mine if s.busy_call_id),
            queue_length=len(waiting_since),
            max_wait_seconds=max(
                (round((now - t).total_seconds()) for t in waiting_since), default=0
            ),
        )
