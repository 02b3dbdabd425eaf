"""Agents and service pools as the admin configures them (app settings, JSON)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.domain.queue_wait import QueueAnnouncements, parse_queue_announcements
from shared.domain.schedule import PoolAction, Schedule, Then, parse_action, parse_schedule
from shared.domain.workflows import Workflow, parse_workflow

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
AGENT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Agent:
    """A D365 user with a web phone: how to find them (Entra oid) and how to ring them."""

    id: str
    name: str
    entra_object_id: str
    system_user_id: str
    acs_user_id: str | None = None
    phone_number: str | None = None
    direct_numbers: tuple[str, ...] = ()
    caller_ids: tuple[str, ...] = ()
    forward_to: str | None = None  # where direct calls go under DND (the agent may change it)
    workflow: Workflow | None = None  # None: the pool's (docs/workflows.md)

    @property
    def ring_target(self) -> str:
        """The raw id ACS rings: the web phone's ACS identity first, else the phone number."""
        if self.acs_user_id:
            return self.acs_user_id
        return f"4:{self.phone_number}"


@dataclass(frozen=True)
class PoolCallback:
    """When a pool offers its callers a callback (§5), and the callback list it goes to."""

    list_id: str
    offer_after_seconds: int | None = None  # None: not offered while waiting
    when_closed: bool = False  # offered whenever the pool is closed


DEFAULT_SKILL, MIN_SKILL, MAX_SKILL = 5, 1, 10


@dataclass(frozen=True)
class Overflow:
    """Where a caller goes instead of waiting once the queue is this long, or after waiting
    this long (docs/pools.md); either limit may be absent, not both."""

    max_queue_length: int | None
    action: PoolAction
    max_wait_seconds: int | None = None


@dataclass(frozen=True)
class ServicePool:
    """A voice queue: its numbers, members with their skill levels, how long each offer rings,
    the agent's after-call work time, its opening hours and its overflow (docs/pools.md)."""

    id: str
    name: str
    numbers: tuple[str, ...]
    members: tuple[str, ...]
    ring_timeout_seconds: int = 20
    record: bool | None = None  # None: the RECORDING_ENABLED setting decides
    callback: PoolCallback | None = None  # None: this pool offers no callback
    skills: tuple[tuple[str, int], ...] = ()  # (agent id, 1..10, higher offered first)
    wrap_up_seconds: int = 0  # after a pool call the agent gets no pool calls this long
    schedule: Schedule = field(default_factory=Schedule)
    overflow: Overflow | None = None
    workflow: Workflow | None = None  # None: a Phone Call activity (docs/workflows.md)
    queue_announcements: QueueAnnouncements | None = None  # position / estimated wait

    def skill(self, agent_id: str) -> int:
        return dict(self.skills).get(agent_id, DEFAULT_SKILL)

    @property
    def actions(self) -> tuple[PoolAction, ...]:
        """What callers the pool does not take get: closed hours, exceptions, overflow."""
        found = [self.schedule.closed, *(e.action for e in self.schedule.exceptions)]
        return (*found, *((self.overflow.action,) if self.overflow else ()))

    @property
    def prompts_in_use(self) -> frozenset[str]:
        return frozenset(a.prompt for a in self.actions if a.prompt)


class PoolCatalog(Protocol):
    """Where the pools live: Table Storage (edited by supervisors), or a fixed list."""

    def pool(self, pool_id: str) -> ServicePool | None: ...

    def pool_by_number(self, number: str) -> ServicePool | None: ...

    def pools_of(self, agent_id: str) -> tuple[ServicePool, ...]: ...

    def all(self) -> tuple[ServicePool, ...]: ...


@dataclass(frozen=True)
class FixedPools:
    """Pools as a list (the SERVICE_POOLS setting, unit tests)."""

    items: tuple[ServicePool, ...]

    def pool(self, pool_id: str) -> ServicePool | None:
        return next((p for p in self.items if p.id == pool_id), None)

    def pool_by_number(self, number: str) -> ServicePool | None:
        return next((p for p in self.items if number in p.numbers), None)

    def pools_of(self, agent_id: str) -> tuple[ServicePool, ...]:
        return tuple(p for p in self.items if agent_id in p.members)

    def all(self) -> tuple[ServicePool, ...]:
        return self.items


@dataclass(frozen=True)
class Directory:
    """The agents (AGENTS setting) and the pools (a catalog; a tuple is taken as fixed)."""

    agents: tuple[Agent, ...]
    pools: PoolCatalog | tuple[ServicePool, ...]

    @property
    def catalog(self) -> PoolCatalog:
        return FixedPools(self.pools) if isinstance(self.pools, tuple) else self.pools

    def all_pools(self) -> tuple[ServicePool, ...]:
        return self.catalog.all()

    def agent(self, agent_id: str) -> Agent | None:
        return next((a for a in self.agents if a.id == agent_id), None)

    def agent_by_object_id(self, object_id: str) -> Agent | None:
        oid = object_id.lower()
        return next((a for a in self.agents if a.entra_object_id.lower() == oid), None)

    def pool(self, pool_id: str) -> ServicePool | None:
        return self.catalog.pool(pool_id)

    def pool_by_number(self, number: str) -> ServicePool | None:
        return self.catalog.pool_by_number(number)

    def agent_by_direct_number(self, number: str) -> Agent | None:
        return next((a for a in self.agents if number in a.direct_numbers), None)

    def pools_of(self, agent_id: str) -> tuple[ServicePool, ...]:
        return self.catalog.pools_of(agent_id)


class _Reader:
    """Reads one JSON object, collecting every problem with its path."""

    def __init__(self, data: Any, where: str, problems: list[str]) -> None:
        self.data = data if isinstance(data, dict) else {}
        self.where, self.problems = where, problems
        if not isinstance(data, dict):
            problems.append(f"{where} must be an object")

    def text(
        self,
        key: str,
        pattern: re.Pattern[str] | None = None,
        *,
        required: bool = True,
        what: str = "",
    ) -> str | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                self.problems.append(f"{self.where}.{key} is missing")
            return None
        if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
            self.problems.append(f"{self.where}.{key} must be {what or 'text'}, got {value!r}")
            return None
        return value

    def numbers(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems.append(f"{self.where}.{key} must be a list of E.164 numbers")
            return ()
        bad = [v for v in value if not E164.match(v)]
        if bad:
            self.problems.append(f"{self.where}.{key} has numbers not in E.164: {bad}")
        return tuple(v for v in value if E164.match(v))


def _load_list(raw: str, name: str) -> list[Any]:
    try:
        data = json.loads(raw) if raw.strip() else []
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list):
        raise ValueError(f"must be a JSON list of {name}")
    return data


def parse_agents(raw: str) -> tuple[Agent, ...]:
    """The AGENTS setting: a JSON list of agents (see docs/configuration.md)."""
    problems: list[str] = []
    agents: list[Agent] = []
    for i, item in enumerate(_load_list(raw, "agents")):
        r = _Reader(item, f"[{i}]", problems)
        agent_id = r.text("id", AGENT_ID, what="letters, digits, '_', '.' or '-'")
        oid = r.text("entraObjectId", GUID, what="a GUID")
        user = r.text("systemUserId", GUID, what="a GUID")
        acs = r.text("acsUserId", required=False)
        phone = r.text("phoneNumber", E164, required=False, what="an E.164 number")
        if not acs and not phone and isinstance(item, dict):
            problems.append(f"[{i}] needs acsUserId or phoneNumber (what to ring)")
        if acs and not acs.startswith("8:"):
            problems.append(f"[{i}].acsUserId must be an ACS user id (8:acs:...)")
        direct, caller_ids = r.numbers("directNumbers"), r.numbers("callerIds")
        forward_to = r.text("forwardTo", E164, required=False, what="an E.164 number")
        workflow = parse_workflow(r.data.get("workflow"), f"[{i}]", problems)
        if agent_id and oid and user:
            agents.append(
                Agent(
                    agent_id,
                    str(r.data.get("name") or agent_id),
                    oid.lower(),
                    user.lower(),
                    acs,
                    phone,
                    direct,
                    caller_ids,
                    forward_to,
                    workflow,
                )
            )
    ids = [a.id for a in agents]
    dupes = sorted({x for x in ids if ids.count(x) > 1})
    if dupes:
        problems.append(f"agent ids used twice: {dupes}")
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(agents)


def _pool_callback(value: object, where: str, problems: list[str]) -> PoolCallback | None:
    """A pool's `"callback": {"list", "offerAfterSeconds", "whenClosed"}` (docs/callbacks.md)."""
    if value is None:
        return None
    r = _Reader(value, f"{where}.callback", problems)
    list_id = r.text("list", AGENT_ID, what="a callback list id (see CALLBACK_LISTS)")
    after = r.data.get("offerAfterSeconds")
    if after is not None and (
        not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= 3600
    ):
        problems.append(f"{where}.callback.offerAfterSeconds must be a whole number from 0 to 3600")
        after = None
    when_closed = r.data.get("whenClosed", False)
    if not isinstance(when_closed, bool):
        problems.append(f"{where}.callback.whenClosed must be true or false")
        when_closed = False
    if isinstance(value, dict) and after is None and not when_closed and "list" in value:
        problems.append(f"{where}.callback needs offerAfterSeconds and/or whenClosed: true")
    return PoolCallback(list_id, after, when_closed) if list_id else None


def parse_pools(raw: str) -> tuple[ServicePool, ...]:
    """The SERVICE_POOLS setting: a JSON list of pools (see docs/configuration.md)."""
    problems: list[str] = []
    pools: list[ServicePool] = []
    for i, item in enumerate(_load_list(raw, "service pools")):
        pool = parse_pool(item, f"[{i}]", problems)
        if pool is not None:
            pools.append(pool)
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(pools)


def _whole(r: _Reader, key: str, default: int | None, low: int, high: int) -> int | None:
    value = r.data.get(key, default)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        r.problems.append(f"{r.where}.{key} must be a whole number from {low} to {high}")
        return default
    return value


def _members(r: _Reader) -> tuple[tuple[str, ...], tuple[tuple[str, int], ...]]:
    """`members`: agent ids, or `{"agentId", "skill"}` objects (skill 1..10, default 5)."""
    value = r.data.get("members", [])
    if not isinstance(value, list):
        r.problems.append(f"{r.where}.members must be a list of agent ids or objects")
        return (), ()
    ids: list[str] = []
    skills: list[tuple[str, int]] = []
    for j, item in enumerate(value):
        if isinstance(item, str):
            agent_id, skill = item, DEFAULT_SKILL
        else:
            m = _Reader(item, f"{r.where}.members[{j}]", r.problems)
            agent_id = m.text("agentId", AGENT_ID, what="an agent id") or ""
            skill = _whole(m, "skill", DEFAULT_SKILL, MIN_SKILL, MAX_SKILL) or DEFAULT_SKILL
        if not agent_id:
            continue
        if agent_id in ids:
            r.problems.append(f"{r.where}.members has {agent_id!r} twice")
            continue
        ids.append(agent_id)
        skills.append((agent_id, skill))
    return tuple(ids), tuple(skills)


def parse_pool(item: Any, where: str, problems: list[str]) -> ServicePool | None:
    """One pool's JSON (a SERVICE_POOLS entry, or a supervisor's PUT); problems collected."""
    r = _Reader(item, where, problems)
    pool_id = r.text("id", AGENT_ID, what="letters, digits, '_', '.' or '-'")
    numbers = r.numbers("numbers")
    members, skills = _members(r)
    timeout = _whole(r, "ringTimeoutSeconds", 20, 5, 180) or 20  # ACS rings 180 s at most
    wrap_up = _whole(r, "wrapUpSeconds", 0, 0, 3600) or 0
    record = r.data.get("record")
    if record is not None and not isinstance(record, bool):
        problems.append(f"{where}.record must be true or false")
        record = None
    callback = _pool_callback(r.data.get("callback"), where, problems)
    schedule = parse_schedule(r.data, where, problems)
    workflow = parse_workflow(r.data.get("workflow"), where, problems)
    overflow = None
    raw_overflow = r.data.get("overflow")
    if raw_overflow is not None:
        o = _Reader(raw_overflow, f"{where}.overflow", problems)
        longest = _whole(o, "maxQueueLength", None, 0, 10000)
        max_wait = _whole(o, "maxWaitSeconds", None, 1, 86400)
        action = parse_action(raw_overflow, f"{where}.overflow", problems, announcement=False)
        if longest is None and max_wait is None:
            problems.append(f"{where}.overflow needs maxQueueLength and/or maxWaitSeconds")
        elif action is not None and action.then is Then.QUEUED_CALLBACK and longest is not None:
            problems.append(
                f"{where}.overflow.then queuedCallback keeps a place in the queue: "
                "it takes maxWaitSeconds, not maxQueueLength"
            )
        elif action is not None:
            overflow = Overflow(longest, action, max_wait)
    announcements = parse_queue_announcements(r.data.get("queueAnnouncements"), where, problems)
    if not pool_id:
        return None
    return ServicePool(
        pool_id,
        str(r.data.get("name") or pool_id),
        numbers,
        members,
        timeout,
        record,
        callback=callback,
        skills=skills,
        wrap_up_seconds=wrap_up,
        schedule=schedule,
        overflow=overflow,
        workflow=workflow,
        queue_announcements=announcements,
    )


def pool_json(pool: ServicePool) -> dict[str, Any]:
    """A pool as parse_pool reads it back (stored in Table Storage, answered by the API)."""
    data: dict[str, Any] = {
        "id": pool.id,
        "name": pool.name,
        "numbers": list(pool.numbers),
        "members": [{"agentId": a, "skill": pool.skill(a)} for a in pool.members],
        "ringTimeoutSeconds": pool.ring_timeout_seconds,
        "wrapUpSeconds": pool.wrap_up_seconds,
        **pool.schedule.to_json(),
    }
    if pool.record is not None:
        data["record"] = pool.record
    if pool.callback is not None:
        callback: dict[str, Any] = {"list": pool.callback.list_id}
        if pool.callback.offer_after_seconds is not None:
            callback["offerAfterSeconds"] = pool.callback.offer_after_seconds
        if pool.callback.when_closed:
            callback["whenClosed"] = True
        data["callback"] = callback
    if pool.workflow is not None:
        data["workflow"] = pool.workflow.value
    if pool.overflow is not None:
        limits = {
            "maxQueueLength": pool.overflow.max_queue_length,
            "maxWaitSeconds": pool.overflow.max_wait_seconds,
        }
        data["overflow"] = {
            **{k: v for k, v in limits.items() if v is not None},
            **pool.overflow.action.to_json(),
        }
    if pool.queue_announcements is not None:
        data["queueAnnouncements"] = pool.queue_announcements.to_json()
    return data


def check_directory(directory: Directory) -> list[str]:
    """Cross-checks between agents and pools: unknown members, a number used twice."""
    problems: list[str] = []
    known = {a.id for a in directory.agents}
    for pool in directory.all_pools():
        unknown = [m for m in pool.members if m not in known]
        if unknown:
            problems.append(f"SERVICE_POOLS pool {pool.id!r} has unknown members {unknown}")
    owners: dict[str, str] = {}
    for pool in directory.all_pools():
        for n in pool.numbers:
            owners.setdefault(n, f"pool {pool.id}")
    for agent in directory.agents:
        for n in agent.direct_numbers:
            if n in owners:
                problems.append(f"{n} is both {owners[n]}'s and agent {agent.id}'s number")
            owners.setdefault(n, f"agent {agent.id}")
    return problems
