"""The enrichment's PATCH carries the notes as they are then: a late edit is not lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.domain.calls import Call, CallKind, Direction
from shared.domain.enrichment import Action, EnrichmentPolicy, plan_enrichment

pytestmark = pytest.mark.unit
T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
POLICY = EnrichmentPolicy(base_delay_seconds=30, max_wait_seconds=600, complete_activity=True)


def ended_call() -> Call:
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
        activity_id="a1",
    )


def test_the_latest_notes_go_into_the_enrichment_patch() -> None:
    plan = plan_enrichment(
        ended_call(), None, T0 + timedelta(seconds=90), POLICY, notes="Call back on Friday"
    )
    assert plan.action is Action.WRITE and plan.update is not None
    assert plan.update.description == "Call back on Friday"


def test_no_notes_leave_the_description_alone() -> None:
    plan = plan_enrichment(ended_call(), None, T0 + timedelta(seconds=90), POLICY, notes="")
    assert plan.update is not None and plan.update.description is None
