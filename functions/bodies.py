"""The JSON request bodies of the HTTP API, one frozen dataclass each.

`functions.invocation.read_body` decodes a request into one of these (400 naming each wrong
field), and `functions/openapi.py` documents the same classes. A field without a default is
required (absent, null or "" is missing; a field typed `X | None` without a default must be
present but may be null); JSON names are the camelCase of the field names, as in
`shared/views.py`. `check()`, where a class has one, adds the rules a type cannot say.
Imported on first use only, never at cold start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from shared.domain.activity import NOTES_MAX
from shared.errors import FieldError, InvalidInput
from shared.views import documented, named


@dataclass(frozen=True, kw_only=True)
class NotesBody:
    notes: str | None = documented(
        "The whole notes text (null clears them), at most 100,000 characters (what a D365 "
        "note holds). The activity's description gets the first 2,000; longer notes end it "
        'with "… (full notes attached)" and are kept whole in a note (annotation) on the '
        "activity.",
        maxLength=NOTES_MAX,
    )


@dataclass(frozen=True, kw_only=True)
class PickCustomerBody:
    entity: str = documented("contact, account or lead", enum=["contact", "account", "lead"])
    id: str


@dataclass(frozen=True, kw_only=True)
class DialBody:
    number: str
    caller_id: str | None = field(
        default=None,
        metadata={"schema": {"description": "One of GET /me/caller-ids; default its first."}},
    )


@dataclass(frozen=True, kw_only=True)
class DtmfBody:
    tones: str = documented(pattern="^[0-9*#A-D]{1,32}$")


@dataclass(frozen=True, kw_only=True)
class TransferBody:
    """Exactly one of agentId (a colleague) and number."""

    agent_id: str | None = None
    number: str | None = None


@dataclass(frozen=True, kw_only=True)
class AvailabilityBody:
    """The status and/or the DND forwarding number (null clears it)."""

    SCHEMA: ClassVar[dict[str, Any]] = {
        "anyOf": [{"required": ["status"]}, {"required": ["forwardTo"]}]
    }
    status: str | None = None
    forward_to: str | None = None
    given: frozenset[str] = field(
        default=frozenset(), metadata={"internal": True}
    )  # JSON names present

    def check(self) -> None:
        if not {"status", "forwardTo"} & self.given:
            raise InvalidInput(
                "give status and/or forwardTo",
                errors=[FieldError("status", "required unless forwardTo is given")],
            )


@dataclass(frozen=True, kw_only=True)
class PoolSwitch:
    pool_id: str
    active: bool


@dataclass(frozen=True, kw_only=True)
class PoolsBody:
    pools: tuple[PoolSwitch, ...] = documented(minItems=1)

    def check(self) -> None:
        if not self.pools:
            raise InvalidInput("pools is required", errors=[FieldError("pools", "non-empty list")])


@dataclass(frozen=True, kw_only=True)
class SessionBody:
    EMPTY_OK: ClassVar[bool] = True  # no body at all is {}
    takeover: bool = False


@dataclass(frozen=True, kw_only=True)
class MemberBody:
    """2a: switch the member on or off in the pool; 2b: add the agent (or change its skill)."""

    active: bool | None = None
    skill: int | None = field(
        default=None,
        metadata={
            "schema": {
                "description": "1..10; higher skills are offered calls first",
                "minimum": 1,
                "maximum": 10,
            }
        },
    )


@dataclass(frozen=True, kw_only=True)
class AlarmThresholdsBody:
    """A pool's alarm thresholds; a field absent or null switches that alarm off."""

    queue_length: int | None = documented(
        "Raise at this many callers waiting", default=None, minimum=1, maximum=10000
    )
    max_wait_seconds: int | None = documented(
        "Raise when the longest wait reaches this", default=None, minimum=1, maximum=86400
    )
    nobody_serving: bool | None = documented("Raise while no agent serves the pool", default=None)
    abandon_rate_percent: int | None = documented(
        "Raise at this share of today's calls abandoned", default=None, minimum=1, maximum=100
    )
    abandon_min_calls: int | None = documented(
        "The abandon rate counts once today has this many calls (default 10)",
        default=None,
        minimum=1,
        maximum=100000,
    )

    def check(self) -> None:
        limits = {
            "queueLength": (self.queue_length, 1, 10000),
            "maxWaitSeconds": (self.max_wait_seconds, 1, 86400),
            "abandonRatePercent": (self.abandon_rate_percent, 1, 100),
            "abandonMinCalls": (self.abandon_min_calls, 1, 100000),
        }
        wrong = [
            FieldError(name, f"{low}-{high}")
            for name, (value, low, high) in limits.items()
            if value is not None and not low <= value <= high
        ]
        if wrong:
            raise InvalidInput("out of range: " + ", ".join(e.field for e in wrong), errors=wrong)


@dataclass(frozen=True, kw_only=True)
class CallbackBody:
    """A callback request from another source: the number to call back, and optionally who,
    why, and the callback list (default: the first)."""

    number: str
    name: str | None = None
    note: str | None = None
    list_id: str | None = named("list", default=None)


@dataclass(frozen=True, kw_only=True)
class LinkCaseBody:
    case_id: str = documented("An open case's incidentid")


@dataclass(frozen=True, kw_only=True)
class NewCaseBody:
    title: str = documented("The case's title", maxLength=200)
    customer_entity: str | None = field(
        default=None,
        metadata={
            "schema": {
                "enum": ["contact", "account"],
                "description": "With customerId: the case's customer (e.g. from a directory "
                "search); default the call's identified or picked customer",
            }
        },
    )
    customer_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class EndpointBody:
    kind: str = documented("webPhone or mobile", enum=["webPhone", "mobile"])
    mobile_number: str | None = field(
        default=None,
        metadata={"schema": {"description": "E.164, e.g. +358401234567; with kind mobile"}},
    )
