"""Recording content from ACS: a GET of a RecordingFileStatusUpdated contentLocation, HMAC-signed
with the access key (or with the managed identity's bearer token, where no key is configured).

The SDK's `download_recording` accepts only Microsoft recording hosts, so the emulator's content
cannot be fetched through it; this signs the request exactly as the SDK's HMAC policy does
(string to sign over the ACS endpoint's host, `x-ms-host` naming it) and refuses any other host,
so the signature never goes anywhere but to ACS.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from shared.adapters.acs_access import AcsAccess
from shared.domain.enrichment import RecordingAudio
from shared.errors import DependencyUnavailable, NotFound

if TYPE_CHECKING:
    import requests

# The SDK's recording_url_validator: where ACS serves recording content.
RECORDING_HOST_SUFFIXES = (
    ".asm.skype.com",
    ".asyncgw.teams.microsoft.com",
    ".ams.gov.teams.microsoft.us",
)
SIGNED_HEADERS = "x-ms-date;host;x-ms-content-sha256"


class RecordingLocationRefused(ValueError):
    """The content location is not an ACS recording host: nothing is signed or sent."""


def _parse_connection_string(connection_string: str) -> tuple[str, str]:
    parts = dict(
        part.split("=", 1)
        for part in connection_string.strip().strip(";").split(";")
        if "=" in part
    )
    lowered = {k.lower(): v for k, v in parts.items()}
    return lowered["endpoint"].rstrip("/"), lowered["accesskey"]


def hmac_headers(
    access_key: str, method: str, url: str, signed_host: str, now: datetime | None = None
) -> dict[str, str]:
    """The HMAC-SHA256 headers of a body-less request, as the ACS SDK computes them."""
    parts = urlsplit(url)
    path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
    date = (now or datetime.now(UTC)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    content_hash = base64.b64encode(hashlib.sha256(b"").digest()).decode()
    to_sign = f"{method.upper()}\n{path_and_query}\n{date};{signed_host};{content_hash}"
    digest = hmac.new(base64.b64decode(access_key), to_sign.encode(), hashlib.sha256).digest()
    signature = base64.b64encode(digest).decode()
    return {
        "x-ms-date": date,
        "x-ms-content-sha256": content_hash,
        "Authorization": f"HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature={signature}",
    }


class AcsRecordingContent:
    """Fetches recording content with the ACS resource's access key, or with an Entra ID token
    of the app's managed identity (one session per process)."""

    def __init__(
        self,
        connection: str | AcsAccess,
        *,
        ca_bundle: str | None = None,
        timeout_seconds: int = 15,
    ) -> None:
        self._access = AcsAccess.of(connection)
        if self._access.uses_identity:
            endpoint, self._access_key = self._access.endpoint.rstrip("/"), ""
        else:
            endpoint, self._access_key = _parse_connection_string(self._access.connection_string)
        parsed = urlsplit(endpoint)
        self._signed_host = parsed.netloc  # what the SDK's HMAC policy signs
        self._endpoint_host = (parsed.hostname or "").lower()
        self._ca_bundle, self._timeout = ca_bundle, timeout_seconds
        self._session: requests.Session | None = None
        self._lock = threading.Lock()

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            with self._lock:
                if self._session is None:
                    import requests

                    self._session = requests.Session()
        return self._session

    def check_location(self, url: str) -> None:
        """Refuse a location that is not https on an ACS recording host (or the ACS endpoint's
        own host, which is where a local emulator serves content)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or not host:
            raise RecordingLocationRefused("a recording location must be an absolute https URL")
        if host != self._endpoint_host and not host.endswith(RECORDING_HOST_SUFFIXES):
            raise RecordingLocationRefused(f"{host} is not an ACS recording host")

    def fetch(self, content_location: str, *, byte_range: str | None = None) -> RecordingAudio:
        """GET the content (optionally a `Range: bytes=...`); NotFound when ACS has none."""
        import requests

        self.check_location(content_location)
        if self._access.uses_identity:
            from azure.core.exceptions import ClientAuthenticationError

            try:
                headers = {"Authorization": f"Bearer {self._access.bearer_token()}"}
            except ClientAuthenticationError as exc:
                raise DependencyUnavailable("no Entra ID token for ACS (managed identity)") from exc
        else:
            headers = hmac_headers(self._access_key, "GET", content_location, self._signed_host)
            headers["x-ms-host"] = self._endpoint_host
        headers["Accept"] = "application/json"
        if byte_range:
            headers["Range"] = byte_range
        try:
            reply = self.session.get(
                content_location,
                headers=headers,
                timeout=self._timeout,
                verify=self._ca_bundle or True,  # per call: REQUESTS_CA_BUNDLE would override
            )
        except requests.RequestException as exc:
            raise DependencyUnavailable("ACS recording content is not reachable") from exc
        if reply.status_code == 404:
            raise NotFound("the recording's content is gone from ACS")
        if reply.status_code == 416:
            raise NotFound("the requested range is outside the recording")
        if reply.status_code not in (200, 206):
            # 401/403 mean our key is wrong: an operator problem, not the caller's.
            raise DependencyUnavailable(f"ACS refused the recording download ({reply.status_code})")
        return RecordingAudio(
            status=reply.status_code,
            content=reply.content,
            content_type=reply.headers.get("Content-Type") or "application/octet-stream",
            content_range=reply.headers.get("Content-Range"),
        )
