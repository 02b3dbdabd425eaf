"""Graph change notifications: subscriptions (create with the validation handshake, renew,
delete, list), and delivery of change and lifecycle notifications to the subscriber's URLs,
with duplicates, delays and misses on request."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from emulators.graph.call_records import graph_timestamp, parse_graph_time

CALL_RECORDS_RESOURCE = "communications/callRecords"
# Graph's maximum lifetime of a callRecord subscription (under three days).
CALL_RECORDS_MAX_MINUTES = 4230
VALIDATION_TIMEOUT_SECONDS = 10  # Graph drops the subscription if the echo takes longer
DELIVERY_TIMEOUT_SECONDS = 3  # Graph counts a slower answer as a failed delivery
DELIVERY_RETRIES = (1.0, 2.0, 4.0)  # Graph retries with back-off (for hours; here seconds)
CLIENT_STATE_MAX = 128
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class SubscriptionError(Exception):
    """A refusal in Graph's shape: HTTP status, code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Subscription:
    id: str
    resource: str
    change_type: str
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expires: dt.datetime
    application_id: str
    creator_id: str
    tenant_id: str
    removed: bool = False

    def to_json(self, base_url: str) -> dict[str, Any]:
        return {
            "@odata.context": f"{base_url}/v1.0/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": self.application_id,
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": graph_timestamp(self.expires),
            "creatorId": self.creator_id,
            "includeResourceData": None,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
        }


@dataclass
class NotificationPlan:
    """How the next call record's notification is delivered (set through the control API)."""

    copies: int = 1  # 2 or more: the same notification delivered again (Graph may do so)
    delay_seconds: float = 0.0
    miss: bool = False  # not delivered at all


@dataclass
class Deliveries:
    """What was posted to subscribers: url, kind, status (None: unreachable), body."""

    log: list[dict[str, Any]] = field(default_factory=list)


class SubscriptionHub:
    """Subscriptions of one emulator, and the threads that deliver their notifications."""

    def __init__(self, *, ca_path: str | None, tenant_id: str) -> None:
        self._ca = ca_path
        self.tenant_id = tenant_id
        self._lock = threading.Lock()
        self._subs: dict[str, Subscription] = {}
        self._deliveries: list[dict[str, Any]] = []
        self._in_flight = 0
        self._generation = 0  # bumped by reset: deliveries of an older generation are dropped

    # ---- the API -----------------------------------------------------------------------------

    def create(self, body: Any, *, app_id: str, roles: list[str], base_url: str) -> Subscription:
        if not isinstance(body, dict):
            raise SubscriptionError(400, "BadRequest", "Empty Payload. JSON content expected.")
        for name in ("changeType", "notificationUrl", "resource", "expirationDateTime"):
            if not isinstance(body.get(name), str) or not body[name].strip():
                raise SubscriptionError(
                    400, "BadRequest", f"The '{name}' property is required and must not be empty."
                )
        resource = body["resource"].strip().lstrip("/")
        if resource.split("?", 1)[0] != CALL_RECORDS_RESOURCE:
            raise SubscriptionError(
                400,
                "ExtensionError",
                "Operation: Create; Exception: [Status Code: BadRequest; Reason: The resource "
                f"'{body['resource']}' is not supported by this emulator (only "
                f"/{CALL_RECORDS_RESOURCE}).]",
            )
        if "CallRecords.Read.All" not in roles:
            raise SubscriptionError(
                403,
                "ExtensionError",
                "Operation: Create; Exception: [Status Code: Forbidden; Reason: The application "
                "does not have the CallRecords.Read.All permission.]",
            )
        change_types = [c.strip() for c in body["changeType"].split(",")]
        if not change_types or any(c not in ("created", "updated") for c in change_types):
            raise SubscriptionError(
                400,
                "ExtensionError",
                "Operation: Create; Exception: [Status Code: BadRequest; Reason: The changeType "
                f"'{body['changeType']}' is not supported for callRecords (created, updated).]",
            )
        client_state = body.get("clientState")
        if client_state is not None and (
            not isinstance(client_state, str) or len(client_state) > CLIENT_STATE_MAX
        ):
            raise SubscriptionError(
                400,
                "BadRequest",
                f"clientState must be a string of at most {CLIENT_STATE_MAX} characters.",
            )
        expires = self._expiration(body["expirationDateTime"], "Create")
        notification_url = self._check_url(body["notificationUrl"], "notificationUrl")
        lifecycle = body.get("lifecycleNotificationUrl")
        lifecycle_url = None
        if lifecycle:
            lifecycle_url = self._check_url(lifecycle, "lifecycleNotificationUrl")
        for url in filter(None, (notification_url, lifecycle_url)):
            self._validate_endpoint(url)
        sub = Subscription(
            id=str(uuid.uuid4()),
            resource=body["resource"].strip(),
            change_type=",".join(change_types),
            notification_url=notification_url,
            lifecycle_url=lifecycle_url,
            client_state=client_state,
            expires=expires,
            application_id=app_id,
            creator_id=app_id,
            tenant_id=self.tenant_id,
        )
        with self._lock:
            self._subs[sub.id] = sub
        return sub

    def update(self, sub_id: str, body: Any, *, app_id: str) -> Subscription:
        sub = self.get(sub_id, app_id=app_id)
        if not isinstance(body, dict) or not body:
            raise SubscriptionError(400, "BadRequest", "Empty Payload. JSON content expected.")
        unknown = sorted(set(body) - {"expirationDateTime", "notificationUrl"})
        if unknown:
            raise SubscriptionError(
                400,
                "BadRequest",
                f"Only expirationDateTime and notificationUrl can be updated, not {unknown}.",
            )
        expires = sub.expires
        if "expirationDateTime" in body:
            if not isinstance(body["expirationDateTime"], str):
                raise SubscriptionError(400, "BadRequest", "expirationDateTime must be a string.")
            expires = self._expiration(body["expirationDateTime"], "Update")
        url = sub.notification_url
        if "notificationUrl" in body:
            url = self._check_url(body["notificationUrl"], "notificationUrl")
            self._validate_endpoint(url)
        with self._lock:
            sub.expires, sub.notification_url = expires, url
        return sub

    def delete(self, sub_id: str, *, app_id: str) -> None:
        self.get(sub_id, app_id=app_id)
        with self._lock:
            self._subs[sub_id].removed = True

    def get(self, sub_id: str, *, app_id: str) -> Subscription:
        with self._lock:
            sub = self._subs.get(sub_id)
        if sub is None or not self._live(sub) or sub.application_id != app_id:
            raise SubscriptionError(
                404,
                "ResourceNotFound",
                f"Operation: Get; Exception: [Status Code: NotFound; Reason: The object "
                f"'{sub_id}' was not found.]",
            )
        return sub

    def list(self, *, app_id: str) -> list[Subscription]:
        with self._lock:
            subs = list(self._subs.values())
        return [s for s in subs if self._live(s) and s.application_id == app_id]

    # ---- control -----------------------------------------------------------------------------

    def all(self) -> list[Subscription]:
        """Every subscription ever made, expired and deleted ones too (for tests)."""
        with self._lock:
            return list(self._subs.values())

    def set_expiry(self, sub_id: str, seconds_from_now: float) -> Subscription:
        with self._lock:
            sub = self._subs.get(sub_id)
            if sub is None:
                raise KeyError(sub_id)
            sub.expires = _now() + dt.timedelta(seconds=seconds_from_now)
            return sub

    def lifecycle(self, sub_id: str, event: str) -> None:
        """Send a lifecycle notification; `subscriptionRemoved` also removes the subscription."""
        if event not in ("reauthorizationRequired", "subscriptionRemoved", "missed"):
            raise ValueError("event must be reauthorizationRequired, subscriptionRemoved or missed")
        with self._lock:
            sub = self._subs.get(sub_id)
            if sub is None:
                raise KeyError(sub_id)
            if event == "subscriptionRemoved":
                sub.removed = True
        if not sub.lifecycle_url:
            return
        item = {
            "lifecycleEvent": event,
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": graph_timestamp(sub.expires),
            "tenantId": sub.tenant_id,
            "clientState": sub.client_state,
            "resource": sub.resource,
            "resourceData": {
                "@odata.type": "#microsoft.graph.subscription",
                "@odata.id": f"subscriptions/{sub.id}",
                "id": sub.id,
            },
        }
        self._deliver(sub.lifecycle_url, "lifecycle", {"value": [item]}, 0.0)

    def notify_call_record(self, record_id: str, plan: NotificationPlan) -> int:
        """A call record was created: notify every live callRecords subscription as `plan`
        says. The number of deliveries scheduled."""
        scheduled = 0
        for sub in [s for s in self.all() if self._live(s)]:
            if "created" not in sub.change_type.split(",") and "updated" not in sub.change_type:
                continue
            if plan.miss:
                continue
            item = {
                "id": str(uuid.uuid4()),
                "subscriptionId": sub.id,
                "subscriptionExpirationDateTime": graph_timestamp(sub.expires),
                "changeType": "created",
                "resource": f"{CALL_RECORDS_RESOURCE}/{record_id}",
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.callrecord",
                    "@odata.id": f"{CALL_RECORDS_RESOURCE}/{record_id}",
                    "id": record_id,
                },
                "clientState": sub.client_state,
                "tenantId": sub.tenant_id,
            }
            for copy in range(max(1, plan.copies)):
                self._deliver(
                    sub.notification_url,
                    "change",
                    {"value": [item]},
                    plan.delay_seconds + copy * 0.2,
                )
                scheduled += 1
        return scheduled

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(d) for d in self._deliveries]

    def idle(self) -> bool:
        with self._lock:
            return self._in_flight == 0

    def reset(self) -> None:
        with self._lock:
            self._subs.clear()
            self._deliveries.clear()
            self._generation += 1

    # ---- helpers -----------------------------------------------------------------------------

    @staticmethod
    def _live(sub: Subscription) -> bool:
        return not sub.removed and sub.expires > _now()

    @staticmethod
    def _expiration(text: str, operation: str) -> dt.datetime:
        try:
            expires = parse_graph_time(text)
        except ValueError:
            raise SubscriptionError(
                400, "BadRequest", f"Invalid expirationDateTime '{text}'."
            ) from None
        now = _now()
        if expires <= now:
            raise SubscriptionError(
                400,
                "ExtensionError",
                f"Operation: {operation}; Exception: [Status Code: BadRequest; Reason: "
                "Subscription expiration must be in the future.]",
            )
        if expires > now + dt.timedelta(minutes=CALL_RECORDS_MAX_MINUTES):
            raise SubscriptionError(
                400,
                "ExtensionError",
                f"Operation: {operation}; Exception: [Status Code: BadRequest; Reason: "
                f"Subscription expiration can only be {CALL_RECORDS_MAX_MINUTES} minutes in the "
                "future.]",
            )
        return expires

    @staticmethod
    def _check_url(value: Any, name: str) -> str:
        if not isinstance(value, str):
            raise SubscriptionError(400, "BadRequest", f"{name} must be a string.")
        parts = urlsplit(value.strip())
        loopback_http = parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS
        if parts.scheme != "https" and not loopback_http:
            # Graph accepts only https; plain http is let through for the local host alone.
            raise SubscriptionError(
                400,
                "ValidationError",
                f"The {name} must be an https URL: '{value}'.",
            )
        return value.strip()

    def _validate_endpoint(self, url: str) -> None:
        token = (
            "Validation: Testing client application reachability for subscription Request-Id: "
            f"{uuid.uuid4()}"
        )
        target = f"{url}{'&' if '?' in url else '?'}validationToken={quote(token, safe='')}"
        try:
            reply = requests.post(
                target,
                data=b"",
                headers={"Content-Type": "text/plain; charset=utf-8"},
                timeout=VALIDATION_TIMEOUT_SECONDS,
                verify=self._ca or True,
            )
        except requests.Timeout:
            raise SubscriptionError(
                400, "ValidationError", "Subscription validation request timed out."
            ) from None
        except requests.RequestException:
            raise SubscriptionError(
                400,
                "ValidationError",
                "Subscription validation request failed. Notification endpoint must respond "
                "with 200 OK to validation request.",
            ) from None
        self._record(url, "validation", reply.status_code, {"validationToken": token})
        content_type = reply.headers.get("Content-Type", "")
        if reply.status_code != 200:
            raise SubscriptionError(
                400,
                "ValidationError",
                "Subscription validation request failed. Notification endpoint must respond "
                "with 200 OK to validation request.",
            )
        if not content_type.startswith("text/plain") or reply.text != token:
            raise SubscriptionError(
                400,
                "ValidationError",
                "Subscription validation request failed. Response must exactly match "
                "validationToken query parameter.",
            )

    def _deliver(self, url: str, kind: str, body: dict[str, Any], delay: float) -> None:
        with self._lock:
            self._in_flight += 1
            generation = self._generation

        def run() -> None:
            try:
                if delay > 0:
                    time.sleep(delay)
                for pause in (*DELIVERY_RETRIES, None):
                    with self._lock:
                        if generation != self._generation:
                            return
                    status: int | None
                    try:
                        reply = requests.post(
                            url,
                            json=body,
                            timeout=DELIVERY_TIMEOUT_SECONDS,
                            verify=self._ca or True,
                        )
                        status = reply.status_code
                    except requests.RequestException:
                        status = None
                    self._record(url, kind, status, body)
                    if status is not None and (200 <= status < 300 or 400 <= status < 500):
                        return  # delivered, or refused for good (a 4xx is not retried)
                    if pause is None:
                        return
                    time.sleep(pause)
            finally:
                with self._lock:
                    self._in_flight -= 1

        threading.Thread(target=run, daemon=True, name="graph-notify").start()

    def _record(self, url: str, kind: str, status: int | None, body: dict[str, Any]) -> None:
        with self._lock:
            self._deliveries.append(
                {"url": url, "kind": kind, "status": status, "body": body, "at": _now().isoformat()}
            )
