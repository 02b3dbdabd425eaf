"""Enterprise calls (§4): Teams and mobile calls made outside the web phone, and the rules that
decide which of them become Phone Call activities."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from shared.domain.activity import (
    DESCRIPTION_MAX,
    SUBJECT_MAX,
    Party,
    PhoneCallActivity,
    customer_party,
    duration_minutes,
)
from shared.domain.calls import Direction
from shared.domain.customers import CustomerEntity, CustomerRef
from shared.domain.directory import GUID
from shared.domain.enterprise_users import EMAIL, UserMap
from shared.domain.numbers import normalise
from shared.errors import FieldError

# Namespace of the activity ids derived from a source and its call id: the same source record
# always maps to the same Phone Call, so a repeat can never create a second one.
ENTERPRISE_NAMESPACE = uuid.UUID("0b7d4c1e-5a2f-4e8b-b6c3-9d1f2e3a4b5c")
TEAMS_SOURCE = "teams"
TEAMS_LABEL = "Teams"
MAX_PUSHED_CALLS = 1000
SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,31}$")
CALL_ID_MAX = 200

# Graph's pstnCallLogRow.callType: only a user's own calls are customer conversations; audio
# conferences (conf_*), bots such as call queues (ucap_*), transfers and forwards are not.
CALL_TYPE_DIRECTIONS = {"user_in": Direction.INBOUND, "user_out": Direction.OUTBOUND}


class Outcome(StrEnum):
    """What became of one enterprise call record."""

    IMPORTED = "imported"
    DUPLICATE = "duplicate"  # this source record was processed before (idempotent repeat)
    ALREADY_LOGGED = "alreadyLogged"  # the web phone (or another source) logged this call
    UNMAPPED_USER = "unmappedUser"
    TOO_SHORT = "tooShort"
    NOT_A_CUSTOMER = "notACustomer"  # the other party is no contact (or account/lead)
    NOT_A_USER_CALL = "notAUserCall"  # a conference, bot, transfer or forward record
    UNREADABLE = "unreadable"  # a source row without an id or a start time
    FAILED = "failed"  # Dataverse refused the activity; retried while the record is re-read


# ---------------------------------------------------------------------- calls


@dataclass(frozen=True)
class EnterpriseCall:
    """One call record from Teams (Graph) or a pushing system."""

    source: str  # lower-case key: "teams" or the pushing system's name
    source_label: str  # as shown in the subject and category: "Teams", "Mobile"
    call_id: str  # the source's id of the record
    user_id: str | None
    user_email: str | None
    direction: Direction | None  # None: not a user's own call (conference, bot, forward)
    customer_number: str  # the other party, as the source gave it
    started_at: datetime
    ended_at: datetime
    duration_seconds: int
    kind: str = ""  # Graph's callType, for the log

    @property
    def activity_id(self) -> str:
        return str(uuid.uuid5(ENTERPRISE_NAMESPACE, f"{self.source}:{self.call_id}"))


@dataclass(frozen=True)
class UnreadableRecord:
    """A source row that cannot be read as a call (no id, no start time)."""

    call_id: str
    problem: str


def graph_direction(call_type: str) -> Direction | None:
    return CALL_TYPE_DIRECTIONS.get(call_type.lower())


@dataclass(frozen=True)
class Rules:
    min_duration_seconds: int = 1
    match_margin_seconds: int = 120
    include_accounts_leads: bool = False
    default_region: str = "FI"
    unresolved_parties: bool = False  # DATAVERSE_UNRESOLVED_PARTIES
    default_owner: str | None = None  # systemuserid owning calls of unmapped users; None: skip


@dataclass(frozen=True)
class Screened:
    """A call that passed the rules needing no D365 lookup: its owner and E.164 number."""

    call: EnterpriseCall
    owner_id: str
    number: str


def screen(call: EnterpriseCall, users: UserMap, rules: Rules) -> Screened | Outcome:
    if call.direction is None:
        return Outcome.NOT_A_USER_CALL
    owner = users.system_user_of(user_id=call.user_id, email=call.user_email) or rules.default_owner
    if owner is None:
        return Outcome.UNMAPPED_USER
    if call.duration_seconds < rules.min_duration_seconds:
        return Outcome.TOO_SHORT
    number = normalise(call.customer_number, rules.default_region)
    if not number.valid:
        return Outcome.NOT_A_CUSTOMER
    return Screened(call, owner, number.value)


@dataclass(frozen=True)
class LoggedCall:
    """A Phone Call activity already in D365 (the web phone's, or an earlier import)."""

    activity_id: str
    owner_id: str
    phone_number: str
    started_at: datetime


@dataclass(frozen=True)
class CrmView:
    """What D365 knows about a set of numbers: customers by number, and the Phone Calls the
    users already have with those numbers around that time."""

    customers: Mapping[str, tuple[CustomerRef, ...]] = field(default_factory=dict)
    logged: tuple[LoggedCall, ...] = ()


class WriteStatus(StrEnum):
    CREATED = "created"
    EXISTS = "exists"  # an activity with this id is already there (an earlier run)
    REFUSED = "refused"  # Dataverse said no for good (e.g. an unknown owner)
    RETRY = "retry"  # throttled or unavailable: try again later


@dataclass(frozen=True)
class WriteResult:
    status: WriteStatus
    detail: str = ""


@dataclass(frozen=True)
class Skipped:
    """Why a call is not imported; `activity_id` names the activity that already has it."""

    outcome: Outcome
    activity_id: str | None = None


@dataclass(frozen=True)
class EnterpriseActivity:
    """The activity an enterprise call becomes, with the category naming its source."""

    call: EnterpriseCall
    activity: PhoneCallActivity
    category: str


def decide(
    screened: Screened,
    candidates: Iterable[CustomerRef],
    logged: Iterable[LoggedCall],
    rules: Rules,
) -> EnterpriseActivity | Skipped:
    """Import, or say why not: a logged twin first (agent, number, start within the margin),
    then whether the other party is a customer at all."""
    call = screened.call
    margin = timedelta(seconds=rules.match_margin_seconds)
    for twin in logged:
        if (
            twin.owner_id == screened.owner_id
            and twin.phone_number == screened.number
            and abs(twin.started_at - call.started_at) <= margin
        ):
            same = twin.activity_id == call.activity_id
            outcome = Outcome.DUPLICATE if same else Outcome.ALREADY_LOGGED
            return Skipped(outcome, twin.activity_id)
    eligible = [
        c for c in candidates if c.entity is CustomerEntity.CONTACT or rules.include_accounts_leads
    ]
    if not eligible:
        return Skipped(Outcome.NOT_A_CUSTOMER)
    return enterprise_activity(
        screened, customer_of(eligible), unresolved_parties=rules.unresolved_parties
    )


def customer_of(candidates: Sequence[CustomerRef]) -> CustomerRef | None:
    """Regarding: the one contact; with no contact, the one account or lead; else nobody."""
    contacts = [c for c in candidates if c.entity is CustomerEntity.CONTACT]
    if contacts:
        return contacts[0] if len(contacts) == 1 else None
    return candidates[0] if len(candidates) == 1 else None


def enterprise_activity(
    screened: Screened, customer: CustomerRef | None, *, unresolved_parties: bool = False
) -> EnterpriseActivity:
    call = screened.call
    inbound = call.direction is Direction.INBOUND
    label = call.source_label
    subject = f"{label} call {'from' if inbound else 'to'} {screened.number}"
    description = (
        f"{label} call imported from {_source_name(call)} (record {call.call_id}), "
        f"{'answered' if inbound else 'made'} outside the web phone."
    )
    customer_side = customer_party(customer, screened.number, unresolved=unresolved_parties)
    user_party = Party("systemuser", screened.owner_id)
    activity = PhoneCallActivity(
        activity_id=call.activity_id,
        subject=subject[:SUBJECT_MAX],
        description=description[:DESCRIPTION_MAX],
        phone_number=screened.number,
        outgoing=not inbound,
        actual_start=call.started_at,
        actual_end=max(call.ended_at, call.started_at),
        duration_minutes=duration_minutes(call.duration_seconds),
        owner_user_id=screened.owner_id,
        from_party=customer_side if inbound else user_party,
        to_party=user_party if inbound else customer_side,
        regarding=customer,
        duration_seconds=call.duration_seconds,
    )
    return EnterpriseActivity(call, activity, label)


def _source_name(call: EnterpriseCall) -> str:
    if call.source == TEAMS_SOURCE:
        return "Microsoft Teams call records"
    return call.source_label


# ---------------------------------------------------------------------- pushed records


@dataclass(frozen=True)
class PushedCalls:
    """A parsed push: the readable calls with their index in the request, and the errors."""

    source: str
    label: str
    calls: tuple[tuple[int, EnterpriseCall], ...]
    errors: tuple[FieldError, ...]
    received: int


def parse_pushed_calls(data: Any) -> PushedCalls:
    """Read `{"source": ..., "calls": [...]}` (docs/enterprise-calls.md). A bad record becomes
    field errors and the others are still returned; a bad envelope is all errors."""
    if not isinstance(data, Mapping):
        return PushedCalls("", "", (), (FieldError("", "must be a JSON object"),), 0)
    label = data.get("source")
    items = data.get("calls")
    envelope: list[FieldError] = []
    if not isinstance(label, str) or not SOURCE_NAME.match(label):
        envelope.append(
            FieldError("source", "required: 1-32 letters, digits, spaces, '_', '.' or '-'")
        )
    if not isinstance(items, list):
        envelope.append(FieldError("calls", "required: a list of call records"))
    elif len(items) > MAX_PUSHED_CALLS:
        envelope.append(FieldError("calls", f"at most {MAX_PUSHED_CALLS} records a request"))
    if envelope:
        return PushedCalls("", "", (), tuple(envelope), 0)
    assert isinstance(label, str) and isinstance(items, list)
    source = label.strip().lower()
    calls: list[tuple[int, EnterpriseCall]] = []
    errors: list[FieldError] = []
    for i, item in enumerate(items):
        parsed = _pushed_call(item, f"calls[{i}]", source, label.strip())
        if isinstance(parsed, EnterpriseCall):
            calls.append((i, parsed))
        else:
            errors.extend(parsed)
    return PushedCalls(source, label.strip(), tuple(calls), tuple(errors), len(items))


def _pushed_call(
    item: Any, where: str, source: str, label: str
) -> EnterpriseCall | list[FieldError]:
    if not isinstance(item, Mapping):
        return [FieldError(where, "must be an object")]
    errors: list[FieldError] = []

    def text(key: str, max_length: int, *, required: bool = True) -> str | None:
        value = item.get(key)
        if value is None or value == "":
            if required:
                errors.append(FieldError(f"{where}.{key}", "required"))
            return None
        if not isinstance(value, str) or len(value) > max_length:
            errors.append(FieldError(f"{where}.{key}", f"must be text of at most {max_length}"))
            return None
        return value.strip()

    call_id = text("id", CALL_ID_MAX)
    user_id = text("userId", 36, required=False)
    email = text("userEmail", 320, required=False)
    if user_id and not GUID.match(user_id):
        errors.append(FieldError(f"{where}.userId", "must be a GUID (the Entra ID object id)"))
    if email and not EMAIL.match(email):
        errors.append(FieldError(f"{where}.userEmail", "must be an email address"))
    user_fields = (f"{where}.userId", f"{where}.userEmail")
    if not user_id and not email and not any(e.field in user_fields for e in errors):
        errors.append(FieldError(f"{where}.userEmail", "userEmail or userId is required"))
    direction_text = item.get("direction")
    direction = {"inbound": Direction.INBOUND, "outbound": Direction.OUTBOUND}.get(
        direction_text if isinstance(direction_text, str) else ""
    )
    if direction is None:
        errors.append(FieldError(f"{where}.direction", "must be 'inbound' or 'outbound'"))
    number = text("customerNumber", 50)
    started = _timestamp(item.get("startDateTime"), f"{where}.startDateTime", errors)
    ended = _timestamp(item.get("endDateTime"), f"{where}.endDateTime", errors, required=False)
    duration = item.get("durationSeconds")
    if duration is not None and (
        not isinstance(duration, int) or isinstance(duration, bool) or not 0 <= duration <= 86400
    ):
        errors.append(FieldError(f"{where}.durationSeconds", "must be a whole number 0-86400"))
        duration = None
    if started and ended and ended < started:
        errors.append(FieldError(f"{where}.endDateTime", "must not be before startDateTime"))
    if (
        "endDateTime" not in item
        and "durationSeconds" not in item
        and not any(e.field == f"{where}.startDateTime" for e in errors)
    ):
        errors.append(FieldError(f"{where}.durationSeconds", "durationSeconds or endDateTime"))
    if errors:
        return errors
    assert call_id and number and started and direction
    if duration is None:
        duration = int(((ended or started) - started).total_seconds())
    end = ended or started + timedelta(seconds=duration)
    return EnterpriseCall(
        source=source,
        source_label=label,
        call_id=call_id,
        user_id=user_id.lower() if user_id else None,
        user_email=email.lower() if email else None,
        direction=direction,
        customer_number=number,
        started_at=started,
        ended_at=end,
        duration_seconds=duration,
        kind=direction.value,
    )


def _timestamp(
    value: Any, field: str, errors: list[FieldError], *, required: bool = True
) -> datetime | None:
    if value is None or value == "":
        if required:
            errors.append(FieldError(field, "required"))
        return None
    parsed = parse_timestamp(value)
    if parsed is None:
        errors.append(FieldError(field, "must be an ISO 8601 time with a zone, e.g. ...Z"))
    return parsed


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO 8601 timestamp with a zone (Graph's DateTimeOffset), as UTC; None if it is not."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Graph writes seven fractional digits; Python reads at most six.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)
