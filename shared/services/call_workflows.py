"""The phone workflows of a call in the panel (docs/workflows.md): the CaseDialog's cases, the
case a call is linked to or creates, and the Phone Call activity the agent saves under
Contact&Account."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Protocol

from shared.domain.calls import Call
from shared.domain.customers import CustomerEntity, CustomerRef, customer_of_record
from shared.domain.directory import Agent
from shared.domain.workflows import CASE_TITLE_MAX, CaseRef, Workflow
from shared.errors import Conflict, FieldError, Unprocessable
from shared.services.agent_calls import AgentCalls
from shared.services.calls import CallFlow
from shared.services.ports import CallRepository
from shared.views import CallView, CaseDialogView, CaseView

CASE_CUSTOMERS = (CustomerEntity.CONTACT, CustomerEntity.ACCOUNT)  # incident.customerid


class CaseStore(Protocol):
    """Dataverse cases (incidents)."""

    def open_cases(self, customer: CustomerRef) -> list[CaseRef]: ...

    def case(self, case_id: str) -> CaseRef | None: ...

    def customer_of(self, case_id: str) -> str | None: ...

    def create_case(
        self, case_id: str, title: str, customer: CustomerRef, owner_user_id: str
    ) -> CaseRef: ...

    def set_regarding_case(self, activity_id: str, case_id: str) -> bool: ...


class CallWorkflows:
    def __init__(
        self, *, agent_calls: AgentCalls, flow: CallFlow, calls: CallRepository, cases: CaseStore
    ) -> None:
        self.agent_calls, self.flow, self.calls, self.cases = agent_calls, flow, calls, cases

    # ------------------------------------------------------------------ CaseDialog

    def dialog(
        self, agent: Agent, call_id: str, entity: str | None, record_id: str | None
    ) -> CaseDialogView:
        """The open cases of the call's customer (or of the one the agent searched for)."""
        call = self.agent_calls.call_of(agent, call_id)
        customer = self._customer(call, entity, record_id)
        cases = self.cases.open_cases(customer) if customer else []
        return CaseDialogView(
            customer=customer,
            cases=tuple(_case_view(c) for c in cases),
            candidates=call.candidates,
        )

    def link(self, agent: Agent, call_id: str, case_id: str) -> CallView:
        """Link the call to an existing case: its Phone Call activity regards the case."""
        call = self.agent_calls.call_of(agent, call_id)
        case = self.cases.case(case_id) if _is_guid(case_id) else None
        if case is None:
            raise Unprocessable(
                "no such case", errors=[FieldError("caseId", "an existing case's id")]
            )
        return self._linked(agent, call, case)

    def create(
        self,
        agent: Agent,
        call_id: str,
        title: str,
        entity: str | None,
        record_id: str | None,
    ) -> CallView:
        """Create a case (title, customer) and link the call to it, in one step."""
        call = self.agent_calls.call_of(agent, call_id)
        title = title.strip()
        if not title or len(title) > CASE_TITLE_MAX:
            raise Unprocessable(
                f"the title must be 1 to {CASE_TITLE_MAX} characters",
                errors=[FieldError("title", f"1 to {CASE_TITLE_MAX} characters")],
            )
        customer = self._customer(call, entity, record_id)
        if customer is None:
            raise Unprocessable(
                "a case needs its customer: pick a candidate or search for one",
                errors=[FieldError("customerId", "a contact or an account")],
            )
        # One case per call and title: a repeated request finds the case it made.
        case_id = str(uuid.uuid5(uuid.UUID(call.activity_uuid), f"case:{title}"))
        case = self.cases.create_case(case_id, title, customer, agent.system_user_id)
        return self._linked(agent, call, case)

    def _linked(self, agent: Agent, call: Call, case: CaseRef) -> CallView:
        def link(c: Call) -> Call | None:
            if c.case_id == case.id:
                return None
            return replace(
                c, case_id=case.id, case_title=case.title, case_number=case.ticket_number
            )

        result = self.calls.update(call.call_id, link)
        current = result[0] if result else call
        if current.activity_id and not self.cases.set_regarding_case(current.activity_id, case.id):
            raise Conflict("the activity is completed in D365 already: set Regarding there")
        return self.agent_calls.view(current, agent)

    def _customer(
        self, call: Call, entity: str | None, record_id: str | None
    ) -> CustomerRef | None:
        if entity or record_id:
            try:
                kind = CustomerEntity(entity or "")
            except ValueError:
                kind = None
            if kind not in CASE_CUSTOMERS or not record_id or not _is_guid(record_id):
                raise Unprocessable(
                    "a case's customer is a contact or an account",
                    errors=[FieldError("customerEntity", "contact or account, with its id")],
                )
            assert kind is not None
            known = next((c for c in call.candidates if c.id.lower() == record_id.lower()), None)
            return known or CustomerRef(kind, record_id.lower(), "")
        customer = customer_of_record(call.candidates, call.picked)
        return customer if customer and customer.entity in CASE_CUSTOMERS else None

    # ------------------------------------------------------------------ Contact&Account

    def save_activity(self, agent: Agent, call_id: str) -> CallView:
        """Save the Phone Call activity of a call whose workflow makes none by itself."""
        call = self.agent_calls.call_of(agent, call_id)
        if not call.answered:
            raise Conflict("only an answered call becomes a Phone Call activity")
        if self.flow.workflow_of(call) is not Workflow.CONTACT_ACCOUNT:
            raise Conflict("this call's workflow saves its activity itself")
        return self.agent_calls.view(self.flow.save_activity(call), agent)


def _case_view(case: CaseRef) -> CaseView:
    return CaseView(
        case_id=case.id,
        title=case.title,
        ticket_number=case.ticket_number,
        state=case.state,
        status=case.status,
        created_on=case.created_on,
    )


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
