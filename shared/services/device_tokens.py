"""The agent's ACS user token for the panel's Calling SDK (or the local device emulator)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.domain.directory import Agent
from shared.errors import Unprocessable


class VoipTokenPort(Protocol):
    def voip_token(self, communication_user_id: str) -> tuple[str, datetime]: ...


@dataclass(frozen=True)
class DeviceToken:
    token: str
    expires_on: datetime
    communication_user_id: str

    def to_json(self) -> dict[str, str]:
        return {
            "token": self.token,
            "expiresOn": self.expires_on.isoformat().replace("+00:00", "Z"),
            "communicationUserId": self.communication_user_id,
        }


class DeviceTokens:
    def __init__(self, identity: VoipTokenPort) -> None:
        self.identity = identity

    def issue(self, agent: Agent) -> DeviceToken:
        """A VoIP token for the agent's own ACS user (`acsUserId` in AGENTS)."""
        if not agent.acs_user_id:
            raise Unprocessable(
                f"agent {agent.id} rings a phone number, not a web phone: no acsUserId in AGENTS"
            )
        token, expires_on = self.identity.voip_token(agent.acs_user_id)
        return DeviceToken(token, expires_on, agent.acs_user_id)
