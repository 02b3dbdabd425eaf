"""Supervisors (§7 Service Pool Management, §9 Real Time Monitoring): each pool's live figures
and members, the pool's settings and members edited (every change audited), and switching a
member on or off in a pool."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from shared.domain.availability import (
    AgentState,
    effective,
    takes_call_from_pool,
    takes_pool_calls,
)
from shared.domain.directory import (
    MAX_SKILL,
    MIN_SKILL,
    Directory,
    ServicePool,
    check_directory,
    parse_pool,
    pool_json,
)
from shared.domain.schedule import Then
from shared.errors import Conflict, FieldError, NotFound, Unprocessable
from shared.services.ports import WaitingCalls
from shared.services.presence import Presence
from shared.views import (
    Dashboard,
    PoolAgent,
    PoolAudit,
    PoolChange,
    PoolDetail,
    PoolFigures,
    PoolMemberSetting,
    PoolSettingsView,
    extended,
)

MAX_QUEUE_READ = 1000  # a queue longer than this is shown as at least this long (one page)


class Editor(Protocol):
    """Who makes a change (the supervisor's validated token)."""

    @property
    def oid(self) -> str: ...

    @property
    def upn(self) -> str: ...


class PoolStore(Protocol):
    def number_owner(self, number: str) -> str | None: ...

    def stored(self, pool_id: str) -> ServicePool | None:
        """The pool as stored now (the call flow may read a copy kept for a few seconds)."""
        ...

    def save(
        self,
        pool: ServicePool,
        *,
        by: str,
        by_oid: str,
        action: str,
        expected: ServicePool | None,
    ) -> bool: ...

    def audit(self, pool_id: str, limit: int) -> list[Any]: ...


class PromptIndex(Protocol):
    def exists(self, pool_id: str, prompt_id: str) -> bool: ...


class RosterRows(Protocol):
    def members(self, pool_ids: Any) -> dict[str, list[Any]]: ...

    def forget(self, pool_id: str, agent_id: str) -> None: ...


class Supervision:
    def __init__(
        self,
        *,
        directory: Directory,
        store: PoolStore,
        roster: RosterRows,
        waiting: WaitingCalls,
        presence: Presence,
        on_change: Any = None,
        prompts: PromptIndex | None = None,
    ) -> None:
        self.directory, self.store, self.roster, self.waiting = directory, store, roster, waiting
        self.presence = presence
        self.prompts = prompts  # an action's prompt must be one uploaded to the pool
        # Called with a pool id after an edit: waiting callers are offered again at once.
        self.on_change = on_change

    # ------------------------------------------------------------------ the live figures

    def dashboard(self, now: datetime) -> Dashboard:
        """The use-case document's table: serving, free, active, active calls, queue length and
        max wait time for every pool (one roster read and one queue read per pool)."""
        pools = self.directory.all_pools()
        rows = self.roster.members(p.id for p in pools)
        return Dashboard(pools=tuple(self._figures(p, self._states(p, rows), now) for p in pools))

    def pool(self, pool_id: str, now: datetime) -> PoolDetail:
        pool = self._pool(pool_id)
        states = self._states(pool, self.roster.members([pool.id]))
        agents = []
        for agent_id in pool.members:
            agent, state = self.directory.agent(agent_id), states[agent_id]
            availability = effective(state.availability, now)
            wrapping = state.wrap_until if state.wrap_until and state.wrap_until > now else None
            agents.append(
                PoolAgent(
                    agent_id=agent_id,
                    name=agent.name if agent else agent_id,
                    status=availability.status,
                    kind=availability.type,
                    active_in_pool=state.active_in(pool.id),
                    on_call=bool(state.busy_call_id),
                    skill=pool.skill(agent_id),
                    takes_calls=takes_call_from_pool(state, pool.id, now),
                    wrap_up_until=wrapping,
                )
            )
        return extended(
            self._figures(pool, states, now),
            PoolDetail,
            numbers=tuple(pool.numbers),
            agents=tuple(agents),
        )

    def _states(self, pool: ServicePool, rows: dict[str, list[Any]]) -> dict[str, AgentState]:
        found = {r.agent_id: r.state for r in rows.get(pool.id, [])}
        return {m: found.get(m) or AgentState(m) for m in pool.members}

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
            free=sum(1 for s in serving if takes_call_from_pool(s, pool.id, now)),
            active=sum(1 for s in mine if s.active_in(pool.id)),
            active_calls=sum(1 for s in mine if s.busy_call_id),
            queue_length=len(waiting_since),
            max_wait_seconds=max(
                (max(0, round((now - t).total_seconds())) for t in waiting_since), default=0
            ),
        )

    # ------------------------------------------------------------------ settings

    def settings(self, pool_id: str) -> PoolSettingsView:
        return settings_view(self._pool(pool_id))

    def put_settings(
        self, pool_id: str, data: Any, editor: Editor, now: datetime
    ) -> PoolSettingsView:
        """Create or replace a pool (§7 2.3 3): the whole definition, checked as a whole."""
        if not isinstance(data, dict):
            raise Unprocessable("the pool must be a JSON object")
        problems: list[str] = []
        pool = parse_pool({**data, "id": pool_id}, "pool", problems)
        if pool is None or problems:
            raise Unprocessable(
                "; ".join(problems) or "not a pool",
                errors=[FieldError(p.split(" ", 1)[0].removeprefix("pool."), p) for p in problems],
            )
        before = self.store.stored(pool_id)
        self._check(pool)
        self._save(pool, before, editor, "settings" if before else "create")
        return settings_view(pool)

    def _check(self, pool: ServicePool) -> None:
        problems = [
            p
            for p in check_directory(Directory(self.directory.agents, (pool,)))
            if "unknown members" in p
        ]
        for number in pool.numbers:
            owner = self.store.number_owner(number)
            if owner not in (None, pool.id):
                raise Conflict(f"{number} is pool {owner}'s number")
            if self.directory.agent_by_direct_number(number) is not None:
                raise Conflict(f"{number} is an agent's direct number")
        for action in pool.actions:
            if (
                action.then is Then.POOL
                and action.target != pool.id
                and self.directory.pool(action.target or "") is None
            ):
                problems.append(f"no service pool {action.target!r} to send callers to")
        if self.prompts is not None:
            problems.extend(
                f"no prompt {p!r} uploaded to pool {pool.id!r}"
                for p in sorted(pool.prompts_in_use)
                if not self.prompts.exists(pool.id, p)
            )
        if problems:
            raise Unprocessable(
                "; ".join(problems), errors=[FieldError("pool", p) for p in problems]
            )

    def _save(
        self, pool: ServicePool, before: ServicePool | None, editor: Editor, action: str
    ) -> None:
        if not self.store.save(
            pool, by=editor.upn or editor.oid, by_oid=editor.oid, action=action, expected=before
        ):
            raise Conflict("the pool changed meanwhile; read it again and repeat the change")
        for agent_id in set(before.members if before else ()) - set(pool.members):
            self.roster.forget(pool.id, agent_id)
        if self.on_change is not None:
            self.on_change(pool.id)

    def audit(self, pool_id: str, limit: int) -> PoolAudit:
        self._pool(pool_id)
        return PoolAudit(
            pool_id=pool_id,
            changes=tuple(
                PoolChange(
                    at=e.at,
                    by=e.by,
                    by_object_id=e.by_oid,
                    action=e.action,
                    before=e.before,
                    after=e.after,
                )
                for e in self.store.audit(pool_id, limit)
            ),
        )

    # ------------------------------------------------------------------ members (§7 2.3 2)

    def set_member(
        self,
        pool_id: str,
        agent_id: str,
        now: datetime,
        *,
        editor: Editor,
        active: bool | None = None,
        skill: int | None = None,
    ) -> PoolDetail:
        """2a: activate or deactivate an agent in a pool; 2b: add an agent (with a skill level)
        or change its skill level."""
        pool = self._pool(pool_id)
        agent = self.directory.agent(agent_id)
        if agent is None:
            raise Unprocessable(
                f"{agent_id} is not a configured agent (AGENTS)",
                errors=[FieldError("agentId", "a configured agent")],
            )
        if skill is not None and not MIN_SKILL <= skill <= MAX_SKILL:
            raise Unprocessable(
                f"skill must be from {MIN_SKILL} to {MAX_SKILL}",
                errors=[FieldError("skill", f"{MIN_SKILL}..{MAX_SKILL}")],
            )
        if agent_id not in pool.members or (skill is not None and skill != pool.skill(agent_id)):
            skills = dict(pool.skills)
            skills[agent_id] = skill if skill is not None else pool.skill(agent_id)
            members = pool.members if agent_id in pool.members else (*pool.members, agent_id)
            changed = replace(
                pool,
                members=members,
                skills=tuple((m, skills.get(m, pool.skill(m))) for m in members),
            )
            action = "add member" if agent_id not in pool.members else "skill"
            self._save(changed, pool, editor, f"{action} {agent_id}")
        if active is not None:
            # The agent's own switch does the same and offers waiting callers to a member
            # switched on: one way to do it.
            self.presence.set_pools(agent, {pool.id: active}, now)
        return self.pool(pool_id, now)

    def remove_member(
        self, pool_id: str, agent_id: str, now: datetime, *, editor: Editor
    ) -> PoolDetail:
        """2b: the agent leaves the pool (it keeps its other pools)."""
        pool = self._pool(pool_id)
        if agent_id not in pool.members:
            raise NotFound(f"{agent_id} is not a member of {pool_id}")
        members = tuple(m for m in pool.members if m != agent_id)
        changed = replace(
            pool, members=members, skills=tuple(s for s in pool.skills if s[0] != agent_id)
        )
        self._save(changed, pool, editor, f"remove member {agent_id}")
        return self.pool(pool_id, now)

    def _pool(self, pool_id: str) -> ServicePool:
        pool = self.store.stored(pool_id)
        if pool is None:
            raise NotFound(f"no service pool {pool_id}")
        return pool


def settings_view(pool: ServicePool) -> PoolSettingsView:
    data = pool_json(pool)
    return PoolSettingsView(
        id=pool.id,
        name=pool.name,
        numbers=pool.numbers,
        members=tuple(PoolMemberSetting(agent_id=a, skill=pool.skill(a)) for a in pool.members),
        ring_timeout_seconds=pool.ring_timeout_seconds,
        wrap_up_seconds=pool.wrap_up_seconds,
        time_zone=pool.schedule.time_zone,
        hours=data.get("hours"),
        closed=data.get("closed"),
        exceptions=tuple(data["exceptions"]) if "exceptions" in data else None,
        overflow=data.get("overflow"),
        queue_announcements=data.get("queueAnnouncements"),
        callback=data.get("callback"),
        record=pool.record,
    )
