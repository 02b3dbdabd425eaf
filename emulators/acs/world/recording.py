"""Call recording: start, pause, resume, stop, and the files a finished recording leaves
(content, metadata, delete) with its RecordingFileStatusUpdated event."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from emulators.acs.errors import AcsError
from emulators.acs.world.events import Events
from emulators.acs.world.identifiers import b64url
from emulators.acs.world.model import RECORDING_KIND, Call, Recording


class Recordings(Events):
    """The recording REST operations and the recording documents."""

    def _finish_recording(self, recording: Recording, session_end_reason: str) -> None:
        recording.state = "inactive"
        recording.stopped_at = datetime.now(UTC)
        recording.document_id = f"0-emu-d{uuid.uuid4().hex[:2]}-{uuid.uuid4().hex}"
        self.documents[recording.document_id] = recording
        objects = f"{self.base_url}/v1/objects/{recording.document_id}"
        duration_ms = int((recording.stopped_at - recording.started_at).total_seconds() * 1000)
        data = {
            "recordingStorageInfo": {
                "recordingChunks": [
                    {
                        "documentId": recording.document_id,
                        "index": 0,
                        "endReason": "SessionEnded",
                        "contentLocation": f"{objects}/content/audio",
                        "metadataLocation": f"{objects}/content/acsmetadata",
                        "deleteLocation": objects,
                    }
                ]
            },
            "recordingStartTime": recording.started_at.isoformat().replace("+00:00", "Z"),
            "recordingDurationMs": duration_ms,
            "recordingContentType": title_case(recording.content_type),
            "recordingChannelType": title_case(recording.channel_type),
            "recordingFormatType": title_case(recording.format_type),
            "sessionEndReason": session_end_reason,
        }
        subject = (
            f"/recording/call/{recording.correlation_id}/serverCallId/{recording.server_call_id}"
        )
        self._emit_grid(
            "Microsoft.Communication.RecordingFileStatusUpdated",
            subject,
            data,
            self.config.recording_webhook,
            "RECORDINGFILESTATUSUPDATED",
        )

    def start_recording(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            call: Call | None = None
            if body.get("callConnectionId"):
                call = self._call(str(body["callConnectionId"]))
            else:
                locator = body.get("callLocator") or {}
                server_call_id = locator.get("serverCallId")
                if not server_call_id:
                    raise AcsError(
                        400,
                        "BadRequest",
                        "A serverCallLocator or callConnectionId is required "
                        "(group and room calls are not emulated).",
                    )
                call = next(
                    (
                        c
                        for c in self.calls.values()
                        if c.server_call_id == server_call_id and c.active
                    ),
                    None,
                )
                if call is None:
                    raise AcsError(404, "8522", "No active call has this server call id.")
            if call.state != "connected":
                raise AcsError(
                    400, "8501", "Action is not valid when call is not in Established state."
                )
            if any(not self.recordings[r].finished for r in call.recording_ids):
                raise AcsError(400, "BadRequest", "The call is already being recorded.")
            state_callback = body.get("recordingStateCallbackUri")
            if state_callback:
                self._callback(state_callback, "RecordingStateCallbackUri")
            recording_id = b64url(
                json.dumps(
                    {
                        "PlatformEndpointId": str(uuid.uuid4()),
                        "ResourceSpecificId": str(uuid.uuid4()),
                    }
                ).encode()
            )
            paused = bool(body.get("pauseOnStart"))
            recording = Recording(
                recording_id=recording_id,
                call_connection_id=call.call_connection_id,
                server_call_id=call.server_call_id,
                correlation_id=call.correlation_id,
                state="inactive" if paused else "active",
                content_type=body.get("recordingContentType") or "audioVideo",
                channel_type=body.get("recordingChannelType") or "mixed",
                format_type=body.get("recordingFormatType") or "mp4",
                callback_uri=state_callback,
                started_at=datetime.now(UTC),
                external_storage=body.get("externalStorage"),
                participants=list(call.participants),
            )
            self.recordings[recording_id] = recording
            call.recording_ids.append(recording_id)
            self._recording_state_changed(recording)
            return {
                "recordingId": recording_id,
                "recordingState": recording.state,
                "recordingKind": RECORDING_KIND,
            }

    def _recording(self, recording_id: str) -> Recording:
        recording = self.recordings.get(recording_id)
        if recording is None or recording.finished:
            raise AcsError(404, "8522", f"Recording '{recording_id}' not found.")
        return recording

    def _recording_state_changed(self, recording: Recording) -> None:
        call = self.calls.get(recording.call_connection_id)
        if call is None or not call.active:
            return
        self._emit(
            call,
            "RecordingStateChanged",
            {
                "recordingId": recording.recording_id,
                "state": recording.state,
                "startDateTime": recording.started_at.isoformat().replace("+00:00", "Z"),
                "recordingKind": RECORDING_KIND,
            },
            operation_context=None,
            callback_uri=recording.callback_uri,
        )

    def get_recording(self, recording_id: str) -> dict[str, Any]:
        with self._lock:
            recording = self._recording(recording_id)
            return {
                "recordingId": recording_id,
                "recordingState": recording.state,
                "recordingKind": RECORDING_KIND,
            }

    def stop_recording(self, recording_id: str) -> None:
        with self._lock:
            recording = self._recording(recording_id)
            recording.state = "inactive"
            self._recording_state_changed(recording)
            self._finish_recording(recording, "RecordingStopped")

    def set_recording_paused(self, recording_id: str, paused: bool) -> None:
        with self._lock:
            recording = self._recording(recording_id)
            state = "inactive" if paused else "active"
            if recording.state != state:
                recording.state = state
                self._recording_state_changed(recording)

    def recording_content(self, document_id: str) -> bytes | None:
        with self._lock:
            recording = self.documents.get(document_id)
            return None if recording is None or recording.content_deleted else self._wav

    def recording_metadata(self, document_id: str) -> dict[str, Any] | None:
        with self._lock:
            recording = self.documents.get(document_id)
            if recording is None or recording.content_deleted or recording.stopped_at is None:
                return None
            return {
                "resourceId": self.resource_id,
                "callId": recording.correlation_id,
                "chunkDocumentId": document_id,
                "chunkIndex": 0,
                "chunkStartTime": recording.started_at.isoformat().replace("+00:00", "Z"),
                "chunkDuration": (recording.stopped_at - recording.started_at).total_seconds()
                * 1000,
                "pauseResumeIntervals": [],
                "recordingInfo": {
                    "contentType": recording.content_type,
                    "channelType": recording.channel_type,
                    "format": recording.format_type,
                    "audioConfiguration": {"sampleRate": 16000, "bitRate": 256000, "channels": 1},
                },
                "participants": [{"participantId": raw} for raw in recording.participants],
            }

    def delete_recording_content(self, document_id: str) -> bool:
        with self._lock:
            recording = self.documents.get(document_id)
            if recording is None or recording.content_deleted:
                return False
            recording.content_deleted = True
            return True


def title_case(value: str) -> str:
    return value[:1].upper() + value[1:]
