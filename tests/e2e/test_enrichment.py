"""Delayed enrichment end to end: recorded calls through the local host's queue trigger, with
Azurite's delayed messages, the ACS emulator's recording files and the Dataverse emulator.

The product here records calls and enriches after 1 s. It has its own Azurite, so no other
host of this test session consumes its `enrichment` queue, and a host.json whose queue retry
delay is 1 s (instead of 10 s) so a message reaches the poison queue within seconds; the
dequeue limit (5) is the app's own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64EncodePolicy
from werkzeug.wrappers import Request, Response

from emulators.common.server import EmulatorApp, RunningServer
from emulators.common.tls import LocalTLS
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from scripts.dataverse_setup import ensure_columns
from shared.adapters.dataverse import DataverseClient
from shared.adapters.identity import ClientCredentialsTokenProvider
from shared.domain.enrichment import EnrichmentColumns
from tests.fixtures.entra_dataverse import API_AUDIENCE, APP_CLIENT_ID, APP_CLIENT_SECRET, TENANT_ID
from tests.fixtures.product import (
    ANNA,
    ANNA_DIRECT,
    BEN,
    CALLER,
    POOL_NUMBER,
    Product,
    connected,
    own_product,
    seed_contact,
    wait_for,
)

pytestmark = pytest.mark.e2e
DELAY, JITTER = 1, 0
ENRICHED_WITHIN = DELAY + JITTER + 15  # the delay window, plus the host's polling and a margin
FUNCTION_KEY = "e2e-function-key"


# ---------------------------------------------------------------------- the product


@pytest.fixture(scope="module")
def enriching(
    local_tls: LocalTLS,
    entra: EntraEmulator,
    dataverse: DataverseEmulator,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Product]:
    with own_product(
        local_tls,
        entra,
        dataverse,
        tmp_path_factory.mktemp("enrichment"),
        extra_env={
            "RECORDING_ENABLED": "true",
            "ENRICH_DELAY_SECONDS": str(DELAY),
            "ENRICH_JITTER_SECONDS": str(JITTER),
            "ENRICH_MAX_WAIT_SECONDS": "60",
        },
        fast_retry=True,
    ) as product:
        yield product


@pytest.fixture(scope="module")
def setup_client(
    local_tls: LocalTLS, entra: EntraEmulator, dataverse: DataverseEmulator
) -> DataverseClient:
    tokens = ClientCredentialsTokenProvider(
        entra.url,
        TENANT_ID,
        APP_CLIENT_ID,
        APP_CLIENT_SECRET,
        f"{dataverse.url}/.default",
        str(local_tls.ca_path),
    )
    return DataverseClient(dataverse.url, tokens.token, ca_bundle=str(local_tls.ca_path))


@pytest.fixture
def world(enriching: Product, setup_client: DataverseClient) -> Iterator[Product]:
    """The recording product, reset, with the custom columns made by the setup command's code."""
    product = enriching
    product.reset()
    ensure_columns(setup_client, EnrichmentColumns("new_"))
    yield product
    drained = wait_for(lambda: queue_empty(enriching), what="the enrichment queue to drain")
    assert drained  # nothing of this test is left to run into the next one


class Queues:
    def __init__(self, product: Product) -> None:
        connection = product.storage
        self.work = QueueClient.from_connection_string(
            connection, "enrichment", message_encode_policy=TextBase64EncodePolicy()
        )
        self.poison = QueueClient.from_connection_string(connection, "enrichment-poison")

    @staticmethod
    def count(queue: QueueClient) -> int:
        try:
            return int(queue.get_queue_properties().approximate_message_count or 0)
        except ResourceNotFoundError:  # created on first use
            return 0

    def poisoned(self) -> list[str]:
        try:
            return [str(m.content) for m in self.poison.peek_messages(max_messages=32)]
        except ResourceNotFoundError:
            return []


def queue_empty(enriching: Product) -> bool:
    return Queues.count(Queues(enriching).work) == 0


@pytest.fixture
def queues(enriching: Product) -> Iterator[Queues]:
    q = Queues(enriching)
    yield q
    if Queues.count(q.poison):
        q.poison.clear_messages()


class HeldRecordingEvents:
    """Stands in for the recording webhook: file events wait here until released to the app."""

    def __init__(self, tls: LocalTLS) -> None:
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()
        app = EmulatorApp()
        app.route("/events", ["POST"], self._keep)
        self._server = RunningServer(app, ssl_context=tls.server_context()).start()
        self.url = f"{self._server.url}/events"

    def _keep(self, request: Request) -> Response:
        with self._lock:
            self.bodies.append(request.get_data())
        return Response(status=200)

    def hold(self, world: Product) -> None:
        world.acs.set_webhooks(recording=self.url)

    def release(self, world: Product) -> None:
        wait_for(lambda: self.bodies, what="the recording file event")
        with self._lock:
            bodies, self.bodies = list(self.bodies), []
        for body in bodies:
            reply = world.http.post(
                f"{world.host.url}/api/acs/recordings?code={FUNCTION_KEY}",
                data=body,
                headers={"Content-Type": "application/json", "aeg-event-type": "Notification"},
                timeout=10,
            )
            assert reply.status_code == 200, reply.text

    def stop(self) -> None:
        self._server.stop()


@pytest.fixture
def held(local_tls: LocalTLS) -> Iterator[HeldRecordingEvents]:
    events = HeldRecordingEvents(local_tls)
    yield events
    events.stop()


# ---------------------------------------------------------------------- helpers


def recorded_call(world: Product, number: str = POOL_NUMBER) -> str:
    """A call answered by Anna, recorded, then ended by the caller; its call id."""
    world.acs.place_call(CALLER, number)
    world.answer(ANNA)
    call = connected(world, ANNA)
    wait_for(world.acs.recordings, what="the recording to start")
    world.acs.hang_up(CALLER)
    return str(call["callId"])


def progress(world: Product, call_id: str) -> dict[str, Any] | None:
    return world.store.get("calls", call_id, "enrichment")


def finished(world: Product, call_id: str, timeout: float = ENRICHED_WITHIN) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        row = progress(world, call_id)
        return row if row and row.get("outcome") else None

    return wait_for(done, timeout=timeout, what="the enrichment outcome")


def waiting_for_recording(world: Product, call_id: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        row = progress(world, call_id)
        return row if row and row["status"] == "waitingForRecording" else None

    return wait_for(check, timeout=ENRICHED_WITHIN, what="a first attempt to find no recording")


def app_patches(world: Product, activity_id: str) -> list[dict[str, Any]]:
    return [
        r
        for r in world.dataverse.requests_seen()
        if r["method"] == "PATCH"
        and activity_id in r["path"]
        and not r.get("caller_object_id")  # the app's own, not an agent acting in D365
    ]


def the_activity(world: Product) -> dict[str, Any]:
    [activity] = wait_for(world.phonecalls, what="the Phone Call activity")
    return activity


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------------- the scenarios


def test_a_recorded_pool_call_gets_link_metrics_and_completion_and_the_link_plays(
    world: Product,
) -> None:
    seed_contact(world)
    call_id = recorded_call(world)

    row = finished(world, call_id)
    activity = the_activity(world)

    link = f"{world.host.url}/api/panel/recording.html?callId={call_id}"
    assert row["outcome"] == "enriched" and row["recording_url"] == link
    assert activity["new_recordingurl"] == link
    # The page plays the audio endpoint with the viewer's token (a clicked link sends none).
    link = f"{world.host.url}/api/recordings/{call_id}"
    assert (activity["statecode"], activity["statuscode"]) == (1, 4)  # completed, Received
    arrived, answered = when(activity["new_callarrivedat"]), when(activity["new_firstansweredat"])
    assert arrived <= answered <= when(activity["actualend"])
    assert activity["new_waittimeseconds"] == (answered - arrived).total_seconds()
    assert len(app_patches(world, activity["activityid"])) == 1  # one PATCH did all of it

    played = world.http.get(link, headers={"Authorization": f"Bearer {world.token(ANNA)}"})
    assert played.status_code == 200, played.text
    assert played.headers["Content-Type"].startswith("audio/wav")
    assert played.content[:4] == b"RIFF"
    part = world.http.get(
        link, headers={"Authorization": f"Bearer {world.token(ANNA)}", "Range": "bytes=0-3"}
    )
    assert (part.status_code, part.content) == (206, b"RIFF")
    supervisor = world.token(ANNA, roles=["Phone.Supervisor"])
    assert world.http.get(link, headers={"Authorization": f"Bearer {supervisor}"}).ok
    assert world.http.get(link).status_code == 401
    # Without a phone role Anna still owns the activity in D365, which lets her read it.
    no_role = world.token(ANNA, roles=["Some.Other.Role"])
    assert world.http.get(link, headers={"Authorization": f"Bearer {no_role}"}).status_code == 200
    ben = world.token(BEN)  # an agent, but not of this call, and not allowed by Dataverse
    assert world.http.get(link, headers={"Authorization": f"Bearer {ben}"}).status_code == 403


def test_a_direct_call_gets_the_link_and_no_pool_metrics(world: Product) -> None:
    call_id = recorded_call(world, ANNA_DIRECT)

    assert finished(world, call_id)["outcome"] == "enriched"
    activity = the_activity(world)
    assert activity["new_recordingurl"] == (
        f"{world.host.url}/api/panel/recording.html?callId={call_id}"
    )
    assert activity["new_callarrivedat"] is None and activity["new_waittimeseconds"] is None
    assert (activity["statecode"], activity["statuscode"]) == (1, 4)


def test_a_recording_event_after_the_first_attempt_is_picked_up_by_the_requeue(
    world: Product, held: HeldRecordingEvents
) -> None:
    held.hold(world)
    call_id = recorded_call(world)

    first = waiting_for_recording(world, call_id)
    activity = the_activity(world)
    assert app_patches(world, activity["activityid"]) == []
    held.release(world)

    row = finished(world, call_id, timeout=30)
    assert row["outcome"] == "enriched" and row["attempts"] > first["attempts"]
    assert the_activity(world)["new_recordingurl"].endswith(f"recording.html?callId={call_id}")


def test_an_activity_the_agent_completed_first_is_left_alone_and_not_retried(
    world: Product, held: HeldRecordingEvents, queues: Queues, local_tls: LocalTLS
) -> None:
    held.hold(world)
    call_id = recorded_call(world)
    activity_id = the_activity(world)["activityid"]
    # The agent completes it in D365 before the recording is in.
    completed = complete_as_agent(world, activity_id, local_tls)
    assert completed.status_code == 204, completed.text
    held.release(world)

    row = finished(world, call_id, timeout=30)
    wait_for(lambda: Queues.count(queues.work) == 0, what="the message to be done with")

    assert row["outcome"] == "activityClosed" and "nothing written" in row["reason"]
    [refused] = app_patches(world, activity_id)
    assert refused["status"] == 400  # tried once, refused, not retried
    activity = the_activity(world)
    assert activity["new_recordingurl"] is None and activity["new_waittimeseconds"] is None
    assert Queues.count(queues.poison) == 0


def complete_as_agent(world: Product, activity_id: str, tls: LocalTLS) -> requests.Response:
    tokens = ClientCredentialsTokenProvider(
        world.entra.url,
        TENANT_ID,
        APP_CLIENT_ID,
        APP_CLIENT_SECRET,
        f"{world.dataverse.url}/.default",
        str(tls.ca_path),
    )
    return requests.patch(
        f"{world.dataverse.api_url}/phonecalls({activity_id})",
        json={"statecode": 1, "statuscode": 2},  # the agent's choice, which must stand
        headers={
            "Authorization": f"Bearer {tokens.token()}",
            "CallerObjectId": ANNA.oid,  # as Anna, the way D365's own UI would
            "If-Match": "*",
        },
        verify=str(tls.ca_path),
        timeout=10,
    )


def test_the_message_delivered_twice_has_one_patch_of_effect(
    world: Product, held: HeldRecordingEvents, queues: Queues
) -> None:
    held.hold(world)
    call_id = recorded_call(world)
    waiting_for_recording(world, call_id)
    queues.work.send_message(json.dumps({"callId": call_id}))  # a second copy, in parallel
    held.release(world)

    row = finished(world, call_id, timeout=30)
    wait_for(lambda: Queues.count(queues.work) == 0, what="both copies to be done with")
    queues.work.send_message(json.dumps({"callId": call_id}))  # and a late third one
    wait_for(lambda: Queues.count(queues.work) == 0, what="the late copy to be done with")

    activity = the_activity(world)
    [patch] = app_patches(world, activity["activityid"])
    assert patch["status"] == 204
    assert row["outcome"] == "enriched"
    assert progress(world, call_id)["outcome"] == "enriched"  # type: ignore[index]


def test_when_dataverse_keeps_failing_the_message_is_poisoned_and_the_call_says_why(
    world: Product, held: HeldRecordingEvents, queues: Queues
) -> None:
    held.hold(world)
    call_id = recorded_call(world)
    the_activity(world)
    world.dataverse.throttle(share=1.0, retry_after=0)  # every request from now on: 429
    held.release(world)

    poisoned = wait_for(queues.poisoned, timeout=40, what="a poison message")
    row = progress(world, call_id)

    assert len(poisoned) == 1
    assert row is not None and row["status"] == "poisoned" and row["dequeue_count"] == 5
    assert "429" in row["reason"] and row["reason"].endswith("moved to the poison queue")
    assert not row.get("outcome")
    throttled = [r for r in world.dataverse.requests_seen() if r["status"] == 429]
    assert len(throttled) >= 5 * 2  # Retry-After honoured within each of the five attempts


def test_recording_playback_is_decided_by_the_call_the_roles_and_dataverse(
    world: Product,
) -> None:
    """The call's agents and supervisors listen; anyone else only if Dataverse lets them read
    the Phone Call as themselves (CallerObjectId), as its security roles and sharing say."""
    call_id = recorded_call(world)
    finished(world, call_id)
    activity_id = the_activity(world)["activityid"]
    audio = f"{world.host.url}/api/recordings/{call_id}"
    manager_oid = "44444444-4444-4444-8444-444444444444"
    [manager_id] = world.dataverse.seed(
        {"systemusers": [{"fullname": "Mia Manager", "azureactivedirectoryobjectid": manager_oid}]}
    )["systemusers"]

    def status(token: str) -> int:
        return world.http.get(audio, headers={"Authorization": f"Bearer {token}"}).status_code

    manager = world.entra.mint_user_token(
        oid=manager_oid, upn="mia@contoso.example", name="Mia Manager", aud=API_AUDIENCE
    )
    stranger = world.entra.mint_user_token(
        oid="55555555-5555-4555-8555-555555555555", upn="x@y.example", name="X", aud=API_AUDIENCE
    )
    assert status(world.token(ANNA)) == 200  # the call's own agent
    assert status(world.token(BEN)) == 403  # another agent, not allowed by Dataverse
    assert status(manager) == 403  # a D365 user with user-level read of activities
    assert status(stranger) == 403  # not a user of the org at all (Dataverse: 404)
    asked = [r for r in world.dataverse.requests_seen() if r.get("caller_object_id") == manager_oid]
    assert asked and asked[-1]["status"] == 403
    assert asked[-1]["path"].endswith(f"phonecalls({activity_id})")

    world.dataverse.privileges.share("phonecall", activity_id, manager_id)
    assert status(manager) == 200  # shared with her in D365
    world.dataverse.privileges.set_read(BEN.user_id, "phonecall", "organization")
    assert status(world.token(BEN)) == 200  # a role that reads every Phone Call


def test_long_notes_saved_three_times_end_as_one_note_and_a_marked_description(
    world: Product, held: HeldRecordingEvents
) -> None:
    """5,000 characters of notes: the description gets what fits and says the rest is attached;
    one annotation holds the whole, latest text after three saves (one after hang-up) and the
    enrichment (docs/phone-call-mapping.md)."""
    notes = "".join(f"{n}: the customer explained the invoice again. " for n in range(150))
    notes = notes[:5000]
    held.hold(world)
    world.acs.place_call(CALLER, POOL_NUMBER)
    world.answer(ANNA)
    call_id = str(connected(world, ANNA)["callId"])
    path = f"me/calls/{call_id}/notes"
    for text in (notes[:3000], notes[:4500]):  # as typed, during the call
        assert world.api("PUT", path, ANNA, json_body={"notes": text}).status_code == 200
    world.acs.hang_up(CALLER)
    activity_id = the_activity(world)["activityid"]
    # The call row learns the activity's id just after D365 has it; from then on a save follows.
    wait_for(
        lambda: (world.current(ANNA) or {}).get("activityId") == activity_id,
        what="the call to know its activity",
    )
    late = world.api("PUT", path, ANNA, json_body={"notes": notes})  # finished after hang-up
    assert late.status_code == 200, late.text
    assert late.json()["notesInActivity"] is True and late.json()["notes"] == notes
    held.release(world)
    assert finished(world, call_id, timeout=30)["outcome"] == "enriched"

    activity = the_activity(world)
    assert activity["statecode"] == 1  # completed by the enrichment, notes and all
    description = activity["description"]
    assert len(description) <= 2000 and description.endswith("… (full notes attached)")
    assert notes.startswith(description.removesuffix("… (full notes attached)"))
    attached = [
        a for a in world.dataverse.records("annotations") if a["_objectid_value"] == activity_id
    ]
    assert len(attached) == 1, attached
    assert attached[0]["notetext"] == notes
    assert attached[0]["objecttypecode"] == "phonecall"
