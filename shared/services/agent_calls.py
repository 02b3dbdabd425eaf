"""The agent's side of a call (§2.1, §6): what the panel shows, notes, picking, dialling."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from shared.domain.activity import DESCRIPTION_MAX, NOTES_MAX, SubjectTemplates, render_subject
from shared.domain.calls import (
    Call,
    Direction,
    OfferOutcome,
    Phase,
    call_notes,
    notes_before,
)
from shared.domain.customers import (
    CustomerEntity,
    ScreenPop,
    customer_of_record,
    identification,
    screen_pop,
)
from shared.domain.destinations import OPEN, DestinationPolicy
from shared.domain.directory import Agent, Directory
from shared.domain.directory_search import QueryProblem, directory_query, with_colleagues
from shared.domain.numbers import normalise
from shared.errors import Conflict, FieldError, NotAllowed, NotFound, Unprocessable
from shared.services.activity_notes import follow_notes
from shared.services.calls import CallFlow
from shared.services.ports import AgentStates, CallRepository, Crm, Telephony
from shared.views import (
    ActivityPrefill,
    CallerIds,
    CallView,
    CallWithNotes,
    CaseLink,
    DirectoryPage,
    DirectoryResult,
    History,
    HistoryEntry,
    ScreenPopView,
    extended,
)


class AgentCalls:
    def __init__(
        self,
        *,
        flow: CallFlow,
        directory: Directory,
        calls: CallRepository,
        agents: AgentStates,
        crm: Crm,
        telephony: Telephony,
        templates: SubjectTemplates,
        default_region: str,
        destinations: DestinationPolicy = OPEN,
    ) -> None:
        self.destinations = destinations
        self.flow, self.directory, self.calls, self.agents = flow, directory, calls, agents
        self.crm, self.telephony, self.templates = crm, telephony, templates
        self.region = default_region

    # ------------------------------------------------------------------ access

    def _call_of(self, agent: Agent, call_id: str) -> Call:
        call = self.calls.get(call_id)
        if call is None:
            raise NotFound(f"no call {call_id}")
        if not _acts_on(call, agent):
            raise NotAllowed("this call belongs to another agent")
        return call

    def call_of(self, agent: Agent, call_id: str) -> Call:
        """The call, if `agent` takes part in it (404 unknown, 403 another agent's)."""
        return self._call_of(agent, call_id)

    # ------------------------------------------------------------------ reads

    def current(self, agent: Agent) -> CallView | None:
        """The agent's latest call as the panel shows it, or None."""
        call_id = self.agents.latest_call(agent.id)
        call = self.calls.get(call_id) if call_id else None
        if call is None or not _acts_on(call, agent):
            return None
        return self.view(call, agent)

    def notes_parts(self, call: Call) -> tuple[str, ...]:
        """Every agent's part of the call's notes, the first agent's first."""
        return self.calls.notes_parts(call.call_id, len(call.handovers) + 1)

    def view(self, call: Call, viewer: Agent) -> CallView:
        """The call as `viewer`'s panel shows it: after a transfer the colleague's, with the
        earlier agents' notes above theirs; over for the agent who handed it on."""
        pool = self.directory.pool(call.pool_id or "")
        customer = customer_of_record(call.candidates, call.picked)
        pop = screen_pop(call.candidates, call.picked)
        state = call.phase_for(viewer.id)
        handed = call.handed_over_by(viewer.id)
        parts = self.notes_parts(call)
        part = call.notes_shown_to(viewer.id)
        notes = "" if part is None else parts[part] if part < len(parts) else ""
        if part is not None and part >= len(parts):  # a consulted colleague's coming part
            notes = self.calls.notes(call.call_id, part)
        owner = handed is None and part == len(call.handovers)
        return CallView(
            call_id=call.call_id,
            state=state,
            outcome=call.outcome,
            rejoin=call.pending_rejoin is not None,
            direction=call.direction,
            customer_number=call.customer_number,
            our_number=call.our_number,
            pool_name=pool.name if pool else None,
            identification=identification(call.candidates),
            candidates=call.candidates,
            picked=call.picked,
            screen_pop=ScreenPopView(
                action=pop,
                record=customer,
                candidates=call.candidates if pop is ScreenPop.SHOW_CANDIDATES else None,
            ),
            arrived_at=call.arrived_at,
            answered_at=call.first_answered_at,
            ended_at=call.ended_at,
            notes=notes,
            earlier_notes=(notes_before(call, parts) or None) if owner else None,
            transferred_to=handed.to_name if handed else None,
            activity_id=call.activity_id or None,
            activity=(
                self._prefill(call, parts)
                if owner and call.ended and call.answered and customer is None
                else None
            ),
            workflow=self.flow.workflow_of(call),
            case=(
                CaseLink(
                    case_id=call.case_id,
                    title=call.case_title or "",
                    ticket_number=call.case_number or "",
                )
                if call.case_id
                else None
            ),
        )

    def _prefill(self, call: Call, parts: tuple[str, ...]) -> ActivityPrefill:
        """What the agent completes in D365 when the customer was not identified (§3)."""
        template = (
            self.templates.inbound
            if call.direction is Direction.INBOUND
            else self.templates.outbound
        )
        pool = self.directory.pool(call.pool_id or "")
        agent = self.directory.agent(call.owner_agent_id or "")
        return ActivityPrefill(
            activity_id=call.activity_id or call.activity_uuid,
            subject=render_subject(
                template,
                number=call.customer_number,
                name="",
                pool=pool.name if pool else "",
                agent=agent.name if agent else "",
            ),
            phone_number=call.customer_number,
            direction_code=call.direction is Direction.OUTBOUND,
            actual_start=call.first_answered_at,
            actual_end=call.ended_at,
            description=call_notes(call, parts),
            candidates=call.candidates,
        )

    def history(self, agent: Agent, limit: int) -> History:
        """The agent's recent calls, newest first (§1.3 call history)."""
        items = []
        for call_id in self.agents.recent_calls(agent.id, limit):
            call = self.calls.get(call_id)
            if call is None:
                continue
            customer = customer_of_record(call.candidates, call.picked)
            duration = None
            if call.first_answered_at and call.ended_at:
                duration = round((call.ended_at - call.first_answered_at).total_seconds())
            items.append(
                HistoryEntry(
                    call_id=call.call_id,
                    direction=call.direction,
                    number=call.customer_number,
                    name=customer.name if customer else None,
                    at=call.arrived_at,
                    duration_seconds=duration,
                    outcome=(
                        Phase.TRANSFERRED.value
                        if call.handed_over_by(agent.id)
                        else call.outcome.value
                        if call.outcome
                        else call.phase.value
                    ),
                    answered_by_you=call.answered_by == agent.id
                    or any(h.to_agent_id == agent.id for h in call.handovers)
                    or (call.direction is Direction.OUTBOUND and call.answered),
                )
            )
        return History(calls=tuple(items))

    def caller_ids(self, agent: Agent) -> CallerIds:
        return CallerIds(
            caller_ids=tuple(agent.caller_ids),
            default=agent.caller_ids[0] if agent.caller_ids else None,
        )

    def directory_search(self, query: str, limit: int, page: int) -> DirectoryPage:
        """D365 contacts, accounts, leads and users, and colleagues, by name or by the start
        of a number (E.164 or national, every phone column); paged."""
        try:
            wanted_query = directory_query(query, self.region)
        except QueryProblem as exc:
            raise Unprocessable(f"q needs {exc}", errors=[FieldError("q", str(exc))]) from None
        wanted = limit * page + 1  # one more than shown tells whether a next page exists
        found = self.crm.search(wanted_query, top=wanted)
        entries = with_colleagues(found, self.directory.agents, wanted_query)
        entries.sort(key=lambda e: (e.name.lower(), e.kind, e.id))
        start = limit * (page - 1)
        shown = entries[start : start + limit]
        return DirectoryPage(
            results=tuple(DirectoryResult.of(e) for e in shown),
            page=page,
            next_page=page + 1 if len(entries) > start + limit else None,
        )

    # ------------------------------------------------------------------ writes

    def save_notes(self, agent: Agent, call_id: str, notes: str) -> CallWithNotes:
        if len(notes) > NOTES_MAX:
            raise Unprocessable(
                f"notes are {len(notes)} characters; a call keeps at most {NOTES_MAX}",
                errors=[FieldError("notes", f"at most {NOTES_MAX} characters")],
            )
        call = self._call_of(agent, call_id)
        part = call.notes_part_of(agent.id)
        if part is None:
            handed = call.handed_over_by(agent.id)
            if handed is not None:
                raise Conflict(
                    f"the call was transferred to {handed.to_name or 'a colleague'} at "
                    f"{handed.at:%H:%M} UTC; its notes are theirs now (yours are kept above "
                    "theirs)"
                )
            raise Conflict("the notes are the agent's who serves the call")
        parts = self.notes_parts(call)
        before = call_notes(call, parts)
        after = call_notes(call, tuple(notes if k == part else p for k, p in enumerate(parts)))
        if len(after) > NOTES_MAX:  # the earlier agents' parts, attributed, leave less room
            room = max(0, NOTES_MAX - (len(after) - len(notes)))
            raise Unprocessable(
                f"notes are {len(notes)} characters; with the earlier agents' notes a call "
                f"keeps at most {NOTES_MAX}, so yours at most {room}",
                errors=[FieldError("notes", f"at most {room} characters")],
            )
        # Longer than the description now or before this save: the activity may have (or
        # have had) the annotation, which shorter notes later remove.
        attached = max(len(before), len(after)) > DESCRIPTION_MAX
        self.calls.save_notes(call_id, notes, part, attached=attached)
        in_activity = None
        if call.activity_id and part == len(call.handovers):
            # Notes finished after the call: the open activity follows them (every agent's
            # part, the earlier ones attributed; re-read until none came in between).
            activity_id = call.activity_id
            in_activity = follow_notes(
                self.calls, call_id, lambda split: self.crm.write_notes(activity_id, split)
            )
        # False: D365 refused (the activity is completed already); the panel says so.
        return extended(self.view(call, agent), CallWithNotes, notes_in_activity=in_activity)

    def pick_customer(self, agent: Agent, call_id: str, entity: str, record_id: str) -> CallView:
        call = self._call_of(agent, call_id)
        try:
            wanted = CustomerEntity(entity)
        except ValueError:
            raise Unprocessable(
                "entity must be contact, account or lead",
                errors=[FieldError("entity", "contact, account or lead")],
            ) from None
        choice = next(
            (
                c
                for c in call.candidates
                if c.entity is wanted and c.id.lower() == record_id.lower()
            ),
            None,
        )
        if choice is None:
            raise Unprocessable(
                "that record is not one of the call's candidates",
                errors=[FieldError("id", "must be one of the candidates")],
            )
        result = self.calls.update(
            call_id,
            lambda c: None if c.picked == choice or c.activity_id else replace(c, picked=choice),
        )
        current = result[0] if result else call
        if current.picked != choice:  # the activity was created first: too late to pick here
            raise Conflict("the activity is already in D365: set Regarding there")
        return self.view(current, agent)

    def dial(self, agent: Agent, number: str, caller_id: str | None, now: datetime) -> CallView:
        callee = normalise(number, self.region)
        errors = []
        if not callee.valid:
            errors.append(FieldError("number", "not a valid phone number"))
        elif (refused := self.destinations.refusal(callee.value)) is not None:
            errors.append(FieldError("number", f"refused by the destination policy: {refused}"))
        chosen = caller_id or (agent.caller_ids[0] if agent.caller_ids else None)
        if caller_id and caller_id not in agent.caller_ids:
            errors.append(FieldError("callerId", f"must be one of {list(agent.caller_ids)}"))
        if errors:
            raise Unprocessable(
                "cannot dial: " + "; ".join(f"{e.field} {e.message}" for e in errors), errors=errors
            )
        return self.view(self.flow.dial(agent, callee.value, chosen, now), agent)

    def hang_up(self, agent: Agent, call_id: str) -> CallView:
        """End the call for everyone: only the agent serving the customer (or dialling) may.
        An agent the call is ringing declines it instead; one who handed it over is done."""
        call = self._call_of(agent, call_id)
        if call.ended:
            return self.view(call, agent)
        offer = call.pending_offer
        if offer is not None and offer.agent_id == agent.id and not call.answered:
            return self.decline(agent, call_id)
        serving = call.serving_agent_id if call.answered else call.agent_id
        if serving != agent.id:
            raise NotAllowed("the customer is with a colleague now; you cannot end their call")
        return self.view(self.flow.hang_up(call), agent)

    def decline(self, agent: Agent, call_id: str) -> CallView:
        """Refuse an offer ringing this agent (§2.1.1 3: no action is taken in D365)."""
        call = self._call_of(agent, call_id)
        offer = call.pending_offer
        if offer is None or offer.agent_id != agent.id:
            raise Conflict("the call is not ringing you")
        if not (call.connection_id and offer.invitation_id):
            raise Conflict("the call is only starting to ring you; decline again in a moment")
        if call.direction is Direction.INBOUND:
            self.telephony.cancel_add_participant(
                call.connection_id, offer.invitation_id, operation_context=offer.context
            )
        return self.view(call, agent)


def _acts_on(call: Call, agent: Agent) -> bool:
    """The dialling or dialled agent, the agent who answered, an agent a transfer handed it
    to or from, a colleague being consulted, or the agent being rung now. A colleague whose
    transfer was cancelled or failed is out of it."""
    if agent.id in (call.agent_id, call.answered_by, call.serving_agent_id):
        return True
    if any(agent.id in (h.from_agent_id, h.to_agent_id) for h in call.handovers):
        return True
    consult = call.consult
    if consult is not None and consult.agent_id == agent.id and consult.active:
        return True
    return any(o.agent_id == agent.id and o.outcome is OfferOutcome.PENDING for o in call.offers)
