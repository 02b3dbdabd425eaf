"""Notes longer than the description: what fits goes there, the whole text into one annotation,
and the activity ends with the latest save whatever order the writes land in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.activity import (
    ATTACHED_MARKER,
    DESCRIPTION_MAX,
    NOTES_MAX,
    ActivityNotes,
    SubjectTemplates,
    activity_notes,
    notes_annotation_id,
    phone_call_activity,
)
from shared.domain.calls import Call, CallKind, Direction
from shared.domain.directory import Agent, Directory
from shared.domain.enrichment import EnrichmentPolicy, plan_enrichment
from shared.errors import Unprocessable
from shared.services.activity_notes import follow_notes
from tests.unit.fakes import FakeCalls, FakeCrm

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
ACTIVITY = "5d1b6c4e-8a31-5f0e-9c55-0d6c1a0b9e11"
LONG = "".join(f"line {n}: the customer explained it again. " for n in range(200))[:5000]
POLICY = EnrichmentPolicy(base_delay_seconds=30, max_wait_seconds=600, complete_activity=True)


def ended_call(**kw: object) -> Call:
    return Call(
        "c1",
        Direction.INBOUND,
        CallKind.DIRECT,
        "+358401234567",
        "+358101000201",
        T0,
        agent_id="anna",
        first_answered_at=T0 + timedelta(seconds=5),
        ended_at=T0 + timedelta(seconds=65),
        answered_by="anna",
        **kw,  # type: ignore[arg-type]
    )


def test_notes_that_fit_are_the_description_and_need_no_annotation() -> None:
    exact = "x" * DESCRIPTION_MAX
    assert activity_notes(exact) == ActivityNotes(exact, None, remove_annotation=False)


def test_longer_notes_fill_the_description_with_the_marker_and_go_whole_to_the_annotation() -> None:
    split = activity_notes(LONG)
    assert len(LONG) == 5000
    assert len(split.description) <= DESCRIPTION_MAX
    assert split.description.endswith(ATTACHED_MARKER)
    assert LONG.startswith(split.description.removesuffix(ATTACHED_MARKER))
    assert split.annotation == LONG and not split.remove_annotation


def test_notes_shrunk_back_remove_the_annotation_an_earlier_version_made() -> None:
    assert activity_notes("short again", attached_before=True).remove_annotation
    assert activity_notes("short again", attached_before=True).annotation is None


def test_the_annotation_id_is_the_activitys_own_and_stable() -> None:
    assert notes_annotation_id(ACTIVITY) == notes_annotation_id(ACTIVITY.upper())
    assert notes_annotation_id(ACTIVITY) != notes_annotation_id(
        "5d1b6c4e-8a31-5f0e-9c55-0d6c1a0b9e12"
    )


def test_the_activity_of_a_call_with_long_notes_carries_both_parts() -> None:
    activity = phone_call_activity(
        ended_call(),
        agent_user_id="u-anna",
        agent_name="Anna",
        pool_name="",
        notes=LONG,
        templates=SubjectTemplates(),
    )
    assert activity.description.endswith(ATTACHED_MARKER)
    assert activity.notes_annotation == LONG


def test_the_enrichment_keeps_long_notes_in_the_annotation_and_removes_it_when_short() -> None:
    now = T0 + timedelta(seconds=90)
    long_plan = plan_enrichment(ended_call(activity_id=ACTIVITY), None, now, POLICY, notes=LONG)
    assert long_plan.update is not None and long_plan.update.annotation == LONG
    assert long_plan.update.description is not None
    assert long_plan.update.description.endswith(ATTACHED_MARKER)
    short = plan_enrichment(
        ended_call(activity_id=ACTIVITY), None, now, POLICY, notes="ok", notes_attached=True
    )
    assert short.update is not None and short.update.remove_annotation
    assert short.update.description == "ok" and short.update.annotation is None
    cleared = plan_enrichment(
        ended_call(activity_id=ACTIVITY), None, now, POLICY, notes="", notes_attached=True
    )
    assert cleared.update is not None and cleared.update.description == ""
    assert cleared.update.remove_annotation


def test_a_save_landing_during_a_write_is_written_after_it() -> None:
    """The older write lands last: the writer sees the newer save and writes it again."""
    calls = FakeCalls()
    calls.save_notes("c1", "first version")
    landed: list[str] = []

    def write(split: ActivityNotes) -> bool:
        if not landed:  # while this write is on its way, a newer save lands (and its write)
            calls.save_notes("c1", LONG)
            landed.append(LONG)
        landed.append(split.annotation or split.description)
        return True

    assert follow_notes(calls, "c1", write)
    assert landed[-1] == LONG


def test_an_older_save_writes_the_stored_notes_not_its_own() -> None:
    calls = FakeCalls()
    calls.save_notes("c1", "older")
    calls.save_notes("c1", "newer")  # saved and written while "older" waited to be written
    landed: list[str] = []
    follow_notes(calls, "c1", lambda split: landed.append(split.description) is None)
    assert landed == ["newer"]


def test_a_refused_write_stops_following() -> None:
    calls = FakeCalls()
    calls.save_notes("c1", "text")
    assert not follow_notes(calls, "c1", lambda split: False)


def agent_calls(crm: FakeCrm, calls: FakeCalls) -> object:
    from shared.services.agent_calls import AgentCalls

    anna = Agent("anna", "Anna", "0" * 8 + "-0000-4000-8000-" + "0" * 12, "u-anna", "8:acs:anna")
    return AgentCalls(
        flow=None,  # type: ignore[arg-type]
        directory=Directory((anna,), ()),
        calls=calls,
        agents=None,  # type: ignore[arg-type]
        crm=crm,
        telephony=None,  # type: ignore[arg-type]
        templates=SubjectTemplates(),
        default_region="FI",
    )


def test_notes_over_the_maximum_are_refused_saying_the_limit() -> None:
    service = agent_calls(FakeCrm(), FakeCalls())
    anna = Agent("anna", "Anna", "0" * 8 + "-0000-4000-8000-" + "0" * 12, "u-anna", "8:acs:anna")
    with pytest.raises(Unprocessable) as refused:
        service.save_notes(anna, "c1", "x" * (NOTES_MAX + 1))  # type: ignore[attr-defined]
    assert str(NOTES_MAX) in str(refused.value)
    assert refused.value.errors[0].field == "notes"
