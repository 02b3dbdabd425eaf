"""The storage adapters against a real Azurite: mapping, ETag retries, transactions, queues."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum

import pytest
from azure.storage.queue import QueueClient

from shared.adapters.entities import from_entity, to_entity
from shared.adapters.queues import QueueSender
from shared.adapters.tables import ConcurrencyConflict, TableStore, TransactionFailed

pytestmark = pytest.mark.integration


class Colour(Enum):
    RED = "red"


@dataclass(frozen=True)
class Sample:
    name: str
    at: datetime
    count: int
    colour: Colour
    tags: list[str]
    note: str | None = None


def _table() -> str:
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def store(storage_connection_string: str) -> TableStore:
    return TableStore(storage_connection_string)


def test_a_dataclass_round_trips_with_its_datetime_in_utc(store: TableStore) -> None:
    table = _table()
    helsinki = timezone(timedelta(hours=2))
    sample = Sample("a", datetime(2026, 1, 2, 12, 0, tzinfo=helsinki), 3, Colour.RED, ["x", "y"])

    store.insert(table, to_entity(sample, partition_key="p", row_key="r"))
    stored = store.get(table, "p", "r")

    assert stored is not None
    back = from_entity(Sample, stored)
    assert back == Sample("a", datetime(2026, 1, 2, 10, 0, tzinfo=UTC), 3, Colour.RED, ["x", "y"])
    assert back.at.tzinfo == UTC
    assert "note" not in stored  # None is not stored


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_entity(
            Sample("a", datetime(2026, 1, 1), 1, Colour.RED, []), partition_key="p", row_key="r"
        )


def test_inserting_an_existing_key_is_a_conflict(store: TableStore) -> None:
    table = _table()
    store.insert(table, {"PartitionKey": "p", "RowKey": "r", "v": 1})
    with pytest.raises(ConcurrencyConflict):
        store.insert(table, {"PartitionKey": "p", "RowKey": "r", "v": 2})
    assert store.get(table, "p", "r") == {"PartitionKey": "p", "RowKey": "r", "v": 1}


def test_concurrent_read_modify_writes_are_retried_and_every_update_survives(
    store: TableStore,
) -> None:
    table = _table()
    store.insert(table, {"PartitionKey": "p", "RowKey": "counter", "n": 0, "who": "[]"})
    conflicts = {"seen": 0}

    def add(who: str) -> None:
        def mutate(entity: dict | None) -> dict:
            assert entity is not None
            return {"n": entity["n"] + 1, "who": json.dumps([*json.loads(entity["who"]), who])}

        store.read_modify_write(table, "p", "counter", mutate)

    barrier = threading.Barrier(8)

    failures: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            for j in range(5):
                add(f"{i}-{j}")
        except BaseException as exc:  # a thread's failure must fail the test, not vanish
            failures.append(exc)

    original = store.replace_if_unchanged

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return original(*args, **kwargs)
        except ConcurrencyConflict:
            conflicts["seen"] += 1
            raise

    store.replace_if_unchanged = counting  # type: ignore[method-assign]
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    final = store.get(table, "p", "counter")
    assert final is not None
    assert final["n"] == 40
    assert len(set(json.loads(final["who"]))) == 40
    assert conflicts["seen"] > 0, "the test must actually race to prove the retry"


def test_read_modify_write_creates_when_absent_and_can_decline(store: TableStore) -> None:
    table = _table()
    created = store.read_modify_write(table, "p", "r", lambda e: {"v": 1} if e is None else None)
    assert created is not None and created["v"] == 1
    unchanged = store.read_modify_write(table, "p", "r", lambda e: None)
    assert unchanged is not None and unchanged["v"] == 1


def test_a_transaction_writes_all_or_nothing(store: TableStore) -> None:
    table = _table()
    store.insert(table, {"PartitionKey": "p", "RowKey": "exists", "v": 1})

    store.transact(
        table,
        [
            ("create", {"PartitionKey": "p", "RowKey": "a"}),
            ("upsert", {"PartitionKey": "p", "RowKey": "b", "v": 2}),
        ],
    )
    assert store.get(table, "p", "a") is not None and store.get(table, "p", "b") is not None

    with pytest.raises(ConcurrencyConflict):
        store.transact(
            table,
            [
                ("create", {"PartitionKey": "p", "RowKey": "c"}),
                ("create", {"PartitionKey": "p", "RowKey": "exists"}),
            ],
        )
    assert store.get(table, "p", "c") is None


def test_a_transaction_across_partitions_is_refused_as_azure_would(store: TableStore) -> None:
    with pytest.raises(TransactionFailed, match="one partition"):
        store.transact(
            _table(),
            [
                ("create", {"PartitionKey": "p1", "RowKey": "a"}),
                ("create", {"PartitionKey": "p2", "RowKey": "a"}),
            ],
        )


def test_a_queued_message_is_base64_and_stays_invisible_for_its_delay(
    storage_connection_string: str,
) -> None:
    queue = "q" + uuid.uuid4().hex[:12]
    sender = QueueSender(storage_connection_string)
    sender.send(queue, {"callId": "c1"}, delay_seconds=2)
    raw = QueueClient.from_connection_string(storage_connection_string, queue)

    assert list(raw.receive_messages()) == []  # not yet visible
    deadline = time.monotonic() + 10
    messages: list = []
    while not messages and time.monotonic() < deadline:
        messages = list(raw.receive_messages())
        time.sleep(0.2)
    assert len(messages) == 1
    assert json.loads(base64.b64decode(messages[0].content)) == {"callId": "c1"}


def test_ping_reaches_both_services(store: TableStore, storage_connection_string: str) -> None:
    from shared.services.health import check_health

    report = check_health(
        "t", [("tables", store), ("queues", QueueSender(storage_connection_string))]
    )
    assert report.healthy, report


def test_ping_fails_fast_when_storage_is_down() -> None:
    dead = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
        "QueueEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    with pytest.raises(Exception):  # noqa: B017 - any failure: the point is that it fails
        TableStore(dead, timeout_seconds=1, retry_total=0).ping()


def test_a_version_read_by_a_query_or_a_write_guards_the_next_write(store: TableStore) -> None:
    table = _table()
    etag = store.insert(table, {"PartitionKey": "p", "RowKey": "r", "n": 1})
    [(row, queried)] = store.query_versions(table, "PartitionKey eq @pk", {"pk": "p"})
    assert queried == etag and row["n"] == 1
    newer = store.replace_if_unchanged(table, {"PartitionKey": "p", "RowKey": "r", "n": 2}, etag)
    with pytest.raises(ConcurrencyConflict):  # the queried version is stale now
        store.replace_if_unchanged(table, {"PartitionKey": "p", "RowKey": "r", "n": 3}, queried)
    seen: list[int] = []
    stored = store.read_modify_write(
        table,
        "p",
        "r",
        lambda e: {**(e or {}), "n": (e or {})["n"] + 10},
        known=(row, queried),  # stale: refused, then read again
        written=lambda e, t: seen.append(e["n"]),
    )
    assert stored is not None and stored["n"] == 12 and seen == [12]
    assert store.get_with_etag(table, "p", "r") not in (None, (row, newer))
