"""Graph change notifications (§4): reading a notification POST, the clientState rule, queue
messages, when the subscription is renewed, and a callRecord read as an enterprise call."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from emulators.graph.call_records import expanded, teams_pstn_call
from shared.adapters.graph import call_record_call
from shared.domain.calls import Direction
from shared.domain.enterprise_calls import EnterpriseCall, Outcome, Rules, screen
from shared.domain.enterprise_users import user_map
from shared.domain.graph_notifications import (
    CallRecordNotice,
    CatchUp,
    LifecycleEvent,
    LifecycleNotice,
    StoredSubscription,
    SubscriptionStep,
    client_state_for,
    read_notifications,
    subscription_step,
)
from shared.errors import InvalidInput, NotAllowed
from shared.messages import enterprise_notice, enterprise_notice_body

STATE = client_state_for("a-secret-of-at-least-thirty-two-characters")
RECORD = "2f1a1100-b174-40a0-aba7-0b405e01ed92"
T0 = dt.datetime(2024, 5, 6, 8, 0, tzinfo=dt.UTC)


def change(state: Any = STATE, **extra: Any) -> dict[str, Any]:
    return {
        "subscriptionId": "sub-1",
        "changeType": "created",
        "clientState": state,
        "resource": f"communications/callRecords/{RECORD}",
        "resourceData": {"id": RECORD, "@odata.type": "#Microsoft.Graph.callrecord"},
        **extra,
    }


def test_the_client_state_is_secret_derived_stable_and_within_graphs_limit() -> None:
    assert client_state_for("a-secret-of-at-least-thirty-two-characters") == STATE
    assert client_state_for("another-secret-of-at-least-thirty-two-chars") != STATE
    assert 0 < len(STATE) <= 128 and "secret" not in STATE


def test_change_and_lifecycle_notifications_become_notices() -> None:
    body = {
        "value": [
            change(),
            {"subscriptionId": "sub-1", "clientState": STATE, "lifecycleEvent": "missed"},
        ]
    }

    assert read_notifications(body, STATE) == [
        CallRecordNotice(RECORD, "sub-1"),
        LifecycleNotice("sub-1", LifecycleEvent.MISSED),
    ]


def test_the_record_id_comes_from_the_resource_when_resource_data_has_none() -> None:
    item = change(resourceData=None)
    assert read_notifications({"value": [item]}, STATE) == [CallRecordNotice(RECORD, "sub-1")]


@pytest.mark.parametrize("state", ["guessed", None, "", STATE + "x"])
def test_one_item_without_our_client_state_refuses_the_whole_post(state: Any) -> None:
    with pytest.raises(NotAllowed) as refused:
        read_notifications({"value": [change(), change(state)]}, STATE)
    assert STATE not in str(refused.value)


@pytest.mark.parametrize(
    "body",
    [None, [], {"value": "x"}, {"value": [change(resource="x/../y", resourceData={"id": "../"})]}],
)
def test_a_malformed_collection_is_invalid_input(body: Any) -> None:
    with pytest.raises(InvalidInput):
        read_notifications(body, STATE)


def test_queue_messages_round_trip_and_junk_is_refused() -> None:
    for notice in (
        CallRecordNotice(RECORD, "sub-1"),
        LifecycleNotice("sub-1", LifecycleEvent.SUBSCRIPTION_REMOVED),
        CatchUp(T0, "missed"),
    ):
        assert enterprise_notice(json.dumps(enterprise_notice_body(notice))) == notice
    for junk in ("null", "{", '{"kind": "callRecord", "id": "../x"}', '{"kind": "nope"}'):
        with pytest.raises(InvalidInput):
            enterprise_notice(junk)


def test_the_subscription_is_created_renewed_or_kept() -> None:
    day = dt.timedelta(days=1)
    assert subscription_step(None, T0, day) is SubscriptionStep.CREATE
    assert subscription_step(StoredSubscription("s", T0), T0, day) is SubscriptionStep.CREATE
    soon = StoredSubscription("s", T0 + dt.timedelta(hours=3))
    assert subscription_step(soon, T0, day) is SubscriptionStep.RENEW
    later = StoredSubscription("s", T0 + dt.timedelta(days=2))
    assert subscription_step(later, T0, day) is SubscriptionStep.KEEP


def record(direction: str, connected: int) -> dict[str, Any]:
    made, _ = teams_pstn_call(
        user_id="11111111-1111-4111-8111-111111111111",
        user_principal_name="Anna@Contoso.com",
        direction=direction,
        number="+358401234567",
        start=T0,
        ring_seconds=10,
        connected_seconds=connected,
    )
    return expanded(made, "sessions($expand=segments)")


def call_of(data: dict[str, Any]) -> EnterpriseCall:
    call = call_record_call(data)
    assert isinstance(call, EnterpriseCall), call
    return call


def test_an_inbound_call_record_is_the_users_call_from_the_phone_number() -> None:
    call = call_of(record("inbound", 200))

    assert call.direction is Direction.INBOUND
    assert call.customer_number == "+358401234567"
    assert call.user_id == "11111111-1111-4111-8111-111111111111"
    assert call.user_email == "anna@contoso.com"
    assert call.duration_seconds == 200  # connected, not ringing
    assert call.started_at == T0


def test_an_outbound_record_and_an_unanswered_one() -> None:
    assert call_of(record("outbound", 60)).direction is Direction.OUTBOUND
    unanswered = call_of(record("inbound", 0))
    assert unanswered.duration_seconds == 0
    assert screen(unanswered, user_map([], []), Rules(default_owner="o")) is Outcome.TOO_SHORT


def test_a_meeting_or_a_teams_to_teams_call_is_no_user_call() -> None:
    meeting = {**record("inbound", 60), "type": "groupCall"}
    call = call_of(meeting)
    assert call.direction is None
    assert screen(call, user_map([], []), Rules()) is Outcome.NOT_A_USER_CALL


def test_an_unmapped_users_call_goes_to_the_default_owner_when_one_is_set() -> None:
    call = call_of(record("inbound", 60))
    users = user_map([], [])
    assert screen(call, users, Rules()) is Outcome.UNMAPPED_USER
    owner = "aaaaaaaa-0000-4000-8000-0000000000ff"
    screened = screen(call, users, Rules(default_owner=owner))
    assert not isinstance(screened, Outcome) and screened.owner_id == owner
