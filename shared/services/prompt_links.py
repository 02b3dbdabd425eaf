"""The short-lived URL ACS fetches an uploaded prompt from (docs/pools.md, "Prompts"): our own
endpoint, `GET /api/prompts/{poolId}/{promptId}/audio.wav?expires=...&sig=...`, signed with a
key derived from CALLBACK_SECRET. No I/O: signing and checking are pure."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

LINK_SECONDS = 15 * 60  # ACS fetches the file when the play starts; a link lives no longer


class PromptLinks:
    def __init__(self, public_base_url: str, secret: bytes) -> None:
        self._base = public_base_url.rstrip("/")
        # A key of its own: a prompt link can never pass as a call's callback token.
        self._key = hmac.new(secret, b"prompt-links", hashlib.sha256).digest()

    def _signature(self, pool_id: str, prompt_id: str, expires: int) -> str:
        text = f"{pool_id}/{prompt_id}/{expires}".encode()
        digest = hmac.new(self._key, text, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def url(self, pool_id: str, prompt_id: str, now: datetime) -> str:
        expires = int(now.timestamp()) + LINK_SECONDS
        signature = self._signature(pool_id, prompt_id, expires)
        return (
            f"{self._base}/api/prompts/{pool_id}/{prompt_id}/audio.wav"
            f"?expires={expires}&sig={signature}"
        )

    def valid(
        self, pool_id: str, prompt_id: str, expires: str, signature: str, now: datetime
    ) -> bool:
        """The link was made by us for this prompt and has not expired."""
        if not expires.isdigit() or len(expires) > 12 or int(expires) < now.timestamp():
            return False
        wanted = self._signature(pool_id, prompt_id, int(expires)).encode()
        return hmac.compare_digest(wanted, (signature or "").encode("utf-8", "replace"))
