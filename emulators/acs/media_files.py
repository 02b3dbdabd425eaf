"""What ACS does with a FileSource before it plays it: download the URL and check the format it
plays (WAV: 16-bit PCM, mono, 16 kHz; or MP3 with an ID3v2 tag). Its own check, on purpose
not the app's: a file the app let through that ACS would refuse fails here too."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from typing import Any

import requests

# PlayFailed resultInformation, as ACS sends them (MediaEventReasonCode in the SDKs:
# PlayDownloadFailed 8536, PlayInvalidFileFormat 8535).
DOWNLOAD_FAILED = (400, 8536, "Action failed, file could not be downloaded.")
INVALID_FORMAT = (400, 8535, "Action failed, file format is invalid.")
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Fetched:
    url: str
    status: int | None  # the HTTP status, None when nothing answered
    size: int
    format: str | None  # "wav" or "mp3" when ACS can play it
    problem: str | None = None

    @property
    def result(self) -> tuple[int, int, str] | None:
        """None when the file plays; else PlayFailed's resultInformation."""
        if self.status is None or not 200 <= self.status < 300:
            return DOWNLOAD_FAILED
        return None if self.format else INVALID_FORMAT

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "status": self.status,
            "bytes": self.size,
            "format": self.format,
            "problem": self.problem,
        }


def fetch(url: str, *, verify: str, timeout: float = 10.0) -> Fetched:
    try:
        with requests.Session() as session:
            session.trust_env = False
            reply = session.get(url, timeout=timeout, verify=verify)
    except requests.RequestException as exc:
        return Fetched(url, None, 0, None, type(exc).__name__)
    body = reply.content[:MAX_DOWNLOAD_BYTES]
    if not reply.ok:
        return Fetched(url, reply.status_code, len(body), None, f"HTTP {reply.status_code}")
    kind, problem = playable(body)
    return Fetched(url, reply.status_code, len(body), kind, problem)


def playable(body: bytes) -> tuple[str | None, str | None]:
    """("wav" | "mp3", None) when ACS plays it, else (None, why not)."""
    if body[:3] == b"ID3":
        return "mp3", None
    try:
        with wave.open(io.BytesIO(body), "rb") as audio:
            shape = (audio.getnchannels(), audio.getsampwidth(), audio.getframerate())
            frames = audio.getnframes()
    except (wave.Error, EOFError, ValueError) as exc:
        return None, f"not a PCM WAV: {exc}"
    if shape != (1, 2, 16_000):
        return None, f"channels, sample width, rate {shape}: ACS plays (1, 2, 16000)"
    if frames == 0:
        return None, "no samples"
    return "wav", None
