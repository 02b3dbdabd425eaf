"""What an uploaded prompt may be at the door: its media types, size and name length. A module
of its own so that the upload route declares them at cold start without the WAV checks
(shared/domain/prompts.py)."""

from __future__ import annotations

MAX_PROMPT_BYTES = 10 * 1024 * 1024  # five minutes of the played format is 9.6 MB, plus headers
MAX_NAME_LENGTH = 100
# The WAV types, and a plain binary upload (the content decides: it must be such a WAV).
PROMPT_MEDIA_TYPES = (
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "application/octet-stream",
)
