"""Routing recovers on a real Azurite (the call, agent, roster and queue tables as deployed):
a host killed between recording an offer and ringing it stops neither the queue behind the
call nor the call itself (docs/pools.md, Routing)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.adapters import versions
from shared.adapters.repositories import (
    TableAgentStates,
    TableCallRepository,
    TableWaitingCalls,
)
from shared.adapters.tables import TableStore
from shared.domain.calls import CallEvent, IncomingCall, OfferOutcome
from shared.domain.directory import Directory
from shared.services.calls import LOST_RING_MARGIN_SECONDS, CallFlow, CallFlowOptions
from tests.integration.test_pool_roster import agent, roster_of, stored_pool
from tests.unit.fakes import FakeCrm, FakeEnrichment, FakeTelephony

pytestmark = pytest.mark.integration


class HostKilled(BaseException):
    """The process dies here: nothing after this step runs."""


class DyingTelephony(FakeTelephony):
    def __init__(self) -> None:
        super().__init__()
        self.die_next_ring = False

    def add_participant(self, connection_id: str, target: str, **kwargs: Any) -> str | None:
        if self.die_next_ring:
            self.die_next_ring = False
            raise HostKilled
        return super().add_participant(connection_id, target, **kwargs)


@pytest.fixture
def store(storage_connection_string: str) -> Iterator[TableStore]:
    versions.forget_all()
    versions.forget_guesses()  # an instance that saw nothing yet
    yield TableStore(storage_connection_string)
    versions.forget_all()


class Rig:
    def __init__(self, store: TableStore) -> None:
        self.anna, self.ben = f"anna{uuid.uuid4().hex[:6]}", f"ben{uuid.uuid4().hex[:6]}"
        self.pool, catalog = stored_pool(store, self.anna, self.ben)
        roster = roster_of(store, catalog)
        self.agents = TableAgentStates(store, roster=roster)
        self.calls = TableCallRepository(store)
        self.waiting = TableWaitingCalls(store)
        self.telephony = DyingTelephony()
        self.flow = CallFlow(
            directory=Directory((agent(self.anna), agent(self.ben)), catalog),
            calls=self.calls,
            agents=self.agents,
            waiting=self.waiting,
            telephony=self.telephony,
            crm=FakeCrm(),
            enrichment=FakeEnrichment(),
            options=CallFlowOptions("https://app.example", b"k" * 32, "FI", 30),
            roster=roster,
        )
        self.n = 0

    def invocation(self) -> None:
        versions.forget_all()  # each step is a new invocation: it knows nothing yet

    def arrive(self, now: datetime) -> str:
        self.n += 1
        now += timedelta(milliseconds=self.n)  # the queue's order: the arrival, then the id
        self.invocation()
        event = IncomingCall(
            f"eg-{uuid.uuid4()}", f"4:+3584010000{self.n:02d}", "4:+358900100", str(uuid.uuid4()),
            f"ctx-{self.n}", now,
        )  # fmt: skip
        call = self.flow.incoming(event)
        assert call is not None
        self.event(call.call_id, "CallConnected", now)
        return call.call_id

    def event(self, call_id: str, kind: str, now: datetime, context: str | None = None) -> None:
        self.invocation()
        connection = self.telephony.connection_of(call_id)
        event = CallEvent(str(uuid.uuid4()), kind, now, context, connection_id=connection)
        self.flow.on_event(call_id, event, now)

    def ringing(self, call_id: str) -> str | None:
        call = self.calls.get(call_id)
        offer = call.pending_offer if call else None
        return offer.agent_id if offer else None

    def busy(self) -> dict[str, str | None]:
        return {a: self.agents.state(a).busy_call_id for a in (self.anna, self.ben)}


@pytest.fixture
def rig(store: TableStore, monkeypatch: pytest.MonkeyPatch) -> Rig:
    rig = Rig(store)
    # The pool's number (stored_pool makes pools without one): every call is to this pool.
    monkeypatch.setattr(rig.flow.directory.catalog, "pool_by_number", lambda n: rig.pool)
    return rig


def test_a_host_killed_before_ringing_the_head_call_stops_neither_the_queue_nor_the_call(
    rig: Rig,
) -> None:
    now = datetime.now(UTC)
    first, second = rig.arrive(now), rig.arrive(now)  # Anna and Ben take them
    for call_id in (first, second):
        rig.event(call_id, "AddParticipantSucceeded", now, "offer:1")
    stuck, behind = rig.arrive(now), rig.arrive(now)
    assert rig.waiting.oldest(rig.pool.id, 10) == [stuck, behind]
    ended = datetime.now(UTC)

    # The first call ends: Anna is offered the head call, and the host dies before ACS rings.
    rig.telephony.die_next_ring = True
    with pytest.raises(HostKilled):
        rig.event(first, "CallDisconnected", ended)
    assert rig.ringing(stuck) in (rig.anna, rig.ben)
    holder = rig.ringing(stuck)
    other = rig.ben if holder == rig.anna else rig.anna
    assert rig.waiting.oldest(rig.pool.id, 10) == [stuck, behind]

    rig.event(second, "CallDisconnected", ended)  # the other member is freed
    assert rig.ringing(behind) == other  # the queue did not stop at the stuck call

    # The housekeeping timer, after the ring timeout and the margin: offered again.
    later = ended + timedelta(seconds=rig.pool.ring_timeout_seconds + LOST_RING_MARGIN_SECONDS)
    rig.invocation()
    rig.flow.dispatch_pools(later + timedelta(seconds=1))
    call = rig.calls.get(stuck)
    assert call is not None
    assert [(o.agent_id, o.outcome) for o in call.offers] == [
        (holder, OfferOutcome.NOT_ANSWERED),
        (holder, OfferOutcome.PENDING),
    ]
    assert rig.busy() == {holder: stuck, other: behind}
    assert rig.waiting.oldest(rig.pool.id, 10) == []
    claims = dict(rig.agents.claims())
    assert claims[holder] == stuck and claims[other] == behind
