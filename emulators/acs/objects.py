"""Recording content (/v1/objects/): what a RecordingFileStatusUpdated event's contentLocation,
metadataLocation and deleteLocation point at; HMAC-signed unless configured otherwise."""

from __future__ import annotations

import re

from werkzeug.wrappers import Request, Response

from emulators.acs.surface import AcsParts, error_response
from emulators.common.server import json_response

OBJECT_PATH = re.compile(r"/v1/objects/(?P<doc>[^/]+)(?P<rest>/content/(audio|acsmetadata))?\Z")
RANGE = re.compile(r"bytes=(\d+)-(\d*)\Z")


class RecordingContent:
    """GET the audio (with Range) or the metadata of a recording document, DELETE it."""

    prefix = "/v1/objects/"

    def __init__(self, parts: AcsParts) -> None:
        self.parts = parts

    def handle(self, request: Request) -> Response:
        world = self.parts.world
        found = OBJECT_PATH.match(request.path)
        if found is None:
            response = error_response(404, "NotFound", f"No resource at '{request.path}'.")
        elif (
            world.config.recording_content_requires_auth
            and (
                denied := self.parts.authenticate(
                    request, [request.host, request.headers.get("x-ms-host", "")]
                )
            )
            is not None
        ):
            response = denied
        else:
            response = self._object(request, found["doc"], found["rest"])
        self.parts.requests.add(request, "recordingContent", response.status_code)
        return response

    def _object(self, request: Request, document_id: str, suffix: str | None) -> Response:
        world = self.parts.world
        missing = error_response(404, "NotFound", f"No recording document '{document_id}'.")
        if suffix is None:
            if request.method != "DELETE":
                return error_response(405, "MethodNotAllowed", request.method)
            return Response(status=200) if world.delete_recording_content(document_id) else missing
        if request.method != "GET":
            return error_response(405, "MethodNotAllowed", request.method)
        if suffix.endswith("acsmetadata"):
            metadata = world.recording_metadata(document_id)
            return missing if metadata is None else json_response(metadata)
        content = world.recording_content(document_id)
        if content is None:
            return missing
        ranged = RANGE.match(request.headers.get("Range", ""))
        if ranged:
            start = int(ranged[1])
            end = int(ranged[2]) if ranged[2] else len(content) - 1
            return Response(
                content[start : end + 1],
                status=206,
                content_type="audio/wav",
                headers={"Content-Range": f"bytes {start}-{end}/{len(content)}"},
            )
        return Response(content, status=200, content_type="audio/wav")
