"""Graph change notifications for Teams call records: what a notification says, whether it is
ours (its `clientState`), the queue message it becomes, and when the subscription is renewed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.errors import FieldError, InvalidInput, NotAllowed

CALL_RECORDS_RESOURCE = "/communications/callRecords"
# Graph's longest lifetime of a callRecord subscription: 4230 minutes (under three days).
MAX_SUBSCRIPTION_MINUTES = 4230
MAX_NOTIFICATIONS = 1000  # Graph batches notifications; more than this in one POST is not Graph
RECORD_ID = re.compile(r"^[0-9A-Za-z-]{1,64}$")  # a callRecord id is a GUID


class LifecycleEvent(StrEnum):
    REAUTHORIZATION_REQUIRED = "reauthorizationRequired"
    SUBSCRIPTION_REMOVED = "subscriptionRemoved"
    MISSED = "missed"


@dataclass(frozen=True)
class CallRecordNotice:
    """A call record was created (or updated): fetch it and import it."""

    record_id: str
    subscription_id: str


@dataclass(frozen=True)
class LifecycleNotice:
    subscription_id: str
    event: LifecycleEvent


@dataclass(frozen=True)
class CatchUp:
    """Read the PSTN call log back to `since` (notifications may have been lost)."""

    since: datetime
    reason: str


Notice = CallRecordNotice | LifecycleNotice


def client_state_for(secret: str) -> str:
    """The subscription's clientState: derived from an app secret, so it is secret too and
    needs no setting of its own (Graph allows 128 characters; this is 43)."""
    digest = hmac.new(secret.encode(), b"graph-call-records-client-state", hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")


def read_notifications(body: Any, client_state: str) -> list[Notice]:
    """The notices of a changeNotificationCollection. Every item must carry our clientState:
    one that does not makes the whole POST refused (NotAllowed) and nothing is taken from it."""
    if not isinstance(body, Mapping) or not isinstance(body.get("value"), list):
        raise InvalidInput(
            'the body must be a changeNotificationCollection: {"value": [...]}',
            errors=[FieldError("value", "required: a list of notifications")],
        )
    items: list[Any] = body["value"]
    if len(items) > MAX_NOTIFICATIONS:
        raise InvalidInput(f"at most {MAX_NOTIFICATIONS} notifications a request")
    notices: list[Notice] = []
    errors: list[FieldError] = []
    forged = False
    for i, item in enumerate(items):
        where = f"value[{i}]"
        if not isinstance(item, Mapping):
            errors.append(FieldError(where, "must be an object"))
            continue
        state = item.get("clientState")
        if not isinstance(state, str) or not hmac.compare_digest(
            state.encode("utf-8", "replace"), client_state.encode("utf-8", "replace")
        ):
            forged = True
            continue
        subscription = item.get("subscriptionId")
        if not isinstance(subscription, str) or not subscription:
            errors.append(FieldError(f"{where}.subscriptionId", "required"))
            continue
        event = item.get("lifecycleEvent")
        if event is not None:
            try:
                notices.append(LifecycleNotice(subscription, LifecycleEvent(str(event))))
            except ValueError:
                errors.append(FieldError(f"{where}.lifecycleEvent", "unknown lifecycle event"))
            continue
        record_id = _record_id(item)
        if record_id is None:
            errors.append(FieldError(f"{where}.resourceData.id", "no call record id"))
            continue
        notices.append(CallRecordNotice(record_id, subscription))
    if forged:
        # Said without detail: the caller learns nothing about the expected value.
        raise NotAllowed("a notification does not carry this subscription's clientState")
    if errors:
        raise InvalidInput("; ".join(f"{e.field} {e.message}" for e in errors), errors=errors)
    return notices


def _record_id(item: Mapping[str, Any]) -> str | None:
    data = item.get("resourceData")
    candidate = data.get("id") if isinstance(data, Mapping) else None
    if not isinstance(candidate, str):
        resource = item.get("resource")
        candidate = resource.rstrip("/").rsplit("/", 1)[-1] if isinstance(resource, str) else None
    return candidate.lower() if isinstance(candidate, str) and RECORD_ID.match(candidate) else None


# ---------------------------------------------------------------------- the subscription


@dataclass(frozen=True)
class StoredSubscription:
    subscription_id: str
    expires_at: datetime


class SubscriptionStep(StrEnum):
    KEEP = "keep"  # it lives long enough: nothing to do (no Graph request)
    RENEW = "renew"  # PATCH its expirationDateTime
    CREATE = "create"  # none, or it has expired: make one (Graph validates our endpoint)


def subscription_step(
    stored: StoredSubscription | None, now: datetime, renew_before: timedelta
) -> SubscriptionStep:
    if stored is None or stored.expires_at <= now:
        return SubscriptionStep.CREATE
    if stored.expires_at - now <= renew_before:
        return SubscriptionStep.RENEW
    return SubscriptionStep.KEEP
