"""Uploaded audio prompts (§7 2.3 3b "Create new prompt"): the checks an upload must pass to be
played by ACS as a file (WAV: 16-bit PCM, mono, 16 kHz; docs/pools.md), its size and length
limits, and the prompt's id. Pure: total over arbitrary bytes (a Problem, never a crash)."""

from __future__ import annotations

import hashlib
import re
import struct
from dataclasses import dataclass
from datetime import datetime

from shared.domain.prompt_limits import MAX_NAME_LENGTH, MAX_PROMPT_BYTES, PROMPT_MEDIA_TYPES
from shared.errors import FieldError, PayloadTooLarge, Unprocessable, UnsupportedMediaType

# What ACS Call Automation plays from a FileSource: "WAV files formatted as 16-bit PCM mono
# channel audio recorded at 16 KHz" (learn.microsoft.com, communication-services, concepts,
# call-automation, play-action). MP3 is accepted by ACS too; uploads are WAV only.
SAMPLE_RATE = 16_000
CHANNELS = 1
BITS_PER_SAMPLE = 16
BYTES_PER_SECOND = SAMPLE_RATE * CHANNELS * BITS_PER_SAMPLE // 8
MAX_PROMPT_SECONDS = 300  # an announcement, not hold music: five minutes at most
PROMPT_ID = re.compile(r"^p[0-9a-f]{16}$")

_PCM, _EXTENSIBLE = 0x0001, 0xFFFE
# WAVE_FORMAT_EXTENSIBLE's SubFormat for PCM: the format tag, then this fixed GUID tail.
_PCM_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_NAME = re.compile(r"^[^\x00-\x1f\x7f]+$")


@dataclass(frozen=True)
class PromptAudio:
    """A checked upload: its length and size."""

    duration_ms: int
    size_bytes: int


@dataclass(frozen=True)
class StoredPrompt:
    """An uploaded prompt of a pool, as its metadata row holds it."""

    pool_id: str
    prompt_id: str
    name: str
    duration_ms: int
    size_bytes: int
    uploaded_at: datetime
    uploaded_by: str

    @property
    def blob_name(self) -> str:
        return blob_name(self.pool_id, self.prompt_id)


def blob_name(pool_id: str, prompt_id: str) -> str:
    return f"{pool_id}/{prompt_id}.wav"


def prompt_id_for(pool_id: str, audio: bytes) -> str:
    """The same audio uploaded to the same pool is the same prompt (a repeated upload is
    idempotent); a different pool or different audio is another one."""
    digest = hashlib.sha256(pool_id.encode() + b"\x00" + audio).hexdigest()
    return "p" + digest[:16]


def check_name(name: str | None) -> str:
    text = (name or "").strip()
    if not text or len(text) > MAX_NAME_LENGTH or not _NAME.match(text):
        raise Unprocessable(
            f"name must be text of 1 to {MAX_NAME_LENGTH} characters (the ?name= parameter)",
            errors=[FieldError("name", f"1-{MAX_NAME_LENGTH} characters, no control characters")],
        )
    return text


def check_prompt(audio: bytes, media_type: str) -> PromptAudio:
    """The upload as ACS can play it: 415 for another media type, 413 over the size limit,
    422 naming each way the WAV is not what ACS plays, or too long."""
    media = (media_type or "").split(";", 1)[0].strip().lower()
    if media not in PROMPT_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"a prompt is uploaded as audio/wav, not {media[:80] or 'no Content-Type'}"
        )
    if len(audio) > MAX_PROMPT_BYTES:
        raise PayloadTooLarge(f"a prompt is at most {MAX_PROMPT_BYTES} bytes")
    data_bytes = _pcm_data_length(audio)
    duration_ms = data_bytes * 1000 // BYTES_PER_SECOND
    if duration_ms > MAX_PROMPT_SECONDS * 1000:
        raise Unprocessable(
            f"the prompt is {duration_ms / 1000:.1f} s long; at most {MAX_PROMPT_SECONDS} s",
            errors=[FieldError("body", f"at most {MAX_PROMPT_SECONDS} seconds")],
        )
    return PromptAudio(duration_ms=duration_ms, size_bytes=len(audio))


def _refuse(problems: list[str]) -> Unprocessable:
    return Unprocessable(
        "not a WAV that ACS plays (16-bit PCM, mono, 16 kHz): " + "; ".join(problems),
        errors=[FieldError("body", p) for p in problems],
    )


def _pcm_data_length(audio: bytes) -> int:
    """The length of the WAV's sample data, after checking its format; 422 otherwise."""
    if len(audio) < 12 or audio[:4] != b"RIFF" or audio[8:12] != b"WAVE":
        raise _refuse(["no RIFF/WAVE header: not a WAV file"])
    fmt: tuple[int, int, int, int, int, int] | None = None
    pos = 12
    while pos + 8 <= len(audio):
        chunk, size = audio[pos : pos + 4], struct.unpack_from("<I", audio, pos + 4)[0]
        start = pos + 8
        if chunk == b"fmt ":
            if size < 16 or start + size > len(audio):
                raise _refuse(["the fmt chunk is truncated"])
            fmt = struct.unpack_from("<HHIIHH", audio, start)
            if fmt[0] == _EXTENSIBLE:
                fmt = (_extensible_tag(audio, start, size), *fmt[1:])
        elif chunk == b"data":
            if fmt is None:
                raise _refuse(["the data chunk comes before the fmt chunk"])
            if start + size > len(audio):
                raise _refuse([f"the data chunk says {size} bytes but the file is shorter"])
            _check_format(fmt)
            if size < 2:
                raise _refuse(["the data chunk holds no samples"])
            return int(size)
        pos = start + size + (size & 1)  # chunks are padded to an even length
    raise _refuse(["no fmt chunk" if fmt is None else "no data chunk"])


def _extensible_tag(audio: bytes, start: int, size: int) -> int:
    if size < 40:
        return _EXTENSIBLE
    sub = audio[start + 24 : start + 40]
    return int.from_bytes(sub[:2], "little") if sub[2:] == _PCM_GUID_TAIL else _EXTENSIBLE


def _check_format(fmt: tuple[int, int, int, int, int, int]) -> None:
    tag, channels, rate, byte_rate, align, bits = fmt
    problems = []
    if tag != _PCM:
        problems.append(f"encoding is format {tag:#06x}, not PCM (0x0001)")
    if channels != CHANNELS:
        problems.append(f"{channels} channels, not mono")
    if rate != SAMPLE_RATE:
        problems.append(f"sample rate {rate} Hz, not {SAMPLE_RATE} Hz")
    if bits != BITS_PER_SAMPLE:
        problems.append(f"{bits}-bit samples, not {BITS_PER_SAMPLE}-bit")
    if not problems and (align != 2 or byte_rate != BYTES_PER_SECOND):
        problems.append(f"block align {align} and byte rate {byte_rate} do not match the format")
    if problems:
        raise _refuse(problems)
