"""The call-flow repositories on a real Azurite: markers, ETag races, claims, queue order."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.repositories import (
    TableAgentStates,
    TableCallRepository,
    TableWaitingCalls,
)
from shared.adapters.tables import TableStore
from shared.domain.calls import Call, CallEvent, CallKind, Direction, apply_event, with_offer
from shared.domain.customers import CustomerEntity, CustomerRef

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(storage_connection_string: str) -> TableStore:
    return TableStore(storage_connection_string)


def new_call(**kw: object) -> Call:
    base = Call(
        str(uuid.uuid4()),
        Direction.INBOUND,
        CallKind.POOL,
        "+358401234567",
        "+358900100",
        T0,
        pool_id=f"pool-{uuid.uuid4().hex[:6]}",
        candidates=(CustomerRef(CustomerEntity.CONTACT, "c1", "Maija"),),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_a_call_round_trips_with_offers_and_candidates(store: TableStore) -> None:
    repo = TableCallRepository(store)
    call = with_offer(
        new_call(app_connected_at=T0, server_call_id="srv", record=True, recording_id="r1"),
        "8:acs:a",
        "a",
        T0 + timedelta(seconds=2),
    )
    assert repo.add(call) and not repo.add(call)
    assert repo.get(call.call_id) == call


def test_an_event_delivered_concurrently_many_times_is_applied_once(store: TableStore) -> None:
    repo = TableCallRepository(store)
    call = new_call()
    repo.add(call)
    event = CallEvent("evt-1", "CallConnected", T0 + timedelta(seconds=1))
    applied: list[bool] = []
    calls_seen = {"n": 0}

    def change(c: Call) -> Call:
        calls_seen["n"] += 1
        return apply_event(c, event)

    barrier = threading.Barrier(6)

    def deliver() -> None:
        barrier.wait()
        result = repo.update(call.call_id, change, event_id=event.id)
        assert result is not None
        applied.append(result[1])

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert applied.count(True) == 1
    stored = repo.get(call.call_id)
    assert stored is not None and stored.app_connected_at == T0 + timedelta(seconds=1)


def test_concurrent_changes_to_one_call_all_survive(store: TableStore) -> None:
    repo = TableCallRepository(store)
    call = new_call()
    repo.add(call)
    barrier = threading.Barrier(5)

    def offer(i: int) -> None:
        barrier.wait()
        repo.update(call.call_id, lambda c: with_offer(c, f"8:acs:{i}", str(i), T0))

    threads = [threading.Thread(target=offer, args=(i,)) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = repo.get(call.call_id)
    assert stored is not None
    assert sorted(o.n for o in stored.offers) == [1, 2, 3, 4, 5]


def test_twenty_calls_racing_for_one_agent_exactly_one_wins(store: TableStore) -> None:
    agents = TableAgentStates(store)
    agent = f"agent-{uuid.uuid4().hex[:6]}"
    wins: list[str] = []
    barrier = threading.Barrier(20)

    def claim(i: int) -> None:
        barrier.wait()
        if agents.claim(agent, f"call-{i}"):
            wins.append(f"call-{i}")

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    states = agents.states((agent, "someone-else"))
    assert states[agent].busy_call_id == wins[0]
    assert states["someone-else"].busy_call_id is None
    assert not agents.release(agent, "not-the-winner")
    assert agents.release(agent, wins[0])
    assert agents.state(agent).busy_call_id is None


def test_waiting_calls_come_out_oldest_first(store: TableStore) -> None:
    waiting = TableWaitingCalls(store)
    pool = f"pool{uuid.uuid4().hex[:6]}"
    late = new_call(arrived_at=T0 + timedelta(seconds=30))
    early = new_call(arrived_at=T0)
    waiting.add(pool, late)
    waiting.add(pool, early)
    waiting.add(pool, early)
    assert waiting.oldest(pool, 5) == [early.call_id, late.call_id]
    waiting.remove(pool, early)
    assert waiting.oldest(pool, 5) == [late.call_id]


def test_notes_survive_and_are_replaced(store: TableStore) -> None:
    repo = TableCallRepository(store)
    call = new_call()
    repo.add(call)
    repo.save_notes(call.call_id, "first")
    repo.save_notes(call.call_id, "second")
    assert repo.notes(call.call_id) == "second"


def test_a_guess_another_instance_made_stale_costs_a_refusal_never_its_write(
    store: TableStore,
) -> None:
    from shared.adapters import versions

    here = TableCallRepository(store)
    call = new_call()
    assert here.add(call)  # this instance now guesses the row it inserted
    versions.forget_all()  # a later invocation
    # Another instance writes meanwhile (straight to the store: this one hears nothing of it).
    entity, etag = store.get_with_etag("calls", call.call_id, "call") or ({}, "")
    store.replace_if_unchanged("calls", {**entity, "recording_id": "theirs"}, etag)
    assert versions.guess("calls", call.call_id, "call") is not None  # stale now
    result = here.update(call.call_id, lambda c: replace(c, server_call_id="ours"))
    assert result is not None and result[1]
    stored = here.get(call.call_id)
    assert stored is not None
    assert (stored.recording_id, stored.server_call_id) == ("theirs", "ours")


def test_a_guess_of_an_agent_row_deleted_since_is_a_refusal_then_a_fresh_claim(
    store: TableStore,
) -> None:
    from shared.adapters import versions

    agents = TableAgentStates(store)
    agent_id = f"a-{uuid.uuid4().hex[:8]}"
    assert agents.claim(agent_id, "call-1") and agents.release(agent_id, "call-1")
    store.delete("agents", "agent", agent_id)  # the row goes; the instance still guesses it
    versions.forget_all()
    assert agents.claim(agent_id, "call-2")
    assert agents.state(agent_id).busy_call_id == "call-2"


def test_an_agents_history_rides_on_its_row_and_older_calls_come_from_agentcalls(
    store: TableStore,
) -> None:
    agents = TableAgentStates(store)
    agent_id = f"a-{uuid.uuid4().hex[:8]}"
    # Calls noted before the history moved onto the agent row.
    for n, key in ((1, "998"), (2, "997")):
        store.upsert(
            "agentcalls",
            {"PartitionKey": agent_id, "RowKey": f"{key}-old-{n}", "call_id": f"old-{n}"},
        )
    for n in range(3):
        assert agents.claim(agent_id, f"call-{n}")
        agents.note_call(agent_id, f"call-{n}", T0)
        assert agents.release(agent_id, f"call-{n}")
    agents.note_call(agent_id, "call-1", T0)  # noted again: moves to the front, once
    assert agents.recent_calls(agent_id, 10) == ["call-1", "call-2", "call-0", "old-2", "old-1"]
    assert agents.recent_calls(agent_id, 2) == ["call-1", "call-2"]
    # Nothing new went to agentcalls: noting a call is part of the agent row's write.
    rows = store.partition("agentcalls", agent_id)
    assert sorted(r["call_id"] for r in rows) == ["old-1", "old-2"]
