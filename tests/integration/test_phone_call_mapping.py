"""Every kind of Phone Call the product writes, read back from the Dataverse emulator as a D365
admin would see it: its columns and its parties (docs/phone-call-mapping.md).

The real adapters write (DataverseCrm, DataverseEnterpriseCrm, DataverseCallbacks) over HTTPS
with an Entra token; the domain builds each activity as the services do. Calls from an agent's
mobile through the web phone do not exist yet, so there is no such kind here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace
from typing import Any

import pytest

from emulators.common.tls import LocalTLS
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from shared.adapters.dataverse import DataverseClient, DataverseCrm
from shared.adapters.dataverse_batch import DataverseCallbacks
from shared.adapters.enterprise_dataverse import DataverseEnterpriseCrm
from shared.domain.activity import SubjectTemplates, phone_call_activity
from shared.domain.callback_lists import CallbackList, ListOwner
from shared.domain.callbacks import CallbackRequest, WriteOutcome, callback_activity
from shared.domain.calls import Call, CallKind, Direction
from shared.domain.customers import CustomerEntity, CustomerRef
from shared.domain.enrichment import EnrichmentColumns
from shared.domain.enterprise_calls import (
    EnterpriseActivity,
    EnterpriseCall,
    Rules,
    Screened,
    decide,
    screen,
)
from shared.domain.enterprise_users import EnterpriseUser, UserMap
from tests.fixtures.entra_dataverse import add_custom_columns, app_dataverse_client

pytestmark = pytest.mark.integration

COLUMNS = EnrichmentColumns("new_")
AGENT = "aaaaaaaa-0000-4000-8000-000000000001"
TEAM = "7ea30000-0000-4000-8000-000000000001"
QUEUE = "c0ffee00-0000-4000-8000-00000000cb01"
CUSTOMER = "+358401234567"
UNKNOWN = "+358409999999"
T0 = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
FROM, TO = 1, 2


class Org:
    """The emulator seen through the product's adapters, plus the reads an admin makes."""

    def __init__(self, dataverse: DataverseEmulator, client: DataverseClient) -> None:
        self.dataverse, self.client = dataverse, client
        self.crm = DataverseCrm(client, duration_column=COLUMNS.duration_seconds)
        self.enterprise = DataverseEnterpriseCrm(client, duration_column=COLUMNS.duration_seconds)
        self.callbacks = DataverseCallbacks(client)

    def contact(self, name: str, phone: str = CUSTOMER) -> CustomerRef:
        first, last = name.split(" ", 1)
        [contact_id] = self.dataverse.seed(
            {"contacts": [{"firstname": first, "lastname": last, "mobilephone": phone}]}
        )["contacts"]
        return CustomerRef(CustomerEntity.CONTACT, contact_id, name)

    def phone_call(self, activity_id: str) -> dict[str, Any]:
        reply = self.client.request(
            "GET",
            f"phonecalls({activity_id})?$expand=phonecall_activity_parties",
            headers={"Prefer": 'odata.include-annotations="*"'},
        )
        return dict(reply.body)


def parties(phone_call: dict[str, Any]) -> dict[int, tuple[str | None, str | None]]:
    """participationtypemask -> (party table, party id), or (None, address) if unresolved."""
    out: dict[int, tuple[str | None, str | None]] = {}
    for party in phone_call["phonecall_activity_parties"]:
        table = party.get("_partyid_value@Microsoft.Dynamics.CRM.lookuplogicalname")
        value = party["_partyid_value"] if party["_partyid_value"] else party["addressused"]
        assert party["participationtypemask"] not in out, "one party per role"
        out[party["participationtypemask"]] = (table, value)
    return out


@pytest.fixture
def org(bare_org: Org) -> Org:
    add_custom_columns(bare_org.dataverse)  # as `make dataverse-setup` makes them
    return bare_org


@pytest.fixture
def bare_org(local_tls: LocalTLS, entra: EntraEmulator, dataverse_reset: DataverseEmulator) -> Org:
    """An org where `make dataverse-setup` has not been run."""
    client = app_dataverse_client(local_tls, entra, dataverse_reset)
    dataverse_reset.seed(
        {
            "systemusers": [{"systemuserid": AGENT, "fullname": "Anna Agent"}],
            "teams": [{"teamid": TEAM, "name": "Sales callbacks team"}],
            "queues": [{"queueid": QUEUE, "name": "Sales callbacks"}],
        }
    )
    return Org(dataverse_reset, client)


# ---------------------------------------------------------------------- web phone calls


def web_call(direction: Direction = Direction.INBOUND, **kw: Any) -> Call:
    call = Call(
        f"call-{uuid.uuid4().hex[:8]}",
        direction,
        CallKind.POOL if direction is Direction.INBOUND else CallKind.OUTBOUND,
        kw.pop("number", CUSTOMER),
        "+358900100",
        T0,
        pool_id="sales" if direction is Direction.INBOUND else None,
        agent_id="anna",
        first_answered_at=T0 + dt.timedelta(seconds=12),
        ended_at=T0 + dt.timedelta(seconds=14),  # a 2-second call
        answered_by="anna",
    )
    return replace(call, **kw)


def write_call(org: Org, call: Call, *, unresolved: bool = False) -> dict[str, Any]:
    activity = phone_call_activity(
        call,
        agent_user_id=AGENT,
        agent_name="Anna Agent",
        pool_name="Sales",
        notes="Wants a quote",
        templates=SubjectTemplates(),
        unresolved_parties=unresolved,
    )
    assert org.crm.create_phone_call(activity) is True
    return org.phone_call(activity.activity_id)


def test_an_identified_inbound_call(org: Org) -> None:
    maija = org.contact("Maija Meikäläinen")
    row = write_call(org, web_call(candidates=(maija,)))
    assert row["subject"] == f"Incoming call from {CUSTOMER}"
    assert (row["description"], row["phonenumber"]) == ("Wants a quote", CUSTOMER)
    assert row["directioncode"] is False
    assert (row["actualstart"], row["actualend"]) == (
        "2026-11-25T09:00:12Z",
        "2026-11-25T09:00:14Z",
    )
    # Two seconds: Duration shows the minute begun, the custom column the seconds.
    assert (row["actualdurationminutes"], row["new_durationseconds"]) == (1, 2)
    assert (row["_ownerid_value"], row["_regardingobjectid_value"]) == (AGENT, maija.id)
    assert parties(row) == {FROM: ("contact", maija.id), TO: ("systemuser", AGENT)}
    assert (row["statecode"], row["scheduledend"]) == (0, None)  # completed by the enrichment


def test_an_unidentified_inbound_call_leaves_from_empty_unless_told(org: Org) -> None:
    plain = write_call(org, web_call())
    assert parties(plain) == {TO: ("systemuser", AGENT)}
    assert plain["_regardingobjectid_value"] is None
    unresolved = write_call(org, web_call(), unresolved=True)
    assert parties(unresolved) == {FROM: (None, CUSTOMER), TO: ("systemuser", AGENT)}
    assert unresolved["_regardingobjectid_value"] is None


def test_several_matches_are_unresolved_until_one_is_picked(org: Org) -> None:
    maija, matti = org.contact("Maija Meikäläinen"), org.contact("Matti Meikäläinen")
    several = write_call(org, web_call(candidates=(maija, matti)), unresolved=True)
    assert parties(several)[FROM] == (None, CUSTOMER)
    assert several["_regardingobjectid_value"] is None
    picked = write_call(org, web_call(candidates=(maija, matti), picked=matti), unresolved=True)
    assert parties(picked) == {FROM: ("contact", matti.id), TO: ("systemuser", AGENT)}
    assert picked["_regardingobjectid_value"] == matti.id


def test_a_click_to_dial_call_goes_from_the_agent_to_the_customer(org: Org) -> None:
    maija = org.contact("Maija Meikäläinen")
    known = write_call(org, web_call(Direction.OUTBOUND, candidates=(maija,)))
    assert known["subject"] == f"Outgoing call to {CUSTOMER}"
    assert known["directioncode"] is True
    assert parties(known) == {FROM: ("systemuser", AGENT), TO: ("contact", maija.id)}
    assert known["_regardingobjectid_value"] == maija.id
    unknown = write_call(org, web_call(Direction.OUTBOUND, number=UNKNOWN), unresolved=True)
    assert parties(unknown) == {FROM: ("systemuser", AGENT), TO: (None, UNKNOWN)}
    assert unknown["phonenumber"] == UNKNOWN and unknown["new_durationseconds"] == 2
    plain = write_call(org, web_call(Direction.OUTBOUND, number=UNKNOWN))
    assert parties(plain) == {FROM: ("systemuser", AGENT)}


def test_without_the_seconds_column_the_call_is_still_logged_and_a_warning_says_why(
    bare_org: Org, caplog: pytest.LogCaptureFixture
) -> None:
    maija = bare_org.contact("Maija Meikäläinen")
    row = write_call(bare_org, web_call(candidates=(maija,)))
    assert row["actualdurationminutes"] == 1 and "new_durationseconds" not in row
    assert parties(row) == {FROM: ("contact", maija.id), TO: ("systemuser", AGENT)}
    assert "phonecall.new_durationseconds does not exist" in caplog.text
    statuses = [r["status"] for r in bare_org.dataverse.requests_seen() if r["method"] == "POST"]
    assert statuses == [400, 204]  # refused for the column alone, then written without it


# ---------------------------------------------------------------------- Teams (enterprise)


def teams_call(**kw: Any) -> EnterpriseCall:
    call = EnterpriseCall(
        source="teams",
        source_label="Teams",
        call_id=f"rec-{uuid.uuid4().hex[:8]}",
        user_id="11111111-1111-4111-8111-111111111111",
        user_email=None,
        direction=Direction.INBOUND,
        customer_number=CUSTOMER,
        started_at=T0,
        ended_at=T0 + dt.timedelta(seconds=61),
        duration_seconds=61,
    )
    return replace(call, **kw)


def write_teams(
    org: Org, call: EnterpriseCall, candidates: list[CustomerRef], rules: Rules
) -> dict[str, Any]:
    users = UserMap((EnterpriseUser(AGENT, None, call.user_id),))
    screened = screen(call, users, rules)
    assert isinstance(screened, Screened), screened
    made = decide(screened, candidates, [], rules)
    assert isinstance(made, EnterpriseActivity)
    result = org.enterprise.create_activities([made])[made.activity.activity_id]
    assert result.status.value == "created", result
    return org.phone_call(made.activity.activity_id)


def test_a_teams_call_is_completed_with_its_source_and_seconds(org: Org) -> None:
    maija = org.contact("Maija Meikäläinen")
    row = write_teams(org, teams_call(), [maija], Rules())
    assert (row["subject"], row["category"]) == (f"Teams call from {CUSTOMER}", "Teams")
    assert (row["statecode"], row["statuscode"], row["directioncode"]) == (1, 4, False)
    assert (row["actualdurationminutes"], row["new_durationseconds"]) == (2, 61)
    assert parties(row) == {FROM: ("contact", maija.id), TO: ("systemuser", AGENT)}
    assert (row["_ownerid_value"], row["_regardingobjectid_value"]) == (AGENT, maija.id)
    outbound = write_teams(org, teams_call(direction=Direction.OUTBOUND), [maija], Rules())
    assert (outbound["statuscode"], outbound["directioncode"]) == (2, True)
    assert parties(outbound) == {FROM: ("systemuser", AGENT), TO: ("contact", maija.id)}


def test_a_teams_call_with_several_contacts_has_an_unresolved_party_when_told(org: Org) -> None:
    maija, matti = org.contact("Maija Meikäläinen"), org.contact("Matti Meikäläinen")
    plain = write_teams(org, teams_call(), [maija, matti], Rules())
    assert parties(plain) == {TO: ("systemuser", AGENT)}
    unresolved = write_teams(org, teams_call(), [maija, matti], Rules(unresolved_parties=True))
    assert parties(unresolved) == {FROM: (None, CUSTOMER), TO: ("systemuser", AGENT)}
    assert unresolved["_regardingobjectid_value"] is None


def test_without_the_seconds_column_teams_calls_are_still_logged(bare_org: Org) -> None:
    maija = bare_org.contact("Maija Meikäläinen")
    row = write_teams(bare_org, teams_call(), [maija], Rules())
    assert (row["statecode"], row["actualdurationminutes"]) == (1, 2)
    assert "new_durationseconds" not in row
    batches = [
        r["status"]
        for r in bare_org.dataverse.requests_seen()
        if not r["in_batch"] and r["path"].endswith("$batch")
    ]
    assert batches == [200, 200]  # one refused for the column alone, one without it


# ---------------------------------------------------------------------- callbacks


def callback(number: str = CUSTOMER) -> CallbackRequest:
    return CallbackRequest(
        request_id=str(uuid.uuid4()),
        list_id="sales-callbacks",
        number=number,
        requested_at=T0,
        source="call",
        pool_id="sales",
    )


def write_callbacks(
    org: Org,
    requests: list[tuple[CallbackRequest, tuple[CustomerRef, ...]]],
    callback_list: CallbackList,
    *,
    unresolved: bool = False,
) -> list[dict[str, Any]]:
    activities = [
        callback_activity(
            r, found, callback_list=callback_list, pool_name="Sales", unresolved_parties=unresolved
        )
        for r, found in requests
    ]
    results = org.callbacks.write(activities)
    assert {r.outcome for r in results.values()} == {WriteOutcome.CREATED}
    return [org.phone_call(a.activity_id) for a in activities]


def queued(org: Org, activity_id: str) -> list[str]:
    return [
        str(q["_queueid_value"])
        for q in org.dataverse.records("queueitems")
        if q["_objectid_value"] == activity_id
    ]


def test_a_callback_is_a_call_to_make_owned_by_the_lists_team(org: Org) -> None:
    maija = org.contact("Maija Meikäläinen")
    sales = CallbackList("sales-callbacks", QUEUE, True, 120, ListOwner("team", TEAM))
    [row] = write_callbacks(org, [(callback(), (maija,))], sales)
    assert (row["subject"], row["phonenumber"]) == ("Callback Request", CUSTOMER)
    assert row["directioncode"] is True  # outgoing: the agent is to call back
    assert (row["scheduledstart"], row["scheduledend"]) == (
        "2026-11-25T09:00:00Z",
        "2026-11-25T11:00:00Z",
    )
    assert row["_ownerid_value"] == TEAM
    assert row["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "team"
    assert parties(row) == {TO: ("contact", maija.id)}
    assert row["_regardingobjectid_value"] == maija.id
    assert (row["statecode"], row["actualstart"], row["new_durationseconds"]) == (0, None, None)
    assert queued(org, row["activityid"]) == [QUEUE]


def test_an_unknown_callers_callback_is_owned_by_the_app_user_without_a_list_owner(
    org: Org,
) -> None:
    matti, maija = org.contact("Matti Meikäläinen"), org.contact("Maija Meikäläinen")
    sales = CallbackList("sales-callbacks", QUEUE, True)
    unknown, several = callback(UNKNOWN), callback()
    rows = write_callbacks(org, [(unknown, ()), (several, (matti, maija))], sales)
    app_user = org.client.request("GET", "WhoAmI").body["UserId"]
    for row in rows:
        assert row["_ownerid_value"] == app_user
        assert row["phonecall_activity_parties"] == []  # the use-case document's way
        assert row["_regardingobjectid_value"] is None
        assert row["scheduledend"] == "2026-11-26T09:00:00Z"  # the default day
        assert queued(org, row["activityid"]) == [QUEUE]
    told = write_callbacks(
        org, [(callback(UNKNOWN), ()), (callback(), (matti, maija))], sales, unresolved=True
    )
    assert [parties(row) for row in told] == [{TO: (None, UNKNOWN)}, {TO: (None, CUSTOMER)}]
