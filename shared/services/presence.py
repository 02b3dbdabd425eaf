"""The agent's availability (§1.2.1) and pool activation, as the web phone panel sets them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from shared.domain.availability import (
    AgentState,
    StatusCatalog,
    choose,
    effective,
    takes_pool_calls,
)
from shared.domain.destinations import OPEN, DestinationPolicy
from shared.domain.directory import E164, Agent, Directory
from shared.errors import FieldError, Unprocessable
from shared.services.ports import AgentStates
from shared.views import (
    AgentPools,
    AvailabilityView,
    EndpointView,
    PoolMembership,
    StatusChoice,
)

UNSET: Any = object()


class Presence:
    def __init__(
        self,
        agents: AgentStates,
        directory: Directory,
        catalog: StatusCatalog,
        *,
        on_free: Callable[[str, datetime], None] | None = None,
        destinations: DestinationPolicy = OPEN,
    ) -> None:
        self.destinations = destinations
        self.agents, self.directory, self.catalog = agents, directory, catalog
        # Called when an agent may now take pool calls, so waiting callers reach them at once.
        self.on_free = on_free

    def availability(self, agent: Agent, now: datetime) -> AvailabilityView:
        return self._view(agent, self.agents.state(agent.id), now)

    def set_availability(
        self,
        agent: Agent,
        now: datetime,
        *,
        status: str | None = None,
        forward_to: str | None = UNSET,
    ) -> AvailabilityView:
        errors = []
        if status is not None and self.catalog.type_of(status) is None:
            errors.append(FieldError("status", f"one of {sorted(self.catalog.statuses)}"))
        if forward_to not in (UNSET, None, "") and not E164.match(str(forward_to)):
            errors.append(FieldError("forwardTo", "an E.164 number, e.g. +358401234567"))
        elif forward_to not in (UNSET, None, "") and (
            refused := self.destinations.refusal(str(forward_to))
        ):
            errors.append(FieldError("forwardTo", f"an allowed destination ({refused})"))
        if errors:
            raise Unprocessable(
                "; ".join(f"{e.field} must be {e.message}" for e in errors), errors=errors
            )

        def change(state: AgentState) -> AgentState:
            if status is not None:
                state = replace(
                    state, availability=choose(state.availability, status, self.catalog, now)
                )
            if forward_to is not UNSET:
                state = replace(state, forward_to=forward_to or None)
            return state

        state = self.agents.update(agent.id, change)
        self._offer_waiting(agent.id, state, now)
        return self._view(agent, state, now)

    def _offer_waiting(self, agent_id: str, state: AgentState, now: datetime) -> None:
        if (
            self.on_free
            and not state.busy_call_id
            and takes_pool_calls(effective(state.availability, now))
        ):
            self.on_free(agent_id, now)

    def _view(self, agent: Agent, state: AgentState, now: datetime) -> AvailabilityView:
        current = effective(state.availability, now)
        return AvailabilityView(
            status=current.status,
            kind=current.type,
            until=current.until,
            returns_to=current.then_status if current.until else None,
            forward_to=state.forward_to or agent.forward_to,
            statuses=tuple(StatusChoice(name=n, kind=t) for n, t in self.catalog.statuses.items()),
        )

    def endpoint(self, agent: Agent) -> EndpointView:
        """Where the agent's calls ring (§1.2.1): the web phone or its mobile."""
        return _endpoint_view(agent, self.agents.state(agent.id))

    def set_endpoint(self, agent: Agent, kind: str, mobile_number: str | None) -> EndpointView:
        """Choose the web phone or a mobile number (E.164); the next call rings there."""
        if kind == "mobile":
            if not mobile_number or not E164.match(mobile_number):
                raise Unprocessable(
                    "mobileNumber must be an E.164 number, e.g. +358401234567",
                    errors=[FieldError("mobileNumber", "an E.164 number, e.g. +358401234567")],
                )
            chosen: str | None = mobile_number
        elif kind == "webPhone":
            if not agent.acs_user_id:
                raise Unprocessable(
                    "this agent has no web phone (acsUserId in AGENTS): it rings its phone number",
                    errors=[FieldError("kind", "mobile: no web phone is configured")],
                )
            chosen = None
        else:
            raise Unprocessable(
                "kind must be webPhone or mobile", errors=[FieldError("kind", "webPhone or mobile")]
            )
        state = self.agents.update(agent.id, lambda s: replace(s, mobile_number=chosen))
        return _endpoint_view(agent, state)

    def pools(self, agent: Agent) -> AgentPools:
        state = self.agents.state(agent.id)
        return AgentPools(
            pools=tuple(
                PoolMembership(pool_id=p.id, name=p.name, active=state.active_in(p.id))
                for p in self.directory.pools_of(agent.id)
            )
        )

    def set_pools(self, agent: Agent, changes: dict[str, bool], now: datetime) -> AgentPools:
        mine = {p.id for p in self.directory.pools_of(agent.id)}
        unknown = sorted(set(changes) - mine)
        if unknown:
            raise Unprocessable(
                f"not a member of {unknown}",
                errors=[FieldError(f"pools.{p}", "not one of your pools") for p in unknown],
            )

        def change(state: AgentState) -> AgentState:
            inactive = set(state.inactive_pools)
            for pool_id, active in changes.items():
                (inactive.discard if active else inactive.add)(pool_id)
            return replace(state, inactive_pools=frozenset(inactive))

        self._offer_waiting(agent.id, self.agents.update(agent.id, change), now)
        return self.pools(agent)

    def sweep(self, now: datetime) -> int:
        """Housekeeping: write back the status every expired Lunch has returned to."""
        swept = 0
        for agent_id in self.agents.with_expired_status(now):
            state = self.agents.update(
                agent_id, lambda s: replace(s, availability=effective(s.availability, now))
            )
            self._offer_waiting(agent_id, state, now)
            swept += 1
        return swept


def _endpoint_view(agent: Agent, state: AgentState) -> EndpointView:
    mobile = state.mobile_number or (None if agent.acs_user_id else agent.phone_number)
    return EndpointView(
        kind="mobile" if mobile else "webPhone",
        mobile_number=mobile,
        web_phone=bool(agent.acs_user_id),
    )
