"""The agent's ACS user token for the panel's Calling SDK (or the local device emulator)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from shared.domain.directory import Agent
from shared.errors import Unprocessable
from shared.views import AcsTokenView


class VoipTokenPort(Protocol):
    def voip_token(self, communication_user_id: str) -> tuple[str, datetime]: ...


class DeviceTokens:
    def __init__(self, identity: VoipTokenPort) -> None:
        self.identity = identity

    def issue(self, agent: Agent) -> AcsTokenView:
        """A VoIP token for the agent's own ACS user (`acsUserId` in AGENTS)."""
        if not agent.acs_user_id:
            raise Unprocessable(
                f"agent {agent.id} rings a phone number, not a web phone: no acsUserId in AGENTS"
            )
        token, expires_on = self.identity.voip_token(agent.acs_user_id)
        return AcsTokenView(
            token=token, expires_on=expires_on, communication_user_id=agent.acs_user_id
        )
