"""The enterprise-call sync with its real adapters: Graph and Dataverse emulators, Azurite."""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from emulators.common.tls import LocalTLS
from emulators.dataverse import DataverseEmulator
from emulators.entra import EntraEmulator
from emulators.graph import GraphEmulator
from shared.adapters.enterprise_dataverse import DataverseEnterpriseCrm
from shared.adapters.enterprise_state import TableSyncState
from shared.adapters.graph import GRAPH_SCOPE, GraphCallRecords, GraphClient, GraphError
from shared.adapters.tables import TableStore
from shared.domain.enrichment import EnrichmentColumns
from shared.domain.enterprise_calls import Outcome, Rules
from shared.domain.enterprise_users import EnterpriseUser, UserMap
from shared.services.enterprise_sync import EnterpriseSync, SyncOptions
from tests.fixtures.entra_dataverse import add_custom_columns, app_dataverse_client, app_tokens

pytestmark = pytest.mark.integration
COLUMNS = EnrichmentColumns("new_")

ANNA_OID = "11111111-1111-4111-8111-111111111111"
ANNA_USER = "aaaaaaaa-0000-4000-8000-000000000001"
BEN_USER = "aaaaaaaa-0000-4000-8000-000000000002"
STRANGER_OID = "33333333-3333-4333-8333-333333333333"
CUSTOMER = "+358401234567"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
USERS = UserMap(
    (
        EnterpriseUser(ANNA_USER, None, ANNA_OID),
        EnterpriseUser(BEN_USER, "ben@contoso.example", None),
    )
)


@dataclass
class Sync:
    service: EnterpriseSync
    state: TableSyncState
    graph: GraphEmulator
    dataverse: DataverseEmulator
    sleeps: list[float] = field(default_factory=list)

    def dataverse_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.dataverse.requests_seen() if not r["in_batch"]]

    def phonecalls(self) -> list[dict[str, Any]]:
        return self.dataverse.records("phonecalls")


@pytest.fixture
def make_sync(
    local_tls: LocalTLS,
    entra: EntraEmulator,
    graph_reset: GraphEmulator,
    dataverse_reset: DataverseEmulator,
    storage_connection_string: str,
) -> Callable[..., Sync]:
    ca = str(local_tls.ca_path)
    dataverse_reset.seed(
        {
            "systemusers": [
                {"systemuserid": ANNA_USER, "fullname": "Anna Agent"},
                {"systemuserid": BEN_USER, "fullname": "Ben Agent"},
            ]
        }
    )
    suffix = uuid.uuid4().hex[:10]
    state = TableSyncState(
        TableStore(storage_connection_string), markers=f"ecm{suffix}", sync=f"ecs{suffix}"
    )
    dv_client = app_dataverse_client(local_tls, entra, dataverse_reset)
    add_custom_columns(dataverse_reset)
    graph_tokens = app_tokens(local_tls, entra, GRAPH_SCOPE)

    def make(*, rules: Rules | None = None, graph_attempts: int = 6) -> Sync:
        sleeps: list[float] = []
        graph = GraphClient(
            graph_reset.url,
            graph_tokens.token,
            ca_bundle=ca,
            sleep=sleeps.append,
            max_attempts=graph_attempts,
        )
        service = EnterpriseSync(
            call_records=GraphCallRecords(graph),
            crm=DataverseEnterpriseCrm(dv_client, duration_column=COLUMNS.duration_seconds),
            state=state,
            users=USERS,
            options=SyncOptions(rules=rules or Rules(), overlap_seconds=3600),
        )
        return Sync(service, state, graph_reset, dataverse_reset, sleeps)

    return make


def contact(sync: Sync, phone: str = CUSTOMER, name: str = "Maija Meikäläinen") -> str:
    first, last = name.split(" ", 1)
    [contact_id] = sync.dataverse.seed(
        {"contacts": [{"firstname": first, "lastname": last, "mobilephone": phone}]}
    )["contacts"]
    return contact_id


def teams_call(minutes_ago: float, **fields: Any) -> dict[str, Any]:
    return {
        "startDateTime": NOW - dt.timedelta(minutes=minutes_ago),
        "duration": 180,
        "callType": "user_in",
        "userId": ANNA_OID,
        "userPrincipalName": "anna@contoso.example",
        "callerNumber": CUSTOMER,
        **fields,
    }


def test_a_teams_call_with_a_known_contact_becomes_one_completed_activity(
    make_sync: Callable[..., Sync],
) -> None:
    sync = make_sync()
    contact_id = contact(sync)
    [record_id] = sync.graph.seed_pstn_calls([teams_call(20)])

    report = sync.service.sync_teams(NOW)

    [decision] = report.decisions
    assert decision.outcome is Outcome.IMPORTED
    [activity] = sync.phonecalls()
    assert activity["activityid"] == decision.activity_id
    assert activity["subject"] == f"Teams call from {CUSTOMER}"
    assert activity["category"] == "Teams"
    assert record_id in activity["description"]
    assert activity["phonenumber"] == CUSTOMER
    assert activity["directioncode"] is False
    assert activity["_ownerid_value"] == ANNA_USER
    assert activity["_regardingobjectid_value"] == contact_id
    assert activity["actualdurationminutes"] == 3
    assert (activity["statecode"], activity["statuscode"]) == (1, 4)  # completed, Received
    parties = {
        p["participationtypemask"]: p["_partyid_value"]
        for p in sync.dataverse.records("activityparties")
    }
    assert parties == {1: contact_id, 2: ANNA_USER}
    assert sync.state.watermark("teams") == NOW


def test_the_same_window_read_twice_or_overlapping_windows_add_nothing(
    make_sync: Callable[..., Sync],
) -> None:
    sync = make_sync()
    contact(sync)
    sync.graph.seed_pstn_calls([teams_call(20)])
    sync.service.sync_teams(NOW)
    before = len(sync.dataverse_requests())

    again = sync.service.sync_teams(NOW)  # the same window
    later = sync.service.sync_teams(NOW + dt.timedelta(minutes=5))  # overlapping

    assert [d.outcome for d in again.decisions + later.decisions] == [Outcome.DUPLICATE] * 2
    assert len(sync.phonecalls()) == 1
    assert len(sync.dataverse_requests()) == before  # settled records cost no Dataverse request


def test_a_marker_lost_after_the_create_still_yields_no_second_activity(
    make_sync: Callable[..., Sync],
) -> None:
    sync = make_sync()
    contact(sync)
    sync.graph.seed_pstn_calls([teams_call(20)])
    sync.service.sync_teams(NOW)
    for row in sync.state.store.query(sync.state.markers, "PartitionKey eq @pk", {"pk": "teams"}):
        sync.state.store.delete(sync.state.markers, row["PartitionKey"], row["RowKey"])

    [decision] = sync.service.sync_teams(NOW).decisions  # as if the run died before marking

    assert decision.outcome is Outcome.DUPLICATE
    assert len(sync.phonecalls()) == 1


def test_a_call_the_web_phone_already_logged_is_skipped(make_sync: Callable[..., Sync]) -> None:
    sync = make_sync()
    contact_id = contact(sync)
    start = NOW - dt.timedelta(minutes=20)
    web_phone_id = str(uuid.uuid4())
    sync.dataverse.seed(
        {
            "phonecalls": [
                {
                    "activityid": web_phone_id,
                    "subject": f"Incoming call from {CUSTOMER}",
                    "phonenumber": CUSTOMER,
                    "directioncode": False,
                    "actualstart": (start + dt.timedelta(seconds=25)).isoformat(),
                    "ownerid@odata.bind": f"/systemusers({ANNA_USER})",
                    "regardingobjectid_contact_phonecall@odata.bind": f"/contacts({contact_id})",
                }
            ]
        }
    )
    sync.graph.seed_pstn_calls([teams_call(20)])

    [decision] = sync.service.sync_teams(NOW).decisions

    assert decision.outcome is Outcome.ALREADY_LOGGED
    assert decision.activity_id == web_phone_id
    assert [a["activityid"] for a in sync.phonecalls()] == [web_phone_id]


def test_another_users_call_or_one_outside_the_margin_is_not_taken_for_logged(
    make_sync: Callable[..., Sync],
) -> None:
    sync = make_sync(rules=Rules(match_margin_seconds=60))
    contact(sync)
    start = NOW - dt.timedelta(minutes=20)
    sync.dataverse.seed(
        {
            "phonecalls": [
                {
                    "subject": "Ben's call",
                    "phonenumber": CUSTOMER,
                    "actualstart": start.isoformat(),
                    "ownerid@odata.bind": f"/systemusers({BEN_USER})",
                },
                {
                    "subject": "Anna's call, earlier",
                    "phonenumber": CUSTOMER,
                    "actualstart": (start - dt.timedelta(seconds=61)).isoformat(),
                    "ownerid@odata.bind": f"/systemusers({ANNA_USER})",
                },
            ]
        }
    )
    sync.graph.seed_pstn_calls([teams_call(20)])

    [decision] = sync.service.sync_teams(NOW).decisions

    assert decision.outcome is Outcome.IMPORTED


def test_an_unmapped_user_is_skipped_and_counted(make_sync: Callable[..., Sync]) -> None:
    sync = make_sync()
    contact(sync)
    sync.graph.seed_pstn_calls(
        [
            teams_call(30, userId=STRANGER_OID, userPrincipalName="x@contoso.example"),
            # Ben is mapped by email only: his UPN finds him.
            teams_call(20, userId=str(uuid.uuid4()), userPrincipalName="Ben@Contoso.example"),
        ]
    )

    report = sync.service.sync_teams(NOW)

    assert [d.outcome for d in report.decisions] == [Outcome.UNMAPPED_USER, Outcome.IMPORTED]
    assert report.counts["unmappedUser"] == 1 and report.counts["imported"] == 1
    [activity] = sync.phonecalls()
    assert activity["_ownerid_value"] == BEN_USER
    last = sync.state.store.get(sync.state.sync, "teams", "lastrun")
    assert last is not None and '"unmappedUser": 1' in last["summary"]
    assert STRANGER_OID in last["summary"]


def test_paging_across_three_pages_costs_dataverse_two_requests_a_page(
    make_sync: Callable[..., Sync],
) -> None:
    sync = make_sync()
    numbers = [f"+35840100000{i}" for i in range(6)]
    for i, number in enumerate(numbers):
        contact(sync, number, f"Customer {i}")
    sync.graph.set_page_size(2)
    sync.graph.seed_pstn_calls([teams_call(50 - i, callerNumber=n) for i, n in enumerate(numbers)])

    report = sync.service.sync_teams(NOW)

    assert [d.outcome for d in report.decisions] == [Outcome.IMPORTED] * 6
    assert sorted(a["phonenumber"] for a in sync.phonecalls()) == numbers
    assert len([r for r in sync.graph.requests_seen() if r["status"] == 200]) == 3
    assert [r["path"].rsplit("/", 1)[-1] for r in sync.dataverse_requests()] == ["$batch"] * 6


def test_dataverse_requests_do_not_grow_with_the_number_of_calls(
    make_sync: Callable[..., Sync],
) -> None:
    sync = make_sync()
    numbers = [f"+3584020000{i:02d}" for i in range(40)]
    sync.dataverse.seed(
        {
            "contacts": [
                {"firstname": "C", "lastname": str(i), "telephone1": n}
                for i, n in enumerate(numbers)
            ]
        }
    )
    sync.graph.seed_pstn_calls([teams_call(50, callerNumber=n) for n in numbers])

    report = sync.service.sync_teams(NOW)

    assert report.counts["imported"] == 40
    assert len(sync.dataverse_requests()) == 2  # one $batch of lookups, one of creates


def test_graph_429_is_retried_and_nothing_is_lost(make_sync: Callable[..., Sync]) -> None:
    sync = make_sync()
    numbers = [f"+35840300000{i}" for i in range(5)]
    for i, number in enumerate(numbers):
        contact(sync, number, f"Customer {i}")
    sync.graph.set_page_size(2)
    sync.graph.throttle(count=2, retry_after=2, after=1)
    sync.graph.seed_pstn_calls([teams_call(40 - i, callerNumber=n) for i, n in enumerate(numbers)])

    report = sync.service.sync_teams(NOW)

    assert report.counts["imported"] == 5 and len(sync.phonecalls()) == 5
    assert sync.sleeps == [2.0, 2.0]
    assert [r["status"] for r in sync.graph.requests_seen()] == [200, 429, 429, 200, 200]


def test_graph_throttling_past_the_bound_keeps_the_watermark_and_the_next_run_catches_up(
    make_sync: Callable[..., Sync],
) -> None:
    sync = make_sync(graph_attempts=2)
    numbers = [f"+35840400000{i}" for i in range(5)]
    for i, number in enumerate(numbers):
        contact(sync, number, f"Customer {i}")
    sync.graph.set_page_size(2)
    sync.graph.seed_pstn_calls([teams_call(40 - i, callerNumber=n) for i, n in enumerate(numbers)])
    sync.graph.throttle(count=5, retry_after=1, after=1)

    with pytest.raises(GraphError):
        sync.service.sync_teams(NOW)
    assert sync.state.watermark("teams") is None
    assert len(sync.phonecalls()) == 2  # the first page was imported before Graph gave up

    sync.graph.throttle(count=0)
    report = sync.service.sync_teams(NOW + dt.timedelta(minutes=5))

    assert report.counts == {**report.counts, "imported": 3, "duplicate": 2}
    assert sorted(a["phonenumber"] for a in sync.phonecalls()) == numbers


def test_only_contacts_count_unless_accounts_and_leads_are_included(
    make_sync: Callable[..., Sync],
) -> None:
    account_number, lead_number = "+358405000001", "+358405000002"
    sync = make_sync()
    seeded = sync.dataverse.seed(
        {
            "accounts": [{"name": "Acme Oy", "telephone2": account_number}],
            "leads": [{"firstname": "Lea", "lastname": "Lead", "mobilephone": lead_number}],
        }
    )
    sync.graph.seed_pstn_calls(
        [teams_call(30, callerNumber=account_number), teams_call(20, callerNumber=lead_number)]
    )
    assert [d.outcome for d in sync.service.sync_teams(NOW).decisions] == [
        Outcome.NOT_A_CUSTOMER
    ] * 2

    inclusive = make_sync(rules=Rules(include_accounts_leads=True))
    inclusive.graph.reset()
    inclusive.graph.seed_pstn_calls(
        [teams_call(31, callerNumber=account_number), teams_call(21, callerNumber=lead_number)]
    )
    report = inclusive.service.sync_teams(NOW + dt.timedelta(minutes=5))

    assert [d.outcome for d in report.decisions] == [Outcome.IMPORTED] * 2
    regarding = {a["phonenumber"]: a["_regardingobjectid_value"] for a in sync.phonecalls()}
    assert regarding == {
        account_number: seeded["accounts"][0],
        lead_number: seeded["leads"][0],
    }


def test_a_refused_activity_fails_alone_and_is_tried_again_on_the_next_read(
    make_sync: Callable[..., Sync],
) -> None:
    ghost = "aaaaaaaa-0000-4000-8000-0000000000ff"  # mapped, but no such systemuser in D365
    sync = make_sync()
    sync.service.users = UserMap((*USERS.users, EnterpriseUser(ghost, "ghost@contoso.example")))
    contact(sync)
    sync.graph.seed_pstn_calls(
        [
            teams_call(30, userId=None, userPrincipalName="ghost@contoso.example"),
            teams_call(20),
        ]
    )

    first = sync.service.sync_teams(NOW)

    assert [d.outcome for d in first.decisions] == [Outcome.FAILED, Outcome.IMPORTED]
    assert first.decisions[0].detail.startswith("404") or first.decisions[0].detail.startswith(
        "400"
    )
    second = sync.service.sync_teams(NOW)
    assert [d.outcome for d in second.decisions] == [Outcome.FAILED, Outcome.DUPLICATE]
    assert len(sync.phonecalls()) == 1


def test_pushed_records_follow_the_same_rules(make_sync: Callable[..., Sync]) -> None:
    sync = make_sync()
    contact(sync)
    start = (NOW - dt.timedelta(hours=2)).isoformat()
    body = {
        "source": "Mobile",
        "calls": [
            {
                "id": "op-1",
                "userEmail": "ben@contoso.example",
                "direction": "outbound",
                "customerNumber": "040 1234567",  # read in PHONE_DEFAULT_REGION
                "startDateTime": start,
                "durationSeconds": 65,
            },
            {
                "id": "op-2",
                "userId": STRANGER_OID,
                "direction": "inbound",
                "customerNumber": CUSTOMER,
                "startDateTime": start,
                "durationSeconds": 65,
            },
            {"id": "op-3", "direction": "sideways"},
        ],
    }

    result = sync.service.import_pushed(body, NOW)

    assert [(i, d.outcome) for i, d in result.results] == [
        (0, Outcome.IMPORTED),
        (1, Outcome.UNMAPPED_USER),
    ]
    assert {e.field for e in result.errors} >= {"calls[2].direction", "calls[2].startDateTime"}
    [activity] = sync.phonecalls()
    assert activity["subject"] == f"Mobile call to {CUSTOMER}"
    assert (activity["category"], activity["directioncode"]) == ("Mobile", True)
    assert (activity["statecode"], activity["statuscode"]) == (1, 2)  # completed, Made
    assert sync.service.import_pushed(body, NOW).results[0][1].outcome is Outcome.DUPLICATE


def test_the_notification_and_the_poll_racing_on_one_call_make_one_activity(
    make_sync: Callable[..., Sync],
) -> None:
    """Graph knows the call under two ids (its callRecord, its PSTN log row); the writer lease
    makes the already-logged check and the create one step, whichever path comes first."""
    sync = make_sync()
    contact(sync)
    ended = sync.graph.end_teams_call(user_id=ANNA_OID, number=CUSTOMER, connected_seconds=90)
    now = dt.datetime.now(dt.UTC)
    outcomes: list[str] = []
    failures: list[BaseException] = []

    def notified() -> None:
        try:
            outcomes.append(sync.service.import_call_record(ended["callRecordId"], now).outcome)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    def polled() -> None:
        try:
            report = sync.service.sync_teams(now)
            outcomes.extend(d.outcome for d in report.decisions)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=notified), threading.Thread(target=polled)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not failures, failures
    assert sorted(outcomes) == sorted([Outcome.IMPORTED, Outcome.ALREADY_LOGGED])
    assert len(sync.phonecalls()) == 1


def test_a_second_writer_waits_for_the_first_to_release_the_lease(
    make_sync: Callable[..., Sync],
) -> None:
    state = make_sync().state
    order: list[str] = []
    inside = threading.Event()

    def second() -> None:
        inside.wait(10)
        with state.exclusive("teams"):
            order.append("second in")

    waiter = threading.Thread(target=second)
    waiter.start()
    with state.exclusive("teams"):
        inside.set()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and not order:
            time.sleep(0.05)  # give the second writer every chance to (wrongly) get in
        order.append("first out")
    waiter.join(30)

    assert order == ["first out", "second in"]
