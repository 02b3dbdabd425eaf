"""What the HTTP API answers: one frozen dataclass per response shape, rendered to JSON here.

Services return these views; the trigger renders them (`to_json`), and `functions/openapi.py`
reads the same classes to write the OpenAPI document, so the two cannot disagree. Field names
are snake_case in Python and camelCase in JSON (`call_id` -> `callId`); `named("list")` gives a
field another JSON name, `omitted()` a field that is left out of the JSON while it is None.
Timestamps are datetimes here and ISO 8601 UTC with a `Z` in JSON. Imported on first use only
(never at cold start): see docs/decisions.md, "Typed views".
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any, Literal

from shared.domain.availability import AvailabilityType
from shared.domain.callbacks import CallbackState
from shared.domain.calls import Direction, Outcome, Phase
from shared.domain.customers import CustomerRef, DirectoryEntry, Identification, ScreenPop
from shared.domain.enterprise_calls import Outcome as RecordOutcome
from shared.domain.moments import iso_z
from shared.domain.pool_monitoring import AlarmKind
from shared.domain.workflows import Workflow

__all__ = ["CustomerRef"]  # domain values that are views as they are


# ---------------------------------------------------------------------- declaring and rendering


def named(json_name: str, **options: Any) -> Any:
    """A field whose JSON name is not the camelCase of its Python name."""
    return field(metadata={"json": json_name}, **options)


def omitted(**schema: Any) -> Any:
    """A field absent from the JSON while it is None (documented as optional, never null)."""
    return field(default=None, metadata={"omit": True, "schema": schema})


def documented(description: str = "", *, default: Any = dataclasses.MISSING, **schema: Any) -> Any:
    """A field with a description and JSON Schema keywords (limits, patterns); required
    unless it has a `default`."""
    described = {"description": description} if description else {}
    return field(default=default, metadata={"schema": {**schema, **described}})


def camel(name: str) -> str:
    first, *rest = name.rstrip("_").split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass(frozen=True)
class JsonField:
    attr: str
    json: str
    omit: bool
    internal: bool
    schema: dict[str, Any]
    required: bool


@cache
def json_fields(cls: Any) -> tuple[JsonField, ...]:
    """The JSON side of a view's (or request body's) fields, in declaration order."""
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        out.append(
            JsonField(
                attr=f.name,
                json=meta.get("json", camel(f.name)),
                omit=bool(meta.get("omit")),
                internal=bool(meta.get("internal")),
                schema=dict(meta.get("schema") or {}),
                required=not has_default,
            )
        )
    return tuple(out)


@cache
def hints(cls: Any) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def to_json(value: Any) -> Any:
    """A view (or any nesting of views, enums, datetimes, lists and dicts) as JSON data."""
    if value is None or isinstance(value, str | int | float | bool):
        return value.value if isinstance(value, Enum) else value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return iso_z(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in json_fields(type(value)):
            item = getattr(value, f.attr)
            if f.internal or (f.omit and item is None):
                continue
            out[f.json] = to_json(item)
        return out
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    raise TypeError(f"{type(value).__name__} is not a view")


V = typing.TypeVar("V")


def extended(base: Any, cls: type[V], **more: Any) -> V:
    """A view of a subclass of `base`'s class: `base`'s values and the subclass's own."""
    return cls(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)}, **more)


# ---------------------------------------------------------------------- problems (RFC 9457)


@dataclass(frozen=True, kw_only=True)
class FieldProblem:
    field: str
    message: str


@dataclass(frozen=True, kw_only=True)
class ProblemView:
    """Every 4xx and 5xx our code answers, as application/problem+json."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: tuple[FieldProblem, ...] | None = omitted()


# ---------------------------------------------------------------------- the agent's calls


@dataclass(frozen=True, kw_only=True)
class ScreenPopView:
    """What the panel opens: the record (single match), the candidates (several), or nothing."""

    action: ScreenPop
    record: CustomerRef | None = omitted()
    candidates: tuple[CustomerRef, ...] | None = omitted()


@dataclass(frozen=True, kw_only=True)
class ActivityPrefill:
    """Pre-filled Phone Call values for the agent to complete in D365 (§3), after an answered
    call without a single identified customer."""

    activity_id: str
    entity: Literal["phonecall"] = "phonecall"
    subject: str
    phone_number: str
    direction_code: bool
    actual_start: datetime | None
    actual_end: datetime | None
    description: str
    regarding: None = None
    candidates: tuple[CustomerRef, ...]
    needs_completion: bool = True


@dataclass(frozen=True, kw_only=True)
class CallView:
    """A call as the agent's panel shows it."""

    call_id: str
    state: Phase
    outcome: Outcome | None
    # The ring is the agent's own call coming back after its web phone dropped (a refresh):
    # the customer waited on hold, the notes are intact.
    rejoin: bool
    direction: Direction
    customer_number: str
    our_number: str
    pool_name: str | None
    identification: Identification
    candidates: tuple[CustomerRef, ...]
    picked: CustomerRef | None
    screen_pop: ScreenPopView
    arrived_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    notes: str = documented(
        "This agent's own notes. After a completed transfer each agent has their own part: "
        "the colleague who took the call writes theirs; the agent who handed it on reads "
        "theirs and can no longer change it (409)"
    )
    earlier_notes: str | None = omitted(
        description="The notes of the agents who handed the call on, each under their name and "
        "the time of the transfer, read-only; the activity's description is these, then `notes`"
    )
    transferred_to: str | None = omitted(
        description="The colleague this agent transferred the call to (`state` transferred): "
        "the call, its notes and its Phone Call activity are theirs now"
    )
    activity_id: str | None
    activity: ActivityPrefill | None
    workflow: Workflow = documented(
        "What D365 gets (docs/workflows.md): phoneCall, caseDialog (the panel shows the "
        "customer's open cases) or contactAccount (no activity unless the agent saves one)"
    )
    case: CaseLink | None = omitted()


@dataclass(frozen=True, kw_only=True)
class CaseLink:
    """The case (incident) the call is linked to: its Phone Call activity regards it."""

    case_id: str
    title: str
    ticket_number: str


@dataclass(frozen=True, kw_only=True)
class CaseView:
    """One case (Dataverse incident) in the case dialog."""

    case_id: str
    title: str
    ticket_number: str
    state: int = documented("statecode: 0 Active, 1 Resolved, 2 Cancelled")
    status: int = documented("statuscode (1 In Progress, 2 On Hold, 3 Waiting, 4 Researching)")
    created_on: datetime | None


@dataclass(frozen=True, kw_only=True)
class CaseDialogView:
    """The case dialog of a call: the customer's open cases; without a customer, none, and the
    call's candidates to choose from (or a directory search)."""

    customer: CustomerRef | None
    cases: tuple[CaseView, ...]
    candidates: tuple[CustomerRef, ...]


@dataclass(frozen=True, kw_only=True)
class EndpointView:
    """Where the agent's calls ring: the web phone, or a mobile number (E.164)."""

    kind: Literal["webPhone", "mobile"]
    mobile_number: str | None
    web_phone: bool = documented("Whether the agent has a web phone (acsUserId)")


@dataclass(frozen=True, kw_only=True)
class CallWithNotes(CallView):
    """The call after saving notes; `notesInActivity` says whether the open activity followed
    (null: no activity yet; false: D365 refused, the activity is completed already)."""

    notes_in_activity: bool | None


@dataclass(frozen=True, kw_only=True)
class CurrentCall:
    call: CallView | None


@dataclass(frozen=True, kw_only=True)
class HistoryEntry:
    call_id: str
    direction: Direction
    number: str
    name: str | None
    at: datetime | None
    duration_seconds: int | None
    outcome: str = documented("The call's outcome, or its state while it is not over")
    answered_by_you: bool


@dataclass(frozen=True, kw_only=True)
class History:
    calls: tuple[HistoryEntry, ...]


@dataclass(frozen=True, kw_only=True)
class CallerIds:
    caller_ids: tuple[str, ...]
    default: str | None


@dataclass(frozen=True, kw_only=True)
class DirectoryResult:
    """A directory row: a D365 record (`kind` is its table: contact, account, lead, or
    systemuser for a D365 user) or a colleague (an agent, `id` the agent id). `phone` is the
    number to call: the one that matched when the query was a number, else the record's
    first. The `matched...` fields are there when a phone column matched the query."""

    kind: Literal["contact", "account", "lead", "systemuser", "colleague"]
    id: str
    name: str
    phone: str | None
    matched_number: str | None = omitted(
        description="The stored number (as D365 holds it) the query is the start of"
    )
    matched_column: str | None = omitted(
        description="Where it is: the D365 column (e.g. mobilephone), or the AGENTS field "
        "(directNumbers, phoneNumber) of a colleague"
    )
    matched_label: str | None = omitted(description="What the panel calls it, e.g. mobile")

    @classmethod
    def of(cls, entry: DirectoryEntry) -> DirectoryResult:
        m = entry.matched
        return cls(
            kind=entry.kind,  # type: ignore[arg-type]
            id=entry.id,
            name=entry.name,
            phone=entry.phone,
            matched_number=m.number if m else None,
            matched_column=m.column if m else None,
            matched_label=m.label if m else None,
        )


@dataclass(frozen=True, kw_only=True)
class DirectoryPage:
    results: tuple[DirectoryResult, ...]
    page: int
    next_page: int | None


# ---------------------------------------------------------------------- availability and sessions


@dataclass(frozen=True, kw_only=True)
class StatusChoice:
    name: str
    kind: AvailabilityType = named("type")


@dataclass(frozen=True, kw_only=True)
class AvailabilityView:
    """The agent's status (§1.2.1); `until`/`returnsTo` while a timed status (Lunch) runs."""

    status: str
    kind: AvailabilityType = named("type")
    until: datetime | None
    returns_to: str | None
    forward_to: str | None
    statuses: tuple[StatusChoice, ...]


@dataclass(frozen=True, kw_only=True)
class PoolMembership:
    pool_id: str
    name: str
    active: bool


@dataclass(frozen=True, kw_only=True)
class AgentPools:
    pools: tuple[PoolMembership, ...]


@dataclass(frozen=True, kw_only=True)
class AcsTokenView:
    """An ACS user access token for the agent's web phone (scope voip)."""

    token: str
    expires_on: datetime
    communication_user_id: str = documented("The agent's acsUserId")


@dataclass(frozen=True, kw_only=True)
class SessionView:
    session_id: str
    lease_seconds: int
    started_at: datetime
    expires_at: datetime


# ---------------------------------------------------------------------- the web phone


# ---------------------------------------------------------------------- supervisors


@dataclass(frozen=True, kw_only=True)
class PoolFigures:
    """One pool's live figures (§9)."""

    pool_id: str
    name: str
    serving: int
    free: int
    active: int
    active_calls: int
    queue_length: int
    max_wait_seconds: int


@dataclass(frozen=True, kw_only=True)
class Dashboard:
    pools: tuple[PoolFigures, ...]


@dataclass(frozen=True, kw_only=True)
class PoolAgent:
    agent_id: str
    name: str
    status: str
    kind: AvailabilityType = named("type")
    active_in_pool: bool
    on_call: bool
    skill: int = 5
    takes_calls: bool = False  # Available, active here, free and out of after-call work
    wrap_up_until: datetime | None = omitted()


@dataclass(frozen=True, kw_only=True)
class PoolDetail(PoolFigures):
    """One pool's figures, numbers and agents (§7)."""

    numbers: tuple[str, ...]
    agents: tuple[PoolAgent, ...]


# ---------------------------------------------------------------------- pool monitoring (§8, §9)


@dataclass(frozen=True, kw_only=True)
class PoolCallView:
    """One ongoing or recent pool call on the service calls tab (§9)."""

    call_id: str
    customer_number: str
    state: Phase
    arrived_at: datetime
    wait_seconds: int = documented("Waited for an agent: until answered, ended, or so far")
    answered_at: datetime | None
    ended_at: datetime | None
    agent_id: str | None
    agent_name: str | None
    outcome: Outcome | None


@dataclass(frozen=True, kw_only=True)
class PoolCalls:
    """A pool's calls of the last 24 hours, newest first: the ongoing ones, then the rest."""

    pool_id: str
    name: str
    ongoing: tuple[PoolCallView, ...]
    recent: tuple[PoolCallView, ...]


@dataclass(frozen=True, kw_only=True)
class ActiveAlarm:
    kind: AlarmKind
    since: datetime
    text: str = documented("The condition in words, with the figure and its threshold")


@dataclass(frozen=True, kw_only=True)
class WallboardPool:
    """One pool's row on the wallboard (§9 2.4)."""

    pool_id: str
    name: str
    waiting: int
    longest_wait_seconds: int
    serving: int
    free: int
    answered_today: int
    abandoned_today: int
    abandon_rate_percent: int
    alarms: tuple[ActiveAlarm, ...]


@dataclass(frozen=True, kw_only=True)
class Wallboard:
    """Every pool's live figures; "today" is since midnight UTC."""

    at: datetime
    refresh_seconds: int
    pools: tuple[WallboardPool, ...]


@dataclass(frozen=True, kw_only=True)
class AlarmSettings:
    """A pool's alarm thresholds (null: that alarm is off) and the alarms raised now."""

    pool_id: str
    queue_length: int | None
    max_wait_seconds: int | None
    nobody_serving: bool
    abandon_rate_percent: int | None
    abandon_min_calls: int
    updated_by: str | None
    updated_at: datetime | None
    active: tuple[ActiveAlarm, ...]


# ---------------------------------------------------------------------- callbacks


@dataclass(frozen=True, kw_only=True)
class CallbackRequestView:
    request_id: str
    list_id: str = named("list")
    state: CallbackState
    number: str
    name: str | None
    note: str | None
    pool_id: str | None
    source: str
    requested_at: datetime | None
    activity_id: str | None
    handled_at: datetime | None
    handled_note: str | None
    identification: Identification | None
    regarding: CustomerRef | None


@dataclass(frozen=True, kw_only=True)
class OpenCallbackRequestView(CallbackRequestView):
    """An open request with its import attempts so far."""

    claimed_until: datetime | None
    attempts: int
    last_error: str | None


@dataclass(frozen=True, kw_only=True)
class CallbackRequests:
    value: tuple[OpenCallbackRequestView | CallbackRequestView, ...]


# ---------------------------------------------------------------------- enterprise calls


@dataclass(frozen=True, kw_only=True)
class RecordResult:
    """What became of one pushed call record (its index in `calls`)."""

    index: int
    id: str
    outcome: RecordOutcome
    activity_id: str | None = omitted()
    detail: str | None = omitted()


@dataclass(frozen=True, kw_only=True)
class PushReport:
    source: str
    received: int
    malformed: int
    counts: dict[str, int]
    results: tuple[RecordResult, ...]


@dataclass(frozen=True, kw_only=True)
class PushRejected(ProblemView, PushReport):
    """422: some records are malformed (`errors`); the others were processed (`results`)."""


@dataclass(frozen=True, kw_only=True)
class SyncWindow:
    start: str = named("from")
    end: str = named("to")


@dataclass(frozen=True, kw_only=True)
class SyncSummary:
    """One enterprise sync run, as logged and kept with the source's state."""

    source: str
    records: int
    counts: dict[str, int]
    unmapped_users: tuple[str, ...]
    window: SyncWindow | None = omitted()


# ---------------------------------------------------------------------- webhooks and health


@dataclass(frozen=True, kw_only=True)
class Accepted:
    """How many events of the delivery were taken."""

    accepted: int


@dataclass(frozen=True, kw_only=True)
class ValidationAnswer:
    """Event Grid's subscription validation handshake."""

    validation_response: str


@dataclass(frozen=True, kw_only=True)
class DependencyHealth:
    status: Literal["up", "down"]
    duration_ms: int
    error: str | None = omitted()


@dataclass(frozen=True, kw_only=True)
class HealthView:
    status: Literal["healthy", "unhealthy"]
    version: str
    dependencies: dict[str, DependencyHealth]


@dataclass(frozen=True, kw_only=True)
class PoolMemberSetting:
    agent_id: str
    skill: int = documented("1..10; higher skills are offered calls first", minimum=1, maximum=10)


@dataclass(frozen=True, kw_only=True)
class PoolSettingsView:
    """A pool as stored, in the form PUT .../settings takes (docs/pools.md)."""

    id: str
    name: str
    numbers: tuple[str, ...]
    members: tuple[PoolMemberSetting, ...]
    ring_timeout_seconds: int
    wrap_up_seconds: int
    time_zone: str
    hours: dict[str, Any] | None = omitted()
    closed: dict[str, Any] | None = omitted()
    exceptions: tuple[dict[str, Any], ...] | None = omitted()
    overflow: dict[str, Any] | None = omitted()
    queue_announcements: dict[str, Any] | None = omitted()
    callback: dict[str, Any] | None = omitted()
    record: bool | None = omitted()


@dataclass(frozen=True, kw_only=True)
class PoolChange:
    """One audited change of a pool: who, when, what (the pool before and after)."""

    at: datetime
    by: str
    by_object_id: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True, kw_only=True)
class PoolAudit:
    pool_id: str
    changes: tuple[PoolChange, ...]


# ---------------------------------------------------------------------- uploaded prompts


@dataclass(frozen=True, kw_only=True)
class PromptView:
    """An uploaded prompt of a pool (§7 2.3 3b): name it in an action as `"prompt": <id>`."""

    prompt_id: str = named("id")
    pool_id: str
    name: str
    duration_ms: int = documented("The audio's length in milliseconds", minimum=0)
    size_bytes: int = documented("The WAV file's size in bytes", minimum=0)
    uploaded_at: datetime
    uploaded_by: str
    in_use: bool = documented("Named by one of the pool's actions (then it cannot be deleted)")


@dataclass(frozen=True, kw_only=True)
class PoolPrompts:
    pool_id: str
    prompts: tuple[PromptView, ...]
