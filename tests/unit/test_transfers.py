"""Transfers (§1.3): after a completed one the call belongs to the colleague who took it (their
panel, their notes, the Phone Call activity), the first agent's notes kept and attributed; a
cancelled or failed one leaves everything with the first agent. Events may come twice, late
or out of order."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from shared.domain.activity import (
    ATTACHED_MARKER,
    CUT_MARKER,
    DESCRIPTION_MAX,
    NOTES_MAX,
    ActivityNotes,
    SubjectTemplates,
    activity_notes,
)
from shared.domain.calls import (
    Call,
    CallEvent,
    Consult,
    ConsultState,
    NextStep,
    Phase,
    apply_event,
    call_notes,
    next_step,
    notes_before,
    transfer_completed,
    with_offer,
)
from shared.errors import Conflict, NotAllowed, Unprocessable
from shared.services.agent_calls import AgentCalls
from shared.services.call_control import CallControl
from tests.unit.test_call_domain import at, pool_call
from tests.unit.test_call_flow import ANNA, BEN, World
from tests.unit.test_call_flow import at as flow_at

pytestmark = pytest.mark.unit


def answered_by_anna() -> Call:
    call = with_offer(pool_call(app_connected_at=at(1)), "8:acs:anna", "anna", at(2))
    return apply_event(call, CallEvent("s", "AddParticipantSucceeded", at(5), "offer:1"))


def transferring(blind: bool) -> Call:
    consult = Consult(
        1, "8:acs:ben", "ben", blind, from_agent_id="anna", from_name="Anna", to_name="Ben"
    )
    return replace(answered_by_anna(), consult=consult)


# ---------------------------------------------------------------------- domain


def test_a_direct_transfer_accepted_makes_the_colleague_the_owner_whatever_the_order() -> None:
    call = transferring(blind=True)
    accepted = CallEvent("t", "CallTransferAccepted", at(40), "transfer:1")
    roster = CallEvent(
        "p",
        "ParticipantsUpdated",
        at(41),
        participants=("4:+358401234567", "8:acs:ben"),
        sequence=3,
    )
    ended = CallEvent("d", "CallDisconnected", at(90))
    results = set()
    for order in itertools.permutations([accepted, accepted, roster, ended]):
        result = call
        for event in order:
            result = apply_event(result, event)
        assert result.owner_agent_id == "ben" and result.serving_agent_id == "ben"
        assert [(h.from_agent_id, h.to_agent_id, h.at) for h in result.handovers] == [
            ("anna", "ben", at(40))
        ]
        assert result.phase_for("anna") is Phase.TRANSFERRED
        assert result.phase_for("ben") is Phase.ENDED
        results.add(result)
    assert len(results) == 1  # the same call whatever the order, however often


def test_before_the_transfer_completes_and_after_it_fails_the_call_stays_the_first_agents() -> None:
    call = transferring(blind=True)
    assert call.owner_agent_id == "anna" and call.phase_for("anna") is Phase.CONNECTED
    failed = apply_event(call, CallEvent("f", "CallTransferFailed", at(40), "transfer:1"))
    assert failed.consult is not None and failed.consult.state is ConsultState.FAILED
    assert failed.owner_agent_id == "anna" and not failed.handovers
    assert failed.phase_for("anna") is Phase.CONNECTED
    assert failed.notes_part_of("anna") == 0 and failed.notes_part_of("ben") is None


def test_a_cancelled_consultation_never_becomes_a_handover() -> None:
    call = transferring(blind=False)
    cancelled = replace(call, consult=replace(call.consult, state=ConsultState.CANCELLED))  # type: ignore[arg-type]
    assert transfer_completed(cancelled, 1, at(50)) is None
    late = apply_event(cancelled, CallEvent("t", "CallTransferAccepted", at(50), "consult:1"))
    assert late.owner_agent_id == "anna" and not late.handovers


def test_a_completed_consultation_hands_over_once() -> None:
    call = transferring(blind=False)
    connected = apply_event(call, CallEvent("a", "AddParticipantSucceeded", at(20), "consult:1"))
    assert connected.owner_agent_id == "anna"
    assert connected.notes_part_of("ben") == 1  # Ben may start his part while consulted
    done = transfer_completed(connected, 1, at(30))
    assert done is not None and done.owner_agent_id == "ben" and not done.held
    assert transfer_completed(done, 1, at(31)) is None  # a repeat adds nothing
    assert transfer_completed(done, 2, at(31)) is None  # nor another transfer's completion
    assert done.notes_part_of("ben") == 1 and done.notes_part_of("anna") is None


def test_the_activity_notes_are_the_first_agents_attributed_then_the_colleagues() -> None:
    done = transfer_completed(transferring(blind=True), 1, at(48 * 60 + 5))  # 09:48:05
    assert done is not None
    parts = ("Asked about the invoice", "Sent a corrected invoice")
    assert (
        notes_before(done, parts) == "Anna (until transfer at 09:48 UTC):\nAsked about the invoice"
    )
    assert call_notes(done, parts) == (
        "Anna (until transfer at 09:48 UTC):\nAsked about the invoice\n\nSent a corrected invoice"
    )
    assert call_notes(done, ("", "Only Ben wrote")) == "Only Ben wrote"
    assert call_notes(answered_by_anna(), ("As typed",)) == "As typed"


def test_a_transfer_completing_after_the_activity_was_written_moves_it() -> None:
    ended = apply_event(transferring(blind=True), CallEvent("d", "CallDisconnected", at(90)))
    written = replace(ended, activity_id=ended.activity_uuid, activity_owner="anna")
    assert next_step(written) is NextStep.NOTHING
    late = apply_event(written, CallEvent("t", "CallTransferAccepted", at(40), "transfer:1"))
    assert next_step(late) is NextStep.REASSIGN_ACTIVITY
    assert next_step(replace(late, activity_owner="ben")) is NextStep.NOTHING


# ---------------------------------------------------------------------- services


class Desk:
    """The call flow with the agents' API and call control over the same fakes."""

    def __init__(self) -> None:
        self.w = World()
        self.views = AgentCalls(
            flow=self.w.flow,
            directory=self.w.flow.directory,
            calls=self.w.calls,
            agents=self.w.agents,
            crm=self.w.crm,
            telephony=self.w.telephony,
            templates=SubjectTemplates(),
            default_region="FI",
        )
        self.control = CallControl(
            calls=self.w.calls,
            agents=self.w.agents,
            telephony=self.w.telephony,
            directory=self.w.flow.directory,
            views=self.views,
            hold_music_url=None,
            default_region="FI",
        )

    def answered(self) -> str:
        call_id = self.w.incoming()
        self.w.event(call_id, "CallConnected", 1)
        self.w.event(call_id, "AddParticipantSucceeded", 5, "offer:1")
        return call_id

    def activity(self, call_id: str):  # type: ignore[no-untyped-def]
        return self.w.crm.activities[self.w.calls.rows[call_id].activity_uuid]


def test_a_completed_direct_transfer_gives_ben_the_call_notes_and_activity() -> None:
    d = Desk()
    call_id = d.answered()
    d.views.save_notes(ANNA, call_id, "Wants a refund")
    d.control.transfer(ANNA, call_id, to_agent="ben")
    for _ in range(3):  # triple delivery
        d.w.event(call_id, "CallTransferAccepted", 30, "transfer:1", event_id="accepted")
    anna, ben = d.views.current(ANNA), d.views.current(BEN)
    assert anna is not None and anna.state is Phase.TRANSFERRED and anna.transferred_to == "Ben"
    assert anna.notes == "Wants a refund" and anna.earlier_notes is None
    assert ben is not None and ben.state is Phase.CONNECTED and ben.notes == ""
    assert ben.earlier_notes == "Anna (until transfer at 09:00 UTC):\nWants a refund"
    with pytest.raises(Conflict, match="transferred to Ben at 09:00 UTC"):
        d.views.save_notes(ANNA, call_id, "Wants a refund, now")
    with pytest.raises(NotAllowed):
        d.views.hang_up(ANNA, call_id)
    d.views.save_notes(BEN, call_id, "Refund approved")
    d.w.event(call_id, "CallDisconnected", 300)
    activity = d.activity(call_id)
    assert activity.owner_user_id == BEN.system_user_id
    assert activity.to_party.id == BEN.system_user_id  # type: ignore[union-attr]
    assert activity.description == (
        "Anna (until transfer at 09:00 UTC):\nWants a refund\n\nRefund approved"
    )
    history = {a.id: d.views.history(a, 5).calls[0] for a in (ANNA, BEN)}
    assert history["anna"].outcome == "transferred" and history["ben"].answered_by_you


def test_a_completed_consulted_transfer_gives_ben_the_call() -> None:
    d = Desk()
    call_id = d.answered()
    d.views.save_notes(ANNA, call_id, "Address changed")
    d.control.consult(ANNA, call_id, to_agent="ben")
    d.w.event(call_id, "AddParticipantSucceeded", 20, "consult:1")
    assert d.views.current(ANNA).state is Phase.CONNECTED  # type: ignore[union-attr]
    view = d.control.complete(ANNA, call_id, flow_at(40))
    assert view.state is Phase.TRANSFERRED and view.transferred_to == "Ben"
    with pytest.raises(NotAllowed):
        d.control.complete(ANNA, call_id, flow_at(41))  # a second click: not the caller's now
    ben = d.views.current(BEN)
    assert ben is not None and ben.state is Phase.CONNECTED
    with pytest.raises(Conflict, match="transferred to Ben"):
        d.views.save_notes(ANNA, call_id, "more")
    d.views.save_notes(BEN, call_id, "Confirmed the new address")
    d.w.event(call_id, "CallDisconnected", 200)
    activity = d.activity(call_id)
    assert activity.owner_user_id == BEN.system_user_id
    assert activity.description.startswith("Anna (until transfer at 09:00 UTC):\nAddress changed")
    assert activity.description.endswith("\n\nConfirmed the new address")


def test_a_cancelled_consultation_leaves_call_notes_and_activity_with_anna() -> None:
    d = Desk()
    call_id = d.answered()
    d.control.consult(ANNA, call_id, to_agent="ben")
    d.w.event(call_id, "AddParticipantSucceeded", 20, "consult:1")
    d.control.cancel(ANNA, call_id)
    assert d.views.current(ANNA).state is Phase.CONNECTED  # type: ignore[union-attr]
    assert d.views.current(BEN) is None  # out of it
    d.views.save_notes(ANNA, call_id, "Kept it myself")
    with pytest.raises(NotAllowed):
        d.views.save_notes(BEN, call_id, "not mine")
    d.w.event(call_id, "CallDisconnected", 200)
    activity = d.activity(call_id)
    assert activity.owner_user_id == ANNA.system_user_id
    assert activity.description == "Kept it myself"


def test_a_failed_direct_transfer_leaves_everything_with_anna() -> None:
    d = Desk()
    call_id = d.answered()
    d.control.transfer(ANNA, call_id, to_agent="ben")
    d.w.event(call_id, "CallTransferFailed", 30, "transfer:1")
    d.views.save_notes(ANNA, call_id, "Ben did not answer")
    d.w.event(call_id, "CallDisconnected", 200)
    assert d.activity(call_id).owner_user_id == ANNA.system_user_id
    assert d.views.current(ANNA).state is Phase.ENDED  # type: ignore[union-attr]


def test_a_late_acceptance_moves_the_activity_written_before_it() -> None:
    d = Desk()
    call_id = d.answered()
    d.views.save_notes(ANNA, call_id, "First part")
    d.control.transfer(ANNA, call_id, to_agent="ben")
    d.w.event(call_id, "CallDisconnected", 200)  # delivered before the acceptance
    assert d.activity(call_id).owner_user_id == ANNA.system_user_id
    for _ in range(2):
        d.w.event(call_id, "CallTransferAccepted", 30, "transfer:1", event_id="accepted")
    activity = d.activity(call_id)
    assert activity.owner_user_id == BEN.system_user_id
    assert activity.description == "Anna (until transfer at 09:00 UTC):\nFirst part"
    assert d.w.calls.rows[call_id].activity_owner == "ben"


def test_the_enrichment_writes_the_attributed_notes_and_never_the_owner() -> None:
    from shared.domain.calls import Handover
    from tests.unit.test_enrichment import Rig
    from tests.unit.test_enrichment import answered_call as enriched_call
    from tests.unit.test_enrichment import at as enrich_at

    rig = Rig()
    handover = Handover(1, "anna", "Anna", "ben", "Ben", enrich_at(40))
    call = rig.add(replace(enriched_call(), handovers=(handover,), activity_owner="ben"))
    rig.calls.save_notes(call.call_id, "Anna's part")
    rig.calls.save_notes(call.call_id, "Ben's part", 1)
    rig.handle(call.call_id, enrich_at(130))
    [update] = rig.writer.written
    assert update.description == "Anna (until transfer at 09:00 UTC):\nAnna's part\n\nBen's part"
    assert "owner" not in " ".join(vars(update))  # the PATCH carries no owner to undo


def test_a_call_handed_on_and_back_keeps_every_part_attributed_and_frees_each_giver() -> None:
    d = Desk()
    call_id = d.answered()
    d.views.save_notes(ANNA, call_id, "A1")
    d.control.transfer(ANNA, call_id, to_agent="ben")
    d.w.event(call_id, "CallTransferAccepted", 30, "transfer:1")
    assert "anna" not in d.w.agents.busy and d.w.agents.busy["ben"] == call_id
    d.views.save_notes(BEN, call_id, "B")
    d.control.transfer(BEN, call_id, to_agent="anna")  # Ben serves it: he may hand it on
    d.w.event(call_id, "CallTransferAccepted", 90, "transfer:2")
    d.w.event(call_id, "CallTransferAccepted", 30, "transfer:1")  # a late repeat: nothing
    assert "ben" not in d.w.agents.busy
    anna, ben = d.views.current(ANNA), d.views.current(BEN)
    assert anna is not None and anna.state is Phase.CONNECTED and anna.notes == ""
    assert anna.earlier_notes == (
        "Anna (until transfer at 09:00 UTC):\nA1\n\nBen (until transfer at 09:01 UTC):\nB"
    )
    assert ben is not None and ben.state is Phase.TRANSFERRED and ben.transferred_to == "Anna"
    d.views.save_notes(ANNA, call_id, "A2")
    with pytest.raises(Conflict):
        d.views.save_notes(BEN, call_id, "B again")
    d.w.event(call_id, "CallDisconnected", 300)
    activity = d.activity(call_id)
    assert activity.owner_user_id == ANNA.system_user_id
    assert activity.description == (
        "Anna (until transfer at 09:00 UTC):\nA1\n\nBen (until transfer at 09:01 UTC):\nB\n\nA2"
    )


# ---------------------------------------------------------------------- long notes, transferred


def test_two_short_parts_past_2000_together_are_attached_and_removed_when_they_shrink() -> None:
    """Neither part alone is too long for the description; attributed together they are: the
    activity gets their start, marked, and one annotation of both; Ben's part made short
    again after the call takes the annotation away (the call's sticky flag)."""
    d = Desk()
    call_id = d.answered()
    anna_part, ben_part = "a" * 1500, "b" * 1500
    d.views.save_notes(ANNA, call_id, anna_part)
    d.control.transfer(ANNA, call_id, to_agent="ben")
    d.w.event(call_id, "CallTransferAccepted", 30, "transfer:1")
    assert not d.w.calls.notes_attached(call_id)
    d.views.save_notes(BEN, call_id, ben_part)
    assert d.w.calls.notes_attached(call_id)
    d.w.event(call_id, "CallDisconnected", 300)
    activity = d.activity(call_id)
    whole = f"Anna (until transfer at 09:00 UTC):\n{anna_part}\n\n{ben_part}"
    assert activity.notes_annotation == whole
    assert len(activity.description) == DESCRIPTION_MAX
    assert activity.description.endswith(ATTACHED_MARKER)
    written: list[ActivityNotes] = []
    write = d.w.crm.write_notes
    d.w.crm.write_notes = lambda a, n: written.append(n) or write(a, n)  # type: ignore[method-assign]
    saved = d.views.save_notes(BEN, call_id, "Refund approved")
    assert saved.notes_in_activity is True
    short = f"Anna (until transfer at 09:00 UTC):\n{anna_part}\n\nRefund approved"
    assert written == [ActivityNotes(short, None, remove_annotation=True)]


def test_the_colleagues_notes_leave_room_for_the_earlier_ones_attributed() -> None:
    d = Desk()
    call_id = d.answered()
    d.views.save_notes(ANNA, call_id, "a" * 60_000)
    d.control.transfer(ANNA, call_id, to_agent="ben")
    d.w.event(call_id, "CallTransferAccepted", 30, "transfer:1")
    room = NOTES_MAX - len("Anna (until transfer at 09:00 UTC):\n") - 60_000 - 2
    d.views.save_notes(BEN, call_id, "b" * room)  # exactly what is left
    with pytest.raises(Unprocessable, match=f"yours at most {room}"):
        d.views.save_notes(BEN, call_id, "b" * (room + 1))


def test_notes_longer_than_an_annotation_holds_are_cut_saying_so() -> None:
    split = activity_notes("x" * (NOTES_MAX + 50))
    assert split.annotation is not None and len(split.annotation) == NOTES_MAX
    assert split.annotation.endswith(CUT_MARKER)
