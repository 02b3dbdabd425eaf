"""The Graph emulator's subscriptions, notifications and call records, through our Graph
adapter over HTTPS, delivering to a small webhook on loopback."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from emulators.common.server import RunningServer
from emulators.common.tls import LocalTLS
from emulators.entra import EntraEmulator
from emulators.graph import GraphEmulator
from shared.adapters.graph import GraphCallRecords, GraphError, GraphSubscriptions
from shared.domain.calls import Direction
from shared.domain.enterprise_calls import EnterpriseCall
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
