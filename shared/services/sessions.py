"""The web phone's single session (§1.4): start, heartbeat, end, takeover."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.domain import sessions
from shared.domain.directory import Agent
from shared.domain.sessions import Lease
from shared.errors import Conflict, NotFound
from shared.services.ports import SessionLeases
from shared.views import SessionView

log = logging.getLogger(__name__)


class WebPhoneSessions:
    def __init__(
        self,
        leases: SessionLeases,
        lease_seconds: int,
        *,
        ring_back: Callable[[Agent, datetime], Any] | None = None,
    ) -> None:
        self.leases, self.lease_seconds = leases, lease_seconds
        # A new session of an agent whose panel dropped mid-call rings it back into the call.
        self.ring_back = ring_back

    def start(self, agent: Agent, now: datetime, *, takeover: bool = False) -> SessionView:
        session_id = str(uuid.uuid4())
        lease = self.leases.swap(
            agent.id,
            lambda current: sessions.start(
                current, session_id, now, self.lease_seconds, takeover=takeover
            ),
        )
        if lease is None or lease.session_id != session_id:
            raise Conflict(sessions.ALREADY_ACTIVE)
        if self.ring_back is not None:
            try:
                self.ring_back(agent, now)
            except Exception:  # the session stands; the next start (or a retry) rings again
                log.exception("agent %s: ringing back into the call failed", agent.id)
        return _view(lease, self.lease_seconds)

    def heartbeat(self, agent: Agent, session_id: str, now: datetime) -> SessionView:
        lease = self.leases.swap(
            agent.id, lambda current: sessions.renew(current, session_id, now, self.lease_seconds)
        )
        if lease is None or lease.session_id != session_id:
            raise Conflict(sessions.ALREADY_ACTIVE)
        return _view(lease, self.lease_seconds)

    def end(self, agent: Agent, session_id: str) -> None:
        """End the agent's own live session; any other id (a colleague's, an ended one) is
        NotFound: a 204 that changed nothing would tell the panel a lie."""
        current = self.leases.swap(agent.id, lambda lease: None)  # None: read, keep as is
        if current is None or not current.session_id or current.session_id != session_id:
            raise NotFound("you have no live session with this id")
        self.leases.remove(agent.id, session_id)


def _view(lease: Lease, lease_seconds: int) -> SessionView:
    return SessionView(
        session_id=lease.session_id,
        lease_seconds=lease_seconds,
        started_at=lease.started_at,
        expires_at=lease.expires_at,
    )
