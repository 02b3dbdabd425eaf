"""The notification use case against fakes: the subscription is created, kept, renewed,
adopted or replaced; the webhook queues one message per distinct notice; the queue handler
imports call records and answers lifecycle events."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from shared.domain.enterprise_calls import Outcome
from shared.domain.graph_notifications import StoredSubscription, client_state_for
from shared.errors import NotAllowed
from shared.queues import ENTERPRISE_NOTIFICATIONS
from shared.services.enterprise_notifications import (
    CATCH_UP_LOOKBACK,
    CallRecordNotifications,
    NotificationOptions,
)
from tests.unit.test_enterprise_calls import FakeState, call, service

T0 = dt.datetime(2024, 5, 6, 8, 0, tzinfo=dt.UTC)
STATE = client_state_for("x" * 40)
URL = "https://app.example/api/enterprise-calls/notifications"


@dataclass
class FakeGraph:
    subs: dict[str, StoredSubscription] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def create(
        self, *, notification_url: str, lifecycle_url: str, client_state: str, expires_at: Any
    ) -> StoredSubscription:
        self.calls.append("create")
        sub = StoredSubscription(f"made-{len(self.calls)}", expires_at)
        self.subs[sub.subscription_id] = sub
        return sub

    def renew(self, subscription_id: str, expires_at: Any) -> StoredSubscription | None:
        self.calls.append(f"renew {subscription_id}")
        if subscription_id not in self.subs:
            return None
        self.subs[subscription_id] = StoredSubscription(subscription_id, expires_at)
        return self.subs[subscription_id]

    def ours(self, notification_url: str) -> list[StoredSubscription]:
        self.calls.append("list")
        return list(self.subs.values())

    def delete(self, subscription_id: str) -> None:
        self.calls.append(f"delete {subscription_id}")
        self.subs.pop(subscription_id, None)


@dataclass
class FakeStore:
    row: StoredSubscription | None = None
    removed: set[str] = field(default_factory=set)

    def subscription(self, source: str) -> StoredSubscription | None:
        return self.row

    def save_subscription(self, source: str, sub: StoredSubscription, at: Any) -> bool:
        if sub.subscription_id in self.removed:
            return False
        self.row = sub
        return True

    def forget_subscription(self, source: str, subscription_id: str) -> None:
        self.removed.add(subscription_id)
        if self.row and self.row.subscription_id == subscription_id:
            self.row = None


@dataclass
class FakeQueue:
    sent: list[dict[str, Any]] = field(default_factory=list)

    def send(self, queue: str, body: Any, *, delay_seconds: int = 0) -> str:
        assert queue == ENTERPRISE_NOTIFICATIONS
        self.sent.append(body)
        return str(len(self.sent))


def notifications(
    graph: FakeGraph | None = None, store: FakeStore | None = None, enabled: bool = True
) -> tuple[CallRecordNotifications, FakeGraph, FakeStore, FakeQueue, Any]:
    graph, store, queue = graph or FakeGraph(), store or FakeStore(), FakeQueue()
    sync, source, crm, state = service(state=FakeState())
    source.crm, source.state = crm, state  # type: ignore[attr-defined]  (for the asserts)
    return (
        CallRecordNotifications(
            graph=graph,
            store=store,
            queue=queue,
            sync=sync,
            options=NotificationOptions(
                enabled=enabled,
                notification_url=URL,
                lifecycle_url=URL.replace("notifications", "lifecycle"),
                client_state=STATE,
                lifetime=dt.timedelta(minutes=4200),
                renew_before=dt.timedelta(days=1),
            ),
        ),
        graph,
        store,
        queue,
        source,
    )


def test_the_first_run_creates_a_later_one_keeps_without_asking_graph() -> None:
    keeper, graph, store, _, _ = notifications()

    made = keeper.keep_subscription(T0)
    graph.calls.clear()
    kept = keeper.keep_subscription(T0 + dt.timedelta(hours=1))

    assert made.step == "create" and store.row == made.subscription
    assert store.row is not None and store.row.expires_at == T0 + dt.timedelta(minutes=4200)
    assert kept.step == "keep" and graph.calls == []


def test_a_subscription_near_its_end_is_renewed_and_a_vanished_one_replaced() -> None:
    graph = FakeGraph({"sub-1": StoredSubscription("sub-1", T0 + dt.timedelta(hours=2))})
    keeper, _, store, _, _ = notifications(graph, FakeStore(graph.subs["sub-1"]))

    renewed = keeper.keep_subscription(T0)
    assert renewed.step == "renew" and graph.calls == ["renew sub-1"]
    assert store.row == StoredSubscription("sub-1", T0 + dt.timedelta(minutes=4200))

    graph.subs.clear()  # Graph removed it
    store.row = StoredSubscription("sub-1", T0 + dt.timedelta(hours=2))
    replaced = keeper.keep_subscription(T0)
    assert replaced.step == "create" and graph.calls[-2:] == ["list", "create"]
    assert store.row is not None and store.row.subscription_id != "sub-1"


def test_a_subscription_left_behind_by_a_dead_run_is_adopted_and_extras_dropped() -> None:
    later = T0 + dt.timedelta(days=2)
    graph = FakeGraph({"a": StoredSubscription("a", later), "b": StoredSubscription("b", later)})
    keeper, _, store, _, _ = notifications(graph)

    result = keeper.keep_subscription(T0)

    assert graph.calls == ["list", "delete b", "renew a"]
    assert result.subscription is not None and result.subscription.subscription_id == "a"
    assert store.row == result.subscription


def test_disabled_notifications_touch_nothing() -> None:
    keeper, graph, store, _, _ = notifications(enabled=False)
    assert keeper.keep_subscription(T0).step == "disabled"
    assert graph.calls == [] and store.row is None


def notification(record: str, state: str = STATE) -> dict[str, Any]:
    return {
        "subscriptionId": "sub-1",
        "clientState": state,
        "changeType": "created",
        "resourceData": {"id": record},
    }


def test_the_webhook_queues_each_distinct_notice_once_and_a_forged_post_nothing() -> None:
    keeper, _, _, queue, _ = notifications()
    record = "2f1a1100-b174-40a0-aba7-0b405e01ed92"

    assert keeper.accept({"value": [notification(record), notification(record)]}) == 1
    assert queue.sent == [{"kind": "callRecord", "id": record, "subscriptionId": "sub-1"}]

    with pytest.raises(NotAllowed):
        keeper.accept({"value": [notification(record), notification(record, "forged")]})
    assert len(queue.sent) == 1


def test_a_queued_call_record_is_imported_once() -> None:
    keeper, _, _, _, source = notifications()
    teams = call("rec-1")
    source.pages = [[teams]]
    message = json.dumps({"kind": "callRecord", "id": "rec-1", "subscriptionId": "sub-1"})

    keeper.handle(message, T0)
    keeper.handle(message, T0)  # Graph delivered it twice

    assert list(source.crm.activities) == [teams.activity_id]
    assert source.state.markers[teams.activity_id] == Outcome.IMPORTED


def test_lifecycle_events_renew_recreate_or_read_the_log_back() -> None:
    graph = FakeGraph({"sub-1": StoredSubscription("sub-1", T0 + dt.timedelta(days=2))})
    keeper, _, store, _, source = notifications(graph, FakeStore(graph.subs["sub-1"]))

    keeper.handle(
        json.dumps(
            {"kind": "lifecycle", "event": "reauthorizationRequired", "subscriptionId": "sub-1"}
        ),
        T0,
    )
    assert graph.calls == ["renew sub-1"] and source.windows == []

    keeper.handle(
        json.dumps({"kind": "lifecycle", "event": "missed", "subscriptionId": "sub-1"}), T0
    )
    assert source.windows[-1][0] == T0 - CATCH_UP_LOOKBACK

    graph.subs.clear()
    keeper.handle(
        json.dumps(
            {"kind": "lifecycle", "event": "subscriptionRemoved", "subscriptionId": "sub-1"}
        ),
        T0,
    )
    assert "create" in graph.calls
    assert store.row is not None and store.row.subscription_id != "sub-1"
    assert len(source.windows) == 2 and source.windows[-1][0] == T0 - CATCH_UP_LOOKBACK


def test_a_late_reauthorization_of_a_replaced_subscription_renews_nothing() -> None:
    graph = FakeGraph({"sub-2": StoredSubscription("sub-2", T0 + dt.timedelta(days=2))})
    keeper, _, store, _, _ = notifications(graph, FakeStore(graph.subs["sub-2"], {"sub-1"}))

    keeper.handle(
        json.dumps(
            {"kind": "lifecycle", "event": "reauthorizationRequired", "subscriptionId": "sub-1"}
        ),
        T0,
    )

    assert graph.calls == [] and store.row == graph.subs["sub-2"]
