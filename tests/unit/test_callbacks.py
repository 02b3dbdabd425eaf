"""Callbacks (§5) on in-memory fakes: capture, the import's rules, and exactly once."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.config import ConfigError, load_settings
from shared.domain.activity import Party, UnresolvedParty
from shared.domain.callback_lists import CallbackList, ListOwner, parse_callback_lists
from shared.domain.callbacks import (
    HANDLED_NOTE,
    SUBJECT,
    CallbackActivity,
    CallbackRequest,
    CallbackState,
    Claim,
    OpenRequest,
    WriteOutcome,
    WriteResult,
    request_id_for_call,
)
from shared.domain.customers import CustomerEntity, CustomerRef, Identification
from shared.domain.directory import PoolCallback, parse_pools
from shared.errors import DependencyUnavailable, Unprocessable
from shared.services.callbacks import CallbackOptions, CallbackService, ImportSummary
from shared.views import to_json

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
QUEUE = "c0ffee00-0000-4000-8000-00000000cb01"
SALES = CallbackList("sales-callbacks", QUEUE, True)
PAUSED = CallbackList("paused", "c0ffee00-0000-4000-8000-00000000cb02", False)
MAIJA = CustomerRef(CustomerEntity.CONTACT, "c-1", "Maija")
OY = CustomerRef(CustomerEntity.ACCOUNT, "a-1", "Meikäläinen Oy")


# ---------------------------------------------------------------------- fakes


class Crash(Exception):
    """Stands for the process dying at that line."""


@dataclass
class FakeStore:
    """The CallbackStore port in memory, with versions so claims can conflict."""

    stored: dict[str, CallbackRequest] = field(default_factory=dict)
    open: dict[str, OpenRequest] = field(default_factory=dict)
    fail_close: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock)

    def add(self, request: CallbackRequest) -> tuple[CallbackRequest, bool]:
        with self.lock:
            if request.request_id in self.stored:
                return self.stored[request.request_id], False
            self.stored[request.request_id] = request
            self.open[request.request_id] = OpenRequest(request, uuid.uuid4().hex)
            return request, True

    def get(self, list_id: str, request_id: str) -> CallbackRequest | None:
        return self.stored.get(request_id)

    def open_requests(self, list_id: str, limit: int | None = None) -> list[OpenRequest]:
        with self.lock:
            found = sorted(
                (e for e in self.open.values() if e.request.list_id == list_id),
                key=lambda e: e.request.requested_at,
            )
        return found[:limit] if limit else found

    def open_request(
        self, list_id: str, request_id: str, requested_at: datetime
    ) -> OpenRequest | None:
        return self.open.get(request_id)

    def requests(
        self, list_id: str, state: CallbackState | None, limit: int
    ) -> list[CallbackRequest]:
        found = [
            r
            for r in self.stored.values()
            if r.list_id == list_id and (state is None or r.state is state)
        ]
        return found[:limit]

    def claim(self, entries: Sequence[OpenRequest], claim: Claim) -> list[OpenRequest]:
        claimed = []
        with self.lock:
            for entry in entries:
                current = self.open.get(entry.request.request_id)
                if current is None or current.version != entry.version:
                    continue
                now_held = replace(
                    current,
                    version=uuid.uuid4().hex,
                    claimed_by=claim.run_id,
                    claimed_until=claim.until,
                )
                self.open[entry.request.request_id] = now_held
                claimed.append(now_held)
        return claimed

    def close(self, handled: Sequence[CallbackRequest]) -> None:
        if self.fail_close and handled:
            raise Crash("the process died after the create, before the close")
        with self.lock:
            for request in handled:
                self.stored[request.request_id] = request
                self.open.pop(request.request_id, None)

    def release(self, entries: Sequence[OpenRequest], error: str | None, at: datetime) -> None:
        with self.lock:
            for entry in entries:
                current = self.open.get(entry.request.request_id)
                if current is not None:
                    self.open[entry.request.request_id] = replace(
                        current,
                        version=uuid.uuid4().hex,
                        claimed_by=None,
                        claimed_until=at,
                        attempts=current.attempts + 1,
                        last_error=error,
                    )


@dataclass
class FakeCrm:
    """D365 in memory: activities by id (a repeat id is refused, as Dataverse does)."""

    customers: dict[str, tuple[CustomerRef, ...]] = field(default_factory=dict)
    activities: dict[str, CallbackActivity] = field(default_factory=dict)
    create_attempts: list[str] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # activity ids Dataverse rejects
    throttle_writes_from: int | None = None  # the n-th write (1-based) and later are refused
    writes: int = 0
    identify_calls: int = 0
    during_identify: Callable[[], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def identify(self, numbers: Sequence[str]) -> dict[str, tuple[CustomerRef, ...]]:
        self.identify_calls += 1
        if self.during_identify is not None:
            hook, self.during_identify = self.during_identify, None
            hook()
        return {n: self.customers.get(n, ()) for n in numbers}

    def write(self, activities: Sequence[CallbackActivity]) -> dict[str, WriteResult]:
        self.writes += 1
        if self.throttle_writes_from is not None and self.writes >= self.throttle_writes_from:
            raise DependencyUnavailable("Dataverse is throttling or unavailable (429)")
        results = {}
        with self.lock:
            for activity in activities:
                self.create_attempts.append(activity.activity_id)
                if activity.activity_id in self.refuse:
                    results[activity.activity_id] = WriteResult(
                        WriteOutcome.FAILED, "Dataverse 404 0x80040217: queue not found"
                    )
                elif activity.activity_id in self.activities:
                    results[activity.activity_id] = WriteResult(WriteOutcome.EXISTED)
                else:
                    self.activities[activity.activity_id] = activity
                    results[activity.activity_id] = WriteResult(WriteOutcome.CREATED)
        return results


@dataclass
class FakeSignals:
    sent: list[str] = field(default_factory=list)
    broken: bool = False

    def captured(self, request: CallbackRequest) -> None:
        if self.broken:
            raise OSError("queue storage is down")
        self.sent.append(request.request_id)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Rig:
    store: FakeStore
    crm: FakeCrm
    signals: FakeSignals
    clock: Clock

    def service(self, **options: object) -> CallbackService:
        base = CallbackOptions(
            lists=(SALES, PAUSED),
            pool_names={"sales": "Sales"},
            claim_seconds=300,
            batch_size=100,
        )
        return CallbackService(
            store=self.store,
            crm=self.crm,
            signals=self.signals,
            options=replace(base, **options),  # type: ignore[arg-type]
            clock=self.clock,
        )


@pytest.fixture
def rig() -> Rig:
    return Rig(FakeStore(), FakeCrm(), FakeSignals(), Clock())


def capture(
    service: CallbackService, number: str = "+358401234567", **kw: object
) -> CallbackRequest:
    args: dict[str, object] = {
        "list_id": SALES.id,
        "number": number,
        "requested_at": T0,
        "pool_id": "sales",
        "source": "call",
    }
    args.update(kw)
    return service.capture(**args)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- capture


def test_a_captured_request_is_stored_open_with_its_number_in_e164(rig: Rig) -> None:
    service = rig.service()
    request = capture(service, "040 123 4567", name=" Maija ", note="after 3pm")
    assert request.number == "+358401234567"
    assert (request.name, request.note, request.pool_id) == ("Maija", "after 3pm", "sales")
    assert request.state is CallbackState.OPEN
    assert rig.store.open_requests(SALES.id)[0].request == request
    assert rig.signals.sent == [request.request_id]  # the immediate path is on by default


@pytest.mark.parametrize(
    ("kw", "field_name"),
    [
        ({"number": "not a number"}, "number"),
        ({"number": ""}, "number"),
        ({"list_id": "nope"}, "list"),
        ({"list_id": None}, "list"),  # two lists configured: which one?
        ({"name": "x" * 101}, "name"),
        ({"note": "x" * 1001}, "note"),
    ],
)
def test_a_request_that_breaks_a_rule_is_unprocessable(
    rig: Rig, kw: dict[str, object], field_name: str
) -> None:
    with pytest.raises(Unprocessable) as caught:
        capture(rig.service(), **kw)
    assert [e.field for e in caught.value.errors] == [field_name]
    assert rig.store.stored == {}


def test_the_only_list_is_the_default(rig: Rig) -> None:
    request = capture(rig.service(lists=(SALES,)), list_id=None)
    assert request.list_id == SALES.id


def test_capturing_the_same_request_id_twice_stores_and_signals_once(rig: Rig) -> None:
    service = rig.service()
    request_id = request_id_for_call("call-1")
    first = capture(service, request_id=request_id)
    again = capture(service, request_id=request_id, requested_at=T0 + timedelta(seconds=5))
    assert again == first and len(rig.store.stored) == 1
    assert rig.signals.sent == [request_id]
    assert request_id_for_call("call-1") == request_id != request_id_for_call("call-2")


def test_no_immediate_import_when_it_is_off_or_the_list_is_disabled(rig: Rig) -> None:
    capture(rig.service(immediate=False))
    capture(rig.service(), list_id=PAUSED.id, number="+358401111111")
    assert rig.signals.sent == []
    assert len(rig.store.stored) == 2


def test_a_failed_signal_does_not_lose_the_request(rig: Rig) -> None:
    rig.signals.broken = True
    request = capture(rig.service())
    assert rig.store.open_requests(SALES.id)[0].request == request
    assert rig.service().import_open().imported == 1  # the timer is the safety net


# ---------------------------------------------------------------------- the import


def test_an_import_creates_the_phone_call_and_closes_the_request(rig: Rig) -> None:
    rig.crm.customers["+358401234567"] = (MAIJA,)
    service = rig.service()
    request = capture(service, note="about the invoice")
    rig.clock.advance(60)

    summary = service.import_open()

    assert summary == ImportSummary(imported=1)
    activity = rig.crm.activities[request.activity_uuid]
    assert activity.subject == SUBJECT == "Callback Request"
    assert activity.customer == MAIJA
    assert activity.queue_id == QUEUE
    assert activity.phone_number == "+358401234567"
    assert "+358401234567" in activity.description
    assert "2026-11-25 09:00 UTC" in activity.description
    assert "Sales" in activity.description and "about the invoice" in activity.description
    closed = rig.store.stored[request.request_id]
    assert closed.state is CallbackState.HANDLED
    assert closed.handled_note == HANDLED_NOTE == "Handled by D365"
    assert closed.activity_id == request.activity_uuid
    assert closed.handled_at == T0 + timedelta(seconds=60)
    assert (closed.identification, closed.regarding) == (Identification.SINGLE, MAIJA)
    assert rig.store.open == {}


def test_a_callback_is_a_call_to_make_due_within_the_lists_window(rig: Rig) -> None:
    rig.crm.customers["+358401234567"] = (MAIJA,)
    team = "7ea30000-0000-4000-8000-000000000001"
    sales = replace(SALES, due_minutes=120, owner=ListOwner("team", team))
    service = rig.service(lists=(sales, PAUSED))
    request = capture(service)
    rig.clock.advance(600)  # imported ten minutes later: still due from the request time
    service.import_open()
    activity = rig.crm.activities[request.activity_uuid]
    assert (activity.scheduled_start, activity.scheduled_end) == (T0, T0 + timedelta(hours=2))
    assert activity.to_party == Party("contact", MAIJA.id)
    assert activity.owner == ListOwner("team", team)
    assert activity.subject == "Callback Request"


def test_a_list_without_an_owner_leaves_the_callback_to_the_application_user(rig: Rig) -> None:
    service = rig.service()
    request = capture(service)
    service.import_open()
    activity = rig.crm.activities[request.activity_uuid]
    assert activity.owner is None
    assert activity.scheduled_end == T0 + timedelta(days=1)  # the default window


def test_an_unknown_number_is_an_unresolved_to_party_only_when_the_setting_says(
    rig: Rig,
) -> None:
    rig.crm.customers["+358401111111"] = (MAIJA, OY)
    service = rig.service(unresolved_parties=True)
    several = capture(service, "+358401111111")
    nobody = capture(service, "+358402222222")
    service.import_open()
    assert rig.crm.activities[several.activity_uuid].to_party == UnresolvedParty("+358401111111")
    assert rig.crm.activities[nobody.activity_uuid].to_party == UnresolvedParty("+358402222222")
    assert rig.crm.activities[nobody.activity_uuid].customer is None
    default = Rig(FakeStore(), FakeCrm(), FakeSignals(), Clock())
    plain = default.service()
    request = capture(plain, "+358402222222")
    plain.import_open()
    assert default.crm.activities[request.activity_uuid].to_party is None  # the seed's way


def test_several_or_no_matches_set_no_customer(rig: Rig) -> None:
    rig.crm.customers["+358401111111"] = (MAIJA, OY)
    service = rig.service()
    several = capture(service, "+358401111111")
    nobody = capture(service, "+358402222222")
    assert service.import_open().imported == 2
    assert rig.crm.activities[several.activity_uuid].customer is None
    assert rig.crm.activities[nobody.activity_uuid].customer is None
    assert rig.store.stored[several.request_id].identification is Identification.SEVERAL
    assert rig.store.stored[nobody.request_id].identification is Identification.NONE


def test_a_disabled_list_is_left_alone(rig: Rig) -> None:
    service = rig.service()
    request = capture(service, list_id=PAUSED.id)
    assert service.import_open() == ImportSummary()
    assert rig.crm.activities == {} and rig.crm.identify_calls == 0
    assert rig.store.stored[request.request_id].state is CallbackState.OPEN
    assert service.import_one(PAUSED.id, request.request_id, T0) == ImportSummary()


def test_a_run_with_nothing_open_asks_dynamics_nothing(rig: Rig) -> None:
    assert rig.service().import_open() == ImportSummary()
    assert (rig.crm.identify_calls, rig.crm.writes) == (0, 0)


def test_requests_are_imported_in_batches(rig: Rig) -> None:
    service = rig.service(batch_size=2)
    for i in range(5):
        capture(service, f"+35840100000{i}", requested_at=T0 + timedelta(seconds=i))
    assert service.import_open().imported == 5
    assert (rig.crm.identify_calls, rig.crm.writes) == (3, 3)


# ---------------------------------------------------------------------- exactly once


def test_a_crash_after_the_create_before_the_close_is_repaired_by_the_next_run(rig: Rig) -> None:
    service = rig.service()
    request = capture(service)
    rig.store.fail_close = True
    with pytest.raises(Crash):
        service.import_open()
    assert request.activity_uuid in rig.crm.activities  # created, but the request is open
    assert rig.store.stored[request.request_id].state is CallbackState.OPEN

    rig.store.fail_close = False
    assert service.import_open() == ImportSummary(busy=1)  # the dead run's claim holds
    rig.clock.advance(301)  # ... until it expires
    assert service.import_open() == ImportSummary(repaired=1)

    assert list(rig.crm.activities) == [request.activity_uuid]  # one activity
    closed = rig.store.stored[request.request_id]
    assert (closed.state, closed.activity_id) == (CallbackState.HANDLED, request.activity_uuid)


def test_two_runs_at_once_import_nothing_twice(rig: Rig) -> None:
    first, second = rig.service(), rig.service()
    requests = [capture(first, f"+35840100000{i}") for i in range(4)]
    outcome: dict[str, ImportSummary] = {}
    # The second run starts while the first holds its claims and talks to Dynamics.
    rig.crm.during_identify = lambda: outcome.update(second=second.import_open())

    outcome["first"] = first.import_open()

    assert outcome["first"].imported == 4
    assert outcome["second"] == ImportSummary(busy=4)
    assert sorted(rig.crm.create_attempts) == sorted(r.activity_uuid for r in requests)


def test_a_run_that_read_before_another_claimed_does_not_claim_again(rig: Rig) -> None:
    first, second = rig.service(), rig.service()
    capture(first)
    stale = rig.store.open_requests(SALES.id)  # read by a slow run
    assert second.import_open().imported == 1
    late = rig.store.claim(stale, Claim("slow-run", T0 + timedelta(minutes=5)))
    assert late == []  # the version moved on: the ETag check refuses it


def test_many_threads_racing_create_each_activity_once(rig: Rig) -> None:
    services = [rig.service(batch_size=3) for _ in range(6)]
    requests = [capture(services[0], f"+3584010000{i:02d}") for i in range(20)]
    threads = [threading.Thread(target=s.import_open) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(rig.crm.create_attempts) == sorted(r.activity_uuid for r in requests)
    assert rig.store.open == {}


def test_dataverse_throttling_mid_import_lands_everything_later_nothing_twice(rig: Rig) -> None:
    service = rig.service(batch_size=2)
    requests = [
        capture(service, f"+35840100000{i}", requested_at=T0 + timedelta(seconds=i))
        for i in range(6)
    ]
    rig.crm.throttle_writes_from = 2  # the first batch lands, then Dataverse says 429

    first = service.import_open()

    assert first.imported == 2 and first.interrupted is not None
    assert len(rig.store.open) == 4
    assert all(e.claimed_by is None for e in rig.store.open.values())  # given back at once
    rig.crm.throttle_writes_from = None
    assert service.import_open().imported == 4
    assert sorted(rig.crm.activities) == sorted(r.activity_uuid for r in requests)
    assert len(rig.crm.create_attempts) == 6  # nothing twice
    assert rig.store.open == {}


def test_a_write_whose_answer_was_lost_is_closed_by_the_next_run(rig: Rig) -> None:
    service = rig.service()
    request = capture(service)
    real_write = rig.crm.write

    def write_then_time_out(activities: Sequence[CallbackActivity]) -> dict[str, WriteResult]:
        real_write(activities)
        raise DependencyUnavailable("Dataverse is not reachable")

    rig.crm.write = write_then_time_out  # type: ignore[method-assign]
    assert service.import_open().interrupted == "Dataverse is not reachable"
    rig.crm.write = real_write  # type: ignore[method-assign]
    assert service.import_open() == ImportSummary(repaired=1)
    assert list(rig.crm.activities) == [request.activity_uuid]
    assert rig.store.stored[request.request_id].state is CallbackState.HANDLED


def test_a_request_dataverse_refuses_stays_open_with_the_error(rig: Rig) -> None:
    service = rig.service()
    bad = capture(service, "+358401111111")
    good = capture(service, "+358402222222")
    rig.crm.refuse.add(bad.activity_uuid)
    assert service.import_open() == ImportSummary(imported=1, failed=1)
    [left] = rig.store.open.values()
    assert left.request == bad and left.attempts == 1
    assert left.last_error is not None and "queue not found" in left.last_error
    assert left.claimable(rig.clock())  # retried by the next run
    assert rig.store.stored[good.request_id].state is CallbackState.HANDLED


def test_a_run_stops_taking_batches_when_its_time_is_up(rig: Rig) -> None:
    service = rig.service(batch_size=1, max_run_seconds=60)
    for i in range(3):
        capture(service, f"+35840100000{i}", requested_at=T0 + timedelta(seconds=i))
    rig.crm.during_identify = lambda: rig.clock.advance(61)
    assert service.import_open() == ImportSummary(imported=1, left=2)


# ---------------------------------------------------------------------- the immediate path


def test_the_immediate_path_imports_that_one_request(rig: Rig) -> None:
    service = rig.service()
    request = capture(service)
    other = capture(service, "+358409999999")
    assert service.import_one(SALES.id, request.request_id, T0) == ImportSummary(imported=1)
    assert list(rig.crm.activities) == [request.activity_uuid]
    assert rig.store.stored[other.request_id].state is CallbackState.OPEN
    # A repeated message finds it handled; the next timer run imports only the other one.
    assert service.import_one(SALES.id, request.request_id, T0) == ImportSummary()
    assert service.import_open() == ImportSummary(imported=1)


def test_the_immediate_path_leaves_a_request_another_run_holds(rig: Rig) -> None:
    service = rig.service()
    request = capture(service)
    rig.store.claim(rig.store.open_requests(SALES.id), Claim("timer", T0 + timedelta(minutes=5)))
    assert service.import_one(SALES.id, request.request_id, T0) == ImportSummary(busy=1)
    assert rig.crm.activities == {}


def test_the_immediate_path_raises_when_dataverse_is_unavailable(rig: Rig) -> None:
    service = rig.service()
    request = capture(service)
    rig.crm.throttle_writes_from = 1
    with pytest.raises(DependencyUnavailable):
        service.import_one(SALES.id, request.request_id, T0)  # the queue retries it
    assert rig.store.open[request.request_id].claimable(rig.clock())


# ---------------------------------------------------------------------- the supervisors' view


def test_supervisors_see_open_and_handled_requests(rig: Rig) -> None:
    service = rig.service()
    done = capture(service, "+358401111111")
    service.import_open()
    waiting = capture(service, "+358402222222", requested_at=T0 + timedelta(minutes=1))
    both = to_json(service.requests(list_id=SALES.id, state=None, limit=10))["value"]
    assert [(v["requestId"], v["state"]) for v in both] == [
        (waiting.request_id, "open"),
        (done.request_id, "handled"),
    ]
    [handled] = to_json(service.requests(list_id=SALES.id, state=CallbackState.HANDLED, limit=10))[
        "value"
    ]
    assert handled["handledNote"] == "Handled by D365"
    assert handled["activityId"] == done.activity_uuid
    oldest_open = to_json(service.requests(list_id=None, state=CallbackState.OPEN, limit=1))
    assert oldest_open["value"][0]["number"] == ("+358402222222")


# ---------------------------------------------------------------------- settings


def test_callback_lists_parse_and_say_what_is_wrong() -> None:
    lists = parse_callback_lists(
        json.dumps({"sales": {"queueId": QUEUE.upper(), "enabled": False}, "b": {"queueId": QUEUE}})
    )
    assert lists == (CallbackList("sales", QUEUE, False), CallbackList("b", QUEUE, True))
    with pytest.raises(ValueError, match=r"x\.queueId must be the D365 queue's GUID"):
        parse_callback_lists(json.dumps({"x": {"queueId": "nope"}}))
    with pytest.raises(ValueError, match="enabled must be true or false"):
        parse_callback_lists(json.dumps({"x": {"queueId": QUEUE, "enabled": "yes"}}))
    with pytest.raises(ValueError, match="must be a JSON object"):
        parse_callback_lists("[]")


def test_callback_lists_carry_a_due_window_and_an_owner() -> None:
    team, user = "7EA30000-0000-4000-8000-000000000001", "05e40000-0000-4000-8000-000000000002"
    lists = parse_callback_lists(
        json.dumps(
            {
                "a": {"queueId": QUEUE, "dueMinutes": 30, "ownerTeamId": team},
                "b": {"queueId": QUEUE, "ownerUserId": user},
            }
        )
    )
    assert lists == (
        CallbackList("a", QUEUE, True, 30, ListOwner("team", team.lower())),
        CallbackList("b", QUEUE, True, 1440, ListOwner("systemuser", user)),
    )
    with pytest.raises(ValueError, match=r"a\.dueMinutes must be a whole number 1-43200"):
        parse_callback_lists(json.dumps({"a": {"queueId": QUEUE, "dueMinutes": 0}}))
    with pytest.raises(ValueError, match="both ownerTeamId and ownerUserId"):
        parse_callback_lists(
            json.dumps({"a": {"queueId": QUEUE, "ownerTeamId": team, "ownerUserId": user}})
        )
    with pytest.raises(ValueError, match=r"a\.ownerTeamId must be the D365 team's GUID"):
        parse_callback_lists(json.dumps({"a": {"queueId": QUEUE, "ownerTeamId": "sales"}}))


def test_a_pool_offers_callbacks_after_a_wait_and_when_closed() -> None:
    [pool] = parse_pools(
        json.dumps(
            [
                {
                    "id": "sales",
                    "numbers": ["+358101000100"],
                    "callback": {
                        "list": "sales-callbacks",
                        "offerAfterSeconds": 60,
                        "whenClosed": True,
                    },
                }
            ]
        )
    )
    assert pool.callback == PoolCallback("sales-callbacks", 60, True)
    [plain] = parse_pools(json.dumps([{"id": "p"}]))
    assert plain.callback is None
    with pytest.raises(ValueError, match="offerAfterSeconds and/or whenClosed"):
        parse_pools(json.dumps([{"id": "p", "callback": {"list": "l"}}]))
    with pytest.raises(ValueError, match="offerAfterSeconds must be a whole number"):
        parse_pools(json.dumps([{"id": "p", "callback": {"list": "l", "offerAfterSeconds": -1}}]))


def test_a_pool_offering_callbacks_to_an_unknown_list_stops_start_up() -> None:
    env = {
        **json.loads((ROOT / "local.settings.json").read_text())["Values"],
        "SERVICE_POOLS": json.dumps(
            [{"id": "sales", "callback": {"list": "nope", "whenClosed": True}}]
        ),
        "CALLBACK_LISTS": json.dumps({"sales-callbacks": {"queueId": QUEUE}}),
    }
    with pytest.raises(ConfigError, match="offers callbacks to 'nope'"):
        load_settings(env)
    env["CALLBACK_LISTS"] = json.dumps({"nope": {"queueId": QUEUE}})
    settings = load_settings(env)
    assert settings.callback_poll_schedule == "0 */15 * * * *"
    assert settings.callback_immediate is True
    assert settings.callback_lists == (CallbackList("nope", QUEUE, True),)
