"""Who may play a call's recording: supervisors, the call's own agents, and whoever Dataverse
lets read the call's Phone Call activity (asked as the viewer); everyone else is refused."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest

from shared.domain.calls import (
    Call,
    CallKind,
    Consult,
    ConsultState,
    Direction,
    Offer,
    OfferOutcome,
)
from shared.domain.directory import Agent, Directory
from shared.errors import NotAllowed
from shared.services.recording_access import RecordingAccess

pytestmark = pytest.mark.unit
T = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
ANNA = Agent("anna", "Anna", "oid-anna", "u-anna", "8:acs:anna")
BEN = Agent("ben", "Ben", "oid-ben", "u-ben", "8:acs:ben")
CARL = Agent("carl", "Carl", "oid-carl", "u-carl", "8:acs:carl")


@dataclass(frozen=True)
class Viewer:
    oid: str
    roles: tuple[str, ...]


SUPERVISOR = Viewer("oid-sam", ("Phone.Supervisor",))


class FakeDataverse:
    def __init__(self, readers: set[str]) -> None:
        self.readers, self.asked = readers, []  # type: ignore[var-annotated]

    def may_read_phone_call(self, activity_id: str, viewer_object_id: str) -> bool:
        self.asked.append((activity_id, viewer_object_id))
        return viewer_object_id in self.readers


def access(readers: set[str], dataverse: FakeDataverse | None = None) -> RecordingAccess:
    return RecordingAccess(
        Directory((ANNA, BEN, CARL), ()),
        dataverse or FakeDataverse(readers),
        agent_role="Phone.Agent",
        supervisor_role="Phone.Supervisor",
    )


def call(**kw: object) -> Call:
    base = Call(
        "c1",
        Direction.INBOUND,
        CallKind.POOL,
        "+358401234567",
        "+358900100",
        T,
        offers=(
            Offer(1, "8:acs:carl", "carl", T, OfferOutcome.NOT_ANSWERED),
            Offer(2, "8:acs:anna", "anna", T, OfferOutcome.ANSWERED),
        ),
        first_answered_at=T,
        answered_by="anna",
        activity_id="act-1",
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_supervisors_and_the_calls_own_agents_listen_without_asking_dataverse() -> None:
    dataverse = FakeDataverse(set())
    rules = access(set(), dataverse)
    rules.check(SUPERVISOR, call())
    rules.check(Viewer("oid-anna", ("Phone.Agent",)), call())
    transferred = call(
        consult=Consult(1, "8:acs:ben", "ben", blind=True, state=ConsultState.COMPLETED)
    )
    rules.check(Viewer("oid-ben", ("Phone.Agent",)), transferred)
    assert dataverse.asked == []


def test_an_agent_who_was_only_offered_the_call_is_refused_unless_dataverse_says_so() -> None:
    carl = Viewer("oid-carl", ("Phone.Agent",))
    with pytest.raises(NotAllowed):
        access(set()).check(carl, call())
    access({"oid-carl"}).check(carl, call())


def test_a_d365_user_without_a_phone_role_listens_when_dataverse_lets_them_read_it() -> None:
    dataverse = FakeDataverse({"oid-manager"})
    access(set(), dataverse).check(Viewer("oid-manager", ()), call())
    assert dataverse.asked == [("act-1", "oid-manager")]
    with pytest.raises(NotAllowed):
        access(set()).check(Viewer("oid-stranger", ()), call())


def test_without_an_activity_only_staff_of_the_call_may_listen() -> None:
    dataverse = FakeDataverse({"oid-manager"})
    with pytest.raises(NotAllowed):
        access(set(), dataverse).check(Viewer("oid-manager", ()), call(activity_id=None))
    assert dataverse.asked == []
    # The agent role is needed to count as the call's agent (not just the right oid).
    with pytest.raises(NotAllowed):
        access(set()).check(Viewer("oid-anna", ("Other",)), call(activity_id=None))
