"""The phone workflow settings (pool and agent; the agent's wins) and a case as the activity's
Regarding."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.adapters.dataverse import phone_call_body
from shared.domain.activity import PhoneCallActivity
from shared.domain.customers import CustomerEntity, CustomerRef
from shared.domain.directory import parse_agents, parse_pools
from shared.domain.workflows import Workflow, effective_workflow

AGENT = {
    "id": "anna",
    "entraObjectId": "11111111-1111-4111-8111-111111111111",
    "systemUserId": "aaaaaaaa-0000-4000-8000-000000000001",
    "acsUserId": "8:acs:anna",
}


def test_pools_and_agents_read_their_workflow() -> None:
    [pool] = parse_pools(json.dumps([{"id": "sales", "workflow": "caseDialog"}]))
    [plain] = parse_pools(json.dumps([{"id": "support"}]))
    [agent] = parse_agents(json.dumps([{**AGENT, "workflow": "contactAccount"}]))
    assert pool.workflow is Workflow.CASE_DIALOG and plain.workflow is None
    assert agent.workflow is Workflow.CONTACT_ACCOUNT


def test_an_unknown_workflow_stops_the_start_naming_the_choices() -> None:
    with pytest.raises(ValueError, match=r"\[0\]\.workflow must be one of") as bad:
        parse_pools(json.dumps([{"id": "sales", "workflow": "Case Dialog"}]))
    assert "caseDialog" in str(bad.value)
    with pytest.raises(ValueError, match=r"\[0\]\.workflow"):
        parse_agents(json.dumps([{**AGENT, "workflow": 3}]))


@pytest.mark.parametrize(
    ("agent", "pool", "expected"),
    [
        (None, None, Workflow.PHONE_CALL),
        (None, Workflow.CASE_DIALOG, Workflow.CASE_DIALOG),
        (Workflow.CONTACT_ACCOUNT, Workflow.CASE_DIALOG, Workflow.CONTACT_ACCOUNT),
        (Workflow.PHONE_CALL, Workflow.CONTACT_ACCOUNT, Workflow.PHONE_CALL),
    ],
)
def test_the_agents_workflow_wins_over_the_pools(
    agent: Workflow | None, pool: Workflow | None, expected: Workflow
) -> None:
    assert effective_workflow(agent, pool) is expected


def activity(**more: object) -> PhoneCallActivity:
    at = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    base = PhoneCallActivity(
        activity_id="a1",
        subject="s",
        description="",
        phone_number="+358401234567",
        outgoing=False,
        actual_start=at,
        actual_end=at,
        duration_minutes=1,
        owner_user_id="u1",
        from_party=None,
        to_party=None,
        regarding=CustomerRef(CustomerEntity.CONTACT, "c1", "Maija"),
    )
    return base if not more else PhoneCallActivity(**{**base.__dict__, **more})  # type: ignore[arg-type]


def test_a_linked_case_is_the_regarding_instead_of_the_customer() -> None:
    plain = phone_call_body(activity(), duration_column="new_durationseconds")
    assert plain["regardingobjectid_contact_phonecall@odata.bind"] == "/contacts(c1)"
    case = phone_call_body(activity(regarding_case="i1"), duration_column="new_durationseconds")
    assert case["regardingobjectid_incident_phonecall@odata.bind"] == "/incidents(i1)"
    assert not any(k.startswith("regardingobjectid_contact") for k in case)


def test_a_stored_pool_keeps_its_workflow() -> None:
    """Pools live in Table Storage as pool_json; reading one back keeps its workflow."""
    from shared.domain.directory import parse_pool, pool_json

    problems: list[str] = []
    raw = {"id": "support", "numbers": ["+358101000300"], "workflow": "caseDialog"}
    pool = parse_pool(raw, "[0]", problems)
    assert pool is not None and not problems
    again = parse_pool(pool_json(pool), "[0]", problems)
    assert again is not None and again.workflow is Workflow.CASE_DIALOG and not problems
