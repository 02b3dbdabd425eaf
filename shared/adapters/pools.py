"""Service pools in Table Storage (docs/storage.md, docs/pools.md): their definitions edited by
supervisors with an audit trail, and each pool's roster: one row per member with its routing
state, and an index of free members ordered by skill, then idle time."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from shared.adapters import versions
from shared.adapters.tables import ConcurrencyConflict, Entity, TableStore, TransactionFailed
from shared.domain.availability import AgentState, effective, takes_pool_calls
from shared.domain.directory import ServicePool, parse_pool, pool_json
from shared.domain.moments import as_utc

POOLS, POOL_AUDIT = "pools", "poolaudit"
# The roster lives beside the agent rows (their table and partition), so an agent row and its
# roster rows are written in one transaction; ROSTER_MEMO names them in the versions memory.
ROSTER, ROSTER_PARTITION, ROSTER_MARK, ROSTER_MEMO = "agents", "agent", "~", "poolagents"
POOL_PARTITION, NUMBER_PARTITION, META_PARTITION = "pool", "number", "meta"
SEEDED = "seeded"
# The marker of a roster built beside the agent rows (before 2026-12 it had a table of its own,
# `poolagents`): a store without it has every pool member indexed again, once.
ROSTER_BUILT = "roster-beside-agents"
MEMBER_PREFIX, FREE_PREFIX, SERVING_PREFIX, CLAIM_PREFIX = "m~", "f~", "s~", "c~"
_MAX_MS = 10**15 - 1
log = logging.getLogger(__name__)
_T = TypeVar("_T")
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


_MEMO = "*"  # the per-invocation memory's partition prefix of what a read found (not stored)


def _membership_partition(agent_id: str) -> str:
    return f"member~{agent_id}"


def pool_from_entity(entity: Entity) -> ServicePool:
    problems: list[str] = []
    pool = parse_pool(json.loads(entity["definition"]), entity["RowKey"], problems)
    assert pool is not None, problems
    return pool


@dataclass(frozen=True)
class AuditEntry:
    pool_id: str
    at: datetime
    by: str  # the supervisor's name (upn) and Entra object id
    by_oid: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class TablePools:
    """The pool catalog: `pools` table. `seed` (SERVICE_POOLS) fills an empty store once."""

    def __init__(
        self,
        store: TableStore,
        *,
        seed: tuple[ServicePool, ...] = (),
        on_membership: Callable[[str], None] | None = None,
        cache_seconds: float = 0,
    ) -> None:
        self.store, self.seed = store, seed
        self.on_membership = on_membership  # the roster re-indexes an agent whose pools changed
        self._seed_lock = threading.Lock()
        # POOL_CACHE_SECONDS: what the call flow read of the pools is kept this long by the
        # process (0: for one invocation only). A save here forgets it at once; one made by
        # another instance is seen once it runs out (docs/decisions.md, Scaling out).
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}
        self._roster_built = False

    # ------------------------------------------------------------------ reading

    def _kept(self, kind: str, key: str, load: Callable[[], _T | None]) -> _T | None:
        """What `load` finds (None is never kept): for this invocation, and with a cache for
        `cache_seconds` in this process."""
        if self.cache_seconds > 0:
            hit = self._cache.get((kind, key))
            if hit is not None and hit[0] > time.monotonic():
                return cast(_T, hit[1])
        else:
            memo = versions.known(POOLS, f"{_MEMO}{kind}", key)
            if memo is not None:
                return cast(_T, memo[0]["value"])
        value = load()
        if value is not None:
            self._keep(kind, key, value)
        return value

    def _keep(self, kind: str, key: str, value: Any) -> None:
        if self.cache_seconds > 0:
            self._cache[(kind, key)] = (time.monotonic() + self.cache_seconds, value)
        else:
            versions.remember(POOLS, f"{_MEMO}{kind}", key, {"value": value}, _MEMO)

    def forget_cached(self) -> None:
        """A pool was written here: nothing read before it is believed any longer."""
        self._cache.clear()

    def pool(self, pool_id: str) -> ServicePool | None:
        found = self._kept("pool", pool_id, lambda: self._read(pool_id))
        if found is None and self._seed_now():
            found = self._read(pool_id)
        return found

    def stored(self, pool_id: str) -> ServicePool | None:
        """The pool as stored now, never a kept copy: what a supervisor's edit starts from."""
        found = self._read(pool_id)
        if found is None and self._seed_now():
            found = self._read(pool_id)
        return found

    def _read(self, pool_id: str) -> ServicePool | None:
        found = self.store.get(POOLS, POOL_PARTITION, pool_id)
        return pool_from_entity(found) if found else None

    def pool_by_number(self, number: str) -> ServicePool | None:
        return self._kept("number", number, lambda: self._by_number(number))

    def _by_number(self, number: str) -> ServicePool | None:
        row = self.store.get(POOLS, NUMBER_PARTITION, number)
        if row is None and self._seed_now():
            row = self.store.get(POOLS, NUMBER_PARTITION, number)
        if row is None:
            return None
        if not row.get("definition"):  # a number row written before it carried the copy
            return self.pool(row["pool_id"])
        # The number row carries a copy of its pool's definition, written by every save of the
        # pool: a new call costs one read for both. It stands for the pool row while it is
        # kept (no write is made from it: a save reads the pool row afresh).
        pool = pool_from_entity({"RowKey": row["pool_id"], "definition": row["definition"]})
        self._keep("pool", pool.id, pool)
        return pool

    def memberships(self, agent_id: str, *, fresh: bool = False) -> dict[str, int]:
        """The agent's pools and its skill in each: one query, kept like the pools (the roster
        refresh of each agent-row write and the dispatch after a release all ask). `fresh`
        reads the store whatever is kept."""
        if fresh:
            found = self._memberships(agent_id)
            self._keep("member", agent_id, found)
            return dict(found)
        return dict(self._kept("member", agent_id, lambda: self._memberships(agent_id)) or {})

    def _memberships(self, agent_id: str) -> dict[str, int]:
        rows = self.store.query(
            POOLS, "PartitionKey eq @pk", {"pk": _membership_partition(agent_id)}
        )
        return {r["RowKey"]: int(r.get("skill", 5)) for r in rows}

    def pools_of(self, agent_id: str) -> tuple[ServicePool, ...]:
        mine = self.memberships(agent_id)
        if not mine and self._seed_now():
            mine = self.memberships(agent_id, fresh=True)  # read before the seeding
        found = (self.pool(p) for p in sorted(mine))
        return tuple(p for p in found if p is not None and agent_id in p.members)

    def all(self) -> tuple[ServicePool, ...]:
        rows = list(self.store.query(POOLS, "PartitionKey eq @pk", {"pk": POOL_PARTITION}))
        if not rows and self._seed_now():
            rows = list(self.store.query(POOLS, "PartitionKey eq @pk", {"pk": POOL_PARTITION}))
        return tuple(pool_from_entity(r) for r in sorted(rows, key=lambda r: r["RowKey"]))

    # ------------------------------------------------------------------ seeding

    def _seed_now(self) -> bool:
        """Fill an empty store from SERVICE_POOLS; True if it was filled (here or by another
        thread) since the caller looked. The marker is written last, after the pools, their
        audit rows and the members' roster rows: calls arriving together on a new store wait
        for one seeding instead of each seeding again (what made a call's cost grow with the
        pool), and a crash mid-way leaves no marker, so the next use seeds again."""
        if not self.seed or self._seeded():
            return False
        with self._seed_lock:
            if self._seeded():
                return True  # another thread seeded while this one waited
            for pool in self.seed:
                self._write(pool, None)
            for pool in self.seed:
                self._audit(pool.id, "system", "", "seed", None, pool_json(pool))
            for agent_id in sorted({a for pool in self.seed for a in pool.members}):
                self._membership_changed(agent_id)
            # Another instance seeding at the same moment writes the same rows.
            for marker in (ROSTER_BUILT, SEEDED):
                self._mark(marker)
        return True

    def _mark(self, marker: str) -> None:
        with contextlib.suppress(ConcurrencyConflict):
            self.store.insert(
                POOLS, {"PartitionKey": META_PARTITION, "RowKey": marker, "at": datetime.now(UTC)}
            )

    def build_roster_once(self) -> bool:
        """Index every member of every pool again if the roster was never built where it is
        kept now (a store from before it moved beside the agent rows); True if it did. Run by
        the housekeeping timer: after an upgrade, members are offered calls again within its
        period. Once the marker is seen, this process never reads it again."""
        if self._roster_built:
            return False
        if self.store.get(POOLS, META_PARTITION, ROSTER_BUILT) is not None:
            self._roster_built = True
            return False
        if not self._seeded():
            return False  # a store not seeded yet gets its roster with the seeding
        members = sorted({a for pool in self.all() for a in pool.members})
        for agent_id in members:
            self._membership_changed(agent_id)
        self._mark(ROSTER_BUILT)
        self._roster_built = True
        log.info("the pool roster was built beside the agent rows: %d members", len(members))
        return True

    def _seeded(self) -> bool:
        return self.store.get(POOLS, META_PARTITION, SEEDED) is not None

    # ------------------------------------------------------------------ editing

    def number_owner(self, number: str) -> str | None:
        row = self.store.get(POOLS, NUMBER_PARTITION, number)
        return str(row["pool_id"]) if row else None

    def save(
        self,
        pool: ServicePool,
        *,
        by: str,
        by_oid: str,
        action: str,
        expected: ServicePool | None,
    ) -> bool:
        """Store `pool` if the stored one is still `expected` (None: absent); False if it
        changed meanwhile. Numbers, memberships and the audit row follow."""
        current = self.store.get_with_etag(POOLS, POOL_PARTITION, pool.id)
        before = pool_from_entity(current[0]) if current else None
        if before != expected:
            return False
        entity = {
            "PartitionKey": POOL_PARTITION,
            "RowKey": pool.id,
            "definition": json.dumps(pool_json(pool)),
        }
        try:
            if current is None:
                self.store.insert(POOLS, entity)
            else:
                self.store.replace_if_unchanged(POOLS, entity, current[1])
        except ConcurrencyConflict:
            return False
        self._write_indexes(pool, before)
        self._audit(
            pool.id,
            by,
            by_oid,
            action,
            pool_json(before) if before else None,
            pool_json(pool),
        )
        changed = set(pool.members) ^ set(before.members if before else ())
        changed |= {a for a in pool.members if before and before.skill(a) != pool.skill(a)}
        for agent_id in sorted(changed):
            self._membership_changed(agent_id)
        return True

    def _write(self, pool: ServicePool, before: ServicePool | None) -> None:
        self.store.upsert(
            POOLS,
            {
                "PartitionKey": POOL_PARTITION,
                "RowKey": pool.id,
                "definition": json.dumps(pool_json(pool)),
            },
            replace=True,
        )
        self._write_indexes(pool, before)

    def _write_indexes(self, pool: ServicePool, before: ServicePool | None) -> None:
        self._forget_kept(pool, before)
        old_numbers = set(before.numbers) if before else set()
        definition = json.dumps(pool_json(pool))
        for number in pool.numbers:
            self.store.upsert(
                POOLS,
                {
                    "PartitionKey": NUMBER_PARTITION,
                    "RowKey": number,
                    "pool_id": pool.id,
                    "definition": definition,
                },
            )
        for number in old_numbers - set(pool.numbers):
            if self.number_owner(number) == pool.id:
                self.store.delete(POOLS, NUMBER_PARTITION, number)
        for agent_id in pool.members:
            self.store.upsert(
                POOLS,
                {
                    "PartitionKey": _membership_partition(agent_id),
                    "RowKey": pool.id,
                    "skill": pool.skill(agent_id),
                },
                replace=True,
            )
        for agent_id in set(before.members if before else ()) - set(pool.members):
            self.store.delete(POOLS, _membership_partition(agent_id), pool.id)

    def _forget_kept(self, pool: ServicePool, before: ServicePool | None) -> None:
        self.forget_cached()
        versions.forget(POOLS, f"{_MEMO}pool", pool.id)
        for number in {*pool.numbers, *(before.numbers if before else ())}:
            versions.forget(POOLS, f"{_MEMO}number", number)
        for agent_id in {*pool.members, *(before.members if before else ())}:
            versions.forget(POOLS, f"{_MEMO}member", agent_id)

    def _membership_changed(self, agent_id: str) -> None:
        if self.on_membership is not None:
            self.on_membership(agent_id)

    # ------------------------------------------------------------------ the audit trail

    def _audit(
        self,
        pool_id: str,
        by: str,
        by_oid: str,
        action: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        at = datetime.now(UTC)
        # Newest first: the RowKey counts down with time.
        key = f"{_MAX_MS - int(at.timestamp() * 1000):015d}-{uuid.uuid4().hex[:8]}"
        self.store.insert(
            POOL_AUDIT,
            {
                "PartitionKey": pool_id,
                "RowKey": key,
                "at": at,
                "by": by,
                "by_oid": by_oid,
                "action": action,
                "before": json.dumps(before) if before is not None else "",
                "after": json.dumps(after) if after is not None else "",
            },
        )

    def audit(self, pool_id: str, limit: int) -> list[AuditEntry]:
        rows = self.store.query(POOL_AUDIT, "PartitionKey eq @pk", {"pk": pool_id}, top=limit)
        return [
            AuditEntry(
                pool_id=pool_id,
                at=as_utc(r["at"]) or _EPOCH,
                by=str(r.get("by", "")),
                by_oid=str(r.get("by_oid", "")),
                action=str(r.get("action", "")),
                before=json.loads(r["before"]) if r.get("before") else None,
                after=json.loads(r["after"]) if r.get("after") else None,
            )
            for r in rows
        ]


# ---------------------------------------------------------------------- the roster


@dataclass(frozen=True)
class RosterRow:
    """A member's routing state as its pool's roster holds it (written on every change)."""

    agent_id: str
    skill: int
    state: AgentState


def roster_key(pool_id: str, key: str) -> str:
    """A roster row's RowKey in the agents' partition: `~<pool>~<key>`. Ids never hold `~`,
    which sorts after every character they may hold, so roster rows sort after agent rows."""
    return f"{ROSTER_MARK}{pool_id}~{key}"


def _serving(state: AgentState, pool_id: str, now: datetime) -> bool:
    """Available and active in the pool at `now` (busy or not): its serving row is there."""
    return state.active_in(pool_id) and takes_pool_calls(effective(state.availability, now))


def _claim_key(call_id: str, agent_id: str) -> str:
    """A claim row's key: one per agent claimed for the call (a transfer claims a second)."""
    return f"{CLAIM_PREFIX}{call_id}~{agent_id}"


def _free_key(skill: int, free_from: datetime, agent_id: str) -> str:
    # Ascending RowKeys: the best skill first (10 - skill), then the longest idle.
    ms = max(0, int(free_from.timestamp() * 1000))
    return f"{FREE_PREFIX}{10 - skill:02d}~{ms:015d}~{agent_id}"


def _row(pool: str, key: str, **fields: Any) -> Entity:
    return {"PartitionKey": ROSTER_PARTITION, "RowKey": roster_key(pool, key), **fields}


def _member_row(
    pool_id: str,
    agent_id: str,
    skill: int,
    rev: int,
    serving: bool,
    free_key: str,
    state: AgentState | Entity,
) -> Entity:
    """A member's `m~` row in the roster, built from its agent state (or those fields)."""
    fields = state if isinstance(state, dict) else _state_fields(state)
    return _row(
        pool_id,
        MEMBER_PREFIX + agent_id,
        pool_id=pool_id,
        agent_id=agent_id,
        skill=skill,
        rev=f"{rev:015d}",
        serving=serving,
        free_key=free_key,
        **fields,
    )


def _state_fields(state: AgentState) -> Entity:
    a = state.availability
    return {
        "status": a.status,
        "status_type": a.type.value,
        "status_until": a.until or "",
        "then_status": a.then_status or "",
        "then_type": a.then_type.value if a.then_type else "",
        "inactive_pools": json.dumps(sorted(state.inactive_pools)),
        "busy_call_id": state.busy_call_id or "",
        "wrap_until": state.wrap_until or "",
        "idle_since": state.idle_since or "",
    }


def _if_match(etag: str) -> dict[str, Any]:
    from azure.core import MatchConditions

    return {"etag": etag, "match_condition": MatchConditions.IfNotModified}


@dataclass
class RosterPlan:
    """The roster rows one change of an agent row brings, to go in the agent row's own
    transaction (`ops`), and the pools that did not fit in it (`rest`, written after it)."""

    ops: list[tuple[Any, ...]]
    members: list[tuple[str, Entity, int]]  # (pool, member row, its index in `ops`)
    rest: dict[str, int]
    used: list[tuple[str, str]]  # the guesses it was built from: forgotten if it fails


class TablePoolRoster:
    """Per pool, in the `agents` table's `agent` partition beside the agent rows (RowKeys
    `~<pool>~...`, docs/storage.md): one member row `m~<agent>` and, while the member takes the
    pool's calls, one free row `f~<10 - skill>~<free from, ms>~<agent>`, a serving row and the
    claim row of its call. An agent row's change and its rows in its pools are one entity-group
    transaction (`plan`), so the index is never older than the row it is built from; a refresh
    on its own (`refresh`) is guarded by the member row's ETag and the agent row's revision."""

    def __init__(
        self,
        store: TableStore,
        *,
        memberships: Callable[..., dict[str, int]],  # (agent_id, *, fresh=False)
        state_of: Callable[[str, Entity], AgentState],
    ) -> None:
        self.store, self.memberships, self.state_of = store, memberships, state_of

    def refresh(
        self,
        agent_id: str,
        row: Entity,
        *,
        now: datetime | None = None,
        pools: dict[str, int] | None = None,
    ) -> None:
        """Bring the agent's rows in each of its pools up to its agent row `row`."""
        now = now or datetime.now(UTC)
        state = self.state_of(agent_id, row)
        rev = int(row.get("rev") or 0)
        for pool_id, skill in (pools if pools is not None else self.memberships(agent_id)).items():
            self._write(pool_id, agent_id, skill, state, rev, now)

    def plan(self, agent_id: str, row: Entity, *, room: int = 99) -> RosterPlan:
        """The operations that bring the agent's rows in its pools up to `row`, for the
        transaction that writes `row` (at most `room` of them). A member row is written If-Match
        the version guessed or read (one query for those not guessed), so a stale guess fails
        the whole transaction, which is then planned again from reads."""
        now = datetime.now(UTC)
        state = self.state_of(agent_id, row)
        rev = int(row.get("rev") or 0)
        pools = self.memberships(agent_id)
        plan = RosterPlan([], [], {}, [])
        found: dict[str, tuple[Entity, str] | None] = {}
        unknown = []
        for pool_id in pools:
            if versions.known(ROSTER_MEMO, pool_id, _SEEN_FREE + agent_id) and state.busy_call_id:
                continue  # a claim of a member the offer saw free: its free row vouches
            guessed = versions.guess(ROSTER_MEMO, pool_id, MEMBER_PREFIX + agent_id)
            if guessed is None:
                unknown.append(pool_id)
            else:
                found[pool_id] = guessed
                plan.used.append((pool_id, MEMBER_PREFIX + agent_id))
        found.update(self._member_rows(agent_id, unknown))
        for pool_id, skill in pools.items():
            built = self._claim_from_free_row(pool_id, agent_id, skill, rev, state)
            if built is None:
                absent = pool_id in found and found[pool_id] is None
                if absent and pool_id not in self.memberships(agent_id, fresh=True):
                    continue  # left the pool since its memberships were read (a kept copy)
                built = self._ops(pool_id, agent_id, skill, state, rev, now, found.get(pool_id))
            member, ops = built
            if len(plan.ops) + len(ops) > room:
                plan.rest[pool_id] = skill
                continue
            plan.members.append((pool_id, member, len(plan.ops)))
            plan.ops.extend(ops)
        return plan

    def planned(self, plan: RosterPlan, results: list[Any], agent_id: str, row: Entity) -> None:
        """The transaction of `plan` was written (`results`: its operations' responses)."""
        for pool_id, member, at in plan.members:
            etag = str(results[at].get("etag", "")) if at < len(results) else ""
            versions.remember(
                ROSTER_MEMO, pool_id, MEMBER_PREFIX + member["agent_id"], member, etag, shared=True
            )
        if plan.rest:
            self.refresh(agent_id, row, pools=plan.rest)

    def failed(self, plan: RosterPlan) -> None:
        """The transaction of `plan` was refused: none of its guesses is believed again."""
        for pool_id, key in plan.used:
            versions.forget(ROSTER_MEMO, pool_id, key)

    def _member_rows(
        self, agent_id: str, pool_ids: list[str]
    ) -> dict[str, tuple[Entity, str] | None]:
        """The agent's member rows in these pools, with their ETags: one query."""
        if not pool_ids:
            return {}
        params = {f"k{i}": roster_key(p, MEMBER_PREFIX + agent_id) for i, p in enumerate(pool_ids)}
        rows = self.store.query_versions(
            # The SDK substitutes @names only between spaces: keep spaces around parentheses.
            ROSTER,
            "PartitionKey eq @pk and ( " + " or ".join(f"RowKey eq @{k}" for k in params) + " )",
            {"pk": ROSTER_PARTITION, **params},
        )
        found: dict[str, tuple[Entity, str] | None] = dict.fromkeys(pool_ids)
        for entity, etag in rows:
            found[str(entity["pool_id"])] = (entity, etag)
        return found

    def forget(self, pool_id: str, agent_id: str) -> None:
        """The agent left the pool: all its rows there go."""
        found = self.store.get_with_etag(
            ROSTER, ROSTER_PARTITION, roster_key(pool_id, MEMBER_PREFIX + agent_id)
        )
        versions.forget(ROSTER_MEMO, pool_id, MEMBER_PREFIX + agent_id)
        if found is None:
            return
        row = found[0]
        busy = str(row.get("busy_call_id") or "")
        ops: list[tuple[Any, ...]] = [("delete", row, _if_match(found[1]))]
        for key, present in (
            (str(row.get("free_key") or ""), bool(row.get("free_key"))),
            (SERVING_PREFIX + agent_id, bool(row.get("serving"))),
            (_claim_key(busy, agent_id), bool(busy)),
        ):
            if present:
                ops.append(("delete", _row(pool_id, key)))
        with contextlib.suppress(ConcurrencyConflict):  # changed meanwhile: refreshed again
            self.store.transact(ROSTER, ops)

    def _ops(
        self,
        pool_id: str,
        agent_id: str,
        skill: int,
        state: AgentState,
        rev: int,
        now: datetime,
        found: tuple[Entity, str] | None,
    ) -> tuple[Entity, list[tuple[Any, ...]]]:
        """The member row `state` makes in the pool and the operations that write it and its
        other rows, from the member row as `found` (None: there is none)."""
        serving = _serving(state, pool_id, now)
        free_key = ""
        # In after-call work the member has no free row: the wrap-up's end re-indexes it. So
        # every read of the index is a plain range read, never a filter scanning the pool.
        if (
            serving
            and not state.busy_call_id
            and (state.wrap_until is None or state.wrap_until <= now)
        ):
            free_from = max(state.idle_since or _EPOCH, state.wrap_until or _EPOCH)
            free_key = _free_key(skill, free_from, agent_id)
        old = found[0] if found else {}
        member = _member_row(pool_id, agent_id, skill, rev, serving, free_key, state)
        ops: list[tuple[Any, ...]] = [
            ("update", member, {"mode": "replace", **_if_match(found[1])})
            if found
            else ("create", member)
        ]
        old_free = str(old.get("free_key") or "")
        if old_free and old_free != free_key:
            ops.append(("delete", _row(pool_id, old_free)))
        if old.get("serving") and not serving:
            ops.append(("delete", _row(pool_id, SERVING_PREFIX + agent_id)))
        if serving and not old.get("serving"):
            ops.append(("upsert", _row(pool_id, SERVING_PREFIX + agent_id)))
        old_busy, busy = str(old.get("busy_call_id") or ""), state.busy_call_id or ""
        if old_busy and old_busy != busy:
            ops.append(("delete", _row(pool_id, _claim_key(old_busy, agent_id))))
        if busy and busy != old_busy:
            ops.append(("upsert", _row(pool_id, _claim_key(busy, agent_id), agent_id=agent_id)))
        if free_key and free_key != old_free:
            ops.append(
                (
                    "upsert",
                    _row(
                        pool_id,
                        free_key,
                        agent_id=agent_id,
                        free_from=(state.wrap_until or _EPOCH),
                    ),
                )
            )
        return member, ops

    def _write(
        self, pool_id: str, agent_id: str, skill: int, state: AgentState, rev: int, now: datetime
    ) -> None:
        """The agent's rows in one pool brought up to `state`, in a transaction of their own."""
        built = self._claim_from_free_row(pool_id, agent_id, skill, rev, state)
        if built is not None:
            with contextlib.suppress(ConcurrencyConflict, TransactionFailed):
                results = self.store.transact(ROSTER, built[1])
                versions.remember(
                    ROSTER_MEMO,
                    pool_id,
                    MEMBER_PREFIX + agent_id,
                    built[0],
                    _etag(results),
                    shared=True,
                )
                return
            # the member changed since the offer's read: read it, as usual
        member_key = MEMBER_PREFIX + agent_id
        known = versions.guess(ROSTER_MEMO, pool_id, member_key)
        refused_fresh = 0
        for _ in range(5):
            # The member row this invocation (or, a guess, this instance) wrote last, else a
            # read (a stale one costs one refused transaction, then a read).
            guessed = known is not None
            found = known or self.store.get_with_etag(
                ROSTER, ROSTER_PARTITION, roster_key(pool_id, member_key)
            )
            known = None
            if found is None and pool_id not in self.memberships(agent_id, fresh=True):
                return  # left the pool since its memberships were read (a kept copy)
            member, ops = self._ops(pool_id, agent_id, skill, state, rev, now, found)
            if found and (
                int(found[0].get("rev") or -1) > rev  # a newer version was indexed already
                or all(found[0].get(k) == v for k, v in member.items())  # or this one
            ):
                if guessed:
                    continue  # "nothing to do" is only believed of a fresh read
                return
            if refused_fresh >= 2:
                # Refused twice from fresh reads: a row the member row names is not there (a
                # crash, or an older version's bug). Deleted one by one (a missing one is no
                # error), the rest is written: the index mends itself.
                for op in [o for o in ops if o[0] == "delete"]:
                    with contextlib.suppress(Exception):
                        self.store.delete(ROSTER, ROSTER_PARTITION, op[1]["RowKey"])
                ops = [o for o in ops if o[0] != "delete"]
            try:
                results = self.store.transact(ROSTER, ops)
            except (ConcurrencyConflict, TransactionFailed):
                versions.forget(ROSTER_MEMO, pool_id, member_key)
                refused_fresh += not guessed
                continue  # another refresh of this member won the race: read it again
            versions.remember(ROSTER_MEMO, pool_id, member_key, member, _etag(results), shared=True)
            return
        log.warning(
            "roster row of %s in %s: still conflicting; the next change repairs it",
            agent_id,
            pool_id,
        )

    def _claim_from_free_row(
        self, pool_id: str, agent_id: str, skill: int, rev: int, state: AgentState
    ) -> tuple[Entity, list[tuple[Any, ...]]] | None:
        """A claim of a member this invocation saw free (the offer's read of the free rows):
        its rows change without reading the member row first. The free row exists only beside
        a member row naming it (same transaction), a free, serving, unclaimed one; so the free
        row still unchanged (its ETag) says what the member row holds, and that no newer
        version of it was indexed (every later version of a claimed agent drops that free
        row). Anything else: None, and the usual read and write."""
        seen = versions.known(ROSTER_MEMO, pool_id, _SEEN_FREE + agent_id)
        if seen is None or not state.busy_call_id:
            return None
        versions.forget(ROSTER_MEMO, pool_id, _SEEN_FREE + agent_id)  # one use: gone after
        free_row, etag = seen
        serving = _serving(state, pool_id, datetime.now(UTC))
        member = _member_row(pool_id, agent_id, skill, rev, serving, "", state)
        ops: list[tuple[Any, ...]] = [
            ("update", member, {"mode": "replace"}),
            (
                "delete",
                {"PartitionKey": ROSTER_PARTITION, "RowKey": free_row["RowKey"]},
                _if_match(etag),
            ),
            (
                "upsert",
                _row(pool_id, _claim_key(state.busy_call_id, agent_id), agent_id=agent_id),
            ),
        ]
        if not serving:
            ops.append(("delete", _row(pool_id, SERVING_PREFIX + agent_id)))
        return member, ops

    # ------------------------------------------------------------------ reading

    def _range(
        self, pool_id: str, prefix: str, *, top: int | None, select: list[str] | None = None
    ) -> list[tuple[Entity, str]]:
        return self.store.query_versions(
            ROSTER,
            "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
            {
                "pk": ROSTER_PARTITION,
                "lo": roster_key(pool_id, prefix),
                "hi": roster_key(pool_id, prefix + "~"),
            },
            select=select,
            top=top,
        )

    def free_members(self, pool_id: str, now: datetime, limit: int) -> list[str]:
        """Members taking the pool's calls at `now`, best skill then longest idle: one query
        whose cost does not depend on how many members the pool has. Each free row is kept
        with its ETag for this invocation, so the claim that follows writes the member's rows
        without reading them."""
        rows = self._range(
            pool_id, FREE_PREFIX, select=["RowKey", "agent_id", "free_from"], top=limit
        )
        return self._free(pool_id, rows, now)

    def claimed_and_free(
        self, pool_id: str, call_id: str, now: datetime, limit: int
    ) -> tuple[list[str], list[str]]:
        """The member claimed for `call_id` (a claim whose offer a crash never recorded) and
        the free members, in one query: the claim row sorts before the free rows."""
        claim = roster_key(pool_id, _claim_key(call_id, ""))
        rows = self.store.query_versions(
            ROSTER,
            # The SDK substitutes @names only between spaces: keep spaces around parentheses.
            "PartitionKey eq @pk and ( ( RowKey ge @claim and RowKey lt @claimed ) or "
            "( RowKey ge @lo and RowKey lt @hi ) )",
            {
                "pk": ROSTER_PARTITION,
                "claim": claim,
                "claimed": claim + "~",
                "lo": roster_key(pool_id, FREE_PREFIX),
                "hi": roster_key(pool_id, FREE_PREFIX + "~"),
            },
            select=["RowKey", "agent_id", "free_from"],
            top=limit + 1,
        )
        claimed = [str(r["agent_id"]) for r, _ in rows if str(r["RowKey"]).startswith(claim)]
        free = [(r, e) for r, e in rows if not str(r["RowKey"]).startswith(claim)]
        return claimed, self._free(pool_id, free[:limit], now)

    def _free(self, pool_id: str, rows: list[tuple[Entity, str]], now: datetime) -> list[str]:
        free = []
        for row, etag in rows:
            # A row is written free only once after-call work is over; checked all the same.
            if (as_utc(row.get("free_from")) or _EPOCH) > now:
                continue
            agent_id = str(row["agent_id"])
            versions.remember(ROSTER_MEMO, pool_id, _SEEN_FREE + agent_id, row, etag)
            free.append(agent_id)
        return free

    def anyone_serving(self, pool_id: str) -> bool:
        rows = self._range(pool_id, SERVING_PREFIX, select=["RowKey"], top=1)
        return bool(rows)

    def members(self, pool_ids: Iterable[str]) -> dict[str, list[RosterRow]]:
        """Every member row of these pools: one query per pool, never one per member."""
        out: dict[str, list[RosterRow]] = {}
        for pool_id in pool_ids:
            rows = self._range(pool_id, MEMBER_PREFIX, top=None)
            out[pool_id] = [
                RosterRow(
                    str(r["agent_id"]), int(r.get("skill", 5)), self.state_of(str(r["agent_id"]), r)
                )
                for r, _ in rows
            ]
        return out

    def rows(self, pool_id: str) -> dict[str, Entity]:
        """Every row the pool's roster holds, by its key within the pool (`m~...`, `f~...`)."""
        mark = roster_key(pool_id, "")
        return {str(r["RowKey"])[len(mark) :]: r for r, _ in self._range(pool_id, "", top=None)}


_SEEN_FREE = "seen-free~"  # the per-invocation memory's key of a free row the offer read


def _etag(results: list[Any]) -> str:
    """The member row's new ETag: the first operation of each roster transaction."""
    return str(results[0].get("etag", "")) if results else ""


def wrap_up_end(now: datetime, seconds: int) -> datetime | None:
    return now + timedelta(seconds=seconds) if seconds > 0 else None
