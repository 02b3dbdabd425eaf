"""What happens in D365 around a phone call (use-case doc §8): the phone workflow of a pool or
an agent, and the case (Dataverse `incident`) a call is linked to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class Workflow(Enum):
    """`workflow` in SERVICE_POOLS and AGENTS (docs/workflows.md); the agent's wins."""

    PHONE_CALL = "phoneCall"  # a Phone Call activity for every answered call (as before)
    CASE_DIALOG = "caseDialog"  # the customer's open cases; the activity regards the case
    CONTACT_ACCOUNT = "contactAccount"  # identification and screen pop only; no activity


WORKFLOW_NAMES = tuple(w.value for w in Workflow)


def parse_workflow(value: object, where: str, problems: list[str]) -> Workflow | None:
    """A pool's or an agent's `workflow`; absent: None (the default applies)."""
    if value is None:
        return None
    try:
        return Workflow(value)
    except ValueError:
        problems.append(f"{where}.workflow must be one of {list(WORKFLOW_NAMES)}, got {value!r}")
        return None


def effective_workflow(agent: Workflow | None, pool: Workflow | None) -> Workflow:
    """The agent's setting wins over the pool's; neither: a Phone Call activity."""
    return agent or pool or Workflow.PHONE_CALL


@dataclass(frozen=True)
class CaseRef:
    """A case (incident) as the case dialog lists it."""

    id: str
    title: str
    ticket_number: str
    state: int  # statecode: 0 Active, 1 Resolved, 2 Cancelled
    status: int  # statuscode
    created_on: datetime | None


CASE_TITLE_MAX = 200  # incident.title in Dataverse
