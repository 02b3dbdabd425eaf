"""Notes longer than the Phone Call's description: the emulator's `annotations` as Dataverse
answers them, the real adapters writing them, and the notes row on a real Azurite."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import requests

from emulators.common.tls import LocalTLS
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from shared.adapters.dataverse import DataverseClient, DataverseCrm
from shared.adapters.enrichment import DataverseActivityEnrichment
from shared.adapters.repositories import TableCallRepository
from shared.adapters.tables import TableStore
from shared.domain.activity import (
    ATTACHED_MARKER,
    NOTES_SUBJECT,
    SubjectTemplates,
    activity_notes,
    notes_annotation_id,
    phone_call_activity,
)
from shared.domain.calls import Call, CallKind, Direction
from shared.domain.enrichment import ActivityUpdate, EnrichmentColumns, WriteResult
from tests.fixtures.entra_dataverse import add_custom_columns, app_dataverse_client

pytestmark = pytest.mark.integration

AGENT = "aaaaaaaa-0000-4000-8000-000000000001"
T0 = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
COLUMNS = EnrichmentColumns("new_")
LONG = "".join(f"{n}: the customer explained the invoice again. " for n in range(150))[:5000]


def error_of(response: requests.Response) -> dict[str, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    return dict(body["error"])


def new_phonecall(http: requests.Session, dv: DataverseEmulator) -> str:
    activity_id = str(uuid.uuid4())
    created = http.post(
        f"{dv.api_url}/phonecalls", json={"activityid": activity_id, "subject": "Call"}
    )
    assert created.status_code == 204, created.text
    return activity_id


def annotation_body(activity_id: str, text: str) -> dict[str, Any]:
    return {
        "subject": "Call notes",
        "notetext": text,
        "objectid_phonecall@odata.bind": f"/phonecalls({activity_id})",
        "objecttypecode": "phonecall",
    }


# ---------------------------------------------------------------------- the emulator


def test_an_annotation_is_upserted_read_updated_and_deleted(
    dataverse_http: requests.Session, dataverse: DataverseEmulator
) -> None:
    activity_id = new_phonecall(dataverse_http, dataverse)
    url = f"{dataverse.api_url}/annotations({uuid.uuid4()})"
    created = dataverse_http.patch(url, json=annotation_body(activity_id, "first"))
    assert created.status_code == 204, created.text
    row = dataverse_http.get(url, headers={"Prefer": 'odata.include-annotations="*"'}).json()
    assert row["_objectid_value"] == activity_id
    assert row["_objectid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "phonecall"
    assert (row["objecttypecode"], row["notetext"], row["subject"]) == (
        "phonecall",
        "first",
        "Call notes",
    )
    updated = dataverse_http.patch(url, json=annotation_body(activity_id, "second"))
    assert updated.status_code == 204
    assert [r["notetext"] for r in dataverse.records("annotations")] == ["second"]
    assert dataverse_http.delete(url).status_code == 204
    gone = dataverse_http.get(url)
    assert gone.status_code == 404 and error_of(gone)["code"] == "0x80040217"
    again = dataverse_http.delete(url)
    assert again.status_code == 404


def test_an_annotation_bound_to_a_missing_phonecall_is_404(
    dataverse_http: requests.Session, dataverse: DataverseEmulator
) -> None:
    missing = str(uuid.uuid4())
    reply = dataverse_http.post(
        f"{dataverse.api_url}/annotations", json=annotation_body(missing, "text")
    )
    assert reply.status_code == 404
    assert error_of(reply) == {
        "code": "0x80040217",
        "message": f"Entity 'phonecall' With Id = {missing} Does Not Exist",
    }
    assert dataverse.records("annotations") == []


def test_notetext_holds_100000_characters_and_no_more(
    dataverse_http: requests.Session, dataverse: DataverseEmulator
) -> None:
    activity_id = new_phonecall(dataverse_http, dataverse)
    url = f"{dataverse.api_url}/annotations({uuid.uuid4()})"
    assert dataverse_http.patch(url, json=annotation_body(activity_id, "x" * 100_000)).ok
    over = dataverse_http.patch(url, json=annotation_body(activity_id, "x" * 100_001))
    assert over.status_code == 400
    error = error_of(over)
    assert error["code"] == "0x80044331"
    assert "'notetext' attribute of the 'annotation' entity" in error["message"]
    assert "'100000'" in error["message"]


def test_deleting_a_phonecall_deletes_its_notes(
    dataverse_http: requests.Session, dataverse: DataverseEmulator
) -> None:
    activity_id = new_phonecall(dataverse_http, dataverse)
    dataverse_http.post(f"{dataverse.api_url}/annotations", json=annotation_body(activity_id, "n"))
    assert len(dataverse.records("annotations")) == 1
    assert dataverse_http.delete(f"{dataverse.api_url}/phonecalls({activity_id})").ok
    assert dataverse.records("annotations") == []


# ---------------------------------------------------------------------- the adapters


@pytest.fixture
def client(
    local_tls: LocalTLS, entra: EntraEmulator, dataverse_reset: DataverseEmulator
) -> DataverseClient:
    add_custom_columns(dataverse_reset)
    dataverse_reset.seed({"systemusers": [{"systemuserid": AGENT, "fullname": "Anna Agent"}]})
    return app_dataverse_client(local_tls, entra, dataverse_reset)


def ended_call() -> Call:
    return Call(
        f"call-{uuid.uuid4().hex[:8]}",
        Direction.INBOUND,
        CallKind.DIRECT,
        "+358401234567",
        "+358900100",
        T0,
        agent_id="anna",
        first_answered_at=T0 + dt.timedelta(seconds=12),
        ended_at=T0 + dt.timedelta(seconds=80),
        answered_by="anna",
    )


def notes_of(dv: DataverseEmulator, activity_id: str) -> list[dict[str, Any]]:
    return [r for r in dv.records("annotations") if r["_objectid_value"] == activity_id]


def test_an_activity_with_long_notes_has_their_start_and_one_note_with_all_of_them(
    client: DataverseClient, dataverse_reset: DataverseEmulator
) -> None:
    crm = DataverseCrm(client, duration_column=COLUMNS.duration_seconds)
    activity = phone_call_activity(
        ended_call(),
        agent_user_id=AGENT,
        agent_name="Anna Agent",
        pool_name="",
        notes=LONG,
        templates=SubjectTemplates(),
    )
    assert crm.create_phone_call(activity) is True
    assert crm.create_phone_call(activity) is False  # a repeat: still one activity, one note
    [phonecall] = dataverse_reset.records("phonecalls")
    assert len(phonecall["description"]) <= 2000
    assert phonecall["description"].endswith(ATTACHED_MARKER)
    [note] = notes_of(dataverse_reset, activity.activity_id)
    assert note["annotationid"] == notes_annotation_id(activity.activity_id)
    assert (note["notetext"], note["subject"]) == (LONG, NOTES_SUBJECT)
    assert note["objecttypecode"] == "phonecall"


def test_late_notes_update_the_note_and_short_ones_remove_it(
    client: DataverseClient, dataverse_reset: DataverseEmulator
) -> None:
    crm = DataverseCrm(client, duration_column=COLUMNS.duration_seconds)
    activity = phone_call_activity(
        ended_call(),
        agent_user_id=AGENT,
        agent_name="Anna Agent",
        pool_name="",
        notes="short",
        templates=SubjectTemplates(),
    )
    crm.create_phone_call(activity)
    assert notes_of(dataverse_reset, activity.activity_id) == []
    assert crm.write_notes(activity.activity_id, activity_notes(LONG))
    assert crm.write_notes(activity.activity_id, activity_notes(LONG + " And more."))
    [note] = notes_of(dataverse_reset, activity.activity_id)
    assert note["notetext"] == LONG + " And more."
    assert crm.write_notes(activity.activity_id, activity_notes("done", attached_before=True))
    assert notes_of(dataverse_reset, activity.activity_id) == []
    [phonecall] = dataverse_reset.records("phonecalls")
    assert phonecall["description"] == "done"
    # Removing a note that is not there (a retry) is no error.
    assert crm.write_notes(activity.activity_id, activity_notes("done", attached_before=True))


def test_the_enrichment_keeps_the_whole_notes_and_completes_the_activity(
    client: DataverseClient, dataverse_reset: DataverseEmulator
) -> None:
    crm = DataverseCrm(client, duration_column=COLUMNS.duration_seconds)
    activity = phone_call_activity(
        ended_call(),
        agent_user_id=AGENT,
        agent_name="Anna Agent",
        pool_name="",
        notes="at hang-up",
        templates=SubjectTemplates(),
    )
    crm.create_phone_call(activity)
    writer = DataverseActivityEnrichment(client, COLUMNS)
    split = activity_notes(LONG)
    update = ActivityUpdate(
        activity.activity_id,
        complete_as=4,
        description=split.description,
        annotation=split.annotation,
    )
    assert writer.enrich(update) is WriteResult.WRITTEN
    [phonecall] = dataverse_reset.records("phonecalls")
    assert phonecall["statecode"] == 1 and phonecall["description"] == split.description
    [note] = notes_of(dataverse_reset, activity.activity_id)
    assert note["notetext"] == LONG
    # Completed: a later save is refused and the notes it points to stay.
    assert not crm.write_notes(activity.activity_id, activity_notes("x", attached_before=True))
    assert len(notes_of(dataverse_reset, activity.activity_id)) == 1
    missing = ActivityUpdate(str(uuid.uuid4()), complete_as=4, annotation=LONG)
    assert writer.enrich(missing) is WriteResult.MISSING


# ---------------------------------------------------------------------- the notes row


def test_the_notes_row_keeps_100000_characters_of_any_kind(storage_connection_string: str) -> None:
    repo = TableCallRepository(TableStore(storage_connection_string))
    call_id = str(uuid.uuid4())
    widest = "😀" * 50_000 + "ä" * 50_000  # surrogate pairs: 4 bytes each in UTF-16
    repo.save_notes(call_id, widest)
    assert repo.notes(call_id) == widest and repo.notes_attached(call_id)
    repo.save_notes(call_id, "short again")
    assert repo.notes(call_id) == "short again"  # no slice of the longer text left behind
    assert repo.notes_attached(call_id)  # it had an annotation once: still to be removed
    other = str(uuid.uuid4())
    repo.save_notes(other, "never long")
    assert not repo.notes_attached(other)


def test_every_agents_part_keeps_100000_characters_and_the_call_has_one_flag(
    storage_connection_string: str,
) -> None:
    """After a transfer each agent's part is its own row, sliced as the first one; `attached`
    is the call's (the combined notes' length is the service's to judge), on the `notes` row."""
    repo = TableCallRepository(TableStore(storage_connection_string))
    call_id = str(uuid.uuid4())
    repo.save_notes(call_id, "Anna's part")
    widest = "😀" * 50_000 + "ä" * 50_000
    repo.save_notes(call_id, widest, 1)
    assert repo.notes_parts(call_id, 2) == ("Anna's part", widest)
    assert repo.notes_attached(call_id)  # a part that long flags the call by itself
    repo.save_notes(call_id, "Ben's part", 1)
    assert repo.notes_parts(call_id, 3) == ("Anna's part", "Ben's part", "")
    assert repo.notes_attached(call_id)  # sticky

    short = str(uuid.uuid4())
    repo.save_notes(short, "a" * 1500)
    repo.save_notes(short, "b" * 1500, 1)
    assert not repo.notes_attached(short)
    repo.save_notes(short, "b" * 1500, 1, attached=True)  # together past the description
    assert repo.notes_attached(short) and repo.notes(short) == "a" * 1500
