"""The phone workflows in the panel (docs/workflows.md) and the agent's endpoint (web phone or
mobile): the CaseDialog's cases, linking or creating a case, saving the activity of a
Contact&Account call."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from functions.invocation import CALL_ERRORS, NO_STORE, Auth, TextQuery, endpoint

if TYPE_CHECKING:
    from functions.bodies import EndpointBody, LinkCaseBody, NewCaseBody
    from shared.domain.directory import Agent
    from shared.views import CallView, CaseDialogView, EndpointView

bp = func.Blueprint()

CUSTOMER_ENTITY = TextQuery(
    "customerEntity",
    choices=("contact", "account"),
    description="With customerId: the cases of this customer instead of the call's",
)
CUSTOMER_ID = TextQuery("customerId", description="A contact's or an account's id")


@endpoint(bp, "GET", "me/endpoint", auth=Auth.AGENT, headers=NO_STORE)
def get_endpoint(req: func.HttpRequest, agent: Agent) -> EndpointView:
    """Where the agent's calls ring: the web phone or a mobile number"""
    from shared import composition

    return composition.presence().endpoint(agent)


@endpoint(bp, "PUT", "me/endpoint", auth=Auth.AGENT, errors=(422, 503))
def set_endpoint(req: func.HttpRequest, agent: Agent, body: EndpointBody) -> EndpointView:
    """Choose the web phone or a mobile number (E.164) for pool and direct calls

    With mobile, calls ring the mobile through ACS (a PSTN participant; the caller id is the
    number the customer called), with the pool's ring timeout."""
    from shared import composition

    return composition.presence().set_endpoint(agent, body.kind, body.mobile_number)


@endpoint(
    bp,
    "GET",
    "me/calls/{callId}/cases",
    auth=Auth.AGENT,
    query=(CUSTOMER_ENTITY, CUSTOMER_ID),
    errors=(404, 422, 503),
    headers=NO_STORE,
)
def call_cases(req: func.HttpRequest, agent: Agent) -> CaseDialogView:
    """The case dialog: the open cases of the call's customer (CaseDialog workflow)

    Without an identified or picked customer: no cases, the call's candidates; a customer
    found by a directory search is asked for with customerEntity and customerId."""
    from shared import composition

    return composition.call_workflows().dialog(
        agent,
        req.route_params["callId"],
        CUSTOMER_ENTITY.read(req),
        CUSTOMER_ID.read(req),
    )


@endpoint(bp, "PUT", "me/calls/{callId}/case", auth=Auth.AGENT, errors=(*CALL_ERRORS, 422))
def link_case(req: func.HttpRequest, agent: Agent, body: LinkCaseBody) -> CallView:
    """Link the call to an existing case: its Phone Call activity regards the case

    409 when the activity is completed in D365 already."""
    from shared import composition

    return composition.call_workflows().link(agent, req.route_params["callId"], body.case_id)


@endpoint(
    bp,
    "POST",
    "me/calls/{callId}/cases",
    auth=Auth.AGENT,
    status=201,
    errors=(*CALL_ERRORS, 422),
)
def create_case(req: func.HttpRequest, agent: Agent, body: NewCaseBody) -> CallView:
    """Create a case (title, customer) and link the call to it, in one step"""
    from shared import composition

    return composition.call_workflows().create(
        agent, req.route_params["callId"], body.title, body.customer_entity, body.customer_id
    )


@endpoint(bp, "POST", "me/calls/{callId}/activity", auth=Auth.AGENT, errors=CALL_ERRORS)
def save_activity(req: func.HttpRequest, agent: Agent) -> CallView:
    """Save the call's Phone Call activity (Contact&Account makes none by itself)

    An ended call gets it at once, a live one when it ends; 409 for an unanswered call or
    another workflow."""
    from shared import composition

    return composition.call_workflows().save_activity(agent, req.route_params["callId"])
