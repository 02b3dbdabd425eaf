"""The Phone Call activity an answered call becomes in D365 (§3; the handbook's mapping table)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from shared.domain.calls import Call, Direction
from shared.domain.customers import CustomerRef

SUBJECT_MAX = 200
DESCRIPTION_MAX = 2000  # phonecall.description in Dataverse


@dataclass(frozen=True)
class Party:
    """An activity party: a customer record or a D365 user."""

    entity: str  # contact, account, lead, systemuser
    id: str


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
    from_party: Party | None
    to_party: Party | None
    regarding: CustomerRef | None


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
) -> PhoneCallActivity:
    """Map an answered, ended call to its activity. Regarding and the customer party are set
    only for a single identified or picked customer (§2.1.2 b, §2.1.4 a)."""
    if call.first_answered_at is None or call.ended_at is None:
        raise ValueError("only an answered call that has ended becomes an activity")
    customer = call.customer
    customer_party = Party(customer.entity.value, customer.id) if customer else None
    agent_party = Party("systemuser", agent_user_id)
    inbound = call.direction is Direction.INBOUND
    start, end = call.first_answered_at, max(call.ended_at, call.first_answered_at)
    template = templates.inbound if inbound else templates.outbound
    return PhoneCallActivity(
        activity_id=call.activity_uuid,
        subject=render_subject(
            template,
            number=call.customer_number,
            name=customer.name if customer else "",
            pool=pool_name,
            agent=agent_name,
        ),
        description=notes[:DESCRIPTION_MAX],
        phone_number=call.customer_number,
        outgoing=not inbound,
        actual_start=start,
        actual_end=end,
        duration_minutes=max(1, math.ceil((end - start).total_seconds() / 60)),
        owner_user_id=agent_user_id,
        from_party=customer_party if inbound else agent_party,
        to_party=agent_party if inbound else customer_party,
        regarding=customer,
    )
