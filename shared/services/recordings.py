"""Serving a call's recording behind the link written to D365 (the caller's token is checked)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from shared.domain.enrichment import RecordingAudio
from shared.errors import InvalidInput, NotFound
from shared.services.access import Principal
from shared.services.ports import CallRepository, RecordingContent, RecordingIndex
from shared.services.recording_access import RecordingAccess

_CALL_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_RANGE = re.compile(r"^bytes=\d*-\d*$")


class RecordingPlayback:
    """Finds a call's recording (kept from RecordingFileStatusUpdated) and fetches it from ACS."""

    def __init__(
        self,
        *,
        calls: CallRepository,
        recordings: RecordingIndex,
        content: RecordingContent,
        access: RecordingAccess,
    ) -> None:
        self.calls, self.recordings, self.content = calls, recordings, content
        self.access = access

    def audio(
        self, call_id: str, viewer: Principal, byte_range: str | None = None
    ) -> RecordingAudio:
        """The recording of `call_id` for an authenticated viewer RecordingAccess lets listen;
        NotFound if there is none."""
        if not _CALL_ID.match(call_id):
            raise NotFound("no such call")
        if byte_range is not None and not _RANGE.match(byte_range.strip()):
            raise InvalidInput("Range must be bytes=<start>-<end>")
        call = self.calls.get(call_id)
        if call is None:
            raise NotFound("no such call")
        self.access.check(viewer, call)
        rows = self.recordings.for_server_call(call.server_call_id) if call.server_call_id else []
        if not rows:
            raise NotFound("this call has no recording (yet)")
        latest = max(rows, key=lambda r: _received(r))
        return self.content.fetch(str(latest["content_location"]), byte_range=byte_range)


def _received(row: dict[str, Any]) -> str:
    at = row.get("received_at")
    return at.isoformat() if isinstance(at, datetime) else str(at or "")
