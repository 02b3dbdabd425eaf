"""Recording content: a short, valid WAV file (16 kHz mono 16-bit, a quiet tone)."""

from __future__ import annotations

import io
import math
import struct
import wave

SAMPLE_RATE = 16_000


def tone_wav(seconds: float = 1.0, frequency: float = 440.0) -> bytes:
    frames = int(SAMPLE_RATE * seconds)
    samples = (
        int(6000 * math.sin(2 * math.pi * frequency * i / SAMPLE_RATE)) for i in range(frames)
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return buffer.getvalue()
