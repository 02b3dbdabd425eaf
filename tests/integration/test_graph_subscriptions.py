"""The Graph emulator's subscriptions, notifications and call records, through our Graph
adapter over HTTPS, delivering to a small webhook on loopback."""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from emulators.common.server import RunningServer
from emulators.common.tls import LocalTLS
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from emulators.graph import GraphEmulator
from shared.adapters.enterprise_dataverse import DataverseEnterpriseCrm
from shared.adapters.enterprise_state import TableSyncState
from shared.adapters.graph import GraphCallRecords, GraphError, GraphSubscriptions
from shared.adapters.tables import TableStore
from shared.domain.calls import Direction
from shared.domain.enterprise_calls import TEAMS_SOURCE, EnterpriseCall, Rules
from shared.domain.enterprise_users import UserMap
from shared.domain.graph_notifications import StoredSubscription
from shared.services.enterprise_notifications import (
    CallRecordNotifications,
    NotificationOptions,
)
from shared.services.enterprise_sync import EnterpriseSync, SyncOptions
from tests.fixtures.entra_dataverse import app_dataverse_client
from tests.fixtures.product import wait_for
from tests.integration.test_graph_emulator import client

pytestmark = pytest.mark.integration
USER = "11111111-1111-4111-8111-111111111111"


class Webhook:
    """Echoes Graph's validation token (or a wrong one when told) and keeps what it was sent."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.validations: list[str] = []
        self.echo_wrong = False
        self._lock = threading.Lock()
        self._server = RunningServer(self._wsgi, port=0, ssl_context=None)
        self._server.start()
        self.url = f"{self._server.url}/hook"

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        token = request.args.get("validationToken")
        with self._lock:
            if token is not None:
                self.validations.append(token)
                reply = Response("nope" if self.echo_wrong else token, content_type="text/plain")
            else:
                self.posts.append(json.loads(request.get_data() or b"null"))
                reply = Response(status=202)
        return reply(environ, start_response)

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture
def hook() -> Iterator[Webhook]:
    server = Webhook()
    yield server
    server.stop()


@pytest.fixture
def subs(
    graph_reset: GraphEmulator, entra: EntraEmulator, local_tls: LocalTLS
) -> GraphSubscriptions:
    return GraphSubscriptions(client(graph_reset, entra, local_tls))


def create(subs: GraphSubscriptions, hook: Webhook, minutes: int = 4200) -> Any:
    return subs.create(
        notification_url=hook.url,
        lifecycle_url=hook.url + "/lifecycle",
        client_state="our-state",
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes),
    )


def test_a_subscription_is_made_after_both_urls_echo_their_token(
    subs: GraphSubscriptions, hook: Webhook, graph_reset: GraphEmulator
) -> None:
    made = create(subs, hook)

    assert len(hook.validations) == 2
    assert hook.validations[0].startswith("Validation: Testing client application reachability")
    assert subs.ours(hook.url) == [made]
    [stored] = graph_reset.subscriptions.all()
    assert (stored.resource, stored.change_type, stored.client_state) == (
        "/communications/callRecords",
        "created",
        "our-state",
    )


def test_graph_refuses_a_lifetime_over_4230_minutes_a_bad_echo_and_plain_http(
    subs: GraphSubscriptions, hook: Webhook
) -> None:
    with pytest.raises(GraphError) as too_long:
        create(subs, hook, minutes=4231)
    assert (too_long.value.status, too_long.value.code) == (400, "ExtensionError")
    assert "4230 minutes" in too_long.value.message

    hook.echo_wrong = True
    with pytest.raises(GraphError) as bad_echo:
        create(subs, hook)
    assert (bad_echo.value.status, bad_echo.value.code) == (400, "ValidationError")

    with pytest.raises(GraphError) as plain_http:
        subs.create(
            notification_url="http://example.com/hook",
            lifecycle_url="http://example.com/hook",
            client_state="s",
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )
    assert plain_http.value.status == 400
    assert subs.ours(hook.url) == []


def test_renewal_moves_the_expiry_and_a_deleted_subscription_is_gone(
    subs: GraphSubscriptions, hook: Webhook
) -> None:
    made = create(subs, hook, minutes=60)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=4000)

    renewed = subs.renew(made.subscription_id, later)

    assert renewed is not None and renewed.subscription_id == made.subscription_id
    assert abs((renewed.expires_at - later).total_seconds()) < 1
    subs.delete(made.subscription_id)
    assert subs.renew(made.subscription_id, later) is None  # 404: Graph no longer has it
    assert subs.ours(hook.url) == []


def test_an_ended_teams_call_is_notified_as_planned_and_its_record_reads_as_a_call(
    subs: GraphSubscriptions,
    hook: Webhook,
    graph_reset: GraphEmulator,
    entra: EntraEmulator,
    local_tls: LocalTLS,
) -> None:
    made = create(subs, hook)

    ended = graph_reset.end_teams_call(user_id=USER, number="+358401234567", copies=2)
    graph_reset.end_teams_call(user_id=USER, miss=True)

    posts = wait_for(lambda: len(hook.posts) >= 2 and hook.posts, what="two deliveries")
    for post in posts:
        [item] = post["value"]
        assert item["clientState"] == "our-state"
        assert item["subscriptionId"] == made.subscription_id
        assert item["changeType"] == "created"
        assert item["resourceData"]["id"] == ended["callRecordId"]
    wait_for(graph_reset.subscriptions.idle, what="deliveries to finish")
    assert len(hook.posts) == 2  # the missed one never came

    records = GraphCallRecords(client(graph_reset, entra, local_tls))
    call = records.call_record(ended["callRecordId"])
    assert isinstance(call, EnterpriseCall)
    assert (call.direction, call.customer_number, call.user_id) == (
        Direction.INBOUND,
        "+358401234567",
        USER,
    )
    assert call.duration_seconds == 120
    assert records.call_record("00000000-0000-4000-8000-000000000000") is None
    paths = [r["path"] + "?" + r["query"] for r in graph_reset.requests_seen()]
    assert any("$expand=sessions($expand=segments)" in p.replace("%24", "$") for p in paths)


def test_lifecycle_notifications_reach_the_lifecycle_url(
    subs: GraphSubscriptions, hook: Webhook, graph_reset: GraphEmulator
) -> None:
    made = create(subs, hook)

    graph_reset.subscriptions.lifecycle(made.subscription_id, "subscriptionRemoved")

    [post] = wait_for(lambda: hook.posts, what="the lifecycle notification")
    [item] = post["value"]
    assert item["lifecycleEvent"] == "subscriptionRemoved"
    assert item["clientState"] == "our-state"
    assert subs.ours(hook.url) == []  # removed


def test_a_delayed_notification_arrives_after_a_later_calls(
    subs: GraphSubscriptions, hook: Webhook, graph_reset: GraphEmulator
) -> None:
    create(subs, hook)
    graph_reset.plan_next_notification(delay_seconds=3)  # well past a loaded delivery

    first = graph_reset.end_teams_call(user_id=USER)  # delayed by the plan
    second = graph_reset.end_teams_call(user_id=USER)  # the plan was for one call only

    posts = wait_for(lambda: len(hook.posts) >= 2 and hook.posts, what="both deliveries")
    order = [p["value"][0]["resourceData"]["id"] for p in posts]
    assert order == [second["callRecordId"], first["callRecordId"]]


class RemovedWhileRenewing:
    """Graph subscriptions whose first renewal of `doomed` is answered, then Graph removes that
    subscription and its `subscriptionRemoved` is handled in full before the renewing handler
    goes on: two queue handlers at once, the reauthorization's finishing last."""

    def __init__(self, real: GraphSubscriptions, graph: GraphEmulator, doomed: str) -> None:
        self.real, self.graph, self.doomed = real, graph, doomed
        self.keeper: CallRecordNotifications | None = None

    def create(self, **options: Any) -> StoredSubscription:
        return self.real.create(**options)

    def renew(self, subscription_id: str, expires_at: dt.datetime) -> StoredSubscription | None:
        renewed = self.real.renew(subscription_id, expires_at)
        if subscription_id == self.doomed and self.keeper is not None:
            keeper, self.keeper = self.keeper, None
            self.graph.subscriptions.lifecycle(subscription_id, "subscriptionRemoved")
            keeper.handle(lifecycle_message("subscriptionRemoved", subscription_id), NOW)
        return renewed

    def ours(self, notification_url: str) -> list[StoredSubscription]:
        return self.real.ours(notification_url)

    def delete(self, subscription_id: str) -> None:
        self.real.delete(subscription_id)


NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def lifecycle_message(event: str, subscription_id: str) -> str:
    return json.dumps({"kind": "lifecycle", "event": event, "subscriptionId": subscription_id})


def test_a_reauthorization_finishing_after_the_removal_never_stores_the_removed_id(
    subs: GraphSubscriptions,
    hook: Webhook,
    graph_reset: GraphEmulator,
    dataverse_reset: DataverseEmulator,
    entra: EntraEmulator,
    local_tls: LocalTLS,
    storage_connection_string: str,
) -> None:
    suffix = uuid.uuid4().hex[:10]
    state = TableSyncState(
        TableStore(storage_connection_string), markers=f"ecm{suffix}", sync=f"ecs{suffix}"
    )
    first = create(subs, hook)
    state.save_subscription(TEAMS_SOURCE, first, NOW)
    graph = RemovedWhileRenewing(subs, graph_reset, first.subscription_id)
    keeper = CallRecordNotifications(
        graph=graph,
        store=state,
        queue=NoQueue(),
        sync=EnterpriseSync(
            call_records=GraphCallRecords(client(graph_reset, entra, local_tls)),
            crm=DataverseEnterpriseCrm(
                app_dataverse_client(local_tls, entra, dataverse_reset),
                duration_column="new_durationseconds",
            ),
            state=state,
            users=UserMap(()),
            options=SyncOptions(rules=Rules(), overlap_seconds=3600),
        ),
        options=NotificationOptions(
            enabled=True,
            notification_url=hook.url,
            lifecycle_url=hook.url + "/lifecycle",
            client_state="our-state",
            lifetime=dt.timedelta(minutes=4200),
            renew_before=dt.timedelta(days=1),
        ),
    )
    graph.keeper = keeper

    keeper.handle(lifecycle_message("reauthorizationRequired", first.subscription_id), NOW)

    [live] = subs.ours(hook.url)
    assert live.subscription_id != first.subscription_id  # the removal made a new one
    stored = state.subscription(TEAMS_SOURCE)
    assert stored is not None and stored.subscription_id == live.subscription_id
    # The timer afterwards keeps the live one, and a repeated removal changes nothing.
    keeper.handle(lifecycle_message("subscriptionRemoved", first.subscription_id), NOW)
    assert state.subscription(TEAMS_SOURCE) == stored
    assert keeper.keep_subscription(NOW).subscription == stored


class NoQueue:
    def send(self, queue: str, body: str | dict[str, Any], *, delay_seconds: int = 0) -> str:
        raise AssertionError("the queue handler queues nothing")
