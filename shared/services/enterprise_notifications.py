"""Teams calls within a minute (§4): a Graph subscription for call records, kept alive by a
timer; each change notification becomes a queue message, and each message imports its call
record once; lifecycle notifications renew, recreate or catch up."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.domain.enterprise_calls import TEAMS_SOURCE
from shared.domain.graph_notifications import (
    CallRecordNotice,
    CatchUp,
    LifecycleEvent,
    LifecycleNotice,
    Notice,
    StoredSubscription,
    SubscriptionStep,
    read_notifications,
    subscription_step,
)
from shared.messages import enterprise_notice, enterprise_notice_body
from shared.queues import ENTERPRISE_NOTIFICATIONS
from shared.services.enterprise_sync import EnterpriseSync

log = logging.getLogger("enterprise_notifications")
# After a `missed` or `subscriptionRemoved` event, the PSTN call log is read this far back once.
CATCH_UP_LOOKBACK = timedelta(days=1)


class GraphSubscriptionApi(Protocol):
    def create(
        self, *, notification_url: str, lifecycle_url: str, client_state: str, expires_at: datetime
    ) -> StoredSubscription: ...

    def renew(self, subscription_id: str, expires_at: datetime) -> StoredSubscription | None: ...

    def ours(self, notification_url: str) -> list[StoredSubscription]: ...

    def delete(self, subscription_id: str) -> None: ...


class SubscriptionStore(Protocol):
    def subscription(self, source: str) -> StoredSubscription | None: ...

    def save_subscription(self, source: str, sub: StoredSubscription, at: datetime) -> bool:
        """False (nothing stored) for a subscription forgotten as removed."""

    def forget_subscription(self, source: str, subscription_id: str) -> None: ...


class NoticeQueue(Protocol):
    def send(self, queue: str, body: str | dict[str, Any], *, delay_seconds: int = 0) -> str: ...


@dataclass(frozen=True)
class NotificationOptions:
    enabled: bool
    notification_url: str
    lifecycle_url: str
    client_state: str
    lifetime: timedelta
    renew_before: timedelta


@dataclass(frozen=True)
class SubscriptionResult:
    step: SubscriptionStep | str  # what was done: keep / renew / create, or "disabled"
    subscription: StoredSubscription | None


class CallRecordNotifications:
    def __init__(
        self,
        *,
        graph: GraphSubscriptionApi,
        store: SubscriptionStore,
        queue: NoticeQueue,
        sync: EnterpriseSync,
        options: NotificationOptions,
    ) -> None:
        self.graph, self.store, self.queue, self.sync = graph, store, queue, sync
        self.options = options

    # ---- the webhook ---------------------------------------------------------------------------

    def accept(self, body: Any) -> int:
        """Check every notification's clientState (one forged: NotAllowed, nothing queued),
        then queue one message per distinct notice. Graph wants an answer within 3 seconds,
        so the work is the queue handler's. The number of messages queued."""
        notices = read_notifications(body, self.options.client_state)
        distinct: list[Notice] = list(dict.fromkeys(notices))
        for notice in distinct:
            self.queue.send(ENTERPRISE_NOTIFICATIONS, enterprise_notice_body(notice))
        return len(distinct)

    # ---- the queue handler ---------------------------------------------------------------------

    def handle(self, body: bytes | str, now: datetime) -> None:
        """One queued notice. Idempotent: a repeated call record answers `duplicate`, a repeated
        lifecycle event renews or catches up again at the cost of a few requests."""
        notice = enterprise_notice(body)
        if isinstance(notice, CallRecordNotice):
            self.sync.import_call_record(notice.record_id, now)
        elif isinstance(notice, CatchUp):
            self.sync.sync_teams(now, since=notice.since)
        else:
            self._lifecycle(notice, now)

    def _lifecycle(self, notice: LifecycleNotice, now: datetime) -> None:
        log.info(
            json.dumps(
                {
                    "event": "graphLifecycleNotification",
                    "lifecycleEvent": notice.event.value,
                    "subscriptionId": notice.subscription_id,
                }
            )
        )
        if notice.event is LifecycleEvent.REAUTHORIZATION_REQUIRED:
            self.keep_subscription(now, reauthorize=notice.subscription_id)
            return
        if notice.event is LifecycleEvent.SUBSCRIPTION_REMOVED:
            self.store.forget_subscription(TEAMS_SOURCE, notice.subscription_id)
            self.keep_subscription(now)
        # removed or missed: notifications were (or may have been) lost; read the log back.
        self.sync.sync_teams(now, since=now - CATCH_UP_LOOKBACK)

    # ---- the timer -----------------------------------------------------------------------------

    def keep_subscription(
        self, now: datetime, *, reauthorize: str | None = None
    ) -> SubscriptionResult:
        """Create the subscription, or renew it before it expires (or at once when Graph asks
        to `reauthorize` it and it is still the stored one). When it lives long enough this
        reads one Table row and sends nothing to Graph."""
        if not self.options.enabled:
            return SubscriptionResult("disabled", None)
        stored = self.store.subscription(TEAMS_SOURCE)
        step = subscription_step(stored, now, self.options.renew_before)
        forced = stored is not None and stored.subscription_id == reauthorize
        if step is SubscriptionStep.KEEP and not forced:
            return SubscriptionResult(step, stored)
        expires = now + self.options.lifetime
        if stored is not None and step is not SubscriptionStep.CREATE:
            renewed = self.graph.renew(stored.subscription_id, expires)
            if renewed is not None:
                return self._store(SubscriptionStep.RENEW, renewed, now)
        return self._store(SubscriptionStep.CREATE, self._adopt_or_create(expires, now), now)

    def _store(
        self, step: SubscriptionStep, sub: StoredSubscription, now: datetime
    ) -> SubscriptionResult:
        """Graph may remove the subscription while we renew it, and the `subscriptionRemoved`
        handler may store its replacement first: the store then refuses the removed id."""
        if self.store.save_subscription(TEAMS_SOURCE, sub, now):
            if step is SubscriptionStep.RENEW:
                self._log("renewed", sub)
            return SubscriptionResult(step, sub)
        self._log("removedMeanwhile", sub)
        return SubscriptionResult(SubscriptionStep.KEEP, self.store.subscription(TEAMS_SOURCE))

    def _adopt_or_create(self, expires: datetime, now: datetime) -> StoredSubscription:
        """A run that died after Graph made the subscription but before it was stored left
        one behind: renew and keep that one (and drop any extras) instead of a second."""
        existing = self.graph.ours(self.options.notification_url)
        for extra in existing[1:]:
            self.graph.delete(extra.subscription_id)
        if existing:
            renewed = self.graph.renew(existing[0].subscription_id, expires)
            if renewed is not None:
                self._log("adopted", renewed)
                return renewed
        made = self.graph.create(
            notification_url=self.options.notification_url,
            lifecycle_url=self.options.lifecycle_url,
            client_state=self.options.client_state,
            expires_at=expires,
        )
        # Calls that ended while there was no subscription: the poll reads from its watermark.
        self._log("created", made)
        return made

    @staticmethod
    def _log(what: str, sub: StoredSubscription) -> None:
        log.info(
            json.dumps(
                {
                    "event": "graphSubscription",
                    "action": what,
                    "subscriptionId": sub.subscription_id,
                    "expiresAt": sub.expires_at.isoformat(),
                }
            )
        )
