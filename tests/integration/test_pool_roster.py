"""The pool roster and catalog on a real Azurite: what routing and the supervisors' table cost
in Table Storage requests, and that the cheap paths stay right when another writer races them."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters import versions
from shared.adapters.pools import (
    META_PARTITION,
    POOL_AUDIT,
    POOLS,
    ROSTER,
    ROSTER_BUILT,
    ROSTER_PARTITION,
    SEEDED,
    TablePoolRoster,
    TablePools,
    roster_key,
)
from shared.adapters.repositories import TableAgentStates, TableWaitingCalls, agent_state
from shared.adapters.tables import TableStore
from shared.domain.availability import Availability, AvailabilityType
from shared.domain.calls import Call, CallKind, Direction
from shared.domain.directory import Agent, Directory, ServicePool
from shared.services.supervision import Supervision

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


class CountingStore(TableStore):
    """A TableStore that counts its requests by (operation, table)."""

    def __init__(self, connection: str) -> None:
        super().__init__(connection)
        self.requests: Counter[tuple[str, str]] = Counter()

    def get(self, table: str, partition_key: str, row_key: str) -> Any:
        self.requests["get", table] += 1
        return super().get(table, partition_key, row_key)

    def get_with_etag(self, table: str, pk: str, rk: str) -> Any:
        self.requests["get", table] += 1
        return super().get_with_etag(table, pk, rk)

    def query(self, table: str, *args: Any, **kwargs: Any) -> Iterator[Any]:
        self.requests["query", table] += 1
        return super().query(table, *args, **kwargs)

    def query_versions(self, table: str, *args: Any, **kwargs: Any) -> Any:
        self.requests["query", table] += 1
        return super().query_versions(table, *args, **kwargs)

    def transact(self, table: str, operations: Any) -> Any:
        self.requests["transact", table] += 1
        return super().transact(table, operations)

    def of(self, table: str) -> dict[str, int]:
        return {op: n for (op, t), n in self.requests.items() if t == table}


def agent(agent_id: str) -> Agent:
    return Agent(agent_id, agent_id, str(uuid.uuid4()), str(uuid.uuid4()), f"8:acs:{agent_id}")


def stored_pool(store: TableStore, *members: str) -> tuple[ServicePool, TablePools]:
    """A new pool saved as a supervisor would, its members indexed in the roster."""
    pool = ServicePool(f"p{uuid.uuid4().hex[:8]}", "P", (), members)
    catalog = TablePools(store)
    agents = states(store, catalog)
    catalog.on_membership = agents.reindex
    assert catalog.save(pool, by="test", by_oid="", action="create", expected=None)
    return pool, catalog


def roster_of(store: TableStore, catalog: TablePools) -> TablePoolRoster:
    return TablePoolRoster(store, memberships=catalog.memberships, state_of=agent_state)


def states(store: TableStore, catalog: TablePools) -> TableAgentStates:
    return TableAgentStates(store, roster=roster_of(store, catalog))


def rows(store: TableStore, pool_id: str) -> dict[str, dict[str, Any]]:
    """The pool's roster rows, by their key within the pool (`m~<agent>`, `f~...`)."""
    return TablePoolRoster(store, memberships=lambda *a, **k: {}, state_of=agent_state).rows(
        pool_id
    )


def etags(store: TableStore, pool_id: str) -> dict[str, str]:
    mark = roster_key(pool_id, "")
    found = store.query_versions(
        ROSTER,
        "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi",
        {"pk": ROSTER_PARTITION, "lo": mark, "hi": mark + "~"},
    )
    return {str(r["RowKey"]): etag for r, etag in found}


@pytest.fixture
def store(storage_connection_string: str) -> Iterator[CountingStore]:
    versions.forget_all()
    versions.forget_guesses()  # an instance that saw nothing yet
    yield CountingStore(storage_connection_string)
    versions.forget_all()


def test_claiming_a_member_the_offer_saw_free_is_one_transaction_with_its_agent_row(
    store: CountingStore,
) -> None:
    a, b = f"a{uuid.uuid4().hex[:6]}", f"b{uuid.uuid4().hex[:6]}"
    pool, catalog = stored_pool(store, a, b)
    roster, agents = roster_of(store, catalog), states(store, catalog)
    versions.forget_all()  # a new invocation: the offer's
    assert roster.free_members(pool.id, T0, 5) == [a, b]
    store.requests.clear()

    assert agents.claim(a, "call-1")

    # No read of the member row: the free row's ETag from the offer's read guards the write,
    # made in the agent row's transaction (the agent row is read: this instance never saw it).
    assert store.of(ROSTER) == {"get": 1, "transact": 1}
    found = rows(store, pool.id)
    assert found[f"m~{a}"]["busy_call_id"] == "call-1" and not found[f"m~{a}"]["free_key"]
    assert found[f"c~call-1~{a}"]["agent_id"] == a
    assert not [k for k in found if k.startswith("f~") and k.endswith(a)]
    assert f"s~{a}" in found  # still serving the pool, busy
    assert roster.free_members(pool.id, T0, 5) == [b]


def test_a_claim_notes_the_call_so_the_ring_that_follows_writes_the_agent_row_once(
    store: CountingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = f"a{uuid.uuid4().hex[:6]}"
    _, catalog = stored_pool(store, a)
    agents = states(store, catalog)
    versions.forget_all()  # a new invocation: the offer's
    writes: list[str] = []
    for name in ("insert", "replace_if_unchanged", "upsert", "transact"):
        original = getattr(store, name)

        def counted(table: str, *args: Any, _o: Any = original, **kw: Any) -> Any:
            writes.append(table)
            return _o(table, *args, **kw)

        monkeypatch.setattr(store, name, counted)

    assert agents.claim(a, "call-1")
    agents.note_call(a, "call-1", T0)

    assert writes.count("agents") == 1  # the claim (with its roster rows); the note found it made
    assert agents.latest_call(a) == "call-1" and agents.recent_calls(a, 5) == ["call-1"]
    versions.forget_all()  # another invocation notes a later call: it is written
    agents.note_call(a, "call-2", T0 + timedelta(minutes=1))
    assert agents.latest_call(a) == "call-2"


def test_a_member_changed_since_the_offer_read_it_is_read_and_indexed_right(
    store: CountingStore,
) -> None:
    a = f"a{uuid.uuid4().hex[:6]}"
    pool, catalog = stored_pool(store, a)
    roster, agents = roster_of(store, catalog), states(store, catalog)
    versions.forget_all()
    assert roster.free_members(pool.id, T0, 5) == [a]

    def elsewhere() -> None:  # another instance: the agent goes off work meanwhile
        offwork = Availability("Offwork", AvailabilityType.OFFWORK)
        states(store, catalog).update(a, lambda s: replace(s, availability=offwork))

    other = threading.Thread(target=elsewhere)
    other.start()
    other.join()

    assert agents.claim(a, "call-2")  # the claim does not look at the status

    found = rows(store, pool.id)
    member = found[f"m~{a}"]
    assert (member["busy_call_id"], member["status"], member["serving"]) == (
        "call-2",
        "Offwork",
        False,
    )
    assert found[f"c~call-2~{a}"]["agent_id"] == a
    assert f"s~{a}" not in found and not [k for k in found if k.startswith("f~")]


def test_a_write_of_the_agent_row_routing_does_not_see_leaves_the_roster_alone(
    store: CountingStore,
) -> None:
    a = f"a{uuid.uuid4().hex[:6]}"
    pool, catalog = stored_pool(store, a)
    agents = states(store, catalog)
    versions.forget_all()
    before = etags(store, pool.id)
    store.requests.clear()

    agents.note_call(a, "call-3", T0)

    # The agent row alone: read (this instance never saw it), then written.
    assert store.of(ROSTER) == {"get": 1, "transact": 1} and store.of(POOLS) == {}
    assert etags(store, pool.id) == before and before
    assert agents.latest_call(a) == "call-3"


def test_calls_arriving_together_on_a_new_store_seed_it_once(store: CountingStore) -> None:
    members = tuple(f"s{uuid.uuid4().hex[:6]}" for _ in range(3))
    number = f"+3581099{uuid.uuid4().int % 10**6:06d}"
    pool = ServicePool(f"p{uuid.uuid4().hex[:8]}", "Seeded", (number,), members)
    store.delete(POOLS, META_PARTITION, SEEDED)  # an empty store, as on a new install
    catalog = TablePools(store, seed=(pool,))
    agents = states(store, catalog)
    catalog.on_membership = agents.reindex
    seen: list[str | None] = []

    def arrive() -> None:
        found = catalog.pool_by_number(number)
        seen.append(found.id if found else None)

    callers = [threading.Thread(target=arrive) for _ in range(8)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()

    assert seen == [pool.id] * 8
    audit = store.partition(POOL_AUDIT, pool.id)
    assert [r["action"] for r in audit] == ["seed"]  # seeded once, not once per caller
    free = roster_of(store, catalog).free_members(pool.id, T0, 5)
    assert sorted(free) == sorted(members)  # every member indexed before any call was routed


def test_a_new_call_reads_its_number_and_pool_in_one_request_and_sees_the_last_edit(
    store: CountingStore,
) -> None:
    number = f"+3581098{uuid.uuid4().int % 10**6:06d}"
    pool = ServicePool(f"p{uuid.uuid4().hex[:8]}", "Before", (number,), ())
    catalog = TablePools(store)
    assert catalog.save(pool, by="test", by_oid="", action="create", expected=None)
    versions.forget_all()  # a new invocation
    store.requests.clear()
    found = catalog.pool_by_number(number)
    assert found == pool
    assert catalog.pool(pool.id) == pool  # the rest of the invocation asks again: no read
    assert store.of(POOLS) == {"get": 1}

    edited = replace(pool, name="After", ring_timeout_seconds=pool.ring_timeout_seconds + 5)
    assert catalog.save(edited, by="test", by_oid="", action="edit", expected=pool)
    versions.forget_all()  # the next call
    assert catalog.pool_by_number(number) == edited


def test_the_supervisors_table_reads_a_long_queue_in_one_query(store: CountingStore) -> None:
    a = f"a{uuid.uuid4().hex[:6]}"
    pool, catalog = stored_pool(store, a)
    waiting = TableWaitingCalls(store)
    supervision = Supervision(
        directory=Directory((agent(a),), (pool,)),
        store=catalog,
        roster=roster_of(store, catalog),
        waiting=waiting,
        presence=None,  # type: ignore[arg-type]
    )

    def figures_with(queued: int) -> tuple[int, dict[str, int]]:
        for n in range(queued):
            call = Call(
                str(uuid.uuid4()),
                Direction.INBOUND,
                CallKind.POOL,
                "+358401234567",
                "",
                T0 + timedelta(seconds=n),
                pool_id=pool.id,
            )
            waiting.add(pool.id, call)
        store.requests.clear()
        dashboard = supervision.dashboard(T0 + timedelta(minutes=5))
        return dashboard.pools[0].queue_length, dict(store.requests)

    few, cost_few = figures_with(2)
    many, cost_many = figures_with(40)
    assert (few, many) == (2, 42)
    assert cost_many == cost_few  # no read per waiting call
    assert cost_many[("query", "poolqueue")] == 1


# ---------------------------------------------------------------------- POOL_CACHE_SECONDS


def test_a_kept_pool_costs_no_read_until_it_runs_out_or_this_instance_saves(
    store: CountingStore,
) -> None:
    pool = ServicePool(f"p{uuid.uuid4().hex[:8]}", "P", ("+358101999001",), ())
    catalog = TablePools(store, cache_seconds=60)
    assert catalog.save(pool, by="test", by_oid="", action="create", expected=None)
    assert catalog.pool_by_number("+358101999001") == pool
    store.requests.clear()
    versions.forget_all()  # later invocations on this instance
    assert catalog.pool_by_number("+358101999001") == pool
    assert catalog.pool(pool.id) == pool  # the number row's copy stands for the pool row
    assert store.of(POOLS) == {}
    # Another instance's edit is not seen while the copy is kept ...
    renamed = replace(pool, name="Renamed")
    other = TablePools(store)
    assert other.save(renamed, by="test", by_oid="", action="settings", expected=pool)
    assert catalog.pool(pool.id) == pool
    assert catalog.stored(pool.id) == renamed  # ... except by a supervisor's edit
    # ... and once it runs out (or this instance saves) the pool is read again.
    catalog._cache = {k: (0.0, v) for k, (_, v) in catalog._cache.items()}
    assert catalog.pool(pool.id) == renamed
    again = replace(renamed, name="Again")
    assert catalog.save(again, by="test", by_oid="", action="settings", expected=renamed)
    assert catalog.pool(pool.id) == again


def test_a_kept_membership_never_puts_an_agent_back_into_a_pool_it_left(
    store: CountingStore,
) -> None:
    a = f"a{uuid.uuid4().hex[:6]}"
    pool = ServicePool(f"p{uuid.uuid4().hex[:8]}", "P", (), (a,))
    catalog = TablePools(store, cache_seconds=60)
    agents = states(store, catalog)
    catalog.on_membership = agents.reindex
    assert catalog.save(pool, by="test", by_oid="", action="create", expected=None)
    assert catalog.memberships(a) == {pool.id: 5}  # kept by this instance
    # Another instance takes the agent out of the pool and drops its roster rows.
    other = TablePools(store)
    other_roster = roster_of(store, other)
    other.on_membership = TableAgentStates(store, roster=other_roster).reindex
    before = other.stored(pool.id)
    assert before is not None
    assert other.save(
        replace(before, members=(), skills=()), by="t", by_oid="", action="x", expected=before
    )
    other_roster.forget(pool.id, a)
    assert rows(store, pool.id) == {}
    # This instance, still holding the old membership, writes the agent's row: no roster row.
    versions.forget_all()
    assert agents.claim(a, "call-1")
    assert agents.release(a, "call-1")
    assert rows(store, pool.id) == {}


def test_the_claim_a_crash_left_and_the_free_members_come_in_one_query(
    store: CountingStore,
) -> None:
    a, b = f"a{uuid.uuid4().hex[:6]}", f"b{uuid.uuid4().hex[:6]}"
    pool, catalog = stored_pool(store, a, b)
    roster, agents = roster_of(store, catalog), states(store, catalog)
    assert agents.claim(a, "call-x")  # claimed, and the process died before the offer
    store.requests.clear()
    assert roster.claimed_and_free(pool.id, "call-x", T0, 5) == ([a], [b])
    assert roster.claimed_and_free(pool.id, "call-y", T0, 5) == ([], [b])
    assert store.of(ROSTER) == {"query": 2}


def test_a_transfer_claims_a_second_agent_for_the_call_and_each_release_is_one_transaction(
    store: CountingStore,
) -> None:
    a, b = f"a{uuid.uuid4().hex[:6]}", f"b{uuid.uuid4().hex[:6]}"
    pool, catalog = stored_pool(store, a, b)
    agents = states(store, catalog)
    assert agents.claim(a, "call-t") and agents.claim(b, "call-t")  # handed over to b
    found = rows(store, pool.id)
    assert found[f"c~call-t~{a}"]["agent_id"] == a and found[f"c~call-t~{b}"]["agent_id"] == b
    store.requests.clear()

    assert agents.release(a, "call-t")
    assert agents.release(b, "call-t")

    # Each release is the agent row and its roster rows together, from what it wrote last.
    assert store.of(ROSTER) == {"transact": 2}
    found = rows(store, pool.id)
    assert not [k for k in found if k.startswith("c~")]
    assert sorted(roster_of(store, catalog).free_members(pool.id, datetime.now(UTC), 5)) == sorted(
        [a, b]
    )


def test_a_roster_row_gone_missing_never_blocks_the_agent_row_and_the_index_mends(
    store: CountingStore,
) -> None:
    a = f"a{uuid.uuid4().hex[:6]}"
    pool, catalog = stored_pool(store, a)
    agents = states(store, catalog)
    assert agents.claim(a, "call-m")
    # The claim row goes missing (a crash, an older version's bug): the member row still
    # names it, so a transaction deleting it is refused whatever is read.
    store.delete(ROSTER, ROSTER_PARTITION, roster_key(pool.id, f"c~call-m~{a}"))

    assert agents.release(a, "call-m")

    assert agents.state(a).busy_call_id is None
    found = rows(store, pool.id)
    assert found[f"m~{a}"]["busy_call_id"] == "" and found[f"m~{a}"]["free_key"]
    assert roster_of(store, catalog).free_members(pool.id, datetime.now(UTC), 5) == [a]


def test_a_store_from_before_the_roster_moved_gets_it_built_once(
    store: CountingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = f"a{uuid.uuid4().hex[:6]}", f"b{uuid.uuid4().hex[:6]}"
    pool, catalog = stored_pool(store, a, b)
    # As the store was before the move: the pool and its members, no roster rows, no marker.
    for key in rows(store, pool.id):
        store.delete(ROSTER, ROSTER_PARTITION, roster_key(pool.id, key))
    store.delete(POOLS, META_PARTITION, ROSTER_BUILT)
    if store.get(POOLS, META_PARTITION, SEEDED) is None:
        store.insert(POOLS, {"PartitionKey": META_PARTITION, "RowKey": SEEDED})
    versions.forget_guesses()
    roster = roster_of(store, catalog)
    assert roster.free_members(pool.id, T0, 5) == []
    # The shared store holds other tests' pools too: this one is the store's only pool here.
    monkeypatch.setattr(catalog, "all", lambda: (pool,))

    assert catalog.build_roster_once()

    assert sorted(roster.free_members(pool.id, T0, 5)) == sorted([a, b])
    assert store.get(POOLS, META_PARTITION, ROSTER_BUILT) is not None
    store.requests.clear()
    assert not catalog.build_roster_once()  # once: this instance does not even look again
    assert not TablePools(store).build_roster_once()  # another sees the marker
    assert store.of(ROSTER) == {} and store.of(POOLS) == {"get": 1}
