"""The enrichment's PATCH body, the recording endpoint's service and the HMAC signing (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from emulators.acs import hmac_auth
from shared.adapters.acs_recordings import (
    AcsRecordingContent,
    RecordingLocationRefused,
    hmac_headers,
)
from shared.adapters.dataverse import DataverseClient
from shared.adapters.enrichment import (
    DataverseActivityEnrichment,
    state_from_entity,
    state_to_entity,
)
from shared.domain.calls import Call, CallKind, Direction
from shared.domain.enrichment import (
    ActivityUpdate,
    EnrichmentColumns,
    EnrichmentState,
    Outcome,
    RecordingAudio,
    Status,
)
from shared.errors import InvalidInput, NotFound
from shared.services.recordings import RecordingPlayback
from tests.unit.fakes import FakeCalls

pytestmark = pytest.mark.unit
KEY = "a2V5LWZvci10ZXN0cy1vbmx5LW5vdC1hLXNlY3JldA=="
CALL_ID = "0b8f4a57-2f0d-4b6e-9a43-5c1d2e3f4a5b"
T = datetime(2026, 11, 25, 9, 0, 30, tzinfo=UTC)


def test_the_patch_body_uses_the_prefixed_columns_and_utc_times() -> None:
    writer = DataverseActivityEnrichment(cast(DataverseClient, None), EnrichmentColumns("new_"))
    body = writer.body(
        ActivityUpdate(
            activity_id="a",
            recording_url="https://phone.example/api/recordings/x",
            call_arrived_at=datetime(2026, 11, 25, 9, 0, tzinfo=UTC),
            first_answered_at=T,
            wait_seconds=30,
            complete_as=4,
        )
    )
    assert body == {
        "new_recordingurl": "https://phone.example/api/recordings/x",
        "new_callarrivedat": "2026-11-25T09:00:00Z",
        "new_firstansweredat": "2026-11-25T09:00:30Z",
        "new_waittimeseconds": 30,
        "statecode": 1,
        "statuscode": 4,
    }
    assert writer.body(ActivityUpdate(activity_id="a", complete_as=2)) == {
        "statecode": 1,
        "statuscode": 2,
    }


def test_the_progress_row_round_trips() -> None:
    state = EnrichmentState(
        "c",
        Status.DONE,
        Outcome.ENRICHED,
        "written",
        attempts=3,
        dequeue_count=2,
        writes=1,
        recording_url="https://x/api/recordings/c",
        updated_at=T,
    )
    entity = state_to_entity(state)
    assert (entity["PartitionKey"], entity["RowKey"]) == ("c", "enrichment")
    assert state_from_entity(entity) == state


# ---------------------------------------------------------------------- signing


def test_the_signature_is_what_acs_verifies() -> None:
    url = "https://127.0.0.1:7443/v1/objects/0-emu-d1-abc/content/audio"
    headers = hmac_headers(KEY, "GET", url, "127.0.0.1:7443")
    lowered = {k.lower(): v for k, v in headers.items()}
    assert (
        hmac_auth.verify(
            access_key=KEY,
            verb="GET",
            path_and_query="/v1/objects/0-emu-d1-abc/content/audio",
            hosts=["127.0.0.1:7443"],
            headers=lowered,
            body=b"",
        )
        is None
    )
    wrong = hmac_auth.verify(
        access_key="d3Jvbmcta2V5",
        verb="GET",
        path_and_query="/v1/objects/0-emu-d1-abc/content/audio",
        hosts=["127.0.0.1:7443"],
        headers=lowered,
        body=b"",
    )
    assert wrong is not None


def test_the_access_key_is_only_ever_signed_for_acs_recording_hosts() -> None:
    content = AcsRecordingContent(
        f"endpoint=https://contoso.communication.azure.com;accesskey={KEY}"
    )
    content.check_location("https://eu.asm.skype.com/v1/objects/x/content/audio")
    content.check_location("https://contoso.communication.azure.com/v1/objects/x/content/audio")
    for bad in (
        "http://eu.asm.skype.com/v1/objects/x/content/audio",
        "https://evil.example/v1/objects/x/content/audio",
        "https://asm.skype.com.evil.example/x",
        "not a url",
    ):
        with pytest.raises(RecordingLocationRefused):
            content.check_location(bad)


# ---------------------------------------------------------------------- the recording endpoint


@dataclass
class FakeContent:
    fetched: list[tuple[str, str | None]] = field(default_factory=list)

    def fetch(self, content_location: str, *, byte_range: str | None = None) -> RecordingAudio:
        self.fetched.append((content_location, byte_range))
        return RecordingAudio(200, b"RIFF", "audio/wav")


@dataclass
class Rows:
    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def for_server_call(self, server_call_id: str) -> list[dict[str, Any]]:
        return self.rows.get(server_call_id, [])


def playback() -> tuple[RecordingPlayback, FakeContent, Rows]:
    from tests.unit.test_recording_access import SUPERVISOR, access

    calls, rows, content = FakeCalls(), Rows(), FakeContent()
    calls.add(
        Call(
            CALL_ID,
            Direction.INBOUND,
            CallKind.POOL,
            "+358401234567",
            "+358900100",
            T,
            server_call_id="srv",
        )
    )
    service = RecordingPlayback(calls=calls, recordings=rows, content=content, access=access(set()))
    # The viewer is a supervisor here (who may listen is tests/unit/test_recording_access.py).
    bound = _AsViewer(service, SUPERVISOR)
    return bound, content, rows  # type: ignore[return-value]


class _AsViewer:
    def __init__(self, service: RecordingPlayback, viewer: object) -> None:
        self.service, self.viewer = service, viewer

    def audio(self, call_id: str, byte_range: str | None = None) -> RecordingAudio:
        return self.service.audio(call_id, self.viewer, byte_range)  # type: ignore[arg-type]


def test_the_latest_recording_of_the_call_is_fetched() -> None:
    service, content, rows = playback()
    rows.rows["srv"] = [
        {"content_location": "https://acs/old", "received_at": T},
        {"content_location": "https://acs/new", "received_at": T.replace(minute=5)},
    ]
    assert service.audio(CALL_ID, "bytes=0-3").content == b"RIFF"
    assert content.fetched == [("https://acs/new", "bytes=0-3")]


def test_unknown_calls_missing_recordings_and_bad_ranges_are_refused() -> None:
    service, content, rows = playback()
    with pytest.raises(NotFound):
        service.audio(CALL_ID)  # no recording yet
    with pytest.raises(NotFound):
        service.audio("not-a-call-id")
    with pytest.raises(NotFound):
        service.audio("0b8f4a57-2f0d-4b6e-9a43-000000000000")
    rows.rows["srv"] = [{"content_location": "https://acs/x", "received_at": T}]
    with pytest.raises(InvalidInput):
        service.audio(CALL_ID, "items=1-2")
    assert content.fetched == []
