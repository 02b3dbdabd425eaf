"""Callbacks (§5) end to end: requests in through the API (or stored as a call's key press
stores them), the import run by the local host's timer and queue trigger, D365 in the emulator."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from emulators.common.tls import LocalTLS
from shared.adapters.callback_store import TableCallbackStore
from shared.adapters.dataverse_batch import DataverseCallbacks
from shared.domain.callback_lists import CallbackList
from shared.domain.callbacks import CallbackRequest, request_id_for_call
from shared.services.callbacks import CallbackOptions, CallbackService
from tests.fixtures.entra_dataverse import app_dataverse_client
from tests.fixtures.product import (
    ANNA,
    CALLBACK_LIST,
    CALLBACK_QUEUE_ID,
    CALLER,
    PAUSED_CALLBACK_LIST,
    PAUSED_CALLBACK_QUEUE_ID,
    Product,
    parties,
    seed_contact,
    wait_for,
)

pytestmark = pytest.mark.e2e
TIMER = "callback_import"
EXECUTED = f"Executed 'Functions.{TIMER}' ("


# ---------------------------------------------------------------------- helpers


def post_callback(world: Product, body: Any, **headers: str) -> requests.Response:
    return world.api(
        "POST",
        "callbacks",
        json_body=body,
        headers={"x-functions-key": world.host.function_key, **headers},
    )


def supervisor_list(world: Product, **params: str) -> list[dict[str, Any]]:
    token = world.token(ANNA, roles=["Phone.Supervisor"])
    query = "&".join(f"{k}={v}" for k, v in params.items())
    reply = world.api("GET", f"callbacks?{query}", token=token)
    assert reply.status_code == 200, reply.text
    value: list[dict[str, Any]] = reply.json()["value"]
    return value


def run_timer(world: Product) -> str:
    """Run the import now through the host's admin API; its outcome once it has finished."""
    before = world.host.log_text().count(EXECUTED)
    assert world.host.invoke(TIMER).status_code == 202
    wait_for(lambda: world.host.log_text().count(EXECUTED) > before, what="the timer run")
    return world.host.log_text().split(EXECUTED)[before + 1].split(",")[0]


def billed(world: Product) -> int:
    return sum(1 for r in world.dataverse.requests_seen() if not r["in_batch"])


def phonecall_creates(world: Product) -> list[dict[str, Any]]:
    return [
        r
        for r in world.dataverse.requests_seen()
        if r["method"] == "POST" and r["path"].endswith("/phonecalls")
    ]


def queue_of(world: Product, activity_id: str) -> list[str]:
    return [
        i["_queueid_value"]
        for i in world.dataverse.records("queueitems")
        if i["_objectid_value"] == activity_id
    ]


class NoSignals:
    def captured(self, request: CallbackRequest) -> None:
        pass


@dataclass
class Outside:
    """Our service in this process, on the product's storage and D365: what a call's key
    press stores (no immediate import), and another instance's run."""

    world: Product
    local_tls: LocalTLS

    def service(
        self, *, store: Any = None, clock_offset: timedelta = timedelta(0)
    ) -> CallbackService:
        client = app_dataverse_client(self.local_tls, self.world.entra, self.world.dataverse)
        return CallbackService(
            store=store or TableCallbackStore(self.world.store),
            crm=DataverseCallbacks(client),
            signals=NoSignals(),
            options=CallbackOptions(
                lists=(
                    CallbackList(CALLBACK_LIST, CALLBACK_QUEUE_ID, True),
                    CallbackList(PAUSED_CALLBACK_LIST, PAUSED_CALLBACK_QUEUE_ID, False),
                ),
                pool_names={"sales": "Sales"},
            ),
            clock=lambda: datetime.now(UTC) + clock_offset,
        )

    def key_press(self, number: str, list_id: str = CALLBACK_LIST) -> CallbackRequest:
        """A request as the call flow captures it when a waiting caller presses 1."""
        call_id = str(uuid.uuid4())
        return self.service().capture(
            list_id=list_id,
            number=number,
            requested_at=datetime.now(UTC),
            pool_id="sales",
            source="call",
            request_id=request_id_for_call(call_id),
        )


@pytest.fixture
def outside(world: Product, local_tls: LocalTLS) -> Outside:
    return Outside(world, local_tls)


# ---------------------------------------------------------------------- the immediate path


def test_a_request_is_in_d365_within_seconds_and_the_next_timer_run_finds_nothing(
    world: Product,
) -> None:
    contact_id = seed_contact(world)
    reply = post_callback(
        world,
        {"number": "040 123 4567", "name": "Maija", "note": "Invoice", "list": CALLBACK_LIST},
    )
    assert reply.status_code == 201, reply.text
    created = reply.json()
    assert (created["number"], created["state"], created["source"]) == (CALLER, "open", "api")

    [call] = wait_for(world.phonecalls, timeout=60, what="the callback Phone Call")
    assert (
        call["activityid"]
        == CallbackRequest(
            created["requestId"], CALLBACK_LIST, CALLER, datetime.now(UTC), "api"
        ).activity_uuid
    )
    assert call["subject"] == "Callback Request"
    assert call["phonenumber"] == CALLER
    assert CALLER in call["description"] and "Invoice" in call["description"]
    assert call["_regardingobjectid_value"] == contact_id
    assert parties(world, call["activityid"]) == {2: contact_id}  # To: the customer
    assert call["directioncode"] is True  # outgoing: the agent is to call back
    assert call["scheduledstart"] < call["scheduledend"]  # due within the list's window
    assert queue_of(world, call["activityid"]) == [CALLBACK_QUEUE_ID]

    [handled] = wait_for(
        lambda: supervisor_list(world, list=CALLBACK_LIST, state="handled"),
        what="the request to be closed",
    )
    assert handled["requestId"] == created["requestId"]
    assert handled["handledNote"] == "Handled by D365"
    assert handled["activityId"] == call["activityid"]
    assert handled["identification"] == "single"

    before = billed(world)
    assert run_timer(world) == "Succeeded"
    assert billed(world) == before  # nothing left to do: not one request to Dataverse


def test_the_immediate_path_and_a_timer_run_racing_import_once(world: Product) -> None:
    numbers = [f"+35840700000{i}" for i in range(5)]
    for number in numbers:
        assert post_callback(world, {"number": number, "list": CALLBACK_LIST}).status_code == 201
    assert run_timer(world) == "Succeeded"  # racing the queue handler for the same requests
    wait_for(lambda: len(world.phonecalls()) == 5, timeout=60, what="five Phone Calls")
    wait_for(
        lambda: supervisor_list(world, list=CALLBACK_LIST, state="open") == [],
        what="every request closed",
    )
    assert len(phonecall_creates(world)) == 5
    assert sorted(c["phonenumber"] for c in world.phonecalls()) == numbers
    assert len(world.dataverse.records("queueitems")) == 5


def test_the_api_refuses_bad_input_and_strangers(world: Product) -> None:
    bad_number = post_callback(world, {"number": "12", "list": CALLBACK_LIST})
    assert bad_number.status_code == 422
    assert bad_number.headers["Content-Type"].startswith("application/problem+json")
    assert [e["field"] for e in bad_number.json()["errors"]] == ["number"]
    assert post_callback(world, {"number": CALLER, "list": "nope"}).status_code == 422
    assert post_callback(world, {"name": "no number"}).status_code == 400
    assert post_callback(world, {"number": 358401234567}).status_code == 400
    assert post_callback(world, ["not", "an", "object"]).status_code == 400
    assert world.api("POST", "callbacks", json_body={"number": CALLER}).status_code == 401
    assert world.api("GET", "callbacks").status_code == 401
    assert world.api("GET", "callbacks", ANNA).status_code == 403  # an agent, no supervisor
    token = world.token(ANNA, roles=["Phone.Supervisor"])
    assert world.api("GET", "callbacks?state=later", token=token).status_code == 400
    assert world.api("GET", "callbacks?list=nope", token=token).status_code == 404
    assert world.phonecalls() == []


def test_a_repeated_post_with_the_same_idempotency_key_is_one_request(world: Product) -> None:
    body = {"number": CALLER, "list": CALLBACK_LIST}
    first = post_callback(world, body, **{"Idempotency-Key": "form-42"})
    again = post_callback(world, body, **{"Idempotency-Key": "form-42"})
    assert first.status_code == again.status_code == 201
    assert first.json()["requestId"] == again.json()["requestId"]
    wait_for(lambda: len(world.phonecalls()) == 1, timeout=60, what="the Phone Call")
    wait_for(lambda: supervisor_list(world, state="open") == [], what="the close")
    assert len(supervisor_list(world, state="handled")) == 1


# ---------------------------------------------------------------------- the timer


def test_the_timer_imports_single_several_and_no_matches_and_leaves_a_disabled_list_alone(
    world: Product, outside: Outside
) -> None:
    contact_id = seed_contact(world, "+358401111111")
    world.dataverse.seed(
        {
            "contacts": [{"firstname": "A", "lastname": "A", "telephone1": "+358402222222"}],
            "leads": [{"firstname": "B", "lastname": "B", "mobilephone": "+358402222222"}],
        }
    )
    single = outside.key_press("+358401111111")
    several = outside.key_press("+358402222222")
    nobody = outside.key_press("+358403333333")
    paused = outside.key_press("+358404444444", PAUSED_CALLBACK_LIST)

    assert run_timer(world) == "Succeeded"

    calls = {c["activityid"]: c for c in world.phonecalls()}
    assert set(calls) == {single.activity_uuid, several.activity_uuid, nobody.activity_uuid}
    assert calls[single.activity_uuid]["_regardingobjectid_value"] == contact_id
    assert parties(world, single.activity_uuid) == {2: contact_id}
    for request in (several, nobody):
        assert calls[request.activity_uuid]["_regardingobjectid_value"] is None
        assert parties(world, request.activity_uuid) == {}
        assert "Sales" in calls[request.activity_uuid]["description"]
    assert all(queue_of(world, a) == [CALLBACK_QUEUE_ID] for a in calls)
    handled = {v["requestId"]: v for v in supervisor_list(world, list=CALLBACK_LIST)}
    assert {v["state"] for v in handled.values()} == {"handled"}
    assert handled[several.request_id]["identification"] == "several"
    assert handled[nobody.request_id]["identification"] == "none"
    [left] = supervisor_list(world, list=PAUSED_CALLBACK_LIST)
    assert (left["requestId"], left["state"]) == (paused.request_id, "open")


@dataclass
class CrashingStore:
    """The real store, except that the process dies between the create and the close."""

    real: TableCallbackStore

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def close(self, handled: Sequence[CallbackRequest]) -> None:
        raise SystemExit("killed after the create, before the close")


def test_a_crash_after_the_create_before_the_close_is_repaired_by_the_next_run(
    world: Product, outside: Outside
) -> None:
    request = outside.key_press(CALLER)
    # A run on another instance, a while ago (its claims have expired), dies mid-import.
    dead = outside.service(
        store=CrashingStore(TableCallbackStore(world.store)), clock_offset=timedelta(hours=-1)
    )
    with pytest.raises(SystemExit):
        dead.import_open()
    assert len(world.phonecalls()) == 1
    [still_open] = supervisor_list(world, state="open")
    assert still_open["requestId"] == request.request_id

    assert run_timer(world) == "Succeeded"

    [call] = world.phonecalls()
    assert call["activityid"] == request.activity_uuid
    assert queue_of(world, request.activity_uuid) == [CALLBACK_QUEUE_ID]
    [closed] = supervisor_list(world, list=CALLBACK_LIST)
    assert (closed["state"], closed["activityId"]) == ("handled", request.activity_uuid)
    assert closed["handledNote"] == "Handled by D365"


def test_two_runs_started_together_import_nothing_twice(world: Product, outside: Outside) -> None:
    requests_made = [outside.key_press(f"+3584080000{i:02d}") for i in range(30)]
    other_instance = outside.service()
    before = world.host.log_text().count(EXECUTED)
    assert world.host.invoke(TIMER).status_code == 202
    elsewhere = threading.Thread(target=other_instance.import_open)
    elsewhere.start()
    elsewhere.join(60)
    wait_for(lambda: world.host.log_text().count(EXECUTED) > before, what="the timer run")

    assert len(phonecall_creates(world)) == 30  # not one create attempted twice
    assert {c["activityid"] for c in world.phonecalls()} == {r.activity_uuid for r in requests_made}
    assert len(world.dataverse.records("queueitems")) == 30
    assert supervisor_list(world, state="open") == []


def test_dataverse_throttling_mid_import_lands_everything_later_nothing_twice(
    world: Product, outside: Outside
) -> None:
    made = [outside.key_press(f"+3584090000{i:02d}") for i in range(12)]
    # Every third request to Dataverse is refused for a minute: the first batch (identify,
    # write) lands, the next identify is throttled, and the run stops there.
    world.dataverse.throttle(share=1 / 3, retry_after=60)
    assert run_timer(world) == "Failed"
    world.dataverse.throttle(share=0)
    landed = len(world.phonecalls())
    assert 0 < landed < 12
    assert len(supervisor_list(world, state="open")) == 12 - landed

    assert run_timer(world) == "Succeeded"
    assert {c["activityid"] for c in world.phonecalls()} == {r.activity_uuid for r in made}
    assert len(phonecall_creates(world)) == 12  # nothing twice
    assert len(world.dataverse.records("queueitems")) == 12
    assert supervisor_list(world, state="open") == []
