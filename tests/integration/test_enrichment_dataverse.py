"""The enrichment against Azurite and the Dataverse emulator over HTTPS: the custom-column setup
(function and command), the one PATCH and its refusals, and the service with its real adapters."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.queue import QueueClient

from emulators.common.tls import LocalTLS
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from scripts.dataverse_setup import ensure_columns
from shared.adapters.dataverse import DataverseClient, DataverseError
from shared.adapters.enrichment import DataverseActivityEnrichment, TableEnrichmentLog
from shared.adapters.queues import QueueSender
from shared.adapters.repositories import QueueEnrichment, TableCallRepository, TableRecordings
from shared.adapters.tables import TableStore
from shared.domain.calls import Call, CallKind, Direction
from shared.domain.enrichment import (
    ActivityUpdate,
    EnrichmentColumns,
    EnrichmentPolicy,
    Outcome,
    Status,
    WriteResult,
)
from shared.messages import EnrichmentMessage
from shared.services.enrichment import ActivityEnrichment, EnrichmentOptions
from tests.fixtures.entra_dataverse import (
    APP_CLIENT_ID,
    APP_CLIENT_SECRET,
    TENANT_ID,
    app_dataverse_client,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
COLUMNS = EnrichmentColumns("new_")
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
CUSTOM = {"new_recordingurl", "new_callarrivedat", "new_firstansweredat", "new_waittimeseconds"}


@pytest.fixture
def client(
    local_tls: LocalTLS, entra: EntraEmulator, dataverse_reset: DataverseEmulator
) -> DataverseClient:
    return app_dataverse_client(local_tls, entra, dataverse_reset, sleep=lambda s: None)


def writes(dataverse: DataverseEmulator) -> list[dict[str, object]]:
    return [r for r in dataverse.requests_seen() if r["method"] != "GET"]


def seed_activity(dataverse: DataverseEmulator) -> str:
    [activity_id] = dataverse.seed(
        {"phonecalls": [{"subject": "Incoming call", "directioncode": False}]}
    )["phonecalls"]
    return activity_id


# ---------------------------------------------------------------------- the custom columns


def test_setup_creates_the_columns_once_and_a_second_run_writes_nothing(
    client: DataverseClient, dataverse_reset: DataverseEmulator
) -> None:
    first = ensure_columns(client, COLUMNS)
    assert [(r.logical_name, r.action) for r in first] == [
        (name, "created")
        for name in (
            "new_recordingurl",
            "new_callarrivedat",
            "new_firstansweredat",
            "new_waittimeseconds",
            "new_durationseconds",
        )
    ]
    seen_after_first = len(dataverse_reset.requests_seen())

    second = ensure_columns(client, COLUMNS)

    assert {r.action for r in second} == {"exists"}
    later = dataverse_reset.requests_seen()[seen_after_first:]
    assert [r["method"] for r in later] == ["GET"]  # one read, no write
    attributes = {
        a["LogicalName"]: a
        for a in dataverse_reset.store.attributes_of(
            dataverse_reset.store.table_by_logical_name("phonecall")
        )
    }
    assert attributes["new_recordingurl"]["AttributeType"] == "String"
    assert attributes["new_recordingurl"]["MaxLength"] == 500
    assert attributes["new_callarrivedat"]["AttributeType"] == "DateTime"
    assert attributes["new_waittimeseconds"]["AttributeType"] == "Integer"
    assert attributes["new_durationseconds"]["AttributeType"] == "Integer"


def _command_env(local_tls: LocalTLS, entra: EntraEmulator, dataverse: DataverseEmulator) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAVERSE_", "ENTRA_"))}
    env.update(
        {
            "DATAVERSE_URL": dataverse.url,
            "DATAVERSE_CLIENT_ID": APP_CLIENT_ID,
            "DATAVERSE_CLIENT_SECRET": APP_CLIENT_SECRET,
            "ENTRA_AUTHORITY_HOST": entra.url,
            "ENTRA_TENANT_ID": TENANT_ID,
            "TLS_CA_BUNDLE": str(local_tls.ca_path),
        }
    )
    return env


def test_the_setup_command_is_idempotent_and_its_dry_run_reports_missing_columns(
    local_tls: LocalTLS, entra: EntraEmulator, dataverse_reset: DataverseEmulator
) -> None:
    env = _command_env(local_tls, entra, dataverse_reset)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "scripts/dataverse_setup.py", "--columns-only", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    dry = run("--dry-run")
    assert dry.returncode == 1 and "new_recordingurl [String]: missing" in dry.stdout
    assert writes(dataverse_reset) == []
    first = run()
    assert first.returncode == 0, first.stderr
    assert "5 created, 0 unchanged" in first.stdout
    second = run()
    assert second.returncode == 0 and "0 created, 5 unchanged" in second.stdout
    assert len(writes(dataverse_reset)) == 5


def test_a_column_of_another_type_is_reported_not_changed(
    client: DataverseClient, dataverse_reset: DataverseEmulator
) -> None:
    client.request(
        "POST",
        "EntityDefinitions(LogicalName='phonecall')/Attributes",
        body={
            "@odata.type": "Microsoft.Dynamics.CRM.IntegerAttributeMetadata",
            "SchemaName": "new_RecordingUrl",
        },
    )
    results = {r.logical_name: r for r in ensure_columns(client, COLUMNS)}
    assert results["new_recordingurl"].action == "conflict"
    assert results["new_recordingurl"].detail == "is Integer, expected String"


# ---------------------------------------------------------------------- the one PATCH


def full_update(activity_id: str) -> ActivityUpdate:
    return ActivityUpdate(
        activity_id=activity_id,
        recording_url="https://phone.example/api/recordings/c1",
        call_arrived_at=T0,
        first_answered_at=T0 + timedelta(seconds=42),
        wait_seconds=42,
        complete_as=4,
    )


def test_the_patch_writes_link_metrics_and_completion_then_a_closed_activity_refuses(
    client: DataverseClient, dataverse_reset: DataverseEmulator
) -> None:
    ensure_columns(client, COLUMNS)
    activity_id = seed_activity(dataverse_reset)
    writer = DataverseActivityEnrichment(client, COLUMNS)

    assert writer.enrich(full_update(activity_id)) is WriteResult.WRITTEN

    [row] = dataverse_reset.records("phonecalls")
    assert row["new_recordingurl"] == "https://phone.example/api/recordings/c1"
    assert row["new_callarrivedat"].startswith("2026-11-25T09:00:00")
    assert row["new_firstansweredat"].startswith("2026-11-25T09:00:42")
    assert row["new_waittimeseconds"] == 42
    assert (row["statecode"], row["statuscode"]) == (1, 4)
    assert writer.carries(full_update(activity_id))
    assert not writer.carries(replace(full_update(activity_id), recording_url="https://other"))
    assert writer.enrich(full_update(activity_id)) is WriteResult.CLOSED


def test_a_missing_activity_is_not_created_by_the_patch(
    client: DataverseClient, dataverse_reset: DataverseEmulator
) -> None:
    ensure_columns(client, COLUMNS)
    writer = DataverseActivityEnrichment(client, COLUMNS)

    assert writer.enrich(full_update(str(uuid.uuid4()))) is WriteResult.MISSING
    assert dataverse_reset.records("phonecalls") == []


def test_without_the_columns_dataverse_refuses_and_the_error_is_raised(
    client: DataverseClient, dataverse_reset: DataverseEmulator
) -> None:
    activity_id = seed_activity(dataverse_reset)
    with pytest.raises(DataverseError) as refused:
        DataverseActivityEnrichment(client, COLUMNS).enrich(full_update(activity_id))
    assert refused.value.status == 400 and "new_recordingurl" in refused.value.message


def test_a_429_is_waited_out_within_the_same_attempt(
    client: DataverseClient, dataverse_reset: DataverseEmulator
) -> None:
    ensure_columns(client, COLUMNS)
    activity_id = seed_activity(dataverse_reset)
    dataverse_reset.throttle(count=2, retry_after=1)
    before = len(dataverse_reset.requests_seen())

    assert DataverseActivityEnrichment(client, COLUMNS).enrich(full_update(activity_id)) is (
        WriteResult.WRITTEN
    )
    assert [r["status"] for r in dataverse_reset.requests_seen()[before:]] == [429, 429, 204]


# ---------------------------------------------------------------------- the service, for real


@pytest.fixture
def service(
    client: DataverseClient, storage_connection_string: str
) -> Iterator[tuple[ActivityEnrichment, TableStore, QueueClient]]:
    store = TableStore(storage_connection_string)
    queue_name = f"enrich{uuid.uuid4().hex[:12]}"

    class Queue(QueueEnrichment):
        QUEUE = queue_name

    sender = QueueSender(storage_connection_string)
    enrichment = ActivityEnrichment(
        calls=TableCallRepository(store),
        recordings=TableRecordings(store),
        writer=DataverseActivityEnrichment(client, COLUMNS),
        progress=TableEnrichmentLog(store),
        queue=Queue(sender),
        options=EnrichmentOptions(
            "https://phone.example",
            EnrichmentPolicy(base_delay_seconds=30, max_wait_seconds=600, complete_activity=True),
            max_dequeue_count=5,
        ),
    )
    yield enrichment, store, sender.queue(queue_name)
    sender.queue(queue_name).delete_queue()


def test_a_recording_that_never_comes_is_waited_for_then_the_metrics_go_without_it(
    service: tuple[ActivityEnrichment, TableStore, QueueClient],
    client: DataverseClient,
    dataverse_reset: DataverseEmulator,
) -> None:
    enrichment, store, queue = service
    ensure_columns(client, COLUMNS)
    activity_id = seed_activity(dataverse_reset)
    call = Call(
        call_id=str(uuid.uuid4()),
        direction=Direction.INBOUND,
        kind=CallKind.POOL,
        customer_number="+358401234567",
        our_number="+358900100",
        arrived_at=T0,
        pool_id="sales",
        server_call_id=f"srv-{uuid.uuid4()}",
        first_answered_at=T0 + timedelta(seconds=7),
        answered_by="anna",
        ended_at=T0 + timedelta(seconds=90),
        activity_id=activity_id,
        record=True,
        recording_requested=True,
        recording_id="rec-1",
    )
    TableCallRepository(store).add(call)

    waiting = enrichment.handle(
        EnrichmentMessage(call.call_id, "m1", 1), T0 + timedelta(seconds=120)
    )
    assert waiting is not None and waiting.status is Status.WAITING_FOR_RECORDING
    assert queue.get_queue_properties().approximate_message_count == 1  # re-queued, delayed
    assert dataverse_reset.records("phonecalls")[0]["statecode"] == 0

    done = enrichment.handle(EnrichmentMessage(call.call_id, "m2", 1), T0 + timedelta(seconds=690))

    assert done is not None and done.outcome is Outcome.ENRICHED_WITHOUT_RECORDING
    [row] = dataverse_reset.records("phonecalls")
    assert row["new_recordingurl"] is None and row["new_waittimeseconds"] == 7
    assert (row["statecode"], row["statuscode"]) == (1, 4)
    kept = store.get("calls", call.call_id, "enrichment")
    assert kept is not None and kept["outcome"] == "enrichedWithoutRecording"
    assert "not available 600 s after the call ended" in kept["reason"]
