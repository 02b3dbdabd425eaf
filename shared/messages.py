"""Every queue message the app writes and reads: each queue's writer and reader side by side.

The adapters send what a writer returns (QueueSender sends a dict as compact JSON) to the queue
named in shared/queues.py; the queue triggers and services read a delivery's body with the
reader, which raises InvalidInput for a body no writer produces (the host retries it, then parks
it in `<queue>-poison`). docs/storage.md lists the queues. The triggers import it on first use
(their queue names come from shared/queues.py at cold start).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.errors import FieldError, InvalidInput
from shared.json_input import loads

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
    data = loads(body, what="the enrichment message")
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
        return str(loads(body)["callId"])
    except (ValueError, KeyError, TypeError, InvalidInput):
        raise InvalidInput("not a callback offer message") from None


# --------------------- wrap-ups: {"agentId": ...}, visible when the agent's after-call work ends


def wrap_up_body(agent_id: str) -> dict[str, str]:
    """Written by QueueDelayedChecks.after_wrap_up (shared/adapters/repositories.py)."""
    return {"agentId": agent_id}


def wrap_up_agent_id(body: bytes) -> str:
    """The agent whose after-call work is over; read by the wrap-up trigger."""
    try:
        agent_id = loads(body, what="the wrap-up message")["agentId"]
    except (InvalidInput, KeyError, TypeError):
        raise InvalidInput("not a wrap-up message") from None
    if not isinstance(agent_id, str) or not agent_id or len(agent_id) > 64:
        raise InvalidInput("not a wrap-up message", errors=[FieldError("agentId", "required")])
    return agent_id


# --------------- call-rejoins: {"callId": ...}, visible REJOIN_SECONDS after an agent dropped


def rejoin_check_body(call_id: str) -> dict[str, str]:
    """Written by QueueDelayedChecks.check_rejoin_later (shared/adapters/repositories.py)."""
    return {"callId": call_id}


def rejoin_check_call_id(body: bytes) -> str:
    """The call whose away agent may have missed its REJOIN_SECONDS; read by its trigger."""
    try:
        call_id = loads(body)["callId"]
    except (ValueError, KeyError, TypeError, InvalidInput):
        raise InvalidInput("not a rejoin check message") from None
    if not isinstance(call_id, str) or not call_id or len(call_id) > 128:
        raise InvalidInput("not a rejoin check message")
    return call_id


# ---------- queue-waits: {"callId", "check": "overflow" | "announce", "n"}, visible when due


@dataclass(frozen=True)
class QueueWaitCheck:
    """A check on a waiting pool caller: the maximum wait (overflow) or announcement n."""

    call_id: str
    check: str
    n: int


QUEUE_WAIT_CHECKS = ("overflow", "announce")


def queue_wait_body(call_id: str, check: str, n: int) -> dict[str, Any]:
    """Written by QueueDelayedChecks.check_queue_wait_later (shared/adapters/repositories.py)."""
    return {"callId": call_id, "check": check, "n": n}


def queue_wait_check(body: bytes) -> QueueWaitCheck:
    """Read by the queue-wait trigger; InvalidInput for anything the writer does not write."""
    try:
        data: Any = loads(body)
        call_id, check, n = data["callId"], data["check"], data["n"]
    except (KeyError, TypeError, InvalidInput):
        raise InvalidInput("not a queue wait message") from None
    if (
        not isinstance(call_id, str)
        or not call_id
        or len(call_id) > 128
        or check not in QUEUE_WAIT_CHECKS
        or not isinstance(n, int)
        or isinstance(n, bool)
        or not 0 <= n <= 100000
    ):
        raise InvalidInput("not a queue wait message")
    return QueueWaitCheck(call_id, check, n)


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
            data: Any = loads(body)
            return cls(
                str(data["list"]),
                str(data["requestId"]),
                datetime.fromisoformat(str(data["requestedAt"])),
            )
        except (ValueError, KeyError, TypeError, InvalidInput):
            raise InvalidInput("not a callback import message") from None


# ------------ enterprise-notifications: a Graph notice, {"kind": "callRecord" | "lifecycle" | ...}

if TYPE_CHECKING:
    from shared.domain.graph_notifications import CatchUp, Notice


def enterprise_notice_body(notice: Notice | CatchUp) -> dict[str, str]:
    """Written by CallRecordNotifications.accept, one per distinct notice of a Graph POST
    (shared/services/enterprise_notifications.py): `{"kind": "callRecord", "id",
    "subscriptionId"}`, `{"kind": "lifecycle", "event", "subscriptionId"}` or
    `{"kind": "catchUp", "since", "reason"}`."""
    from shared.domain.graph_notifications import CallRecordNotice, LifecycleNotice

    if isinstance(notice, CallRecordNotice):
        return {
            "kind": "callRecord",
            "id": notice.record_id,
            "subscriptionId": notice.subscription_id,
        }
    if isinstance(notice, LifecycleNotice):
        return {
            "kind": "lifecycle",
            "event": notice.event.value,
            "subscriptionId": notice.subscription_id,
        }
    return {"kind": "catchUp", "since": notice.since.isoformat(), "reason": notice.reason}


def enterprise_notice(body: bytes | str) -> Notice | CatchUp:
    """Read by the notification trigger; InvalidInput for anything the writer does not write
    (retried, then parked in enterprise-notifications-poison: the catch-up poll covers it)."""
    from shared.domain.graph_notifications import (
        RECORD_ID,
        CallRecordNotice,
        CatchUp,
        LifecycleEvent,
        LifecycleNotice,
    )

    try:
        data: Any = loads(body)
        kind = data.get("kind")
        if kind == "callRecord" and RECORD_ID.match(str(data.get("id", ""))):
            return CallRecordNotice(str(data["id"]), str(data.get("subscriptionId") or ""))
        if kind == "lifecycle":
            return LifecycleNotice(
                str(data.get("subscriptionId") or ""), LifecycleEvent(data["event"])
            )
        if kind == "catchUp":
            since = datetime.fromisoformat(str(data["since"]))
            if since.tzinfo is not None:
                return CatchUp(since, str(data.get("reason") or ""))
    except (ValueError, KeyError, TypeError, AttributeError, InvalidInput):
        pass
    raise InvalidInput("not an enterprise notification message")


# ------------------------ pool-checks: {"poolId": ...}, after a pool call changed its phase


def pool_check_body(pool_id: str) -> dict[str, str]:
    """Written by QueuePoolChecks.request (shared/adapters/pool_monitoring.py)."""
    return {"poolId": pool_id}


def pool_check_pool_id(body: bytes) -> str:
    """The pool whose alarms to check now; InvalidInput when it is not `{"poolId": "<id>"}`."""
    data = loads(body, what="the pool check message")
    pool_id = data.get("poolId") if isinstance(data, dict) else None
    if not isinstance(pool_id, str) or not pool_id or len(pool_id) > 128:
        raise InvalidInput(
            "the pool check message needs a poolId", errors=[FieldError("poolId", "required")]
        )
    return pool_id
