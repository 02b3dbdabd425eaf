"""§4 end to end, the fast path: a Teams call ends, the Graph emulator notifies our webhook,
the queue handler fetches the call record and the Phone Call is in the Dataverse emulator
within seconds; repeats, the catch-up poll and the web phone add nothing; a missed
notification is the poll's; the subscription is renewed; a forged notification is refused."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from azure.storage.queue import QueueClient

from emulators.graph import GraphEmulator
from shared.adapters.enterprise_state import MARKERS, SUBSCRIPTION_ROW, SYNC
from shared.domain.graph_notifications import client_state_for
from shared.queues import ENTERPRISE_NOTIFICATIONS
from tests.e2e.test_enterprise_calls import run_sync
from tests.fixtures.product import (
    ANNA,
    CALLBACK_SECRET,
    CALLER,
    POOL_NUMBER,
    Product,
    connected,
    seed_contact,
    wait_for,
)

pytestmark = pytest.mark.e2e
SUBSCRIPTION_TIMER = "enterprise_calls_subscription"
NOTIFY_TIMEOUT = 45  # seconds: the queue poll plus Graph and Dataverse on a loaded machine


@pytest.fixture
def teams(world: Product, graph_reset: GraphEmulator) -> GraphEmulator:
    """Graph with no records or subscriptions, and no sync state left by an earlier test."""
    for table in (MARKERS, SYNC):
        for row in list(world.store.query(table, "PartitionKey ge @any", {"any": ""})):
            world.store.delete(table, row["PartitionKey"], row["RowKey"])
    return graph_reset


def live_subscriptions(graph: GraphEmulator) -> list[dict[str, Any]]:
    return [
        s.to_json(graph.url)
        for s in graph.subscriptions.all()
        if not s.removed and s.expires > dt.datetime.now(dt.UTC)
    ]


def keep_subscription(world: Product) -> None:
    reply = world.host.invoke(SUBSCRIPTION_TIMER)
    assert reply.status_code == 202, reply.text


@pytest.fixture
def subscribed(world: Product, teams: GraphEmulator) -> dict[str, Any]:
    """The subscription timer has run: Graph holds our call-record subscription."""
    keep_subscription(world)
    try:
        [sub] = wait_for(
            lambda: live_subscriptions(teams), what="the call-record subscription", timeout=30
        )
        # Graph answers the create before the timer has stored the row: wait for the row too.
        wait_for(
            lambda: world.store.get(SYNC, "teams", SUBSCRIPTION_ROW),
            what="the stored subscription row",
            timeout=30,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- host log ---\n{world.host.log_tail(30)}") from None
    return sub


def notified(world: Product, record_id: str, count: int = 1) -> list[dict[str, Any]]:
    """Wait until the queue handler has settled `record_id` `count` times; those log lines."""

    def lines() -> list[dict[str, Any]] | None:
        found = [
            json.loads(line[line.index("{") :])
            for line in world.host.log_text().splitlines()
            if "enterpriseCallNotified" in line and record_id in line
        ]
        return found if len(found) >= count else None

    try:
        return wait_for(lines, what=f"{count} import(s) of {record_id}", timeout=NOTIFY_TIMEOUT)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- host log ---\n{world.host.log_tail(40)}") from None


def queued_messages(world: Product) -> int:
    queue = QueueClient.from_connection_string(world.storage, ENTERPRISE_NOTIFICATIONS)
    try:
        return int(queue.get_queue_properties().approximate_message_count or 0)
    except Exception:  # the queue does not exist yet: nothing was ever queued
        return 0


def test_the_subscription_is_made_with_the_validation_handshake_and_our_urls(
    world: Product, subscribed: dict[str, Any], teams: GraphEmulator
) -> None:
    assert subscribed["resource"] == "/communications/callRecords"
    assert subscribed["notificationUrl"] == f"{world.host.url}/api/enterprise-calls/notifications"
    assert subscribed["lifecycleNotificationUrl"] == (
        f"{world.host.url}/api/enterprise-calls/lifecycle"
    )
    validations = [d for d in teams.subscriptions.deliveries() if d["kind"] == "validation"]
    assert [d["status"] for d in validations] == [200, 200]  # both URLs echoed the token
    stored = world.store.get(SYNC, "teams", SUBSCRIPTION_ROW)
    assert stored is not None and stored["subscription_id"] == subscribed["id"]

    def timer_runs() -> int:
        return sum(
            '"function":"enterprise_calls_subscription"' in line
            for line in world.host.log_text().splitlines()
        )

    before = timer_runs()
    keep_subscription(world)  # it lives long enough: nothing more is asked of Graph
    wait_for(lambda: timer_runs() > before or None, what="the second timer run")
    assert len(teams.subscriptions.all()) == 1


def test_a_teams_call_is_in_d365_within_seconds_through_its_notification(
    world: Product, subscribed: dict[str, Any], teams: GraphEmulator
) -> None:
    contact_id = seed_contact(world)

    ended = teams.end_teams_call(user_id=ANNA.oid, number=CALLER, connected_seconds=200)

    [activity] = wait_for(world.phonecalls, what="the activity", timeout=NOTIFY_TIMEOUT)
    assert activity["subject"] == f"Teams call from {CALLER}"
    assert activity["_ownerid_value"] == ANNA.user_id
    assert activity["_regardingobjectid_value"] == contact_id
    assert (activity["directioncode"], activity["statecode"]) == (False, 1)
    assert activity["actualdurationminutes"] == 4  # 200 connected seconds
    [line] = notified(world, ended["callRecordId"])
    assert line["outcome"] == "imported"
    paths = [r["path"] for r in teams.requests_seen()]
    assert f"/v1.0/communications/callRecords/{ended['callRecordId']}" in paths
    assert not any("getPstnCalls" in p for p in paths)  # no poll was needed


def test_a_repeated_notification_and_the_catch_up_poll_leave_one_activity(
    world: Product, subscribed: dict[str, Any], teams: GraphEmulator
) -> None:
    seed_contact(world)

    ended = teams.end_teams_call(user_id=ANNA.oid, number=CALLER, copies=3)

    lines = notified(world, ended["callRecordId"], count=3)
    assert sorted(line["outcome"] for line in lines) == ["duplicate", "duplicate", "imported"]
    poll = run_sync(world)  # the PSTN log row of the same call: another id, the same call
    assert poll["counts"]["alreadyLogged"] == 1 and poll["counts"]["imported"] == 0
    assert len(world.phonecalls()) == 1


def test_a_call_the_web_phone_handled_is_not_logged_again_by_its_notification(
    world: Product, subscribed: dict[str, Any], teams: GraphEmulator
) -> None:
    seed_contact(world)
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)
    connected(world, ANNA)
    world.acs.hang_up(CALLER)
    [logged] = wait_for(world.phonecalls, what="the web phone's activity")
    answered = dt.datetime.fromisoformat(logged["actualstart"].replace("Z", "+00:00"))

    # Teams reports the same call (it rang a little before the web phone answered it).
    ended = teams.end_teams_call(
        user_id=ANNA.oid, number=CALLER, start=answered - dt.timedelta(seconds=15)
    )

    [line] = notified(world, ended["callRecordId"])
    assert line["outcome"] == "alreadyLogged" and line["activityId"] == logged["activityid"]
    assert [a["activityid"] for a in world.phonecalls()] == [logged["activityid"]]


def test_a_missed_notification_is_recovered_by_the_catch_up_poll(
    world: Product, subscribed: dict[str, Any], teams: GraphEmulator
) -> None:
    seed_contact(world)

    teams.end_teams_call(user_id=ANNA.oid, number=CALLER, miss=True)

    assert not [d for d in teams.subscriptions.deliveries() if d["kind"] == "change"]
    assert world.phonecalls() == []
    poll = run_sync(world)
    assert poll["counts"]["imported"] == 1
    [activity] = world.phonecalls()
    assert activity["subject"] == f"Teams call from {CALLER}"


def test_an_expiring_subscription_is_renewed_before_it_expires(
    world: Product, subscribed: dict[str, Any], teams: GraphEmulator
) -> None:
    # Time passes: the subscription has ten minutes left, in Graph and in our row.
    teams.subscriptions.set_expiry(subscribed["id"], 600)
    row = world.store.get(SYNC, "teams", SUBSCRIPTION_ROW)
    assert row is not None
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    world.store.upsert(SYNC, {**row, "expires_at": soon}, replace=True)
    teams.requests_seen()  # (the log is cumulative: count from here)
    before = len(teams.requests_seen())

    keep_subscription(world)

    def renewed() -> dict[str, Any] | None:
        [sub] = live_subscriptions(teams)
        expires = dt.datetime.fromisoformat(sub["expirationDateTime"].replace("0Z", "+00:00"))
        return sub if expires > dt.datetime.now(dt.UTC) + dt.timedelta(days=2) else None

    sub = wait_for(renewed, what="the renewed subscription", timeout=30)
    assert sub["id"] == subscribed["id"]  # renewed, not replaced
    methods = [(r["method"], r["path"]) for r in teams.requests_seen()[before:]]
    assert ("PATCH", f"/v1.0/subscriptions/{subscribed['id']}") in methods
    assert ("POST", "/v1.0/subscriptions") not in methods
    # Graph answers the PATCH before the timer stores the renewal: wait for our row too.
    stored = wait_for(
        lambda: (
            (row := world.store.get(SYNC, "teams", SUBSCRIPTION_ROW))
            and row["expires_at"] > soon + dt.timedelta(days=1)
            and row
        ),
        what="the renewal stored",
        timeout=30,
    )
    assert stored["subscription_id"] == subscribed["id"]


def test_lifecycle_notifications_reauthorize_and_recreate_the_subscription(
    world: Product, subscribed: dict[str, Any], teams: GraphEmulator
) -> None:
    before = len(teams.requests_seen())
    teams.subscriptions.lifecycle(subscribed["id"], "reauthorizationRequired")
    wait_for(
        lambda: (
            ("PATCH", f"/v1.0/subscriptions/{subscribed['id']}")
            in [(r["method"], r["path"]) for r in teams.requests_seen()[before:]]
        ),
        what="the reauthorizing PATCH",
        timeout=NOTIFY_TIMEOUT,
    )
    # Graph answers the PATCH before the handler stores the renewal: the next event waits for it.
    wait_for(
        lambda: any(
            '"graphSubscription"' in line and '"renewed"' in line and subscribed["id"] in line
            for line in world.host.log_text().splitlines()
        ),
        what="the renewal stored",
        timeout=NOTIFY_TIMEOUT,
    )

    teams.subscriptions.lifecycle(subscribed["id"], "subscriptionRemoved")

    [new] = wait_for(
        lambda: [s for s in live_subscriptions(teams) if s["id"] != subscribed["id"]],
        what="a new subscription",
        timeout=NOTIFY_TIMEOUT,
    )
    stored = wait_for(
        lambda: (
            (row := world.store.get(SYNC, "teams", SUBSCRIPTION_ROW))
            and row["subscription_id"] == new["id"]
            and row
        ),
        what="the new subscription stored",
    )
    assert stored["subscription_id"] == new["id"]


def test_a_forged_notification_is_refused_and_changes_nothing(
    world: Product, subscribed: dict[str, Any], teams: GraphEmulator
) -> None:
    seed_contact(world)
    ended = teams.end_teams_call(user_id=ANNA.oid, number=CALLER, miss=True)
    record = ended["callRecordId"]
    real_state = client_state_for(CALLBACK_SECRET)

    def item(state: str) -> dict[str, Any]:
        return {
            "subscriptionId": subscribed["id"],
            "changeType": "created",
            "clientState": state,
            "resource": f"communications/callRecords/{record}",
            "resourceData": {"id": record, "@odata.type": "#Microsoft.Graph.callrecord"},
        }

    url = "enterprise-calls/notifications"
    forged = world.api("POST", url, json_body={"value": [item("guessed")]})
    mixed = world.api("POST", url, json_body={"value": [item(real_state), item("guessed")]})
    unsigned = world.api(
        "POST", url, json_body={"value": [{**item(real_state), "clientState": None}]}
    )

    for reply in (forged, mixed, unsigned):
        assert reply.status_code == 403, reply.text
        assert reply.headers["Content-Type"].startswith("application/problem+json")
        assert "guessed" not in reply.text and real_state not in reply.text
    assert queued_messages(world) == 0
    assert world.phonecalls() == []
    not_json = world.api("POST", url, raw=b"{", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400

    # The same notification with the right clientState is taken: the refusal was the state.
    genuine = world.api("POST", url, json_body={"value": [item(real_state)]})
    assert genuine.status_code == 202, genuine.text
    notified(world, record)
    assert len(world.phonecalls()) == 1


def test_the_validation_handshake_echoes_the_token_as_plain_text(world: Product) -> None:
    token = "Validation: Testing client application reachability for subscription Request-Id: 1"
    for path in ("enterprise-calls/notifications", "enterprise-calls/lifecycle"):
        reply = world.http.post(
            f"{world.host.url}/api/{path}", params={"validationToken": token}, timeout=10
        )
        assert reply.status_code == 200
        assert reply.headers["Content-Type"].startswith("text/plain")
        assert reply.text == token
