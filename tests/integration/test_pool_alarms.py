"""Pool alarms on the real adapters: Azurite for the log and the alarm state, the ACS emulator's
Email surface through azure-communication-email, the Teams webhook emulator. Concurrent checks
raise an alarm once; a failed delivery is retried, not lost; the emulators answer as the
services do."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from azure.communication.email import EmailClient
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from emulators.acs import AcsEmulator
from emulators.common.tls import LocalTLS
from emulators.teams import TeamsWebhookEmulator
from emulators.teams import start as start_teams
from shared.adapters.pool_monitoring import (
    AcsEmail,
    TableAlarms,
    TablePoolCallLog,
    TeamsWebhook,
    adaptive_card_message,
)
from shared.adapters.repositories import TableAgentStates
from shared.adapters.tables import TableStore
from shared.domain.calls import Outcome, Phase
from shared.domain.directory import Directory, parse_agents, parse_pools
from shared.domain.pool_monitoring import AlarmKind, AlarmThresholds, PoolCallEntry
from shared.errors import DependencyUnavailable
from shared.services.pool_monitor import Channels, PoolMonitor

pytestmark = pytest.mark.integration

SENDER, TO = "DoNotReply@alarms.contoso.example", ("duty@contoso.example",)
T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def teams(local_tls: LocalTLS) -> Iterator[TeamsWebhookEmulator]:
    emulator = start_teams(tls=local_tls)
    yield emulator
    emulator.stop()


class NoChecks:
    def request(self, pool_id: str) -> None:
        pass


def monitor_for(
    pool_id: str,
    store: TableStore,
    acs: AcsEmulator,
    teams: TeamsWebhookEmulator,
    tls: LocalTLS,
) -> PoolMonitor:
    agent = {
        "id": f"{pool_id}-a",
        "name": "A",
        "entraObjectId": str(uuid.uuid4()),
        "systemUserId": str(uuid.uuid4()),
        "acsUserId": "8:acs:it_a",
    }
    pool = {"id": pool_id, "name": "Sales", "numbers": ["+358101999999"], "members": [agent["id"]]}
    agents, pools = json.dumps([agent]), json.dumps([pool])
    ca = str(tls.ca_path)
    return PoolMonitor(
        directory=Directory(parse_agents(agents), parse_pools(pools)),
        agents=TableAgentStates(store),
        log=TablePoolCallLog(store),
        alarms=TableAlarms(store),
        checks=NoChecks(),
        channels=Channels(
            teams=TeamsWebhook(teams.webhook_url, ca_bundle=ca, timeout_seconds=10),
            email=AcsEmail(acs.connection_string, sender=SENDER, recipients=TO, ca_bundle=ca),
        ),
    )


def waiting(pool_id: str, n: int, at: datetime) -> PoolCallEntry:
    return PoolCallEntry(pool_id, f"{pool_id}-call-{n}", at, Phase.WAITING, "+358401234567")


def test_concurrent_checks_raise_an_alarm_once_and_clear_it_once(
    storage_connection_string: str,
    acs_emulator: AcsEmulator,
    teams: TeamsWebhookEmulator,
    local_tls: LocalTLS,
) -> None:
    teams.reset()
    pool_id = f"p{uuid.uuid4().hex[:12]}"
    store = TableStore(storage_connection_string)
    monitor = monitor_for(pool_id, store, acs_emulator, teams, local_tls)
    TableAlarms(store).set_thresholds(pool_id, AlarmThresholds(queue_length=2), "sam", T0)
    log = TablePoolCallLog(store)
    for n in range(3):
        log.record(waiting(pool_id, n, T0), revision=1)

    def race(now: datetime) -> list[int]:
        barrier, raised = threading.Barrier(8), []

        def check() -> None:
            barrier.wait()
            raised.append(len(monitor.check(pool_id, now)))

        threads = [threading.Thread(target=check) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        return raised

    assert sorted(race(T0 + timedelta(seconds=5))) == [0] * 7 + [1]
    assert len(teams.posts()) == 1 and len(acs_emulator.emails()) == 1
    assert sorted(race(T0 + timedelta(seconds=6))) == [0] * 8  # it holds: nothing new

    for n in range(3):  # every caller is answered: the queue is empty
        answered = PoolCallEntry(
            pool_id,
            f"{pool_id}-call-{n}",
            T0,
            Phase.ENDED,
            "+358401234567",
            answered_at=T0 + timedelta(seconds=9),
            ended_at=T0 + timedelta(seconds=60),
            agent_id=f"{pool_id}-a",
            outcome=Outcome.ANSWERED,
        )
        log.record(answered, revision=5)
    assert sorted(race(T0 + timedelta(seconds=70))) == [0] * 7 + [1]
    titles = [p["payload"]["attachments"][0]["content"]["body"][0]["text"] for p in teams.posts()]
    assert titles == ["Sales: Queue length alarm raised", "Sales: Queue length alarm cleared"]
    assert [m["subject"] for m in acs_emulator.emails()] == titles
    state, _ = TableAlarms(store).state(pool_id)
    assert state.active == {} and state.outbox == () and state.serial == 2


def test_a_failed_delivery_stays_in_the_outbox_and_a_later_check_sends_it(
    storage_connection_string: str,
    acs_emulator: AcsEmulator,
    teams: TeamsWebhookEmulator,
    local_tls: LocalTLS,
) -> None:
    teams.reset()
    pool_id = f"p{uuid.uuid4().hex[:12]}"
    store = TableStore(storage_connection_string)
    monitor = monitor_for(pool_id, store, acs_emulator, teams, local_tls)
    TableAlarms(store).set_thresholds(pool_id, AlarmThresholds(queue_length=1), "sam", T0)
    TablePoolCallLog(store).record(waiting(pool_id, 0, T0), revision=1)
    teams.fail_next(1)

    assert [e.kind for e in monitor.check(pool_id, T0)] == [AlarmKind.QUEUE_LENGTH]
    assert teams.posts() == [] and acs_emulator.emails() == []  # Teams first, then e-mail
    state, _ = TableAlarms(store).state(pool_id)
    assert len(state.outbox) == 1 and AlarmKind.QUEUE_LENGTH in state.active
    monitor.check(pool_id, T0 + timedelta(seconds=10))  # too soon: maybe another is sending
    assert teams.posts() == []
    monitor.check(pool_id, T0 + timedelta(seconds=61))
    assert len(teams.posts()) == 1 and len(acs_emulator.emails()) == 1
    assert TableAlarms(store).state(pool_id)[0].outbox == ()


def test_the_log_keeps_the_newest_revision_of_a_call(storage_connection_string: str) -> None:
    pool_id = f"p{uuid.uuid4().hex[:12]}"
    log = TablePoolCallLog(TableStore(storage_connection_string))
    newer = PoolCallEntry(
        pool_id, "c1", T0, Phase.CONNECTED, "+358401234567", answered_at=T0, agent_id="anna"
    )
    log.record(newer, revision=4)
    log.record(waiting(pool_id, 1, T0), revision=3)  # same row key? no: another call id
    log.record(PoolCallEntry(pool_id, "c1", T0, Phase.WAITING, "+358401234567"), revision=2)
    entries = {e.call_id: e for e in log.recent(pool_id, T0 - timedelta(hours=1), 10)}
    assert entries["c1"].phase is Phase.CONNECTED and entries["c1"].agent_id == "anna"
    assert log.recent(pool_id, T0 + timedelta(minutes=1), 10) == []  # arrived before `since`


def test_acs_email_answers_as_the_service_does(
    acs_emulator: AcsEmulator, local_tls: LocalTLS
) -> None:
    client = EmailClient.from_connection_string(
        acs_emulator.connection_string, connection_verify=str(local_tls.ca_path)
    )
    message = {
        "senderAddress": SENDER,
        "recipients": {"to": [{"address": "duty@contoso.example"}]},
        "content": {"subject": "Test", "plainText": "Hello"},
    }
    poller = client.begin_send(message, operation_id="op-1", polling_interval=0)
    result = poller.result(timeout=30)
    assert (result["id"], result["status"]) == ("op-1", "Succeeded")
    client.begin_send(message, operation_id="op-1", polling=False)  # the same operation again
    assert [m["operationId"] for m in acs_emulator.emails()] == ["op-1"]

    with pytest.raises(HttpResponseError) as bad:
        client.begin_send({**message, "content": {"plainText": "no subject"}}, polling=False)
    assert bad.value.status_code == 400 and bad.value.error.code == "BadRequest"

    wrong_key = (
        acs_emulator.connection_string.split("accesskey=")[0]
        + "accesskey="
        + ("d3Jvbmcta2V5LW5vdC10aGUtcmVzb3VyY2Vz")
    )
    stranger = EmailClient.from_connection_string(
        wrong_key, connection_verify=str(local_tls.ca_path)
    )
    with pytest.raises(ClientAuthenticationError):
        stranger.begin_send(message, polling=False)

    status = requests.get(
        f"{acs_emulator.url}/emails/operations/op-1?api-version=2025-09-01",
        verify=str(local_tls.ca_path),
        timeout=10,
    )
    assert status.status_code == 401  # unsigned: refused like every resource call


def test_the_teams_webhook_takes_adaptive_cards_only(
    teams: TeamsWebhookEmulator, local_tls: LocalTLS
) -> None:
    teams.reset()
    ca = str(local_tls.ca_path)
    TeamsWebhook(teams.webhook_url, ca_bundle=ca, timeout_seconds=10).post(
        "Sales: alarm", [("Pool", "Sales")], raised=True
    )
    assert teams.posts()[0]["payload"] == adaptive_card_message(
        "Sales: alarm", [("Pool", "Sales")], True
    )
    plain = requests.post(teams.webhook_url, json={"text": "hi"}, verify=ca, timeout=10)
    assert plain.status_code == 400 and plain.json()["error"]["code"] == "InvalidRequestContent"
    forged = teams.webhook_url.replace("sig=", "sig=x")
    with pytest.raises(DependencyUnavailable):
        TeamsWebhook(forged, ca_bundle=ca, timeout_seconds=10).post("x", [], raised=True)
    assert len(teams.posts()) == 1


class CountingStore(TableStore):
    """Azurite, with the name of each request the adapters make."""

    def __init__(self, connection_string: str) -> None:
        super().__init__(connection_string)
        self.made: list[str] = []

    def get_with_etag(self, table: str, pk: str, rk: str) -> tuple[dict[str, Any], str] | None:
        self.made.append("read")
        return super().get_with_etag(table, pk, rk)

    def query_versions(self, *args: Any, **kwargs: Any) -> list[tuple[dict[str, Any], str]]:
        self.made.append("query")
        return super().query_versions(*args, **kwargs)

    def insert(self, table: str, entity: dict[str, Any]) -> str:
        self.made.append("insert")
        return super().insert(table, entity)

    def replace_if_unchanged(self, table: str, entity: dict[str, Any], etag: str) -> str:
        self.made.append("replace")
        return super().replace_if_unchanged(table, entity, etag)

    def upsert(self, table: str, entity: dict[str, Any], *, replace: bool = False) -> None:
        self.made.append("upsert")
        super().upsert(table, entity, replace=replace)


def test_a_log_rows_next_write_is_one_conditional_replace_and_a_stale_guess_retries(
    storage_connection_string: str,
) -> None:
    pool_id = f"p{uuid.uuid4().hex[:12]}"
    store = CountingStore(storage_connection_string)
    here, there = TablePoolCallLog(store), TablePoolCallLog(store)  # two processes' memories
    arrival = PoolCallEntry(pool_id, "c1", T0, Phase.WAITING, "+358401234567")
    answered = replace(arrival, phase=Phase.CONNECTED, answered_at=T0, agent_id="anna")
    ended = replace(answered, phase=Phase.ENDED, ended_at=T0, outcome=Outcome.ANSWERED)

    here.record(arrival, revision=0)
    here.record(answered, revision=3)
    assert store.made == ["insert", "replace"]  # no read: the ETag of its own insert

    store.made.clear()
    there.record(answered, revision=5)  # knows nothing of the row: reads it once
    assert store.made == ["read", "replace"]

    store.made.clear()
    here.record(ended, revision=7)  # its ETag is stale now: refused, read, written
    assert store.made == ["replace", "read", "replace"]
    store.made.clear()
    here.record(answered, revision=6)  # older than what it wrote: nothing to do, nothing read
    assert store.made == []
    [row] = log_rows(store, pool_id)
    assert (row["revision"], row["phase"]) == (7, "ended")

    # The row is gone (a reset): the guess is refused (404), so it is read and inserted.
    store.delete("poolcalls", pool_id, row["RowKey"])
    store.made.clear()
    here.record(ended, revision=8)
    assert store.made == ["replace", "read", "insert"]
    assert [r["revision"] for r in log_rows(store, pool_id)] == [8]


def test_concurrent_writers_of_one_log_row_leave_the_newest_revision(
    storage_connection_string: str,
) -> None:
    pool_id = f"p{uuid.uuid4().hex[:12]}"
    store = TableStore(storage_connection_string)
    entry = PoolCallEntry(pool_id, "c1", T0, Phase.WAITING, "+358401234567")
    TablePoolCallLog(store).record(entry, revision=0)
    logs = [TablePoolCallLog(store) for _ in range(4)]  # four processes, each a stale guess
    for log in logs:
        log.record(entry, revision=1)
    barrier = threading.Barrier(8)

    def write(n: int) -> None:
        barrier.wait()
        logs[n % 4].record(replace(entry, customer_number=f"+35840{n}"), revision=10 + n)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    [row] = log_rows(store, pool_id)
    assert (row["revision"], row["customerNumber"]) == (17, "+358407")


def test_which_pools_are_watched_is_read_once_per_watch_period(
    storage_connection_string: str,
) -> None:
    pool_id = f"p{uuid.uuid4().hex[:12]}"
    store, clock = CountingStore(storage_connection_string), [100.0]
    alarms = TableAlarms(store, watch_seconds=30, clock=lambda: clock[0])
    other_process = TableAlarms(store, watch_seconds=30, clock=lambda: clock[0])

    assert alarms.watched(pool_id) is False and store.made == ["query"]
    clock[0] += 29
    assert alarms.watched(pool_id) is False and store.made == ["query"]  # remembered

    # Another process's supervisor sets an alarm: this one learns it when its memory lapses.
    other_process.set_thresholds(pool_id, AlarmThresholds(queue_length=3), "sam", T0)
    assert alarms.watched(pool_id) is False
    clock[0] += 1
    store.made.clear()
    assert alarms.watched(pool_id) is True and store.made == ["query"]
    # The process that set it knows at once, without a read.
    store.made.clear()
    assert other_process.watched(pool_id) is True and store.made == []


def log_rows(store: TableStore, pool_id: str) -> list[dict[str, Any]]:
    return list(store.query("poolcalls", "PartitionKey eq @pk", {"pk": pool_id}))
