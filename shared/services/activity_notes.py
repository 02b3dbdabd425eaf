"""The notes on a call's activity follow the notes as stored, whoever writes them and in any order.

Two writers race for an activity's notes: the panel's saves (every edit, after the call) and the
enrichment. Each writes the notes as stored when it sends them, never the text it was handed,
and after writing reads them again: changed meanwhile (a later save, whose own write may have
landed before this one), it writes again. So the last write to land carries the latest save,
and an older save never stays over a newer one.

After a transfer the notes as stored are every agent's part, the earlier ones attributed
(shared.domain.calls.call_notes): that combined text is what is split and compared.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.domain.activity import ActivityNotes, activity_notes
from shared.domain.calls import Call, call_notes
from shared.services.ports import CallRepository

WRITE_ROUNDS = 4  # writes per writer at most: a round is repeated only when a save came between


def stored_notes(calls: CallRepository, call: Call) -> str:
    """The call's notes as its activity carries them: every agent's part as stored now, the
    ones of agents who handed the call on under their name."""
    return call_notes(call, calls.notes_parts(call.call_id, len(call.handovers) + 1))


def follow_notes(
    calls: CallRepository,
    call_id: str,
    write: Callable[[ActivityNotes], bool],
    *,
    written: str | None = None,
) -> bool:
    """Write the stored notes with `write` until they are what was written last; `written` is
    the text the caller already wrote, the annotation's or else the description's (None:
    nothing yet). False as soon as a write is refused
    (the activity is completed): nothing more can follow."""
    for _ in range(WRITE_ROUNDS):
        call = calls.get(call_id)  # again each round: a transfer may have come in between
        latest = stored_notes(calls, call) if call is not None else calls.notes(call_id)
        split = activity_notes(latest, attached_before=calls.notes_attached(call_id))
        text = split.annotation if split.annotation is not None else split.description
        if text == written:
            return True
        if not write(split):
            return False
        written = text
    return True
