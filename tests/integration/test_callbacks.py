"""Callbacks against Azurite and the Dataverse emulator: the store's claims and closes with real
ETags, the batched Dataverse writer, and the import with its failures injected."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from emulators.common.tls import LocalTLS
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from shared.adapters.callback_store import (
    CALLBACKS,
    QueueCallbackSignals,
    TableCallbackStore,
    open_key,
)
from shared.adapters.dataverse import DataverseClient
from shared.adapters.dataverse_batch import DataverseCallbacks
from shared.adapters.identity import ClientCredentialsTokenProvider
from shared.adapters.queues import QueueSender
from shared.adapters.tables import TableStore
from shared.domain.activity import customer_party
from shared.domain.callbacks import (
    SUBJECT,
    CallbackActivity,
    CallbackList,
    CallbackRequest,
    CallbackState,
    Claim,
    WriteOutcome,
    WriteResult,
)
from shared.domain.customers import CustomerEntity, CustomerRef, Identification
from shared.queues import CALLBACK_IMPORTS
from shared.services.callbacks import CallbackOptions, CallbackService, ImportSummary
from tests.fixtures.entra_dataverse import APP_CLIENT_ID, APP_CLIENT_SECRET, TENANT_ID

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
QUEUE_ID = "c0ffee00-0000-4000-8000-00000000cb11"
CALLER = "+358401234567"


class Crash(Exception):
    """Stands for the process dying at that line."""


@pytest.fixture
def client(
    local_tls: LocalTLS, entra: EntraEmulator, dataverse_reset: DataverseEmulator
) -> DataverseClient:
    tokens = ClientCredentialsTokenProvider(
        entra.url,
        TENANT_ID,
        APP_CLIENT_ID,
        APP_CLIENT_SECRET,
        f"{dataverse_reset.url}/.default",
        str(local_tls.ca_path),
    )
    dataverse_reset.seed({"queues": [{"queueid": QUEUE_ID, "name": "Callbacks"}]})
    return DataverseClient(
        dataverse_reset.url, tokens.token, ca_bundle=str(local_tls.ca_path), sleep=lambda s: None
    )


@pytest.fixture
def store(storage_connection_string: str) -> TableCallbackStore:
    return TableCallbackStore(TableStore(storage_connection_string))


@pytest.fixture
def list_id() -> str:
    """A list of this test's own, so tests sharing the session's Azurite never meet."""
    return f"list-{uuid.uuid4().hex[:10]}"


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now


class NoSignals:
    def captured(self, request: CallbackRequest) -> None:
        pass


def service(
    store: Any, crm: Any, list_id: str, clock: Clock | None = None, **options: Any
) -> CallbackService:
    return CallbackService(
        store=store,
        crm=crm,
        signals=NoSignals(),
        options=CallbackOptions(
            lists=(CallbackList(list_id, QUEUE_ID, True),),
            pool_names={"sales": "Sales"},
            **options,
        ),
        clock=clock or Clock(),
    )


def new_request(list_id: str, number: str = CALLER, seconds: int = 0) -> CallbackRequest:
    return CallbackRequest(
        str(uuid.uuid4()),
        list_id,
        number,
        T0 + timedelta(seconds=seconds, microseconds=987_654),
        "api",
        "sales",
    )


def phonecall_creates(dataverse: DataverseEmulator) -> list[dict[str, Any]]:
    return [
        r
        for r in dataverse.requests_seen()
        if r["method"] == "POST" and r["path"].endswith("/phonecalls")
    ]


def billed(dataverse: DataverseEmulator) -> int:
    """Requests Dataverse counts: a $batch is one; its parts are not counted again."""
    return sum(1 for r in dataverse.requests_seen() if not r["in_batch"])


def queue_items(dataverse: DataverseEmulator) -> list[dict[str, Any]]:
    return dataverse.records("queueitems")


# ---------------------------------------------------------------------- the store


def test_a_request_and_its_open_row_are_stored_together_once(
    store: TableCallbackStore, list_id: str
) -> None:
    request = new_request(list_id)
    assert store.add(request) == (request, True)
    again = CallbackRequest(request.request_id, list_id, "+358409999999", T0, "api")
    assert store.add(again) == (request, False)
    assert store.get(list_id, request.request_id) == request
    [entry] = store.open_requests(list_id)
    assert entry.request == request and entry.version and entry.claimable(T0)


def test_open_requests_come_longest_waiting_first(store: TableCallbackStore, list_id: str) -> None:
    later, earlier = new_request(list_id, seconds=90), new_request(list_id, seconds=5)
    store.add(later)
    store.add(earlier)
    assert [e.request for e in store.open_requests(list_id)] == [earlier, later]
    assert [e.request for e in store.open_requests(list_id, limit=1)] == [earlier]


def test_a_claim_is_taken_once_per_version(store: TableCallbackStore, list_id: str) -> None:
    for i in range(3):
        store.add(new_request(list_id, seconds=i))
    read = store.open_requests(list_id)
    first = store.claim(read, Claim("run-a", T0 + timedelta(minutes=5)))
    second = store.claim(read, Claim("run-b", T0 + timedelta(minutes=5)))  # the same ETags
    assert len(first) == 3 and second == []
    now_held = store.open_requests(list_id)
    assert {e.claimed_by for e in now_held} == {"run-a"}
    assert not now_held[0].claimable(T0) and now_held[0].claimable(T0 + timedelta(minutes=5))


def test_claims_beyond_one_transaction_and_after_a_conflict_go_one_by_one(
    store: TableCallbackStore, list_id: str
) -> None:
    for i in range(105):  # more than a transaction holds
        store.add(new_request(list_id, number=f"+3584010{i:05d}", seconds=i))
    read = store.open_requests(list_id)
    store.claim(read[50:51], Claim("run-a", T0 + timedelta(minutes=5)))  # one taken meanwhile
    claimed = store.claim(read, Claim("run-b", T0 + timedelta(minutes=5)))
    assert len(claimed) == 104
    assert read[50].request.request_id not in {e.request.request_id for e in claimed}


def test_closing_marks_the_request_handled_and_removes_it_from_the_open_ones(
    store: TableCallbackStore, list_id: str
) -> None:
    requests = [new_request(list_id, number=f"+35840100000{i}", seconds=i) for i in range(3)]
    for r in requests:
        store.add(r)
    contact = CustomerRef(CustomerEntity.CONTACT, str(uuid.uuid4()), "Maija")
    store.close([requests[0].handled(T0, (contact,))])
    store.close([r.handled(T0, ()) for r in requests])  # the first one again: closed before
    assert store.open_requests(list_id) == []
    done = store.get(list_id, requests[0].request_id)
    assert done is not None and done.state is CallbackState.HANDLED
    assert done.activity_id == requests[0].activity_uuid
    handled = store.requests(list_id, CallbackState.HANDLED, 10)
    assert len(handled) == 3 and store.requests(list_id, CallbackState.OPEN, 10) == []


def test_the_handled_list_is_newest_handled_first_and_reads_only_what_it_shows(
    store: TableCallbackStore, list_id: str
) -> None:
    requests = [new_request(list_id, number=f"+35840200000{i}", seconds=i) for i in range(5)]
    for r in requests:
        store.add(r)
    # Handled in an order unlike their arrival; a chunk of more than one transaction's worth.
    order = [3, 0, 4, 1, 2]
    store.close([requests[i].handled(T0 + timedelta(minutes=n), ()) for n, i in enumerate(order)])
    newest = store.requests(list_id, CallbackState.HANDLED, 2)
    assert [r.request_id for r in newest] == [requests[2].request_id, requests[1].request_id]
    every = store.requests(list_id, CallbackState.HANDLED, 10)
    assert [r.request_id for r in every] == [requests[i].request_id for i in reversed(order)]


def test_releasing_never_brings_back_a_closed_request(
    store: TableCallbackStore, list_id: str
) -> None:
    kept, closed = new_request(list_id), new_request(list_id, "+358409999999", 1)
    store.add(kept)
    store.add(closed)
    entries = store.claim(store.open_requests(list_id), Claim("run", T0 + timedelta(minutes=5)))
    store.close([closed.handled(T0, ())])
    store.release(entries, "Dataverse 404: queue not found", T0)
    [left] = store.open_requests(list_id)
    assert left.request == kept and left.claimable(T0)
    assert (left.attempts, left.last_error) == (1, "Dataverse 404: queue not found")
    rows = list(store.store.partition(CALLBACKS, list_id))
    assert len([r for r in rows if r["RowKey"].startswith("open-")]) == 1


def test_the_immediate_path_message_names_the_request(
    storage_connection_string: str, list_id: str
) -> None:
    request = new_request(list_id)
    QueueCallbackSignals(QueueSender(storage_connection_string)).captured(request)
    queue = QueueClient.from_connection_string(storage_connection_string, CALLBACK_IMPORTS)
    found = [
        json.loads(base64.b64decode(m.content)) for m in queue.receive_messages(max_messages=32)
    ]
    mine = [m for m in found if m["list"] == list_id]
    assert mine == [
        {
            "list": list_id,
            "requestId": request.request_id,
            "requestedAt": request.requested_at.isoformat(),
        }
    ]
    assert open_key(request.request_id, datetime.fromisoformat(mine[0]["requestedAt"])) == (
        open_key(request.request_id, request.requested_at)
    )


# ---------------------------------------------------------------------- the Dataverse writer


def activity(number: str = CALLER, customer: CustomerRef | None = None) -> CallbackActivity:
    return CallbackActivity(
        str(uuid.uuid4()),
        SUBJECT,
        f"Callback requested by {number}",
        number,
        QUEUE_ID,
        customer,
        to_party=customer_party(customer, number, unresolved=False),
    )


def test_numbers_are_identified_across_contacts_accounts_and_leads_in_one_request(
    client: DataverseClient, dataverse_reset: DataverseEmulator
) -> None:
    seeded = dataverse_reset.seed(
        {
            "contacts": [
                {"firstname": "Maija", "lastname": "M", "mobilephone": "+358401111111"},
                {"firstname": "Ville", "lastname": "V", "telephone2": "+358402222222"},
            ],
            "accounts": [{"name": "Oy", "telephone1": "+358402222222"}],
            "leads": [{"firstname": "L", "lastname": "Lead", "telephone3": "+358403333333"}],
        }
    )
    before = billed(dataverse_reset)
    numbers = ["+358401111111", "+358402222222", "+358403333333", "+358404444444"]
    found = DataverseCallbacks(client, numbers_per_query=2).identify(numbers)
    assert billed(dataverse_reset) - before == 1
    assert [r.id for r in found["+358401111111"]] == [seeded["contacts"][0]]
    assert {r.id for r in found["+358402222222"]} == {
        seeded["contacts"][1],
        seeded["accounts"][0],
    }
    assert [(r.entity, r.id) for r in found["+358403333333"]] == [
        (CustomerEntity.LEAD, seeded["leads"][0])
    ]
    assert found["+358404444444"] == ()


def test_a_written_callback_is_a_phone_call_in_the_queue_and_a_repeat_creates_nothing(
    client: DataverseClient, dataverse_reset: DataverseEmulator
) -> None:
    [contact_id] = dataverse_reset.seed(
        {"contacts": [{"firstname": "Maija", "lastname": "M", "mobilephone": CALLER}]}
    )["contacts"]
    single = activity(customer=CustomerRef(CustomerEntity.CONTACT, contact_id, "Maija"))
    nobody = activity("+358409999999")
    writer = DataverseCallbacks(client)
    before = billed(dataverse_reset)

    assert writer.write([single, nobody]) == {
        single.activity_id: WriteResult(WriteOutcome.CREATED),
        nobody.activity_id: WriteResult(WriteOutcome.CREATED),
    }
    assert billed(dataverse_reset) - before == 1
    assert writer.write([single]) == {single.activity_id: WriteResult(WriteOutcome.EXISTED)}

    calls = {c["activityid"]: c for c in dataverse_reset.records("phonecalls")}
    assert set(calls) == {single.activity_id, nobody.activity_id}
    assert calls[single.activity_id]["subject"] == "Callback Request"
    assert calls[single.activity_id]["_regardingobjectid_value"] == contact_id
    assert calls[single.activity_id]["phonenumber"] == CALLER
    assert calls[nobody.activity_id]["_regardingobjectid_value"] is None
    parties = [
        (p["_activityid_value"], p["participationtypemask"], p["_partyid_value"])
        for p in dataverse_reset.records("activityparties")
    ]
    assert parties == [(single.activity_id, 2, contact_id)]  # To: the one to call back
    items = queue_items(dataverse_reset)
    assert sorted(i["_objectid_value"] for i in items) == sorted(calls)
    assert {i["_queueid_value"] for i in items} == {QUEUE_ID}


def test_one_refused_callback_does_not_stop_the_others_and_leaves_nothing_half_made(
    client: DataverseClient, dataverse_reset: DataverseEmulator
) -> None:
    good_before = activity()
    lost = CallbackActivity(
        str(uuid.uuid4()), SUBJECT, "x", CALLER, "c0ffee00-0000-4000-8000-0000000000ff", None
    )
    good_after = activity()
    results = DataverseCallbacks(client).write([good_before, lost, good_after])
    assert results[good_before.activity_id].outcome is WriteOutcome.CREATED
    assert results[good_after.activity_id].outcome is WriteOutcome.CREATED
    refused = results[lost.activity_id]
    assert refused.outcome is WriteOutcome.FAILED and "404" in (refused.error or "")
    # The change set rolled back: no Phone Call without its queue item.
    assert {c["activityid"] for c in dataverse_reset.records("phonecalls")} == {
        good_before.activity_id,
        good_after.activity_id,
    }


# ---------------------------------------------------------------------- the import, for real


def test_an_import_makes_two_dataverse_requests_per_batch(
    client: DataverseClient, dataverse_reset: DataverseEmulator, store: TableCallbackStore
) -> None:
    list_id = f"list-{uuid.uuid4().hex[:10]}"
    [contact_id] = dataverse_reset.seed(
        {"contacts": [{"firstname": "Maija", "lastname": "M", "mobilephone": CALLER}]}
    )["contacts"]
    for i in range(120):
        store.add(new_request(list_id, CALLER if i == 0 else f"+3584020{i:05d}", i))
    before = billed(dataverse_reset)

    summary = service(store, DataverseCallbacks(client), list_id, batch_size=50).import_open()

    assert summary == ImportSummary(imported=120)
    assert billed(dataverse_reset) - before == 6  # three batches: identify + write each
    assert len(dataverse_reset.records("phonecalls")) == 120
    assert len(queue_items(dataverse_reset)) == 120
    assert store.open_requests(list_id) == []
    first = store.requests(list_id, CallbackState.HANDLED, 200)
    single = [r for r in first if r.number == CALLER]
    assert single[0].identification is Identification.SINGLE
    assert single[0].regarding is not None and single[0].regarding.id == contact_id


@dataclass
class CrashingStore:
    """The real store, except that the close dies (as the process would)."""

    real: TableCallbackStore

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def close(self, handled: Sequence[CallbackRequest]) -> None:
        raise Crash("died after the create, before the close")


def test_a_crash_between_create_and_close_is_repaired_by_the_next_run(
    client: DataverseClient,
    dataverse_reset: DataverseEmulator,
    store: TableCallbackStore,
    list_id: str,
) -> None:
    request = new_request(list_id)
    store.add(request)
    clock = Clock()
    crm = DataverseCallbacks(client)
    with pytest.raises(Crash):
        service(CrashingStore(store), crm, list_id, clock).import_open()
    assert len(dataverse_reset.records("phonecalls")) == 1
    assert store.open_requests(list_id)[0].claimed_by is not None  # left by the dead run

    assert service(store, crm, list_id, clock).import_open() == ImportSummary(busy=1)
    clock.now += timedelta(seconds=301)  # the dead run's claim expires
    assert service(store, crm, list_id, clock).import_open() == ImportSummary(repaired=1)

    [call] = dataverse_reset.records("phonecalls")
    assert call["activityid"] == request.activity_uuid
    assert len(queue_items(dataverse_reset)) == 1
    closed = store.get(list_id, request.request_id)
    assert closed is not None and closed.state is CallbackState.HANDLED
    assert (closed.activity_id, closed.handled_note) == (request.activity_uuid, "Handled by D365")


def test_runs_started_together_create_each_phone_call_once(
    client: DataverseClient,
    dataverse_reset: DataverseEmulator,
    store: TableCallbackStore,
    list_id: str,
) -> None:
    for i in range(30):
        store.add(new_request(list_id, f"+3584030{i:05d}", i))
    start = threading.Barrier(4)
    summaries: list[ImportSummary] = []

    def run() -> None:
        start.wait()
        summaries.append(
            service(store, DataverseCallbacks(client), list_id, batch_size=10).import_open()
        )

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert sum(s.imported for s in summaries) == 30
    assert len(phonecall_creates(dataverse_reset)) == 30  # not one create attempted twice
    assert len(dataverse_reset.records("phonecalls")) == 30
    assert len(queue_items(dataverse_reset)) == 30
    assert store.open_requests(list_id) == []


@dataclass
class ThrottledFromSecondWrite:
    """The real writer; Dataverse starts throttling (Retry-After 60 s) at the second batch."""

    real: DataverseCallbacks
    dataverse: DataverseEmulator
    writes: int = 0

    def identify(self, numbers: Sequence[str]) -> dict[str, tuple[CustomerRef, ...]]:
        return self.real.identify(numbers)

    def write(self, activities: Sequence[CallbackActivity]) -> dict[str, WriteResult]:
        self.writes += 1
        if self.writes == 2:
            self.dataverse.throttle(count=1, retry_after=60)
        return self.real.write(activities)


def test_dataverse_throttling_mid_import_lands_everything_on_a_later_run_nothing_twice(
    client: DataverseClient,
    dataverse_reset: DataverseEmulator,
    store: TableCallbackStore,
    list_id: str,
) -> None:
    for i in range(6):
        store.add(new_request(list_id, f"+3584040{i:05d}", i))
    crm = ThrottledFromSecondWrite(DataverseCallbacks(client), dataverse_reset)

    first = service(store, crm, list_id, batch_size=2).import_open()

    assert first.imported == 2 and first.interrupted and "429" in first.interrupted
    assert [r["status"] for r in dataverse_reset.requests_seen() if r["status"] == 429] == [429]
    assert len(store.open_requests(list_id)) == 4
    second = service(store, crm, list_id, batch_size=2).import_open()
    assert second == ImportSummary(imported=4)
    assert len(phonecall_creates(dataverse_reset)) == 6
    assert len(dataverse_reset.records("phonecalls")) == 6
    assert len(queue_items(dataverse_reset)) == 6


def race_immediate_with_timer(
    client: DataverseClient, store: TableCallbackStore, request: CallbackRequest
) -> None:
    start = threading.Barrier(2)
    list_id = request.list_id

    def immediate() -> None:
        start.wait()
        service(store, DataverseCallbacks(client), list_id).import_one(
            list_id, request.request_id, request.requested_at
        )

    def timer() -> None:
        start.wait()
        service(store, DataverseCallbacks(client), list_id).import_open()

    threads = [threading.Thread(target=immediate), threading.Thread(target=timer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)


def test_the_immediate_path_and_a_timer_run_racing_import_once(
    client: DataverseClient,
    dataverse_reset: DataverseEmulator,
    store: TableCallbackStore,
    list_id: str,
) -> None:
    for attempt in range(5):
        request = new_request(list_id, f"+35840500000{attempt}", attempt)
        store.add(request)
        race_immediate_with_timer(client, store, request)
        assert store.open_requests(list_id) == []
    assert len(phonecall_creates(dataverse_reset)) == 5
    assert len(dataverse_reset.records("phonecalls")) == 5
    assert len(queue_items(dataverse_reset)) == 5
