"""The notes on a call's activity follow the notes as stored, whoever writes them and in any order.

Two writers race for an activity's notes: the panel's saves (every edit, after the call) and the
enrichment. Each writes the notes as stored when it sends them, never the text it was handed,
and after writing reads them again: changed meanwhile (a later save, whose own write may have
landed before this one), it writes again. So the last write to land carries the latest save,
and an older save never stays over a newer one.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.domain.activity import ActivityNotes, activity_notes
from shared.services.ports import CallRepository

WRITE_ROUNDS = 4  # writes per writer at most: a round is repeated only when a save came between


def follow_notes(
    calls: CallRepository,
    call_id: str,
    write: Callable[[ActivityNotes], bool],
    *,
    written: str | None = None,
) -> bool:
    """Write the stored notes with `write` until they are what was written last; `written` is
    the text the caller already wrote (None: nothing yet). False as soon as a write is refused
    (the activity is completed): nothing more can follow."""
    for _ in range(WRITE_ROUNDS):
        latest = calls.notes(call_id)
        if latest == written:
            return True
        if not write(activity_notes(latest, attached_before=calls.notes_attached(call_id))):
            return False
        written = latest
    return True
