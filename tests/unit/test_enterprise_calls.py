"""Enterprise calls (§4): user mapping, the import rules, pushed records, and the sync service
against in-memory ports."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from shared.adapters.graph import pstn_call
from shared.domain.activity import UnresolvedParty
from shared.domain.calls import Direction
from shared.domain.customers import CustomerEntity, CustomerRef
from shared.domain.directory import Agent
from shared.domain.enterprise_calls import (
    CrmView,
    EnterpriseActivity,
    EnterpriseCall,
    LoggedCall,
    Outcome,
    Rules,
    Screened,
    Skipped,
    UnreadableRecord,
    WriteResult,
    WriteStatus,
    decide,
    parse_pushed_calls,
    parse_timestamp,
    screen,
)
from shared.domain.enterprise_users import (
    EnterpriseUser,
    UserMap,
    parse_enterprise_users,
    user_map,
)
from shared.errors import DependencyUnavailable, Unprocessable
from shared.services.enterprise_sync import EnterpriseSync, SyncOptions
from shared.views import to_json

pytestmark = pytest.mark.unit

ANNA_OID = "11111111-1111-4111-8111-111111111111"
ANNA_USER = "aaaaaaaa-0000-4000-8000-000000000001"
BEN_USER = "aaaaaaaa-0000-4000-8000-000000000002"
CUSTOMER = "+358401234567"
T0 = dt.datetime(2024, 5, 6, 8, 0, tzinfo=dt.UTC)
USERS = UserMap(
    (
        EnterpriseUser(ANNA_USER, "anna@contoso.example", ANNA_OID),
        EnterpriseUser(BEN_USER, "ben@contoso.example", None),
    )
)
CONTACT = CustomerRef(CustomerEntity.CONTACT, "c0000000-0000-4000-8000-000000000001", "Maija")
ACCOUNT = CustomerRef(CustomerEntity.ACCOUNT, "c0000000-0000-4000-8000-000000000002", "Acme")


def call(call_id: str = "rec-1", **changes: Any) -> EnterpriseCall:
    base = EnterpriseCall(
        source="teams",
        source_label="Teams",
        call_id=call_id,
        user_id=ANNA_OID,
        user_email="anna@contoso.example",
        direction=Direction.INBOUND,
        customer_number=CUSTOMER,
        started_at=T0,
        ended_at=T0 + dt.timedelta(seconds=150),
        duration_seconds=150,
        kind="user_in",
    )
    return replace(base, **changes)


# ---------------------------------------------------------------------- users


def test_enterprise_users_map_email_and_id_to_d365_users() -> None:
    users = parse_enterprise_users(
        '[{"systemUserId": "AAAAAAAA-0000-4000-8000-000000000001", "email": "Anna@Contoso.example",'
        f' "userId": "{ANNA_OID.upper()}"}},'
        ' {"systemUserId": "aaaaaaaa-0000-4000-8000-000000000002", "email": "ben@contoso.example"}]'
    )
    mapping = UserMap(users)
    assert mapping.system_user_of(user_id=ANNA_OID, email=None) == ANNA_USER
    assert mapping.system_user_of(user_id=None, email="BEN@contoso.example") == BEN_USER
    # The id wins over an email that belongs to someone else.
    assert mapping.system_user_of(user_id=ANNA_OID, email="ben@contoso.example") == ANNA_USER
    assert mapping.system_user_of(user_id="nobody", email="nobody@x.example") is None


@pytest.mark.parametrize(
    ("raw", "complaint"),
    [
        ("{}", "must be a JSON list"),
        ("[{", "is not valid JSON"),
        ('[{"email": "a@b.example"}]', "[0].systemUserId must be a GUID"),
        (f'[{{"systemUserId": "{ANNA_USER}"}}]', "[0] needs email and/or userId"),
        (f'[{{"systemUserId": "{ANNA_USER}", "userId": "x"}}]', "[0].userId must be a GUID"),
        (f'[{{"systemUserId": "{ANNA_USER}", "email": "no-at"}}]', "[0].email must be an email"),
        (
            f'[{{"systemUserId": "{ANNA_USER}", "email": "a@b.example"}},'
            f' {{"systemUserId": "{BEN_USER}", "email": "A@b.example"}}]',
            "a@b.example is mapped to two D365 users",
        ),
    ],
)
def test_a_bad_enterprise_users_setting_is_named(raw: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint.replace("[", r"\[").replace("]", r"\]")):
        parse_enterprise_users(raw)


def test_without_enterprise_users_the_agents_are_mapped_by_their_entra_object_id() -> None:
    agent = Agent("anna", "Anna", ANNA_OID.upper(), ANNA_USER, acs_user_id="8:acs:x")
    by_agents = user_map((), (agent,))
    assert by_agents.system_user_of(user_id=ANNA_OID, email=None) == ANNA_USER
    configured = user_map((EnterpriseUser(BEN_USER, "ben@contoso.example"),), (agent,))
    assert configured.system_user_of(user_id=ANNA_OID, email=None) is None  # replaces agents


# ---------------------------------------------------------------------- rules


def test_the_activity_id_is_fixed_by_source_and_record_id() -> None:
    assert call().activity_id == call().activity_id
    assert call().activity_id != call("rec-2").activity_id
    assert call().activity_id != call(source="mobile").activity_id


@pytest.mark.parametrize(
    ("changes", "outcome"),
    [
        ({"direction": None}, Outcome.NOT_A_USER_CALL),
        ({"user_id": "x", "user_email": "stranger@contoso.example"}, Outcome.UNMAPPED_USER),
        ({"duration_seconds": 9}, Outcome.TOO_SHORT),
        ({"customer_number": "anonymous"}, Outcome.NOT_A_CUSTOMER),
    ],
)
def test_calls_the_rules_skip_without_asking_d365(
    changes: dict[str, Any], outcome: Outcome
) -> None:
    assert screen(call(**changes), USERS, Rules(min_duration_seconds=10)) is outcome


def test_a_screened_call_has_its_owner_and_an_e164_number() -> None:
    screened = screen(call(customer_number="040 1234567"), USERS, Rules(default_region="FI"))
    assert screened == Screened(call(customer_number="040 1234567"), ANNA_USER, CUSTOMER)


def screened(**changes: Any) -> Screened:
    result = screen(call(**changes), USERS, Rules())
    assert isinstance(result, Screened)
    return result


def logged(activity_id: str, owner: str = ANNA_USER, seconds: int = 0) -> LoggedCall:
    return LoggedCall(activity_id, owner, CUSTOMER, T0 + dt.timedelta(seconds=seconds))


def test_a_call_logged_for_the_same_user_and_number_within_the_margin_is_already_logged() -> None:
    rules = Rules(match_margin_seconds=120)
    twin = logged("web-phone-activity", seconds=120)
    assert decide(screened(), [CONTACT], [twin], rules) == Skipped(
        Outcome.ALREADY_LOGGED, "web-phone-activity"
    )
    own = logged(call().activity_id, seconds=-5)
    assert decide(screened(), [CONTACT], [own], rules) == Skipped(
        Outcome.DUPLICATE, call().activity_id
    )
    others = [logged("b", owner=BEN_USER), logged("late", seconds=121)]
    assert isinstance(decide(screened(), [CONTACT], others, rules), EnterpriseActivity)


def test_only_a_contact_counts_as_customer_unless_accounts_and_leads_are_included() -> None:
    assert decide(screened(), [], [], Rules()) == Skipped(Outcome.NOT_A_CUSTOMER)
    assert decide(screened(), [ACCOUNT], [], Rules()) == Skipped(Outcome.NOT_A_CUSTOMER)
    made = decide(screened(), [ACCOUNT], [], Rules(include_accounts_leads=True))
    assert isinstance(made, EnterpriseActivity) and made.activity.regarding == ACCOUNT
    # A contact wins over an account with the same number.
    both = decide(screened(), [ACCOUNT, CONTACT], [], Rules(include_accounts_leads=True))
    assert isinstance(both, EnterpriseActivity) and both.activity.regarding == CONTACT


def test_several_contacts_import_the_call_without_regarding() -> None:
    other = replace(CONTACT, id="c0000000-0000-4000-8000-000000000009")
    made = decide(screened(), [CONTACT, other], [], Rules())
    assert isinstance(made, EnterpriseActivity)
    assert made.activity.regarding is None and made.activity.from_party is None
    unresolved = decide(screened(), [CONTACT, other], [], Rules(unresolved_parties=True))
    assert isinstance(unresolved, EnterpriseActivity)
    assert unresolved.activity.from_party == UnresolvedParty(CUSTOMER)
    assert unresolved.activity.regarding is None


def test_the_activity_says_where_the_call_came_from_and_who_made_it() -> None:
    inbound = decide(screened(), [CONTACT], [], Rules())
    assert isinstance(inbound, EnterpriseActivity)
    a = inbound.activity
    assert (a.subject, inbound.category) == (f"Teams call from {CUSTOMER}", "Teams")
    assert "Microsoft Teams call records (record rec-1)" in a.description
    assert (a.outgoing, a.owner_user_id, a.phone_number) == (False, ANNA_USER, CUSTOMER)
    assert (a.actual_start, a.duration_minutes, a.duration_seconds) == (T0, 3, 150)
    assert (a.from_party.id, a.to_party.id) == (CONTACT.id, ANNA_USER)  # type: ignore[union-attr]
    outbound = decide(
        screened(direction=Direction.OUTBOUND, source="mobile", source_label="Mobile"),
        [CONTACT],
        [],
        Rules(),
    )
    assert isinstance(outbound, EnterpriseActivity)
    assert outbound.activity.subject == f"Mobile call to {CUSTOMER}"
    assert outbound.activity.outgoing is True
    assert outbound.activity.from_party.id == ANNA_USER  # type: ignore[union-attr]


# ---------------------------------------------------------------------- Graph rows


def test_graph_rows_read_as_calls_with_the_customer_on_the_far_side() -> None:
    inbound = pstn_call(
        {
            "id": "g-1",
            "userId": ANNA_OID.upper(),
            "userPrincipalName": "Anna@Contoso.example",
            "startDateTime": "2024-05-06T08:00:08.2589935Z",
            "endDateTime": "2024-05-06T08:03:47.2589935Z",
            "duration": 219,
            "callType": "user_in",
            "callerNumber": CUSTOMER,
            "calleeNumber": "+358101000300",
        }
    )
    assert isinstance(inbound, EnterpriseCall)
    assert (inbound.direction, inbound.customer_number) == (Direction.INBOUND, CUSTOMER)
    assert (inbound.user_id, inbound.user_email) == (ANNA_OID, "anna@contoso.example")
    assert inbound.started_at == dt.datetime(2024, 5, 6, 8, 0, 8, 258993, tzinfo=dt.UTC)
    outbound = pstn_call(
        {
            "id": "g-2",
            "startDateTime": "2024-05-06T08:00:00Z",
            "callType": "user_out",
            "callerNumber": "+358101000300",
            "calleeNumber": CUSTOMER,
        }
    )
    assert isinstance(outbound, EnterpriseCall)
    assert (outbound.direction, outbound.customer_number) == (Direction.OUTBOUND, CUSTOMER)
    bot = pstn_call({"id": "g-3", "startDateTime": "2024-05-06T08:00:00Z", "callType": "ucap_in"})
    assert isinstance(bot, EnterpriseCall) and bot.direction is None
    assert pstn_call({"startDateTime": "2024-05-06T08:00:00Z"}) == UnreadableRecord("", "no id")
    assert pstn_call({"id": "g-4"}) == UnreadableRecord("g-4", "no startDateTime")


def test_timestamps_need_a_zone() -> None:
    assert parse_timestamp("2024-05-06T10:00:00+02:00") == T0
    assert parse_timestamp("2024-05-06T08:00:00") is None
    assert parse_timestamp(12) is None


# ---------------------------------------------------------------------- pushed records


def pushed(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": "op-1",
        "userEmail": "ben@contoso.example",
        "direction": "outbound",
        "customerNumber": CUSTOMER,
        "startDateTime": "2024-05-06T08:00:00Z",
        "endDateTime": "2024-05-06T08:02:00Z",
    }
    record.update(changes)
    return {key: value for key, value in record.items() if value is not None}


def test_a_pushed_record_reads_as_a_call() -> None:
    parsed = parse_pushed_calls({"source": "Mobile", "calls": [pushed()]})
    assert (parsed.source, parsed.label, parsed.errors, parsed.received) == (
        "mobile",
        "Mobile",
        (),
        1,
    )
    [(index, made)] = parsed.calls
    assert index == 0
    assert (made.direction, made.duration_seconds, made.user_email) == (
        Direction.OUTBOUND,
        120,
        "ben@contoso.example",
    )
    by_duration = parse_pushed_calls(
        {"source": "PBX", "calls": [pushed(endDateTime=None, durationSeconds=30)]}
    )
    assert by_duration.calls[0][1].ended_at == T0 + dt.timedelta(seconds=30)


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"id": None}, {"calls[0].id"}),
        ({"id": 7}, {"calls[0].id"}),
        ({"userEmail": None}, {"calls[0].userEmail"}),
        ({"userEmail": "nobody"}, {"calls[0].userEmail"}),
        ({"userId": "not-a-guid"}, {"calls[0].userId"}),
        ({"direction": "up"}, {"calls[0].direction"}),
        ({"customerNumber": ""}, {"calls[0].customerNumber"}),
        ({"startDateTime": "2024-05-06 08:00"}, {"calls[0].startDateTime"}),
        ({"endDateTime": "2024-05-06T07:00:00Z"}, {"calls[0].endDateTime"}),
        ({"endDateTime": None}, {"calls[0].durationSeconds"}),
        ({"durationSeconds": True}, {"calls[0].durationSeconds"}),
        ({"durationSeconds": -1}, {"calls[0].durationSeconds"}),
    ],
)
def test_a_malformed_pushed_record_names_its_fields(
    changes: dict[str, Any], fields: set[str]
) -> None:
    parsed = parse_pushed_calls({"source": "Mobile", "calls": [pushed(**changes), pushed()]})
    assert {e.field for e in parsed.errors} == fields
    assert [i for i, _ in parsed.calls] == [1]  # the valid record is still there


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ([], {""}),
        ({"calls": []}, {"source"}),
        ({"source": "a/b", "calls": []}, {"source"}),
        ({"source": "Mobile", "calls": {}}, {"calls"}),
        ({"source": "Mobile", "calls": [{}] * 1001}, {"calls"}),
    ],
)
def test_a_malformed_envelope_reads_no_record(body: Any, fields: set[str]) -> None:
    parsed = parse_pushed_calls(body)
    assert {e.field for e in parsed.errors} == fields and parsed.source == ""


# ---------------------------------------------------------------------- the service


@dataclass
class FakeSource:
    pages: list[list[EnterpriseCall | UnreadableRecord]] = field(default_factory=list)
    fail_after: int | None = None
    windows: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)

    def pstn_call_pages(
        self, start: dt.datetime, end: dt.datetime
    ) -> Iterable[list[EnterpriseCall | UnreadableRecord]]:
        self.windows.append((start, end))
        for n, page in enumerate(self.pages):
            if self.fail_after is not None and n >= self.fail_after:
                raise DependencyUnavailable("Graph is throttling")
            yield page

    def call_record(self, record_id: str) -> EnterpriseCall | UnreadableRecord | None:
        return next(
            (c for page in self.pages for c in page if c.call_id == record_id),
            None,
        )


@dataclass
class FakeCrm:
    customers: dict[str, tuple[CustomerRef, ...]] = field(default_factory=dict)
    logged: list[LoggedCall] = field(default_factory=list)
    activities: dict[str, EnterpriseActivity] = field(default_factory=dict)
    statuses: dict[str, WriteResult] = field(default_factory=dict)
    lookups: list[Sequence[tuple[str, str]]] = field(default_factory=list)
    create_batches: int = 0

    def look_up(
        self,
        wanted: Sequence[tuple[str, str]],
        since: dt.datetime,
        until: dt.datetime,
        *,
        accounts_and_leads: bool,
    ) -> CrmView:
        self.lookups.append(wanted)
        return CrmView(dict(self.customers), tuple(self.logged))

    def create_activities(self, activities: Sequence[EnterpriseActivity]) -> dict[str, WriteResult]:
        self.create_batches += 1
        out = {}
        for item in activities:
            key = item.activity.activity_id
            if key in self.statuses:
                out[key] = self.statuses[key]
            elif key in self.activities:
                out[key] = WriteResult(WriteStatus.EXISTS)
            else:
                self.activities[key] = item
                out[key] = WriteResult(WriteStatus.CREATED)
        return out


@dataclass
class FakeState:
    markers: dict[str, str] = field(default_factory=dict)
    marks: dict[str, dt.datetime] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)

    def processed(self, calls: Sequence[EnterpriseCall]) -> dict[str, str]:
        return {
            c.activity_id: self.markers[c.activity_id]
            for c in calls
            if c.activity_id in self.markers
        }

    def settle(self, settled: Sequence[tuple[EnterpriseCall, str]], at: dt.datetime) -> None:
        for c, outcome in settled:
            self.markers[c.activity_id] = outcome

    def watermark(self, source: str) -> dt.datetime | None:
        return self.marks.get(source)

    def exclusive(self, source: str) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def advance_watermark(self, source: str, to: dt.datetime) -> None:
        self.marks[source] = max(to, self.marks.get(source, to))

    def save_run(self, source: str, summary: dict[str, Any], at: dt.datetime) -> None:
        self.runs.append(summary)


def service(
    source: FakeSource | None = None,
    crm: FakeCrm | None = None,
    state: FakeState | None = None,
    overlap: int = 3600,
) -> tuple[EnterpriseSync, FakeSource, FakeCrm, FakeState]:
    source, crm, state = (
        source or FakeSource(),
        crm or FakeCrm({CUSTOMER: (CONTACT,)}),
        (state or FakeState()),
    )
    sync = EnterpriseSync(
        call_records=source,
        crm=crm,
        state=state,
        users=USERS,
        options=SyncOptions(rules=Rules(), overlap_seconds=overlap),
    )
    return sync, source, crm, state


def test_each_run_reads_from_the_watermark_less_the_overlap() -> None:
    sync, source, _, state = service(overlap=600)
    now = T0 + dt.timedelta(hours=1)
    sync.sync_teams(now)
    sync.sync_teams(now + dt.timedelta(minutes=5))
    assert source.windows == [
        (now - dt.timedelta(days=1), now),  # the first run reaches back a day
        (now - dt.timedelta(minutes=10), now + dt.timedelta(minutes=5)),  # watermark: now
    ]
    assert state.marks["teams"] == now + dt.timedelta(minutes=5)
    state.marks["teams"] = now - dt.timedelta(days=200)  # stopped for months
    sync.sync_teams(now)
    assert source.windows[-1][0] == now - dt.timedelta(days=89)  # Graph's range limit


def test_a_graph_failure_keeps_the_watermark_and_the_pages_read_so_far() -> None:
    first, second = call("a"), call("b", customer_number="+358401234568")
    sync, source, crm, state = service(FakeSource([[first], [second]], fail_after=1))
    with pytest.raises(DependencyUnavailable):
        sync.sync_teams(T0 + dt.timedelta(hours=1))
    assert "teams" not in state.marks and not state.runs
    assert list(crm.activities) == [first.activity_id]

    source.fail_after = None
    crm.customers["+358401234568"] = (CONTACT,)
    report = sync.sync_teams(T0 + dt.timedelta(hours=1, minutes=5))
    assert [d.outcome for d in report.decisions] == [Outcome.DUPLICATE, Outcome.IMPORTED]
    assert len(crm.activities) == 2


def test_settled_records_never_reach_dataverse_again() -> None:
    records = [call("a"), call("b", user_id="x", user_email=None)]
    sync, _, crm, state = service(FakeSource([records]))
    sync.sync_teams(T0 + dt.timedelta(hours=1))
    assert state.markers == {
        records[0].activity_id: "imported",
        records[1].activity_id: "unmappedUser",
    }
    lookups, creates = len(crm.lookups), crm.create_batches

    again = sync.sync_teams(T0 + dt.timedelta(hours=1))

    assert [d.outcome for d in again.decisions] == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert again.decisions[1].detail == "already processed: unmappedUser"
    assert again.decisions[1].activity_id is None  # no activity was ever made for it
    assert (len(crm.lookups), crm.create_batches) == (lookups, creates)


def test_throttled_writes_settle_the_rest_and_fail_the_run_for_a_retry() -> None:
    later = T0 + dt.timedelta(minutes=10)
    ok, throttled = call("a"), call("b", started_at=later, ended_at=later)
    crm = FakeCrm({CUSTOMER: (CONTACT,)})
    crm.statuses[throttled.activity_id] = WriteResult(WriteStatus.RETRY, "429")
    sync, _, _, state = service(FakeSource([[ok, throttled]]), crm)
    with pytest.raises(DependencyUnavailable):
        sync.sync_teams(T0 + dt.timedelta(hours=1))
    assert state.markers == {ok.activity_id: "imported"}
    assert "teams" not in state.marks


def test_a_refused_write_is_counted_and_not_settled_and_the_run_goes_on() -> None:
    refused = call("a")
    crm = FakeCrm({CUSTOMER: (CONTACT,)})
    crm.statuses[refused.activity_id] = WriteResult(WriteStatus.REFUSED, "400 0x0: no")
    sync, _, _, state = service(FakeSource([[refused]]), crm)
    report = sync.sync_teams(T0 + dt.timedelta(hours=1))
    assert [(d.outcome, d.detail) for d in report.decisions] == [(Outcome.FAILED, "400 0x0: no")]
    assert state.markers == {} and "teams" in state.marks


def test_a_record_twice_in_one_read_and_an_unreadable_row_are_counted() -> None:
    sync, _, crm, state = service(
        FakeSource([[call("a"), UnreadableRecord("g", "no startDateTime"), call("a")]])
    )
    report = sync.sync_teams(T0 + dt.timedelta(hours=1))
    assert [d.outcome for d in report.decisions] == [
        Outcome.IMPORTED,
        Outcome.UNREADABLE,
        Outcome.DUPLICATE,
    ]
    assert len(crm.activities) == 1 and len(state.markers) == 1
    assert state.runs[-1]["counts"]["unreadable"] == 1


def test_the_run_summary_counts_and_names_the_unmapped_users() -> None:
    sync, _, _, state = service(
        FakeSource(
            [[call("a", user_id="u-1", user_email=None), call("b", user_id="u-1", user_email=None)]]
        )
    )
    sync.sync_teams(T0 + dt.timedelta(hours=1))
    [summary] = state.runs
    assert summary["counts"]["unmappedUser"] == 2
    assert summary["unmappedUsers"] == ["u-1"]


def test_a_push_with_a_bad_envelope_is_refused_whole() -> None:
    sync, _, crm, _ = service()
    with pytest.raises(Unprocessable) as caught:
        sync.import_pushed({"source": "Mobile"}, T0)
    assert [e.field for e in caught.value.errors] == ["calls"]
    assert not crm.lookups


def test_a_push_reports_each_valid_record_and_the_malformed_ones() -> None:
    sync, _, crm, _ = service()
    body = {
        "source": "Mobile",
        "calls": [pushed(), pushed(id="op-2", direction="sideways"), pushed(id="op-3")],
    }
    result = sync.import_pushed(body, T0 + dt.timedelta(hours=1))
    rendered = to_json(result.report())
    assert rendered["received"] == 3 and rendered["malformed"] == 1
    assert [(r["index"], r["id"], r["outcome"]) for r in rendered["results"]] == [
        (0, "op-1", "imported"),
        (2, "op-3", "alreadyLogged"),  # op-1's activity: same user, number and time
    ]
    assert rendered["results"][0]["activityId"] == rendered["results"][1]["activityId"]
    assert [e.field for e in result.errors] == ["calls[1].direction"]
    assert rendered["counts"]["imported"] == 1 and len(crm.activities) == 1
