"""Single-session web phone (§1.4): one live lease per agent; a second tab is told so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# The use-case document's message (§1.4), shown by the panel when another session is live.
ALREADY_ACTIVE = (
    "Webphone is already active in another Tab or Window. Web Phone can be active in "
    "single-session only. If you want to activate the phone here, please close all other "
    "Windows and Tabs and reload the page after a few seconds."
)


@dataclass(frozen=True)
class Lease:
    session_id: str
    started_at: datetime
    expires_at: datetime

    def live(self, now: datetime) -> bool:
        return now < self.expires_at


def start(
    current: Lease | None, session_id: str, now: datetime, lease_seconds: int, *, takeover: bool
) -> Lease | None:
    """A new lease, unless another live one holds the slot (None) and this is no takeover."""
    if current is not None and current.live(now) and not takeover:
        return None
    return Lease(session_id, now, now + timedelta(seconds=lease_seconds))


def renew(
    current: Lease | None, session_id: str, now: datetime, lease_seconds: int
) -> Lease | None:
    """Extend this session's lease; None when the slot belongs to another session now."""
    if current is None or current.session_id != session_id:
        return None
    return Lease(session_id, current.started_at, now + timedelta(seconds=lease_seconds))
