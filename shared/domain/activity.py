"""The Phone Call activity an answered call becomes in D365 (§3; the handbook's mapping table)."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime

from shared.domain.calls import Call, Direction
from shared.domain.customers import CustomerRef

SUBJECT_MAX = 200
DESCRIPTION_MAX = 2000  # phonecall.description in Dataverse
NOTES_MAX = 100_000  # annotation.notetext in Dataverse: the most notes a call keeps
# How a description says that it is the start of longer notes, kept whole as a note on it.
ATTACHED_MARKER = "… (full notes attached)"
NOTES_SUBJECT = "Call notes (full text)"  # the annotation's subject
# How an annotation ends whose notes are more than it holds: after a transfer, the earlier
# agents' parts under their names can take the combined text past NOTES_MAX.
CUT_MARKER = "… (cut at 100,000 characters)"


@dataclass(frozen=True)
class ActivityNotes:
    """Where a call's notes go on its activity: the description holds what fits; notes longer
    than that are kept whole in one annotation (a Note on the Phone Call)."""

    description: str
    annotation: str | None = None  # the whole text, when it does not fit the description
    # No annotation is wanted now, but an earlier, longer version of the notes may have made
    # one: it is removed (a missing one is no error).
    remove_annotation: bool = False


def activity_notes(notes: str, *, attached_before: bool = False) -> ActivityNotes:
    """Split notes (at most NOTES_MAX characters; more are cut, saying so) between the
    description and the annotation.
    `attached_before`: notes longer than the description were saved for this call at some time,
    so an annotation may exist."""
    if len(notes) <= DESCRIPTION_MAX:
        return ActivityNotes(notes, None, remove_annotation=attached_before)
    head = notes[: DESCRIPTION_MAX - len(ATTACHED_MARKER)].rstrip()
    if len(notes) > NOTES_MAX:
        notes = notes[: NOTES_MAX - len(CUT_MARKER)] + CUT_MARKER
    return ActivityNotes(head + ATTACHED_MARKER, notes)


def notes_annotation_id(activity_id: str) -> str:
    """The one annotation a call's activity may have: deterministic, so every write (and every
    retry) lands on the same note."""
    return str(uuid.uuid5(uuid.UUID(activity_id), "call-notes"))


@dataclass(frozen=True)
class Party:
    """An activity party: a customer record or a D365 user."""

    entity: str  # contact, account, lead, systemuser
    id: str


@dataclass(frozen=True)
class UnresolvedParty:
    """A party D365 holds as an address only (`addressused`, no record): an unknown number,
    shown in the form's From/To as the number itself."""

    address: str


ActivityParty = Party | UnresolvedParty


def customer_party(
    customer: CustomerRef | None, number: str, *, unresolved: bool
) -> ActivityParty | None:
    """The customer's side of a call: the identified record; else, when `unresolved` is on
    (DATAVERSE_UNRESOLVED_PARTIES), the number as an unresolved party; else nobody."""
    if customer is not None:
        return Party(customer.entity.value, customer.id)
    if unresolved and number:
        return UnresolvedParty(number)
    return None


def duration_seconds(start: datetime, end: datetime) -> int:
    """The call's length to the second (`<prefix>durationseconds`), never negative."""
    return max(0, round((end - start).total_seconds()))


def duration_minutes(seconds: int) -> int:
    """`actualdurationminutes` (whole minutes, as D365's Duration field shows them): the
    seconds divided by 60 and rounded up, at least 1 for a call that connected; so 2 s and
    60 s are 1 minute, 61 s is 2. The exact length is in `<prefix>durationseconds`."""
    return max(1, math.ceil(seconds / 60))


@dataclass(frozen=True)
class PhoneCallActivity:
    activity_id: str
    subject: str
    description: str
    phone_number: str
    outgoing: bool
    actual_start: datetime
    actual_end: datetime
    duration_minutes: int
    owner_user_id: str
    from_party: ActivityParty | None
    to_party: ActivityParty | None
    regarding: CustomerRef | None
    duration_seconds: int = 0
    regarding_case: str | None = None  # an incident's id: regards the case, not the customer
    notes_annotation: str | None = None  # the whole notes, when longer than the description


@dataclass(frozen=True)
class SubjectTemplates:
    inbound: str = "Incoming call from {number}"
    outbound: str = "Outgoing call to {number}"


def render_subject(template: str, *, number: str, name: str, pool: str, agent: str) -> str:
    """Fill a subject template; unknown placeholders are left as written."""
    values = {"number": number, "name": name or number, "pool": pool, "agent": agent}
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out[:SUBJECT_MAX]


def phone_call_activity(
    call: Call,
    *,
    agent_user_id: str,
    agent_name: str,
    pool_name: str,
    notes: str,
    templates: SubjectTemplates,
    unresolved_parties: bool = False,
) -> PhoneCallActivity:
    """Map an answered, ended call to its activity. Regarding and the customer party are set
    only for a single identified or picked customer (§2.1.2 b, §2.1.4 a); with
    `unresolved_parties`, an unknown number is the customer party as an address."""
    if call.first_answered_at is None or call.ended_at is None:
        raise ValueError("only an answered call that has ended becomes an activity")
    customer = call.customer
    customer_side = customer_party(customer, call.customer_number, unresolved=unresolved_parties)
    agent_party = Party("systemuser", agent_user_id)
    inbound = call.direction is Direction.INBOUND
    start, end = call.first_answered_at, max(call.ended_at, call.first_answered_at)
    template = templates.inbound if inbound else templates.outbound
    seconds = duration_seconds(start, end)
    split = activity_notes(notes)
    return PhoneCallActivity(
        activity_id=call.activity_uuid,
        subject=render_subject(
            template,
            number=call.customer_number,
            name=customer.name if customer else "",
            pool=pool_name,
            agent=agent_name,
        ),
        description=split.description,
        phone_number=call.customer_number,
        outgoing=not inbound,
        actual_start=start,
        actual_end=end,
        duration_minutes=duration_minutes(seconds),
        owner_user_id=agent_user_id,
        from_party=customer_side if inbound else agent_party,
        to_party=agent_party if inbound else customer_side,
        regarding=customer,
        duration_seconds=seconds,
        notes_annotation=split.annotation,
    )
