"""Every queue message the app writes and reads: each queue's name, writer and reader side by side.

The adapters send what a writer returns (QueueSender sends a dict as compact JSON); the queue
triggers and services read a delivery's body with the reader, which raises InvalidInput for a body
no writer produces (the host retries it, then parks it in `<queue>-poison`). docs/storage.md lists
the queues. The triggers import it at cold start for the queue names: stdlib and shared.errors only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.errors import FieldError, InvalidInput

ENRICHMENT = "enrichment"
CALLBACK_OFFERS = "callback-offers"
CALLBACK_IMPORTS = "callback-imports"
CALL_REJOINS = "call-rejoins"


# ------------------------------------------- enrichment: {"callId": ...}, delayed after a call


@dataclass(frozen=True)
class EnrichmentMessage:
    """One delivery of `{"callId": ...}`: the host's message id and dequeue count with it."""

    call_id: str
    message_id: str
    dequeue_count: int


def enrichment_body(call_id: str) -> dict[str, str]:
    """Written by QueueEnrichment.schedule (shared/adapters/repositories.py)."""
    return {"callId": call_id}


def enrichment_message(
    body: bytes, message_id: str, dequeue_count: int | None
) -> EnrichmentMessage:
    """Parse a queue message; InvalidInput when it is not `{"callId": "<id>"}`."""
    try:
        data = json.loads(body or b"null")
    except ValueError:
        raise InvalidInput("the enrichment message is not JSON") from None
    call_id = data.get("callId") if isinstance(data, dict) else None
    if not isinstance(call_id, str) or not call_id or len(call_id) > 128:
        raise InvalidInput(
            "the enrichment message needs a callId", errors=[FieldError("callId", "required")]
        )
    return EnrichmentMessage(call_id, message_id or "", int(dequeue_count or 1))


# ------------------------- callback-offers: {"callId": ...}, visible after offerAfterSeconds


def callback_offer_body(call_id: str) -> dict[str, str]:
    """Written by QueueDelayedChecks.offer_callback_later (shared/adapters/repositories.py)."""
    return {"callId": call_id}


def callback_offer_call_id(body: bytes) -> str:
    """The call whose caller may now be offered a callback; read by the callback-offer trigger."""
    try:
        return str(json.loads(body)["callId"])
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("not a callback offer message") from None


# --------------- call-rejoins: {"callId": ...}, visible REJOIN_SECONDS after an agent dropped


def rejoin_check_body(call_id: str) -> dict[str, str]:
    """Written by QueueDelayedChecks.check_rejoin_later (shared/adapters/repositories.py)."""
    return {"callId": call_id}


def rejoin_check_call_id(body: bytes) -> str:
    """The call whose away agent may have missed its REJOIN_SECONDS; read by its trigger."""
    try:
        call_id = json.loads(body)["callId"]
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("not a rejoin check message") from None
    if not isinstance(call_id, str) or not call_id or len(call_id) > 128:
        raise InvalidInput("not a rejoin check message")
    return call_id


# ---------------- callback-imports: {"list": ..., "requestId": ..., "requestedAt": ISO 8601}


@dataclass(frozen=True)
class CallbackImport:
    """One captured callback request to import at once (the immediate path)."""

    list_id: str
    request_id: str
    requested_at: datetime

    def body(self) -> dict[str, str]:
        """Written by QueueCallbackSignals.captured (shared/adapters/callback_store.py)."""
        return {
            "list": self.list_id,
            "requestId": self.request_id,
            "requestedAt": self.requested_at.astimezone(UTC).isoformat(),
        }

    @classmethod
    def read(cls, body: bytes) -> CallbackImport:
        """Read by the import-now trigger; InvalidInput for anything `body()` does not write."""
        try:
            data: Any = json.loads(body)
            return cls(
                str(data["list"]),
                str(data["requestId"]),
                datetime.fromisoformat(str(data["requestedAt"])),
            )
        except (ValueError, KeyError, TypeError):
            raise InvalidInput("not a callback import message") from None
