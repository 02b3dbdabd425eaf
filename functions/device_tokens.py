"""The web phone's ACS user token: what the panel's Calling SDK signs in to ACS with."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func

from functions.invocation import NO_STORE, Auth, endpoint

if TYPE_CHECKING:
    from shared.domain.directory import Agent
    from shared.views import AcsTokenView

bp = func.Blueprint()


@endpoint(bp, "GET", "me/acs-token", auth=Auth.AGENT, errors=(422, 503), headers=NO_STORE)
def acs_token(req: func.HttpRequest, agent: Agent) -> AcsTokenView:
    """The agent's ACS user token (scope voip) for the panel's Calling SDK

    For the agent's own `acsUserId`; 422 for an agent that rings a phone number instead. Locally
    the panel hands it to the ACS emulator's device API (`PANEL_DEVICE_EMULATOR_URL`)."""
    from shared import composition

    return composition.device_tokens().issue(agent)
