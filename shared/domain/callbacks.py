"""Callback requests (§5): captured from callers, imported into D365 as Phone Calls, closed here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from shared.domain.activity import ActivityParty, customer_party
from shared.domain.callback_lists import CallbackList as CallbackList  # re-exported
from shared.domain.callback_lists import ListOwner
from shared.domain.callback_lists import parse_callback_lists as parse_callback_lists
from shared.domain.customers import CustomerRef, Identification, identification

CALLBACK_NAMESPACE = "0b7e4f52-95a1-4c3e-8d2a-6f1b3c9e7a10"  # uuid5 namespace of our ids
SUBJECT = "Callback Request"  # §5: the subject of every callback Phone Call
HANDLED_NOTE = "Handled by D365"  # §5: the note a request is closed with
NAME_MAX = 100
NOTE_MAX = 1000
DESCRIPTION_MAX = 2000  # phonecall.description in Dataverse


class CallbackState(StrEnum):
    OPEN = "open"
    HANDLED = "handled"


class CallbackSource(StrEnum):
    """Where a request came from: a caller's key press in a pool, or the HTTP API."""

    CALL = "call"
    API = "api"


def callback_request_id(key: str) -> str:
    """A deterministic request id: the same key (e.g. `call:<call id>`) is the same request."""
    return _uuid5(f"request:{key}")


def request_id_for_call(call_id: str) -> str:
    """The id of the callback a caller leaves during call `call_id` (one per call)."""
    return callback_request_id(f"call:{call_id}")


@dataclass(frozen=True)
class CallbackRequest:
    """A caller's wish to be called back, as stored in its list until D365 takes it over."""

    request_id: str
    list_id: str
    number: str  # E.164
    requested_at: datetime
    source: str
    pool_id: str | None = None
    name: str | None = None
    note: str | None = None
    state: CallbackState = CallbackState.OPEN
    activity_id: str | None = None
    handled_at: datetime | None = None
    handled_note: str | None = None
    identification: Identification | None = None
    regarding: CustomerRef | None = None

    @property
    def activity_uuid(self) -> str:
        """The Phone Call's activityid: derived from the request, so a repeat creates nothing."""
        return _uuid5(f"activity:{self.request_id}")

    def handled(self, at: datetime, candidates: tuple[CustomerRef, ...] | None) -> CallbackRequest:
        """This request closed on our side: D365 has its Phone Call now."""
        found = candidates or ()
        return replace(
            self,
            state=CallbackState.HANDLED,
            activity_id=self.activity_uuid,
            handled_at=at,
            handled_note=HANDLED_NOTE,
            identification=identification(found) if candidates is not None else None,
            regarding=found[0] if len(found) == 1 else None,
        )


@dataclass(frozen=True)
class OpenRequest:
    """An open request as the import sees it: who holds it (a claim) and how it went so far.

    `version` is the storage's opaque version (an ETag): a claim is written only if the
    request is unchanged since it was read.
    """

    request: CallbackRequest
    version: str = ""
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    attempts: int = 0
    last_error: str | None = None

    def claimable(self, now: datetime) -> bool:
        """Free, or held by a run whose claim has expired (that run is taken to be dead)."""
        return self.claimed_until is None or self.claimed_until <= now


@dataclass(frozen=True)
class Claim:
    """A run's hold on the requests it works on, until `until`."""

    run_id: str
    until: datetime


@dataclass(frozen=True)
class CallbackActivity:
    """The Phone Call a request becomes (§5): a call to make (outgoing), due within the list's
    window from the request, the customer as its To party and Regarding only when exactly one
    record matched; placed in the list's queue, owned by the list's owner (None: the
    application user)."""

    activity_id: str
    subject: str
    description: str
    phone_number: str
    queue_id: str
    customer: CustomerRef | None
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None
    to_party: ActivityParty | None = None
    owner: ListOwner | None = None


class WriteOutcome(StrEnum):
    CREATED = "created"  # the Phone Call and its queue item were created now
    EXISTED = "existed"  # an earlier run created them (its close did not happen)
    FAILED = "failed"  # Dataverse refused this one; it stays open for a later run


@dataclass(frozen=True)
class WriteResult:
    outcome: WriteOutcome
    error: str | None = None


def describe(request: CallbackRequest, pool_name: str | None) -> str:
    """The Phone Call's description: the number, the time and the pool (and what was left)."""
    at = request.requested_at.strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"Callback requested by {request.number} at {at}."]
    if pool_name:
        lines.append(f"Service pool: {pool_name}")
    if request.name:
        lines.append(f"Name: {request.name}")
    if request.note:
        lines.append(f"Note: {request.note}")
    return "\n".join(lines)[:DESCRIPTION_MAX]


def callback_activity(
    request: CallbackRequest,
    candidates: tuple[CustomerRef, ...],
    *,
    callback_list: CallbackList,
    pool_name: str | None,
    unresolved_parties: bool = False,
) -> CallbackActivity:
    """Map a request to its Phone Call. Several or no matches set no customer (§5); with
    `unresolved_parties`, the number is then the To party as an address."""
    customer = candidates[0] if len(candidates) == 1 else None
    return CallbackActivity(
        activity_id=request.activity_uuid,
        subject=SUBJECT,
        description=describe(request, pool_name),
        phone_number=request.number,
        queue_id=callback_list.queue_id,
        customer=customer,
        scheduled_start=request.requested_at,
        scheduled_end=request.requested_at + timedelta(minutes=callback_list.due_minutes),
        to_party=customer_party(customer, request.number, unresolved=unresolved_parties),
        owner=callback_list.owner,
    )


def _uuid5(name: str) -> str:
    import uuid  # on first use: uuid imports platform, which cold start should not pay for

    return str(uuid.uuid5(uuid.UUID(CALLBACK_NAMESPACE), name))
